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

/// The signals that are not at their default here, as masks (bit N-1 for
/// signal N): read from `/proc/self/status` in one go, where asking
/// `sigaction` would take a system call per signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotDefault {
    /// Ignored (`SigIgn`).
    pub ignored: u64,
    /// Caught by a handler (`SigCgt`).
    pub caught: u64,
}

impl NotDefault {
    /// This process's; `None` when /proc cannot tell (also when the file
    /// read is another process's: a bind over it in a holder's namespace).
    pub fn here() -> Option<NotDefault> {
        let text = super::read_proc(std::path::Path::new("/proc/self/status")).ok()?;
        NotDefault::of(&text, std::process::id())
    }

    /// From the text of a `/proc/PID/status`, when it is that of `pid`.
    pub fn of(status: &[u8], pid: u32) -> Option<NotDefault> {
        let shown = super::status_field(status, "Pid:")?.parse::<u32>().ok()?;
        (shown == pid).then(|| NotDefault::parse(status))?
    }

    /// From the text of a `/proc/PID/status`.
    pub fn parse(status: &[u8]) -> Option<NotDefault> {
        let field = |name| u64::from_str_radix(super::status_field(status, name)?, 16).ok();
        Some(NotDefault {
            ignored: field("SigIgn:")?,
            caught: field("SigCgt:")?,
        })
    }

    /// Is `sig` (1..=64) in `mask`?
    pub fn has(mask: u64, sig: libc::c_int) -> bool {
        (1..=64).contains(&sig) && mask & (1u64 << (sig - 1)) != 0
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispositions_are_read_from_the_status_text() {
        let status = b"Name:\tsh\nSigQ:\t0/95\nSigPnd:\t0000000000000000\nShdPnd:\t0000000000000000\nSigBlk:\t0000000000010000\nSigIgn:\t0000000000001001\nSigCgt:\t0000000180000002\nCapInh:\t0000000000000000\n";
        let d = NotDefault::parse(status).unwrap();
        assert_eq!(d.ignored, 0x1001);
        assert_eq!(d.caught, 0x1_8000_0002);
        assert!(NotDefault::has(d.ignored, libc::SIGHUP));
        assert!(NotDefault::has(d.ignored, libc::SIGPIPE));
        assert!(!NotDefault::has(d.ignored, libc::SIGINT));
        assert!(NotDefault::has(d.caught, libc::SIGINT));
        assert!(NotDefault::has(d.caught, 33));
        assert!(!NotDefault::has(d.caught, 0) && !NotDefault::has(d.caught, 65));
    }

    #[test]
    fn a_status_without_both_fields_tells_nothing() {
        assert_eq!(NotDefault::parse(b"SigIgn:\t0000000000000001\n"), None);
        assert_eq!(NotDefault::parse(b"SigIgn:\tzz\nSigCgt:\t0\n"), None);
        assert_eq!(NotDefault::parse(b""), None);
    }

    #[test]
    fn a_status_is_believed_only_for_its_own_pid() {
        let status = b"Name:\tx\nPid:\t42\nPPid:\t1\nSigIgn:\t0000000000001000\nSigCgt:\t0\n";
        assert_eq!(NotDefault::of(status, 42).map(|d| d.ignored), Some(0x1000));
        assert_eq!(NotDefault::of(status, 1), None);
        assert_eq!(NotDefault::of(b"SigIgn:\t0\nSigCgt:\t0\n", 42), None);
        // This process's: std's test runtime ignores SIGPIPE. Where /proc
        // is another pid namespace's, its status is not ours: not believed.
        let text = super::super::read_proc(std::path::Path::new("/proc/self/status")).unwrap();
        let shown = super::super::status_field(&text, "Pid:").unwrap();
        match NotDefault::here() {
            Some(d) => {
                assert_eq!(shown, std::process::id().to_string());
                assert!(NotDefault::has(d.ignored, libc::SIGPIPE), "{d:?}");
            }
            None => assert_ne!(shown, std::process::id().to_string()),
        }
    }
}
