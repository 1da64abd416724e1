//! Deleting a directory tree without ever leaving it (mechanism for
//! `destroy`). The walk goes by directory descriptors: every directory is
//! opened relative to its parent's descriptor with `O_NOFOLLOW|O_DIRECTORY`,
//! so a symlink is never followed (it is unlinked like a file), and every
//! entry's mount id is compared with the top directory's: an entry on another
//! mount, or with something mounted on it, stops the walk with its path, so
//! nothing is ever deleted through a mount. Entries are removed with
//! `unlinkat` relative to the same descriptors.
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

use crate::sys;

#[derive(Debug, thiserror::Error)]
pub enum RemoveError {
    #[error("{0} is a mount point (or on another filesystem); stopped there: unmount it, then try again")]
    MountPoint(PathBuf),
    #[error("{path}: {source}")]
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
}

/// Deletes `dir` (an absolute path with no symlink in its last component)
/// and everything in it, never following a symlink and never crossing into
/// another mount. `dir` itself must not be a mount point.
pub fn remove_tree(dir: &Path) -> Result<Removed, RemoveError> {
    let (parent_fd, name) = open_parent(dir)?;
    let mut done = empty_tree_at(parent_fd.as_fd(), name, dir)?;
    unlinkat(parent_fd.as_fd(), name, UnlinkatFlags::RemoveDir).map_err(io_at(dir))?;
    done.dirs += 1;
    Ok(done)
}

/// Deletes everything in `dir` but `dir` itself, with the same care as `remove_tree`.
pub fn empty_tree(dir: &Path) -> Result<Removed, RemoveError> {
    let (parent_fd, name) = open_parent(dir)?;
    empty_tree_at(parent_fd.as_fd(), name, dir)
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

fn empty_tree_at(parent: BorrowedFd, name: &OsStr, dir: &Path) -> Result<Removed, RemoveError> {
    let top = open_dir(parent, name).map_err(io_at(dir))?;
    let (mount, is_root) = sys::mount_of(top.as_fd()).map_err(|source| RemoveError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    if is_root {
        return Err(RemoveError::MountPoint(dir.to_path_buf()));
    }
    let mut done = Removed::default();
    empty_dir(top.as_fd(), dir, mount, true, &mut done)?;
    Ok(done)
}

fn open_dir(parent: BorrowedFd, name: &OsStr) -> nix::Result<OwnedFd> {
    openat(
        parent,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

fn names(dir: BorrowedFd, path: &Path) -> Result<Vec<OsString>, RemoveError> {
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
    Ok(out)
}

/// Removes everything in the directory `dir` (at `path`, for messages),
/// which lies on `mount`. At the top, what marks a root filesystem
/// (`usr`, `bin`, then `chroot.d`) goes last, so that a destroy that was
/// interrupted can be run again on what is left.
fn empty_dir(
    dir: BorrowedFd,
    path: &Path,
    mount: u64,
    top: bool,
    done: &mut Removed,
) -> Result<(), RemoveError> {
    let mut names = names(dir, path)?;
    if top {
        names.sort_by_key(|n| match n.as_bytes() {
            b"usr" => 1,
            b"bin" => 2,
            b"chroot.d" => 3,
            _ => 0,
        });
    }
    for name in names {
        let at = path.join(&name);
        let e = match sys::entry_at(dir, &name) {
            Ok(e) => e,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(source) => return Err(RemoveError::Io { path: at, source }),
        };
        if e.mount_id != mount || e.mount_root {
            return Err(RemoveError::MountPoint(at));
        }
        if e.is_dir() {
            let child = open_dir(dir, &name).map_err(io_at(&at))?;
            // What was opened is what was checked: a directory swapped in
            // meanwhile (or a mount placed on it) is caught here.
            match sys::mount_of(child.as_fd()) {
                Ok((id, root)) if id == mount && !root => {}
                Ok(_) => return Err(RemoveError::MountPoint(at)),
                Err(source) => return Err(RemoveError::Io { path: at, source }),
            }
            empty_dir(child.as_fd(), &at, mount, false, done)?;
            drop(child);
            unlink(dir, &name, &at, UnlinkatFlags::RemoveDir)?;
            done.dirs += 1;
        } else {
            unlink(dir, &name, &at, UnlinkatFlags::NoRemoveDir)?;
            done.others += 1;
        }
    }
    Ok(())
}

fn unlink(dir: BorrowedFd, name: &OsStr, at: &Path, how: UnlinkatFlags) -> Result<(), RemoveError> {
    match unlinkat(dir, name, how) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        // Something is mounted on it (a file bind): never deleted through.
        Err(Errno::EBUSY) => Err(RemoveError::MountPoint(at.to_path_buf())),
        Err(e) => Err(io_at(at)(e)),
    }
}
