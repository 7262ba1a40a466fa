//! Atomic output (SPEC §1): everything is written into a temporary sibling of `--out`, checked,
//! then renamed into place.
//!
//! - A failed run removes its temporary folder and leaves `--out` exactly as it was.
//! - `--force` swaps the new folder with the previous one in a single atomic exchange (Linux
//!   `renameat2(RENAME_EXCHANGE)`), so `--out` always holds either the old or the new output.
//! - A run killed mid-way can leave only a hidden `.NAME.tmp-PID` sibling, never a half-written
//!   `--out`; the next run removes such leftovers of processes that no longer exist.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

/// An output folder being written.
pub struct StagedOutput {
    temp: PathBuf,
    target: PathBuf,
    committed: bool,
}

fn is_non_empty_dir(path: &Path) -> std::io::Result<bool> {
    Ok(fs::read_dir(path)?.next().is_some())
}

/// Fails unless `target` is absent or an empty folder (or `force`).
pub fn check_target(target: &Path, force: bool) -> anyhow::Result<()> {
    if !target.exists() || force {
        return Ok(());
    }
    if !target.is_dir() {
        bail!(
            "output `{}` exists and is not a folder\n  hint: choose another `--out`",
            target.display()
        );
    }
    if is_non_empty_dir(target)
        .with_context(|| format!("cannot list output `{}`", target.display()))?
    {
        bail!(
            "output `{}` exists and is not empty; it was left untouched\n  hint: pass `--force` to replace it, or choose another `--out`",
            target.display()
        );
    }
    Ok(())
}

fn temp_prefix(target: &Path) -> anyhow::Result<String> {
    let name = target
        .file_name()
        .with_context(|| format!("output `{}` has no folder name", target.display()))?;
    Ok(format!(".{}.tmp-", name.to_string_lossy()))
}

/// Removes `.NAME.tmp-PID` siblings left by killed runs whose process is gone.
fn remove_stale_siblings(target: &Path, prefix: &str) {
    let parent = match target.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(p) => p.to_path_buf(),
        None => PathBuf::from("."),
    };
    let Ok(entries) = fs::read_dir(&parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(prefix)
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !process_exists(pid) {
            fs::remove_dir_all(entry.path()).ok();
        }
    }
}

fn process_exists(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    // Where /proc is unavailable, assume alive: leaving a hidden folder is safer than
    // removing another run's work.
    !Path::new("/proc/self").exists() || Path::new(&format!("/proc/{pid}")).exists()
}

impl StagedOutput {
    pub fn prepare(target: &Path, force: bool) -> anyhow::Result<StagedOutput> {
        check_target(target, force)?;
        if let Some(parent) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent)
                .with_context(|| format!("cannot create `{}`", parent.display()))?;
        }
        let prefix = temp_prefix(target)?;
        remove_stale_siblings(target, &prefix);
        let temp = target.with_file_name(format!("{prefix}{}", std::process::id()));
        if temp.exists() {
            fs::remove_dir_all(&temp)
                .with_context(|| format!("cannot clear `{}`", temp.display()))?;
        }
        fs::create_dir(&temp).with_context(|| format!("cannot create `{}`", temp.display()))?;
        Ok(StagedOutput {
            temp,
            target: target.to_path_buf(),
            committed: false,
        })
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.temp.join(name)
    }

    /// Writes one file completely (flushed and synced) or fails.
    pub fn write(
        &self,
        name: &str,
        fill: impl FnOnce(&mut BufWriter<File>) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let path = self.path(name);
        let file =
            File::create(&path).with_context(|| format!("cannot create `{}`", path.display()))?;
        let mut writer = BufWriter::new(file);
        fill(&mut writer).with_context(|| format!("cannot write `{name}`"))?;
        writer.flush()?;
        writer.get_ref().sync_all()?;
        Ok(())
    }

    /// Moves the finished folder into place; with `force`, atomically exchanges it with the
    /// previous output, which is then removed.
    pub fn commit(mut self, force: bool) -> anyhow::Result<()> {
        File::open(&self.temp).and_then(|d| d.sync_all()).ok();
        if self.target.exists() {
            check_target(&self.target, force)?;
            exchange(&self.temp, &self.target).with_context(|| {
                format!("cannot replace the output `{}`", self.target.display())
            })?;
            // `temp` now holds the previous output.
            self.committed = true;
            fs::remove_dir_all(&self.temp).with_context(|| {
                format!(
                    "cannot remove the previous output, now at `{}`",
                    self.temp.display()
                )
            })?;
        } else {
            fs::rename(&self.temp, &self.target).with_context(|| {
                format!("cannot move the output into `{}`", self.target.display())
            })?;
            self.committed = true;
        }
        if let Some(parent) = self.target.parent().filter(|p| !p.as_os_str().is_empty()) {
            File::open(parent).and_then(|d| d.sync_all()).ok();
        }
        Ok(())
    }
}

/// Swaps two paths in one step.
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let a = CString::new(a.as_os_str().as_bytes())?;
    let b = CString::new(b.as_os_str().as_bytes())?;
    // SAFETY: both paths are valid NUL-terminated strings that outlive the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Elsewhere: move the previous output aside, then the new one in. A crash between the two
/// renames leaves the previous output in the hidden sibling.
#[cfg(not(target_os = "linux"))]
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    let aside = a.with_extension("previous");
    fs::rename(b, &aside)?;
    if let Err(e) = fs::rename(a, b) {
        fs::rename(&aside, b).ok();
        return Err(e);
    }
    fs::rename(&aside, a)
}

impl Drop for StagedOutput {
    fn drop(&mut self) {
        if !self.committed {
            fs::remove_dir_all(&self.temp).ok();
        }
    }
}
