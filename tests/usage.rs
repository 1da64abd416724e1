//! The command line as users meet it: bad usage is one line and exit 2,
//! --help and --version succeed, an empty CHROOT_TOOL_DIR counts as unset.
mod common;

use std::process::{Command, Output, Stdio};

use common::{code, stderr, stdout, BIN};

/// chroot-tool with `args`, no sandbox in the environment, nothing on stdin.
fn tool(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("CHROOT_TOOL_DIR")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Asserts bad usage: exit 2, nothing on stdout, one stderr line that
/// starts `chroot-tool: ` and ends by pointing at `help`; returns the line.
#[track_caller]
fn usage_error(o: &Output, help: &str) -> String {
    let e = stderr(o);
    assert_eq!(code(o), 2, "stderr: {e}");
    assert_eq!(stdout(o), "", "stderr: {e}");
    assert!(e.ends_with('\n'), "{e:?}");
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {e:?}");
    let line = lines[0];
    assert!(line.starts_with("chroot-tool: "), "{line}");
    assert!(!line.contains("error:"), "{line}");
    assert!(!line.contains("Usage"), "{line}");
    assert!(
        line.ends_with(&format!("; see {help}")),
        "{line} should end with \"; see {help}\""
    );
    line.to_string()
}

#[test]
fn unknown_subcommand_is_one_line() {
    let line = usage_error(&tool(&["bogus"]), "chroot-tool --help");
    assert_eq!(
        line,
        "chroot-tool: unrecognized subcommand 'bogus'; see chroot-tool --help"
    );
    // clap's suggestion stays on the line
    let line = usage_error(&tool(&["-d", "/x", "stats"]), "chroot-tool --help");
    assert!(
        line.contains("'stats'") && line.contains("'status'"),
        "{line}"
    );
}

#[test]
fn bad_flag_is_one_line() {
    let line = usage_error(&tool(&["--frob"]), "chroot-tool --help");
    assert!(line.contains("'--frob'"), "{line}");
    // after a subcommand (and -d before it), its own help is named
    let line = usage_error(
        &tool(&["-d", "/x", "status", "--frob"]),
        "chroot-tool status --help",
    );
    assert!(line.contains("'--frob'"), "{line}");
    let line = usage_error(&tool(&["on", "-d"]), "chroot-tool on --help");
    assert!(line.contains("--dir"), "{line}");
}

#[test]
fn bad_timeout_value_is_one_line() {
    let line = usage_error(
        &tool(&["off", "-d", "/x", "--timeout", "soon"]),
        "chroot-tool off --help",
    );
    assert!(
        line.contains("'soon'") && line.contains("--timeout"),
        "{line}"
    );
    usage_error(
        &tool(&["destroy", "--timeout=", "-d", "/x"]),
        "chroot-tool destroy --help",
    );
}

#[test]
fn two_lines_for_run_is_one_line() {
    let line = usage_error(
        &tool(&["run", "-d", "/x", "echo a", "echo b"]),
        "chroot-tool run --help",
    );
    assert!(line.contains("'echo b'"), "{line}");
    // LINE and -- PROG ARGS together
    usage_error(
        &tool(&["run", "-d", "/x", "echo a", "--", "true"]),
        "chroot-tool run --help",
    );
}

#[test]
fn no_command_is_one_line() {
    let line = usage_error(&tool(&[]), "chroot-tool --help");
    assert_eq!(
        line,
        "chroot-tool: no command given; see chroot-tool --help"
    );
}

#[test]
fn help_and_version_succeed() {
    for args in [&["--help"][..], &["-h"], &["help"], &["run", "--help"]] {
        let o = tool(args);
        assert_eq!(code(&o), 0, "{args:?}: {}", stderr(&o));
        assert!(stdout(&o).contains("Usage: chroot-tool"), "{args:?}");
        assert_eq!(stderr(&o), "", "{args:?}");
    }
    let help = stdout(&tool(&["run", "--help"]));
    assert!(!help.contains("DESIGN.md"), "{help}");
    for rule in ["/chroot.d/WORD", "chroot-cmd", "/bin/sh -c"] {
        assert!(help.contains(rule), "run --help lacks {rule:?}: {help}");
    }
    let o = tool(&["--version"]);
    assert_eq!(code(&o), 0);
    assert_eq!(
        stdout(&o),
        format!("chroot-tool {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn empty_chroot_tool_dir_counts_as_unset() {
    for args in [&["status"][..], &["on"], &["run", "true"], &["off"]] {
        let o = Command::new(BIN)
            .args(args)
            .env("CHROOT_TOOL_DIR", "")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
        assert_eq!(
            stderr(&o),
            "chroot-tool: no sandbox given: pass -d DIR or set CHROOT_TOOL_DIR\n",
            "{args:?}"
        );
    }
    // unset gives the same message
    let o = tool(&["status"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("no sandbox given"), "{}", stderr(&o));
}
