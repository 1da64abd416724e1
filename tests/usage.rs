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
fn line_and_argv_together_is_one_line() {
    // (Several words without `--` are an exact argv: see the issue 8 section below.)
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
fn original_tool_conf_with_unknown_section_works_and_an_unknown_key_is_an_error() {
    let ns = common::Ns::new();
    let root = ns.busybox_root("sb");
    let host = ns.tmp.path().join("host project");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("hello.txt"), "from the host\n").unwrap();
    let conf = root.join("chroot.d/tool.conf");
    // A typo in a [bind] key would bring the mount up other than asked
    // (`opts:ro` read-write): an error naming the key and the near one, nothing mounted.
    for (key, near) in [("opts:ro", "did you mean opt? "), ("mode:ro", "")] {
        std::fs::write(
            &conf,
            format!("[bind]\nsrc:\"{}\" tgt: /project {key}\n", common::d(&host)),
        )
        .unwrap();
        let o = ns.run(&["on", "-d", common::d(&root)]);
        let name = key.split(':').next().unwrap();
        assert_eq!(code(&o), 1, "{}", stderr(&o));
        assert_eq!(
            stderr(&o),
            format!(
                "chroot-tool: {}:2: unknown key \"{name}\" in [bind] ({near}known: tgt, src, fs, opt, ignore)\n",
                common::d(&conf)
            )
        );
        assert_eq!(ns.mounts_under(&root), Vec::<String>::new());
    }
    // As the original wrote them: a section of its own is skipped with a warning.
    std::fs::write(
        &conf,
        format!(
            "[bind]\nsrc:\"{}\" tgt: /project\n[pack]\nlevel 9 \"\n[bind]\ntgt:/scratch fs:tmpfs\n",
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
        [format!(
            "chroot-tool: warning: {conf}:3: unknown section [pack] ignored with its lines \
             (known: bind, exclude, limits, run)"
        ),],
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

// ---- issue 8: what a new user hit ----

use std::time::{Duration, Instant};

/// Several words without `--` are an exact argv (as after `--`); one
/// argument stays a shell line.
#[test]
fn several_words_are_an_exact_argv_one_is_a_shell_line() {
    let ns = common::Ns::new();
    let root = ns.busybox_root("sb");
    let r = common::d(&root);
    let o = ns.run(&["run", "-d", r, "echo", "a", "b  c"]);
    assert_eq!(common::ok(&o), "a b  c\n");
    // No shell between: `;`, `$` and `*` reach the program as they are.
    let o = ns.run(&["run", "-d", r, "printf", "%s|", "x;y", "$HOME", "*"]);
    assert_eq!(common::ok(&o), "x;y|$HOME|*|");
    // -d after the words, as everywhere.
    let o = ns.run(&["run", "echo", "x", "y", "-d", r]);
    assert_eq!(common::ok(&o), "x y\n");
    // One argument: a shell line.
    let o = ns.run(&["run", "-d", r, "echo a; echo $0"]);
    assert_eq!(common::ok(&o), "a\n/bin/sh\n");
    // The same as `--`.
    let o = ns.run(&["run", "-d", r, "--", "printf", "%s|", "x;y", "$HOME"]);
    assert_eq!(common::ok(&o), "x;y|$HOME|");
    // The exit status is the command's.
    let o = ns.run(&["run", "-d", r, "--", "sh", "-c", "exit 7"]);
    assert_eq!(code(&o), 7, "{}", stderr(&o));
    // Options stay chroot-tool's anywhere on the line: the command's own
    // go after `--`, and the error says so.
    let line = usage_error(
        &ns.run(&["run", "-d", r, "sh", "-c", "exit 7"]),
        "chroot-tool run --help",
    );
    assert!(
        line.contains("unexpected argument '-c' found (a command's own options go after --: chroot-tool run -d DIR -- PROG ARGS...)"),
        "{line}"
    );
    common::ok(&ns.run(&["off", "-d", r]));
}

/// `on` and `off` count the same things: what `on` says it mounted is what
/// `off` says it unmounted, with or without a mount of the user's below DIR.
#[test]
fn on_and_off_say_the_same_count() {
    let ns = common::Ns::new();
    let root = ns.busybox_root("sb");
    let r = common::d(&root);
    let count = |out: &str, word: &str| -> usize {
        let at = out
            .find(&format!(" {word},"))
            .or_else(|| out.find(&format!(" {word})")));
        let head = &out[..at.unwrap_or_else(|| panic!("no {word:?} in {out:?}"))];
        head.rsplit('(').next().unwrap().parse().unwrap()
    };
    for user_mount in [false, true] {
        if user_mount {
            std::fs::create_dir_all(root.join("mnt/u")).unwrap();
            common::ok(&ns.sh(&format!("mount -t tmpfs u {}/mnt/u", r)));
        }
        let on = common::ok(&ns.run(&["on", "-d", r]));
        let n = count(&on, "mounted");
        assert!(n > 5, "{on}");
        let again = common::ok(&ns.run(&["on", "-d", r]));
        assert_eq!(count(&again, "mounted"), 0, "{again}");
        let off = common::ok(&ns.run(&["off", "-d", r]));
        assert_eq!(count(&off, "unmounted"), n, "on: {on} off: {off}");
        if user_mount {
            // The user's own mount is left where it was, and counted by neither.
            assert_eq!(ns.mounts_under(&root), [format!("{r}/mnt/u")]);
        } else {
            assert!(ns.mounts_under(&root).is_empty());
        }
    }
}

/// `off` that waits for processes says so, and for how long, on stderr.
#[test]
fn off_says_it_waits_and_how_long() {
    let ns = common::Ns::new();
    let root = ns.busybox_root("sb");
    let r = common::d(&root);
    common::ok(&ns.run(&["on", "-d", r]));
    // A process inside that ignores TERM (sleep inherits the ignored signal).
    let bg = ns
        .tool()
        .args(["run", "-d", r, "trap '' TERM; sleep 1000; true"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let end = Instant::now() + Duration::from_secs(20);
    while !common::ok(&ns.run(&["status", "-d", r])).contains("sleep") {
        assert!(Instant::now() < end, "the process never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    let t0 = Instant::now();
    let o = ns.run(&["off", "-d", r, "--timeout", "1"]);
    let took = t0.elapsed();
    common::ok(&o);
    let e = stderr(&o);
    assert!(
        e.contains("chroot-tool: waiting up to 1 s for 2 processes to end"),
        "{e}"
    );
    assert!(took >= Duration::from_millis(900), "{took:?}");
    assert!(stdout(&o).contains("2 processes ended"), "{}", stdout(&o));
    common::finish_within(bg, common::DEADLINE);
    // Nothing to wait for: nothing said.
    common::ok(&ns.run(&["on", "-d", r]));
    let o = ns.run(&["off", "-d", r, "--timeout", "1"]);
    common::ok(&o);
    assert_eq!(stderr(&o), "");
}

/// An error names what is wrong once: no "no such directory ... No such
/// file or directory".
#[test]
fn a_missing_directory_is_said_once() {
    let ns = common::Ns::new();
    let missing = ns.tmp.path().join("nope");
    for verb in ["on", "off", "status", "run"] {
        let mut args = vec![verb, "-d", common::d(&missing)];
        if verb == "run" {
            args.push("true");
        }
        let o = ns.run(&args);
        let e = stderr(&o);
        assert_ne!(code(&o), 0);
        assert_eq!(
            e,
            format!(
                "chroot-tool: {}: no such directory (make one with `chroot-tool create -d DIR`)\n",
                common::d(&missing)
            ),
            "{verb}"
        );
    }
}

/// The sandbox runs under the host's hostname: `on` makes its /etc/hosts
/// resolve that name (one line added, once), never writing through a
/// symlink of the rootfs.
#[test]
fn hosts_resolves_the_name_the_sandbox_runs_under() {
    let ns = common::Ns::new();
    let host = nix::unistd::gethostname().unwrap().into_string().unwrap();
    let root = ns.busybox_root("sb");
    let r = common::d(&root);
    std::fs::write(
        root.join("etc/hosts"),
        "127.0.0.1\tlocalhost\n127.0.1.1\tsb\n",
    )
    .unwrap();
    common::ok(&ns.run(&["on", "-d", r]));
    let hosts = std::fs::read_to_string(root.join("etc/hosts")).unwrap();
    assert!(
        hosts.starts_with("127.0.0.1\tlocalhost\n127.0.1.1\tsb\n127.0.1.1\t")
            && hosts.lines().nth(2).unwrap().split_whitespace().nth(1) == Some(&host),
        "{hosts}"
    );
    // Inside, the name `hostname` gives is in /etc/hosts.
    let o = ns.run(&["run", "-d", r, "grep -w \"$(hostname)\" /etc/hosts"]);
    assert!(common::ok(&o).contains(&host));
    // Once: off and on again add nothing.
    common::ok(&ns.run(&["off", "-d", r]));
    common::ok(&ns.run(&["on", "-d", r]));
    assert_eq!(
        std::fs::read_to_string(root.join("etc/hosts")).unwrap(),
        hosts
    );
    common::ok(&ns.run(&["off", "-d", r]));

    // /etc/hosts a symlink to a host file, /etc a symlink to a host dir:
    // neither the host file nor the symlink is touched; on still works.
    let outside = ns.tmp.path().join("host-hosts");
    std::fs::write(&outside, "127.0.0.1 localhost\n").unwrap();
    std::fs::remove_file(root.join("etc/hosts")).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("etc/hosts")).unwrap();
    common::ok(&ns.run(&["on", "-d", r]));
    common::ok(&ns.run(&["off", "-d", r]));
    assert_eq!(
        std::fs::read_to_string(&outside).unwrap(),
        "127.0.0.1 localhost\n"
    );
    assert!(root.join("etc/hosts").is_symlink());
    let root2 = ns.busybox_root("sb2");
    let hostetc = ns.tmp.path().join("host-etc");
    std::fs::create_dir(&hostetc).unwrap();
    std::fs::write(hostetc.join("hosts"), "127.0.0.1 localhost\n").unwrap();
    std::fs::write(hostetc.join("passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
    std::fs::remove_dir_all(root2.join("etc")).unwrap();
    std::os::unix::fs::symlink(&hostetc, root2.join("etc")).unwrap();
    let o = ns.run(&["on", "-d", common::d(&root2)]);
    common::ok(&o);
    assert_eq!(
        std::fs::read_to_string(hostetc.join("hosts")).unwrap(),
        "127.0.0.1 localhost\n"
    );
    common::ok(&ns.run(&["off", "-d", common::d(&root2)]));
}
