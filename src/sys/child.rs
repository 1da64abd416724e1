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
}

const STEPS: [Step; 10] = [
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
        cloexec_from_3();
    }
    Ok(())
}

/// Marks every descriptor from 3 up close-on-exec: the command gets its
/// stdin, stdout and stderr and nothing else of ours or of our caller's (a
/// descriptor of a host directory would let it leave the chroot). They are
/// not closed here: std's spawn reports a failed step through a pipe of
/// its own up to the exec.
///
/// # Safety
/// Between fork and exec: system calls only.
unsafe fn cloexec_from_3() {
    if libc::syscall(
        libc::SYS_close_range,
        3 as libc::c_uint,
        libc::c_uint::MAX,
        libc::CLOSE_RANGE_CLOEXEC,
    ) == 0
    {
        return;
    }
    // Before Linux 5.11: one by one, up to the limit of descriptors.
    let mut lim: libc::rlimit = std::mem::zeroed();
    let top = if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
        lim.rlim_cur.min(1 << 20) as libc::c_int
    } else {
        1 << 16
    };
    for fd in 3..top {
        libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
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
