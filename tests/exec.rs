//! `launch::run` (the one spawner) for real, as root: root "/" (chroot("/") changes nothing) or a
//! tiny busybox root. A supervisor that must take signals, own a terminal or
//! write to a captured stdout runs in a forked child, so the test process's
//! own descriptors and signals are left alone.
use std::fs;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chroot_tool::launch::{self as exec, ExecError, Launch as Spec, Outcome, Reach, Terminal};
use nix::fcntl::OFlag;
use nix::sys::signal::{kill, Signal};
use nix::sys::termios::tcgetattr;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, pipe2, ForkResult, Pid};

const TIMEOUT: Duration = Duration::from_secs(20);
const PATH: &str = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";

fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "these tests chroot for real: run them as root"
    );
}

fn spec(argv: &[&str]) -> Spec {
    require_root();
    let mut s = Spec::new(
        Reach::chroot("/").unwrap(),
        argv.iter().map(Into::into).collect(),
    );
    s.env = vec![("PATH".into(), PATH.into())];
    s
}

/// `exec::run` in a forked child, which exits with `exit_code` of the result.
struct Supervisor {
    pid: Pid,
    /// Gets one byte when `started` is called.
    started: OwnedFd,
}

fn fork_supervisor(spec: &Spec, prepare: impl FnOnce()) -> Supervisor {
    let (rx, tx) = pipe2(OFlag::O_CLOEXEC).unwrap();
    // SAFETY: the child only runs `prepare` and `exec::run` and then _exits;
    // no test in this binary changes the environment (std's env lock).
    match unsafe { fork() }.unwrap() {
        ForkResult::Child => {
            drop(rx);
            let code = std::panic::catch_unwind(AssertUnwindSafe(|| {
                prepare();
                let r = exec::run(spec, || {
                    nix::unistd::write(&tx, b"s").unwrap();
                });
                exec::exit_code(&r)
            }))
            .unwrap_or(99);
            // SAFETY: leave without running the test harness's exit path.
            unsafe { libc::_exit(code as i32) }
        }
        ForkResult::Parent { child } => Supervisor {
            pid: child,
            started: rx,
        },
    }
}

impl Supervisor {
    fn wait_started(&self) {
        let mut got = Vec::new();
        read_until(self.started.as_fd(), &mut got, |b| !b.is_empty());
        assert_eq!(got, b"s", "started was not called once");
    }

    /// The supervisor's exit status (what chroot-tool would exit with).
    fn wait(self) -> i32 {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            match waitpid(self.pid, Some(WaitPidFlag::WNOHANG)).unwrap() {
                WaitStatus::Exited(_, code) => return code,
                WaitStatus::Signaled(_, sig, _) => panic!("supervisor killed by {sig}"),
                _ if Instant::now() > deadline => {
                    kill(self.pid, Signal::SIGKILL).unwrap();
                    waitpid(self.pid, None).unwrap();
                    panic!("supervisor did not end");
                }
                _ => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    }
}

/// Read `fd` into `acc` until `done(acc)`, end of file, EIO, or the timeout.
fn read_until(fd: BorrowedFd, acc: &mut Vec<u8>, done: impl Fn(&[u8]) -> bool) -> bool {
    let deadline = Instant::now() + TIMEOUT;
    let mut buf = [0u8; 4096];
    while !done(acc) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let mut p = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut p, 1, left.as_millis() as i32) } <= 0 {
            continue;
        }
        match nix::unistd::read(fd, &mut buf) {
            Ok(0) | Err(_) => return done(acc),
            Ok(n) => acc.extend_from_slice(&buf[..n]),
        }
    }
    true
}

/// Run in a forked supervisor with stdout captured: (stdout, exit status).
fn output_of(spec: &Spec) -> (String, i32) {
    let (rx, tx) = pipe2(OFlag::O_CLOEXEC).unwrap();
    let sup = fork_supervisor(spec, move || {
        // SAFETY: dup2 onto stdout in the forked child.
        assert!(unsafe { libc::dup2(tx.as_raw_fd(), 1) } == 1);
    });
    let mut out = Vec::new();
    read_until(rx.as_fd(), &mut out, |_| false);
    (String::from_utf8(out).unwrap(), sup.wait())
}

#[test]
fn exit_status_of_the_command() {
    let cases: [(&[&str], Outcome, u8); 3] = [
        (&["/bin/true"], Outcome::Exited(0), 0),
        (&["sh", "-c", "exit 3"], Outcome::Exited(3), 3),
        (&["sh", "-c", "kill -KILL $$"], Outcome::Signaled(9), 137),
    ];
    for (argv, outcome, code) in cases {
        let r = exec::run(&spec(argv), || {});
        assert_eq!(r.as_ref().unwrap(), &outcome, "{argv:?}");
        assert_eq!(exec::exit_code(&r), code, "{argv:?}");
    }
}

#[test]
fn not_found_is_127() {
    for prog in ["/no/such/program", "no-such-program-ct"] {
        let r = exec::run(&spec(&[prog]), || panic!("started without a command"));
        assert!(
            matches!(&r, Err(ExecError::NotFound { prog: p }) if p == prog),
            "{r:?}"
        );
        assert_eq!(exec::exit_code(&r), 127);
    }
}

#[test]
fn not_executable_is_126() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain");
    fs::write(&file, "#!/bin/sh\necho no\n").unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
    for prog in [&file, dir.path()] {
        let r = exec::run(&spec(&[prog.to_str().unwrap()]), || {
            panic!("started without a command")
        });
        assert!(matches!(r, Err(ExecError::NotExecutable { .. })), "{r:?}");
        assert_eq!(exec::exit_code(&r), 126);
    }
}

#[test]
fn setup_failures_are_125_and_not_taken_for_not_found() {
    let mut s = spec(&["/bin/true"]);
    s.cwd = "/no/such/dir".into();
    let r = exec::run(&s, || panic!("started"));
    match &r {
        Err(ExecError::Setup { what, source }) => {
            assert!(what.contains("/no/such/dir"), "{what}");
            assert_eq!(source.raw_os_error(), Some(libc::ENOENT));
        }
        other => panic!("{other:?}"),
    }
    // The message printed keeps the reason, once.
    let msg = chroot_tool::show::error_chain(r.as_ref().unwrap_err());
    let why = std::io::Error::from_raw_os_error(libc::ENOENT).to_string();
    assert_eq!(
        msg,
        format!("change to /no/such/dir inside /: {why}"),
        "{msg}"
    );
    assert_eq!(exec::exit_code(&r), 125);

    assert!(Reach::chroot("/no/such/root").is_err());

    let r = exec::run(&spec(&[]), || panic!("started"));
    assert_eq!(exec::exit_code(&r), 125);
}

#[test]
fn started_is_called_once_after_exec() {
    let mut calls = 0;
    let r = exec::run(&spec(&["/bin/true"]), || calls += 1);
    assert_eq!(r.unwrap(), Outcome::Exited(0));
    assert_eq!(calls, 1);
}

#[test]
fn env_is_exactly_the_given_one() {
    let mut s = spec(&["env"]);
    s.env.push(("GREETING".into(), "hello world".into()));
    let (out, code) = output_of(&s);
    assert_eq!(code, 0);
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort();
    assert_eq!(lines, ["GREETING=hello world", &format!("PATH={PATH}")]);
}

#[test]
fn cwd_is_applied() {
    let mut s = spec(&["/bin/pwd"]);
    s.cwd = "/usr/share".into();
    assert_eq!(output_of(&s), ("/usr/share\n".into(), 0));
}

#[test]
fn arg0_is_applied() {
    let mut s = spec(&["/bin/cat", "/proc/self/cmdline"]);
    s.arg0 = Some("-probe".into());
    assert_eq!(output_of(&s), ("-probe\0/proc/self/cmdline\0".into(), 0));
}

#[test]
fn argv_does_not_go_through_a_shell() {
    let s = spec(&["/bin/echo", "$HOME", "a;b", "*", "`x`"]);
    assert_eq!(output_of(&s), ("$HOME a;b * `x`\n".into(), 0));
}

#[test]
fn the_command_starts_with_a_clean_signal_state() {
    let s = spec(&["grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"]);
    let (rx, tx) = pipe2(OFlag::O_CLOEXEC).unwrap();
    let sup = fork_supervisor(&s, move || {
        // SAFETY: in the forked child: stdout to the pipe, SIGHUP ignored
        // as under nohup; the command must still get the default.
        unsafe {
            assert!(libc::dup2(tx.as_raw_fd(), 1) == 1);
            libc::signal(libc::SIGHUP, libc::SIG_IGN);
        }
    });
    let mut out = Vec::new();
    read_until(rx.as_fd(), &mut out, |_| false);
    assert_eq!(sup.wait(), 0);
    let out = String::from_utf8(out).unwrap();
    let field = |name: &str| {
        let line = out.lines().find(|l| l.starts_with(name)).unwrap();
        u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
    };
    assert_eq!(field("SigBlk:"), 0, "{out}");
    let ours = [libc::SIGHUP, libc::SIGINT, libc::SIGQUIT, libc::SIGTERM];
    for sig in ours {
        assert_eq!(
            field("SigIgn:") & (1 << (sig - 1)),
            0,
            "signal {sig}: {out}"
        );
    }
}

#[test]
fn sigterm_to_the_supervisor_reaches_the_command() {
    let started = Instant::now();
    let sup = fork_supervisor(&spec(&["sleep", "30"]), || {});
    sup.wait_started();
    kill(sup.pid, Signal::SIGTERM).unwrap();
    assert_eq!(sup.wait(), 128 + libc::SIGTERM);
    assert!(started.elapsed() < Duration::from_secs(15));
}

#[test]
fn sighup_to_the_supervisor_reaches_the_command() {
    let sup = fork_supervisor(&spec(&["sleep", "30"]), || {});
    sup.wait_started();
    kill(sup.pid, Signal::SIGHUP).unwrap();
    assert_eq!(sup.wait(), 128 + libc::SIGHUP);
}

#[test]
fn sigint_and_sigquit_sent_to_the_supervisor_alone_reach_the_command() {
    // A `kill -INT` of the supervisor (not the terminal's Ctrl-C, which the
    // command got already) is passed on: the command's trap runs.
    for (sig, code) in [(Signal::SIGINT, 7), (Signal::SIGQUIT, 8)] {
        let line = format!("trap 'exit {code}' {}; sleep 5 & wait", &sig.as_str()[3..]);
        let sup = fork_supervisor(&spec(&["sh", "-c", &line]), || {});
        sup.wait_started();
        std::thread::sleep(Duration::from_millis(200));
        kill(sup.pid, sig).unwrap();
        assert_eq!(sup.wait(), code, "{sig}");
    }
}

#[test]
fn every_catchable_signal_to_the_supervisor_ends_the_command_with_it() {
    for sig in [
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGALRM,
        Signal::SIGPIPE,
        Signal::SIGVTALRM,
        Signal::SIGPROF,
        Signal::SIGPWR,
    ] {
        let sup = fork_supervisor(&spec(&["sleep", "5"]), || {});
        sup.wait_started();
        kill(sup.pid, sig).unwrap();
        assert_eq!(sup.wait(), 128 + sig as i32, "{sig}");
    }
    // A real-time signal too.
    let sup = fork_supervisor(&spec(&["sleep", "5"]), || {});
    sup.wait_started();
    let rt = libc::SIGRTMIN() + 3;
    // SAFETY: a plain kill(2).
    assert_eq!(unsafe { libc::kill(sup.pid.as_raw(), rt) }, 0);
    assert_eq!(sup.wait(), 128 + rt);
}

#[test]
fn path_lookup_and_cwd_are_inside_the_root() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    fs::create_dir_all(r.join("bin")).unwrap();
    fs::create_dir_all(r.join("opt/ct-tools")).unwrap();
    install_exec(Path::new("/bin/busybox"), &r.join("bin/busybox"));
    let probe = "ct-exec-probe";
    assert!(!Path::new("/opt/ct-tools").join(probe).exists());
    let script = r.join("opt/ct-tools").join(probe);
    let body = tempfile::NamedTempFile::new().unwrap();
    fs::write(
        body.path(),
        "#!/bin/busybox sh\necho \"$0 in $(/bin/busybox pwd):\" $(/bin/busybox ls /)\n",
    )
    .unwrap();
    install_exec(body.path(), &script);

    let mut s = spec(&[probe]);
    s.reach = Reach::chroot(r).unwrap();
    s.cwd = "/opt".into();
    s.env = vec![("PATH".into(), "/opt/ct-tools".into())];
    let (out, code) = output_of(&s);
    assert_eq!(code, 0);
    assert_eq!(out, format!("/opt/ct-tools/{probe} in /opt: bin opt\n"));
}

/// The spawner searches `PATH` as `execvp` does, inside the root: a
/// directory whose file is not executable is passed over for a later one,
/// a missing or non-directory entry is skipped, an empty entry is the
/// working directory, and a file without `#!` runs with /bin/sh.
#[test]
fn path_search_follows_execvp_inside_the_root() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    for d in ["bin", "a", "b", "w"] {
        fs::create_dir_all(r.join(d)).unwrap();
    }
    install_exec(Path::new("/bin/busybox"), &r.join("bin/busybox"));
    std::os::unix::fs::symlink("busybox", r.join("bin/sh")).unwrap();
    fs::write(r.join("notdir"), "").unwrap();
    let body = tempfile::NamedTempFile::new().unwrap();
    let put = |at: &str, text: &str, mode: u32| {
        fs::write(body.path(), text).unwrap();
        install_exec(body.path(), &r.join(at));
        fs::set_permissions(r.join(at), fs::Permissions::from_mode(mode)).unwrap();
    };
    put("a/ct-prog", "#!/bin/busybox sh\necho from a\n", 0o644);
    put(
        "b/ct-prog",
        "#!/bin/busybox sh\necho from b \"$0\" \"$@\"\n",
        0o755,
    );
    put(
        "w/ct-here",
        "#!/bin/busybox sh\necho from the working directory\n",
        0o755,
    );
    // No `#!`: the shell runs it.
    put("b/ct-plain", "echo plain \"$1\"\n", 0o755);

    let run = |argv: &[&str], path: &str, cwd: &str| {
        let mut s = spec(argv);
        s.reach = Reach::chroot(r).unwrap();
        s.env = vec![("PATH".into(), path.into())];
        s.cwd = cwd.into();
        output_of(&s)
    };
    assert_eq!(
        run(&["ct-prog", "x y"], "/nowhere:/notdir:/a:/b", "/"),
        ("from b /b/ct-prog x y\n".to_string(), 0)
    );
    assert_eq!(
        run(&["ct-here"], "/a::/b", "/w"),
        ("from the working directory\n".to_string(), 0)
    );
    assert_eq!(
        run(&["ct-plain", "z"], "/b", "/"),
        ("plain z\n".to_string(), 0)
    );
    // Only a file that is not executable: "cannot execute", not "not found".
    let mut s = spec(&["ct-prog"]);
    s.reach = Reach::chroot(r).unwrap();
    s.env = vec![("PATH".into(), "/a:/nowhere".into())];
    let res = exec::run(&s, || panic!("started without a command"));
    assert!(
        matches!(res, Err(ExecError::NotExecutable { .. })),
        "{res:?}"
    );
    // The host's PATH plays no part: the program is looked up inside.
    s.env = vec![("PATH".into(), "/usr/bin:/bin".into())];
    let res = exec::run(&s, || panic!("started without a command"));
    assert!(matches!(res, Err(ExecError::NotFound { .. })), "{res:?}");
}

// ---- pty mode -------------------------------------------------------------

/// A pty standing for the user's terminal: the test types into `master` and
/// reads what the supervisor shows; `slave` becomes the supervisor's terminal.
struct UserTerminal {
    master: OwnedFd,
    slave: Option<OwnedFd>,
    name: PathBuf,
}

impl UserTerminal {
    fn new(rows: u16, cols: u16) -> UserTerminal {
        let master: OwnedFd = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY)
            .open("/dev/ptmx")
            .unwrap()
            .into();
        let mut name = [0 as libc::c_char; 64];
        // SAFETY: unlockpt and ptsname_r on our master, into our buffer.
        let name = unsafe {
            assert_eq!(libc::unlockpt(master.as_raw_fd()), 0);
            assert_eq!(
                libc::ptsname_r(master.as_raw_fd(), name.as_mut_ptr(), name.len()),
                0
            );
            PathBuf::from(
                std::ffi::CStr::from_ptr(name.as_ptr())
                    .to_str()
                    .unwrap()
                    .to_owned(),
            )
        };
        let slave = Some(open_tty(&name));
        let t = UserTerminal {
            master,
            slave,
            name,
        };
        t.resize(rows, cols);
        t
    }

    /// Change the window size (the kernel sends SIGWINCH to its foreground).
    fn resize(&self, rows: u16, cols: u16) {
        let ws = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one winsize.
        assert_eq!(
            unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &ws) },
            0
        );
    }

    fn type_keys(&self, keys: &[u8]) {
        assert_eq!(nix::unistd::write(&self.master, keys).unwrap(), keys.len());
    }

    /// Read the screen until it shows `text`.
    fn expect(&self, screen: &mut Vec<u8>, text: &str) {
        let found = read_until(self.master.as_fd(), screen, |b| {
            String::from_utf8_lossy(b).contains(text)
        });
        assert!(
            found,
            "{text:?} not shown; screen: {:?}",
            String::from_utf8_lossy(screen)
        );
    }

    /// Start a supervisor whose controlling terminal, stdin, stdout (and,
    /// unless `stderr` is given, stderr) is this terminal.
    fn supervise(&mut self, argv: &[&str], stderr: Option<OwnedFd>) -> Supervisor {
        let mut s = spec(argv);
        s.terminal = Terminal::Pty {
            devpts: chroot_tool::sys::open_root(Path::new("/dev/pts")).unwrap(),
        };
        let slave = self.slave.take().unwrap();
        fork_supervisor(&s, move || {
            let fd = slave.as_raw_fd();
            // SAFETY: in the forked child: a session of its own with this
            // terminal as its controlling terminal, as a login would make.
            unsafe {
                assert!(libc::setsid() > 0);
                assert_eq!(libc::ioctl(fd, libc::TIOCSCTTY, 0), 0);
                for n in 0..3 {
                    assert_eq!(libc::dup2(fd, n), n);
                }
                if let Some(err) = &stderr {
                    assert_eq!(libc::dup2(err.as_raw_fd(), 2), 2);
                }
            }
        })
    }
}

fn open_tty(name: &Path) -> OwnedFd {
    fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(name)
        .unwrap()
        .into()
}

fn shown(screen: &[u8]) -> String {
    String::from_utf8_lossy(screen).replace('\r', "")
}

#[test]
fn pty_the_command_has_a_terminal_of_its_own() {
    let mut term = UserTerminal::new(37, 101);
    let before = tcgetattr(term.slave.as_ref().unwrap()).unwrap();
    let sup = term.supervise(
        &[
            "sh",
            "-c",
            "tty; test -t 0 && test -t 1 && test -t 2 && echo ALL-TTY; stty size; echo DONE",
        ],
        None,
    );
    let mut screen = Vec::new();
    term.expect(&mut screen, "DONE");
    assert_eq!(sup.wait(), 0);
    let out = shown(&screen);
    let tty = out.lines().next().unwrap();
    assert!(tty.starts_with("/dev/pts/"), "{out:?}");
    assert_ne!(Path::new(tty), term.name, "the command got our terminal");
    assert!(out.contains("ALL-TTY\n"), "{out:?}");
    assert!(out.contains("37 101\n"), "{out:?}");

    // Our terminal is back in the mode it was in.
    let after = tcgetattr(open_tty(&term.name)).unwrap();
    assert_eq!(after.local_flags, before.local_flags);
    assert_eq!(after.input_flags, before.input_flags);
    assert_eq!(after.output_flags, before.output_flags);
}

#[test]
fn pty_typed_keys_reach_the_command() {
    let mut term = UserTerminal::new(24, 80);
    let sup = term.supervise(&["sh", "-c", "echo READY; read x; echo \"got:$x\""], None);
    let mut screen = Vec::new();
    term.expect(&mut screen, "READY");
    term.type_keys(b"hello there\n");
    term.expect(&mut screen, "got:hello there");
    assert_eq!(sup.wait(), 0);
}

#[test]
fn pty_ctrl_c_interrupts_the_command() {
    let mut term = UserTerminal::new(24, 80);
    let sup = term.supervise(&["sh", "-c", "echo READY; exec sleep 30"], None);
    let mut screen = Vec::new();
    term.expect(&mut screen, "READY");
    term.type_keys(b"\x03");
    assert_eq!(sup.wait(), 128 + libc::SIGINT);
}

#[test]
fn pty_sigint_to_the_supervisor_is_forwarded() {
    let mut term = UserTerminal::new(24, 80);
    let sup = term.supervise(&["sleep", "30"], None);
    sup.wait_started();
    kill(sup.pid, Signal::SIGINT).unwrap();
    assert_eq!(sup.wait(), 128 + libc::SIGINT);
}

#[test]
fn pty_window_size_changes_reach_the_command() {
    let mut term = UserTerminal::new(24, 80);
    let sup = term.supervise(&["sh", "-c", "echo READY; read x; stty size"], None);
    let mut screen = Vec::new();
    term.expect(&mut screen, "READY");
    term.resize(50, 120);
    term.type_keys(b"\n");
    term.expect(&mut screen, "50 120");
    assert_eq!(sup.wait(), 0);
}

#[test]
fn pty_output_is_not_lost_at_exit() {
    let mut term = UserTerminal::new(24, 80);
    let sup = term.supervise(&["seq", "1", "20000"], None);
    let mut screen = Vec::new();
    term.expect(&mut screen, "\n20000\r\n");
    assert_eq!(sup.wait(), 0);
    let out = shown(&screen);
    let expected: String = (1..=20000).map(|n| format!("{n}\n")).collect();
    assert_eq!(out, expected);
}

#[test]
fn pty_stderr_stays_ours_when_it_is_not_a_terminal() {
    let mut term = UserTerminal::new(24, 80);
    let (rx, tx) = pipe2(OFlag::O_CLOEXEC).unwrap();
    let sup = term.supervise(&["sh", "-c", "echo to-err >&2; echo to-out"], Some(tx));
    let mut screen = Vec::new();
    term.expect(&mut screen, "to-out");
    assert_eq!(sup.wait(), 0);
    let mut err = String::new();
    fs::File::from(rx).read_to_string(&mut err).unwrap();
    assert_eq!(err, "to-err\n");
    assert!(!shown(&screen).contains("to-err"));
}

/// Copies an executable with a child process, so that no descriptor open for
/// writing on it exists in this process for a concurrent fork to inherit
/// (exec would then fail with ETXTBSY).
fn install_exec(from: &Path, to: &Path) {
    let st = std::process::Command::new("install")
        .args(["-m", "0755"])
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn a_deadline_ends_the_command_and_what_it_started() {
    let tmp = tempfile::tempdir().unwrap();
    let pidfile = tmp.path().join("pid");
    let line = format!(
        "trap '' TERM; sleep 100 & echo $! > {}; wait",
        pidfile.display()
    );
    let mut s = spec(&["sh", "-c", &line]);
    s.deadline = Some(exec::Deadline {
        after: Duration::from_millis(300),
        grace: Duration::from_millis(300),
    });
    let t = Instant::now();
    let r = exec::run(&s, || {});
    assert!(
        matches!(r, Err(ExecError::TimedOut { after }) if after == Duration::from_millis(300)),
        "{r:?}"
    );
    assert_eq!(exec::exit_code(&r), 124);
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert!(
        t.elapsed() >= Duration::from_millis(300),
        "{:?}",
        t.elapsed()
    );
    // The sleep it started was ended too, not left behind.
    let pid = fs::read_to_string(&pidfile).unwrap().trim().to_string();
    let gone = Instant::now() + Duration::from_secs(5);
    while Path::new(&format!("/proc/{pid}")).exists() {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if stat.contains(") Z") || Instant::now() > gone {
            assert!(
                stat.contains(") Z") || stat.is_empty(),
                "left running: {stat}"
            );
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
