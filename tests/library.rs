//! The library (`chroot_tool::Sandbox`) as a program that embeds it uses
//! it. Each test's library calls run in a process of their own inside the
//! test's mount namespace: this test binary again, running that test alone
//! with `CT_LIBRARY_ROOT` set (`inside`), so nothing it mounts reaches the
//! machine. The example `examples/embed.rs` runs for real too, as root and
//! as a normal user (through a holder).
mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use chroot_tool::{Command, RunError, RunOptions, Sandbox};
use common::{d, install_exec, ok, output_within, script, stdout, Ns, DEADLINE};

const ROOT_ENV: &str = "CT_LIBRARY_ROOT";

/// The sandbox this test's library part works on, when this process is
/// that part; `None` in the test itself.
fn inside() -> Option<PathBuf> {
    std::env::var_os(ROOT_ENV).map(PathBuf::from)
}

/// Runs `test` of this binary alone inside `ns`, on `root`; its output.
fn in_ns(ns: &Ns, test: &str, root: &Path) -> Output {
    let exe = std::env::current_exe().unwrap();
    let mut c = ns.cmd(exe.to_str().unwrap());
    c.args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(ROOT_ENV, root)
        .current_dir("/")
        .stdin(Stdio::null());
    output_within(&mut c, DEADLINE)
}

/// A busybox rootfs with a user `dev` (1000:1000) and a group `staff`.
fn root_with_dev(ns: &Ns) -> PathBuf {
    let root = ns.busybox_root("sb");
    fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\ndev:x:1000:1000:Dev:/home/dev:/bin/sh\n",
    )
    .unwrap();
    fs::write(
        root.join("etc/group"),
        "root:x:0:\ndev:x:1000:\nstaff:x:50:dev\n",
    )
    .unwrap();
    fs::create_dir_all(root.join("home/dev")).unwrap();
    fs::create_dir_all(root.join("tmp")).unwrap();
    root
}

/// Where cargo put the example: `cargo test` builds it, `cargo test
/// --test library` does not, so an example older than a source of the
/// crate is a failure that says so (never a stale binary tested).
fn example() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/embed");
    let build = "run `cargo test` (which builds the examples) or `cargo build --examples`";
    let built = fs::metadata(&bin)
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| panic!("{} is missing: {build}", bin.display()));
    let src = Path::new(env!("CARGO_MANIFEST_DIR"));
    // src/main.rs is the tool's own binary, which the example does not link
    // (cargo rebuilds the example only for the library's sources).
    let bin_main = src.join("src/main.rs");
    let newest =
        newest_in(&src.join("src"), &bin_main).max(newest_in(&src.join("examples"), &bin_main));
    assert!(
        newest <= built,
        "{} is older than the sources: {build}",
        bin.display()
    );
    bin
}

/// The latest modification time of a file at or below `p`, but `skip`.
fn newest_in(p: &Path, skip: &Path) -> std::time::SystemTime {
    let md = fs::symlink_metadata(p).unwrap();
    if p == skip {
        return std::time::SystemTime::UNIX_EPOCH;
    }
    let mut t = md.modified().unwrap();
    if md.is_dir() {
        for e in fs::read_dir(p).unwrap().flatten() {
            t = t.max(newest_in(&e.path(), skip));
        }
    }
    t
}

#[test]
fn guard_turns_off_only_what_it_turned_on() {
    if let Some(root) = inside() {
        let sb = Sandbox::open(&root).unwrap();
        assert!(!sb.is_on().unwrap());
        let guard = sb.on().unwrap();
        assert!(guard.turned_on());
        assert!(sb.is_on().unwrap());
        // A second guard finds it on: dropping it leaves it on.
        let again = sb.on().unwrap();
        assert!(!again.turned_on());
        drop(again);
        assert!(
            sb.is_on().unwrap(),
            "a guard that did not turn it on turned it off"
        );
        drop(guard);
        assert!(
            !sb.is_on().unwrap(),
            "the guard that turned it on left it on"
        );
        // `off` on a guard reports what it did; `keep` leaves it on.
        let r = sb.on().unwrap().off().unwrap().expect("it turned it on");
        assert!(r.mounts > 0);
        sb.on().unwrap().keep();
        assert!(sb.is_on().unwrap());
        println!("LIBRARY-DONE");
        return;
    }
    let ns = Ns::new();
    let root = root_with_dev(&ns);
    let out = ok(&in_ns(&ns, "guard_turns_off_only_what_it_turned_on", &root));
    assert!(out.contains("LIBRARY-DONE"), "{out}");
    // Kept on by `keep`: the child's mounts are in the test's namespace.
    assert!(!ns.mounts_under(&root).is_empty());
    ok(&ns.run(&["off", "-d", d(&root)]));
    assert!(ns.mounts_under(&root).is_empty());
    // A sandbox turned on by the command line stays on after a guard.
    ok(&ns.run(&["on", "-d", d(&root)]));
    let before = ns.mounts_under(&root);
    ok(&in_ns(&ns, "guard_leaves_on_what_was_on", &root));
    assert_eq!(ns.mounts_under(&root), before);
    ok(&ns.run(&["off", "-d", d(&root)]));
}

#[test]
fn guard_leaves_on_what_was_on() {
    // Only the library part: called by the test above.
    let Some(root) = inside() else { return };
    let sb = Sandbox::open(&root).unwrap();
    let guard = sb.on().unwrap();
    assert!(!guard.turned_on());
    let out = sb
        .run(Command::argv(["true"]), &RunOptions::default())
        .unwrap();
    assert_eq!(out.code, 0);
    drop(guard);
    assert!(sb.is_on().unwrap());
}

#[test]
fn output_status_and_failures_are_returned() {
    if let Some(root) = inside() {
        let sb = Sandbox::open(&root).unwrap();
        let _on = sb.on().unwrap();
        let none = RunOptions::default();
        // stdout and stderr apart, byte for byte.
        let out = sb
            .run(
                Command::line("echo out; echo err >&2; printf '\\001\\377'"),
                &none,
            )
            .unwrap();
        assert_eq!(out.stdout, b"out\n\x01\xff");
        assert_eq!(out.stderr, b"err\n");
        assert!(out.success());
        // More than a pipe holds, with nothing reading meanwhile.
        let big = sb
            .run(
                Command::argv(["sh", "-c", "yes x | head -c 1000000"]),
                &none,
            )
            .unwrap();
        assert_eq!(big.stdout.len(), 1_000_000);
        // The command's own status; a signal as 128+N.
        let failed = sb.run(Command::line("echo half; exit 3"), &none).unwrap();
        assert_eq!((failed.code, failed.stdout.as_slice()), (3, &b"half\n"[..]));
        assert!(!failed.success());
        let killed = sb.run(Command::line("kill -TERM $$"), &none).unwrap();
        assert_eq!(killed.code, 128 + 15);
        // stdin is /dev/null: a read ends at once.
        let read = sb
            .run(Command::line("cat; echo read-ended"), &none)
            .unwrap();
        assert_eq!(read.stdout, b"read-ended\n");
        // A program that is not there: an error that says so, 127.
        let e = sb
            .run(Command::argv(["/no/such/program"]), &none)
            .unwrap_err();
        let re = e.downcast_ref::<RunError>().expect("a RunError");
        assert_eq!(re.code(), 127, "{e:#}");
        assert!(format!("{e:#}").contains("/no/such/program"), "{e:#}");
        // Through the shell, as `run "LINE"`: the shell's 127.
        let sh = sb.run(Command::line("no-such-program-ct"), &none).unwrap();
        assert_eq!(sh.code, 127);
        // A chroot.d command is dispatched as `chroot-tool run NAME` does.
        let hi = sb.run(Command::argv(["hello", "a b"]), &none).unwrap();
        assert_eq!(hi.stdout, b"hello [a b] in /chroot.d\n");
        // Our own stdio: only the status comes back.
        let code = sb
            .run_inherit(Command::line("echo INHERITED; exit 4"), &none)
            .unwrap();
        assert_eq!(code, 4);
        // A bad option is an error before anything runs.
        let bad = sb.run(
            Command::argv(["true"]),
            &RunOptions::default().workdir("rel"),
        );
        assert!(format!("{:#}", bad.unwrap_err()).contains("-w"));
        println!("LIBRARY-DONE");
        return;
    }
    let ns = Ns::new();
    let root = root_with_dev(&ns);
    script(
        &root.join("chroot.d/hello"),
        "#!/bin/sh\necho \"hello [$1] in $(pwd)\"\n",
    );
    let out = ok(&in_ns(
        &ns,
        "output_status_and_failures_are_returned",
        &root,
    ));
    assert!(out.contains("LIBRARY-DONE"), "{out}");
    assert!(
        out.contains("INHERITED\n"),
        "run_inherit writes to our stdout: {out}"
    );
    assert!(ns.mounts_under(&root).is_empty(), "the guard turned it off");
    // In the history as the command line's own: on, each run with its
    // status, off; and in the list of sandboxes.
    let log = ok(&ns.run(&["log", "-d", d(&root), "--json"]));
    let entries: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let verbs: Vec<&str> = entries
        .iter()
        .map(|e| e["verb"].as_str().unwrap())
        .collect();
    assert_eq!(verbs.first(), Some(&"on"), "{log}");
    assert_eq!(verbs.last(), Some(&"off"), "{log}");
    let run = |cmd: &str| {
        entries
            .iter()
            .find(|e| e["command"] == cmd)
            .unwrap_or_else(|| panic!("no run of {cmd} in {log}"))
    };
    assert_eq!(run("echo half; exit 3")["status"], 3);
    assert_eq!(run("echo half; exit 3")["mode"], "line");
    assert_eq!(run("/no/such/program")["status"], 127);
    assert_eq!(run("/no/such/program")["mode"], "argv");
    let list = ok(&ns.run(&["list", "--json"]));
    assert!(list.contains(d(&root)), "{list}");
}

#[test]
fn options_are_applied() {
    if let Some(root) = inside() {
        let sb = Sandbox::open(&root).unwrap();
        let _on = sb.on().unwrap();
        let opts = RunOptions::default()
            .user("dev:staff")
            .workdir("/home/dev")
            .env("GREETING", "hi there")
            .mount(format!(
                "{}:/data:ro",
                root.with_file_name("data").display()
            ))
            .net_none(true)
            .limits(chroot_tool::api::Limits {
                rlimits: vec![(chroot_tool::api::Rlimit::Nofile, 64)],
                ..Default::default()
            });
        let out = sb
            .run(
                Command::line(
                    "id -u; id -g; pwd; echo \"$GREETING\"; cat /data/note; \
                     ulimit -n; awk -F: 'NR > 2 { print $1 }' /proc/net/dev | tr -d ' '; touch /data/x 2>/dev/null || echo ro",
                ),
                &opts,
            )
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        assert_eq!(
            text,
            "1000\n50\n/home/dev\nhi there\nfrom the host\n64\nlo\nro\n",
            "stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The same command without options: root, in /, the host's network.
        let plain = sb
            .run(
                Command::line("id -u; pwd; echo \"[$GREETING]\""),
                &RunOptions::default(),
            )
            .unwrap();
        assert_eq!(plain.stdout, b"0\n/\n[]\n");
        // An unknown user: an error naming it.
        let e = sb
            .run(
                Command::argv(["true"]),
                &RunOptions::default().user("nobody-ct"),
            )
            .unwrap_err();
        assert!(format!("{e:#}").contains("nobody-ct"), "{e:#}");
        println!("LIBRARY-DONE");
        return;
    }
    let ns = Ns::new();
    let root = root_with_dev(&ns);
    let data = root.with_file_name("data");
    fs::create_dir(&data).unwrap();
    fs::write(data.join("note"), "from the host\n").unwrap();
    let out = ok(&in_ns(&ns, "options_are_applied", &root));
    assert!(out.contains("LIBRARY-DONE"), "{out}");
    assert!(!data.join("x").exists());
    // The history says which options the run had, as run's own.
    let log = ok(&ns.run(&["log", "-d", d(&root), "--json"]));
    let first_run: serde_json::Value = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["verb"] == "run")
        .expect("a run in the history");
    let opts: Vec<&str> = first_run["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_str().unwrap())
        .collect();
    for w in [
        "-u",
        "dev:staff",
        "-w",
        "/home/dev",
        "-e",
        "GREETING=hi there",
        "--net",
        "none",
        "--rlimit",
        "nofile=64",
    ] {
        assert!(opts.contains(&w), "{w} not in {opts:?}");
    }
}

#[test]
fn warnings_are_kept_not_printed() {
    if let Some(root) = inside() {
        let sb = Sandbox::open(&root).unwrap();
        let on = sb.on().unwrap();
        let out = sb
            .run(Command::argv(["true"]), &RunOptions::default())
            .unwrap();
        assert_eq!(out.code, 0);
        let w = sb.take_warnings();
        assert!(
            w.iter().any(|w| w.contains("colour")),
            "the [run] key that is not applied: {w:?}"
        );
        assert!(sb.take_warnings().is_empty(), "taken once");
        drop(on);
        println!("LIBRARY-DONE");
        return;
    }
    let ns = Ns::new();
    let root = root_with_dev(&ns);
    fs::write(root.join("chroot.d/tool.conf"), "[run]\ncolour:blue\n").unwrap();
    let o = in_ns(&ns, "warnings_are_kept_not_printed", &root);
    let out = ok(&o);
    assert!(out.contains("LIBRARY-DONE"), "{out}");
    let err = common::stderr(&o);
    assert!(!err.contains("chroot-tool"), "the library printed: {err}");
}

#[test]
fn the_example_runs_as_root() {
    let ns = Ns::new();
    let root = root_with_dev(&ns);
    let mut c = ns.cmd(example().to_str().unwrap());
    c.arg(&root)
        .arg("dev")
        .current_dir("/")
        .stdin(Stdio::null());
    let out = ok(&output_within(&mut c, DEADLINE));
    assert!(out.contains("was off: turned on"), "{out}");
    assert!(out.contains("uname -a: Linux "), "{out}");
    assert!(out.contains("id: uid=1000(dev) gid=1000(dev)"), "{out}");
    assert!(out.contains("hello from the host in /tmp"), "{out}");
    assert!(out.contains("id: stderr: to stderr"), "{out}");
    assert!(out.contains("id: status 0"), "{out}");
    assert!(out.ends_with("turned off again\n"), "{out}");
    assert!(ns.mounts_under(&root).is_empty());
    // Without a sandbox: an error, status 1.
    let mut c = ns.cmd(example().to_str().unwrap());
    c.arg(root.join("missing")).stdin(Stdio::null());
    let o = output_within(&mut c, DEADLINE);
    assert_eq!(common::code(&o), 1);
    assert!(common::stderr(&o).contains("no such directory"));
}

/// A normal user's sandbox lives in a holder's namespaces: the example
/// (which has no threads to spare it) joins them in a child and the
/// output still comes back.
#[test]
fn the_example_runs_as_a_normal_user() {
    let ns = Ns::new();
    let name = "ct-user";
    let pw = nix::unistd::User::from_name(name)
        .unwrap()
        .unwrap_or_else(|| {
            panic!("the test user {name} is missing: run .ci/run (it makes ct-user and ct-nosub)")
        });
    fs::set_permissions(ns.tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let home = ns.tmp.path().join(name);
    fs::create_dir(&home).unwrap();
    let root = home.join("sb");
    common::make_busybox_root(&root);
    fs::create_dir(root.join("tmp")).unwrap();
    for sub in ["run", "state", "config", "cache"] {
        fs::create_dir(home.join(sub)).unwrap();
    }
    fs::set_permissions(home.join("run"), fs::Permissions::from_mode(0o700)).unwrap();
    let st = std::process::Command::new("chown")
        .args(["-hR", &format!("{}:{}", pw.uid, pw.gid)])
        .arg(&home)
        .status()
        .unwrap();
    assert!(st.success());
    let bin = ns.tmp.path().join("embed");
    install_exec(&example(), &bin);
    let mut c = ns.cmd("setpriv");
    c.args(["--reuid", name, "--regid", name, "--init-groups", "--"])
        .arg(&bin)
        .arg(&root)
        .env_remove("CHROOT_TOOL_RUN_DIR")
        .env_remove(chroot_tool::audit::STATE_ENV)
        .env("HOME", &home)
        .env("XDG_RUNTIME_DIR", home.join("run"))
        .env("XDG_STATE_HOME", home.join("state"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_CACHE_HOME", home.join("cache"))
        .current_dir(&home)
        .stdin(Stdio::null());
    let o = output_within(&mut c, DEADLINE);
    let out = ok(&o);
    assert!(out.contains("was off: turned on"), "{out}");
    // Root inside is the user outside.
    assert!(out.contains("id: uid=0(root) gid=0(root)"), "{out}");
    assert!(out.contains("hello from the host in /tmp"), "{out}");
    assert!(out.ends_with("turned off again\n"), "{out}");
    // The holder ended with the guard: no pid file is left.
    let holders = home.join("run/chroot-tool/holder");
    let left: Vec<_> = fs::read_dir(&holders)
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(
        left.is_empty(),
        "holder files left: {left:?}; {}",
        stdout(&o)
    );
    // A run the child joining the holder could not start (its working
    // directory, /tmp, is not there): an error that says why, never a
    // bare status 125.
    let conf = root.join("chroot.d/tool.conf");
    fs::write(&conf, "[bind]\ntgt:/tmp ignore:yes\n").unwrap();
    std::os::unix::fs::chown(&conf, Some(pw.uid.as_raw()), Some(pw.gid.as_raw())).unwrap();
    fs::remove_dir(root.join("tmp")).unwrap();
    let o = output_within(&mut c, DEADLINE);
    assert_eq!(common::code(&o), 1, "{}", stdout(&o));
    assert!(!stdout(&o).contains("id: status"), "{}", stdout(&o));
    assert!(
        common::stderr(&o).contains("/tmp"),
        "{}",
        common::stderr(&o)
    );
}
