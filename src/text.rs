//! Input strings made safe to show (SPEC §8): control characters escaped, length bounded.
//!
//! Takes any text an input held; gives text that cannot move a terminal's cursor, retitle its
//! window or fake a line of the program's own output, and that stays short whatever the input
//! held. Every message that quotes an input value goes through [`quoted`] or [`shown`].

use std::fmt::Write as _;

/// Characters of an input value shown in a message before it is cut.
pub(crate) const SHOWN_CHARS: usize = 200;

/// What an escape leaves as it is, besides ordinary characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keep {
    /// Escape backslashes too, so an escaped value reads back unambiguously.
    Nothing,
    /// Keep backslashes: the text holds values escaped once already.
    Backslashes,
    /// Keep backslashes and line breaks: a whole message the program laid out itself.
    LinesAndBackslashes,
}

fn push_escaped(out: &mut String, c: char, keep: Keep) {
    match c {
        '\n' if keep == Keep::LinesAndBackslashes => out.push(c),
        '\\' if keep != Keep::Nothing => out.push(c),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\\' => out.push_str("\\\\"),
        c if is_unsafe(c) => {
            write!(out, "\\u{{{:x}}}", u32::from(c)).ok();
        }
        c => out.push(c),
    }
}

/// Whether `c` is a character a terminal may act on rather than print.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}')
        || ('\u{202a}'..='\u{202e}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

/// `text` escaped as `keep` says and, past `max_chars` characters, cut on a character
/// boundary with its full length in bytes noted.
fn cut(text: &str, max_chars: usize, keep: Keep) -> String {
    let mut out = String::with_capacity(text.len().min(max_chars.saturating_mul(4)));
    for (count, c) in text.chars().enumerate() {
        if count == max_chars {
            write!(out, "… ({} bytes in all)", text.len()).ok();
            return out;
        }
        push_escaped(&mut out, c, keep);
    }
    out
}

/// `text` escaped and, past [`SHOWN_CHARS`] characters, cut with its full length noted.
pub(crate) fn shown(text: &str) -> String {
    cut(text, SHOWN_CHARS, Keep::Nothing)
}

/// Text that may quote values escaped once already (a quarantine detail), made inert and cut
/// at `max_chars`: control characters escaped, backslashes kept.
pub(crate) fn inert(text: &str, max_chars: usize) -> String {
    cut(text, max_chars, Keep::Backslashes)
}

/// An input value for a message: [`shown`], in backticks.
pub(crate) fn quoted(text: &str) -> String {
    format!("`{}`", shown(text))
}

/// A whole message for a terminal: each line's control characters escaped, the line breaks
/// the program itself wrote (between message and `hint:`) kept.
pub fn for_terminal(message: &str) -> String {
    // Backslashes stay: values quoted in the message were escaped once already.
    cut(message, usize::MAX, Keep::LinesAndBackslashes)
}

/// Writes a report to stdout with [`for_terminal`] applied. A closed pipe (`| head`) ends the
/// output quietly: the reader has all it wanted. Any other failure is an error, never a panic.
pub(crate) fn print(report: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let written = stdout
        .write_all(for_terminal(report).as_bytes())
        .and_then(|()| stdout.flush());
    // A closed pipe stays an `io::Error` in the chain: `main` ends quietly on it.
    written.map_err(|e| anyhow::Error::new(e).context("cannot write to stdout"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every control character, backslash and Unicode line, paragraph and direction mark
    /// escaped, nothing cut.
    fn escaped(text: &str) -> String {
        cut(text, usize::MAX, Keep::Nothing)
    }

    #[test]
    fn spec_8_control_characters_are_escaped() {
        assert_eq!(escaped("a\u{1b}]0;owned\u{7}b"), "a\\u{1b}]0;owned\\u{7}b");
        assert_eq!(escaped("x\ny\r\t\\"), "x\\ny\\r\\t\\\\");
        assert_eq!(escaped("\u{9b}2J"), "\\u{9b}2J");
        assert_eq!(escaped("\u{202e}gnp.exe"), "\\u{202e}gnp.exe");
        assert_eq!(escaped("人民币 CNY"), "人民币 CNY");
    }

    #[test]
    fn spec_8_long_values_are_cut_with_their_length() {
        let long = "é".repeat(5000);
        let shown = shown(&long);
        assert!(shown.starts_with(&"é".repeat(SHOWN_CHARS)));
        assert!(shown.ends_with("… (10000 bytes in all)"), "{shown}");
        assert_eq!(quoted("ab"), "`ab`");
    }

    #[test]
    fn spec_8_a_terminal_message_keeps_its_own_lines_only() {
        assert_eq!(
            for_terminal("bad `\u{1b}[2J`\n  hint: fix"),
            "bad `\\u{1b}[2J`\n  hint: fix"
        );
        assert_eq!(for_terminal(&quoted("\u{1b}")), "`\\u{1b}`");
    }
}
