//! Running debootstrap: under a guard that leads its process group, in a
//! mount namespace of its own, and dies with chroot-tool taking the group
//! along (see `guard`); stdout and stderr on one pipe, its machine-readable
//! progress on another given to it as fd 3, and every catchable fatal
//! signal taken through a signalfd so that an interruption ends
//! debootstrap's whole group (TERM, then KILL) before we return.
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::{pipe2, Pid};

use crate::sys::signals::{set_of, Blocked};

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
pub struct Signals(Blocked);

impl Signals {
    pub fn block() -> io::Result<Signals> {
        let set = set_of(FATAL.iter().map(|&s| s as libc::c_int));
        Blocked::block(&set).map(Signals)
    }

    /// A signal that arrived and was not read yet.
    pub fn pending(&self) -> Option<Signal> {
        match self.0.read() {
            Ok(Some(info)) => Signal::try_from(info.ssi_signo as i32).ok(),
            _ => None,
        }
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

/// Runs `cmd` (a backend: debootstrap with `--debian-installer` among its
/// arguments, or mmdebstrap) to its end or until a signal arrives; every
/// line of its output and of its fd 3 goes to `on_line`. With `map`, it
/// runs as root of a user namespace with that mapping (a normal user's
/// create). When this returns, nothing of its process group is left running.
pub fn run(
    mut cmd: Command,
    sigs: &Signals,
    keep: BorrowedFd,
    map: Option<&crate::idmap::IdMap>,
    on_line: &mut dyn FnMut(Stream, &str),
) -> io::Result<Outcome> {
    let (out_r, out_w) = pipe2(OFlag::O_CLOEXEC)?;
    let (fd3_r, fd3_w) = pipe2(OFlag::O_CLOEXEC)?;
    let sync = match map {
        Some(_) => Some(pipe2(OFlag::O_CLOEXEC)?),
        None => None,
    };
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(out_w.try_clone()?))
        .stderr(Stdio::from(out_w));
    crate::sys::guard::install(
        &mut cmd,
        fd3_w.as_raw_fd(),
        keep.as_raw_fd(),
        sync.as_ref().map(|(r, _)| r.as_raw_fd()),
    );
    let mut child = cmd.spawn()?;
    // Our copies of the write ends go, so that the pipes end with debootstrap.
    drop(cmd);
    drop(fd3_w);
    let pgid = Pid::from_raw(child.id() as i32);
    if let (Some(map), Some((r, w))) = (map, sync) {
        drop(r);
        // The guard waits in its new user namespace for its maps.
        let mapped = map
            .write_for(pgid.as_raw())
            .map_err(|e| io::Error::other(e.to_string()))
            .and_then(|()| {
                File::from(w)
                    .write_all(b"1")
                    .map_err(|e| io::Error::new(e.kind(), format!("starting the backend: {e}")))
            });
        if let Err(e) = mapped {
            end_group(&mut child, pgid);
            return Err(e);
        }
    }

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
        let mut fds = vec![PollFd::new(sigs.0.as_fd(), PollFlags::POLLIN)];
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
    let child = std::cell::RefCell::new(child);
    // Reaps debootstrap as soon as it ends, so that the group can empty.
    let running = || matches!(child.borrow_mut().try_wait(), Ok(None)) || group_alive();
    if running() {
        let send = |sig| {
            let _ = killpg(pgid, Signal::try_from(sig).unwrap_or(Signal::SIGKILL));
        };
        // What survives KILL (stuck in the kernel) is not waited for longer.
        // A process group has no descriptor to wait on: looked at again
        // every 10 ms.
        let pause = |d: std::time::Duration| {
            std::thread::sleep(d.min(std::time::Duration::from_millis(10)))
        };
        crate::sys::process::term_grace_kill(send, running, pause, GRACE, GRACE * 2);
    }
    let _ = child.borrow_mut().try_wait();
}
