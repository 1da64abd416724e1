//! The terminal passed through: on a terminal the command gets a terminal of
//! the sandbox's own devpts (`tty` names it), Ctrl-C reaches it; `shell` is
//! an interactive login shell. `script(1)` plays the user's terminal.
mod common;

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::Duration;

use common::{d, stdout, Ns};

/// Runs `chroot-tool ARGS` on a terminal made by script(1), typing `keys` (with pauses at `|`).
fn on_terminal(ns: &Ns, args: &str, keys: &[&[u8]]) -> (String, i32) {
    let mut c = ns
        .cmd("script")
        .args(["-qec", &format!("{} {args}", common::BIN), "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = c.stdin.take().unwrap();
    for k in keys {
        std::thread::sleep(Duration::from_millis(400));
        input.write_all(k).unwrap();
        input.flush().unwrap();
    }
    let o = common::finish_within(c, common::DEADLINE);
    (stdout(&o), o.status.code().unwrap_or(-1))
}

#[test]
fn run_on_a_terminal_gets_a_terminal_of_the_sandbox() {
    let ns = Ns::new();
    let root = ns.busybox_root("root");
    let (out, code) = on_terminal(
        &ns,
        &format!(
            "run -d {} 'tty; test -t 0 && test -t 1 && echo both-terminals; exit 3'",
            d(&root)
        ),
        &[],
    );
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("/dev/pts/0"),
        "tty must name the sandbox's own pty: {out}"
    );
    assert!(out.contains("both-terminals"), "{out}");
    // Without a terminal, none is invented.
    let o = ns.run(&["run", "-d", d(&root), "tty; true"]);
    assert!(stdout(&o).contains("not a tty"), "{}", stdout(&o));
    assert!(ns.run(&["off", "-d", d(&root)]).status.success());
}

#[test]
fn ctrl_c_on_a_terminal_reaches_the_command() {
    let ns = Ns::new();
    let root = ns.busybox_root("root");
    let line = "trap \"echo got-int; exit 9\" INT; sleep 100 & wait";
    let (out, code) = on_terminal(&ns, &format!("run -d {} '{line}'", d(&root)), &[b"\x03"]);
    assert!(out.contains("got-int"), "{out}");
    assert_eq!(code, 9, "{out}");
    assert!(ns.run(&["off", "-d", d(&root)]).status.success());
}

#[test]
fn ctrl_c_without_a_terminal_reaches_the_command_not_the_tool() {
    let ns = Ns::new();
    let root = ns.busybox_root("root");
    assert!(ns.run(&["on", "-d", d(&root)]).status.success());
    // Ctrl-C signals the terminal's whole foreground process group.
    let child = ns
        .tool()
        .args([
            "run",
            "-d",
            d(&root),
            // A killpg reaches the command twice (directly, and from the
            // supervisor, which cannot tell it from a `kill` of itself
            // alone): the trap takes the first.
            "trap 'trap \"\" INT; echo got-int; exit 9' INT; : > /ready; sleep 100 >/dev/null & wait",
        ])
        .stdout(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    // The INT is sent once the shell has its trap (a fixed wait lost the
    // race on a busy machine).
    let end = std::time::Instant::now() + Duration::from_secs(30);
    while !root.join("ready").exists() {
        assert!(std::time::Instant::now() < end, "the command never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(50));
    nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let o = common::finish_within(child, common::DEADLINE);
    assert_eq!(
        o.status.code(),
        Some(9),
        "the tool must survive and return the command's status"
    );
    assert_eq!(stdout(&o), "got-int\n");
    assert!(ns.run(&["off", "-d", d(&root)]).status.success());
}

#[test]
fn shell_is_an_interactive_login_shell() {
    let ns = Ns::new();
    let root = ns.busybox_root("root");
    std::fs::create_dir_all(root.join("root")).unwrap();
    let (out, code) = on_terminal(
        &ns,
        &format!("shell -d {}", d(&root)),
        &[b"echo \"0=$0 home=$HOME pwd=$(pwd)\"; tty; exit 4\n"],
    );
    assert_eq!(code, 4, "{out}");
    assert!(out.contains("0=-sh home=/root pwd=/root"), "{out}");
    assert!(out.contains("/dev/pts/"), "{out}");
    assert!(ns.run(&["off", "-d", d(&root)]).status.success());
}

#[test]
fn a_user_gets_a_terminal_of_its_own() {
    let ns = Ns::new();
    let root = ns.busybox_root("root");
    let (out, code) = on_terminal(
        &ns,
        &format!(
            "run -d {} -u 1000 'echo owner=$(stat -c %u $(tty)) uid=$(id -u)'",
            d(&root)
        ),
        &[],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("owner=1000 uid=1000"), "{out}");
    assert!(ns.run(&["off", "-d", d(&root)]).status.success());
}
