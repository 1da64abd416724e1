//! Disk use of a sandbox (`list --size`, `status --size`): the blocks of
//! every file and directory on DIR's own mount, as `du -sx` counts them but
//! by mount id, so that neither a mount of the sandbox (`/proc`, a `[bind]`
//! of a host directory on the same filesystem) nor a mount the user made
//! below DIR is counted. A file with several hard links is counted once. The
//! walk goes by directory descriptors (`O_NOFOLLOW`): a symlink is never
//! followed.
use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::dir::Dir;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::Mode;
use serde::Serialize;

use crate::sys;

/// Deeper directories than this are not entered (and the sum is partial):
/// the walk holds one descriptor per level.
const MAX_DEPTH: usize = 256;

/// What the walk found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Bytes allocated (512-byte blocks), each inode once.
    pub bytes: u64,
    /// Directories that could not be read (permissions, removed meanwhile,
    /// too deep): when not 0, `bytes` is a lower bound.
    pub unreadable: u64,
}

/// The disk use of the tree at `dir`, never leaving its mount.
pub fn disk_use(dir: &Path) -> io::Result<Usage> {
    let top = nix::fcntl::openat(
        nix::fcntl::AT_FDCWD,
        dir,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let (mount, _) = sys::mount_of(top.as_fd())?;
    let st = nix::sys::stat::fstat(top.as_fd())?;
    let mut u = Usage {
        bytes: st.st_blocks as u64 * 512,
        unreadable: 0,
    };
    let mut seen: HashSet<u64> = HashSet::new();
    let mut stack: Vec<(OwnedFd, Vec<OsString>)> = vec![];
    match names(top.as_fd()) {
        Ok(n) => stack.push((top, n)),
        Err(_) => u.unreadable += 1,
    }
    loop {
        let depth = stack.len();
        let Some((fd, todo)) = stack.last_mut() else {
            break;
        };
        let Some(name) = todo.pop() else {
            stack.pop();
            continue;
        };
        let Ok(e) = sys::entry_at(fd.as_fd(), &name) else {
            continue;
        };
        if e.mount_id != mount || e.mount_root {
            continue;
        }
        if e.nlink <= 1 || e.is_dir() || seen.insert(e.ino) {
            u.bytes += e.blocks * 512;
        }
        if !e.is_dir() {
            continue;
        }
        if depth >= MAX_DEPTH {
            u.unreadable += 1;
            continue;
        }
        let child = openat(
            fd.as_fd(),
            name.as_os_str(),
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        );
        // What was opened is what was checked: a mount placed meanwhile is left out.
        let opened = child
            .ok()
            .filter(|c| sys::mount_of(c.as_fd()).is_ok_and(|(id, root)| id == mount && !root));
        match opened.map(|c| names(c.as_fd()).map(|n| (c, n))) {
            Some(Ok(level)) => stack.push(level),
            _ => u.unreadable += 1,
        }
    }
    Ok(u)
}

fn names(dir: BorrowedFd) -> nix::Result<Vec<OsString>> {
    let mut d = Dir::openat(
        dir,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let mut out = vec![];
    for e in d.iter() {
        let e = e?;
        let n = e.file_name().to_bytes();
        if n != b"." && n != b".." {
            out.push(OsStr::from_bytes(n).to_os_string());
        }
    }
    Ok(out)
}

/// Bytes as people read them: `0 B`, `12 K`, `3.4 M`, `1.2 G` (powers of 1024).
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["K", "M", "G", "T", "P"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if v < 10.0 {
        format!("{v:.1} {}", UNITS[unit])
    } else {
        format!("{v:.0} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hard_links_count_once_and_symlinks_are_not_followed() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        std::fs::create_dir(d.join("sub")).unwrap();
        std::fs::write(d.join("sub/big"), vec![1u8; 256 << 10]).unwrap();
        let one = disk_use(d).unwrap();
        assert_eq!(one.unreadable, 0);
        assert!(one.bytes >= 256 << 10, "{one:?}");
        std::fs::hard_link(d.join("sub/big"), d.join("again")).unwrap();
        std::os::unix::fs::symlink("/usr", d.join("usr")).unwrap();
        let two = disk_use(d).unwrap();
        // The hard link adds nothing, the symlink at most its own block.
        assert!(two.bytes - one.bytes <= 4096, "{one:?} {two:?}");
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human(0), "0 B");
        assert_eq!(human(2048), "2.0 K");
        assert_eq!(human(300 << 20), "300 M");
        assert_eq!(human(3 << 30), "3.0 G");
    }
}
