//! Signals taken through a signalfd: the one way chroot-tool blocks signals
//! while it waits for a child (`run`'s supervisor, `create`'s debootstrap).
use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow};
use nix::sys::signalfd::{siginfo, SfdFlags, SignalFd};

/// The real-time signals free for programs (glibc keeps the first two).
pub fn realtime() -> std::ops::RangeInclusive<libc::c_int> {
    libc::SIGRTMIN()..=libc::SIGRTMAX()
}

/// A set of signals given by number (real-time ones included, which nix's
/// `Signal` cannot name).
pub fn set_of(signals: impl IntoIterator<Item = libc::c_int>) -> SigSet {
    let mut raw = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset initializes our set; sigaddset on it.
    unsafe {
        libc::sigemptyset(raw.as_mut_ptr());
        for sig in signals {
            libc::sigaddset(raw.as_mut_ptr(), sig);
        }
        SigSet::from_sigset_t_unchecked(raw.assume_init())
    }
}

/// A set of signals blocked and readable from a signalfd for as long as this
/// lives. On drop, what is still pending is consumed (a Ctrl-C that reached
/// the child and us must not kill us on unblocking) and the mask restored.
/// Children get an empty mask back (`sys::child`, `sys::guard`).
pub struct Blocked {
    fd: SignalFd,
    old: SigSet,
}

impl Blocked {
    pub fn block(set: &SigSet) -> io::Result<Blocked> {
        let mut old = SigSet::empty();
        pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(set), Some(&mut old))?;
        match SignalFd::with_flags(set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK) {
            Ok(fd) => Ok(Blocked { fd, old }),
            Err(e) => {
                let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
                Err(e.into())
            }
        }
    }

    /// The next signal that arrived, if any (never blocks).
    pub fn read(&self) -> io::Result<Option<siginfo>> {
        Ok(self.fd.read_signal()?)
    }
}

impl AsFd for Blocked {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Drop for Blocked {
    fn drop(&mut self) {
        while let Ok(Some(_)) = self.fd.read_signal() {}
        let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&self.old), None);
    }
}

/// `poll(2)` on raw pollfd entries (a negative fd is skipped by the kernel);
/// `timeout_ms` -1 waits without end. EINTR is returned as such.
pub fn poll(fds: &mut [libc::pollfd], timeout_ms: libc::c_int) -> io::Result<usize> {
    // SAFETY: a valid slice of pollfd.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}
