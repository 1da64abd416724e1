//! Starting a program by descriptor: what was checked is what runs.
use std::ffi::{CStr, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The command line, as the C `main` received it ([`runtime_start`]).
static ARGS: OnceLock<Vec<OsString>> = OnceLock::new();

/// The program's arguments: those [`runtime_start`] kept, else std's (a
/// program that starts at std's `main`, such as a test).
pub fn args() -> Vec<OsString> {
    match ARGS.get() {
        Some(a) => a.clone(),
        None => std::env::args_os().collect(),
    }
}

/// Whether this process is chroot-tool itself, started by
/// [`runtime_start`] (not a program that embeds the library): one thread
/// on the way into a sandbox, no signal handler of its own, SIGPIPE
/// ignored and SIGCHLD at its default by `runtime_start`, and nothing
/// else changed.
pub fn is_the_tool() -> bool {
    ARGS.get().is_some()
}

/// A command that executes the file `fd` refers to (an `O_PATH` descriptor,
/// close-on-exec), not a path that could be swapped after it was checked:
/// it runs `/proc/self/fd/N`, the kernel's name for that very file, and the
/// child keeps `N` open across exec so that a script's interpreter, which
/// the kernel hands `/proc/self/fd/N`, can open it. The descriptor must
/// stay open until the command is spawned.
pub fn command_of_fd(fd: BorrowedFd) -> Command {
    let raw = fd.as_raw_fd();
    let mut cmd = Command::new(PathBuf::from(format!("/proc/self/fd/{raw}")));
    // SAFETY: fcntl is async-signal-safe; `raw` is open in the child (it is
    // inherited; only exec would close it).
    unsafe {
        cmd.pre_exec(move || {
            if libc::fcntl(raw, libc::F_SETFD, 0) < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd
}

/// The program's entry point at the C `main` (with `#![no_main]`): it calls
/// [`runtime_start`] with the arguments, then `$run` (returning the exit
/// status as a `u8`), and flushes stdout, as std's `main` would on return.
#[macro_export]
macro_rules! c_main {
    ($run:path) => {
        #[no_mangle]
        extern "C" fn main(
            argc: ::std::ffi::c_int,
            argv: *const *const ::std::ffi::c_char,
        ) -> ::std::ffi::c_int {
            // SAFETY: argc and argv as the C runtime hands them to `main`.
            unsafe { $crate::sys::process::runtime_start(argc, argv) };
            let code: u8 = $run();
            let _ = ::std::io::Write::flush(&mut ::std::io::stdout());
            code.into()
        }
    };
}

/// What std's runtime does before `main` that chroot-tool relies on, for a
/// binary that starts at the C `main` instead (it skips the rest, which
/// reads `/proc/self/maps` for a stack guard on every start): descriptors
/// 0, 1 and 2 open, on `/dev/null` when closed (so that no file we open
/// takes their place and receives our output), SIGPIPE ignored (a
/// write to a closed pipe is an EPIPE error, not our death) and SIGCHLD
/// at its default (our children's statuses are ours to collect), and the
/// arguments kept for [`args`] (std finds them only through glibc, which
/// hands them to initialisers; musl does not).
///
/// # Safety
/// `argv` holds `argc` valid C strings, as the C `main` receives them.
pub unsafe fn runtime_start(argc: libc::c_int, argv: *const *const libc::c_char) {
    // SAFETY: the caller's promise for `argv`; then plain system calls on
    // valid pointers, before anything else runs.
    unsafe {
        let args = (0..argc.max(0) as usize)
            .map(|i| *argv.add(i))
            .take_while(|p| !p.is_null())
            .map(|p| OsStr::from_bytes(CStr::from_ptr(p).to_bytes()).to_owned())
            .collect();
        let _ = ARGS.set(args);
        let mut fds = [0, 1, 2].map(|fd| libc::pollfd {
            fd,
            events: 0,
            revents: 0,
        });
        let polled = loop {
            let r = libc::poll(fds.as_mut_ptr(), 3, 0);
            if r >= 0 || *libc::__errno_location() != libc::EINTR {
                break r >= 0;
            }
        };
        for p in &fds {
            let closed = if polled {
                p.revents & libc::POLLNVAL != 0
            } else {
                libc::fcntl(p.fd, libc::F_GETFD) < 0
            };
            if closed && libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) != p.fd {
                libc::abort();
            }
        }
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        // A caller that ignores SIGCHLD (`trap '' CHLD`) would have every
        // child reaped behind our back, its status lost (the command's,
        // host-cmd's, the backend's): taken back, whatever /proc says.
        libc::signal(libc::SIGCHLD, libc::SIG_DFL);
    }
}

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Exited(i32),
    /// Killed by this signal (any number, real-time signals included).
    Signaled(i32),
}

impl Ended {
    /// The one mapping to an exit status: the child's own, 128+N when it
    /// was killed by signal N (as a shell reports it).
    pub fn status(self) -> u8 {
        match self {
            Ended::Exited(n) => n as u8,
            Ended::Signaled(n) => 128u8.wrapping_add(n as u8),
        }
    }
}

impl From<std::process::ExitStatus> for Ended {
    fn from(st: std::process::ExitStatus) -> Ended {
        use std::os::unix::process::ExitStatusExt;
        match (st.code(), st.signal()) {
            (Some(c), _) => Ended::Exited(c),
            (None, Some(s)) => Ended::Signaled(s),
            (None, None) => Ended::Exited(st.into_raw()),
        }
    }
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ended::Exited(c) => write!(f, "exit status {c}"),
            Ended::Signaled(s) => write!(f, "killed by signal {s}"),
        }
    }
}

/// The one way to end processes: `send(SIGTERM)`, up to `grace` for
/// `running()` to turn false, then `send(SIGKILL)` and up to `after_kill`
/// more. Between looks, `pause(left)` waits at most `left`, and should
/// return as soon as something may have ended (a pidfd turning readable:
/// [`super::pidfd::wait_exit`]), so that nothing waits a period longer
/// than the processes take. Returns whether something was still running
/// at the end.
pub fn term_grace_kill(
    send: impl Fn(libc::c_int),
    running: impl Fn() -> bool,
    pause: impl Fn(std::time::Duration),
    grace: std::time::Duration,
    after_kill: std::time::Duration,
) -> bool {
    use std::time::{Duration, Instant};
    let wait = |d: Duration| {
        let deadline = Instant::now() + d;
        while running() {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            pause(deadline - now);
        }
        true
    };
    send(libc::SIGTERM);
    if wait(grace) {
        return false;
    }
    send(libc::SIGKILL);
    !wait(after_kill)
}

/// Waits for the child `pid` to end and reaps it (retrying on EINTR).
/// Unlike nix's `waitpid`, any signal number is reported, not only those
/// nix has a name for.
pub fn wait_child(pid: i32) -> io::Result<Ended> {
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: waitpid writes the status into our integer.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if libc::WIFEXITED(status) {
            return Ok(Ended::Exited(libc::WEXITSTATUS(status)));
        }
        if libc::WIFSIGNALED(status) {
            return Ok(Ended::Signaled(libc::WTERMSIG(status)));
        }
    }
}
