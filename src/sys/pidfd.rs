//! Process descriptors: a process held by a pidfd is never confused with a
//! later one that reuses its pid.
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// A pidfd (close-on-exec) for the process `pid`.
pub fn open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: a plain system call; a non-negative result is a new descriptor we own.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor to us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Sends `sig` to the process held by `fd` (ESRCH: it has already ended).
pub fn send_signal(fd: BorrowedFd, sig: libc::c_int) -> io::Result<()> {
    // SAFETY: a valid pidfd, no siginfo.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Still running (a pidfd turns readable when its process exits).
pub fn alive(fd: BorrowedFd) -> bool {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, no wait.
    unsafe { libc::poll(&mut p, 1, 0) == 0 }
}

/// Waits up to `timeout` for a process held by one of `fds` that still runs
/// to exit; at once when none runs. Woken by the exit itself (a pidfd turns
/// readable), not by a period: the caller looks again when it returns.
pub fn wait_exit(fds: &[BorrowedFd], timeout: Duration) {
    use nix::poll::{poll, ppoll, PollFd, PollFlags, PollTimeout};
    let mut set: Vec<PollFd> = fds
        .iter()
        .map(|fd| PollFd::new(*fd, PollFlags::POLLIN))
        .collect();
    // Those already ended would make the wait return at once.
    let _ = poll(&mut set, PollTimeout::ZERO);
    let mut live: Vec<PollFd> = fds
        .iter()
        .zip(&set)
        .filter(|(_, p)| p.revents().is_none_or(|r| r.is_empty()))
        .map(|(fd, _)| PollFd::new(*fd, PollFlags::POLLIN))
        .collect();
    if live.is_empty() {
        return;
    }
    let _ = ppoll(&mut live, Some(timeout.into()), None);
}

/// Waits up to `timeout` for every process held by `fds` to exit; whether
/// they all did.
pub fn wait_all_exit(fds: &[BorrowedFd], timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let live: Vec<BorrowedFd> = fds.iter().copied().filter(|fd| alive(*fd)).collect();
        let now = Instant::now();
        if live.is_empty() {
            return true;
        }
        if now >= deadline {
            return false;
        }
        wait_exit(&live, deadline - now);
    }
}
