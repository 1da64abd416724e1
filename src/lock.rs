//! Serialises the invocations that change a sandbox's state (create, on,
//! off, destroy, the start of run) with a flock on a file of DIR's own on
//! the host side: `<run dir>/lock/<dev>-<ino>` (the run dir is
//! `/run/chroot-tool`, root's, or `$CHROOT_TOOL_RUN_DIR`), named by DIR's
//! device and inode so that every spelling of DIR (a symlink, a bind
//! elsewhere) shares one lock. Nothing goes stale after a crash (a flock
//! ends with its holder) and the files go at reboot. The lock is out of
//! the sandbox's reach: a process inside that flocks its `/` (DIR itself)
//! holds nothing chroot-tool waits for.
//!
//! `create` holds the lock for its whole run, and its backend (debootstrap)
//! inherits it: a create in progress, or a backend that outlived a killed
//! create, keeps DIR locked. The other verbs refuse at once, with one line,
//! when they find DIR locked by a create in progress instead of waiting for
//! minutes; `on` and `run` also refuse a create that did not finish.
use std::fs::File;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg, OFlag};
use nix::sys::stat::Mode;

use crate::show;

pub struct Lock(Flock<File>);

impl Lock {
    /// The locked descriptor (for a child that must keep DIR locked).
    pub fn file(&self) -> &File {
        &self.0
    }
}

/// Waits for, then holds, the sandbox's exclusive lock until dropped.
/// Refuses at once when a create is in progress on `dir`.
pub fn exclusive(dir: &Path) -> Result<Lock> {
    let f = open(dir).with_context(|| format!("opening the lock of {}", show::path(dir)))?;
    let f = match try_exclusive(f) {
        Ok(l) => return Ok(l),
        Err(Busy::Held(f)) => f,
        Err(Busy::Error(e)) => {
            return Err(e).with_context(|| format!("locking {}", show::path(dir)))
        }
    };
    if crate::create::is_failed_create(dir) {
        bail!("{}", in_progress(dir));
    }
    let l = Flock::lock(f, FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .with_context(|| format!("locking {}", show::path(dir)))?;
    Ok(Lock(l))
}

/// Waits for, then holds, the exclusive lock of the sandbox whose own
/// directory has the device and inode `key` (`shown` in messages), by that
/// identity alone, never by a path that may lead elsewhere now: an
/// overlay's BASE, as its record names it.
pub fn exclusive_of(key: (u64, u64), shown: &Path) -> Result<Lock> {
    let f = open_file(&file_of(key))
        .with_context(|| format!("opening the lock of {}", show::path(shown)))?;
    let l = Flock::lock(f, FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .with_context(|| format!("locking {}", show::path(shown)))?;
    Ok(Lock(l))
}

/// The lock for `on` and `run`: also refuses a DIR whose create did not
/// finish (its log is there, its record is not): it is no root filesystem
/// to use, and the next `create` cleans it.
pub fn for_use(dir: &Path) -> Result<Lock> {
    let l = exclusive(dir)?;
    if crate::create::is_failed_create(dir) {
        bail!("{}", crate::create::unfinished(dir));
    }
    Ok(l)
}

/// Why a lock was not taken.
pub enum Busy {
    /// Another process holds it; the file is given back.
    Held(File),
    Error(io::Error),
}

/// The lock if it is free, now.
pub fn try_exclusive(f: File) -> std::result::Result<Lock, Busy> {
    match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
        Ok(l) => Ok(Lock(l)),
        Err((f, Errno::EWOULDBLOCK)) => Err(Busy::Held(f)),
        Err((_, e)) => Err(Busy::Error(e.into())),
    }
}

/// The lock file of `dir` (which must exist): named by its device and
/// inode, below the run dir. An overlay sandbox that is on shows its
/// merged view at DIR (a device of its own, major 0): its lock is still
/// named by DIR's own directory, which the view covers (`owned::covered`).
pub fn path_of(dir: &Path) -> io::Result<PathBuf> {
    let md = std::fs::metadata(dir)?;
    let (mut dev, mut ino) = (md.dev(), md.ino());
    if libc::major(dev) == 0 {
        if let Some(own) = crate::owned::covered(dir) {
            (dev, ino) = own;
        }
    }
    Ok(file_of((dev, ino)))
}

/// The lock file of the sandbox whose own directory is `(dev, ino)`.
fn file_of((dev, ino): (u64, u64)) -> PathBuf {
    crate::owned::run_dir()
        .join("lock")
        .join(format!("{dev}-{ino}"))
}

/// The lock file of `dir`, opened (made when missing: its directory 0700,
/// the file 0600, never through a symlink, a regular file only).
pub fn open(dir: &Path) -> io::Result<File> {
    open_file(&path_of(dir)?)
}

/// The lock file at `path`, opened as [`open`] does.
fn open_file(path: &Path) -> io::Result<File> {
    let at = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", show::path(path)));
    if let Some(parent) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(at)?;
    }
    let fd = nix::fcntl::openat(
        nix::fcntl::AT_FDCWD,
        path,
        OFlag::O_RDONLY
            | OFlag::O_CREAT
            | OFlag::O_NOFOLLOW
            | OFlag::O_NONBLOCK
            | OFlag::O_NOCTTY
            | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    )
    .map_err(|e| at(e.into()))?;
    let f = File::from(fd);
    if !f.metadata().map_err(at)?.is_file() {
        return Err(at(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a regular file",
        )));
    }
    Ok(f)
}

/// The one-line refusal for a DIR locked by a create in progress (or by
/// another command), naming the processes that hold it open.
pub fn in_progress(dir: &Path) -> String {
    let who = holders(dir);
    let who = if who.is_empty() {
        String::new()
    } else {
        format!(
            " (held by {})",
            who.iter()
                .map(|(pid, comm)| format!("pid {pid} {}", show::bytes(comm.as_bytes())))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    format!(
        "a create (or other command) is in progress on {}{who}; try again when it has ended",
        show::path(dir)
    )
}

/// Processes other than this one with a descriptor open on `dir`'s lock
/// file (its holders among them): pid and command name, at most eight.
pub fn holders(dir: &Path) -> Vec<(i32, String)> {
    let Ok(md) = path_of(dir).and_then(std::fs::symlink_metadata) else {
        return vec![];
    };
    let me = std::process::id() as i32;
    let mut out = vec![];
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return out;
    };
    for p in procs.flatten() {
        let Ok(pid) = p.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(p.path().join("fd")) else {
            continue;
        };
        let holds = fds.flatten().any(|fd| {
            std::fs::metadata(fd.path()).is_ok_and(|m| m.dev() == md.dev() && m.ino() == md.ino())
        });
        if holds {
            let comm = std::fs::read_to_string(p.path().join("comm")).unwrap_or_default();
            out.push((pid, comm.trim().to_string()));
            if out.len() == 8 {
                break;
            }
        }
    }
    out
}
