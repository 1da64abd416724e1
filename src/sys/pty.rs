//! The sandbox's own devpts: found by descriptor and checked, its ptmx opened
//! from it, never by a host path.
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::fcntl::{OFlag, OpenHow, ResolveFlag};

use super::resolve::openat2;

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

/// A new pty of the devpts `devpts`: its master (non-blocking) and its peer
/// (close-on-exec, never our controlling terminal), unlocked.
pub fn open_pair(devpts: BorrowedFd) -> io::Result<(OwnedFd, OwnedFd)> {
    use std::os::fd::{AsRawFd, FromRawFd};
    let master = open_ptmx(devpts)?;
    let m = master.as_raw_fd();
    let unlock: libc::c_int = 0;
    // SAFETY: ioctls on our descriptor with the argument types they take;
    // TIOCGPTPEER returns a new descriptor we own.
    let peer = unsafe {
        if libc::ioctl(m, libc::TIOCSPTLCK, &unlock) < 0 {
            return Err(io::Error::last_os_error());
        }
        let fd = libc::ioctl(
            m,
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        );
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        OwnedFd::from_raw_fd(fd)
    };
    Ok((master, peer))
}

/// The window size of the terminal `from` onto the terminal `to` (the
/// kernel tells `to`'s foreground with SIGWINCH).
pub fn copy_winsize(from: BorrowedFd, to: BorrowedFd) {
    use std::os::fd::AsRawFd;
    let mut ws = std::mem::MaybeUninit::<libc::winsize>::uninit();
    // SAFETY: TIOCGWINSZ fills a winsize; TIOCSWINSZ reads one.
    unsafe {
        if libc::ioctl(from.as_raw_fd(), libc::TIOCGWINSZ, ws.as_mut_ptr()) == 0 {
            libc::ioctl(to.as_raw_fd(), libc::TIOCSWINSZ, ws.as_ptr());
        }
    }
}
