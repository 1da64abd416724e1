//! Safety under attack, faults and concurrency, as root, each test in its own
//! mount namespace. Every test counts what it tried and what it found:
//! attacks tried, faults injected, mounts left behind and host files changed
//! (the last two must be 0); the counts are printed with eprintln
//! (`cargo test --test security -- --nocapture` shows them).
mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use common::{code, d, ok, script, stderr, stdout, Ns};

/// A failure reported on one line that starts `chroot-tool: `.
#[track_caller]
fn one_line_error(o: &Output, what: &str) -> String {
    assert!(!o.status.success(), "{what}: expected a failure");
    let e = stderr(o);
    assert!(
        e.starts_with("chroot-tool: ") && e.trim_end().lines().count() == 1,
        "{what}: not a one-line error: {e:?}"
    );
    e
}

/// What a test tried and found; printed, then checked, at the end.
struct Tally {
    name: &'static str,
    attacks: usize,
    faults: usize,
    mounts_left: usize,
    host_changed: usize,
}

impl Tally {
    fn new(name: &'static str) -> Tally {
        Tally {
            name,
            attacks: 0,
            faults: 0,
            mounts_left: 0,
            host_changed: 0,
        }
    }

    /// Counts mounts left at or below `dir`.
    fn left(&mut self, ns: &Ns, dir: &Path) -> Vec<String> {
        let m = ns.mounts_under(dir);
        self.mounts_left += m.len();
        m
    }

    fn changed(&mut self, before: &Snapshot, after: &Snapshot) -> Vec<String> {
        let diff = before.diff(after);
        self.host_changed += diff.len();
        diff
    }

    fn finish(self) {
        eprintln!(
            "security counts [{}]: attacks tried {}, faults injected {}, mounts left {}, host files changed {}",
            self.name, self.attacks, self.faults, self.mounts_left, self.host_changed
        );
        assert_eq!(self.mounts_left, 0, "{}: mounts left behind", self.name);
        assert_eq!(self.host_changed, 0, "{}: host files changed", self.name);
    }
}

/// Every entry below some host directories (never following symlinks):
/// type, size, mtime and link target. Also the names in `/`.
#[derive(PartialEq, Eq)]
struct Snapshot(BTreeMap<PathBuf, String>);

impl Snapshot {
    fn take(dirs: &[&Path]) -> Snapshot {
        let mut m = BTreeMap::new();
        for e in fs::read_dir("/").unwrap().flatten() {
            m.insert(e.path(), "top-level".to_string());
        }
        for dir in dirs {
            walk(dir, &mut m);
        }
        Snapshot(m)
    }

    fn diff(&self, after: &Snapshot) -> Vec<String> {
        let mut out = vec![];
        for (p, v) in &self.0 {
            match after.0.get(p) {
                None => out.push(format!("removed {}", p.display())),
                Some(w) if w != v => out.push(format!("changed {}", p.display())),
                _ => {}
            }
        }
        for p in after.0.keys().filter(|p| !self.0.contains_key(*p)) {
            out.push(format!("created {}", p.display()));
        }
        out
    }
}

fn walk(p: &Path, m: &mut BTreeMap<PathBuf, String>) {
    let Ok(md) = fs::symlink_metadata(p) else {
        return;
    };
    let link = fs::read_link(p).ok();
    let mtime = if md.is_dir() { 0 } else { md.mtime_nsec() };
    m.insert(
        p.to_path_buf(),
        format!("{:o} {} {mtime} {link:?}", md.mode(), md.len()),
    );
    if md.is_dir() {
        for e in fs::read_dir(p).unwrap().flatten() {
            walk(&e.path(), m);
        }
    }
}

/// A host directory standing in for the host's /etc and files: what an
/// escape would touch.
fn host_dir(ns: &Ns) -> PathBuf {
    let h = ns.tmp.path().join("host");
    fs::create_dir_all(h.join("etc/sub")).unwrap();
    fs::write(h.join("etc/passwd"), "host passwd\n").unwrap();
    fs::write(h.join("etc/resolv.conf"), "nameserver 192.0.2.1\n").unwrap();
    fs::write(h.join("etc/sub/file"), "keep me\n").unwrap();
    h
}

fn conf(root: &Path, text: &str) {
    fs::write(root.join("chroot.d/tool.conf"), text).unwrap();
}

/// Replaces `path` inside the rootfs by a symlink to `to`.
fn link(root: &Path, path: &str, to: &str) {
    let p = root.join(path.trim_start_matches('/'));
    let _ = fs::remove_dir_all(&p);
    let _ = fs::remove_file(&p);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    symlink(to, &p).unwrap();
}

/// One attack: `on` must either mount everything inside DIR or fail with a
/// one-line error and nothing mounted; no mount outside DIR, no host file
/// touched; `off` then leaves nothing.
fn attack(ns: &Ns, t: &mut Tally, name: &str, setup: impl FnOnce(&Path, &Path), must_fail: bool) {
    t.attacks += 1;
    let host = ns.tmp.path().join("host");
    let root = ns.busybox_root(&format!("sb-{}", t.attacks));
    setup(&root, &host);
    let outside = ns.mounts_outside(&root);
    let before = Snapshot::take(&[&host]);
    let o = ns.run(&["on", "-d", d(&root)]);
    if o.status.success() {
        assert!(!must_fail, "{name}: on should have refused: {}", stdout(&o));
        // What is mounted is inside DIR, and works from inside.
        ok(&ns.run(&["run", "-d", d(&root), "echo x >/dev/null"]));
    } else {
        let e = one_line_error(&o, name);
        let left = t.left(ns, &root);
        assert!(left.is_empty(), "{name}: failed ({e}) but left {left:?}");
    }
    assert_eq!(
        outside,
        ns.mounts_outside(&root),
        "{name}: host mounts changed"
    );
    ok(&ns.run(&["off", "-d", d(&root)]));
    let left = t.left(ns, &root);
    assert!(left.is_empty(), "{name}: left {left:?}");
    let diff = t.changed(&before, &Snapshot::take(&[&host]));
    assert!(diff.is_empty(), "{name}: host files changed: {diff:?}");
}

#[test]
fn symlinked_builtin_targets_stay_inside() {
    let ns = Ns::new();
    let mut t = Tally::new("symlinked built-in targets");
    let h = host_dir(&ns);
    let hs = d(&h).to_string();
    for tgt in ["/tmp", "/run", "/dev", "/proc", "/sys"] {
        let to = format!("{hs}/etc");
        attack(
            &ns,
            &mut t,
            "absolute symlink to host dir",
            |r, _| link(r, tgt, &to),
            false,
        );
        attack(&ns, &mut t, "symlink to /", |r, _| link(r, tgt, "/"), true);
        let up = format!("../../../../../../../..{hs}/etc");
        attack(
            &ns,
            &mut t,
            "dot-dot symlink",
            |r, _| link(r, tgt, &up),
            false,
        );
        attack(
            &ns,
            &mut t,
            "dot-dot to root",
            |r, _| link(r, tgt, "../../../.."),
            true,
        );
        attack(&ns, &mut t, "symlink to .", |r, _| link(r, tgt, "."), true);
    }
    // resolv.conf: absolute, relative and through a symlinked /etc.
    let rc = format!("{hs}/etc/resolv.conf");
    attack(
        &ns,
        &mut t,
        "resolv.conf to host file",
        |r, _| link(r, "/etc/resolv.conf", &rc),
        false,
    );
    let up = format!("../../../../../..{rc}");
    attack(
        &ns,
        &mut t,
        "resolv.conf dot-dot",
        |r, _| link(r, "/etc/resolv.conf", &up),
        false,
    );
    let he = format!("{hs}/etc");
    attack(
        &ns,
        &mut t,
        "/etc to host etc",
        |r, _| link(r, "/etc", &he),
        false,
    );
    attack(
        &ns,
        &mut t,
        "resolv.conf to /",
        |r, _| link(r, "/etc/resolv.conf", "/"),
        true,
    );
    t.finish();
}

#[test]
fn chains_loops_dangling_and_wrong_kinds() {
    let ns = Ns::new();
    let mut t = Tally::new("chains, loops, dangling, kinds");
    let h = host_dir(&ns);
    let hs = d(&h).to_string();
    attack(
        &ns,
        &mut t,
        "chain of symlinks",
        |r, _| {
            link(r, "/tmp", "/a");
            link(r, "/a", "b/c/../../x");
            link(r, "/x", &format!("../../..{hs}/etc/sub"));
        },
        false,
    );
    attack(
        &ns,
        &mut t,
        "chain ending at the root",
        |r, _| {
            link(r, "/tmp", "/a");
            link(r, "/a", "/b");
            link(r, "/b", "..");
        },
        true,
    );
    attack(
        &ns,
        &mut t,
        "symlink loop",
        |r, _| {
            link(r, "/tmp", "/t2");
            link(r, "/t2", "/tmp");
        },
        true,
    );
    attack(
        &ns,
        &mut t,
        "dangling absolute symlink",
        |r, _| link(r, "/run", "/ct-canary-never-made/x"),
        false,
    );
    assert!(!Path::new("/ct-canary-never-made").exists());
    let dangling = format!("{hs}/etc/made-by-sandbox");
    attack(
        &ns,
        &mut t,
        "dangling into host path",
        |r, _| link(r, "/tmp", &dangling),
        false,
    );
    assert!(!Path::new(&dangling).exists());
    attack(
        &ns,
        &mut t,
        "magic link",
        |r, _| link(r, "/tmp", "/proc/self/root"),
        true,
    );
    attack(
        &ns,
        &mut t,
        "file where a directory is needed",
        |r, _| {
            fs::write(r.join("tmp"), "a file").unwrap();
        },
        true,
    );
    if Path::new("/etc/resolv.conf").is_file() {
        attack(
            &ns,
            &mut t,
            "directory where a file is needed",
            |r, _| fs::create_dir_all(r.join("etc/resolv.conf")).unwrap(),
            true,
        );
    }
    // [bind] targets.
    let src = ns.tmp.path().join("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("data"), "source data").unwrap();
    let bind = format!("[bind]\ntgt:/data src:{}\n", d(&src));
    for to in [
        format!("{hs}/etc"),
        format!("../../../../../../..{hs}/etc/sub"),
    ] {
        attack(
            &ns,
            &mut t,
            "bind target symlinked to the host",
            |r, _| {
                conf(r, &bind);
                link(r, "/data", &to);
            },
            false,
        );
    }
    attack(
        &ns,
        &mut t,
        "bind target symlinked to /",
        |r, _| {
            conf(r, &bind);
            link(r, "/data", "/");
        },
        true,
    );
    attack(
        &ns,
        &mut t,
        "bind target a file, source a directory",
        |r, _| {
            conf(r, &bind);
            fs::write(r.join("data"), "x").unwrap();
        },
        true,
    );
    // A target pointed into another bind (a host directory): nothing may be created there.
    let before = Snapshot::take(&[&src]);
    attack(
        &ns,
        &mut t,
        "target redirected into a host bind",
        |r, _| {
            conf(r, &bind);
            link(r, "/tmp", "/data/made-by-sandbox");
        },
        true,
    );
    let diff = t.changed(&before, &Snapshot::take(&[&src]));
    assert!(diff.is_empty(), "{diff:?}");
    t.finish();
}

#[test]
fn run_names_and_chroot_d_symlinks_do_not_leave_the_sandbox() {
    let ns = Ns::new();
    let mut t = Tally::new("run names");
    let h = host_dir(&ns);
    let root = ns.busybox_root("sb");
    let marker = ns.tmp.path().join("host-marker");
    let evil = format!("#!/bin/sh\ntouch {}\n", d(&marker));
    // Host-side scripts an escape would run.
    script(&ns.tmp.path().join("x"), &evil);
    script(&h.join("evil"), &evil);
    script(&root.join("chroot.d/../../x"), &evil);
    link(&root, "/chroot.d/evil", d(&h.join("evil")));
    link(
        &root,
        "/chroot.d/up",
        &format!("../../../../../../..{}", d(&h.join("evil"))),
    );
    let before = Snapshot::take(&[&h]);
    for args in [
        vec!["run", "-d", d(&root), "--", "../x"],
        vec!["run", "-d", d(&root), "../x"],
        vec!["run", "-d", d(&root), "../../x"],
        vec!["run", "-d", d(&root), "--", "../../x"],
        vec!["run", "-d", d(&root), "evil"],
        vec!["run", "-d", d(&root), "up"],
        vec!["run", "-d", d(&root), "--", "evil"],
    ] {
        t.attacks += 1;
        let o = ns.run(&args);
        assert_eq!(code(&o), 127, "{args:?}: {}", stderr(&o));
        assert!(!marker.exists(), "{args:?} ran a host file");
    }
    ok(&ns.run(&["off", "-d", d(&root)]));
    t.left(&ns, &root);
    t.changed(&before, &Snapshot::take(&[&h]));
    t.finish();
}

/// Flips `path` between a directory and symlinks out of the root, from
/// inside the test's namespace, until killed.
fn flipper(ns: &Ns, path: &Path, host: &Path) -> Child {
    let p = d(path);
    let line = format!(
        "while :; do rmdir '{p}' 2>/dev/null; ln -s '{h}' '{p}' 2>/dev/null; rm -f '{p}'; \
         ln -s ../../../../../../.. '{p}' 2>/dev/null; rm -f '{p}'; mkdir '{p}' 2>/dev/null; done",
        h = d(host)
    );
    ns.cmd("sh")
        .args(["-c", &line])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn symlink_swapped_in_while_on_runs() {
    let ns = Ns::new();
    let mut t = Tally::new("swap race");
    let h = host_dir(&ns);
    let root = ns.busybox_root("sb");
    let src = ns.tmp.path().join("src");
    fs::create_dir_all(&src).unwrap();
    conf(&root, &format!("[bind]\ntgt:/a/b src:{}\n", d(&src)));
    fs::create_dir_all(root.join("a")).unwrap();
    let outside = ns.mounts_outside(&root);
    let before = Snapshot::take(&[&h, &src]);
    let f1 = Reap(flipper(&ns, &root.join("tmp"), &h.join("etc")));
    let f2 = Reap(flipper(&ns, &root.join("a"), &h.join("etc")));
    let deadline = Instant::now() + Duration::from_secs(8);
    let mut cycles = 0;
    while cycles < 40 && Instant::now() < deadline {
        t.attacks += 1;
        cycles += 1;
        let o = ns.run(&["on", "-d", d(&root)]);
        if !o.status.success() {
            one_line_error(&o, "on during a swap");
        }
        for m in ns.mounts_under(&root) {
            assert!(m.starts_with(d(&root)), "{m}");
        }
        assert_eq!(outside, ns.mounts_outside(&root), "host mounts changed");
        // The flippers walk through the sandbox's /tmp from outside: a walk
        // in progress can make a mount momentarily busy, which `off` reports
        // (exit 1, listing it); the next `off` finishes the job.
        let mut off = ns.run(&["off", "-d", d(&root)]);
        for _ in 0..10 {
            if off.status.success() {
                break;
            }
            one_line_error(&off, "off during a swap");
            off = ns.run(&["off", "-d", d(&root)]);
        }
        ok(&off);
        t.left(&ns, &root);
    }
    drop((f1, f2));
    t.changed(&before, &Snapshot::take(&[&h, &src]));
    eprintln!("swap race: {cycles} on/off cycles");
    t.finish();
}

#[test]
fn destroy_never_deletes_through_a_bind_or_a_symlink() {
    let ns = Ns::new();
    let mut t = Tally::new("destroy");
    let h = host_dir(&ns);
    let root = ns.busybox_root("sb");
    conf(
        &root,
        &format!(
            "[bind]\ntgt:/mnt/host src:{}\ntgt:/mnt/ro src:{} fs:bind-ro\n",
            d(&h),
            d(&h)
        ),
    );
    link(&root, "/abs", d(&h));
    link(&root, "/rel", &format!("../../../../../..{}", d(&h)));
    link(&root, "/slash", "/");
    link(&root, "/mnt/host-etc", d(&h.join("etc")));
    fs::hard_link(h.join("etc/passwd"), root.join("hardlink")).unwrap_or(());
    let before = Snapshot::take(&[&h]);
    let outside = ns.mounts_outside(&root);
    ok(&ns.run(&["on", "-d", d(&root)]));
    assert!(ok(&ns.run(&["run", "-d", d(&root), "ls /mnt/host/etc"])).contains("passwd"));
    // A process inside keeps running until destroy turns the sandbox off.
    let mut bg = Reap(
        ns.tool()
            .args(["run", "-d", d(&root), "--", "sleep", "1000"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(300));
    t.attacks += 1;
    let o = ns.run(&["destroy", "--yes", "--timeout", "1", "-d", d(&root)]);
    ok(&o);
    let _ = bg.0.wait();
    assert!(!root.exists(), "DIR still there");
    t.left(&ns, &root);
    assert_eq!(outside, ns.mounts_outside(&root));
    // The hard link's target lives on, with its contents.
    let after = Snapshot::take(&[&h]);
    let diff: Vec<String> = t
        .changed(&before, &after)
        .into_iter()
        .filter(|l| l != &format!("changed {}", d(&h.join("etc/passwd"))))
        .collect();
    assert!(diff.is_empty(), "{diff:?}");
    assert_eq!(
        fs::read_to_string(h.join("etc/passwd")).unwrap(),
        "host passwd\n"
    );
    assert_eq!(
        fs::read_to_string(h.join("etc/sub/file")).unwrap(),
        "keep me\n"
    );
    // The passwd entry changed only by its link count.
    t.host_changed = t
        .host_changed
        .saturating_sub(before.diff(&after).len() - diff.len());
    t.finish();
}

#[test]
fn destroy_refuses_what_is_not_a_sandbox() {
    let ns = Ns::new();
    let mut t = Tally::new("destroy refusals");
    let h = host_dir(&ns);
    let home = ns.busybox_root("home");
    let plain = ns.tmp.path().join("plain");
    fs::create_dir_all(&plain).unwrap();
    fs::write(plain.join("notes"), "mine").unwrap();
    let before = Snapshot::take(&[&h, ns.tmp.path()]);
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, i32);
    let cases: Vec<Case> = vec![
        (vec!["destroy", "--yes", "-d", "/"], vec![], 1),
        (vec!["destroy", "--yes", "-d", "/usr"], vec![], 1),
        (vec!["destroy", "--yes", "-d", "/etc"], vec![], 1),
        (
            vec!["destroy", "--yes", "-d", d(&home)],
            vec![("HOME", d(&home))],
            1,
        ),
        (
            vec!["destroy", "--yes", "-d", d(ns.tmp.path())],
            vec![("HOME", d(&home))],
            1,
        ),
        (vec!["destroy", "--yes", "-d", d(&h)], vec![], 1),
        (vec!["destroy", "--yes", "-d", d(&plain)], vec![], 1),
        (vec!["destroy", "-d", d(&home)], vec![], 2),
        (
            vec!["destroy", "--yes", "-d", "/nonexistent-ct-dir"],
            vec![],
            1,
        ),
    ];
    for (args, env, want) in cases {
        t.attacks += 1;
        let mut c = ns.tool();
        c.args(&args).envs(env.iter().copied());
        let o = c.output().unwrap();
        let e = one_line_error(&o, &format!("{args:?}"));
        assert_eq!(code(&o), want, "{args:?}: {e}");
    }
    let o = ns.run(&["destroy", "-d", d(&home)]);
    assert!(stderr(&o).contains("--yes"), "{}", stderr(&o));
    t.changed(&before, &Snapshot::take(&[&h, ns.tmp.path()]));
    // An empty directory may go.
    let empty = ns.tmp.path().join("empty");
    fs::create_dir(&empty).unwrap();
    ok(&ns.run(&["destroy", "--yes", "-d", d(&empty)]));
    assert!(!empty.exists());
    t.finish();
}

#[test]
fn destroy_refuses_while_a_foreign_mount_below_is_busy() {
    let ns = Ns::new();
    let mut t = Tally::new("destroy busy mount");
    let root = ns.busybox_root("sb");
    let mnt = root.join("mnt/disk");
    fs::create_dir_all(&mnt).unwrap();
    let st = ns.sh(&format!(
        "mount -t tmpfs ct-test-disk '{m}' && echo precious > '{m}/file'",
        m = d(&mnt)
    ));
    assert!(st.status.success(), "{}", stderr(&st));
    ok(&ns.run(&["on", "-d", d(&root)]));
    // A host process (root `/`) keeps the foreign mount busy.
    let busy = Reap(
        ns.cmd("sh")
            .args(["-c", &format!("cd '{}' && exec sleep 1000", d(&mnt))])
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(200));
    t.attacks += 1;
    let o = ns.run(&["destroy", "--yes", "--timeout", "1", "-d", d(&root)]);
    let e = one_line_error(&o, "destroy with a busy mount below");
    assert_eq!(code(&o), 1);
    assert!(e.contains("nothing was deleted"), "{e}");
    assert!(root.join("bin/busybox").exists(), "deleted while refusing");
    let out = ns.sh(&format!("cat '{}/file'", d(&mnt)));
    assert_eq!(stdout(&out), "precious\n");
    drop(busy);
    // Not busy any more, but the user mounted it before `on`: chroot-tool
    // never unmounts it, and destroy still refuses until the user does.
    let o = ns.run(&["destroy", "--yes", "-d", d(&root)]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("nothing was deleted"));
    assert_eq!(
        stdout(&ns.sh(&format!("cat '{}/file'", d(&mnt)))),
        "precious\n"
    );
    // `off` keeps it; once the user unmounts it, destroy goes ahead.
    ok(&ns.run(&["off", "-d", d(&root)]));
    assert_eq!(
        stdout(&ns.sh(&format!("cat '{}/file'", d(&mnt)))),
        "precious\n"
    );
    assert!(ns.sh(&format!("umount '{}'", d(&mnt))).status.success());
    ok(&ns.run(&["destroy", "--yes", "-d", d(&root)]));
    assert!(!root.exists());
    t.left(&ns, &root);
    t.finish();
}

#[test]
fn eight_runs_racing_an_off() {
    let ns = Ns::new();
    let mut t = Tally::new("8 runs racing off");
    let root = ns.busybox_root("sb");
    for round in 0..10u64 {
        let runs: Vec<Child> = (0..8)
            .map(|_| {
                ns.tool()
                    .args(["run", "-d", d(&root), "sleep 0.3; exit 3"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        std::thread::sleep(Duration::from_millis(50 + round * 30));
        t.faults += 1;
        let off = ns.run(&["off", "--timeout", "1", "-d", d(&root)]);
        ok(&off);
        for r in runs {
            let o = r.wait_with_output().unwrap();
            let c = code(&o);
            assert!(
                matches!(c, 3 | 143 | 137),
                "round {round}: run exited {c}: {}",
                stderr(&o)
            );
        }
        ok(&ns.run(&["off", "-d", d(&root)]));
        t.left(&ns, &root);
        assert!(common::pids_rooted_under(&root).is_empty());
    }
    t.finish();
}

#[test]
fn parallel_runs_and_ons() {
    let ns = Ns::new();
    let mut t = Tally::new("parallel runs, on+on");
    let root = ns.busybox_root("sb");
    let runs: Vec<Child> = (0..12)
        .map(|i| {
            ns.tool()
                .args(["run", "-d", d(&root), &format!("echo run-{i}")])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (i, r) in runs.into_iter().enumerate() {
        let o = r.wait_with_output().unwrap();
        assert_eq!(ok(&o), format!("run-{i}\n"));
    }
    let once = {
        let mut m = ns.mounts_under(&root);
        m.sort();
        m
    };
    ok(&ns.run(&["off", "-d", d(&root)]));
    let ons: Vec<Child> = (0..6)
        .map(|_| {
            ns.tool()
                .args(["on", "-d", d(&root)])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for o in ons {
        ok(&o.wait_with_output().unwrap());
    }
    let mut m = ns.mounts_under(&root);
    m.sort();
    assert_eq!(once, m, "concurrent ons mounted twice");
    ok(&ns.run(&["off", "-d", d(&root)]));
    t.left(&ns, &root);
    t.finish();
}

#[test]
fn kill_9_of_on_after_each_mount() {
    let ns = Ns::new();
    let mut t = Tally::new("kill -9 of on");
    let root = ns.busybox_root("sb");
    let outside = ns.mounts_outside(&root);
    ok(&ns.run(&["on", "-d", d(&root)]));
    let mut clean = ns.mounts_under(&root);
    clean.sort();
    ok(&ns.run(&["off", "-d", d(&root)]));
    for n in 1..=clean.len() {
        t.faults += 1;
        let o = ns.on_killed_after(&root, n);
        if n < clean.len() - 1 {
            assert_eq!(o.status.code(), None, "on after {n} mounts was not killed");
        }
        // The next on completes it exactly; off leaves nothing.
        ok(&ns.run(&["on", "-d", d(&root)]));
        let mut m = ns.mounts_under(&root);
        m.sort();
        assert_eq!(clean, m, "after a kill at mount {n}");
        ok(&ns.run(&["run", "-d", d(&root), "true"]));
        let o = ns.on_killed_after(&root, n);
        ok(&o); // already on: nothing mounted, so no kill
        ok(&ns.run(&["off", "-d", d(&root)]));
        t.left(&ns, &root);
        // A kill, then straight to off.
        t.faults += 1;
        let _ = ns.on_killed_after(&root, n);
        ok(&ns.run(&["off", "-d", d(&root)]));
        t.left(&ns, &root);
    }
    assert_eq!(outside, ns.mounts_outside(&root));
    t.finish();
}

/// A child process of the test, killed by its pid when the test ends (also on panic).
struct Reap(Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A small deterministic generator for random delays (seed printed).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

#[test]
fn kill_9_of_off_at_random_moments() {
    let ns = Ns::new();
    let mut t = Tally::new("kill -9 of off");
    let root = ns.busybox_root("sb");
    script(
        &root.join("chroot.d/stubborn"),
        "#!/bin/sh\ntrap '' TERM\nwhile :; do sleep 0.05; done\n",
    );
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("kill -9 of off: seed {seed}");
    let mut rng = Lcg(seed);
    let outside = ns.mounts_outside(&root);
    for _ in 0..6 {
        ok(&ns.run(&["on", "-d", d(&root)]));
        let mut bg: Vec<Reap> = (0..2)
            .map(|_| {
                Reap(
                    ns.tool()
                        .args(["run", "-d", d(&root), "stubborn"])
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .spawn()
                        .unwrap(),
                )
            })
            .collect();
        std::thread::sleep(Duration::from_millis(150));
        let mut off = ns
            .tool()
            .args(["off", "--timeout", "0.3", "-d", d(&root)])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.next(500)));
        t.faults += 1;
        // nsenter execs chroot-tool: this pid is the off itself.
        let _ = off.kill();
        let _ = off.wait();
        ok(&ns.run(&["off", "--timeout", "0.3", "-d", d(&root)]));
        for b in &mut bg {
            let _ = b.0.wait();
        }
        t.left(&ns, &root);
        assert!(common::pids_rooted_under(&root).is_empty());
        ok(&ns.run(&["on", "-d", d(&root)]));
        ok(&ns.run(&["off", "-d", d(&root)]));
        t.left(&ns, &root);
    }
    assert_eq!(outside, ns.mounts_outside(&root));
    t.finish();
}

#[test]
fn after_a_reboot_mounts_gone_processes_and_files_left() {
    let ns = Ns::new();
    let mut t = Tally::new("reboot");
    let root = ns.busybox_root("sb");
    ok(&ns.run(&["on", "-d", d(&root)]));
    let (mut bg, sleep) = bg_sleep(&ns, &root);
    t.faults += 1;
    // "Reboot": every mount under DIR disappears (the test made them all).
    let o = ns.sh(&format!("umount -R -l '{}'", d(&root)));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(ns.mounts_under(&root).is_empty());
    let s = ok(&ns.run(&["status", "-d", d(&root)]));
    assert!(s.contains(": off\n"), "{s}");
    // The process left lives on a mount that is gone: nothing says any more
    // that it is the sandbox's (its root only looks like DIR), so it is not shown or ended.
    assert!(!s.contains("processes inside"), "{s}");
    ok(&ns.run(&["on", "-d", d(&root)]));
    ok(&ns.run(&["run", "-d", d(&root), "test -c /dev/null"]));
    let (mut bg2, sleep2) = bg_sleep(&ns, &root);
    let o = ok(&ns.run(&["off", "--timeout", "1", "-d", d(&root)]));
    assert!(o.contains("1 process ended"), "{o}");
    assert!(ends(sleep2));
    let _ = bg2.0.wait();
    assert!(
        running(sleep),
        "off ended a process that is no longer the sandbox's"
    );
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(sleep),
        nix::sys::signal::Signal::SIGKILL,
    );
    let _ = bg.0.wait();
    t.left(&ns, &root);
    assert!(common::pids_rooted_under(&root).is_empty());
    t.finish();
}

/// Mount lines without their ids.
fn lines(info: &str) -> Vec<String> {
    info.lines()
        .map(|l| l.split(' ').skip(2).collect::<Vec<_>>().join(" "))
        .collect()
}

#[test]
fn shared_host_mounts_and_a_peer_namespace_stay_untouched() {
    let ns = Ns::with_propagation("shared");
    let mut t = Tally::new("shared propagation");
    let h = host_dir(&ns);
    let root = ns.busybox_root("sb");
    conf(
        &root,
        &format!("[bind]\ntgt:/mnt/host src:{} opt:rbind\n", d(&h)),
    );
    // A peer: a namespace made from inside the first, its mounts in the same peer groups.
    let peer = Reap(
        ns.cmd("unshare")
            .args(["-m", "--propagation", "unchanged", "sleep", "100000"])
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let peer_pid = peer.0.id();
    let ns_mnt = fs::read_link(format!("/proc/{}/ns/mnt", ns.pid())).unwrap();
    let host_mnt = fs::read_link("/proc/self/ns/mnt").unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while fs::read_link(format!("/proc/{peer_pid}/ns/mnt"))
        .map_or(true, |m| m == ns_mnt || m == host_mnt)
        || fs::read_to_string(format!("/proc/{peer_pid}/comm")).unwrap_or_default() != "sleep\n"
    {
        assert!(Instant::now() < deadline, "peer namespace not made");
        std::thread::sleep(Duration::from_millis(5));
    }
    let peer_info = || fs::read_to_string(format!("/proc/{peer_pid}/mountinfo")).unwrap();
    let peer_before = lines(&peer_info());
    assert!(
        ns.mountinfo().contains("shared:"),
        "the namespace is not shared"
    );
    let outside = ns.mounts_outside(&root);
    let before = Snapshot::take(&[&h]);
    for _ in 0..3 {
        t.attacks += 1;
        ok(&ns.run(&["on", "-d", d(&root)]));
        ok(&ns.run(&[
            "run",
            "-d",
            d(&root),
            "ls /mnt/host >/dev/null && mount -t tmpfs x /mnt",
        ]));
        // Every sandbox mount is private, DIR's self-bind included.
        for l in ns.mountinfo().lines() {
            let point = common::unescape(l.split(' ').nth(4).unwrap());
            if point.starts_with(d(&root)) {
                assert!(!l.contains("shared:") && !l.contains("master:"), "{l}");
            }
        }
        // The peer sees at most DIR bound on itself, none of the sandbox's mounts.
        let info = peer_info();
        let seen: Vec<&str> = info
            .lines()
            .map(|l| l.split(' ').nth(4).unwrap())
            .filter(|p| p.starts_with(&format!("{}/", d(&root))))
            .collect();
        assert!(
            seen.is_empty(),
            "the peer sees the sandbox's mounts: {seen:?}"
        );
        ok(&ns.run(&["off", "-d", d(&root)]));
        t.left(&ns, &root);
        assert_eq!(outside, ns.mounts_outside(&root), "host mounts changed");
        let now = lines(&peer_info());
        if now != peer_before {
            t.mounts_left += 1;
        }
        assert_eq!(peer_before, now, "the peer's mounts changed");
    }
    t.changed(&before, &Snapshot::take(&[&h]));
    drop(peer);
    t.finish();
}

#[test]
fn bad_input_is_one_line_and_mounts_nothing() {
    let ns = Ns::new();
    let mut t = Tally::new("bad input");
    let noshell = ns.tmp.path().join("noshell");
    fs::create_dir_all(noshell.join("etc")).unwrap();
    for (args, want) in [
        (vec!["on", "-d", "/nonexistent-ct-dir"], 1),
        (vec!["on", "-d", "/"], 1),
        (vec!["on", "-d", d(&noshell)], 1),
        (vec!["on", "-d", "relative/dir"], 1),
        (vec!["run", "-d", "/", "true"], 125),
        (vec!["on"], 2),
    ] {
        t.attacks += 1;
        let o = ns.run(&args);
        one_line_error(&o, &format!("{args:?}"));
        assert_eq!(code(&o), want, "{args:?}: {}", stderr(&o));
    }
    t.left(&ns, &noshell);
    let root = ns.busybox_root("sb");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/conf");
    let mut bad: Vec<(String, String)> = fs::read_dir(&fixtures)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("bad-"))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                fs::read_to_string(e.path()).unwrap(),
            )
        })
        .collect();
    for (name, text) in [
        (
            "missing source",
            "[bind]\ntgt:/x src:/nonexistent-ct-source\n",
        ),
        ("relative src", "[bind]\ntgt:/x src:rel/src\n"),
        ("relative tgt", "[bind]\ntgt:x/y\n"),
        ("unknown fs", "[bind]\ntgt:/x fs:nosuchfs\n"),
        ("unknown bind option", "[bind]\ntgt:/x src:/etc opt:bogus\n"),
        (
            "unknown tmpfs option",
            "[bind]\ntgt:/x fs:tmpfs opt:nosuchopt=1\n",
        ),
        ("shared option", "[bind]\ntgt:/x src:/etc opt:rshared\n"),
        ("bad tmpfs size", "[bind]\ntgt:/x fs:tmpfs opt:size=lots\n"),
        ("unterminated quote", "[bind]\ntgt:\"/x\n"),
        ("no value", "[bind]\ntgt:\n"),
        ("bad section", "[bind\n"),
        ("malformed section header", "[ bind ]\n"),
        ("bad ignore", "[bind]\ntgt:/x ignore:maybe\n"),
        ("empty key", "[bind]\n:/x\n"),
        ("second bad record", "[bind]\ntgt:/ok; tgt:/x fs:nosuchfs\n"),
    ] {
        bad.push((name.into(), text.into()));
    }
    for (name, text) in &bad {
        t.attacks += 1;
        conf(&root, text);
        let o = ns.run(&["on", "-d", d(&root)]);
        let e = one_line_error(&o, name);
        assert_eq!(code(&o), 1, "{name}: {e}");
        assert!(e.contains("tool.conf") || e.contains("line"), "{name}: {e}");
        let left = t.left(&ns, &root);
        assert!(left.is_empty(), "{name}: {left:?}");
        let o = ns.run(&["run", "-d", d(&root), "true"]);
        assert_eq!(code(&o), 125, "{name}");
        t.left(&ns, &root);
    }
    fs::remove_file(root.join("chroot.d/tool.conf")).unwrap();
    eprintln!("bad input: {} malformed tool.conf files tried", bad.len());
    t.finish();
}

#[test]
fn unusual_directory_names_work() {
    let ns = Ns::new();
    let mut t = Tally::new("unusual names");
    let outside_dirs: Vec<&str> = vec![
        "a b",
        "ü",
        "$x",
        "'q'",
        "tab\there",
        "back\\slash",
        "x;y&z",
        "-d",
    ];
    for name in outside_dirs {
        let root = ns.busybox_root(name);
        let outside = ns.mounts_outside(&root);
        let o = ok(&ns.run(&["run", "-d", d(&root), "echo inside"]));
        assert_eq!(o, "inside\n", "{name:?}");
        let s = ok(&ns.run(&["status", "-d", d(&root)]));
        assert!(s.contains("on"), "{name:?}: {s}");
        ok(&ns.run(&["off", "-d", d(&root)]));
        assert!(ns.mounts_under(&root).is_empty(), "{name:?}");
        t.left(&ns, &root);
        assert_eq!(outside, ns.mounts_outside(&root), "{name:?}");
        ok(&ns.run(&["destroy", "--yes", "-d", d(&root)]));
        assert!(!root.exists(), "{name:?}");
    }
    t.finish();
}

#[test]
fn destroy_asks_on_a_terminal_and_survives_a_kill_9() {
    let ns = Ns::new();
    let mut t = Tally::new("destroy prompt and kill -9");
    let root = ns.busybox_root("sb");
    // On a terminal (script gives it one): "n" keeps DIR, "y" deletes it.
    for (answer, gone) in [("n\n", false), ("y\n", true)] {
        let mut c = ns
            .cmd("script")
            .args([
                "-qec",
                &format!("{} destroy -d '{}'", common::BIN, d(&root)),
                "/dev/null",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        use std::io::Write;
        c.stdin
            .take()
            .unwrap()
            .write_all(answer.as_bytes())
            .unwrap();
        let o = c.wait_with_output().unwrap();
        let out = stdout(&o);
        assert!(out.contains("and everything in it? [y/N]"), "{out}");
        assert_eq!(!root.exists(), gone, "answer {answer:?}: {out}");
    }
    // kill -9 at random moments of a destroy; the next destroy finishes it.
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("kill -9 of destroy: seed {seed}");
    let mut rng = Lcg(seed);
    for i in 0..4 {
        let root = ns.busybox_root(&format!("k{i}"));
        ok(&ns.run(&["on", "-d", d(&root)]));
        let mut c = ns
            .tool()
            .args(["destroy", "--yes", "-d", d(&root)])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros(rng.next(30_000)));
        t.faults += 1;
        let _ = c.kill();
        let _ = c.wait();
        if root.exists() {
            ok(&ns.run(&["destroy", "--yes", "-d", d(&root)]));
        }
        assert!(!root.exists());
        t.left(&ns, &root);
    }
    t.finish();
}

#[test]
fn bind_source_inside_dir_is_resolved_inside_the_root() {
    let ns = Ns::new();
    let mut t = Tally::new("bind source inside DIR");
    let h = host_dir(&ns);
    let before = Snapshot::take(&[&h]);
    for (to, must_fail) in [
        (d(&h.join("etc")).to_string(), true),
        (format!("../../../../../../..{}", d(&h.join("etc"))), true),
        ("/etc".to_string(), false),
        ("/".to_string(), false),
    ] {
        t.attacks += 1;
        let root = ns.busybox_root(&format!("sb-{}", t.attacks));
        link(&root, "/shared", &to);
        conf(
            &root,
            &format!("[bind]\ntgt:/mnt/s src:{}/shared\n", d(&root)),
        );
        let outside = ns.mounts_outside(&root);
        let o = ns.run(&["on", "-d", d(&root)]);
        if must_fail {
            one_line_error(&o, &to);
        } else {
            ok(&o);
            let ls = ok(&ns.run(&[
                "run",
                "-d",
                d(&root),
                "ls /mnt/s /mnt/s/etc 2>/dev/null; true",
            ]));
            assert!(!ls.contains("sub"), "{to}: host seen: {ls}");
        }
        assert_eq!(outside, ns.mounts_outside(&root));
        ok(&ns.run(&["off", "-d", d(&root)]));
        t.left(&ns, &root);
    }
    t.changed(&before, &Snapshot::take(&[&h]));
    t.finish();
}

// ---- issue 7: which directories and which processes are the sandbox's ----

/// Is `pid` running (not gone, not a zombie)?
fn running(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest = &s[s.rfind(')')? + 1..];
            rest.split_whitespace()
                .next()
                .map(|st| st != "Z" && st != "X")
        })
        .unwrap_or(false)
}

/// Waits (up to 5 s) until `pid` runs `comm`; panics past the deadline.
#[track_caller]
fn wait_comm(pid: i32, comm: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default() != format!("{comm}\n")
    {
        assert!(Instant::now() < deadline, "{pid} never ran {comm}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The `sleep` child of a `chroot-tool run` (waited for up to 5 s).
#[track_caller]
fn sleep_child(parent: u32) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let kids = fs::read_to_string(format!("/proc/{parent}/task/{parent}/children"))
            .unwrap_or_default();
        for k in kids
            .split_whitespace()
            .filter_map(|k| k.parse::<i32>().ok())
        {
            if fs::read_to_string(format!("/proc/{k}/comm")).unwrap_or_default() == "sleep\n" {
                return k;
            }
        }
        assert!(Instant::now() < deadline, "run {parent} started no sleep");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits (up to 10 s) for `pid` to end; false when it still runs.
fn ends(pid: i32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while running(pid) {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// `chroot-tool run -d DIR -- sleep 1000` in the background, and its sleep's pid.
fn bg_sleep(ns: &Ns, dir: &Path) -> (Reap, i32) {
    let r = Reap(
        ns.tool()
            .args(["run", "-d", d(dir), "--", "sleep", "1000"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pid = sleep_child(r.0.id());
    (r, pid)
}

/// A `sleep` on the host side of the namespace (root `/`), started by the test.
fn host_sleep(ns: &Ns, chroot: Option<&Path>) -> (Reap, i32) {
    let mut c = match chroot {
        Some(r) => {
            let mut c = ns.cmd("chroot");
            c.arg(r).arg("/bin/sleep");
            c
        }
        None => ns.cmd("sleep"),
    };
    let r = Reap(c.arg("1000").stdin(Stdio::null()).spawn().unwrap());
    let pid = r.0.id() as i32;
    wait_comm(pid, "sleep");
    (r, pid)
}

#[track_caller]
fn sh_ok(ns: &Ns, line: &str) {
    let o = ns.sh(line);
    assert!(o.status.success(), "{line}: {}", stderr(&o));
}

#[test]
fn off_status_and_every_verb_refuse_what_is_not_a_sandbox() {
    let ns = Ns::new();
    let mut t = Tally::new("not a sandbox");
    let tmp = ns.tmp.path();
    // A data directory with a "USB stick" mounted below it.
    let data = tmp.join("data");
    fs::create_dir_all(data.join("stick")).unwrap();
    fs::write(data.join("notes"), "mine").unwrap();
    sh_ok(
        &ns,
        &format!("mount -t tmpfs ct-stick '{}'", d(&data.join("stick"))),
    );
    // A home with a mount below it, and its parent.
    let home = tmp.join("home/user");
    fs::create_dir_all(home.join("stick")).unwrap();
    fs::write(home.join(".profile"), "x").unwrap();
    sh_ok(
        &ns,
        &format!("mount -t tmpfs ct-home '{}'", d(&home.join("stick"))),
    );
    // /mnt with a stick below it (a tmpfs over /mnt in this namespace only).
    sh_ok(
        &ns,
        "mount -t tmpfs ct-mnt /mnt && mkdir /mnt/stick && mount -t tmpfs ct-stick /mnt/stick",
    );
    let before = lines(&ns.mountinfo());
    assert!(
        before.iter().any(|l| l.contains(" /dev/pts ")),
        "no /dev/pts to protect"
    );
    let dirs = [
        "/dev",
        "/dev/pts",
        "/sys",
        "/proc",
        "/run",
        "/",
        "/mnt",
        d(&data),
        d(&home),
        d(home.parent().unwrap()),
    ];
    for dir in dirs {
        for verb in [
            vec!["off", "--timeout", "1"],
            vec!["status"],
            vec!["status", "--json"],
            vec!["destroy", "--yes"],
            vec!["on"],
            vec!["run"],
            vec!["shell"],
        ] {
            t.attacks += 1;
            let mut args = verb.clone();
            args.extend(["-d", dir]);
            if verb[0] == "run" {
                args.push("true");
            }
            let o = ns.tool().args(&args).env("HOME", &home).output().unwrap();
            let e = one_line_error(&o, &format!("{args:?}"));
            let want = if matches!(verb[0], "run" | "shell") {
                125
            } else {
                1
            };
            assert_eq!(code(&o), want, "{args:?}: {e}");
            let now = lines(&ns.mountinfo());
            if now != before {
                t.mounts_left += 1;
            }
            assert_eq!(before, now, "{args:?} changed the mounts");
        }
    }
    assert_eq!(fs::read_to_string(data.join("notes")).unwrap(), "mine");
    t.finish();
}

#[test]
fn off_still_cleans_up_a_broken_sandbox() {
    let ns = Ns::new();
    let mut t = Tally::new("broken sandbox");
    let tmp = ns.tmp.path();
    // Only chroot.d/ left (and some files), mounts below.
    let only_d = tmp.join("only-chroot-d");
    fs::create_dir_all(only_d.join("chroot.d")).unwrap();
    fs::create_dir_all(only_d.join("proc")).unwrap();
    fs::write(only_d.join("junk"), "x").unwrap();
    // A failed create: its log, debootstrap's mounts.
    let failed = tmp.join("failed-create");
    fs::create_dir_all(failed.join("chroot.d")).unwrap();
    fs::write(failed.join("chroot.d/create.log"), "E: failed\n").unwrap();
    fs::create_dir_all(failed.join("proc")).unwrap();
    fs::create_dir_all(failed.join("debootstrap")).unwrap();
    for dir in [&only_d, &failed] {
        sh_ok(&ns, &format!("mount -t tmpfs ct-x '{}/proc'", d(dir)));
    }
    // Only the self-bind left: on, then bin/ and chroot.d/ gone.
    let self_bind = ns.busybox_root("self-bind");
    ok(&ns.run(&["on", "-d", d(&self_bind)]));
    fs::remove_dir_all(self_bind.join("bin")).unwrap();
    fs::remove_dir_all(self_bind.join("chroot.d")).unwrap();
    for dir in [&only_d, &failed, &self_bind] {
        t.attacks += 1;
        assert!(!ns.mounts_under(dir).is_empty());
        let s = ok(&ns.run(&["status", "-d", d(dir)]));
        assert!(s.contains(": partly on\n") || s.contains(": on\n"), "{s}");
        let o = ok(&ns.run(&["off", "-d", d(dir)]));
        assert!(o.contains(" is off ("), "{o}");
        let left = t.left(&ns, dir);
        assert!(left.is_empty(), "{}: left {left:?}", d(dir));
    }
    t.finish();
}

#[test]
fn a_bind_of_root_is_refused_and_no_host_process_is_ended() {
    let ns = Ns::new();
    let mut t = Tally::new("bind of /");
    let (_host, host_pid) = host_sleep(&ns, None);
    let slash = ns.tmp.path().join("slash");
    let etc = ns.tmp.path().join("etc");
    fs::create_dir_all(&slash).unwrap();
    fs::create_dir_all(&etc).unwrap();
    sh_ok(&ns, &format!("mount --bind / '{}'", d(&slash)));
    sh_ok(&ns, &format!("mount --bind /etc '{}'", d(&etc)));
    let before = lines(&ns.mountinfo());
    for dir in [&slash, &etc] {
        for verb in [
            vec!["off", "--timeout", "1"],
            vec!["destroy", "--yes", "--timeout", "1"],
            vec!["status"],
            vec!["on"],
        ] {
            t.attacks += 1;
            let mut args = verb.clone();
            args.extend(["-d", d(dir)]);
            let o = ns.run(&args);
            let e = one_line_error(&o, &format!("{args:?}"));
            assert_eq!(code(&o), 1, "{args:?}: {e}");
            assert!(running(host_pid), "{args:?} ended a host process");
            assert_eq!(
                before,
                lines(&ns.mountinfo()),
                "{args:?} changed the mounts"
            );
        }
    }
    sh_ok(
        &ns,
        &format!(
            "test -e '{}/etc/passwd' && test -e '{}/passwd'",
            d(&slash),
            d(&etc)
        ),
    );
    sh_ok(&ns, &format!("umount '{}' '{}'", d(&slash), d(&etc)));
    t.finish();
}

#[test]
fn a_root_that_looks_like_dir_is_not_the_sandbox() {
    let ns = Ns::new();
    let mut t = Tally::new("roots that look like DIR");
    let root = ns.busybox_root("sb");
    let alias = ns.tmp.path().join("alias");
    fs::create_dir_all(&alias).unwrap();
    sh_ok(&ns, &format!("mount --bind '{}' '{}'", d(&root), d(&alias)));
    // Same device and inode as DIR's root, but not the sandbox's mount:
    // chrooted into the alias, and into DIR before `on`.
    let (_by_alias, alias_pid) = host_sleep(&ns, Some(&alias));
    let (_before_on, early_pid) = host_sleep(&ns, Some(&root));
    ok(&ns.run(&["on", "-d", d(&root)]));
    let (mut inside, inside_pid) = bg_sleep(&ns, &root);
    let s = ok(&ns.run(&["status", "--json", "-d", d(&root)]));
    let v: serde_json::Value = serde_json::from_str(&s).unwrap();
    let pids: Vec<i64> = v["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pid"].as_i64().unwrap())
        .collect();
    assert!(pids.contains(&(inside_pid as i64)), "{s}");
    assert!(
        !pids.contains(&(alias_pid as i64)) && !pids.contains(&(early_pid as i64)),
        "{s}"
    );
    t.attacks += 1;
    let o = ok(&ns.run(&["off", "--timeout", "1", "-d", d(&root)]));
    assert!(o.contains("1 process ended"), "{o}");
    assert!(ends(inside_pid), "the sandbox's own sleep still runs");
    let _ = inside.0.wait();
    assert!(
        running(alias_pid),
        "off ended a process chrooted into an alias"
    );
    assert!(running(early_pid), "off ended a process chrooted before on");
    t.left(&ns, &root);
    t.finish();
}

#[test]
fn off_in_one_namespace_spares_another_namespace_at_the_same_path() {
    let a = Ns::new();
    let b = Ns::new();
    let mut t = Tally::new("two namespaces, one path");
    let root = a.busybox_root("sb");
    ok(&a.run(&["on", "-d", d(&root)]));
    ok(&b.run(&["on", "-d", d(&root)]));
    let (mut run_b, sleep_b) = bg_sleep(&b, &root);
    t.attacks += 1;
    let s = ok(&a.run(&["status", "-d", d(&root)]));
    assert!(!s.contains("processes inside"), "{s}");
    ok(&a.run(&["off", "--timeout", "1", "-d", d(&root)]));
    assert!(
        running(sleep_b),
        "off in one namespace ended the other's process"
    );
    assert!(run_b.0.try_wait().unwrap().is_none());
    t.left(&a, &root);
    let s = ok(&b.run(&["status", "-d", d(&root)]));
    assert!(s.contains(&format!("{sleep_b} sleep")), "{s}");
    let o = ok(&b.run(&["off", "--timeout", "1", "-d", d(&root)]));
    assert!(o.contains("1 process ended"), "{o}");
    assert!(ends(sleep_b));
    let _ = run_b.0.wait();
    t.left(&b, &root);
    t.finish();
}

#[test]
fn destroy_of_a_sandbox_on_through_an_alias_refuses_before_acting() {
    let ns = Ns::new();
    let mut t = Tally::new("destroy through an alias");
    let root = ns.busybox_root("sb");
    let alias = ns.tmp.path().join("alias");
    let etc_alias = ns.tmp.path().join("etc-alias");
    fs::create_dir_all(&alias).unwrap();
    fs::create_dir_all(&etc_alias).unwrap();
    sh_ok(&ns, &format!("mount --bind '{}' '{}'", d(&root), d(&alias)));
    ok(&ns.run(&["on", "-d", d(&alias)]));
    let (_run, sleep) = bg_sleep(&ns, &alias);
    let before = Snapshot::take(&[&root]);
    let mounts = lines(&ns.mountinfo());
    let check = |t: &mut Tally, args: &[&str], names: &Path| {
        t.attacks += 1;
        let o = ns.run(args);
        let e = one_line_error(&o, &format!("{args:?}"));
        assert_eq!(code(&o), 1, "{e}");
        assert!(e.contains(d(names)), "{args:?}: {e}");
        assert!(running(sleep), "{args:?} ended the alias's process");
        t.changed(&before, &Snapshot::take(&[&root]));
    };
    check(
        &mut t,
        &["destroy", "--yes", "--timeout", "1", "-d", d(&root)],
        &alias,
    );
    check(
        &mut t,
        &["destroy", "--yes", "--timeout", "1", "-d", d(&alias)],
        &alias,
    );
    assert_eq!(mounts, lines(&ns.mountinfo()));
    // DIR itself is not on: off there ends nothing of the alias's.
    t.attacks += 1;
    let o = ok(&ns.run(&["off", "--timeout", "1", "-d", d(&root)]));
    assert!(o.contains("already off"), "{o}");
    assert!(running(sleep), "off of DIR ended the alias's process");
    assert_eq!(mounts, lines(&ns.mountinfo()));
    // A part of DIR bound elsewhere (not on) is named too.
    ok(&ns.run(&["off", "--timeout", "1", "-d", d(&alias)]));
    assert!(ends(sleep));
    sh_ok(&ns, &format!("umount '{}'", d(&alias)));
    sh_ok(
        &ns,
        &format!("mount --bind '{}/etc' '{}'", d(&root), d(&etc_alias)),
    );
    let before = Snapshot::take(&[&root]);
    t.attacks += 1;
    let o = ns.run(&["destroy", "--yes", "-d", d(&root)]);
    let e = one_line_error(&o, "destroy with DIR/etc bound elsewhere");
    assert!(e.contains(d(&etc_alias)), "{e}");
    t.changed(&before, &Snapshot::take(&[&root]));
    sh_ok(&ns, &format!("umount '{}'", d(&etc_alias)));
    ok(&ns.run(&["destroy", "--yes", "-d", d(&root)]));
    assert!(!root.exists());
    t.left(&ns, &root);
    t.finish();
}

#[test]
fn destroy_refuses_a_sandbox_on_through_a_bind_of_its_parent() {
    let ns = Ns::new();
    let mut t = Tally::new("destroy, parent bound elsewhere");
    let parent = ns.tmp.path().join("parent");
    fs::create_dir_all(&parent).unwrap();
    let root = parent.join("sb");
    common::make_busybox_root(&root);
    let palias = ns.tmp.path().join("palias");
    fs::create_dir_all(&palias).unwrap();
    sh_ok(
        &ns,
        &format!("mount --bind '{}' '{}'", d(&parent), d(&palias)),
    );
    let on_there = palias.join("sb");
    ok(&ns.run(&["on", "-d", d(&on_there)]));
    let (_run, sleep) = bg_sleep(&ns, &on_there);
    let before = Snapshot::take(&[&root]);
    t.attacks += 1;
    let o = ns.run(&["destroy", "--yes", "--timeout", "1", "-d", d(&root)]);
    let e = one_line_error(&o, "destroy of a sandbox on through its parent's bind");
    assert!(e.contains(d(&on_there)), "{e}");
    assert!(
        running(sleep),
        "destroy ended the process of the sandbox on elsewhere"
    );
    t.changed(&before, &Snapshot::take(&[&root]));
    ok(&ns.run(&["off", "--timeout", "1", "-d", d(&on_there)]));
    assert!(ends(sleep));
    t.left(&ns, &on_there);
    // Only the parent bound elsewhere, nothing on there: destroy may go.
    ok(&ns.run(&["destroy", "--yes", "-d", d(&root)]));
    assert!(!root.exists());
    sh_ok(&ns, &format!("umount '{}'", d(&palias)));
    t.finish();
}

#[test]
fn destroy_decides_before_it_ends_anything() {
    let ns = Ns::new();
    let mut t = Tally::new("destroy decides first");
    let root = ns.busybox_root("sb");
    let disk = root.join("mnt/disk");
    fs::create_dir_all(&disk).unwrap();
    sh_ok(&ns, &format!("mount -t tmpfs ct-disk '{}'", d(&disk)));
    ok(&ns.run(&["on", "-d", d(&root)]));
    let (_run, sleep) = bg_sleep(&ns, &root);
    let before = Snapshot::take(&[&root]);
    t.attacks += 1;
    let o = ns.run(&["destroy", "--yes", "--timeout", "1", "-d", d(&root)]);
    let e = one_line_error(&o, "destroy with the user's mount below");
    assert!(
        e.contains("nothing was deleted") && e.contains(d(&disk)),
        "{e}"
    );
    assert!(running(sleep), "destroy ended a process before refusing");
    assert!(
        ns.mounts_under(&root).len() > 2,
        "destroy turned the sandbox off before refusing"
    );
    t.changed(&before, &Snapshot::take(&[&root]));
    ok(&ns.run(&["off", "--timeout", "1", "-d", d(&root)]));
    assert!(ends(sleep));
    sh_ok(&ns, &format!("umount '{}'", d(&disk)));
    ok(&ns.run(&["destroy", "--yes", "-d", d(&root)]));
    t.left(&ns, &root);
    t.finish();
}
