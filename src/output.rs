//! Atomic output (SPEC §1): everything is written into a temporary sibling of `--out`, checked,
//! then renamed into place. A failed run removes its temporary folder and leaves `--out` as it
//! was; `--force` swaps a previous output out only once the new one is complete.

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

fn sibling(target: &Path, tag: &str) -> anyhow::Result<PathBuf> {
    let name = target
        .file_name()
        .with_context(|| format!("output `{}` has no folder name", target.display()))?;
    let unique = format!(".{}.{tag}-{}", name.to_string_lossy(), std::process::id());
    Ok(target.with_file_name(unique))
}

impl StagedOutput {
    pub fn prepare(target: &Path, force: bool) -> anyhow::Result<StagedOutput> {
        check_target(target, force)?;
        if let Some(parent) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent)
                .with_context(|| format!("cannot create `{}`", parent.display()))?;
        }
        let temp = sibling(target, "tmp")?;
        if temp.exists() {
            fs::remove_dir_all(&temp)
                .with_context(|| format!("cannot clear stale `{}`", temp.display()))?;
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

    /// Moves the finished folder into place.
    pub fn commit(mut self, force: bool) -> anyhow::Result<()> {
        File::open(&self.temp).and_then(|d| d.sync_all()).ok();
        let previous = if self.target.exists() {
            check_target(&self.target, force)?;
            let old = sibling(&self.target, "old")?;
            fs::rename(&self.target, &old).with_context(|| {
                format!(
                    "cannot move the previous output `{}` aside",
                    self.target.display()
                )
            })?;
            Some(old)
        } else {
            None
        };
        if let Err(err) = fs::rename(&self.temp, &self.target) {
            if let Some(old) = &previous {
                fs::rename(old, &self.target).ok();
            }
            return Err(err).with_context(|| {
                format!("cannot move the output into `{}`", self.target.display())
            });
        }
        self.committed = true;
        if let Some(old) = previous {
            fs::remove_dir_all(&old).with_context(|| {
                format!("cannot remove the previous output `{}`", old.display())
            })?;
        }
        Ok(())
    }
}

impl Drop for StagedOutput {
    fn drop(&mut self) {
        if !self.committed {
            fs::remove_dir_all(&self.temp).ok();
        }
    }
}
