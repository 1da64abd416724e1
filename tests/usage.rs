//! The command line as users meet it: bad usage is one line and exit 2,
//! --help and --version succeed, an empty CHROOT_TOOL_DIR counts as unset.
mod common;

use std::process::{Command, Output, Stdio};

use common::{code, stderr, stdout, BIN};

/// chroot-tool with `args`, no sandbox in the environment, nothing on stdin.
fn tool(args: &[&str]) -> Output {
    common::output_within(
        Command::new(BIN)
            .args(args)
            .env_remove("CHROOT_TOOL_DIR")
            .stdin(Stdio::null()),
        common::DEADLINE,
    )
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
        let o = common::output_within(
            Command::new(BIN)
                .args(args)
                .env("CHROOT_TOOL_DIR", "")
                .stdin(Stdio::null()),
            common::DEADLINE,
        );
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

#[test]
fn original_tool_conf_with_unknown_key_and_section_works() {
    let ns = common::Ns::new();
    let root = ns.busybox_root("sb");
    let host = ns.tmp.path().join("host project");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("hello.txt"), "from the host\n").unwrap();
    let conf = root.join("chroot.d/tool.conf");
    // As the original wrote them: a key it never knew, a section of its own.
    std::fs::write(
        &conf,
        format!(
            "[bind]\nsrc:\"{}\" tgt: /project mode:ro\n[pack]\nlevel 9 \"\n[bind]\ntgt:/scratch fs:tmpfs\n",
            common::d(&host)
        ),
    )
    .unwrap();
    let conf = common::d(&conf);

    let o = ns.run(&["on", "-d", common::d(&root)]);
    common::ok(&o);
    let warnings: Vec<String> = stderr(&o)
        .lines()
        .filter(|l| l.starts_with("chroot-tool: warning: "))
        .map(String::from)
        .collect();
    assert_eq!(
        warnings,
        [
            format!(
                "chroot-tool: warning: {conf}:2: unknown key \"mode\" in [bind] ignored \
                 (known: tgt, src, fs, opt, ignore)"
            ),
            format!(
                "chroot-tool: warning: {conf}:3: unknown section [pack] ignored with its lines \
                 (known: bind, exclude, limits, run)"
            ),
        ],
        "{}",
        stderr(&o)
    );
    let mounts = ns.mounts_under(&root);
    for tgt in ["project", "scratch"] {
        let want = common::d(&root.join(tgt)).to_string();
        assert!(mounts.contains(&want), "{want} not in {mounts:?}");
    }

    let o = ns.run(&["run", "-d", common::d(&root), "cat /project/hello.txt"]);
    assert_eq!(common::ok(&o), "from the host\n");
    // the bind is a real one: a file made inside appears on the host
    common::ok(&ns.run(&[
        "run",
        "-d",
        common::d(&root),
        "echo back > /project/back.txt",
    ]));
    assert_eq!(
        std::fs::read_to_string(host.join("back.txt")).unwrap(),
        "back\n"
    );

    common::ok(&ns.run(&["off", "-d", common::d(&root)]));
    assert_eq!(ns.mounts_under(&root), Vec::<String>::new());
    assert!(!root.join("project/hello.txt").exists());
}
