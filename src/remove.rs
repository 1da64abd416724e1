//! Deleting a directory tree without ever leaving it (mechanism for
//! `destroy`). The walk goes by directory descriptors: every directory is
//! opened relative to its parent's descriptor with `O_NOFOLLOW|O_DIRECTORY`,
//! so a symlink is never followed (it is unlinked like a file), and every
//! entry's mount id is compared with the top directory's: an entry on another
//! mount, or with something mounted on it, stops the walk with its path, so
//! nothing is ever deleted through a mount. Entries are removed with
//! `unlinkat` relative to the same descriptors. The walk is iterative and
//! holds one directory descriptor at a time, so no depth of tree makes it
//! run out of descriptors or stack. A top directory that is itself a mount
//! point (the user's) is emptied and kept.
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::Mode;
use nix::unistd::{unlinkat, UnlinkatFlags};

use crate::{show, sys};

#[derive(Debug, thiserror::Error)]
pub enum RemoveError {
    #[error("{} is a mount point (or on another filesystem); stopped there: unmount it, then try again", show::path(.0))]
    MountPoint(PathBuf),
    #[error("{} is a mount point of a filesystem that is also mounted elsewhere, or of a part of one; refusing to empty it: unmount it first", show::path(.0))]
    NotOwnFilesystem(PathBuf),
    #[error("{}: {source}", show::path(path))]
    Io { path: PathBuf, source: io::Error },
}

fn io_at(path: &Path) -> impl FnOnce(Errno) -> RemoveError + '_ {
    move |e| RemoveError::Io {
        path: path.to_path_buf(),
        source: e.into(),
    }
}

/// What was deleted.
#[derive(Debug, Default, Clone, Copy)]
pub struct Removed {
    pub dirs: u64,
    pub others: u64,
    /// The top directory is a mount point: emptied, not deleted.
    pub kept: bool,
}

/// Deletes `dir` (an absolute path with no symlink in its last component)
/// and everything in it, never following a symlink and never crossing into
/// another mount. When `dir` is itself a mount point (one the user made),
/// it is emptied and stays: `Removed::kept` says so.
pub fn remove_tree(dir: &Path) -> Result<Removed, RemoveError> {
    let (parent_fd, name) = open_parent(dir)?;
    let top = open_dir(parent_fd.as_fd(), name).map_err(io_at(dir))?;
    let mut done = empty_open(top, dir)?;
    if done.kept {
        return Ok(done);
    }
    unlinkat(parent_fd.as_fd(), name, UnlinkatFlags::RemoveDir).map_err(io_at(dir))?;
    done.dirs += 1;
    Ok(done)
}

/// Deletes everything in `dir` but `dir` itself, with the same care as
/// `remove_tree` (`dir` may be a mount point: what is on that mount goes).
pub fn empty_tree(dir: &Path) -> Result<Removed, RemoveError> {
    // Asked nothing, it always empties.
    Ok(empty_tree_if(dir, |_| true)?.unwrap_or_default())
}

/// [`empty_tree`], when `may` says so of the directory as opened (its
/// descriptor): what is looked at is what is emptied, whatever `dir`'s
/// path leads to meanwhile. `None` when `may` refused.
pub fn empty_tree_if(
    dir: &Path,
    may: impl FnOnce(BorrowedFd) -> bool,
) -> Result<Option<Removed>, RemoveError> {
    let (parent_fd, name) = open_parent(dir)?;
    let top = open_dir(parent_fd.as_fd(), name).map_err(io_at(dir))?;
    if !may(top.as_fd()) {
        return Ok(None);
    }
    empty_open(top, dir).map(Some)
}

fn open_parent(dir: &Path) -> Result<(OwnedFd, &OsStr), RemoveError> {
    let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) else {
        return Err(RemoveError::Io {
            path: dir.to_path_buf(),
            source: io::Error::from_raw_os_error(libc::EINVAL),
        });
    };
    let parent_fd = sys::open_root(parent).map_err(|source| RemoveError::Io {
        path: parent.to_path_buf(),
        source,
    })?;
    Ok((parent_fd, name))
}

/// Empties `top`, the directory `dir` as opened.
fn empty_open(top: OwnedFd, dir: &Path) -> Result<Removed, RemoveError> {
    let (mount, is_root) = sys::mount_of(top.as_fd()).map_err(|source| RemoveError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    if is_root {
        own_filesystem(mount, dir)?;
    }
    let mut done = Removed {
        kept: is_root,
        ..Removed::default()
    };
    empty_dir(top, dir, mount, &mut done)?;
    Ok(done)
}

/// A top directory that is a mount point is emptied only when that mount
/// shows its filesystem whole (its root is the filesystem's root) and is
/// its only mount here: never a bind of a host directory, nor a filesystem
/// that is also mounted elsewhere (a bind of `/` on DIR).
fn own_filesystem(mount: u64, dir: &Path) -> Result<(), RemoveError> {
    let mounts = crate::mountinfo::read().map_err(|source| RemoveError::Io {
        path: PathBuf::from("/proc/self/mountinfo"),
        source,
    })?;
    let Some(m) = mounts.iter().find(|m| m.id == mount) else {
        return Err(RemoveError::NotOwnFilesystem(dir.to_path_buf()));
    };
    if !crate::mountinfo::is_whole_and_alone(m, &mounts) {
        return Err(RemoveError::NotOwnFilesystem(dir.to_path_buf()));
    }
    Ok(())
}

fn open_dir(parent: BorrowedFd, name: &OsStr) -> nix::Result<OwnedFd> {
    openat(
        parent,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// The names in `dir`, the order in which they go: at the top, what marks
/// a root filesystem (`usr`, `bin`, then `chroot.d`) last, so that a
/// destroy that was interrupted can be run again on what is left. Popped
/// from the end.
fn names(dir: BorrowedFd, path: &Path, top: bool) -> Result<Vec<OsString>, RemoveError> {
    let mut d = Dir::openat(
        dir,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(io_at(path))?;
    let mut out = vec![];
    for e in d.iter() {
        let e = e.map_err(io_at(path))?;
        let n = e.file_name().to_bytes();
        if n != b"." && n != b".." {
            out.push(OsStr::from_bytes(n).to_os_string());
        }
    }
    if top {
        out.sort_by_key(|n| match n.as_bytes() {
            b"usr" => 1,
            b"bin" => 2,
            b"chroot.d" => 3,
            _ => 0,
        });
    }
    out.reverse();
    Ok(out)
}

/// One directory of the walk below the current one: its name in its
/// parent, its identity, and the names in it still to delete.
struct Level {
    name: OsString,
    id: (u64, u64),
    todo: Vec<OsString>,
}

fn identity(fd: BorrowedFd, path: &Path) -> Result<(u64, u64), RemoveError> {
    let st = nix::sys::stat::fstat(fd).map_err(io_at(path))?;
    Ok((st.st_dev, st.st_ino))
}

/// Removes everything in the directory `top` (at `path`, for messages),
/// which lies on `mount`. The walk is iterative and holds one directory
/// descriptor at a time, whatever the depth: it goes down by `openat`
/// (never following a symlink, never onto another mount) and back up by
/// `openat("..")`, checking that it came back to the very directory it
/// left (device and inode) on the same mount; a directory moved away
/// meanwhile stops the walk.
fn empty_dir(top: OwnedFd, path: &Path, mount: u64, done: &mut Removed) -> Result<(), RemoveError> {
    let mut at = path.to_path_buf();
    let top_id = identity(top.as_fd(), &at)?;
    let mut cur = top;
    let mut stack: Vec<Level> = vec![];
    let mut todo = names(cur.as_fd(), &at, true)?;
    loop {
        let Some(name) = todo.pop() else {
            // This directory is empty: up to its parent, then delete it.
            let Some(level) = stack.pop() else {
                return Ok(());
            };
            let parent = open_dir(cur.as_fd(), OsStr::new("..")).map_err(io_at(&at))?;
            at.pop();
            let want = stack.last().map_or(top_id, |l| l.id);
            let moved = || RemoveError::Io {
                path: at.join(&level.name),
                source: io::Error::other("moved while it was being deleted; stopped"),
            };
            if identity(parent.as_fd(), &at)? != want {
                return Err(moved());
            }
            match sys::mount_of(parent.as_fd()) {
                Ok((id, _)) if id == mount => {}
                Ok(_) => return Err(RemoveError::MountPoint(at)),
                Err(source) => return Err(RemoveError::Io { path: at, source }),
            }
            cur = parent;
            let child = at.join(&level.name);
            unlink(cur.as_fd(), &level.name, &child, UnlinkatFlags::RemoveDir)?;
            done.dirs += 1;
            todo = level.todo;
            continue;
        };
        let child = at.join(&name);
        let e = match sys::entry_at(cur.as_fd(), &name) {
            Ok(e) => e,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(source) => {
                return Err(RemoveError::Io {
                    path: child,
                    source,
                })
            }
        };
        if e.mount_id != mount || e.mount_root {
            return Err(RemoveError::MountPoint(child));
        }
        if !e.is_dir() {
            unlink(cur.as_fd(), &name, &child, UnlinkatFlags::NoRemoveDir)?;
            done.others += 1;
            continue;
        }
        let fd = open_dir(cur.as_fd(), &name).map_err(io_at(&child))?;
        // What was opened is what was checked: a directory swapped in
        // meanwhile (or a mount placed on it) is caught here.
        match sys::mount_of(fd.as_fd()) {
            Ok((id, root)) if id == mount && !root => {}
            Ok(_) => return Err(RemoveError::MountPoint(child)),
            Err(source) => {
                return Err(RemoveError::Io {
                    path: child,
                    source,
                })
            }
        }
        let id = identity(fd.as_fd(), &child)?;
        let inner = names(fd.as_fd(), &child, false)?;
        stack.push(Level {
            name,
            id,
            todo: std::mem::replace(&mut todo, inner),
        });
        cur = fd;
        at = child;
    }
}
fn unlink(dir: BorrowedFd, name: &OsStr, at: &Path, how: UnlinkatFlags) -> Result<(), RemoveError> {
    match unlinkat(dir, name, how) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        // Something is mounted on it (a file bind): never deleted through.
        Err(Errno::EBUSY) => Err(RemoveError::MountPoint(at.to_path_buf())),
        Err(e) => Err(io_at(at)(e)),
    }
}
