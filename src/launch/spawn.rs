//! The one spawner: start a [`Launch`] and supervise it until it ends.
//!
//! Mechanism only: the caller has decided what to run (dispatch, identity,
//! environment, working directory) and has mounted the sandbox. [`run`]
//! spawns the command with `sys::child::spawn` (a child sharing our memory
//! until it execs, as `posix_spawn` makes one), which takes the ordered
//! steps (signals, terminal, [mount namespace],
//! chroot, [the run's mounts], [network namespace], [pid namespace and its
//! init], groups, gid, uid, parent-death signal, chdir), then waits in one `poll` loop on a
//! pidfd (the child ended), a signalfd (signals to pass on), in pty mode the
//! terminal traffic, and the deadline if there is one. No threads, no
//! allocation in the loop.
//!
//! The child resets every signal we handle to its default and empties the
//! mask we block for the signalfd, then searches `PATH` as `execvp` does,
//! after the chroot, with the `PATH` of `Launch::env`.
use std::ffi::CString;
use std::io::{self, IsTerminal};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::{SigSet, Signal};
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use super::{Launch, Terminal};
use crate::sys::child::{self, Step};
use crate::sys::signals::{self, Blocked};

/// How long what a run left running in its own mount namespace has
/// between TERM and KILL once the command has ended.
const LEFT_GRACE: Duration = Duration::from_secs(2);

/// How the command ended.
pub use crate::sys::process::Ended as Outcome;

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
    /// The [`super::Deadline`] passed: the command was ended.
    #[error("still running after {:.1} s: ended (TERM, then KILL)", after.as_secs_f64())]
    TimedOut { after: Duration },
}

fn setup(what: impl Into<String>, source: impl Into<io::Error>) -> ExecError {
    ExecError::Setup {
        what: what.into(),
        source: source.into(),
    }
}

/// Our exit status for a command's result: its own status, 128+N when killed
/// by signal N, 127 not found, 126 not executable, 125 when we failed, 124
/// when its deadline passed (as timeout(1)).
pub fn exit_code(r: &Result<Outcome, ExecError>) -> u8 {
    match r {
        Ok(ended) => ended.status(),
        Err(e) => e.code(),
    }
}

impl ExecError {
    /// Our exit status for it (see [`exit_code`]).
    pub fn code(&self) -> u8 {
        match self {
            ExecError::NotFound { .. } => 127,
            ExecError::NotExecutable { .. } => 126,
            ExecError::Setup { .. } => 125,
            ExecError::TimedOut { .. } => 124,
        }
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

/// [`HANDLED`] and the free real-time signals.
fn handled() -> impl Iterator<Item = libc::c_int> {
    HANDLED
        .iter()
        .map(|s| *s as libc::c_int)
        .chain(signals::realtime())
}

/// Signals the runtime handles (stack overflow) or ignores (SIGPIPE, which
/// an exec keeps ignored): the command gets their defaults.
const ALWAYS_RESET: [libc::c_int; 3] = [libc::SIGPIPE, libc::SIGSEGV, libc::SIGBUS];

/// The signals the child sets back to their default before it execs, given
/// the dispositions here (`None`: unknown) and whether this process is
/// chroot-tool itself (`tool`). The command starts with a clean state:
/// what we pass on ([`handled`]) and [`ALWAYS_RESET`] at their default even
/// when ignored here (as under `nohup`), and no handler left to run in the
/// child, which shares our memory until it execs. The tool, one thread
/// whose dispositions nothing changes after they were read, resets only
/// those not at their default already (a reset costs a system call, three
/// with musl, in every `run`); a program that embeds the library may have
/// a thread install a handler after the read: all of ours then, as well
/// as every one caught now.
fn to_reset(here: Option<signals::NotDefault>, tool: bool) -> Vec<libc::c_int> {
    use signals::NotDefault;
    // The C library's own (32 up to SIGRTMIN) cannot be set, nor KILL and STOP.
    let settable = |s: &libc::c_int| {
        *s != libc::SIGKILL && *s != libc::SIGSTOP && !(32..libc::SIGRTMIN()).contains(s)
    };
    let ours = |s: libc::c_int| handled().chain(ALWAYS_RESET).any(|o| o == s);
    let wanted = |s: &libc::c_int| match here {
        None => ours(*s),
        Some(d) if tool => {
            NotDefault::has(d.caught, *s) || (NotDefault::has(d.ignored, *s) && ours(*s))
        }
        Some(d) => ours(*s) || NotDefault::has(d.caught, *s),
    };
    (1..=64).filter(settable).filter(wanted).collect()
}

/// Signals the kernel makes for the process itself (a write to a closed
/// pipe, a limit it exceeded): passed on only when someone sent them.
const OWN: [libc::c_int; 3] = [libc::SIGPIPE, libc::SIGXCPU, libc::SIGXFSZ];

/// `si_code` of a signal that the kernel (e.g. the terminal driver) sent.
const SI_KERNEL: i32 = 0x80;

/// Run `launch` to its end. `started` is called once the command has been
/// exec'ed (not when it could not be started).
pub fn run(launch: &Launch, started: impl FnOnce()) -> Result<Outcome, ExecError> {
    let Some(prog) = launch.argv.first() else {
        return Err(setup(
            "no command to run",
            io::Error::from(io::ErrorKind::InvalidInput),
        ));
    };
    let prog_name = prog.to_string_lossy().into_owned();
    let cwd = cstring(
        Path::new("/").join(&launch.cwd).as_os_str().as_bytes(),
        "the working directory",
    )?;
    let root = launch.reach.root();
    let ns = namespaces(launch)?;

    let exec = child::Exec::new(prog, launch.arg0.as_deref(), &launch.argv[1..], &launch.env)
        .map_err(|what| {
            setup(
                format!("{what} holds a NUL byte"),
                io::Error::from(io::ErrorKind::InvalidInput),
            )
        })?;

    // Pty first: the raw-mode guard is dropped last, after the output is drained.
    let pty = match &launch.terminal {
        Terminal::Inherit | Terminal::Files { .. } => None,
        Terminal::Pty { devpts } => Some(Pty::open(devpts.as_fd(), launch)?),
    };
    // Made before the fork, removed after the command and what it left are gone.
    let cgroup = if launch.limits.needs_cgroup() {
        Some(
            crate::cgroup::RunCgroup::create(&launch.limits)
                .map_err(|e| setup(e.to_string(), io::Error::other("limit not applied")))?,
        )
    } else {
        None
    };
    let steps = child::Steps {
        reset: to_reset(
            signals::NotDefault::here(),
            crate::sys::process::is_the_tool(),
        ),
        tty: pty.as_ref().map(|p| child::Tty {
            peer: p.peer.as_raw_fd(),
            stderr: io::stderr().is_terminal(),
        }),
        stdio: match &launch.terminal {
            Terminal::Files {
                stdin,
                stdout,
                stderr,
            } => Some([stdin.as_raw_fd(), stdout.as_raw_fd(), stderr.as_raw_fd()]),
            _ => None,
        },
        root: root.as_raw_fd(),
        ids: launch.identity.as_ref().map(|i| child::Ids {
            uid: i.uid,
            gid: i.gid,
            groups: i.groups.clone(),
        }),
        parent: std::process::id() as libc::pid_t,
        cwd,
        cgroup_procs: cgroup.as_ref().map_or_else(Vec::new, |c| c.procs_fds()),
        cgroup_dir: launch.track.as_ref().map(|t| t.as_raw_fd()),
        rlimits: launch
            .limits
            .rlimits
            .iter()
            .map(|&(r, v)| (r.resource(), v))
            .collect(),
        ns,
    };

    let signals = Blocked::block(&handled_set()).map_err(|e| setup("block signals", e))?;
    let spawned = child::spawn(&steps, &exec).map_err(|e| spawn_error(e, launch, &prog_name))?;
    drop(steps);
    started();
    let pid = Pid::from_raw(spawned.pid);
    // A run with a mount namespace of its own (`-m`, `--ephemeral`, `--pid`):
    // we hold a descriptor of that namespace while the run lasts, which is
    // how `off` knows a process of it that left our process tree
    // (`procs`: a double fork reparents it away from us).
    let run_ns = launch
        .isolation
        .own_mounts()
        .then(|| std::fs::File::open(format!("/proc/{}/ns/mnt", pid.as_raw())).ok())
        .flatten();
    let pidfd = match crate::sys::pidfd::open(pid.as_raw()) {
        Ok(fd) => fd,
        Err(e) => {
            let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
            return Err(setup("watch the command (pidfd_open)", e));
        }
    };
    let deadline = launch.deadline.map(|d| (Instant::now() + d.after, d));
    let watched = match pty {
        None => supervise(pid, &pidfd, &signals, None, deadline),
        Some(mut pty) => {
            // Only the child may hold the peer, or the master never sees EIO.
            drop(pty.peer);
            let r = supervise(pid, &pidfd, &signals, Some(&mut pty.relay), deadline);
            pty.relay.drain();
            r
        }
    };
    // Reaped even when watching failed: the command is never left behind.
    let outcome = reap(pid);
    // The run's own mount namespace, with its copies of the sandbox's
    // mounts, ends with the run, as a pid namespace would: what the command
    // left running there (a daemon it started) gets TERM, KILL a moment later.
    // (With a pid namespace of its own, the kernel ended them with its init.)
    // Known by the id the child told, else by the descriptor opened after
    // it started (gone if the command ended first).
    let ns = match (spawned.mnt_ns, &run_ns) {
        (Some(id), _) => Some(crate::procs::MntNs::Id(id)),
        (None, Some(f)) => Some(crate::procs::MntNs::Held(f.as_fd())),
        (None, None) => None,
    };
    if let (Some(ns), false) = (ns, launch.isolation.pid) {
        // Only the sandbox's cgroup's members may be there, when it has one.
        let among = || {
            launch
                .track
                .as_ref()
                .and_then(|t| crate::cgroup::track::members_at(t.as_fd()))
        };
        crate::procs::end_namespace(ns, LEFT_GRACE, &among);
    }
    drop(signals);
    let result = watched.and(outcome);
    match cgroup.map(|c| c.remove()) {
        Some(Err(e)) => Err(setup(
            match &result {
                Ok(ended) => format!("the command ended (status {})", ended.status()),
                Err(e) => e.to_string(),
            },
            e,
        )),
        _ => result,
    }
}

/// The namespaces of `launch`'s own, as the child steps take them
/// (allocated here, before the fork).
fn namespaces(launch: &Launch) -> Result<child::Namespaces, ExecError> {
    let iso = &launch.isolation;
    if iso.prepared.len() != iso.mounts.len() {
        return Err(setup(
            "the -m mounts were not prepared",
            io::Error::from(io::ErrorKind::InvalidInput),
        ));
    }
    let mut mounts = Vec::with_capacity(iso.prepared.len());
    for m in &iso.prepared {
        mounts.push((
            m.mnt.as_raw_fd(),
            cstring(m.at.as_os_str().as_bytes(), "a -m target")?,
        ));
    }
    let pid = match (iso.pid, &iso.proc_at) {
        (false, _) => None,
        (true, Some(p)) => Some(cstring(p.as_os_str().as_bytes(), "/proc")?),
        (true, None) => {
            return Err(setup(
                "--pid: /proc of the sandbox was not found",
                io::Error::from(io::ErrorKind::NotFound),
            ))
        }
    };
    let mut rebinds = Vec::new();
    if let Some(e) = &iso.ephemeral_view {
        for (fd, at) in &e.rebinds {
            rebinds.push((
                fd.as_raw_fd(),
                cstring(at.as_os_str().as_bytes(), "a mount point")?,
            ));
        }
    } else if iso.ephemeral {
        return Err(setup(
            "--ephemeral: the overlay was not prepared",
            io::Error::from(io::ErrorKind::InvalidInput),
        ));
    }
    Ok(child::Namespaces {
        mount: iso.own_mounts(),
        mounts,
        ephemeral: iso.ephemeral_view.as_ref().map(|e| e.merged.as_raw_fd()),
        rebinds,
        net: iso.net_none,
        pid,
        joined_pid: launch.reach.joined_pid_ns(),
    })
}

fn cstring(bytes: &[u8], what: &str) -> Result<CString, ExecError> {
    CString::new(bytes).map_err(|e| setup(format!("{what} holds a NUL byte"), io::Error::other(e)))
}

fn spawn_error(e: io::Error, launch: &Launch, prog: &str) -> ExecError {
    let Some((step, errno)) = child::decode(&e) else {
        return setup(format!("start {prog}"), e);
    };
    let root = crate::show::path(launch.reach.path());
    let ids = launch.identity.as_ref();
    let what = match step {
        None if errno.raw_os_error() == Some(libc::ENOENT) => {
            return ExecError::NotFound { prog: prog.into() }
        }
        None => {
            return ExecError::NotExecutable {
                prog: prog.into(),
                source: errno,
            }
        }
        Some(Step::Signals) => "reset the signal state of the command".into(),
        Some(Step::Session) => "start a session for the command".into(),
        Some(Step::Ctty) => "give the command its terminal".into(),
        Some(Step::Stdio) => "connect the command to its terminal".into(),
        Some(Step::Parent) => "tie the command to its supervisor".into(),
        Some(Step::Chroot) => format!("chroot into {root}"),
        Some(Step::Groups) => format!(
            "set the supplementary groups {:?}",
            ids.map(|i| i.groups.clone()).unwrap_or_default()
        ),
        Some(Step::Gid) => format!("set the group id {}", ids.map_or(0, |i| i.gid)),
        Some(Step::Uid) => format!("set the user id {}", ids.map_or(0, |i| i.uid)),
        Some(Step::Cgroup) => "join the sandbox's cgroup, or the run's".into(),
        Some(Step::Rlimits) => format!(
            "set the limits {}",
            launch
                .limits
                .rlimits
                .iter()
                .map(|(r, v)| format!(
                    "{}={}",
                    r.name(),
                    if *v == u64::MAX {
                        "unlimited".to_string()
                    } else {
                        v.to_string()
                    }
                ))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        Some(Step::Chdir) => format!(
            "change to {} inside {root}",
            crate::show::path(Path::new("/").join(&launch.cwd))
        ),
        Some(Step::MountNs) => "give the command a mount namespace of its own".into(),
        Some(Step::Mount) => {
            let i = child::mount_index(&e);
            let m = launch.isolation.prepared.get(i);
            format!(
                "{}: attaching at {} inside {root}",
                m.map_or("-m", |m| &m.shown),
                crate::show::path(m.map_or(Path::new("?"), |m| &m.at))
            )
        }
        Some(Step::NetNs) => "--net none: a network namespace with its loopback up".into(),
        Some(Step::PidNs) => "--pid: a pid namespace and its init".into(),
        Some(Step::Proc) => format!("--pid: mounting a fresh proc on /proc inside {root}"),
        Some(Step::Ephemeral) => match child::mount_index(&e) {
            0 => format!("--ephemeral: putting the run's overlay over {root}"),
            i => format!(
                "--ephemeral: binding the sandbox's mount {} again on the run's overlay",
                crate::show::path(
                    launch
                        .isolation
                        .ephemeral_view
                        .as_ref()
                        .and_then(|v| v.rebinds.get(i - 1))
                        .map_or(Path::new("?"), |(_, at)| at.as_path())
                )
            ),
        },
    };
    setup(what, errno)
}

fn reap(pid: Pid) -> Result<Outcome, ExecError> {
    crate::sys::process::wait_child(pid.as_raw()).map_err(|e| setup("wait for the command", e))
}

/// [`HANDLED`] and the free real-time signals, as a set.
fn handled_set() -> SigSet {
    signals::set_of(handled())
}

/// Wait for the command to end, passing on signals and, with a pty, relaying
/// the terminal.
fn supervise(
    pid: Pid,
    pidfd: &OwnedFd,
    signals: &Blocked,
    mut relay: Option<&mut Relay>,
    deadline: Option<(Instant, super::Deadline)>,
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
            fd: signals.as_fd().as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        if let Some(r) = relay.as_deref() {
            r.want(&mut fds[2..]);
        }
        let timeout = deadline.map_or(-1, |(at, _)| {
            let left = at.saturating_duration_since(Instant::now());
            left.as_millis().min(i32::MAX as u128) as libc::c_int
        });
        match signals::poll(&mut fds, timeout) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(setup("wait for the command (poll)", e)),
        }
        if let Some((at, d)) = deadline {
            if fds[CHILD].revents == 0 && Instant::now() >= at {
                end(pid, pidfd.as_fd(), d.grace);
                // Reaped by the caller; the run's result is the timeout.
                return Err(ExecError::TimedOut { after: d.after });
            }
        }
        // Signals first: a window size that changed before the keys that
        // follow it must reach the pty first.
        if fds[SIGNAL].revents != 0 {
            while let Some(info) = signals.read().map_err(|e| setup("read signals", e))? {
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

/// Ends the command and what it started: TERM, `grace`, KILL.
fn end(pid: Pid, pidfd: BorrowedFd, grace: Duration) {
    use crate::sys::pidfd::{alive, send_signal, wait_exit};
    let send = |sig| {
        crate::procs::signal_descendants(pid.as_raw(), sig);
        let _ = send_signal(pidfd, sig);
    };
    let pause = |d| wait_exit(&[pidfd], d);
    crate::sys::process::term_grace_kill(
        send,
        || alive(pidfd),
        pause,
        grace,
        Duration::from_secs(2),
    );
}

/// Passes `sig` on to the command and what it started (a shell running a
/// line does not always exec its last command). The command is held
/// stopped meanwhile, so that it neither goes on when one of its children
/// dies of the signal first (a script would run its next line and exit 0)
/// nor leaves a new child out; a command stopped before stays stopped.
fn forward(pid: Pid, pidfd: BorrowedFd, sig: libc::c_int) {
    let was_stopped = crate::procs::stopped(pid.as_raw());
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
    fn open(devpts: BorrowedFd, launch: &Launch) -> Result<Pty, ExecError> {
        let fail = |what: &str, e: io::Error| setup(format!("{what} of the sandbox's devpts"), e);
        let (master, peer) =
            crate::sys::pty::open_pair(devpts).map_err(|e| fail("open a new pty", e))?;
        if let Some(id) = &launch.identity {
            // The user's terminal is the user's, as login(1) makes it.
            nix::unistd::fchown(&peer, Some(id.uid.into()), None)
                .map_err(|e| fail("give the pty to the user", e.into()))?;
        }
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

    fn fill(&mut self, from: impl AsFd) -> Io {
        match nix::unistd::read(from.as_fd(), &mut self.buf) {
            Ok(0) => Io::End,
            Ok(n) => {
                self.start = 0;
                self.end = n;
                Io::Ok
            }
            Err(e) => transient_or_end(e),
        }
    }

    fn flush(&mut self, to: impl AsFd) -> Io {
        match nix::unistd::write(to.as_fd(), &self.buf[self.start..self.end]) {
            Ok(n) => {
                self.start += n;
                Io::Ok
            }
            Err(e) => match transient_or_end(e) {
                Io::Ok => Io::Ok,
                Io::End => {
                    self.start = self.end;
                    Io::End
                }
            },
        }
    }
}

fn transient_or_end(e: nix::errno::Errno) -> Io {
    match e {
        nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR => Io::Ok,
        _ => Io::End,
    }
}

/// At most this many reads of the pty after the command ended (1 MiB).
const DRAIN_READS: usize = 256;

fn stdin() -> io::Stdin {
    io::stdin()
}

fn stdout() -> io::Stdout {
    io::stdout()
}

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
            fds[0].fd = stdin().as_raw_fd();
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
            fds[2].fd = stdout().as_raw_fd();
            fds[2].events = libc::POLLOUT;
        }
    }

    /// Move what the poll said can move.
    fn pump(&mut self, fds: &[libc::pollfd]) {
        let master = self.master.as_fd();
        if fds[0].revents != 0 {
            if let Io::End = self.input.fill(stdin()) {
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
            let _ = self.output.flush(stdout());
        }
    }

    /// After the command ended: write out what it left on the pty.
    fn drain(&mut self) {
        // Bounded: a process left in the background may keep writing.
        for _ in 0..DRAIN_READS {
            // Non-blocking: EAGAIN once the kernel has handed over all the
            // command wrote, EIO when nothing else holds the pty.
            if !self.write_out() || !self.master_open {
                return;
            }
            match self.output.fill(self.master.as_fd()) {
                Io::Ok if !self.output.is_empty() => {}
                _ => return,
            }
        }
        self.write_out();
    }

    /// Write all of the output buffer to stdout; false if stdout is gone.
    fn write_out(&mut self) -> bool {
        while !self.output.is_empty() {
            if !wait_writable(stdout()) {
                return false;
            }
            if let Io::End = self.output.flush(stdout()) {
                return false;
            }
        }
        true
    }

    /// Our terminal's window size onto the pty (the kernel tells the
    /// command's foreground with SIGWINCH).
    fn copy_winsize(&self) {
        crate::sys::pty::copy_winsize(stdin().as_fd(), self.master.as_fd());
    }
}

fn wait_writable(fd: impl AsFd) -> bool {
    let mut p = [libc::pollfd {
        fd: fd.as_fd().as_raw_fd(),
        events: libc::POLLOUT,
        revents: 0,
    }];
    loop {
        match signals::poll(&mut p, -1) {
            Ok(_) => return p[0].revents & libc::POLLOUT != 0,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_child_resets_only_what_is_not_at_its_default() {
        use signals::NotDefault;
        let bit = |s: libc::c_int| 1u64 << (s - 1);
        // Unknown: everything passed on, and the runtime's.
        let all = to_reset(None, true);
        assert!(all.contains(&libc::SIGHUP) && all.contains(&libc::SIGSEGV));
        assert!(all.contains(&libc::SIGRTMAX()));
        // The tool itself: only its own SIGPIPE.
        let d = NotDefault {
            ignored: bit(libc::SIGPIPE),
            caught: 0,
        };
        assert_eq!(to_reset(Some(d), true), vec![libc::SIGPIPE]);
        // Ignored by the caller (nohup, a background job): back to the
        // default; ignored but not passed on (SIGTSTP): left as it was.
        let d = NotDefault {
            ignored: bit(libc::SIGHUP) | bit(libc::SIGINT) | bit(libc::SIGTSTP),
            caught: 0,
        };
        assert_eq!(to_reset(Some(d), true), vec![libc::SIGHUP, libc::SIGINT]);
        // Caught (an embedding program's handlers): every one, but never
        // the C library's own, KILL or STOP.
        let d = NotDefault {
            ignored: 0,
            caught: bit(libc::SIGCHLD) | bit(libc::SIGTERM) | bit(32) | bit(libc::SIGRTMIN()),
        };
        let r = to_reset(Some(d), true);
        assert!(r.contains(&libc::SIGCHLD) && r.contains(&libc::SIGTERM));
        assert!(r.contains(&libc::SIGRTMIN()) && !r.contains(&32), "{r:?}");
        assert_eq!(r.len(), 3, "{r:?}");
        // A program embedding the library: all of ours whatever the state
        // read (a thread may install a handler after it), and the caught ones.
        let lib = to_reset(Some(d), false);
        assert!(all.iter().all(|s| lib.contains(s)), "{lib:?}");
        assert!(lib.contains(&libc::SIGCHLD), "{lib:?}");
    }
}
