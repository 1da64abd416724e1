//! The sandbox's own devpts: found by descriptor and checked, its ptmx opened
//! from it, never by a host path.
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};

/// Whether `fd` lies on a devpts filesystem.
pub fn is_devpts(fd: BorrowedFd) -> io::Result<bool> {
    let st = nix::sys::statfs::fstatfs(fd)?;
    Ok(st.filesystem_type() == nix::sys::statfs::DEVPTS_SUPER_MAGIC)
}

/// The device number of the filesystem `fd` lies on (each devpts instance has its own).
pub fn dev_of(fd: BorrowedFd) -> io::Result<u64> {
    Ok(nix::sys::stat::fstat(fd)?.st_dev)
}

/// Opens `ptmx` in the devpts directory `devpts` (no symlink, same mount)
/// for reading and writing, non-blocking, never as our controlling terminal.
pub fn open_ptmx(devpts: BorrowedFd) -> io::Result<OwnedFd> {
    let fd = openat2(
        devpts,
        "ptmx",
        OpenHow::new()
            .flags(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC)
            .resolve(
                ResolveFlag::RESOLVE_BENEATH
                    | ResolveFlag::RESOLVE_NO_SYMLINKS
                    | ResolveFlag::RESOLVE_NO_XDEV
                    | ResolveFlag::RESOLVE_NO_MAGICLINKS,
            ),
    )?;
    let st = nix::sys::stat::fstat(fd.as_fd())?;
    if st.st_mode & libc::S_IFMT != libc::S_IFCHR || !is_devpts(fd.as_fd())? {
        return Err(io::Error::other("its ptmx is not the pty multiplexer"));
    }
    Ok(fd)
}
