//! Atomic output (SPEC §1, §8): everything is written into a scratch sibling of `--out`,
//! checked, then renamed into place.
//!
//! Takes the `--out` path, `--force` and the inputs it must stay apart from; gives a staged
//! folder to write into and a commit that publishes it.
//!
//! - `--out` may not be an input folder, hold one or lie inside one ([`check_apart`]), compared
//!   by real location, so `a/../b`, symlinked parents and relative paths compare as the folder
//!   they name.
//! - [`check_target`] alone decides whether `--out` may be written: absent, an empty folder,
//!   or with `--force` an earlier output of this program (its `manifest.json`). A file, a
//!   symlink or any other folder is refused and left untouched.
//! - A failed or interrupted run removes its scratch folder and leaves `--out` exactly as it
//!   was. `--force` swaps the new folder with the previous one in a single atomic exchange
//!   (Linux `renameat2(RENAME_EXCHANGE)`), so `--out` always holds either the old or the new
//!   output.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use anyhow::Context;

use crate::error::UsageError;
use crate::scratch::ScratchDir;

/// An output folder being written.
pub struct StagedOutput {
    temp: ScratchDir,
    target: PathBuf,
}

/// Where `path` really is: the nearest existing ancestor canonicalized, the rest appended with
/// `.` and `..` applied as `mkdir -p` would apply them.
pub fn real_location(path: &Path) -> PathBuf {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().map_or_else(|_| path.to_path_buf(), |cwd| cwd.join(path))
    };
    let components: Vec<Component> = absolute.components().collect();
    for existing in (1..=components.len()).rev() {
        let prefix: PathBuf = components[..existing].iter().collect();
        let Ok(mut real) = prefix.canonicalize() else {
            continue;
        };
        for component in &components[existing..] {
            match component {
                Component::ParentDir => {
                    real.pop();
                }
                Component::Normal(name) => real.push(name),
                _ => {}
            }
        }
        return real;
    }
    absolute
}

/// Fails (a usage error: the flags contradict each other) when `out` is, holds or lies inside
/// one of `inputs`, given as `(flag, path)`. Nothing has been read or written yet.
pub fn check_apart(out: &Path, inputs: &[(&str, &Path)]) -> Result<(), UsageError> {
    let out_real = real_location(out);
    for (flag, input) in inputs {
        let input_real = real_location(input);
        let relation = if out_real == input_real {
            "is the same folder as"
        } else if input_real.starts_with(&out_real) {
            "contains"
        } else if out_real.starts_with(&input_real) {
            "lies inside"
        } else {
            continue;
        };
        return Err(UsageError::new(
            format!(
                "`--out` `{}` {relation} `{flag}` `{}` (real locations `{}` and `{}`), so writing the output could destroy that input; nothing was read or written",
                crate::paths::shown(out),
                crate::paths::shown(input),
                out_real.display(),
                input_real.display(),
            ),
        )
            .hint(format!("choose an `--out` outside `{}` that does not contain it", crate::paths::shown(input))));
    }
    Ok(())
}

/// What a path that is not a folder is, for messages.
fn kind_of(file_type: fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if file_type.is_file() {
        "a regular file"
    } else if file_type.is_fifo() {
        "a named pipe"
    } else if file_type.is_socket() {
        "a socket"
    } else if file_type.is_block_device() || file_type.is_char_device() {
        "a device"
    } else {
        "not a folder"
    }
}

/// Whether `dir` holds a `manifest.json` (a regular file, not a link) written by this program.
fn is_earlier_output(dir: &Path) -> bool {
    let path = dir.join("manifest.json");
    // A manifest is kilobytes to a few megabytes; a huge file is not one.
    if !fs::symlink_metadata(&path).is_ok_and(|m| m.is_file() && m.len() < 1 << 30) {
        return false;
    }
    fs::read(&path).is_ok_and(|bytes| crate::manifest::written_by_this_program(&bytes))
}

/// Fails unless `target` is absent, an empty folder, or (with `force`) an earlier output of
/// this program. The one place that decides what `--out` may replace.
pub fn check_target(target: &Path, force: bool) -> anyhow::Result<()> {
    let meta = match fs::symlink_metadata(target) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(e).with_context(|| {
                format!("cannot inspect output `{}`", crate::paths::shown(target))
            })
        }
    };
    if meta.file_type().is_symlink() {
        return Err(crate::error::hinted(
            format!(
                "output `{}` is a symbolic link; it was left untouched",
                crate::paths::shown(target)
            ),
            "pass the folder itself as `--out`, or choose another `--out`",
        ));
    }
    if !meta.is_dir() {
        return Err(crate::error::hinted(
            format!(
                "output `{}` exists and is {}, not a folder; it was left untouched",
                crate::paths::shown(target),
                kind_of(meta.file_type())
            ),
            "choose another `--out`",
        ));
    }
    let non_empty = fs::read_dir(target)
        .with_context(|| format!("cannot list output `{}`", crate::paths::shown(target)))?
        .next()
        .is_some();
    if !non_empty {
        return Ok(());
    }
    if !force {
        return Err(crate::error::hinted(
            format!(
                "output `{}` exists and is not empty; it was left untouched",
                crate::paths::shown(target)
            ),
            "pass `--force` to replace it, or choose another `--out`",
        ));
    }
    if !is_earlier_output(target) {
        return Err(crate::error::hinted(
            format!(
                "output `{}` is not empty and holds no `manifest.json` written by sla-ledger; `--force` replaces only an empty folder or an earlier output of this program, so it was left untouched",
                crate::paths::shown(target),
            ),
            "choose another `--out`, or move its contents away yourself",
        ));
    }
    Ok(())
}

/// `0777` less the process umask, as `mkdir` would give; read from `/proc` (changing the umask
/// to read it would race with other threads creating files), else the usual `022`.
fn published_mode() -> u32 {
    let umask = fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("Umask:"))
                .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        })
        .unwrap_or(0o022);
    0o777 & !umask
}

impl StagedOutput {
    pub fn prepare(target: &Path, force: bool) -> anyhow::Result<StagedOutput> {
        check_target(target, force)?;
        if let Some(parent) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent)
                .with_context(|| format!("cannot create `{}`", crate::paths::shown(parent)))?;
        }
        target.file_name().with_context(|| {
            format!(
                "output `{}` has no folder name",
                crate::paths::shown(target)
            )
        })?;
        Ok(StagedOutput {
            temp: ScratchDir::beside(target, "out")?,
            target: target.to_path_buf(),
        })
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.temp.path().join(name)
    }

    /// Writes one file completely (flushed and synced) or fails, naming the file.
    pub fn write(
        &self,
        name: &str,
        fill: impl FnOnce(&mut BufWriter<File>) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let path = self.path(name);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .with_context(|| format!("cannot create `{}`", crate::paths::shown(&path)))?;
        let mut writer = BufWriter::new(file);
        let written: anyhow::Result<()> = (|| {
            fill(&mut writer)?;
            writer.flush()?;
            writer.get_ref().sync_all()?;
            Ok(())
        })();
        written.with_context(|| format!("cannot write `{}`", crate::paths::shown(&path)))
    }

    /// Writes `value` as pretty JSON with a final newline: how every output's `manifest.json`
    /// is written.
    pub fn write_json(&self, name: &str, value: &impl serde::Serialize) -> anyhow::Result<()> {
        self.write(name, |w| {
            serde_json::to_writer_pretty(&mut *w, value)?;
            w.write_all(b"\n")?;
            Ok(())
        })
    }

    /// Moves the finished folder into place; with `force`, atomically exchanges it with the
    /// previous output, which is then removed.
    pub fn commit(self, force: bool) -> anyhow::Result<()> {
        // Private while being written; published with the mode any new folder would get.
        fs::set_permissions(
            self.temp.path(),
            fs::Permissions::from_mode(published_mode()),
        )
        .with_context(|| {
            format!(
                "cannot set the mode of `{}`",
                crate::paths::shown(self.temp.path())
            )
        })?;
        File::open(self.temp.path()).and_then(|d| d.sync_all()).ok();
        if fs::symlink_metadata(&self.target).is_ok() {
            check_target(&self.target, force)?;
            self.temp.exchange_with(&self.target).with_context(|| {
                format!(
                    "cannot replace the output `{}`",
                    crate::paths::shown(&self.target)
                )
            })?;
            // The scratch folder now holds the previous output.
            let previous = self.temp.path().to_path_buf();
            self.temp.remove().with_context(|| {
                format!(
                    "cannot remove the previous output, now at `{}`",
                    crate::paths::shown(&previous)
                )
            })?;
        } else {
            self.temp.move_to(&self.target).with_context(|| {
                format!(
                    "cannot move the output into `{}`",
                    crate::paths::shown(&self.target)
                )
            })?;
        }
        if let Some(parent) = self.target.parent().filter(|p| !p.as_os_str().is_empty()) {
            File::open(parent).and_then(|d| d.sync_all()).ok();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("sla-ledger-output-{name}-{}", std::process::id()));
        fs::remove_dir_all(&dir).ok();
        fs::create_dir_all(dir.join("data/calls")).unwrap();
        dir
    }

    #[test]
    fn spec_1_out_may_not_be_hold_or_lie_inside_the_data() {
        let dir = place("apart");
        let data = dir.join("data");
        std::os::unix::fs::symlink(&data, dir.join("link")).unwrap();
        for out in [
            data.clone(),
            dir.clone(),
            data.join("calls/new"),
            dir.join("link/out"),
            dir.join("nowhere/../data"),
            dir.join("data/./x/../y"),
        ] {
            let err = check_apart(&out, &[("--data", &data)]).unwrap_err();
            assert!(err.hint.is_some(), "{}", err.message);
        }
        assert!(check_apart(&dir.join("out"), &[("--data", &data)]).is_ok());
        assert!(check_apart(&dir.join("data-out"), &[("--data", &data)]).is_ok());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn spec_1_force_replaces_only_an_empty_folder_or_an_earlier_output() {
        let dir = place("force");
        let out = dir.join("out");
        fs::create_dir(&out).unwrap();
        assert!(check_target(&out, false).is_ok(), "empty");
        fs::write(out.join("notes.txt"), "mine").unwrap();
        let err = check_target(&out, true).unwrap_err();
        let text = crate::error::describe(&err);
        assert!(
            text.contains("manifest.json") && text.contains("\n  hint: "),
            "{text}"
        );
        fs::write(
            out.join("manifest.json"),
            r#"{"program":{"name":"someone-else","version":"1"}}"#,
        )
        .unwrap();
        assert!(check_target(&out, true).is_err());
        fs::write(
            out.join("manifest.json"),
            r#"{"program":{"name":"sla-ledger","version":"0.1.0"},"rows":{}}"#,
        )
        .unwrap();
        assert!(check_target(&out, true).is_ok());
        assert!(check_target(&out, false).is_err(), "not empty, no --force");
        let file = dir.join("file");
        fs::write(&file, "x").unwrap();
        for force in [false, true] {
            let err = check_target(&file, force).unwrap_err().to_string();
            assert!(err.contains("a regular file"), "{err}");
        }
        std::os::unix::fs::symlink(&out, dir.join("link")).unwrap();
        assert!(check_target(&dir.join("link"), true).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}
