//! Paths as a person reads them: `jobs/../out/month-end` is shown as `out/month-end`.
//!
//! Takes a path as the program uses it (joined from a job file's folder, typed by a user);
//! gives the same path normalised lexically for messages and summaries. Only what is shown
//! changes: every file is still opened through the path as given, and the manifest records
//! that path (provenance), since a `..` after a symbolic link is resolved by the file system
//! against the link's target, which no lexical rule can know.

use std::path::{Component, Path, PathBuf};

/// `path` with `.` removed and each `..` cancelled against the component before it, without
/// touching the file system. A `..` with nothing before it to cancel stays (`../data`), one
/// right after the root is dropped (`/..` is `/`), and an absolute path stays absolute. A
/// trailing `/` (a folder, as in `calls/`) is kept. A path that cancels out entirely is `.`;
/// the empty path stays empty.
pub fn lexical(path: &Path) -> PathBuf {
    if path.as_os_str().is_empty() {
        return PathBuf::new();
    }
    let mut kept: Vec<Component> = Vec::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => match kept.last() {
                Some(Component::Normal(_)) => {
                    kept.pop();
                }
                Some(Component::RootDir | Component::Prefix(_)) => {}
                Some(Component::ParentDir | Component::CurDir) | None => kept.push(component),
            },
            other => kept.push(other),
        }
    }
    let Some(last) = kept.last() else {
        return PathBuf::from(".");
    };
    let folder = matches!(last, Component::Normal(_) | Component::ParentDir)
        && path
            .as_os_str()
            .as_encoded_bytes()
            .last()
            .is_some_and(|b| std::path::is_separator(char::from(*b)));
    let mut lexical: PathBuf = kept.iter().collect();
    if folder {
        // Joining the empty path appends the separator.
        lexical.push("");
    }
    lexical
}

/// `path` as a message shows it: [`lexical`], as text.
pub fn shown(path: &Path) -> String {
    lexical(path).display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown_str(text: &str) -> String {
        shown(Path::new(text))
    }

    #[test]
    fn a_job_files_parent_step_is_resolved_against_its_folder() {
        assert_eq!(shown_str("jobs/../out/month-end"), "out/month-end");
        assert_eq!(
            shown_str("jobs/../sample_data/billing.csv"),
            "sample_data/billing.csv"
        );
        assert_eq!(shown_str("a/b/../../c"), "c");
        assert_eq!(shown_str("a/b/c/../d/./e/.."), "a/b/d");
    }

    #[test]
    fn current_folder_steps_and_trailing_slashes_disappear() {
        assert_eq!(shown_str("./out/./month-end"), "out/month-end");
        assert_eq!(shown_str("out//month-end"), "out/month-end");
        assert_eq!(shown_str("."), ".");
        assert_eq!(shown_str("a/.."), ".");
        assert_eq!(shown_str("./a/../."), ".");
    }

    #[test]
    fn a_trailing_slash_that_marks_a_folder_is_kept() {
        assert_eq!(shown_str("calls/"), "calls/");
        assert_eq!(shown_str("jobs/../calls//"), "calls/");
        assert_eq!(shown_str("a/b/../"), "a/");
        assert_eq!(shown_str("../"), "../");
        assert_eq!(shown_str("a/../"), ".");
        assert_eq!(shown_str("/a/../"), "/");
    }

    #[test]
    fn leading_parent_steps_that_cannot_be_resolved_stay() {
        assert_eq!(shown_str("../data"), "../data");
        assert_eq!(shown_str("../../data/x/.."), "../../data");
        assert_eq!(shown_str("a/../../b"), "../b");
        assert_eq!(shown_str("./../a"), "../a");
        assert_eq!(shown_str(".."), "..");
    }

    #[test]
    fn absolute_paths_stay_absolute() {
        assert_eq!(shown_str("/srv/ledgers/../out"), "/srv/out");
        assert_eq!(shown_str("/.."), "/");
        assert_eq!(shown_str("/../../etc"), "/etc");
        assert_eq!(shown_str("/"), "/");
    }

    #[test]
    fn the_empty_path_stays_empty_and_names_are_kept_as_they_are() {
        assert_eq!(shown_str(""), "");
        assert_eq!(shown_str("人民币/..x/...y"), "人民币/..x/...y");
        assert_eq!(lexical(Path::new("jobs/../out")), PathBuf::from("out"));
    }
}
