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
    let mut set: Vec<libc::pollfd> = fds
        .iter()
        .map(|fd| libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // Those already ended would make the wait return at once.
    // SAFETY: `set` holds `set.len()` valid pollfds; no wait.
    unsafe { libc::poll(set.as_mut_ptr(), set.len() as libc::nfds_t, 0) };
    set.retain(|p| p.revents == 0);
    if set.is_empty() {
        return;
    }
    let t = libc::timespec {
        tv_sec: timeout.as_secs().min(i32::MAX as u64) as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: as above; `t` outlives the call; no signal mask is changed.
    unsafe {
        libc::ppoll(
            set.as_mut_ptr(),
            set.len() as libc::nfds_t,
            &t,
            std::ptr::null(),
        )
    };
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
