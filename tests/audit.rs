//! The audit history (issue 8): one JSON line per on, run, shell and off,
//! kept on the host side, never lost or interleaved by parallel runs, read
//! back by `chroot-tool log`. Each test's history is in its own temp dir
//! (`CHROOT_TOOL_STATE_DIR`, set by the harness), or on a tmpfs over
//! /var/lib inside the test's mount namespace: never the machine's own.
mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;

use common::{code, d, ok, stderr, Ns};
use serde_json::Value;

// ---- issue 8: audit history ----

/// The one history file of `ns`'s state dir (there is one sandbox per test).
fn history_files(dir: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(dir.join("history")) {
        Ok(rd) => rd.flatten().map(|e| e.path()).collect(),
        Err(_) => vec![],
    }
}

/// `log --json` of `root`, each line parsed.
fn log_json(ns: &Ns, root: &Path, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["log", "--json", "-d", d(root)];
    args.extend_from_slice(extra);
    ok(&ns.run(&args))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect()
}

#[test]
fn parallel_runs_each_leave_one_whole_line_with_their_status() {
    let ns = Ns::new();
    let root = ns.busybox_root("sb");
    ok(&ns.run(&["on", "-d", d(&root)]));
    // 20 runs at once, each with its own command and exit status.
    let children: Vec<_> = (0..20)
        .map(|i| {
            ns.tool()
                .args(["run", "-d", d(&root), "--", "sh", "-c"])
                .arg(format!("echo run-{i} >/dev/null; exit {}", i % 7))
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (i, c) in children.into_iter().enumerate() {
        let o = common::finish_within(c, common::DEADLINE);
        assert_eq!(code(&o), (i % 7) as i32, "{}", stderr(&o));
        assert_eq!(stderr(&o), "", "run {i}");
    }
    ok(&ns.run(&["off", "-d", d(&root), "--timeout", "3"]));

    let files = history_files(&ns.state_dir());
    assert_eq!(files.len(), 1, "{files:?}");
    let text = std::fs::read_to_string(&files[0]).unwrap();
    // Every line whole: 1 on + 20 runs + 1 off, each a JSON object.
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    assert_eq!(lines.len(), 22, "{text}");
    assert!(text.ends_with('\n'));
    assert_eq!(lines[0]["verb"], "on");
    assert_eq!(lines[21]["verb"], "off");
    assert_eq!(lines[21]["options"], serde_json::json!(["--timeout", "3"]));
    let canon = std::fs::canonicalize(&root).unwrap();
    let mut seen: Vec<(String, u64)> = vec![];
    for l in &lines {
        assert_eq!(l["dir"], d(&canon));
        assert_eq!(l["uid"], 0);
        assert_eq!(l["user"], "root");
        assert!(l["time"].as_str().unwrap().ends_with('Z'), "{l}");
        assert!(l["duration_ms"].is_u64(), "{l}");
        if l["verb"] == "run" {
            assert_eq!(l["mode"], "argv");
            seen.push((
                l["command"].as_str().unwrap().to_string(),
                l["status"].as_u64().unwrap(),
            ));
        } else {
            assert_eq!(l["status"], 0);
        }
    }
    seen.sort();
    let mut want: Vec<(String, u64)> = (0..20)
        .map(|i| {
            (
                format!("sh -c 'echo run-{i} >/dev/null; exit {}'", i % 7),
                (i % 7) as u64,
            )
        })
        .collect();
    want.sort();
    assert_eq!(seen, want);
    // log --json gives the same objects.
    assert_eq!(log_json(&ns, &root, &[]), lines);
}

#[test]
fn log_shows_the_last_n_and_every_verb_and_status() {
    let ns = Ns::new();
    let root = ns.busybox_root("sb");
    let r = d(&root);
    ok(&ns.run(&["on", "-d", r]));
    ok(&ns.run(&["run", "-d", r, "echo one"]));
    assert_eq!(code(&ns.run(&["run", "-d", r, "exit 3"])), 3);
    assert_eq!(code(&ns.run(&["run", "-d", r, "--", "/no/such"])), 127);
    ok(&ns.run(&["run", "-d", r, "echo", "two words"]));
    ok(&ns.run(&["off", "-d", r]));
    let all = log_json(&ns, &root, &[]);
    let got: Vec<(String, Option<String>, Option<String>, u64)> = all
        .iter()
        .map(|v| {
            (
                v["verb"].as_str().unwrap().to_string(),
                v["mode"].as_str().map(String::from),
                v["command"].as_str().map(String::from),
                v["status"].as_u64().unwrap(),
            )
        })
        .collect();
    let s = |x: &str| Some(x.to_string());
    assert_eq!(
        got,
        [
            ("on".into(), None, None, 0),
            ("run".into(), s("line"), s("echo one"), 0),
            ("run".into(), s("line"), s("exit 3"), 3),
            ("run".into(), s("argv"), s("/no/such"), 127),
            ("run".into(), s("argv"), s("echo 'two words'"), 0),
            ("off".into(), None, None, 0),
        ]
    );
    // -n: the last ones, in order.
    assert_eq!(log_json(&ns, &root, &["-n", "2"]), all[4..]);
    // For people: one line an entry.
    let text = ok(&ns.run(&["log", "-d", r, "-n", "3"]));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[0].contains(" run ") && lines[0].contains("exit 127"),
        "{text}"
    );
    assert!(
        lines[0].contains("root(0)") && lines[0].contains("argv: /no/such"),
        "{text}"
    );
    assert!(
        lines[2].contains(" off ") && lines[2].contains("exit 0"),
        "{text}"
    );
    // A sandbox with no history yet: nothing on stdout, a note on stderr.
    let other = ns.busybox_root("other");
    let o = ns.run(&["log", "-d", d(&other)]);
    assert_eq!(ok(&o), "");
    assert!(stderr(&o).contains("no history for"), "{}", stderr(&o));
    // SUDO_USER is recorded when set.
    let o = ns
        .tool()
        .args(["run", "-d", r, "true"])
        .env("SUDO_USER", "alice")
        .output()
        .unwrap();
    ok(&o);
    let last = log_json(&ns, &root, &["-n", "1"]);
    assert_eq!(last[0]["sudo_user"], "alice");
    ok(&ns.run(&["off", "-d", r]));
}

/// The history is outside DIR: a process inside that tries to rewrite it
/// (every history-looking file it can reach, the state path inside) changes nothing.
#[test]
fn a_process_inside_cannot_rewrite_the_history() {
    let ns = Ns::new();
    let root = ns.busybox_root("sb");
    let r = d(&root);
    ok(&ns.run(&["run", "-d", r, "echo before"]));
    let file = history_files(&ns.state_dir()).pop().unwrap();
    let before = std::fs::read_to_string(&file).unwrap();
    let state = d(&ns.state_dir()).to_string();
    ok(&ns.run(&[
        "run",
        "-d",
        r,
        &format!(
            "find / -xdev -name '*.jsonl' -exec sh -c 'echo forged > \"$1\"' x {{}} \\; ; \
             rm -rf /var/lib/chroot-tool {state}; \
             mkdir -p {state}/history /var/lib/chroot-tool/history; \
             echo forged > {state}/history/$(basename {f}); true",
            f = d(&file)
        ),
    ]));
    let after = std::fs::read_to_string(&file).unwrap();
    assert!(after.starts_with(&before), "{after}");
    assert_eq!(after.lines().count(), 2, "{after}");
    assert!(after.lines().all(|l| l != "forged"), "{after}");
    let all = log_json(&ns, &root, &[]);
    assert_eq!(all.len(), 2);
    assert_eq!(all[0]["command"], "echo before");
    ok(&ns.run(&["off", "-d", r]));
}

/// A history that cannot be written is a warning; the run's own result stands.
#[test]
fn an_unwritable_history_only_warns() {
    let ns = Ns::new();
    let root = ns.busybox_root("sb");
    let r = d(&root);
    // The state dir a regular file; a read-only filesystem.
    let file = ns.tmp.path().join("state-file");
    std::fs::write(&file, "").unwrap();
    let ro = ns.tmp.path().join("ro");
    std::fs::create_dir(&ro).unwrap();
    ok(&ns.sh(&format!("mount -t tmpfs -o ro ro {}", d(&ro))));
    for state in [&file, &ro] {
        for (args, want) in [
            (vec!["run", "-d", r, "echo hi; exit 4"], 4),
            (vec!["on", "-d", r], 0),
            (vec!["off", "-d", r], 0),
        ] {
            let o = ns
                .tool()
                .args(&args)
                .env(chroot_tool::audit::STATE_ENV, state)
                .output()
                .unwrap();
            assert_eq!(code(&o), want, "{args:?} {}", stderr(&o));
            let e = stderr(&o);
            let lines: Vec<&str> = e.lines().collect();
            assert_eq!(lines.len(), 1, "{e}");
            assert!(
                lines[0].starts_with("chroot-tool: warning: history not written: "),
                "{e}"
            );
        }
    }
    assert_eq!(std::fs::read(&file).unwrap(), b"");
}

/// Without CHROOT_TOOL_STATE_DIR, root's history is under
/// /var/lib/chroot-tool/history (here a tmpfs over /var/lib, made only in
/// this test's mount namespace).
#[test]
fn roots_history_is_under_var_lib() {
    let ns = Ns::new();
    let root = ns.busybox_root("sb");
    ok(&ns.sh("mount -t tmpfs varlib /var/lib"));
    let o = ns
        .tool()
        .args(["run", "-d", d(&root), "true"])
        .env_remove(chroot_tool::audit::STATE_ENV)
        .output()
        .unwrap();
    ok(&o);
    assert_eq!(stderr(&o), "");
    let o = ns.sh("stat -c '%a %U' /var/lib/chroot-tool/history /var/lib/chroot-tool/history/*; cat /var/lib/chroot-tool/history/*.jsonl");
    let text = ok(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "700 root", "{text}");
    assert_eq!(lines[1], "600 root", "{text}");
    let v: Value = serde_json::from_str(lines[2]).unwrap();
    assert_eq!(v["verb"], "run");
    assert_eq!(v["command"], "true");
    // log reads it there too.
    let o = ns
        .tool()
        .args(["log", "--json", "-d", d(&root)])
        .env_remove(chroot_tool::audit::STATE_ENV)
        .output()
        .unwrap();
    assert_eq!(ok(&o).trim_end(), lines[2]);
    assert!(history_files(&ns.state_dir()).is_empty());
    let o = ns
        .tool()
        .args(["off", "-d", d(&root)])
        .env_remove(chroot_tool::audit::STATE_ENV)
        .output()
        .unwrap();
    ok(&o);
}

/// A user's `log` reads the user's own history, under `$XDG_STATE_HOME`
/// (or `~/.local/state`), and needs no root.
#[test]
fn a_user_reads_their_own_history() {
    use std::os::unix::fs::PermissionsExt;
    common::require_root();
    let place = tempfile::Builder::new()
        .prefix("ct-user-")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::set_permissions(place.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = place.path().join("chroot-tool");
    common::install_exec(Path::new(common::BIN), &bin);
    let sb = place.path().join("sb");
    std::fs::create_dir(&sb).unwrap();
    let canon = std::fs::canonicalize(&sb).unwrap();
    let name = chroot_tool::audit::file_name(&canon);
    let line = format!(
        "{{\"time\":\"2026-01-02T03:04:05.006Z\",\"uid\":65534,\"user\":\"nobody\",\"pid\":1,\
         \"verb\":\"run\",\"dir\":\"{}\",\"options\":[],\"mode\":\"line\",\"command\":\"make\",\
         \"status\":2,\"duration_ms\":7}}",
        d(&canon)
    );
    for (var, sub) in [
        ("XDG_STATE_HOME", "xdg/chroot-tool/history"),
        ("HOME", "home/.local/state/chroot-tool/history"),
    ] {
        let hist = place.path().join(sub);
        std::fs::create_dir_all(&hist).unwrap();
        std::fs::write(hist.join(&name), format!("{line}\n")).unwrap();
        let top = place.path().join(sub.split('/').next().unwrap());
        let o = std::process::Command::new("chown")
            .args(["-R", "nobody"])
            .arg(&top)
            .status()
            .unwrap();
        assert!(o.success());
        let o = std::process::Command::new("runuser")
            .args(["-u", "nobody", "--", "env", "-u", "XDG_STATE_HOME", "-u"])
            .arg(chroot_tool::audit::STATE_ENV)
            .arg(format!("{var}={}", d(&top)))
            .arg(&bin)
            .args(["log", "--json", "-d", d(&sb)])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(ok(&o), format!("{line}\n"), "{var}: {}", stderr(&o));
        std::fs::remove_dir_all(&top).unwrap();
    }
}

/// A destroyed sandbox's history is found under every spelling of its
/// path: a trailing slash, `.` and `..`, a symlinked parent.
#[test]
fn the_history_of_a_destroyed_sandbox_answers_to_any_spelling() {
    let ns = Ns::new();
    let root = ns.busybox_root("sb");
    let r = d(&root).to_string();
    ok(&ns.run(&["run", "-d", &r, "echo once"]));
    ok(&ns.run(&["destroy", "--yes", "-d", &r]));
    assert!(!root.exists());
    let parent = root.parent().unwrap();
    let link = ns.tmp.path().join("link");
    std::os::unix::fs::symlink(parent, &link).unwrap();
    for spelling in [
        r.clone(),
        format!("{r}/"),
        format!("{r}/."),
        format!("{}/./x/../sb", d(parent)),
        format!("{}/sb", d(&link)),
    ] {
        let got = log_json(&ns, Path::new(&spelling), &[]);
        assert!(
            got.iter().any(|v| v["command"] == "echo once"),
            "{spelling}: {got:?}"
        );
    }
}

/// The history removed while a run lasts (cleared by hand, the state
/// directory wiped): the run's line is still written, to a new file. (A
/// history opened while the command ran would take the line into the
/// removed file, without a word.)
#[test]
fn a_history_removed_while_the_command_runs_still_gets_its_line() {
    let ns = Ns::new();
    let root = ns.busybox_root("sb");
    ok(&ns.run(&["run", "-d", d(&root), "--", "true"]));
    // Removed while the command runs: once it has started, before it ends.
    let child = run_until_ready(ns.tool(), &root, "touch /ready; sleep 1");
    std::fs::remove_dir_all(ns.state_dir().join("history")).unwrap();
    let o = common::finish_within(child, common::DEADLINE);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let files = history_files(&ns.state_dir());
    assert_eq!(
        files.len(),
        1,
        "the run's line lost: {files:?} {}",
        stderr(&o)
    );
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert!(text.contains("touch /ready; sleep 1"), "{text}");
}

/// A state directory that hangs (a home on NFS gone away; here a FUSE
/// mount whose daemon is stopped) while a command runs: the supervisor
/// still forwards a SIGTERM to the command, whose status is the run's: the
/// history and the list of sandboxes are written once the command has
/// ended. (Written while it ran, before the relay loop, they held the
/// TERM back: the command ran to its end and the run said 0.)
#[test]
fn a_hung_state_dir_does_not_stop_signals_reaching_the_command() {
    assert!(
        std::process::Command::new("fuse-overlayfs")
            .arg("--version")
            .output()
            .is_ok(),
        "fuse-overlayfs is needed (.ci/run installs it)"
    );
    let ns = Ns::new();
    let root = ns.busybox_root("sb");
    let base = ns.tmp.path().join("fuse");
    for sub in ["l", "u", "w", "m"] {
        std::fs::create_dir_all(base.join(sub)).unwrap();
    }
    let m = base.join("m");
    let fuse = ns
        .cmd("fuse-overlayfs")
        .arg("-f")
        .arg("-o")
        .arg(format!(
            "lowerdir={},upperdir={},workdir={}",
            d(&base.join("l")),
            d(&base.join("u")),
            d(&base.join("w"))
        ))
        .arg(&m)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Let go on and ended however the test ends (a stopped daemon left
    // behind would hang whatever touches its mount).
    let fuse = Daemon(fuse);
    common::wait_until("the fuse mount", || ns.mountinfo().contains(d(&m)));
    let fpid = nix::unistd::Pid::from_raw(fuse.0.id() as i32);
    let state = m.join("state");
    let tool = |args: &[&str]| {
        let mut c = ns.tool();
        c.args(args).env(chroot_tool::audit::STATE_ENV, &state);
        c
    };
    ok(&common::output_within(
        &mut tool(&["on", "-d", d(&root)]),
        common::DEADLINE,
    ));
    ok(&common::output_within(
        &mut tool(&["run", "-d", d(&root), "--", "true"]),
        common::DEADLINE,
    ));
    use nix::sys::signal::{kill, Signal};
    kill(fpid, Signal::SIGSTOP).unwrap();
    // The TERM comes once the command is ready for it (its trap set).
    let child = run_until_ready(
        tool(&[]),
        &root,
        "trap 'touch /got-term; exit 42' TERM; touch /ready; sleep 3 & wait",
    );
    kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        Signal::SIGTERM,
    )
    .unwrap();
    // The command gets the TERM at once; the state dir is still hung.
    let mut ended = false;
    for _ in 0..150 {
        if root.join("got-term").exists() {
            ended = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    kill(fpid, Signal::SIGCONT).unwrap();
    let o = common::finish_within(child, common::DEADLINE);
    let _ = ns.cmd("umount").arg("-l").arg(&m).status();
    drop(fuse);
    assert!(
        ended,
        "the TERM did not reach the command while the state dir hung"
    );
    assert_eq!(code(&o), 42, "{}", stderr(&o));
}

/// Starts `run -d ROOT -- sh -c LINE` with `tool` (chroot-tool with its
/// environment) and returns once LINE has made `/ready` inside.
fn run_until_ready(
    mut tool: std::process::Command,
    root: &Path,
    line: &str,
) -> std::process::Child {
    let child = tool
        .args(["run", "-d", d(root), "--", "sh", "-c", line])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    common::wait_until("the command to be ready", || root.join("ready").exists());
    child
}

/// A daemon the test started: let go on (it may be stopped) and ended
/// when the test ends, passed or not.
struct Daemon(std::process::Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT);
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
