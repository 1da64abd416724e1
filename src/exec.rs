//! Start one command chrooted into a sandbox and supervise it until it ends.
//!
//! Mechanism only: the caller has decided what to run (dispatch, environment,
//! working directory) and has mounted the sandbox. [`run`] spawns the command
//! with `std::process::Command`, doing the chroot in `pre_exec`, then waits in
//! one `poll` loop on a pidfd (the child ended), a signalfd (signals to pass
//! on) and, in pty mode, the terminal traffic. No threads, no allocation in
//! the loop.
//!
//! What std does between fork and exec (checked against its source): it
//! resets SIGPIPE to its default but keeps the parent's signal mask, then runs
//! our `pre_exec` hook, then points `environ` at the new environment and calls
//! `execvp`. So the PATH search of a bare name happens in the child, after the
//! chroot, with the PATH of `Spec::env`; and the mask we block for the
//! signalfd has to be cleared by our hook.
use std::ffi::{CString, OsString};
use std::io::{self, IsTerminal};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

/// Where the command's terminal comes from.
#[derive(Debug)]
pub enum Terminal {
    /// The command shares our stdin, stdout and stderr (and process group).
    Inherit,
    /// The command gets a new pty of the sandbox's own devpts, in a session of
    /// its own; we relay between it and our terminal. `devpts` is the root of
    /// the devpts mount that `on` made inside the sandbox (a descriptor, never
    /// a host path: a `/dev` symlink in the rootfs must not lead to the host's).
    Pty { devpts: OwnedFd },
}

/// One command to start inside a root.
#[derive(Debug)]
pub struct Spec {
    /// The root directory to chroot into (host path).
    pub root: PathBuf,
    /// The program (absolute inside the root, or a name looked up in the
    /// `PATH` of `env`, inside the root) and its arguments. No shell.
    pub argv: Vec<String>,
    /// `argv[0]` as the program sees it, when not the program itself
    /// (e.g. `-bash` for a login shell).
    pub arg0: Option<String>,
    /// Working directory, inside the root.
    pub cwd: PathBuf,
    /// The whole environment of the command (bytes: the caller's variables
    /// need not be UTF-8).
    pub env: Vec<(OsString, OsString)>,
    pub terminal: Terminal,
}

/// How the command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Exited(i32),
    Signaled(i32),
}

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("{prog}: command not found in the sandbox")]
    NotFound { prog: String },
    #[error("{prog}: cannot execute")]
    NotExecutable {
        prog: String,
        #[source]
        source: io::Error,
    },
    #[error("{what}")]
    Setup {
        what: String,
        #[source]
        source: io::Error,
    },
}

fn setup(what: impl Into<String>, source: impl Into<io::Error>) -> ExecError {
    ExecError::Setup {
        what: what.into(),
        source: source.into(),
    }
}

/// Our exit status for a command's result: its own status, 128+N when killed
/// by signal N, 127 not found, 126 not executable, 125 when we failed.
pub fn exit_code(r: &Result<Outcome, ExecError>) -> u8 {
    match r {
        Ok(Outcome::Exited(n)) => *n as u8,
        Ok(Outcome::Signaled(n)) => 128u8.wrapping_add(*n as u8),
        Err(ExecError::NotFound { .. }) => 127,
        Err(ExecError::NotExecutable { .. }) => 126,
        Err(ExecError::Setup { .. }) => 125,
    }
}

/// Whether a command should get a pty: stdin and stdout are terminals.
pub fn use_pty() -> bool {
    io::stdin().is_terminal() && io::stdout().is_terminal()
}

/// The signals the supervisor takes while the command runs (blocked, read
/// from a signalfd) and passes on to it: every catchable signal except those
/// that must keep their default action. SIGCHLD: the pidfd tells us the
/// command ended. SIGTSTP, SIGTTIN, SIGTTOU, SIGCONT: job control of the
/// terminal stops and continues us with the command (without a pty we share
/// its process group; with one, the command's session has its own). SIGSEGV,
/// SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS: our own faults. The real-time
/// signals the C library leaves free are handled too ([`realtime`]).
const HANDLED: [Signal; 18] = [
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGABRT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGPIPE,
    Signal::SIGALRM,
    Signal::SIGTERM,
    Signal::SIGSTKFLT,
    Signal::SIGURG,
    Signal::SIGXCPU,
    Signal::SIGXFSZ,
    Signal::SIGVTALRM,
    Signal::SIGPROF,
    Signal::SIGWINCH,
    Signal::SIGIO,
    Signal::SIGPWR,
];

/// The real-time signals free for programs (glibc keeps the first two).
fn realtime() -> std::ops::RangeInclusive<libc::c_int> {
    libc::SIGRTMIN()..=libc::SIGRTMAX()
}

/// Signals the kernel makes for the process itself (a write to a closed
/// pipe, a limit it exceeded): passed on only when someone sent them.
const OWN: [libc::c_int; 3] = [libc::SIGPIPE, libc::SIGXCPU, libc::SIGXFSZ];

/// `si_code` of a signal that the kernel (e.g. the terminal driver) sent.
const SI_KERNEL: i32 = 0x80;

/// Run `spec` to its end. `started` is called once the command has been
/// exec'ed (not when it could not be started).
pub fn run(spec: &Spec, started: impl FnOnce()) -> Result<Outcome, ExecError> {
    let Some(prog) = spec.argv.first() else {
        return Err(setup(
            "no command to run",
            io::Error::from(io::ErrorKind::InvalidInput),
        ));
    };
    let root = cstring(spec.root.as_os_str().as_bytes(), "root")?;
    let cwd = cstring(Path::new("/").join(&spec.cwd).as_os_str().as_bytes(), "cwd")?;

    let mut cmd = Command::new(prog);
    cmd.args(&spec.argv[1..])
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)));
    if let Some(arg0) = &spec.arg0 {
        cmd.arg0(arg0);
    }

    // Pty first: the raw-mode guard is dropped last, after the output is drained.
    let pty = match &spec.terminal {
        Terminal::Inherit => None,
        Terminal::Pty { devpts } => Some(Pty::open(devpts.as_fd())?),
    };
    let child_tty = pty.as_ref().map(|p| ChildTty {
        peer: p.peer.as_raw_fd(),
        stderr: io::stderr().is_terminal(),
    });
    // SAFETY: the hook only makes async-signal-safe system calls on data
    // prepared here; it allocates nothing.
    let parent = std::process::id() as libc::pid_t;
    unsafe {
        cmd.pre_exec(move || child_setup(&root, &cwd, child_tty, parent));
    }

    let signals = Signals::block()?;
    let child = cmd.spawn().map_err(|e| spawn_error(e, spec, prog))?;
    started();
    let pid = Pid::from_raw(child.id() as i32);
    let pidfd = match crate::sys::pidfd::open(pid.as_raw()) {
        Ok(fd) => fd,
        Err(e) => {
            let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
            return Err(setup("watch the command (pidfd_open)", e));
        }
    };
    let watched = match pty {
        None => supervise(pid, &pidfd, &signals, None),
        Some(mut pty) => {
            // Only the child may hold the peer, or the master never sees EIO.
            drop(pty.peer);
            let r = supervise(pid, &pidfd, &signals, Some(&mut pty.relay));
            pty.relay.drain();
            r
        }
    };
    // Reaped even when watching failed: the command is never left behind.
    let outcome = reap(pid);
    drop(signals);
    watched.and(outcome)
}

fn cstring(bytes: &[u8], what: &str) -> Result<CString, ExecError> {
    CString::new(bytes).map_err(|e| setup(format!("{what} holds a NUL byte"), io::Error::other(e)))
}

/// The steps of the child's setup, carried in the upper bits of the errno
/// that std passes back from a failed `pre_exec` (it sends the whole `i32`),
/// so that a chdir's ENOENT is not taken for "command not found".
#[derive(Clone, Copy)]
#[repr(i32)]
enum Step {
    Signals = 1,
    Session,
    Ctty,
    Stdio,
    Chroot,
    Chdir,
    Parent,
}

const STEP_SHIFT: i32 = 16;

fn step_failed(step: Step) -> io::Error {
    let errno = io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO);
    io::Error::from_raw_os_error(errno | (step as i32) << STEP_SHIFT)
}

#[derive(Clone, Copy)]
struct ChildTty {
    peer: RawFd,
    /// Our stderr is a terminal: the command's goes to the pty too.
    stderr: bool,
}

/// Runs in the child between fork and exec: async-signal-safe calls only.
fn child_setup(
    root: &CString,
    cwd: &CString,
    tty: Option<ChildTty>,
    parent: libc::pid_t,
) -> io::Result<()> {
    let check = |ret: libc::c_int, step| {
        if ret < 0 {
            Err(step_failed(step))
        } else {
            Ok(())
        }
    };
    // SAFETY: plain system calls on valid pointers and descriptors.
    unsafe {
        let mut empty = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
        libc::sigemptyset(empty.as_mut_ptr());
        check(
            libc::pthread_sigmask(libc::SIG_SETMASK, empty.as_ptr(), std::ptr::null_mut()),
            Step::Signals,
        )?;
        for sig in HANDLED.iter().map(|s| *s as libc::c_int).chain(realtime()) {
            if libc::signal(sig, libc::SIG_DFL) == libc::SIG_ERR {
                return Err(step_failed(Step::Signals));
            }
        }
        if let Some(tty) = tty {
            check(libc::setsid(), Step::Session)?;
            check(libc::ioctl(tty.peer, libc::TIOCSCTTY, 0), Step::Ctty)?;
            check(libc::dup2(tty.peer, 0), Step::Stdio)?;
            check(libc::dup2(tty.peer, 1), Step::Stdio)?;
            if tty.stderr {
                check(libc::dup2(tty.peer, 2), Step::Stdio)?;
            }
        }
        // A supervisor killed outright (SIGKILL) takes its command with it:
        // nothing would watch it any more.
        check(
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong),
            Step::Parent,
        )?;
        if libc::getppid() != parent {
            libc::_exit(128 + libc::SIGKILL);
        }
        check(libc::chroot(root.as_ptr()), Step::Chroot)?;
        check(libc::chdir(cwd.as_ptr()), Step::Chdir)?;
    }
    Ok(())
}

fn spawn_error(e: io::Error, spec: &Spec, prog: &str) -> ExecError {
    let Some(code) = e.raw_os_error() else {
        return setup(format!("start {prog}"), e);
    };
    let errno = io::Error::from_raw_os_error(code & ((1 << STEP_SHIFT) - 1));
    let root = spec.root.display();
    let what = match code >> STEP_SHIFT {
        0 if errno.raw_os_error() == Some(libc::ENOENT) => {
            return ExecError::NotFound { prog: prog.into() }
        }
        0 => {
            return ExecError::NotExecutable {
                prog: prog.into(),
                source: errno,
            }
        }
        s if s == Step::Signals as i32 => "reset the signal state of the command".into(),
        s if s == Step::Session as i32 => "start a session for the command".into(),
        s if s == Step::Ctty as i32 => "give the command its terminal".into(),
        s if s == Step::Stdio as i32 => "connect the command to its terminal".into(),
        s if s == Step::Parent as i32 => "tie the command to its supervisor".into(),
        s if s == Step::Chroot as i32 => format!("chroot into {root}"),
        s if s == Step::Chdir as i32 => {
            format!("change to {} inside {root}", spec.cwd.display())
        }
        _ => format!("start {prog}"),
    };
    setup(what, errno)
}

fn reap(pid: Pid) -> Result<Outcome, ExecError> {
    use crate::sys::process::{wait_child, Ended};
    match wait_child(pid.as_raw()) {
        Ok(Ended::Exited(code)) => Ok(Outcome::Exited(code)),
        Ok(Ended::Signaled(sig)) => Ok(Outcome::Signaled(sig)),
        Err(e) => Err(setup("wait for the command", e)),
    }
}

/// The handled signals blocked and read from a signalfd while the command
/// runs; on drop, what is still pending is consumed and the mask restored.
struct Signals {
    fd: SignalFd,
    old: SigSet,
}

impl Signals {
    fn block() -> Result<Signals, ExecError> {
        let set = handled_set();
        let mut old = SigSet::empty();
        pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut old))
            .map_err(|e| setup("block signals", e))?;
        match SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK) {
            Ok(fd) => Ok(Signals { fd, old }),
            Err(e) => {
                let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
                Err(setup("make a signalfd", e))
            }
        }
    }
}

/// [`HANDLED`] and the free real-time signals, as a set.
fn handled_set() -> SigSet {
    // SAFETY: sigemptyset/sigaddset on our own set.
    let mut raw = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    unsafe {
        libc::sigemptyset(raw.as_mut_ptr());
        for sig in HANDLED.iter().map(|s| *s as libc::c_int).chain(realtime()) {
            libc::sigaddset(raw.as_mut_ptr(), sig);
        }
        SigSet::from_sigset_t_unchecked(raw.assume_init())
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        // The command has ended: a Ctrl-C that reached it and us, or a TERM
        // that came too late to matter, must not kill us on unblocking.
        while let Ok(Some(_)) = self.fd.read_signal() {}
        let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&self.old), None);
    }
}

/// Wait for the command to end, passing on signals and, with a pty, relaying
/// the terminal.
fn supervise(
    pid: Pid,
    pidfd: &OwnedFd,
    signals: &Signals,
    mut relay: Option<&mut Relay>,
) -> Result<(), ExecError> {
    const CHILD: usize = 0;
    const SIGNAL: usize = 1;
    let off = libc::pollfd {
        fd: -1,
        events: 0,
        revents: 0,
    };
    loop {
        let mut fds = [off; 5];
        fds[CHILD] = libc::pollfd {
            fd: pidfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        fds[SIGNAL] = libc::pollfd {
            fd: signals.fd.as_fd().as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        if let Some(r) = relay.as_deref() {
            r.want(&mut fds[2..]);
        }
        // SAFETY: fds is a valid array of pollfd.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(setup("wait for the command (poll)", e));
        }
        // Signals first: a window size that changed before the keys that
        // follow it must reach the pty first.
        if fds[SIGNAL].revents != 0 {
            while let Some(info) = signals
                .fd
                .read_signal()
                .map_err(|e| setup("read signals", e))?
            {
                let sig = info.ssi_signo as libc::c_int;
                let from_kernel = info.ssi_code == SI_KERNEL;
                // SI_USER, SI_QUEUE, SI_TKILL... by another process: the
                // kernel's SIGPIPE for our own write says SI_USER with our pid.
                let sent = info.ssi_code <= 0 && info.ssi_pid != std::process::id();
                match sig {
                    libc::SIGWINCH if relay.is_some() => {
                        if let Some(r) = relay.as_deref() {
                            r.copy_winsize();
                        }
                    }
                    // Without a pty, a Ctrl-C or Ctrl-\ of the terminal
                    // already reached the command, which is in our process
                    // group; a `kill` of chroot-tool alone did not.
                    libc::SIGINT | libc::SIGQUIT | libc::SIGWINCH
                        if relay.is_none() && from_kernel => {}
                    // Our own write to a closed pipe, our own limits.
                    s if OWN.contains(&s) && !sent => {}
                    // The command and what it started (a shell running a
                    // line does not always exec its last command).
                    _ => forward(pid, pidfd.as_fd(), sig),
                }
            }
        }
        if let Some(r) = relay.as_deref_mut() {
            r.pump(&fds[2..]);
        }
        if fds[CHILD].revents != 0 {
            return Ok(());
        }
    }
}

/// Passes `sig` on to the command and what it started (a shell running a
/// line does not always exec its last command). The command is held
/// stopped meanwhile, so that it neither goes on when one of its children
/// dies of the signal first (a script would run its next line and exit 0)
/// nor leaves a new child out; a command stopped before stays stopped.
fn forward(pid: Pid, pidfd: BorrowedFd, sig: libc::c_int) {
    let was_stopped = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest = &s[s.rfind(')')? + 1..];
            rest.split_whitespace().next().map(|st| st == "T")
        })
        .unwrap_or(false);
    use crate::sys::pidfd::send_signal;
    let _ = send_signal(pidfd, libc::SIGSTOP);
    crate::procs::signal_descendants(pid.as_raw(), sig);
    let _ = send_signal(pidfd, sig);
    if !was_stopped {
        let _ = send_signal(pidfd, libc::SIGCONT);
    }
}

/// A new pty of the sandbox's devpts and the relay to our terminal.
struct Pty {
    peer: OwnedFd,
    relay: Relay,
}

impl Pty {
    fn open(devpts: BorrowedFd) -> Result<Pty, ExecError> {
        let fail = |what: &str, e: io::Error| setup(format!("{what} of the sandbox's devpts"), e);
        let master = crate::sys::open_ptmx(devpts).map_err(|e| fail("open the pty master", e))?;
        let m = master.as_raw_fd();
        let unlock: libc::c_int = 0;
        // SAFETY: ioctls on our descriptor with the argument types they take.
        let peer = unsafe {
            if libc::ioctl(m, libc::TIOCSPTLCK, &unlock) < 0 {
                return Err(fail("unlock the pty", io::Error::last_os_error()));
            }
            let fd = libc::ioctl(
                m,
                libc::TIOCGPTPEER,
                libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
            );
            if fd < 0 {
                return Err(fail("open the pty peer", io::Error::last_os_error()));
            }
            OwnedFd::from_raw_fd(fd)
        };
        let stdin = io::stdin();
        let host = tcgetattr(stdin.as_fd())
            .map_err(|e| setup("read the terminal settings of stdin", e))?;
        tcsetattr(&peer, SetArg::TCSANOW, &host)
            .map_err(|e| fail("set the terminal settings of the pty", e.into()))?;
        let relay = Relay {
            master,
            _raw: RawMode::enter(host)?,
            input: Buffer::new(),
            output: Buffer::new(),
            stdin_open: true,
            master_open: true,
        };
        relay.copy_winsize();
        Ok(Pty { peer, relay })
    }
}

/// Our terminal in raw mode; its settings restored on drop, on every path.
struct RawMode {
    saved: Termios,
}

impl RawMode {
    fn enter(saved: Termios) -> Result<RawMode, ExecError> {
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        // TCSANOW, not TCSAFLUSH: keys typed ahead belong to the command.
        tcsetattr(io::stdin().as_fd(), SetArg::TCSANOW, &raw)
            .map_err(|e| setup("put the terminal in raw mode", e))?;
        Ok(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = tcsetattr(io::stdin().as_fd(), SetArg::TCSADRAIN, &self.saved);
    }
}

/// Bytes read from one descriptor and not yet written to the other.
struct Buffer {
    buf: [u8; 4096],
    start: usize,
    end: usize,
}

enum Io {
    /// Some bytes moved, or nothing to do right now (EAGAIN, EINTR).
    Ok,
    /// End of file, EIO (the other side of the pty closed) or another error.
    End,
}

impl Buffer {
    fn new() -> Buffer {
        Buffer {
            buf: [0; 4096],
            start: 0,
            end: 0,
        }
    }

    fn is_empty(&self) -> bool {
        self.start == self.end
    }

    fn fill(&mut self, from: RawFd) -> Io {
        // SAFETY: reading into our own buffer.
        let n = unsafe { libc::read(from, self.buf.as_mut_ptr().cast(), self.buf.len()) };
        match n {
            0 => Io::End,
            n if n > 0 => {
                self.start = 0;
                self.end = n as usize;
                Io::Ok
            }
            _ => transient_or_end(),
        }
    }

    fn flush(&mut self, to: RawFd) -> Io {
        let pending = &self.buf[self.start..self.end];
        // SAFETY: writing from our own buffer.
        let n = unsafe { libc::write(to, pending.as_ptr().cast(), pending.len()) };
        if n >= 0 {
            self.start += n as usize;
            return Io::Ok;
        }
        match transient_or_end() {
            Io::Ok => Io::Ok,
            Io::End => {
                self.start = self.end;
                Io::End
            }
        }
    }
}

fn transient_or_end() -> Io {
    match io::Error::last_os_error().raw_os_error() {
        Some(libc::EAGAIN | libc::EINTR) => Io::Ok,
        _ => Io::End,
    }
}

/// At most this many reads of the pty after the command ended (1 MiB).
const DRAIN_READS: usize = 256;

const STDIN: RawFd = 0;
const STDOUT: RawFd = 1;

/// Our terminal and the pty master, relayed both ways.
struct Relay {
    master: OwnedFd,
    /// Held for its drop: restores our terminal after the last output.
    _raw: RawMode,
    /// stdin → master
    input: Buffer,
    /// master → stdout
    output: Buffer,
    stdin_open: bool,
    master_open: bool,
}

impl Relay {
    /// Fill the three poll slots: stdin, master, stdout.
    fn want(&self, fds: &mut [libc::pollfd]) {
        if self.stdin_open && self.input.is_empty() {
            fds[0].fd = STDIN;
            fds[0].events = libc::POLLIN;
        }
        let mut events = 0;
        if self.master_open && self.output.is_empty() {
            events |= libc::POLLIN;
        }
        if !self.input.is_empty() {
            events |= libc::POLLOUT;
        }
        if events != 0 {
            fds[1].fd = self.master.as_raw_fd();
            fds[1].events = events;
        }
        if !self.output.is_empty() {
            fds[2].fd = STDOUT;
            fds[2].events = libc::POLLOUT;
        }
    }

    /// Move what the poll said can move.
    fn pump(&mut self, fds: &[libc::pollfd]) {
        let master = self.master.as_raw_fd();
        if fds[0].revents != 0 {
            if let Io::End = self.input.fill(STDIN) {
                self.stdin_open = false;
            }
        }
        if fds[1].revents != 0 {
            if !self.input.is_empty() {
                // EIO once nothing holds the peer: the keys go nowhere.
                let _ = self.input.flush(master);
            }
            if self.output.is_empty() && self.master_open {
                if let Io::End = self.output.fill(master) {
                    self.master_open = false;
                }
            }
        }
        if fds[2].revents != 0 {
            // A gone terminal drops the output; the command still gets waited for.
            let _ = self.output.flush(STDOUT);
        }
    }

    /// After the command ended: write out what it left on the pty.
    fn drain(&mut self) {
        let master = self.master.as_raw_fd();
        // Bounded: a process left in the background may keep writing.
        for _ in 0..DRAIN_READS {
            // Non-blocking: EAGAIN once the kernel has handed over all the
            // command wrote, EIO when nothing else holds the pty.
            if !self.write_out() || !self.master_open {
                return;
            }
            match self.output.fill(master) {
                Io::Ok if !self.output.is_empty() => {}
                _ => return,
            }
        }
        self.write_out();
    }

    /// Write all of the output buffer to stdout; false if stdout is gone.
    fn write_out(&mut self) -> bool {
        while !self.output.is_empty() {
            if !wait_writable(STDOUT) {
                return false;
            }
            if let Io::End = self.output.flush(STDOUT) {
                return false;
            }
        }
        true
    }

    /// Our terminal's window size onto the pty (the kernel tells the
    /// command's foreground with SIGWINCH).
    fn copy_winsize(&self) {
        let mut ws = std::mem::MaybeUninit::<libc::winsize>::uninit();
        // SAFETY: TIOCGWINSZ fills a winsize; TIOCSWINSZ reads one.
        unsafe {
            if libc::ioctl(STDIN, libc::TIOCGWINSZ, ws.as_mut_ptr()) == 0 {
                libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, ws.as_ptr());
            }
        }
    }
}

fn wait_writable(fd: RawFd) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLOUT,
        revents: 0,
    };
    loop {
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut p, 1, -1) };
        if n >= 0 {
            return p.revents & libc::POLLOUT != 0;
        }
        if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return false;
        }
    }
}
