//! on / run / shell / off / status on a real (busybox) rootfs, as root, each
//! test in its own mount namespace. Assertions read mountinfo, files and exit codes.
mod common;

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::Stdio;

use common::{code, d, ok, script, stderr, stdout, Ns};

const BUILTIN: [&str; 9] = [
    "/proc",
    "/sys",
    "/dev",
    "/dev/pts",
    "/dev/shm",
    "/run",
    "/tmp",
    "/etc/resolv.conf",
    "",
];

/// The device nodes of the fresh /dev.
const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// Each device node in `root`'s /dev is the host's (type, number,
/// permission bits); `bound`: each a bind of the host's node (else a node
/// of its own in the /dev tmpfs, with no mount).
fn assert_devices(ns: &Ns, root: &Path, bound: bool) {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let points = ns.mounts_under(root);
    // The namespace's view of the sandbox's /dev.
    let dev = Path::new(&format!("/proc/{}/root", ns.pid()))
        .join(root.strip_prefix("/").unwrap())
        .join("dev");
    for n in DEVICES {
        let host = fs::metadata(format!("/dev/{n}")).unwrap();
        let p = dev.join(n);
        let md = fs::symlink_metadata(&p).unwrap();
        assert!(md.file_type().is_char_device(), "{}", p.display());
        assert_eq!(md.rdev(), host.rdev(), "{}", p.display());
        assert_eq!(md.mode() & 0o7777, host.mode() & 0o7777, "{}", p.display());
        let mounted = points.contains(&d(&root.join("dev").join(n)).to_string());
        assert_eq!(mounted, bound, "{}: mounted: {mounted}", p.display());
        if !bound {
            assert_eq!(md.uid(), 0, "{}", p.display());
            assert_eq!(md.dev(), fs::metadata(&dev).unwrap().dev());
        }
    }
}

#[test]
fn on_mounts_the_system_mounts_idempotently_and_off_removes_all() {
    // A systemd-style host, where every mount is shared: the sandbox's
    // mounts must still come out private (in a private namespace they
    // would be private whatever chroot-tool did).
    let ns = Ns::with_propagation("shared");
    let root = ns.busybox_root("root");
    let outside = ns.mounts_outside(&root);
    ok(&ns.run(&["on", "-d", d(&root)]));
    let mut points = ns.mounts_under(&root);
    points.sort();
    for b in BUILTIN {
        if b == "/etc/resolv.conf" && !Path::new("/etc/resolv.conf").exists() {
            continue;
        }
        let want = format!("{}{b}", d(&root));
        assert!(points.contains(&want), "{want} not mounted: {points:?}");
    }
    let info = ns.mountinfo();
    let line = |p: &str| {
        info.lines()
            .find(|l| l.split(' ').nth(4) == Some(&format!("{}{p}", d(&root))))
            .unwrap_or_else(|| panic!("no mount at {p}"))
            .to_string()
    };
    assert!(line("/proc").contains(" - proc "));
    assert!(line("/sys").contains(" ro,") && line("/sys").contains(" - sysfs "));
    assert!(
        line("/dev").contains(" - tmpfs "),
        "/dev must be a fresh tmpfs, not devtmpfs"
    );
    assert!(line("/dev/pts").contains(" - devpts ") && line("/dev/pts").contains("ptmxmode=666"));
    for p in ["/tmp", "/run", "/dev/shm"] {
        assert!(line(p).contains(" - tmpfs "), "{p}");
    }
    // Each built-in's per-mount flags, as the kernel reports them (field 6):
    // (point, flags it must have, flags it must not have).
    let flags: [(&str, &[&str], &[&str]); 7] = [
        ("/proc", &["nosuid", "nodev", "noexec"], &["ro"]),
        ("/sys", &["ro", "nosuid", "nodev", "noexec"], &[]),
        ("/dev", &["nosuid", "noexec"], &["nodev", "ro"]),
        ("/dev/pts", &["nosuid", "noexec"], &["nodev", "ro"]),
        ("/dev/shm", &["nosuid", "nodev"], &["ro"]),
        ("/run", &["nosuid", "nodev"], &["ro"]),
        ("/tmp", &["nosuid", "nodev"], &["ro", "noexec"]),
    ];
    for (p, must, never) in flags {
        let l = line(p);
        let opts: Vec<&str> = l.split(' ').nth(5).unwrap().split(',').collect();
        for f in must {
            assert!(opts.contains(f), "{p} lacks {f}: {l}");
        }
        for f in never {
            assert!(!opts.contains(f), "{p} has {f}: {l}");
        }
    }
    // Every sandbox mount is private: no shared: or master: tag.
    assert!(
        info.lines().any(|l| l.contains("shared:")),
        "the host side is shared, so the check below can fail"
    );
    for l in info
        .lines()
        .filter(|l| l.split(' ').nth(4).unwrap().starts_with(d(&root)))
    {
        assert!(
            !l.contains("shared:") && !l.contains("master:"),
            "not private: {l}"
        );
    }
    // Idempotent: a second on changes nothing.
    let before = ns.mountinfo();
    let o = ok(&ns.run(&["on", "-d", d(&root)]));
    assert!(
        o.ends_with(" already there)\n") && o.contains(" is on (0 mounted, "),
        "{o}"
    );
    assert_eq!(before, ns.mountinfo());
    // The device nodes are the host's, made in the /dev tmpfs: no mounts.
    assert_devices(&ns, &root, false);
    // Inside: /dev/null works, ptmx works, /proc is ours.
    let o = ok(&ns.run(&["run", "-d", d(&root), "echo x > /dev/null && ls /dev/pts && test -c /dev/ptmx && cat /proc/self/stat >/dev/null && test \"$(head -c 3 /dev/zero | od -An -c | tr -d ' ')\" = '\\0\\0\\0' && ! echo x 2>/dev/null > /dev/full && test \"$(head -c 5 /dev/urandom | wc -c)\" = 5 && echo fine"]));
    assert!(o.contains("ptmx") && o.contains("fine"), "{o}");
    ok(&ns.run(&["off", "-d", d(&root)]));
    assert!(
        ns.mounts_under(&root).is_empty(),
        "left: {:?}",
        ns.mounts_under(&root)
    );
    assert_eq!(
        outside,
        ns.mounts_outside(&root),
        "mounts outside the sandbox changed"
    );
}

/// Where a device node cannot be made in a fresh filesystem (the /dev of
/// tool.conf mounted `nodev`, or writable by others than root; /dev left
/// to the rootfs's own directory, which may lie on a `nodev` filesystem),
/// the host's node is bound in,
/// and works; `off` removes the binds.
#[test]
fn device_nodes_are_bound_where_they_cannot_be_made() {
    let ns = Ns::new();
    let root = ns.busybox_root("root");
    let outside = ns.mounts_outside(&root);
    for conf in [
        "[bind]\ntgt:/dev fs:tmpfs opt:nodev,nosuid,mode=755\n",
        "[bind]\ntgt:/dev ignore:yes\n",
        // A /dev that someone else than root may change: a node made there
        // could be removed and replaced; a bound one cannot.
        "[bind]\ntgt:/dev fs:tmpfs opt:uid=1000,mode=755\n",
        "[bind]\ntgt:/dev fs:tmpfs opt:mode=777\n",
        "[bind]\ntgt:/dev fs:tmpfs opt:mode=1777\n",
    ] {
        fs::write(root.join("chroot.d/tool.conf"), conf).unwrap();
        ok(&ns.run(&["on", "-d", d(&root)]));
        assert_devices(&ns, &root, true);
        let o = ok(&ns.run(&[
            "run",
            "-d",
            d(&root),
            "echo x > /dev/null && head -c 2 /dev/zero | wc -c",
        ]));
        assert_eq!(o, "2\n", "{conf}");
        // Idempotent: the binds are found as planned.
        let before = ns.mountinfo();
        ok(&ns.run(&["on", "-d", d(&root)]));
        assert_eq!(before, ns.mountinfo(), "{conf}");
        ok(&ns.run(&["off", "-d", d(&root)]));
        assert!(ns.mounts_under(&root).is_empty(), "{conf}");
        // The rootfs's own /dev keeps no node of chroot-tool's.
        for n in DEVICES {
            let p = root.join("dev").join(n);
            assert!(
                fs::symlink_metadata(&p).map_or(true, |m| {
                    !std::os::unix::fs::FileTypeExt::is_char_device(&m.file_type())
                }),
                "{} left on the rootfs",
                p.display()
            );
        }
    }
    // The rootfs's own /dev holding the host's nodes, left to it: bound
    // over (DIR's filesystem may be `nodev`), and the sandbox reads on.
    for n in DEVICES {
        let host = fs::metadata(format!("/dev/{n}")).unwrap();
        let _ = fs::remove_file(root.join("dev").join(n));
        let made = std::process::Command::new("mknod")
            .args(["-m", "666", d(&root.join("dev").join(n)), "c"])
            .arg(libc::major(std::os::unix::fs::MetadataExt::rdev(&host)).to_string())
            .arg(libc::minor(std::os::unix::fs::MetadataExt::rdev(&host)).to_string())
            .status()
            .unwrap();
        assert!(made.success());
    }
    fs::write(
        root.join("chroot.d/tool.conf"),
        "[bind]\ntgt:/dev ignore:yes\n",
    )
    .unwrap();
    ok(&ns.run(&["on", "-d", d(&root)]));
    assert_eq!(ns.state(&root), "on");
    assert_devices(&ns, &root, true);
    ok(&ns.run(&["off", "-d", d(&root)]));
    assert_eq!(outside, ns.mounts_outside(&root));
}

#[test]
fn dir_may_stand_anywhere_and_comes_from_the_environment() {
    let ns = Ns::new();
    let root = ns.busybox_root("root");
    assert_eq!(ok(&ns.run(&["run", "echo hi", "-d", d(&root)])), "hi\n");
    assert_eq!(ok(&ns.run(&["-d", d(&root), "run", "echo hi"])), "hi\n");
    let o = common::output_within(
        ns.tool()
            .args(["run", "echo env"])
            .env("CHROOT_TOOL_DIR", &root),
        common::DEADLINE,
    );
    assert_eq!(ok(&o), "env\n");
    // Never guessed: no -d and no variable is an error naming what to do.
    let o = common::output_within(
        ns.tool().args(["run", "echo hi"]).current_dir(&root),
        common::DEADLINE,
    );
    assert_eq!(code(&o), 2, "a missing DIR is bad usage");
    assert!(
        stderr(&o).starts_with("chroot-tool: ") && stderr(&o).contains("-d DIR"),
        "{}",
        stderr(&o)
    );
    let o = ns.run(&["on"]);
    assert_eq!(code(&o), 2);
    ok(&ns.run(&["off", "-d", d(&root)]));
}

#[test]
fn dispatch_rules() {
    let ns = Ns::new();
    let root = ns.busybox_root("root");
    let cd = root.join("chroot.d");
    // Rule 1: absolute, run as is from /.
    assert_eq!(
        ok(&ns.run(&["run", "-d", d(&root), "/bin/sh -c pwd"])),
        "/\n"
    );
    // Rule 2: chroot.d/NAME with the rest, from /chroot.d.
    script(
        &cd.join("build"),
        "#!/bin/sh\necho \"build:$1:$2:$(pwd)\"\n",
    );
    assert_eq!(
        ok(&ns.run(&["run", "-d", d(&root), "build 'a b' c"])),
        "build:a b:c:/chroot.d\n"
    );
    assert_eq!(
        ok(&ns.run(&["run", "-d", d(&root), "--", "build", "x y"])),
        "build:x y::/chroot.d\n"
    );
    // Rule 4 without chroot-cmd: a shell line, or an argv by PATH.
    assert_eq!(
        ok(&ns.run(&["run", "-d", d(&root), "echo a | tr a b"])),
        "b\n"
    );
    assert_eq!(
        ok(&ns.run(&["run", "-d", d(&root), "--", "echo", "$HOME", "a  b"])),
        "$HOME a  b\n"
    );
    assert_eq!(
        code(&ns.run(&["run", "-d", d(&root), "--", "/bin/true"])),
        0
    );
    assert_eq!(code(&ns.run(&["run", "-d", d(&root), "--", "false"])), 1);
    // A non-executable file in chroot.d is not a command.
    fs::write(cd.join("notes"), "x").unwrap();
    assert_eq!(code(&ns.run(&["run", "-d", d(&root), "notes"])), 127);
    // Rule 3: chroot-cmd receives the words.
    script(
        &cd.join("chroot-cmd"),
        "#!/bin/sh\necho \"cmd:$#:$*:$(pwd)\"\n",
    );
    assert_eq!(
        ok(&ns.run(&["run", "-d", d(&root), "deploy now"])),
        "cmd:2:deploy now:/chroot.d\n"
    );
    assert_eq!(
        ok(&ns.run(&["run", "-d", d(&root), "--", "deploy", "a b"])),
        "cmd:2:deploy a b:/chroot.d\n"
    );
    // Rule 2 still wins over chroot-cmd; rule 1 too.
    assert_eq!(
        ok(&ns.run(&["run", "-d", d(&root), "build"])),
        "build:::/chroot.d\n"
    );
    assert_eq!(
        ok(&ns.run(&["run", "-d", d(&root), "/bin/echo direct"])),
        "direct\n"
    );
    // A name that tries to leave chroot.d is not a chroot.d command.
    script(&root.join("x"), "#!/bin/sh\necho escaped\n");
    assert_eq!(
        ok(&ns.run(&["run", "-d", d(&root), "--", "../x"])),
        "cmd:1:../x:/chroot.d\n"
    );
    ok(&ns.run(&["off", "-d", d(&root)]));
}

#[test]
fn host_cmd_runs_first_on_the_host_and_can_stop_the_run() {
    let ns = Ns::new();
    let root = ns.busybox_root("root");
    let log = ns.tmp.path().join("host-cmd.log");
    script(
        &root.join("chroot.d/host-cmd"),
        &format!(
            "#!/bin/sh\nprintf '%s|%s\\n' \"$1\" \"$2\" >> {}\n[ \"$1\" != refuse ] || exit 7\n",
            d(&log)
        ),
    );
    assert_eq!(
        ok(&ns.run(&["run", "-d", d(&root), "echo inside"])),
        "inside\n"
    );
    let o = ns.run(&["run", "-d", d(&root), "refuse"]);
    assert_eq!(code(&o), 7);
    assert!(!stdout(&o).contains("inside"));
    ok(&ns.run(&["run", "-d", d(&root), "--", "echo", "a b"]));
    let text = fs::read_to_string(&log).unwrap();
    let canon = fs::canonicalize(&root).unwrap();
    assert_eq!(
        text,
        format!(
            "echo inside|{0}\nrefuse|{0}\necho 'a b'|{0}\n",
            canon.display()
        )
    );
    ok(&ns.run(&["off", "-d", d(&root)]));
    // A host-cmd that leads out of DIR (a symlink, absolute or climbing
    // with ..) is never run on the host; the command itself still runs.
    let marker = ns.tmp.path().join("escaped");
    let evil = ns.tmp.path().join("evil-host-cmd");
    script(&evil, &format!("#!/bin/sh\ntouch {}\n", d(&marker)));
    for to in [
        d(&evil).to_string(),
        format!("../../../../../../../../..{}", d(&evil)),
    ] {
        let hc = root.join("chroot.d/host-cmd");
        let _ = fs::remove_file(&hc);
        // The same path also exists inside the root (a harmless script of
        // the sandbox's), so the link resolves both ways: only the one
        // inside DIR may ever be taken.
        let decoy = root.join(d(&evil).trim_start_matches('/'));
        fs::create_dir_all(decoy.parent().unwrap()).unwrap();
        script(&decoy, "#!/bin/sh\ntrue\n");
        std::os::unix::fs::symlink(&to, &hc).unwrap();
        assert_eq!(
            ok(&ns.run(&["run", "-d", d(&root), "echo inside"])),
            "inside\n"
        );
        assert!(!marker.exists(), "host-cmd -> {to} ran a host program");
    }
    ok(&ns.run(&["off", "-d", d(&root)]));
}

#[test]
fn exit_statuses() {
    let ns = Ns::new();
    let root = ns.busybox_root("root");
    let r = |args: &[&str]| {
        let mut v = vec!["run", "-d", d(&root)];
        v.extend_from_slice(args);
        code(&ns.run(&v))
    };
    assert_eq!(r(&["exit 3"]), 3);
    assert_eq!(r(&["nosuchcommand"]), 127);
    assert_eq!(r(&["--", "nosuchcommand"]), 127);
    assert_eq!(r(&["--", "/nosuch"]), 127);
    fs::write(root.join("plain"), "data").unwrap();
    assert_eq!(r(&["--", "/plain"]), 126);
    assert_eq!(r(&["/plain"]), 126);
    assert_eq!(r(&["kill -9 $$"]), 128 + 9);
    assert_eq!(r(&["kill -TERM $$"]), 128 + 15);
    // chroot-tool's own failure before the command: 125.
    let o = ns.run(&["run", "-d", d(&ns.tmp.path().join("missing")), "true"]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).starts_with("chroot-tool: "));
    // Usage errors: 2.
    assert_eq!(code(&ns.run(&["run", "-d", d(&root)])), 2);
    assert_eq!(code(&ns.run(&["frobnicate"])), 2);
    ok(&ns.run(&["off", "-d", d(&root)]));
}

#[test]
fn stdio_passes_through() {
    let ns = Ns::new();
    let root = ns.busybox_root("root");
    let mut c = ns
        .tool()
        .args(["run", "-d", d(&root), "tr a-z A-Z; echo err >&2"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(b"hello\n").unwrap();
    let o = common::finish_within(c, common::DEADLINE);
    assert_eq!(ok(&o), "HELLO\n");
    assert_eq!(stderr(&o), "err\n");
    ok(&ns.run(&["off", "-d", d(&root)]));
}

#[test]
fn tool_conf_features() {
    let ns = Ns::new();
    let root = ns.busybox_root("root");
    let host = ns.tmp.path().join("host dir");
    fs::create_dir_all(&host).unwrap();
    fs::write(host.join("from-host"), "h\n").unwrap();
    let ro = ns.tmp.path().join("ro");
    fs::create_dir_all(&ro).unwrap();
    fs::write(ro.join("f"), "r\n").unwrap();
    let conf = format!(
        "ignored line before sections\n# a comment\n[bind]\nsrc:\"{}\" tgt: /work\nsrc:{} tgt:/ro fs:bind-ro ; tgt:/scratch fs:tmpfs opt:size=1m,nosuid\ntgt:/tmp ignore:yes\n",
        d(&host),
        d(&ro)
    );
    fs::write(root.join("chroot.d/tool.conf"), conf).unwrap();
    ok(&ns.run(&[
        "run",
        "-d",
        d(&root),
        "cat /work/from-host && echo made > /work/from-sandbox",
    ]));
    assert_eq!(
        fs::read_to_string(host.join("from-sandbox")).unwrap(),
        "made\n",
        "writes must be visible on the host"
    );
    assert_eq!(ok(&ns.run(&["run", "-d", d(&root), "cat /ro/f"])), "r\n");
    let o = ns.run(&["run", "-d", d(&root), "echo x > /ro/g"]);
    assert_ne!(code(&o), 0, "bind-ro must refuse writes");
    assert!(stderr(&o).contains("Read-only"), "{}", stderr(&o));
    assert!(!ro.join("g").exists());
    let ro_line = ns
        .mountinfo()
        .lines()
        .find(|l| l.split(' ').nth(4) == Some(&format!("{}/ro", d(&root))))
        .expect("/ro mounted")
        .to_string();
    assert!(
        ro_line.split(' ').nth(5).unwrap().starts_with("ro,"),
        "{ro_line}"
    );
    let info = ns.mountinfo();
    let scratch = info
        .lines()
        .find(|l| l.contains("/root/scratch "))
        .expect("tmpfs record mounted");
    assert!(
        scratch.contains(" - tmpfs ")
            && scratch.contains("nosuid")
            && scratch.contains("size=1024k"),
        "{scratch}"
    );
    assert!(
        !ns.mounts_under(&root)
            .iter()
            .any(|m| m.ends_with("/root/tmp")),
        "ignore:yes must drop /tmp"
    );
    ok(&ns.run(&["off", "-d", d(&root)]));
    assert!(ns.mounts_under(&root).is_empty());
    // A built-in replaced: /run bound from a host dir.
    fs::write(
        root.join("chroot.d/tool.conf"),
        format!(
            "[bind]\ntgt:/run src:\"{}\" fs:bind opt:default\n",
            d(&host)
        ),
    )
    .unwrap();
    assert_eq!(
        ok(&ns.run(&["run", "-d", d(&root), "cat /run/from-host"])),
        "h\n"
    );
    ok(&ns.run(&["off", "-d", d(&root)]));
}

#[test]
fn malformed_tool_conf_mounts_nothing() {
    let ns = Ns::new();
    let root = ns.busybox_root("root");
    let cases = [
        ("[bind]\nsrc:/tmp\n", "tgt"),
        (
            "[bind]\ntgt:/x src:/nonexistent-source-dir\n",
            "nonexistent-source-dir",
        ),
        ("[bind]\ntgt:relative\n", "absolute"),
        ("[bind]\ntgt:/x fs:nosuchfs\n", "nosuchfs"),
        ("[bind]\ntgt:/x opt:bogus\n", "bogus"),
        ("[bind]\ntgt:/x fs:tmpfs opt:nosuchopt=1\n", "nosuchopt"),
        ("[bind]\ntgt:\"/x\n", "quote"),
        ("[bind]\ntgt:/x fs:bind ignore:maybe\n", "ignore"),
    ];
    for (text, needle) in cases {
        fs::write(root.join("chroot.d/tool.conf"), text).unwrap();
        let o = ns.run(&["on", "-d", d(&root)]);
        assert_eq!(code(&o), 1, "{text}");
        let e = stderr(&o);
        assert!(
            e.starts_with("chroot-tool: ") && e.contains(needle),
            "{text:?}: {e}"
        );
        assert_eq!(e.trim_end().lines().count(), 1, "one line: {e}");
        assert!(
            ns.mounts_under(&root).is_empty(),
            "{text:?} left {:?}",
            ns.mounts_under(&root)
        );
        assert_eq!(code(&ns.run(&["run", "-d", d(&root), "true"])), 125);
    }
    fs::write(
        root.join("chroot.d/tool.conf"),
        "# comment\n[bind]\n\ntgt:relative\n",
    )
    .unwrap();
    let o = ns.run(&["on", "-d", d(&root)]);
    assert!(
        stderr(&o).contains("tool.conf:4"),
        "file:line named: {}",
        stderr(&o)
    );
}

#[test]
fn off_ends_processes_inside_and_runs_stop() {
    let ns = Ns::new();
    let root = ns.busybox_root("root");
    script(
        &root.join("chroot.d/stop"),
        "#!/bin/sh\necho stopped > /chroot.d/stop-ran\n",
    );
    ok(&ns.run(&[
        "run",
        "-d",
        d(&root),
        "setsid sleep 1000 < /dev/null > /dev/null 2>&1 &",
    ]));
    // A process that ignores TERM is killed after the grace period.
    ok(&ns.run(&[
        "run",
        "-d",
        d(&root),
        "setsid sh -c 'trap \"\" TERM; sleep 1000' < /dev/null > /dev/null 2>&1 &",
    ]));
    let st = ok(&ns.run(&["status", "-d", d(&root)]));
    assert!(st.contains("sleep"), "{st}");
    assert_eq!(ns.state(&root), "on");
    assert!(common::pids_rooted_under(&root).len() >= 2);
    let t = std::time::Instant::now();
    let o = ok(&ns.run(&["off", "-d", d(&root), "--timeout", "1"]));
    assert!(o.contains("is off"), "{o}");
    assert!(
        t.elapsed().as_secs_f64() >= 1.0,
        "KILL came before the grace period"
    );
    assert!(common::pids_rooted_under(&root).is_empty());
    assert!(ns.mounts_under(&root).is_empty());
    assert_eq!(
        fs::read_to_string(root.join("chroot.d/stop-ran")).unwrap(),
        "stopped\n"
    );
    assert_eq!(ns.state(&root), "off");
    assert!(ok(&ns.run(&["off", "-d", d(&root)])).contains("already off"));
}

#[test]
fn off_after_on_was_killed_halfway() {
    let ns = Ns::new();
    let root = ns.busybox_root("root");
    for n in [1, 4, 7] {
        let o = ns.on_killed_after(&root, n);
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&o.status),
            Some(9)
        );
        assert!(!ns.mounts_under(&root).is_empty());
        let st = ok(&ns.run(&["status", "-d", d(&root), "--json"]));
        let v: serde_json::Value = serde_json::from_str(&st).unwrap();
        assert_eq!(v["state"], "partly on", "an interrupted on is not on");
        // on completes what is missing; off then removes everything.
        ok(&ns.run(&["on", "-d", d(&root)]));
        let st = ok(&ns.run(&["status", "-d", d(&root), "--json"]));
        let v: serde_json::Value = serde_json::from_str(&st).unwrap();
        assert_eq!(v["state"], "on");
        ok(&ns.run(&["off", "-d", d(&root)]));
        assert!(ns.mounts_under(&root).is_empty());
        // Killed again, then off directly.
        let _ = ns.on_killed_after(&root, n);
        ok(&ns.run(&["off", "-d", d(&root)]));
        assert!(ns.mounts_under(&root).is_empty());
    }
}

#[test]
fn off_never_touches_a_sibling_with_a_common_prefix() {
    let ns = Ns::new();
    let a = ns.busybox_root("ch");
    let b = ns.busybox_root("ch2");
    ok(&ns.run(&["on", "-d", d(&a)]));
    ok(&ns.run(&["on", "-d", d(&b)]));
    let b_mounts = ns.mounts_under(&b);
    ok(&ns.run(&[
        "run",
        "-d",
        d(&b),
        "setsid sleep 1000 </dev/null >/dev/null 2>&1 &",
    ]));
    ok(&ns.run(&["off", "-d", d(&a)]));
    assert!(ns.mounts_under(&a).is_empty());
    assert_eq!(ns.mounts_under(&b), b_mounts);
    assert_eq!(common::pids_rooted_under(&b).len(), 1);
    ok(&ns.run(&["off", "-d", d(&b)]));
}

#[test]
fn off_reports_what_it_could_not_unmount() {
    let ns = Ns::new();
    let root = ns.busybox_root("root");
    ok(&ns.run(&["on", "-d", d(&root)]));
    // A host process (root /) working in the sandbox's /tmp keeps it busy.
    let mut holder = ns
        .cmd("sh")
        .args(["-c", &format!("cd {}/tmp && exec sleep 1000", d(&root))])
        .spawn()
        .unwrap();
    let cwd = format!("/proc/{}/cwd", holder.id());
    common::wait_until("the holder in the sandbox's /tmp", || {
        fs::read_link(&cwd).is_ok_and(|c| c.ends_with("tmp"))
    });
    let o = ns.run(&["off", "-d", d(&root), "--timeout", "0.2"]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains(&format!("{}/tmp", d(&root))),
        "{}",
        stderr(&o)
    );
    assert_eq!(stderr(&o).trim_end().lines().count(), 1);
    holder.kill().unwrap();
    holder.wait().unwrap();
    ok(&ns.run(&["off", "-d", d(&root)]));
    assert!(ns.mounts_under(&root).is_empty());
}

#[test]
fn resolv_conf_through_a_dangling_symlink_in_the_rootfs() {
    let ns = Ns::new();
    let root = ns.busybox_root("root");
    std::os::unix::fs::symlink(
        "../run/systemd/resolve/stub-resolv.conf",
        root.join("etc/resolv.conf"),
    )
    .unwrap();
    let host = fs::read_to_string("/etc/resolv.conf").expect("the host has /etc/resolv.conf");
    let host_had = Path::new("/run/systemd/resolve").exists();
    assert_eq!(
        ok(&ns.run(&["run", "-d", d(&root), "cat /etc/resolv.conf"])),
        host
    );
    ok(&ns.run(&["off", "-d", d(&root)]));
    assert!(ns.mounts_under(&root).is_empty());
    // The target was made inside the root (on its /run tmpfs, gone with
    // off), nothing on the host: its /run is as it was.
    assert_eq!(Path::new("/run/systemd/resolve").exists(), host_had);
    assert_eq!(
        ns.sh("test -e /run/systemd/resolve/stub-resolv.conf")
            .status
            .success(),
        Path::new("/run/systemd/resolve/stub-resolv.conf").exists()
    );
    assert!(
        !root.join("run/systemd").exists(),
        "made on the rootfs, not on /run's tmpfs"
    );
}

#[test]
fn status_json() {
    let ns = Ns::new();
    let root = ns.busybox_root("root");
    let v: serde_json::Value =
        serde_json::from_str(&ok(&ns.run(&["status", "-d", d(&root), "--json"]))).unwrap();
    assert_eq!(v["state"], "off");
    ok(&ns.run(&["on", "-d", d(&root)]));
    let v: serde_json::Value =
        serde_json::from_str(&ok(&ns.run(&["status", "-d", d(&root), "--json"]))).unwrap();
    assert_eq!(v["state"], "on");
    let targets: Vec<&str> = v["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["target"].as_str().unwrap())
        .collect();
    assert!(
        targets.contains(&"/proc") && targets.contains(&"/dev/pts"),
        "{targets:?}"
    );
    ok(&ns.run(&["off", "-d", d(&root)]));
}

#[test]
fn a_closed_pipe_is_not_an_error() {
    let ns = Ns::new();
    let root = ns.busybox_root("root");
    let cases: [&[&str]; 5] = [
        &["status", "-d", d(&root)],
        &["status", "--json", "-d", d(&root)],
        &["on", "-d", d(&root)],
        &["off", "-d", d(&root)],
        &["completions", "bash"],
    ];
    for args in cases {
        // stdout is a pipe whose reader is already gone: every write fails (EPIPE).
        let (r, w) = nix::unistd::pipe().unwrap();
        drop(r);
        let o = common::output_within(ns.tool().args(args), common::DEADLINE);
        assert!(
            o.status.success(),
            "{args:?} (normal stdout): {}",
            stderr(&o)
        );
        let o = common::finish_within(
            ns.tool()
                .args(args)
                .stdout(Stdio::from(w))
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
            common::DEADLINE,
        );
        assert_eq!(code(&o), 0, "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).is_empty(), "{args:?}: {}", stderr(&o));
    }
    ok(&ns.run(&["off", "-d", d(&root)]));
    assert!(ns.mounts_under(&root).is_empty());
}

#[test]
fn the_hosts_resolv_conf_is_read_only_inside() {
    let ns = Ns::new();
    let root = ns.busybox_root("root");
    let real = fs::read("/etc/resolv.conf").unwrap();
    // The attempt is made against a stand-in bound over the host's file in
    // this test's namespace: were the bind ever writable, the real file of
    // the machine would still be safe.
    let stand_in = ns.tmp.path().join("resolv.conf");
    fs::write(&stand_in, "nameserver 192.0.2.53\n").unwrap();
    ok(&ns.sh(&format!("mount --bind {} /etc/resolv.conf", d(&stand_in))));
    assert_eq!(
        ok(&ns.run(&["run", "-d", d(&root), "cat /etc/resolv.conf"])),
        "nameserver 192.0.2.53\n"
    );
    let o = ns.run(&[
        "run",
        "-d",
        d(&root),
        "echo nameserver 10.9.9.9 > /etc/resolv.conf",
    ]);
    assert_ne!(code(&o), 0);
    assert_eq!(
        fs::read_to_string(&stand_in).unwrap(),
        "nameserver 192.0.2.53\n"
    );
    assert_eq!(fs::read("/etc/resolv.conf").unwrap(), real);
    ok(&ns.run(&["off", "-d", d(&root)]));
}

#[test]
fn a_signal_to_run_ends_the_whole_command() {
    let ns = Ns::new();
    let root = ns.busybox_root("root");
    script(
        &root.join("chroot.d/build"),
        "#!/bin/sh\nsleep 200\necho never\n",
    );
    for (line, sig) in [
        ("build", nix::sys::signal::Signal::SIGTERM),
        ("sleep 201; true", nix::sys::signal::Signal::SIGHUP),
    ] {
        let child = ns
            .tool()
            .args(["run", "-d", d(&root), line])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        common::wait_until(&format!("{line}: started"), || {
            common::pids_rooted_under(&root).len() >= 2
        });
        // nsenter (mount namespace only) execs the tool: its pid is ours to signal.
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), sig).unwrap();
        let o = common::finish_within(child, common::DEADLINE);
        assert_eq!(code(&o), 128 + sig as i32, "{line}");
        common::wait_until(&format!("{line}: nothing left inside"), || {
            common::pids_rooted_under(&root).is_empty()
        });
    }
    ok(&ns.run(&["off", "-d", d(&root)]));
}

#[test]
fn a_hanging_stop_does_not_hang_off() {
    let ns = Ns::new();
    let root = ns.busybox_root("root");
    script(&root.join("chroot.d/stop"), "#!/bin/sh\nexec sleep 1000\n");
    ok(&ns.run(&["on", "-d", d(&root)]));
    let t = std::time::Instant::now();
    let o = ok(&ns.run(&["off", "-d", d(&root), "--timeout", "1"]));
    assert!(o.contains("is off"), "{o}");
    assert!(t.elapsed().as_secs() < 8, "off took {:?}", t.elapsed());
    assert!(ns.mounts_under(&root).is_empty());
    assert!(common::pids_rooted_under(&root).is_empty());
}

/// Under a private mount and under a shared one (a systemd host): the two
/// ways `on` takes to bring them into the self-bind.
#[test]
fn mounts_the_user_made_below_dir_before_on_survive_off() {
    for prop in ["private", "shared"] {
        user_mounts_below_dir_survive_off(prop);
    }
}

/// The user's own tmpfs at `root/home` (mounted before `on`), holding
/// `x` with `data`.
fn users_home(ns: &Ns, root: &Path) {
    fs::create_dir_all(root.join("home")).unwrap();
    assert!(ns
        .sh(&format!(
            "mount -t tmpfs userhome {r}/home && echo data > {r}/home/x",
            r = d(root)
        ))
        .status
        .success());
}

fn user_mounts_below_dir_survive_off(prop: &str) {
    let ns = Ns::with_propagation(prop);
    let root = ns.busybox_root("root");
    users_home(&ns, &root);
    let before = ns.mounts_under(&root);
    assert_eq!(
        ok(&ns.run(&["run", "-d", d(&root), "cat /home/x"])),
        "data\n",
        "visible inside"
    );
    ok(&ns.run(&["off", "-d", d(&root)]));
    assert_eq!(ns.mounts_under(&root), before);
    assert_eq!(
        stdout(&ns.sh(&format!("cat {}/home/x", d(&root)))),
        "data\n"
    );
}

/// `on` killed after its self-bind, before its record says it brought in
/// what the user mounted below DIR: the sandbox reads as partly on, and
/// `run` and `on` ask for `off` rather than risk running without the
/// user's mount inside (where a command would write into the rootfs's own
/// directory under it). With nothing of the user's below DIR, the next
/// `on` or `run` takes it up again.
#[test]
fn an_on_killed_before_the_users_mounts_came_in_asks_for_off() {
    for prop in ["private", "shared"] {
        let ns = Ns::with_propagation(prop);
        let root = ns.busybox_root("root");
        let o = ns.on_killed_after(&root, 0);
        assert!(!o.status.success(), "{prop}: not killed: {}", stderr(&o));
        assert!(
            ok(&ns.run(&["status", "-d", d(&root)])).contains("partly on"),
            "{prop}"
        );
        assert_eq!(
            ok(&ns.run(&["run", "-d", d(&root), "echo in; ls /proc/self >/dev/null"])),
            "in\n",
            "{prop}"
        );
        assert!(
            ok(&ns.run(&["status", "-d", d(&root)])).starts_with(&format!("{}: on\n", d(&root))),
            "{prop}"
        );
        ok(&ns.run(&["off", "-d", d(&root)]));
        assert!(ns.mounts_under(&root).is_empty(), "{prop}");
    }
    for prop in ["private", "shared"] {
        let ns = Ns::with_propagation(prop);
        let root = ns.busybox_root("root");
        users_home(&ns, &root);
        let before = ns.mounts_under(&root);
        let o = ns.on_killed_after(&root, 0);
        assert!(!o.status.success(), "{prop}: not killed: {}", stderr(&o));
        assert!(
            ok(&ns.run(&["status", "-d", d(&root)])).contains("partly on"),
            "{prop}"
        );
        // `run`'s own failures are 125 (the command's codes are its own).
        for (args, want) in [
            (vec!["run", "-d", d(&root), "cat /home/x"], 125),
            (vec!["on", "-d", d(&root)], 1),
        ] {
            let o = ns.run(&args);
            assert_eq!(code(&o), want, "{prop} {args:?}: {}", stderr(&o));
            assert!(stdout(&o).is_empty(), "{prop} {args:?}");
            assert!(
                stderr(&o).contains("interrupted") && stderr(&o).contains("chroot-tool off"),
                "{prop} {args:?}: {}",
                stderr(&o)
            );
        }
        // Nor in a holder's namespaces, where the record is not.
        let o = ns.run(&["on", "-N", "-d", d(&root)]);
        assert_eq!(code(&o), 1, "{prop} on -N: {}", stderr(&o));
        assert!(
            stderr(&o).contains("turn it off first"),
            "{prop}: {}",
            stderr(&o)
        );
        ok(&ns.run(&["off", "-d", d(&root)]));
        assert_eq!(ns.mounts_under(&root), before, "{prop}");
        assert_eq!(
            ok(&ns.run(&["run", "-d", d(&root), "cat /home/x"])),
            "data\n",
            "{prop}"
        );
        ok(&ns.run(&["off", "-d", d(&root)]));
    }
}

/// on's record of its self-bind says "finished" whatever the umask: a
/// umask that takes the owner's write bit away (0277 here) leaves the
/// sandbox on, and the next `on` finds it so.
#[test]
fn a_umask_does_not_make_a_finished_on_look_interrupted() {
    let ns = Ns::new();
    let root = ns.busybox_root("root");
    let umasked = |args: &[&str]| {
        common::output_within(
            ns.cmd("sh")
                .args(["-c", "umask 0277; exec \"$0\" \"$@\"", common::BIN])
                .args(args)
                .stdin(std::process::Stdio::null()),
            common::DEADLINE,
        )
    };
    ok(&umasked(&["on", "-d", d(&root)]));
    let st = ok(&ns.run(&["status", "-d", d(&root)]));
    assert!(st.starts_with(&format!("{}: on\n", d(&root))), "{st}");
    let again = ok(&umasked(&["on", "-d", d(&root)]));
    assert!(again.contains("0 mounted"), "{again}");
    ok(&ns.run(&["off", "-d", d(&root)]));
    assert!(ns.mounts_under(&root).is_empty());
}

/// An unbindable mount below DIR (and what lies on it) is left out
/// inside, as `mount --rbind` leaves it out, whether or not another mount
/// of the user's lies below DIR too (two ways of `on`: the copy of DIR has
/// something on it or not); never an error, never touched by `off`.
#[test]
fn an_unbindable_mount_below_dir_is_left_out_as_rbind_leaves_it() {
    for (with_other, prop) in [
        (false, "private"),
        (true, "private"),
        (false, "shared"),
        (true, "shared"),
    ] {
        let ns = Ns::with_propagation(prop);
        let root = ns.busybox_root("root");
        for sub in ["data", "home"] {
            fs::create_dir_all(root.join(sub)).unwrap();
        }
        let mut line = format!(
            "mount -t tmpfs u1 {r}/data && mkdir {r}/data/sub && mount -t tmpfs u2 {r}/data/sub \
             && echo hidden > {r}/data/sub/f && mount --make-unbindable {r}/data",
            r = d(&root)
        );
        if with_other {
            line += &format!(
                " && mount -t tmpfs uh {r}/home && echo data > {r}/home/x",
                r = d(&root)
            );
        }
        assert!(ns.sh(&line).status.success());
        let before = ns.mounts_under(&root);
        let o = ns.run(&[
            "run",
            "-d",
            d(&root),
            "cat /data/sub/f; ls /data; cat /home/x",
        ]);
        let want = if with_other { "data\n" } else { "" };
        assert_eq!(
            stdout(&o),
            want,
            "other mount: {with_other}; {}",
            stderr(&o)
        );
        assert!(stderr(&o).contains("/data/sub/f"), "{}", stderr(&o));
        ok(&ns.run(&["off", "-d", d(&root)]));
        assert_eq!(ns.mounts_under(&root), before);
        assert_eq!(
            stdout(&ns.sh(&format!("cat {}/data/sub/f", d(&root)))),
            "hidden\n"
        );
    }
}

/// The sandbox shows what DIR shows: a mount the user hid under an
/// unbindable one (which is left out inside) stays hidden, though a
/// recursive copy of DIR would bring it out.
#[test]
fn a_mount_hidden_under_an_unbindable_one_stays_hidden_inside() {
    for prop in ["private", "shared"] {
        let ns = Ns::with_propagation(prop);
        let root = ns.busybox_root("root");
        fs::create_dir_all(root.join("a/x")).unwrap();
        assert!(ns
            .sh(&format!(
                "mount -t tmpfs secret {r}/a/x && echo secret > {r}/a/x/f \
                 && mount -t tmpfs cover {r}/a && mount --make-unbindable {r}/a",
                r = d(&root)
            ))
            .status
            .success());
        let before = ns.mounts_under(&root);
        let o = ns.run(&["run", "-d", d(&root), "cat /a/x/f"]);
        assert_eq!(stdout(&o), "", "{prop}: {}", stderr(&o));
        assert!(stderr(&o).contains("/a/x/f"), "{prop}: {}", stderr(&o));
        assert_eq!(
            ok(&ns.run(&["run", "-d", d(&root), "ls /a | wc -l"])),
            "1\n"
        );
        ok(&ns.run(&["off", "-d", d(&root)]));
        assert_eq!(ns.mounts_under(&root), before, "{prop}");
    }
}

#[test]
fn chroot_cmd_gets_the_words_of_a_line_with_no_shell_around() {
    let ns = Ns::new();
    let root = ns.busybox_root("root");
    script(
        &root.join("chroot.d/chroot-cmd"),
        "#!/bin/sh\nfor w in \"$@\"; do echo \"[$w]\"; done\n",
    );
    let o = ok(&ns.run(&["run", "-d", d(&root), "echo a; env | head 'x y'"]));
    assert_eq!(o, "[echo]\n[a;]\n[env]\n[|]\n[head]\n[x y]\n");
    ok(&ns.run(&["off", "-d", d(&root)]));
}
