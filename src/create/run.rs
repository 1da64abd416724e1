//! Running debootstrap: in its own process group, stdout and stderr on one
//! pipe, its machine-readable progress on another given to it as fd 3, and
//! SIGINT/SIGTERM/SIGHUP taken through a signalfd so that an interruption
//! ends debootstrap's whole group (TERM, then KILL) before we return.
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags};
use nix::sys::signal::{killpg, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::{pipe2, Pid};

/// How long debootstrap gets between TERM and KILL.
const GRACE: Duration = Duration::from_secs(5);

/// Every signal whose default action ends the process and that is not a
/// fault of the process itself (SIGSEGV and the like) or SIGPIPE (ignored:
/// a closed pipe is an error of the write). SIGKILL cannot be caught: the
/// guard (see `guard`) ends debootstrap then.
const FATAL: [Signal; 15] = [
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGABRT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGALRM,
    Signal::SIGTERM,
    Signal::SIGSTKFLT,
    Signal::SIGXCPU,
    Signal::SIGXFSZ,
    Signal::SIGVTALRM,
    Signal::SIGPROF,
    Signal::SIGIO,
    Signal::SIGPWR,
];

/// The fatal signals (see `FATAL`), blocked and readable from a signalfd for as
/// long as this lives. Made before any thread starts, so every thread has
/// them blocked; children get an empty mask back.
pub struct Signals {
    fd: SignalFd,
    old: SigSet,
}

impl Signals {
    pub fn block() -> io::Result<Signals> {
        let mut set = SigSet::empty();
        for s in FATAL {
            set.add(s);
        }
        let mut old = SigSet::empty();
        nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut old))?;
        let fd = SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)?;
        Ok(Signals { fd, old })
    }

    /// A signal that arrived and was not read yet.
    pub fn pending(&self) -> Option<Signal> {
        match self.fd.read_signal() {
            Ok(Some(info)) => Signal::try_from(info.ssi_signo as i32).ok(),
            _ => None,
        }
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        let _ = nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&self.old), None);
    }
}

/// Which of debootstrap's outputs a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// stdout and stderr: its full log.
    Output,
    /// fd 3: `P:`/`I:`/`E:` records.
    Fd3,
}

#[derive(Debug)]
pub enum Outcome {
    Exited(ExitStatus),
    Interrupted(Signal),
}

/// A pipe we read lines from.
struct Reader {
    file: Option<File>,
    stream: Stream,
    buf: Vec<u8>,
}

impl Reader {
    fn new(fd: OwnedFd, stream: Stream) -> io::Result<Reader> {
        fcntl(&fd, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
        Ok(Reader {
            file: Some(File::from(fd)),
            stream,
            buf: vec![],
        })
    }

    /// Reads what is there; passes complete lines on. False once at EOF.
    fn pump(&mut self, on_line: &mut dyn FnMut(Stream, &str)) -> bool {
        let Some(file) = &mut self.file else {
            return false;
        };
        let mut chunk = [0u8; 65536];
        loop {
            match file.read(&mut chunk) {
                Ok(0) => {
                    self.file = None;
                    self.flush(on_line);
                    return false;
                }
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    while let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                        let line: Vec<u8> = self.buf.drain(..=i).collect();
                        on_line(self.stream, &String::from_utf8_lossy(&line[..i]));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(_) => {
                    self.file = None;
                    self.flush(on_line);
                    return false;
                }
            }
        }
    }

    fn flush(&mut self, on_line: &mut dyn FnMut(Stream, &str)) {
        if !self.buf.is_empty() {
            on_line(self.stream, &String::from_utf8_lossy(&self.buf));
            self.buf.clear();
        }
    }
}

/// Runs `cmd` (debootstrap, with `--debian-installer` among its arguments)
/// to its end or until a signal arrives; every line of its output and of
/// its fd 3 goes to `on_line`. When this returns, nothing of its process
/// group is left running.
pub fn run(
    mut cmd: Command,
    sigs: &Signals,
    keep: BorrowedFd,
    on_line: &mut dyn FnMut(Stream, &str),
) -> io::Result<Outcome> {
    let (out_r, out_w) = pipe2(OFlag::O_CLOEXEC)?;
    let (fd3_r, fd3_w) = pipe2(OFlag::O_CLOEXEC)?;
    let w3 = fd3_w.as_raw_fd();
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(out_w.try_clone()?))
        .stderr(Stdio::from(out_w))
        .process_group(0);
    let parent = std::process::id() as libc::pid_t;
    let keep = keep.as_raw_fd();
    // SAFETY: between fork and exec, and in the guard that never execs,
    // only async-signal-safe system calls (no allocation, no lock): see `guard`.
    unsafe {
        cmd.pre_exec(move || guard(parent, w3, keep));
    }
    let mut child = cmd.spawn()?;
    // Our copies of the write ends go, so that the pipes end with debootstrap.
    drop(cmd);
    drop(fd3_w);
    let pgid = Pid::from_raw(child.id() as i32);

    let mut readers = [
        Reader::new(out_r, Stream::Output)?,
        Reader::new(fd3_r, Stream::Fd3)?,
    ];
    let mut exited: Option<(ExitStatus, Instant)> = None;
    loop {
        let open = readers.iter().any(|r| r.file.is_some());
        if let Some((status, at)) = exited {
            // Once debootstrap is gone, read what is left, but do not wait
            // for whatever it may have left holding the pipes.
            if !open || at.elapsed() > Duration::from_secs(2) {
                for r in &mut readers {
                    r.flush(on_line);
                }
                end_group(&mut child, pgid);
                return Ok(Outcome::Exited(status));
            }
        }
        let mut fds = vec![PollFd::new(sigs.fd.as_fd(), PollFlags::POLLIN)];
        for r in &readers {
            if let Some(f) = &r.file {
                fds.push(PollFd::new(f.as_fd(), PollFlags::POLLIN));
            }
        }
        match poll(&mut fds, 200u16) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => {
                end_group(&mut child, pgid);
                return Err(e.into());
            }
        }
        drop(fds);
        if let Some(sig) = sigs.pending() {
            end_group(&mut child, pgid);
            for r in &mut readers {
                r.pump(on_line);
                r.flush(on_line);
            }
            return Ok(Outcome::Interrupted(sig));
        }
        for r in &mut readers {
            r.pump(on_line);
        }
        if exited.is_none() {
            if let Some(status) = child.try_wait()? {
                exited = Some((status, Instant::now()));
            }
        }
    }
}

/// Ends debootstrap's process group: TERM, a grace period, KILL; reaps
/// debootstrap itself and waits until no process of the group is left.
/// The group is addressed by debootstrap's own pid, its leader.
fn end_group(child: &mut Child, pgid: Pid) {
    let group_alive = || !matches!(killpg(pgid, None), Err(Errno::ESRCH));
    if matches!(child.try_wait(), Ok(None)) || group_alive() {
        let _ = killpg(pgid, Signal::SIGTERM);
    }
    let start = Instant::now();
    let mut killed = false;
    loop {
        let leader_done = !matches!(child.try_wait(), Ok(None));
        if leader_done && !group_alive() {
            break;
        }
        if !killed && start.elapsed() > GRACE {
            let _ = killpg(pgid, Signal::SIGKILL);
            killed = true;
        }
        if start.elapsed() > GRACE * 3 {
            // Something survived KILL (stuck in the kernel): stop waiting.
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.try_wait();
}

/// Runs in the child forked to start debootstrap (async-signal-safe calls
/// only). That child becomes a guard, leader of the new process group,
/// that never execs: it takes a mount namespace of its own (private, so
/// that what debootstrap mounts in DIR lives and dies with it and is never
/// seen outside), forks debootstrap, and waits. When debootstrap ends, the
/// guard ends the same way; when chroot-tool dies (even by SIGKILL: the
/// parent-death signal, set here in a child of the main thread, which
/// lives as long as the process), it kills the whole group, and the
/// namespace with its mounts goes with the last of them. debootstrap
/// itself gets fd 3 (its progress pipe), a descriptor of DIR's lock (so a
/// survivor keeps DIR locked and is seen), and an empty signal mask.
unsafe fn guard(parent: libc::pid_t, w3: i32, keep: i32) -> io::Result<()> {
    let fail = || Err(io::Error::last_os_error());
    if libc::prctl(
        libc::PR_SET_PDEATHSIG,
        libc::SIGHUP as libc::c_ulong,
        0,
        0,
        0,
    ) < 0
    {
        return fail();
    }
    if libc::getppid() != parent {
        return Err(io::Error::from_raw_os_error(libc::ESRCH));
    }
    if libc::unshare(libc::CLONE_NEWNS) < 0 {
        return fail();
    }
    let root = c"/";
    if libc::mount(
        std::ptr::null(),
        root.as_ptr(),
        std::ptr::null(),
        libc::MS_REC | libc::MS_PRIVATE,
        std::ptr::null(),
    ) < 0
    {
        return fail();
    }
    let mut all: libc::sigset_t = std::mem::zeroed();
    libc::sigfillset(&mut all);
    libc::pthread_sigmask(libc::SIG_SETMASK, &all, std::ptr::null_mut());
    let me = libc::getpid();
    // A plain fork by system call: no atfork handler runs (this child of a
    // threaded process may hold copies of locks it cannot take).
    let pid = libc::syscall(libc::SYS_clone, libc::SIGCHLD as libc::c_long, 0, 0, 0, 0);
    if pid < 0 {
        return fail();
    }
    if pid == 0 {
        // debootstrap.
        if libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        ) < 0
            || libc::getppid() != me
        {
            libc::_exit(125);
        }
        // A copy of the lock's descriptor without close-on-exec (above 3).
        if libc::fcntl(keep, libc::F_DUPFD, 10) < 0 {
            return fail();
        }
        if w3 == 3 {
            if libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                return fail();
            }
        } else if libc::dup2(w3, 3) < 0 {
            return fail();
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::pthread_sigmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        return Ok(());
    }
    let pid = pid as libc::pid_t;
    // The guard keeps no descriptor: the pipes end with debootstrap, and
    // chroot-tool's spawn learns that the exec happened.
    if libc::syscall(libc::SYS_close_range, 0u32, u32::MAX, 0u32) < 0 {
        for fd in 0..65536 {
            libc::close(fd);
        }
    }
    let mut wake: libc::sigset_t = std::mem::zeroed();
    libc::sigemptyset(&mut wake);
    libc::sigaddset(&mut wake, libc::SIGHUP);
    libc::sigaddset(&mut wake, libc::SIGCHLD);
    loop {
        let sig = libc::sigwaitinfo(&wake, std::ptr::null_mut());
        if libc::getppid() != parent {
            // chroot-tool is gone: so is everything it started.
            libc::kill(0, libc::SIGKILL);
            libc::_exit(137);
        }
        if sig != libc::SIGCHLD {
            continue;
        }
        let mut status = 0;
        if libc::waitpid(pid, &mut status, libc::WNOHANG) != pid {
            continue;
        }
        if libc::WIFEXITED(status) {
            libc::_exit(libc::WEXITSTATUS(status));
        }
        let sig = libc::WTERMSIG(status);
        libc::signal(sig, libc::SIG_DFL);
        let mut one: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut one);
        libc::sigaddset(&mut one, sig);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &one, std::ptr::null_mut());
        libc::kill(me, sig);
        libc::_exit(128 + sig);
    }
}
