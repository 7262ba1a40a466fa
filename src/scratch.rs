//! Scratch folders owned by one run (SPEC §1, §8): the output's temporary sibling and the
//! heavy step's spill folder. One concept, long for its signal and leftover handling and tests.
//!
//! Takes a place (beside `--out`, or the system temporary folder) and a kind; gives a fresh
//! folder nobody could have prepared: a random name, mode 0700, made by `mkdir` (which fails if
//! anything, a symlink included, is at the path) and locked with `flock` for the run's life.
//!
//! - Dropped, or on SIGINT / SIGTERM / SIGHUP ([`install_signal_cleanup`]), the folder is
//!   removed; a signal then ends the process with 130 / 143 / 129.
//! - A folder is made under a pending name (`….PID.new`), locked, and only then renamed to its
//!   final name, so a folder under a final name is locked for as long as its run lives. A later
//!   run in the same place removes the ones it can lock: their run is dead (a lock dies with
//!   its process). A folder that is not a real folder of this user, or is locked, is never
//!   touched; a pending one only once the process it names is gone, or it is old enough that
//!   no live run can still be naming it (the process id may have been reused).

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

/// Every scratch folder's name starts with this.
const PREFIX: &str = ".sla-ledger-";
/// The end of the name a folder has between `mkdir` and taking its lock, after the process id
/// of the run making it.
const PENDING_SUFFIX: &str = ".new";
/// A pending folder older than this was left by a run killed between `mkdir` and `rename`,
/// even if a process with the id it names is running now.
const PENDING_GRACE: Duration = Duration::from_secs(60);
/// The kinds of scratch folder this program makes.
const KINDS: [&str; 3] = ["out", "spill", "validate"];
const MODE: u32 = 0o700;

/// The scratch folders alive in this process. Held while a folder is made, published or
/// removed, and by the signal cleanup until the process exits, so a rename never interleaves
/// with a removal.
static LIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn live() -> MutexGuard<'static, Vec<PathBuf>> {
    LIVE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[derive(Debug, thiserror::Error)]
pub enum ScratchError {
    #[error(
        "cannot create a scratch folder in `{}`: the folder must exist, be writable by this user and have free space",
        crate::paths::shown(place)
    )]
    Create {
        place: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot lock the scratch folder `{}`", crate::paths::shown(path))]
    Lock {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// A fresh folder owned by this run: random name, mode 0700, created with `mkdir`, removed on
/// drop and on SIGINT / SIGTERM / SIGHUP.
#[derive(Debug)]
pub struct ScratchDir {
    path: PathBuf,
    /// The folder opened and `flock`ed: proof to later runs that this one is alive.
    _lock: File,
    /// False once the folder was moved into place and is no longer scratch.
    armed: bool,
}

impl ScratchDir {
    /// A scratch folder in `target`'s parent (the current folder for a bare name).
    pub fn beside(target: &Path, kind: &'static str) -> Result<ScratchDir, ScratchError> {
        let place = match target.parent().filter(|p| !p.as_os_str().is_empty()) {
            Some(parent) => parent.to_path_buf(),
            None => PathBuf::from("."),
        };
        create(&place, kind)
    }

    /// A scratch folder in the system temporary folder.
    pub fn in_temp(kind: &'static str) -> Result<ScratchDir, ScratchError> {
        create(&std::env::temp_dir(), kind)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Renames the folder to `target`, which must not exist; it is then no longer scratch.
    pub fn move_to(mut self, target: &Path) -> io::Result<()> {
        let mut live = live();
        rename_noreplace(&self.path, target)?;
        live.retain(|p| p != &self.path);
        self.armed = false;
        Ok(())
    }

    /// Swaps the folder with `target` in one step: `target` then holds this folder's content,
    /// and this folder's path what was at `target`, removed with it.
    pub fn exchange_with(&self, target: &Path) -> io::Result<()> {
        let _live = live();
        exchange(&self.path, target)
    }

    /// Removes the folder now, reporting a failure (drop ignores it).
    pub fn remove(mut self) -> io::Result<()> {
        let mut live = live();
        live.retain(|p| p != &self.path);
        self.armed = false;
        match fs::remove_dir_all(&self.path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if self.armed {
            let mut live = live();
            live.retain(|p| p != &self.path);
            fs::remove_dir_all(&self.path).ok();
        }
    }
}

fn create(place: &Path, kind: &'static str) -> Result<ScratchDir, ScratchError> {
    debug_assert!(KINDS.contains(&kind), "unknown scratch kind {kind}");
    remove_dead_leftovers(place);
    let failed = |source| ScratchError::Create {
        place: place.to_path_buf(),
        source,
    };
    // Held from `mkdir` to registration: a signal either finds nothing or the whole folder.
    let mut live = live();
    let (pending, path) = loop {
        let random = getrandom::u64()
            .map_err(|e| failed(io::Error::other(format!("no random numbers: {e}"))))?;
        let name = format!("{PREFIX}{kind}-{random:016x}");
        let path = place.join(name);
        let pending = pending_name(&path);
        match DirBuilder::new().mode(MODE).create(&pending) {
            Ok(()) => break (pending, path),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(failed(e)),
        }
    };
    let locked = open_dir(&pending).and_then(|dir| {
        // The umask may have cleared bits; nothing else may have been added.
        dir.set_permissions(fs::Permissions::from_mode(MODE))?;
        if try_lock(&dir)? {
            Ok(dir)
        } else {
            Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "another process holds its lock",
            ))
        }
    });
    let lock = match locked.and_then(|dir| rename_noreplace(&pending, &path).map(|()| dir)) {
        Ok(lock) => lock,
        Err(source) => {
            fs::remove_dir(&pending).ok();
            return Err(ScratchError::Lock {
                path: pending,
                source,
            });
        }
    };
    live.push(path.clone());
    Ok(ScratchDir {
        path,
        _lock: lock,
        armed: true,
    })
}

/// Opens a folder itself, never through a symlink.
fn open_dir(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(path)
}

/// Takes an exclusive `flock` without waiting; false when another open file holds it.
fn try_lock(dir: &File) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    // SAFETY: `flock` only reads the descriptor, which `dir` keeps open for the call.
    let rc = unsafe { libc::flock(dir.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(err)
    }
}

/// `path` under its pending name, which names this process.
fn pending_name(path: &Path) -> PathBuf {
    let mut pending = path.as_os_str().to_owned();
    pending.push(format!(".{}{PENDING_SUFFIX}", std::process::id()));
    PathBuf::from(pending)
}

/// What the rest of a name after [`PREFIX`] says about a folder.
#[derive(Debug, PartialEq, Eq)]
enum ScratchName {
    /// `kind-<16 hex>`: a folder its run has locked.
    Final,
    /// `kind-<16 hex>.<pid>.new`: between `mkdir` and lock, made by process `pid`.
    Pending { pid: u32 },
}

/// Recognises `kind-<16 hex>` and `kind-<16 hex>.<pid>.new`; anything else is not ours.
fn scratch_name(rest: &str) -> Option<ScratchName> {
    let (stem, name) = match rest.strip_suffix(PENDING_SUFFIX) {
        Some(pending) => {
            let (stem, pid) = pending.rsplit_once('.')?;
            if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let pid = pid.parse().ok()?;
            (stem, ScratchName::Pending { pid })
        }
        None => (rest, ScratchName::Final),
    };
    let (kind, random) = stem.split_once('-')?;
    let ours = KINDS.contains(&kind)
        && random.len() == 16
        && random.bytes().all(|b| b.is_ascii_hexdigit());
    ours.then_some(name)
}

/// False only when no process with this id exists (one of another user's counts as running).
fn process_is_running(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 sends nothing; `kill` only checks that the process exists.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Removes the scratch folders in `place` whose run is dead: named as ours, a real folder of
/// this user, and lockable (a live run holds its lock). Says so for each one on stderr.
fn remove_dead_leftovers(place: &Path) {
    let Ok(entries) = fs::read_dir(place) else {
        return;
    };
    // SAFETY: `geteuid` has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(PREFIX)) else {
            continue;
        };
        let Some(scratch) = scratch_name(rest) else {
            continue;
        };
        let path = entry.path();
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if !meta.is_dir() || meta.uid() != uid {
            continue;
        }
        let age = meta
            .modified()
            .ok()
            .and_then(|m| SystemTime::now().duration_since(m).ok());
        if let ScratchName::Pending { pid } = scratch {
            let young = age.is_none_or(|a| a < PENDING_GRACE);
            if young && process_is_running(pid) {
                continue;
            }
        }
        let Ok(dir) = open_dir(&path) else {
            continue;
        };
        if !try_lock(&dir).unwrap_or(false) {
            continue;
        }
        // Locked by us now, and held during the removal.
        match fs::remove_dir_all(&path) {
            Ok(()) => tracing::warn!(
                path = %crate::paths::shown(&path),
                "removed a scratch folder left by an sla-ledger run that is no longer running"
            ),
            Err(e) => tracing::warn!(
                path = %crate::paths::shown(&path),
                error = %e,
                "cannot remove a scratch folder left by an sla-ledger run that is no longer running"
            ),
        }
        drop(dir);
    }
}

/// On SIGINT, SIGTERM or SIGHUP: removes every live scratch folder, then exits with 128 plus
/// the signal's number (130, 143, 129). Call once, early in `main`.
pub fn install_signal_cleanup() -> io::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    std::thread::Builder::new()
        .name("signal-cleanup".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                // Kept locked until exit: no folder is made or published after this point.
                let live = live();
                for path in live.iter() {
                    remove_while_written(path);
                }
                tracing::warn!(
                    signal = signal_name(signal),
                    removed = live.len(),
                    "interrupted; the scratch folders were removed and the output left as it was"
                );
                crate::telemetry::finish();
                std::process::exit(128 + signal);
            }
        })?;
    Ok(())
}

/// Removes a folder other threads may still be creating files in. It is first renamed to its
/// pending name, so nothing more can be created through its path (a thread that tries gets
/// an error, which no longer matters); what is inside is then removed. Should the process die
/// in between, the pending name is a leftover the next run removes.
fn remove_while_written(path: &Path) {
    let aside = pending_name(path);
    let target = if fs::rename(path, &aside).is_ok() {
        aside
    } else {
        path.to_path_buf()
    };
    for _ in 0..16 {
        match fs::remove_dir_all(&target) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => continue,
            _ => return,
        }
    }
}

/// Returns at once, unless a signal's cleanup is under way; then never (it ends the process),
/// so a run that failed because its folders vanished exits with the signal's status.
pub fn wait_for_signal_cleanup() {
    drop(live());
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        libc::SIGHUP => "SIGHUP",
        _ => "signal",
    }
}

/// `rename` that fails if `to` exists (an empty folder there would otherwise be replaced).
#[cfg(target_os = "linux")]
fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    renameat2(from, to, libc::RENAME_NOREPLACE)
}

#[cfg(not(target_os = "linux"))]
fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    if fs::symlink_metadata(to).is_ok() {
        return Err(io::Error::from(io::ErrorKind::AlreadyExists));
    }
    fs::rename(from, to)
}

/// Swaps two paths in one step.
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> io::Result<()> {
    renameat2(a, b, libc::RENAME_EXCHANGE)
}

/// Elsewhere: move the previous output aside, then the new one in. A crash between the two
/// renames leaves the previous output in the hidden sibling.
#[cfg(not(target_os = "linux"))]
fn exchange(a: &Path, b: &Path) -> io::Result<()> {
    let aside = a.with_extension("previous");
    fs::rename(b, &aside)?;
    if let Err(e) = fs::rename(a, b) {
        fs::rename(&aside, b).ok();
        return Err(e);
    }
    fs::rename(&aside, a)
}

#[cfg(target_os = "linux")]
fn renameat2(a: &Path, b: &Path, flags: libc::c_uint) -> io::Result<()> {
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
            flags,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("sla-ledger-scratch-{name}-{}", std::process::id()));
        fs::remove_dir_all(&dir).ok();
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn spec_8_a_scratch_folder_is_fresh_private_and_removed_on_drop() {
        let dir = place("fresh");
        let scratch = ScratchDir::beside(&dir.join("out"), "spill").unwrap();
        let meta = fs::symlink_metadata(scratch.path()).unwrap();
        assert!(meta.is_dir());
        assert_eq!(meta.permissions().mode() & 0o777, 0o700);
        assert!(fs::read_dir(scratch.path()).unwrap().next().is_none());
        let other = ScratchDir::beside(&dir.join("out"), "spill").unwrap();
        assert_ne!(scratch.path(), other.path());
        drop((scratch, other));
        assert!(names(&dir).is_empty(), "{:?}", names(&dir));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn spec_8_a_live_folder_is_kept_and_a_dead_one_removed() {
        let dir = place("leftovers");
        let alive = ScratchDir::beside(&dir.join("a"), "out").unwrap();
        // Dead: a folder under a final name whose lock nobody holds.
        let dead = dir.join(".sla-ledger-spill-00112233445566ff");
        fs::create_dir(&dead).unwrap();
        fs::write(dead.join("bucket-0.keys"), b"x").unwrap();
        // Not ours by name, a symlink, and a fresh pending folder: all left alone.
        let foreign = dir.join(".sla-ledger-spill-not-hex");
        fs::create_dir(&foreign).unwrap();
        let link = dir.join(".sla-ledger-out-00112233445566aa");
        std::os::unix::fs::symlink(&foreign, &link).unwrap();
        let pending = dir.join(format!(
            ".sla-ledger-out-00112233445566bb.{}.new",
            std::process::id()
        ));
        fs::create_dir(&pending).unwrap();
        let next = ScratchDir::beside(&dir.join("b"), "out").unwrap();
        assert!(!dead.exists());
        for kept in [alive.path(), &foreign, &link, &pending, next.path()] {
            assert!(
                fs::symlink_metadata(kept).is_ok(),
                "{} was removed",
                kept.display()
            );
        }
        drop((alive, next));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn spec_1_moving_a_scratch_folder_into_place_keeps_it() {
        let dir = place("move");
        let scratch = ScratchDir::beside(&dir.join("out"), "out").unwrap();
        fs::write(scratch.path().join("ledger.csv"), b"x").unwrap();
        fs::create_dir(dir.join("taken")).unwrap();
        let scratch_path = scratch.path().to_path_buf();
        // An existing (even empty) folder is never replaced by a move.
        assert!(rename_noreplace(&scratch_path, &dir.join("taken")).is_err());
        scratch.move_to(&dir.join("out")).unwrap();
        assert_eq!(names(&dir), ["out", "taken"]);
        assert!(live().iter().all(|p| p != &scratch_path));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn scratch_names_are_recognised_exactly() {
        use ScratchName::{Final, Pending};
        assert_eq!(scratch_name("spill-0123456789abcdef"), Some(Final));
        assert_eq!(
            scratch_name("out-0123456789abcdef.42.new"),
            Some(Pending { pid: 42 })
        );
        for not_ours in [
            "out-0123456789abcdef.new",
            "out-0123456789abcdef..new",
            "out-0123456789abcdef.-1.new",
            "out-0123456789abcdef.99999999999.new",
            "spill-0123456789abcde",
            "other-0123456789abcdef",
            "spill-0123456789abcdeg",
        ] {
            assert_eq!(scratch_name(not_ours), None, "{not_ours}");
        }
    }

    #[test]
    fn spec_8_a_pending_folder_of_a_dead_process_is_removed_at_once() {
        let dir = place("pending");
        // A process that has ended: its id names no running process until it is reused.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead_pid = child.id();
        child.wait().unwrap();
        let dead = dir.join(format!(".sla-ledger-spill-00112233445566cc.{dead_pid}.new"));
        fs::create_dir(&dead).unwrap();
        let running = dir.join(format!(
            ".sla-ledger-spill-00112233445566dd.{}.new",
            std::process::id()
        ));
        fs::create_dir(&running).unwrap();
        let next = ScratchDir::beside(&dir.join("b"), "out").unwrap();
        assert!(!dead.exists() || process_is_running(dead_pid));
        assert!(
            running.exists(),
            "a running process's pending folder was removed"
        );
        drop(next);
        fs::remove_dir_all(&dir).unwrap();
    }
}
