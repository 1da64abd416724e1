//! The steps a launched child takes between fork and exec, in order, with
//! async-signal-safe calls only on data prepared before the fork. A failed
//! step is carried in the upper bits of the errno that std passes back
//! from a failed `pre_exec` (it sends the whole `i32`), so that a chdir's
//! ENOENT is never taken for "command not found".
use std::ffi::CString;
use std::io;
use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// One step of the child's setup, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum Step {
    Signals = 1,
    Session,
    Ctty,
    Stdio,
    Chroot,
    Groups,
    Gid,
    Uid,
    Parent,
    Chdir,
    Cgroup,
    Rlimits,
}

const STEPS: [Step; 12] = [
    Step::Signals,
    Step::Session,
    Step::Ctty,
    Step::Stdio,
    Step::Chroot,
    Step::Groups,
    Step::Gid,
    Step::Uid,
    Step::Parent,
    Step::Chdir,
    Step::Cgroup,
    Step::Rlimits,
];

const STEP_SHIFT: i32 = 16;

/// The terminal the child takes: a pty peer, made its controlling terminal
/// in a session of its own.
#[derive(Debug, Clone, Copy)]
pub struct Tty {
    pub peer: RawFd,
    /// Our stderr is a terminal: the child's goes to the pty too.
    pub stderr: bool,
}

/// Who the child becomes after the chroot.
#[derive(Debug, Clone)]
pub struct Ids {
    pub uid: libc::uid_t,
    pub gid: libc::gid_t,
    /// Supplementary groups (setgroups).
    pub groups: Vec<libc::gid_t>,
}

/// Everything the child does before exec.
#[derive(Debug)]
pub struct Steps {
    /// Signals whose handlers go back to their default (the mask is emptied too).
    pub reset: Vec<libc::c_int>,
    pub tty: Option<Tty>,
    /// A directory descriptor of the root to chroot into (fchdir + chroot ".").
    pub root: RawFd,
    pub ids: Option<Ids>,
    /// Our pid: the child dies with us (PR_SET_PDEATHSIG) and checks we
    /// have not already gone.
    pub parent: libc::pid_t,
    /// The working directory, absolute inside the root.
    pub cwd: CString,
    /// `cgroup.procs` of the run's cgroup (one per hierarchy): the child
    /// writes its pid to each, first, so all it starts is inside.
    pub cgroup_procs: Vec<RawFd>,
    /// setrlimit resources and values (soft and hard; `u64::MAX`:
    /// unlimited), set before the change of identity.
    pub rlimits: Vec<(libc::c_int, u64)>,
}

fn failed(step: Step) -> io::Error {
    let errno = io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO);
    io::Error::from_raw_os_error(errno | (step as i32) << STEP_SHIFT)
}

fn check(ret: libc::c_int, step: Step) -> io::Result<()> {
    if ret < 0 {
        Err(failed(step))
    } else {
        Ok(())
    }
}

/// Makes `cmd` take `steps` in its child. `steps.root` and `steps.tty.peer`
/// must stay open until the command is spawned.
pub fn install(cmd: &mut Command, steps: Steps) {
    // SAFETY: the hook only makes async-signal-safe system calls on data
    // prepared here; it allocates nothing.
    unsafe {
        cmd.pre_exec(move || run(&steps));
    }
}

/// Runs in the child between fork and exec.
fn run(s: &Steps) -> io::Result<()> {
    // SAFETY: plain system calls on valid pointers and descriptors.
    unsafe {
        let mut empty = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
        libc::sigemptyset(empty.as_mut_ptr());
        check(
            libc::pthread_sigmask(libc::SIG_SETMASK, empty.as_ptr(), std::ptr::null_mut()),
            Step::Signals,
        )?;
        for &sig in &s.reset {
            if libc::signal(sig, libc::SIG_DFL) == libc::SIG_ERR {
                return Err(failed(Step::Signals));
            }
        }
        if !s.cgroup_procs.is_empty() {
            let mut buf = [0u8; 24];
            let pid = decimal(libc::getpid() as u64, &mut buf);
            for &fd in &s.cgroup_procs {
                let n = libc::write(fd, pid.as_ptr().cast(), pid.len());
                if n != pid.len() as isize {
                    if n >= 0 {
                        *libc::__errno_location() = libc::EIO;
                    }
                    return Err(failed(Step::Cgroup));
                }
            }
        }
        if let Some(tty) = s.tty {
            check(libc::setsid(), Step::Session)?;
            check(libc::ioctl(tty.peer, libc::TIOCSCTTY, 0), Step::Ctty)?;
            check(libc::dup2(tty.peer, 0), Step::Stdio)?;
            check(libc::dup2(tty.peer, 1), Step::Stdio)?;
            if tty.stderr {
                check(libc::dup2(tty.peer, 2), Step::Stdio)?;
            }
        }
        check(libc::fchdir(s.root), Step::Chroot)?;
        check(libc::chroot(c".".as_ptr()), Step::Chroot)?;
        for &(resource, value) in &s.rlimits {
            let v = if value == u64::MAX {
                libc::RLIM_INFINITY
            } else {
                value as libc::rlim_t
            };
            let lim = libc::rlimit {
                rlim_cur: v,
                rlim_max: v,
            };
            check(libc::setrlimit(resource as _, &lim), Step::Rlimits)?;
        }
        if let Some(ids) = &s.ids {
            check(
                libc::setgroups(ids.groups.len(), ids.groups.as_ptr()),
                Step::Groups,
            )?;
            check(libc::setgid(ids.gid), Step::Gid)?;
            check(libc::setuid(ids.uid), Step::Uid)?;
        }
        // After the change of identity, which clears it. A supervisor
        // killed outright (SIGKILL) takes its command with it: nothing
        // would watch it any more.
        check(
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong),
            Step::Parent,
        )?;
        if libc::getppid() != s.parent {
            libc::_exit(128 + libc::SIGKILL);
        }
        check(libc::chdir(s.cwd.as_ptr()), Step::Chdir)?;
    }
    Ok(())
}

/// `n` in decimal, in the end of `buf` (no allocation: runs in the child).
fn decimal(mut n: u64, buf: &mut [u8; 24]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

/// The step an error of `Command::spawn` came from (`None`: exec itself
/// failed) and the plain errno.
pub fn decode(e: &io::Error) -> Option<(Option<Step>, io::Error)> {
    let code = e.raw_os_error()?;
    let errno = io::Error::from_raw_os_error(code & ((1 << STEP_SHIFT) - 1));
    let step = match code >> STEP_SHIFT {
        0 => None,
        n => Some(*STEPS.iter().find(|s| **s as i32 == n)?),
    };
    Some((step, errno))
}

#[cfg(test)]
mod tests {
    #[test]
    fn decimal() {
        let mut buf = [0u8; 24];
        assert_eq!(super::decimal(0, &mut buf), b"0");
        assert_eq!(super::decimal(4_194_304, &mut buf), b"4194304");
        assert_eq!(super::decimal(u64::MAX, &mut buf), b"18446744073709551615");
    }
}
