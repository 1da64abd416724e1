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

use chroot_tool::sandbox::Root;
use common::{code, d, ok, script, stderr, stdout, Ns, Reap};

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

    /// Prints the counts, then checks them: nothing left or changed, and
    /// at least as many attacks and faults as the test means to make (a
    /// loop that silently ran fewer times proves less than it says).
    fn finish(self, attacks: usize, faults: usize) {
        eprintln!(
            "security counts [{}]: attacks tried {}, faults injected {}, mounts left {}, host files changed {}",
            self.name, self.attacks, self.faults, self.mounts_left, self.host_changed
        );
        assert!(
            self.attacks >= attacks && self.faults >= faults,
            "{}: {} attacks and {} faults, fewer than the {attacks} and {faults} planned",
            self.name,
            self.attacks,
            self.faults
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

/// What an attack must end in.
enum Expect {
    /// `on` refuses with a one-line error and mounts nothing.
    Refused,
    /// `on` succeeds and the attacked target is mounted at this path
    /// *inside* the root (where the symlink leads when resolved as if DIR
    /// were `/`), never on the host path the symlink names.
    At(String),
}

/// Where a symlink `tgt -> to` lands inside the root: at `to`, unless `to`
/// leads back through `tgt` itself (a host path under the attacked target,
/// as when the checkout lies under `/tmp`): a loop, refused.
fn lands(tgt: &str, to: &str) -> Expect {
    if to == tgt || to.starts_with(&format!("{tgt}/")) {
        Expect::Refused
    } else {
        Expect::At(to.to_string())
    }
}

/// One attack: `on` must do what `expect` says; no mount outside DIR, no
/// host file touched; `off` then leaves nothing.
fn attack(ns: &Ns, t: &mut Tally, name: &str, setup: impl FnOnce(&Path, &Path), expect: Expect) {
    t.attacks += 1;
    let host = ns.tmp.path().join("host");
    let root = ns.busybox_root(&format!("sb-{}", t.attacks));
    setup(&root, &host);
    let outside = ns.mounts_outside(&root);
    let before = Snapshot::take(&[&host]);
    let o = ns.run(&["on", "-d", d(&root)]);
    match expect {
        Expect::At(inside) => {
            ok(&o);
            let want = format!("{}{inside}", d(&root));
            let points = ns.mounts_under(&root);
            assert!(
                points.contains(&want),
                "{name}: nothing mounted at {want} (inside the root): {points:?}"
            );
            // What is mounted is inside DIR, and works from inside.
            ok(&ns.run(&["run", "-d", d(&root), "echo x >/dev/null"]));
        }
        Expect::Refused => {
            let e = one_line_error(&o, name);
            let left = t.left(ns, &root);
            assert!(left.is_empty(), "{name}: failed ({e}) but left {left:?}");
        }
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
            lands(tgt, &to),
        );
        attack(
            &ns,
            &mut t,
            "symlink to /",
            |r, _| link(r, tgt, "/"),
            Expect::Refused,
        );
        let up = format!("../../../../../../../..{hs}/etc");
        attack(
            &ns,
            &mut t,
            "dot-dot symlink",
            |r, _| link(r, tgt, &up),
            lands(tgt, &to),
        );
        attack(
            &ns,
            &mut t,
            "dot-dot to root",
            |r, _| link(r, tgt, "../../../.."),
            Expect::Refused,
        );
        attack(
            &ns,
            &mut t,
            "symlink to .",
            |r, _| link(r, tgt, "."),
            Expect::Refused,
        );
    }
    // resolv.conf: absolute, relative and through a symlinked /etc.
    let rc = format!("{hs}/etc/resolv.conf");
    attack(
        &ns,
        &mut t,
        "resolv.conf to host file",
        |r, _| link(r, "/etc/resolv.conf", &rc),
        Expect::At(rc.clone()),
    );
    let up = format!("../../../../../..{rc}");
    attack(
        &ns,
        &mut t,
        "resolv.conf dot-dot",
        |r, _| link(r, "/etc/resolv.conf", &up),
        Expect::At(rc.clone()),
    );
    let he = format!("{hs}/etc");
    attack(
        &ns,
        &mut t,
        "/etc to host etc",
        |r, _| link(r, "/etc", &he),
        Expect::At(format!("{he}/resolv.conf")),
    );
    attack(
        &ns,
        &mut t,
        "resolv.conf to /",
        |r, _| link(r, "/etc/resolv.conf", "/"),
        Expect::Refused,
    );
    t.finish(29, 0);
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
        lands("/tmp", &format!("{hs}/etc/sub")),
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
        Expect::Refused,
    );
    attack(
        &ns,
        &mut t,
        "symlink loop",
        |r, _| {
            link(r, "/tmp", "/t2");
            link(r, "/t2", "/tmp");
        },
        Expect::Refused,
    );
    attack(
        &ns,
        &mut t,
        "dangling absolute symlink",
        |r, _| link(r, "/run", "/ct-canary-never-made/x"),
        Expect::At("/ct-canary-never-made/x".into()),
    );
    assert!(!Path::new("/ct-canary-never-made").exists());
    let dangling = format!("{hs}/etc/made-by-sandbox");
    attack(
        &ns,
        &mut t,
        "dangling into host path",
        |r, _| link(r, "/tmp", &dangling),
        lands("/tmp", &dangling),
    );
    assert!(!Path::new(&dangling).exists());
    attack(
        &ns,
        &mut t,
        "magic link",
        |r, _| link(r, "/tmp", "/proc/self/root"),
        Expect::Refused,
    );
    attack(
        &ns,
        &mut t,
        "file where a directory is needed",
        |r, _| {
            fs::write(r.join("tmp"), "a file").unwrap();
        },
        Expect::Refused,
    );
    if Path::new("/etc/resolv.conf").is_file() {
        attack(
            &ns,
            &mut t,
            "directory where a file is needed",
            |r, _| fs::create_dir_all(r.join("etc/resolv.conf")).unwrap(),
            Expect::Refused,
        );
    }
    // [bind] targets.
    let src = ns.tmp.path().join("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("data"), "source data").unwrap();
    let bind = format!("[bind]\ntgt:/data src:{}\n", d(&src));
    for (to, lands) in [
        (format!("{hs}/etc"), format!("{hs}/etc")),
        (
            format!("../../../../../../..{hs}/etc/sub"),
            format!("{hs}/etc/sub"),
        ),
    ] {
        attack(
            &ns,
            &mut t,
            "bind target symlinked to the host",
            |r, _| {
                conf(r, &bind);
                link(r, "/data", &to);
            },
            Expect::At(lands),
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
        Expect::Refused,
    );
    attack(
        &ns,
        &mut t,
        "bind target a file, source a directory",
        |r, _| {
            conf(r, &bind);
            fs::write(r.join("data"), "x").unwrap();
        },
        Expect::Refused,
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
        Expect::Refused,
    );
    let diff = t.changed(&before, &Snapshot::take(&[&src]));
    assert!(diff.is_empty(), "{diff:?}");
    t.finish(13, 0);
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
    t.finish(7, 0);
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
    // The flippers really flip: both shapes are seen during the race.
    let (mut seen_link, mut seen_dir) = (false, false);
    let watch = Instant::now() + Duration::from_secs(30);
    while !(seen_link && seen_dir) && Instant::now() < watch {
        match fs::symlink_metadata(root.join("tmp")) {
            Ok(m) if m.file_type().is_symlink() => seen_link = true,
            Ok(m) if m.is_dir() => seen_dir = true,
            _ => {}
        }
    }
    // At least 10 cycles however slow the machine is (bounded by the
    // test's own deadline below), up to 40 within the first 8 s.
    let hard = Instant::now() + Duration::from_secs(120);
    while cycles < 40 && (cycles < 10 || Instant::now() < deadline) && Instant::now() < hard {
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
    assert!(
        cycles >= 10,
        "only {cycles} on/off cycles: the race was not run"
    );
    assert!(seen_link && seen_dir, "the flippers did not flip");
    t.finish(10, 0);
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
    common::wait_until("the sleep inside", || {
        !common::pids_rooted_under(&root).is_empty()
    });
    t.attacks += 1;
    let o = ns.run(&["destroy", "--yes", "--timeout", "1", "-d", d(&root)]);
    ok(&o);
    common::wait_within(&mut bg.0, common::DEADLINE);
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
    t.finish(1, 0);
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
        let o = common::output_within(&mut c, common::DEADLINE);
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
    t.finish(9, 0);
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
    t.finish(1, 0);
}

/// Under a private mount and under a shared one (a systemd host), where
/// `on` attaches a copy of DIR for a moment.
#[test]
fn eight_runs_racing_an_off() {
    for prop in ["private", "shared"] {
        runs_racing_an_off(prop);
    }
}

fn runs_racing_an_off(prop: &str) {
    let ns = Ns::with_propagation(prop);
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
            let o = common::finish_within(r, common::DEADLINE);
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
    t.finish(0, 10);
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
        t.faults += 1;
        let o = common::finish_within(r, common::DEADLINE);
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
        t.faults += 1;
        ok(&common::finish_within(o, common::DEADLINE));
    }
    let mut m = ns.mounts_under(&root);
    m.sort();
    assert_eq!(once, m, "concurrent ons mounted twice");
    ok(&ns.run(&["off", "-d", d(&root)]));
    t.left(&ns, &root);
    t.finish(0, 18);
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
    // Nine mounts (the self-bind, seven built-ins, resolv.conf), two
    // faults each.
    t.finish(0, 18);
}

/// A busybox rootfs `sb` with a user `nobody` besides root, and its path.
fn root_with_nobody(ns: &Ns) -> (PathBuf, String) {
    let root = ns.busybox_root("sb");
    fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n",
    )
    .unwrap();
    let r = d(&root).to_string();
    (root, r)
}

/// The device nodes count as much as the mounts: `on` killed after its
/// last mount (before all nodes are made), or a node removed or replaced
/// from inside, leaves the sandbox "partly on" (never "on"). A missing
/// node is put back by `run` or `on`; a file or another node at its name
/// has the host's node bound over it, as before nodes were made; a symlink
/// or a directory there is never followed, removed or bound over: `on` and
/// `run` say so and what to do, and `run` still runs. A holder's nodes
/// are bound: even root inside cannot remove them.
#[test]
fn device_nodes_missing_or_replaced_are_partly_on_and_made_again() {
    let ns = Ns::new();
    let mut t = Tally::new("device nodes missing or replaced");
    let (root, r) = root_with_nobody(&ns);
    let nodes_ok = "for n in null zero full random urandom tty; do test -c /dev/$n || exit 1; done";
    // Seven mounts without resolv.conf; /dev's nodes and symlinks are made
    // in its tmpfs before it is attached: an `on` killed after its last
    // mount, or after /dev's, left none missing.
    conf(&root, "[bind]\ntgt:/etc/resolv.conf ignore:yes\n");
    for after in [1, 7] {
        t.faults += 1;
        let o = ns.on_killed_after(&root, after);
        assert_eq!(
            o.status.code(),
            None,
            "on was not killed after mount {after}"
        );
        let state = if after == 7 { "on" } else { "partly on" };
        assert_eq!(ns.state(&root), state, "killed after mount {after}");
        // Looked at from the namespace, whose mounts these are.
        let there = format!(
            "cd {r}/dev && for n in null zero full random urandom tty; do test -c $n || exit 1; done \
             && for n in fd stdin stdout stderr ptmx core; do test -L $n || exit 1; done"
        );
        ok(&ns.sh(&there));
        ok(&ns.run(&["off", "-d", &r]));
    }
    ok(&ns.run(&["run", "-d", &r, nodes_ok]));
    assert_eq!(ns.state(&root), "on");
    // Put back, or bound over.
    for (what, how) in [
        ("removed", "rm /dev/null"),
        ("a file", "rm /dev/zero && echo x > /dev/zero"),
        ("another device", "rm /dev/tty && mknod /dev/tty c 1 3"),
        ("other permissions", "chmod 600 /dev/random"),
    ] {
        t.faults += 1;
        ok(&ns.run(&["run", "-d", &r, how]));
        assert_eq!(ns.state(&root), "partly on", "{what}");
        let o = ns.run(&["on", "-d", &r]);
        assert_eq!(stderr(&o), "", "{what}");
        assert_eq!(ns.state(&root), "on", "{what}");
        ok(&ns.run(&["run", "-d", &r, nodes_ok]));
        ok(&ns.run(&["run", "-d", &r, "-u", "nobody", "echo x > /dev/null"]));
    }
    ok(&ns.run(&["off", "-d", &r]));
    t.left(&ns, &root);
    // Left as they are, and said.
    fs::write(root.join("etc/secret"), "mine\n").unwrap();
    for (what, node, how) in [
        (
            "a symlink",
            "null",
            "rm /dev/null && ln -s /etc/secret /dev/null",
        ),
        (
            "a symlink",
            "null",
            "mknod -m 666 /dev/shm/n c 1 3 && rm /dev/null && ln -s /dev/shm/n /dev/null",
        ),
        ("a directory", "full", "rm /dev/full && mkdir /dev/full"),
    ] {
        t.faults += 1;
        ok(&ns.run(&["on", "-d", &r]));
        ok(&ns.run(&["run", "-d", &r, how]));
        assert_eq!(ns.state(&root), "partly on", "{what}");
        let o = ns.run(&["on", "-d", &r]);
        assert_eq!(code(&o), 0, "{what}: {}", stderr(&o));
        let said = |e: &str| {
            e.lines().any(|l| {
                l.contains(&format!("{r}/dev/{node}: {what}"))
                    && l.contains("remove it, then `chroot-tool on`")
            })
        };
        assert!(said(&stderr(&o)), "{what}: {}", stderr(&o));
        let o = ns.run(&["run", "-d", &r, "echo ran"]);
        assert_eq!(stdout(&o), "ran\n", "{what}");
        assert!(said(&stderr(&o)), "{what}: {}", stderr(&o));
        assert_eq!(
            fs::read_to_string(root.join("etc/secret")).unwrap(),
            "mine\n",
            "{what}"
        );
        // As said: removed, then on.
        ok(&ns.run(&["run", "-d", &r, &format!("rm -r /dev/{node}")]));
        let o = ns.run(&["on", "-d", &r]);
        assert_eq!(stderr(&o), "", "{what}");
        assert_eq!(ns.state(&root), "on", "{what}");
        ok(&ns.run(&["run", "-d", &r, nodes_ok]));
        ok(&ns.run(&["off", "-d", &r]));
        t.left(&ns, &root);
    }
    // A holder's nodes are binds of the host's.
    t.faults += 1;
    ok(&ns.run(&["on", "--ns", "pid", "-d", &r]));
    // Even root inside, who could unlink a node, cannot remove a bind.
    let o = ns.run(&["run", "-d", &r, "rm /dev/null"]);
    assert_ne!(code(&o), 0, "a holder's /dev/null was removed");
    assert!(stderr(&o).contains("busy"), "{}", stderr(&o));
    ok(&ns.run(&["run", "-d", &r, nodes_ok]));
    ok(&ns.run(&["off", "-d", &r]));
    t.left(&ns, &root);
    t.finish(0, 9);
}

/// A `/dev` the user mounted before `on` is the user's: `on` makes no
/// device node in it (it binds the host's over what is there, or onto a
/// file it creates, as before nodes were made), the sandbox reads "on",
/// a user inside can use the nodes, and `off` leaves the user's content.
#[test]
fn a_dev_mounted_before_on_gets_no_device_node_made() {
    let ns = Ns::new();
    let mut t = Tally::new("a /dev mounted before on");
    let (root, r) = root_with_nobody(&ns);
    let dev = format!("{r}/dev");
    let made = ns.sh(&format!(
        "mkdir -p {dev} && mount -t tmpfs -o mode=755 userdev {dev} && mknod -m 660 {dev}/null c 1 3 \
         && echo keep > {dev}/userfile"
    ));
    assert!(made.status.success(), "{}", stderr(&made));
    t.attacks += 1;
    ok(&ns.run(&["on", "-d", &r]));
    assert_eq!(ns.state(&root), "on");
    ok(&ns.run(&[
        "run",
        "-d",
        &r,
        "-u",
        "nobody",
        "echo x > /dev/null && head -c 1 /dev/zero | wc -c",
    ]));
    ok(&ns.run(&["off", "-d", &r]));
    // The user's tmpfs, as the user left it but for the files `on`
    // created to bind onto: no device node but the user's own.
    let o = ns.sh(&format!("cat {dev}/userfile; stat -c '%n %F %a' {dev}/*"));
    let listing = stdout(&o);
    assert!(listing.starts_with("keep\n"), "{listing}");
    for l in listing.lines().skip(1) {
        if l.contains("character special") {
            assert_eq!(
                l,
                format!("{dev}/null character special file 660"),
                "{listing}"
            );
        }
    }
    assert!(
        ns.mounts_under(&root).contains(&dev),
        "the user's /dev was taken"
    );
    assert!(ns.sh(&format!("umount {dev}")).status.success());
    t.left(&ns, &root);
    t.finish(1, 0);
}

/// A child process of the test, killed by its pid when the test ends (also on panic).
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
            common::wait_within(&mut b.0, common::DEADLINE);
        }
        t.left(&ns, &root);
        assert!(common::pids_rooted_under(&root).is_empty());
        ok(&ns.run(&["on", "-d", d(&root)]));
        ok(&ns.run(&["off", "-d", d(&root)]));
        t.left(&ns, &root);
    }
    assert_eq!(outside, ns.mounts_outside(&root));
    t.finish(0, 6);
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
    assert_eq!(ns.state(&root), "off");
    let s = ok(&ns.run(&["status", "-d", d(&root)]));
    // The process left lives on a mount that is gone: nothing says any more
    // that it is the sandbox's (its root only looks like DIR), so it is not shown or ended.
    assert!(!s.contains("processes inside"), "{s}");
    ok(&ns.run(&["on", "-d", d(&root)]));
    ok(&ns.run(&["run", "-d", d(&root), "test -c /dev/null"]));
    let (mut bg2, sleep2) = bg_sleep(&ns, &root);
    let o = ok(&ns.run(&["off", "--timeout", "1", "-d", d(&root)]));
    assert!(o.contains("1 process ended"), "{o}");
    assert!(ends(sleep2));
    common::wait_within(&mut bg2.0, common::DEADLINE);
    assert!(
        running(sleep),
        "off ended a process that is no longer the sandbox's"
    );
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(sleep),
        nix::sys::signal::Signal::SIGKILL,
    );
    common::wait_within(&mut bg.0, common::DEADLINE);
    t.left(&ns, &root);
    assert!(common::pids_rooted_under(&root).is_empty());
    t.finish(0, 1);
}

/// Mount lines without their ids.
fn lines(info: &str) -> Vec<String> {
    info.lines()
        .map(|l| l.split(' ').skip(2).collect::<Vec<_>>().join(" "))
        .collect()
}

/// On a shared host, what the user mounted below DIR before `on` is seen
/// inside, and neither it nor the self-bind leaves a copy behind in a
/// namespace that shares the host's mounts: the copies below the
/// self-bind are attached once it is private, so the peer's copy of the
/// self-bind has nothing on it and goes with `off`'s unmount.
#[test]
fn a_mount_below_dir_before_on_leaves_nothing_in_a_peer() {
    let ns = Ns::with_propagation("shared");
    let root = ns.busybox_root("sb");
    fs::create_dir_all(root.join("mnt/pre")).unwrap();
    ok(&ns.sh(&format!(
        "mount -t tmpfs pre {}/mnt/pre && touch {}/mnt/pre/mark",
        d(&root),
        d(&root)
    )));
    let peer = ns.peer();
    let before = common::points_of(peer.0.id(), &root);
    assert_eq!(before, [format!("{}/mnt/pre", d(&root))]);
    for _ in 0..2 {
        ok(&ns.run(&["on", "-d", d(&root)]));
        ok(&ns.run_in(&root, &["test -e /mnt/pre/mark"]));
        assert!(
            common::points_of(peer.0.id(), &root)
                .iter()
                .all(|p| before.contains(p) || Path::new(p) == root),
            "the peer sees the sandbox's mounts: {:?}",
            common::points_of(peer.0.id(), &root)
        );
        ok(&ns.run(&["off", "-d", d(&root)]));
        assert_eq!(ns.mounts_under(&root), [format!("{}/mnt/pre", d(&root))]);
        assert_eq!(
            common::points_of(peer.0.id(), &root),
            before,
            "left in the peer"
        );
    }
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
    let peer = ns.peer();
    let peer_pid = peer.0.id();
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
    t.finish(3, 0);
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
    t.finish(34, 0);
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
        t.attacks += 1;
        let root = ns.busybox_root(name);
        let outside = ns.mounts_outside(&root);
        let o = ok(&ns.run(&["run", "-d", d(&root), "echo inside"]));
        assert_eq!(o, "inside\n", "{name:?}");
        assert_eq!(ns.state(&root), "on", "{name:?}");
        ok(&ns.run(&["off", "-d", d(&root)]));
        assert!(ns.mounts_under(&root).is_empty(), "{name:?}");
        t.left(&ns, &root);
        assert_eq!(outside, ns.mounts_outside(&root), "{name:?}");
        ok(&ns.run(&["destroy", "--yes", "-d", d(&root)]));
        assert!(!root.exists(), "{name:?}");
    }
    t.finish(8, 0);
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
        let o = common::finish_within(c, common::DEADLINE);
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
    t.finish(0, 4);
}

/// A host process (root /) started with `script`, which ends by `exec
/// sleep`: returned once it sleeps, so whatever the script opened or
/// entered before is held.
fn host_holder(ns: &Ns, script: &str) -> Reap {
    let holder = Reap(
        ns.cmd("sh")
            .args(["-c", script])
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let comm = format!("/proc/{}/comm", holder.0.id());
    let deadline = Instant::now() + Duration::from_secs(10);
    while fs::read_to_string(&comm).is_ok_and(|c| c.trim() != "sleep") {
        assert!(Instant::now() < deadline, "{script}: never got to sleep");
        std::thread::sleep(Duration::from_millis(10));
    }
    holder
}

/// `off` (its output `o`) failed on a busy mount at `point` inside `root`,
/// named it on one line, and left it in place.
fn assert_left_and_named(ns: &Ns, o: &Output, root: &Path, point: &str) {
    let r = d(root);
    assert_eq!(code(o), 1, "{point}: off must fail: {}", stdout(o));
    let e = one_line_error(o, point);
    let named = format!("{r}{point}");
    assert!(
        e.split_whitespace()
            .any(|w| w.trim_end_matches([';', ',']) == named),
        "{point}: {e}"
    );
    assert!(
        ns.mounts_under(root).contains(&format!("{r}{point}")),
        "{point}: reported as left but not there"
    );
}

/// Ends the host process that held a mount (its pid, ours), then `off`
/// must finish.
fn release_then_off(ns: &Ns, mut holder: Reap, dir: &str) {
    let _ = holder.0.kill();
    common::wait_within(&mut holder.0, common::DEADLINE);
    ok(&ns.run(&["off", "-d", dir]));
}

/// `off` never reports success while a mount is left: whatever keeps a
/// mount busy from outside the sandbox, it exits 1 naming the mount on one
/// line, and a later `off` finishes once it is released.
#[test]
fn off_with_a_busy_mount_fails_and_names_it() {
    let ns = Ns::new();
    let mut t = Tally::new("off with a busy mount");
    let root = ns.busybox_root("sb");
    let data = ns.tmp.path().join("data");
    fs::create_dir_all(&data).unwrap();
    conf(&root, &format!("[bind]\ntgt:/data src:{}\n", d(&data)));
    let r = d(&root).to_string();
    for (point, hold) in [
        ("/tmp", format!("cd {r}/tmp && exec sleep 1000")),
        ("/run", format!("exec 3>{r}/run/held; exec sleep 1000")),
        ("/dev/shm", format!("cd {r}/dev/shm && exec sleep 1000")),
        ("/data", format!("cd {r}/data && exec sleep 1000")),
    ] {
        t.faults += 1;
        ok(&ns.run(&["on", "-d", &r]));
        // A host process (root /) holds the mount: off cannot end it.
        let holder = host_holder(&ns, &hold);
        let o = ns.run(&["off", "--timeout", "0.2", "-d", &r]);
        assert_left_and_named(&ns, &o, &root, point);
        release_then_off(&ns, holder, &r);
        t.left(&ns, &root);
    }
    t.finish(0, 4);
}

/// `off` never says off while a mount of the sandbox is in use, whatever
/// kind: a device node held by an open file (in the /dev tmpfs, and bound
/// onto the rootfs's own /dev), a mount in a nested bind, a
/// nested host bind held itself, a `[bind]` under `/tmp` with `/tmp`
/// itself held, a mount someone made on a sandbox's mount after `on` (held,
/// or its parent held), a tmpfs of the user's mounted below DIR before `on`
/// and held, the sandbox's own `/dev` held (a working directory, an open
/// descriptor): each makes `off` fail, naming it, and leaves it in place.
#[test]
fn off_fails_naming_each_busy_mount() {
    let ns = Ns::new();
    let mut t = Tally::new("off with busy mounts of each kind");
    let root = ns.busybox_root("sb");
    let src = |name: &str| {
        let p = ns.tmp.path().join(name);
        fs::create_dir_all(&p).unwrap();
        d(&p).to_string()
    };
    src("outer/inner");
    let nested = format!(
        "[bind]\ntgt:/outer src:{}\ntgt:/outer/inner src:{}\n",
        src("outer"),
        src("inner-src")
    );
    let under_tmp = format!("[bind]\ntgt:/tmp/shared src:{}\n", src("shared"));
    let r = d(&root).to_string();
    let user_tmpfs = format!(
        "mkdir -p {r}/work && mount -t tmpfs userdata {r}/work && echo x > {r}/work/notes \
         && mkdir {r}/work/cache && mount -t tmpfs cache {r}/work/cache"
    );
    // (busy point, tool.conf, before `on`, the holder, after)
    let cases = [
        ("/dev", "", "", format!("exec 3<{r}/dev/null; exec sleep 1000"), ""),
        (
            "/dev/null",
            "[bind]\ntgt:/dev ignore:yes\n",
            "",
            format!("exec 3<{r}/dev/null; exec sleep 1000"),
            "",
        ),
        ("/outer/inner", nested.as_str(), "", format!("cd {r}/outer/inner && exec sleep 1000"), ""),
        ("/outer", nested.as_str(), "", format!("cd {r}/outer && exec sleep 1000"), ""),
        ("/tmp", under_tmp.as_str(), "", format!("cd {r}/tmp && exec sleep 1000"), ""),
        (
            "/tmp/late",
            "",
            "",
            format!("mkdir {r}/tmp/late && mount -t tmpfs late {r}/tmp/late && cd {r}/tmp/late && exec sleep 1000"),
            "",
        ),
        (
            "/tmp",
            "",
            "",
            format!(": > {r}/tmp/file && mkdir {r}/tmp/x && mount -t tmpfs late {r}/tmp/x && exec 3<{r}/tmp/file; exec sleep 1000"),
            "",
        ),
        (
            "/work",
            "",
            user_tmpfs.as_str(),
            format!("exec 3>>{r}/work/notes; exec sleep 1000"),
            "work",
        ),
        ("/dev", "", "", format!("cd {r}/dev && exec sleep 1000"), ""),
        ("/dev", "", "", format!("exec 3<{r}/dev; exec sleep 1000"), ""),
    ];
    let outside = ns.mounts_outside(&root);
    for (point, tool_conf, before, hold, after) in &cases {
        t.faults += 1;
        conf(&root, tool_conf);
        if !before.is_empty() {
            assert!(ns.sh(before).status.success(), "{before}");
        }
        ok(&ns.run(&["on", "-d", &r]));
        let holder = host_holder(&ns, hold);
        let o = ns.run(&["off", "--timeout", "0.2", "-d", &r]);
        assert_left_and_named(&ns, &o, &root, point);
        release_then_off(&ns, holder, &r);
        if !after.is_empty() {
            let user = format!("{r}/{after}");
            assert!(ns.sh(&format!("umount -R {user}")).status.success());
        }
        t.left(&ns, &root);
    }
    assert_eq!(ns.mounts_outside(&root), outside);
    t.finish(0, cases.len());
}

/// `off --timeout 0.2 -d DIR` under `strace`, one of its `umount2` calls
/// held back as `inject` says (`delay_enter=US:when=N`), the calls logged
/// to `trace`.
fn off_held_back(ns: &Ns, trace: &Path, inject: &str, dir: &str) -> Child {
    ns.cmd("strace")
        .args(["-o", d(trace), "-e", "trace=umount2"])
        .args(["-e", &format!("inject=umount2:{inject}")])
        .arg(common::BIN)
        .args(["off", "--timeout", "0.2", "-d", dir])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("strace is needed (apt-get install strace)")
}

/// A tmpfs of the sandbox is never detached while it is held: a file
/// opened in DIR/tmp from outside while `off` is at work (its first
/// unmount held back by `strace`) keeps `/tmp` mounted, and `off` fails
/// naming it. A lazy unmount of the sandbox's tree would have taken the
/// tmpfs along, the file still open on it, `off` saying off.
#[test]
fn a_tmpfs_opened_while_off_runs_is_named_not_detached() {
    let ns = Ns::new();
    let mut t = Tally::new("tmpfs opened during off");
    let root = ns.busybox_root("sb");
    let r = d(&root).to_string();
    t.faults += 1;
    let outside = ns.mounts_outside(&root);
    ok(&ns.run(&["on", "-d", &r]));
    assert!(ns.sh(&format!("echo sandbox > {r}/tmp/f")).status.success());
    let trace = ns.tmp.path().join("strace.log");
    let off = off_held_back(&ns, &trace, "delay_enter=3000000:when=1", &r);
    std::thread::sleep(Duration::from_millis(1000));
    let holder = host_holder(&ns, &format!("exec 3<{r}/tmp/f; exec sleep 1000"));
    let o = common::finish_within(off, Duration::from_secs(30));
    assert_left_and_named(&ns, &o, &root, "/tmp");
    let fd = format!("/proc/{}/fd/3", holder.0.id());
    assert_eq!(fs::read_to_string(&fd).unwrap(), "sandbox\n");
    release_then_off(&ns, holder, &r);
    t.left(&ns, &root);
    assert_eq!(ns.mounts_outside(&root), outside);
    t.finish(0, 1);
}

/// A mount made on the sandbox while `off` unmounts (after it read the
/// mount table) and in use is not taken along: `off` reads the table
/// again after each pass and unmounts without `MNT_DETACH`. Its first
/// unmount is held back by `strace`'s fault injection; whichever way the
/// race falls, the mount in use is named and left.
#[test]
fn a_mount_made_during_off_and_in_use_is_named() {
    let ns = Ns::new();
    let mut t = Tally::new("mount during off");
    let root = ns.busybox_root("sb");
    let r = d(&root).to_string();
    t.faults += 1;
    fs::create_dir_all(root.join("mnt")).unwrap();
    let outside = ns.mounts_outside(&root);
    ok(&ns.run(&["on", "-d", &r]));
    let trace = ns.tmp.path().join("strace.log");
    let spawned = Instant::now();
    let mut off = off_held_back(&ns, &trace, "delay_enter=6000000:when=1", &r);
    std::thread::sleep(Duration::from_millis(1000));
    let holder = host_holder(
        &ns,
        &format!("mount -t tmpfs racer {r}/mnt && cd {r}/mnt && exec sleep 1000"),
    );
    // Made and entered while off waits in its first unmount (it gets there
    // within the first second; its wait ends after six).
    assert!(
        spawned.elapsed() < Duration::from_secs(5),
        "too slow to race: the mount was not made while off waited"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while off.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = off.kill();
            panic!("off did not end");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = off.wait_with_output().unwrap();
    assert_left_and_named(&ns, &o, &root, "/mnt");
    release_then_off(&ns, holder, &r);
    t.left(&ns, &root);
    assert_eq!(ns.mounts_outside(&root), outside);
    t.finish(0, 1);
}

/// `on` and `off` count the same mounts, trees included: an `rbind` of a
/// host tree with mounts in it, and a user's mount below DIR with one in
/// it (copied onto the self-bind as a tree).
#[test]
fn on_and_off_count_the_same_mounts() {
    let ns = Ns::new();
    let root = ns.busybox_root("sb");
    let r = d(&root).to_string();
    // "DIR is on (N mounted, ...)", "DIR is off (N unmounted, ...)".
    let count = |out: &str| -> usize {
        let at = out.rfind('(').unwrap_or_else(|| panic!("{out}"));
        out[at + 1..]
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{out}"))
    };
    let plain = count(&ok(&ns.run(&["on", "-d", &r])));
    assert_eq!(count(&ok(&ns.run(&["off", "-d", &r]))), plain);
    let tree = ns.tmp.path().join("tree");
    let tr = d(&tree).to_string();
    fs::create_dir_all(&tree).unwrap();
    conf(&root, &format!("[bind]\ntgt:/data src:{tr} opt:rbind\n"));
    let made = ns.sh(&format!(
        "mkdir -p {tr}/a {tr}/b {r}/work && mount -t tmpfs a {tr}/a && mount -t tmpfs b {tr}/b \
         && mount -t tmpfs w {r}/work && mkdir {r}/work/c && mount -t tmpfs c {r}/work/c"
    ));
    assert!(made.status.success());
    let on = ok(&ns.run(&["on", "-d", &r]));
    let off = ok(&ns.run(&["off", "-d", &r]));
    // /data's three mounts and the copies of /work's two, besides the plan's.
    assert_eq!(
        (count(&on), count(&off)),
        (plain + 5, plain + 5),
        "{on}{off}"
    );
    assert!(ns
        .sh(&format!("umount -R {r}/work {tr}/a {tr}/b"))
        .status
        .success());
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
    t.finish(4, 0);
}

// ---- issue 7: names that are not text ----

/// `path` as bytes, for names that are not UTF-8.
fn bpath(b: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    PathBuf::from(std::ffi::OsStr::from_bytes(b))
}

/// chroot-tool `verb -d dir args...` inside the namespace (DIR as bytes).
fn run_on(ns: &Ns, verb: &str, dir: &Path, rest: &[&str]) -> Output {
    ns.tool()
        .arg(verb)
        .arg("-d")
        .arg(dir)
        .args(rest)
        .output()
        .unwrap()
}

/// `status` and `status --json` succeed, show no raw control or invalid
/// byte, and the JSON is valid; returns (text, json).
#[track_caller]
fn status_clean(ns: &Ns, dir: &Path) -> (String, serde_json::Value) {
    let text = run_on(ns, "status", dir, &[]);
    ok(&text);
    let json = run_on(ns, "status", dir, &["--json"]);
    ok(&json);
    for out in [&text.stdout, &json.stdout] {
        let s = std::str::from_utf8(out).expect("status output is UTF-8");
        assert!(
            !s.chars().any(|c| c.is_control() && c != '\n'),
            "raw control character in {s:?}"
        );
    }
    // The text's first line names DIR and its state, on that one line.
    let first = stdout(&text).lines().next().unwrap().to_string();
    assert!(
        first.starts_with(&chroot_tool::show::path(dir)),
        "{first:?}"
    );
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    use std::os::unix::ffi::OsStrExt;
    assert_eq!(
        v["dir"],
        chroot_tool::show::escape(dir.as_os_str().as_bytes()).as_str()
    );
    (stdout(&text), v)
}

/// Is something mounted at `point` (compared as bytes, as the kernel writes
/// it: space, tab, newline and backslash in octal)?
fn mounted_at(ns: &Ns, point: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let mut want = vec![];
    for &b in point.as_os_str().as_bytes() {
        match b {
            b' ' | b'\t' | b'\n' | b'\\' => want.extend(format!("\\{b:03o}").bytes()),
            b => want.push(b),
        }
    }
    raw_mountinfo(ns)
        .split(|&b| b == b'\n')
        .any(|l| l.split(|&b| b == b' ').nth(4) == Some(&want[..]))
}

/// Every mount line of the namespace, read as bytes.
fn raw_mountinfo(ns: &Ns) -> Vec<u8> {
    fs::read(format!("/proc/{}/mountinfo", ns.pid())).unwrap()
}

#[test]
fn mount_point_named_with_invalid_utf8_inside_the_root() {
    let ns = Ns::new();
    let mut t = Tally::new("mount point not UTF-8");
    // Two shapes of the same attack: a built-in target that a symlink leads
    // to a directory named with a byte that is not UTF-8, and one whose name
    // also holds a newline (escaped \012 in mountinfo).
    for (i, name) in [&b"x\xff"[..], b"y\xfe\nz"].into_iter().enumerate() {
        t.attacks += 1;
        let root = ns.busybox_root(&format!("sb-{i}"));
        let other = ns.busybox_root(&format!("other-{i}"));
        fs::create_dir(root.join(bpath(name))).unwrap();
        let _ = fs::remove_dir_all(root.join("tmp"));
        symlink(bpath(&[b"/", name].concat()), root.join("tmp")).unwrap();
        ok(&run_on(&ns, "on", &root, &[]));
        let point = root.join(bpath(name));
        assert!(
            mounted_at(&ns, &point),
            "no mount at {}",
            chroot_tool::show::path(&point)
        );
        // status, text and JSON, name the mount escaped.
        let (text, v) = status_clean(&ns, &root);
        let shown = chroot_tool::show::path(Path::new("/").join(bpath(name)));
        assert!(text.contains(&shown), "{shown} not in {text}");
        let targets: Vec<&str> = v["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["target"].as_str().unwrap())
            .collect();
        assert!(targets.contains(&shown.as_str()), "{targets:?}");
        // run works and writes into the tmpfs; another sandbox is unaffected.
        let out = ok(&run_on(&ns, "run", &root, &["echo hi >/tmp/f; cat /tmp/f"]));
        assert_eq!(out, "hi\n");
        ok(&run_on(&ns, "on", &other, &[]));
        status_clean(&ns, &other);
        ok(&run_on(&ns, "off", &other, &[]));
        t.left(&ns, &other);
        // off leaves nothing, destroy removes it.
        ok(&run_on(&ns, "off", &root, &[]));
        assert!(t.left(&ns, &root).is_empty());
        ok(&run_on(&ns, "destroy", &root, &["--yes"]));
        assert!(!root.exists());
    }
    t.finish(2, 0);
}

#[test]
fn host_mount_named_with_invalid_utf8_breaks_no_sandbox() {
    let ns = Ns::new();
    let mut t = Tally::new("host mount not UTF-8");
    // Host mounts elsewhere in the namespace: the point, its source, and a
    // bind whose root (field 4) is not UTF-8 either.
    let base = d(ns.tmp.path());
    let o = ns.sh(&format!(
        "set -e; h=$(printf '{base}/h\\377'); n=$(printf '{base}/n\\376\\nl'); \
         mkdir \"$h\" \"$n\"; mount -t tmpfs \"$(printf 'src\\377')\" \"$h\"; \
         r=$(printf 'r\\377'); mkdir \"$h/$r\"; \
         mount --bind \"$h/$r\" \"$n\""
    ));
    ok(&o);
    let host_before = ns.mounts_outside(&ns.tmp.path().join("sb"));
    assert!(raw_mountinfo(&ns).contains(&0xff));
    t.attacks += 1;
    let root = ns.busybox_root("sb");
    ok(&run_on(&ns, "on", &root, &[]));
    status_clean(&ns, &root);
    assert_eq!(ok(&run_on(&ns, "run", &root, &["echo ok"])), "ok\n");
    ok(&run_on(&ns, "off", &root, &[]));
    t.left(&ns, &root);
    // The host's own mounts stay.
    assert_eq!(host_before, ns.mounts_outside(&root));
    ok(&run_on(&ns, "destroy", &root, &["--yes"]));
    t.finish(1, 0);
}

#[test]
fn dir_named_with_invalid_utf8_or_newline() {
    let ns = Ns::new();
    let mut t = Tally::new("DIR not UTF-8");
    for name in [&b"d\xff"[..], b"new\nline", b"both\xfe\n\x1b[31m"] {
        t.attacks += 1;
        let root = ns.tmp.path().join(bpath(name));
        common::make_busybox_root(&root);
        for verb in ["on", "off"] {
            // Each verb's one line of output names DIR escaped, on that line.
            let out = ok(&run_on(&ns, verb, &root, &[]));
            assert_eq!(out.lines().count(), 1, "{verb}: {out:?}");
            assert!(out.starts_with(&chroot_tool::show::path(&root)), "{out:?}");
        }
        ok(&run_on(&ns, "on", &root, &[]));
        let (text, v) = status_clean(&ns, &root);
        assert!(text.lines().next().unwrap().ends_with(": on"), "{text}");
        assert_eq!(v["state"], "on");
        assert_eq!(ok(&run_on(&ns, "run", &root, &["echo in"])), "in\n");
        ok(&run_on(&ns, "off", &root, &[]));
        assert!(t.left(&ns, &root).is_empty());
        let (_, v) = status_clean(&ns, &root);
        assert_eq!(v["state"], "off");
        // An error about such a DIR is one line too.
        let o = run_on(&ns, "on", &root.join("missing"), &[]);
        let e = one_line_error(&o, "missing DIR");
        assert!(e.contains("no such directory"), "{e}");
        let out = ok(&run_on(&ns, "destroy", &root, &["--yes"]));
        assert_eq!(out.lines().count(), 1, "{out:?}");
        assert!(!root.exists());
    }
    t.finish(3, 0);
}

/// A failure on exactly one `chroot-tool: ` line, short, that still says
/// `what` (the problem); no raw control character.
#[track_caller]
fn short_error(o: &Output, what: &str) -> String {
    let e = one_line_error(o, what);
    assert!(e.len() < 1000, "{what}: {} bytes: {e}", e.len());
    assert!(e.contains(what), "does not say {what:?}: {e}");
    assert!(
        !e.trim_end().chars().any(char::is_control),
        "control character in {e:?}"
    );
    e
}

#[test]
fn errors_are_one_short_line() {
    let ns = Ns::new();
    let mut t = Tally::new("error messages");
    let long = "a".repeat(100_000);
    // A 100 KB line of tool.conf, in every place a word of it is quoted.
    for (i, (text, what)) in [
        (
            format!("[bind]\n{long}\n"),
            "tool.conf:2: expected key:value",
        ),
        (format!("[bind]\ntgt:/mnt/{long}\n"), "bind source"),
        (format!("[bind]\ntgt:/mnt src:/{long}\n"), "bind source"),
        (
            format!("[bind]\ntgt:/mnt fs:{long}\n"),
            "unknown filesystem type",
        ),
        (
            format!("[bind]\ntgt:/mnt opt:{long}\n"),
            "unknown mount option",
        ),
        (
            format!("[bind]\ntgt:{long}\n"),
            "tgt must be an absolute path",
        ),
        (
            format!("[bind]\ntgt:/mnt ignore:{long}\n"),
            "ignore must be yes or no",
        ),
        (format!("[{long}-]\n"), "malformed section header"),
        (format!("[bind]\ntgt:/mnt {long}:\n"), "missing value for"),
    ]
    .into_iter()
    .enumerate()
    {
        t.attacks += 1;
        let root = ns.busybox_root(&format!("c{i}"));
        conf(&root, &text);
        for verb in ["on", "run"] {
            let mut args = vec![verb, "-d", d(&root)];
            if verb == "run" {
                args.push("true");
            }
            short_error(&ns.run(&args), what);
        }
        ok(&ns.run(&["off", "-d", d(&root)]));
        t.left(&ns, &root);
    }
    // A 100 KB warning (an unknown section's name) is bounded too, and on works.
    t.attacks += 1;
    let root = ns.busybox_root("warn");
    conf(&root, &format!("[{long}]\n"));
    let o = ns.run(&["on", "-d", d(&root)]);
    ok(&o);
    let e = stderr(&o);
    assert!(e.len() < 1000 && e.lines().count() == 1, "{e}");
    assert!(e.contains("unknown section"), "{e}");
    ok(&ns.run(&["off", "-d", d(&root)]));
    t.left(&ns, &root);
    // A 100 KB DIR argument, a 100 KB run line, a 100 KB option.
    t.attacks += 1;
    let dir = format!("/{long}");
    short_error(&ns.run(&["status", "-d", &dir]), "no such directory");
    short_error(&ns.run(&["on", "-d", &dir]), "no such directory");
    short_error(&ns.run(&["run", "-d", &dir, &long]), "no such directory");
    let bogus = format!("--{long}");
    short_error(
        &ns.run(&["status", "-d", "/", &bogus]),
        "unexpected argument",
    );
    short_error(&ns.run(&[&long]), "unrecognized subcommand");
    // A newline (and an escape sequence) in DIR's name never splits a message.
    for name in ["new\nline", "esc\x1b[2Jape\r"] {
        t.attacks += 1;
        let root = ns.tmp.path().join(name);
        common::make_busybox_root(&root);
        conf(&root, "[bind]\nnonsense\n");
        let e = short_error(
            &ns.run(&["on", "-d", d(&root)]),
            "tool.conf:2: expected key:value",
        );
        assert!(e.contains(&chroot_tool::show::path(&root)), "{e}");
        let e = short_error(
            &ns.run(&["on", "-d", d(&root.join("no"))]),
            "no such directory",
        );
        assert!(e.contains(&chroot_tool::show::path(root.join("no"))), "{e}");
        let e = short_error(
            &ns.run(&["destroy", "-d", d(&root)]),
            "without confirmation",
        );
        assert!(e.contains(&chroot_tool::show::path(&root)), "{e}");
        t.left(&ns, &root);
    }
    // An errno text is said once, even where a message includes its cause.
    t.attacks += 1;
    let file = ns.tmp.path().join("file");
    fs::write(&file, "").unwrap();
    let e = short_error(
        &ns.run(&["create", "-d", d(&file.join("x"))]),
        "Not a directory",
    );
    assert_eq!(e.matches("Not a directory").count(), 1, "{e}");
    // A missing DIR is said once, in words of our own (issue 8): not
    // "no such directory ...: No such file or directory".
    let e = short_error(
        &ns.run(&["on", "-d", "/nonexistent/x"]),
        "no such directory",
    );
    assert!(!e.contains("No such file"), "{e}");
    t.finish(14, 0);
}

// ---- issue 7: the mount engine ----

/// What `status` says of `root`: the word(s) after `DIR: ` on its first line.
fn state(ns: &Ns, root: &Path) -> String {
    let out = ok(&ns.run(&["status", "-d", d(root)]));
    let first = out.lines().next().unwrap_or("").to_string();
    first
        .strip_prefix(&format!("{}: ", d(root)))
        .unwrap_or_else(|| panic!("status: unexpected first line {first:?}"))
        .to_string()
}

/// The mount ids at `point` in the namespace, in table order.
fn ids_at(ns: &Ns, point: &Path) -> Vec<String> {
    ns.mountinfo()
        .lines()
        .filter(|l| common::unescape(l.split(' ').nth(4).unwrap()) == d(point))
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect()
}

/// The fs type of the top mount at `point`: the one on which no other
/// mount at `point` is mounted.
fn fstype_at(ns: &Ns, point: &Path) -> Option<String> {
    let info = ns.mountinfo();
    let here: Vec<Vec<&str>> = info
        .lines()
        .map(|l| l.split(' ').collect::<Vec<_>>())
        .filter(|f| common::unescape(f[4]) == d(point))
        .collect();
    let top = here.iter().find(|f| !here.iter().any(|g| g[1] == f[0]))?;
    let dash = top.iter().position(|x| *x == "-")?;
    Some(top[dash + 1].to_string())
}

/// `on` twice (the second mounts nothing), `run`, `status` "on", `off`
/// (nothing left), `status` "off".
#[track_caller]
fn idempotent_cycle(ns: &Ns, t: &mut Tally, root: &Path, what: &str) {
    let again = ok(&ns.run(&["on", "-d", d(root)]));
    assert!(
        again.contains("(0 mounted, "),
        "{what}: second on mounted again: {again}"
    );
    ok(&ns.run(&["run", "-d", d(root), "echo x >/tmp/f && echo y >/run/g"]));
    assert_eq!(state(ns, root), "on", "{what}");
    ok(&ns.run(&["off", "-d", d(root)]));
    let left = t.left(ns, root);
    assert!(left.is_empty(), "{what}: off left {left:?}");
    assert_eq!(state(ns, root), "off", "{what}");
}

#[test]
fn a_target_led_into_another_builtin_lands_where_it_stays_visible() {
    let ns = Ns::new();
    let mut t = Tally::new("targets led into another built-in");
    let h = host_dir(&ns);
    let before = Snapshot::take(&[&h]);
    let he = format!("{}/etc", d(&h));
    // (symlink in the rootfs, where it points, where its mount must land)
    let shapes: Vec<(&str, String, String)> = vec![
        ("/run", "/tmp/x".into(), "/tmp/x".into()),
        ("/run", "tmp/y/z".into(), "/tmp/y/z".into()),
        ("/dev/shm", "/tmp/shm".into(), "/tmp/shm".into()),
        ("/tmp", "/run/t".into(), "/run/t".into()),
        ("/dev", "/run/dev".into(), "/run/dev".into()),
        ("/proc", "/tmp/p".into(), "/tmp/p".into()),
        ("/run", "/dev/shm/r".into(), "/dev/shm/r".into()),
        // A symlink to a host directory is followed inside the root.
        ("/run", he.clone(), he.clone()),
        ("/dev", format!("../../../../../../..{he}"), he.clone()),
    ];
    for (tgt, to, lands) in shapes {
        t.attacks += 1;
        let what = format!("{tgt} -> {to}");
        let root = ns.busybox_root(&format!("sb-{}", t.attacks));
        link(&root, tgt, &to);
        if tgt == "/dev/shm" {
            // A rootfs /dev/shm symlink counts only when /dev is not mounted.
            conf(&root, "[bind]\ntgt:/dev ignore:yes\n");
        }
        let outside = ns.mounts_outside(&root);
        let o = ns.run(&["on", "-d", d(&root)]);
        ok(&o);
        let at = root.join(lands.trim_start_matches('/'));
        let fs = fstype_at(&ns, &at);
        let want = if tgt == "/proc" { "proc" } else { "tmpfs" };
        assert_eq!(fs.as_deref(), Some(want), "{what}: nothing at {at:?}");
        // Visible from inside, at the target's own name.
        ok(&ns.run(&[
            "run",
            "-d",
            d(&root),
            &format!(
                "grep -q ' {lands} ' /proc/self/mountinfo || grep -q '{tgt} ' /proc/self/mountinfo"
            ),
        ]));
        if tgt == "/proc" {
            ok(&ns.run(&["run", "-d", d(&root), "test -e /proc/self/status"]));
        } else {
            ok(&ns.run(&[
                "run",
                "-d",
                d(&root),
                &format!("touch {tgt}/probe && grep -q ' {lands} ' /proc/self/mountinfo"),
            ]));
        }
        assert_eq!(outside, ns.mounts_outside(&root), "{what}");
        idempotent_cycle(&ns, &mut t, &root, &what);
    }
    // Two targets at one place: refused with the reason, nothing mounted.
    for (tgt, to) in [("/run", "/tmp"), ("/tmp", "run"), ("/tmp", "/dev")] {
        t.attacks += 1;
        let root = ns.busybox_root(&format!("sb-{}", t.attacks));
        link(&root, tgt, to);
        let o = ns.run(&["on", "-d", d(&root)]);
        let e = one_line_error(&o, &format!("{tgt} -> {to}"));
        assert!(e.contains("same place"), "{tgt} -> {to}: {e}");
        assert!(t.left(&ns, &root).is_empty());
        ok(&ns.run(&["off", "-d", d(&root)]));
        assert_eq!(state(&ns, &root), "off");
    }
    t.changed(&before, &Snapshot::take(&[&h]));
    t.finish(12, 0);
}

#[test]
fn a_sandbox_under_tmp_with_targets_into_tmp() {
    // The checkout under /tmp: rootfs and "host" directory below /tmp (a
    // tmpfs of this test's namespace), each built-in led by an absolute
    // symlink to the host directory, which inside the root lies in /tmp.
    let ns = Ns::new();
    let mut t = Tally::new("sandbox under /tmp");
    let src = ns.busybox_root("src");
    // When the test's own directory already lies under /tmp, it is used;
    // else a tmpfs of this namespace is mounted on /tmp.
    let under = ns.tmp.path().starts_with("/tmp");
    let base = if under {
        ns.tmp.path().join("t")
    } else {
        PathBuf::from("/tmp/ct-engine-test")
    };
    let base = d(&base).to_string();
    let mount = if under {
        ""
    } else {
        "mount -t tmpfs ct-test-tmp /tmp && "
    };
    let o = ns.sh(&format!("{mount}mkdir -p {base}/host/etc"));
    assert!(o.status.success(), "{}", stderr(&o));
    let he = format!("{base}/host/etc");
    for (tgt, fs) in [
        ("/run", "tmpfs"),
        ("/dev", "tmpfs"),
        ("/proc", "proc"),
        ("/sys", "sysfs"),
    ] {
        t.attacks += 1;
        let root = PathBuf::from(format!("{base}/sb-{}", t.attacks));
        let o = ns.sh(&format!(
            "cp -a {} {} && rm -rf {1}{tgt} && ln -s {he} {1}{tgt}",
            d(&src),
            d(&root)
        ));
        assert!(o.status.success(), "{}", stderr(&o));
        ok(&ns.run(&["on", "-d", d(&root)]));
        let at = root.join(&he[1..]);
        assert_eq!(fstype_at(&ns, &at).as_deref(), Some(fs), "{tgt}");
        assert_eq!(
            fstype_at(&ns, &root.join("tmp")).as_deref(),
            Some("tmpfs"),
            "{tgt}"
        );
        idempotent_cycle(&ns, &mut t, &root, tgt);
        let host = ns.sh(&format!("ls -A {he}"));
        assert_eq!(stdout(&host), "", "{tgt}: host dir written to");
    }
    t.finish(4, 0);
}

/// `on`'s refusal to create a target on the host's content. The error line
/// is bounded and keeps its start and end: with a long checkout path (the
/// temp dir is in it, twice) its middle, "refusing to create", may be cut.
fn refused_creation(e: &str) -> bool {
    e.contains("refusing to create") || e.contains("it would lie on a host directory bound")
}

#[test]
fn nothing_is_created_on_a_filesystem_whose_content_is_the_hosts() {
    let ns = Ns::new();
    let mut t = Tally::new("creation only on fresh filesystems");
    let h = host_dir(&ns);
    let hs = d(&h).to_string();
    // The overlay's work directory is its own business; its layers are the host's.
    let ovl = ns.tmp.path().join("ovl");
    for d_ in ["low", "upper", "work"] {
        fs::create_dir_all(ovl.join(d_)).unwrap();
    }
    let layers = [h.as_path(), &ovl.join("low"), &ovl.join("upper")];
    let before = Snapshot::take(&layers);
    let os = d(&ovl);
    let ovl = format!(
        "[bind]\ntgt:/mnt/o src:overlay fs:overlay opt:lowerdir={os}/low,upperdir={os}/upper,workdir={os}/work\n"
    );
    // A rootfs symlink leads a target (a directory, then a file) into the overlay.
    for (tgt, to) in [
        ("/run", "/mnt/o/made-dir"),
        ("/etc/resolv.conf", "/mnt/o/made-file"),
        ("/tmp", "/mnt/o/a/b"),
    ] {
        t.attacks += 1;
        let root = ns.busybox_root(&format!("sb-{}", t.attacks));
        conf(&root, &ovl);
        link(&root, tgt, to);
        let outside = ns.mounts_outside(&root);
        let o = ns.run(&["on", "-d", d(&root)]);
        let e = one_line_error(&o, &format!("{tgt} -> {to}"));
        assert!(refused_creation(&e), "{tgt}: {e}");
        assert!(t.left(&ns, &root).is_empty(), "{tgt}");
        assert_eq!(outside, ns.mounts_outside(&root), "{tgt}");
        ok(&ns.run(&["off", "-d", d(&root)]));
    }
    // devtmpfs is the host's /dev (its magic is tmpfs's) and cgroup2 the
    // host's cgroup tree: a directory made through either would appear on
    // the host. Each name is unique and removed again whatever happens.
    for (fs_, host_dir) in [("devtmpfs", "/dev"), ("cgroup2", "/sys/fs/cgroup")] {
        t.attacks += 1;
        let root = ns.busybox_root(&format!("sb-{}", t.attacks));
        let name = format!("ct-engine-test-{}-{}", std::process::id(), t.attacks);
        conf(&root, &format!("[bind]\ntgt:/mnt/h src:{fs_} fs:{fs_}\n"));
        link(&root, "/run", &format!("/mnt/h/{name}"));
        let o = ns.run(&["on", "-d", d(&root)]);
        let made = ns
            .sh(&format!("test -e {host_dir}/{name}"))
            .status
            .success()
            || Path::new(host_dir).join(&name).exists();
        if made {
            let _ = ns.sh(&format!("rmdir {host_dir}/{name}"));
            let _ = fs::remove_dir(Path::new(host_dir).join(&name));
        }
        assert!(!made, "{fs_}: created {host_dir}/{name} on the host");
        let e = one_line_error(&o, fs_);
        assert!(refused_creation(&e), "{fs_}: {e}");
        assert!(t.left(&ns, &root).is_empty(), "{fs_}");
        ok(&ns.run(&["off", "-d", d(&root)]));
    }
    // A fresh tmpfs of tool.conf may be written to: the target lands in it.
    t.attacks += 1;
    let root = ns.busybox_root(&format!("sb-{}", t.attacks));
    conf(&root, "[bind]\ntgt:/mnt/t src:none fs:tmpfs\n");
    link(&root, "/run", "/mnt/t/r");
    ok(&ns.run(&["on", "-d", d(&root)]));
    assert_eq!(
        fstype_at(&ns, &root.join("mnt/t/r")).as_deref(),
        Some("tmpfs")
    );
    // A host tmpfs put over it is found at the target: it matches the
    // plan, but it is the host's, so nothing is created in it.
    let ht = h.join("hosttmp");
    fs::create_dir_all(&ht).unwrap();
    ok(&ns.run(&["off", "-d", d(&root)]));
    ok(&ns.run(&["on", "-d", d(&root)]));
    let o = ns.sh(&format!(
        "mount -t tmpfs host-tmp {hs}/hosttmp && mount --bind {hs}/hosttmp {}/mnt/t && umount {0}/mnt/t/r 2>/dev/null; true",
        d(&root)
    ));
    assert!(o.status.success());
    let o = ns.run(&["on", "-d", d(&root)]);
    let e = one_line_error(&o, "host tmpfs over a planned tmpfs");
    assert!(refused_creation(&e), "{e}");
    let seen = stdout(&ns.sh(&format!("ls -A {hs}/hosttmp")));
    assert_eq!(seen, "", "created in the host's tmpfs");
    ok(&ns.run(&["off", "-d", d(&root)]));
    t.left(&ns, &root);
    assert!(ns.sh(&format!("umount {hs}/hosttmp")).status.success());
    fs::remove_dir(&ht).unwrap();
    let diff = t.changed(&before, &Snapshot::take(&layers));
    assert!(diff.is_empty(), "host files changed: {diff:?}");
    t.finish(6, 0);
}

#[test]
fn a_bind_source_naming_dir_by_another_path_is_resolved_inside() {
    let ns = Ns::new();
    let mut t = Tally::new("bind source naming DIR by another path");
    let h = host_dir(&ns);
    let before = Snapshot::take(&[&h]);
    let he = d(&h.join("etc")).to_string();
    // (how the source is spelled, given DIR, its name and an alias; rootfs
    // path that is a symlink to the host's etc)
    type Spell = fn(&Path, &Path) -> String;
    let spellings: Vec<(&str, Spell)> = vec![
        ("symlink to DIR", |_, link| format!("{}/shared", d(link))),
        ("dot-dot", |root, _| {
            let name = root.file_name().unwrap().to_str().unwrap();
            format!("{}/x/../{name}/shared", d(root.parent().unwrap()))
        }),
        ("bind of DIR elsewhere", |root, _| {
            format!("{}-alias/shared", d(root))
        }),
        ("symlink to DIR, deeper", |_, link| {
            format!("{}/shared/sub", d(link))
        }),
        ("bind of a directory of DIR", |root, _| {
            format!("{}-data/shared", d(root))
        }),
        ("plain", |root, _| format!("{}/shared", d(root))),
    ];
    fs::create_dir_all(ns.tmp.path().join("x")).unwrap();
    for (what, spell) in spellings {
        t.attacks += 1;
        let root = ns.busybox_root(&format!("sb-{}", t.attacks));
        let lnk = ns.tmp.path().join(format!("link-{}", t.attacks));
        symlink(&root, &lnk).unwrap();
        // The rootfs's own /shared (a symlink to the host's etc) resolves
        // inside the root, to DIR/<host path>/etc, which holds a marker.
        link(&root, "/shared", &he);
        let inner = root.join(he.trim_start_matches('/'));
        fs::create_dir_all(inner.join("sub")).unwrap();
        fs::write(inner.join("inside-marker"), "in\n").unwrap();
        fs::write(inner.join("sub/inside-marker"), "in\n").unwrap();
        fs::create_dir_all(root.join("data")).unwrap();
        symlink(&he, root.join("data/shared")).unwrap();
        let alias = format!("{}-alias", d(&root));
        let data = format!("{}-data", d(&root));
        fs::create_dir_all(&alias).unwrap();
        fs::create_dir_all(&data).unwrap();
        let o = ns.sh(&format!(
            "mount --bind {} {alias} && mount --bind {0}/data {data}",
            d(&root)
        ));
        assert!(o.status.success(), "{}", stderr(&o));
        let src = spell(&root, &lnk);
        // No /tmp of its own: the host path may lie under /tmp.
        conf(
            &root,
            &format!("[bind]\ntgt:/tmp ignore:yes\ntgt:/mnt/s src:{src}\n"),
        );
        let outside = ns.mounts_outside(&root);
        ok(&ns.run(&["on", "-d", d(&root)]));
        let ls = ok(&ns.run(&["run", "-d", d(&root), "ls /mnt/s"]));
        assert!(
            ls.contains("inside-marker"),
            "{what}: not the sandbox's: {ls}"
        );
        assert!(
            !ls.contains("passwd") && !ls.contains("keep me"),
            "{what}: host seen: {ls}"
        );
        assert_eq!(outside, ns.mounts_outside(&root), "{what}");
        ok(&ns.run(&["off", "-d", d(&root)]));
        t.left(&ns, &root);
        assert!(ns.sh(&format!("umount {alias} {data}")).status.success());
    }
    t.changed(&before, &Snapshot::take(&[&h]));
    t.finish(6, 0);
}

#[test]
fn a_mount_made_below_dir_before_on_is_the_users() {
    let ns = Ns::new();
    let mut t = Tally::new("user's mount below DIR before on");
    let root = ns.busybox_root("sb");
    let usb = root.join("mnt/usb");
    fs::create_dir_all(&usb).unwrap();
    // A mount with another on it, and a bind of a host directory.
    let h = host_dir(&ns);
    fs::create_dir_all(root.join("srv")).unwrap();
    let o = ns.sh(&format!(
        "mount -t tmpfs usb {} && echo data > {0}/f && mkdir {0}/inner && \
         mount -t tmpfs inner {0}/inner && mount --bind {} {}/srv",
        d(&usb),
        d(&h),
        d(&root)
    ));
    assert!(o.status.success());
    let ids = ids_at(&ns, &usb);
    assert_eq!(ids.len(), 1);
    let users = ns.mounts_under(&root);
    assert_eq!(users.len(), 3);
    let all_ids =
        |ns: &Ns| -> Vec<Vec<String>> { users.iter().map(|p| ids_at(ns, Path::new(p))).collect() };
    let user_ids = all_ids(&ns);
    assert_eq!(state(&ns, &root), "off", "before on");
    for round in 0..2 {
        t.attacks += 1;
        ok(&ns.run(&["on", "-d", d(&root)]));
        assert_eq!(state(&ns, &root), "on", "round {round}");
        assert_eq!(
            ok(&ns.run(&["run", "-d", d(&root), "cat /mnt/usb/f"])),
            "data\n"
        );
        let off = ok(&ns.run(&["off", "-d", d(&root)]));
        assert!(off.contains(" is off ("), "{off}");
        assert_eq!(ids_at(&ns, &usb), ids, "round {round}: the user's mount");
        assert_eq!(all_ids(&ns), user_ids, "round {round}: the user's mounts");
        assert_eq!(ns.mounts_under(&root), users);
        assert_eq!(state(&ns, &root), "off", "round {round}");
        let again = ok(&ns.run(&["off", "-d", d(&root)]));
        assert!(again.contains("is already off"), "{again}");
        assert_eq!(all_ids(&ns), user_ids, "round {round}: second off");
    }
    assert_eq!(stdout(&ns.sh(&format!("cat {}/f", d(&usb)))), "data\n");
    assert!(ns
        .sh(&format!(
            "umount {}/inner && umount {0} && umount {}/srv",
            d(&usb),
            d(&root)
        ))
        .status
        .success());
    t.left(&ns, &root);
    t.finish(2, 0);
}

#[test]
fn two_mounts_at_one_point_are_decided_by_the_top_one() {
    let ns = Ns::new();
    let mut t = Tally::new("stacked mounts");
    // DIR is itself a mount point (the user's tmpfs holding the rootfs):
    // `on`'s self-bind lies on top of it.
    let src = ns.busybox_root("src");
    let root = ns.tmp.path().join("sb");
    fs::create_dir_all(&root).unwrap();
    let o = ns.sh(&format!(
        "mount -t tmpfs user-root {} && cp -a {}/. {0}/",
        d(&root),
        d(&src)
    ));
    assert!(o.status.success(), "{}", stderr(&o));
    let users = ids_at(&ns, &root);
    assert_eq!(users.len(), 1);
    assert_eq!(state(&ns, &root), "off");
    for round in 0..2 {
        t.attacks += 1;
        ok(&ns.run(&["on", "-d", d(&root)]));
        assert_eq!(ids_at(&ns, &root).len(), 2, "the self-bind on top");
        assert_eq!(state(&ns, &root), "on", "round {round}");
        let again = ok(&ns.run(&["on", "-d", d(&root)]));
        assert!(again.contains("(0 mounted, "), "{again}");
        ok(&ns.run(&["run", "-d", d(&root), "true"]));
        ok(&ns.run(&["off", "-d", d(&root)]));
        assert_eq!(ids_at(&ns, &root), users, "round {round}: the user's mount");
        assert_eq!(ns.mounts_under(&root), vec![d(&root).to_string()]);
        assert_eq!(state(&ns, &root), "off", "round {round}");
    }
    // A tmpfs the user stacks on the sandbox's /tmp: `run` sees the top one,
    // `status` still says on, `off` removes both (they lie on the sandbox).
    t.attacks += 1;
    ok(&ns.run(&["on", "-d", d(&root)]));
    let o = ns.sh(&format!(
        "mount -t tmpfs stacked {}/tmp && echo top > {0}/tmp/mark",
        d(&root)
    ));
    assert!(o.status.success());
    assert_eq!(ids_at(&ns, &root.join("tmp")).len(), 2);
    assert_eq!(
        ok(&ns.run(&["run", "-d", d(&root), "cat /tmp/mark"])),
        "top\n"
    );
    assert_eq!(state(&ns, &root), "on");
    ok(&ns.run(&["off", "-d", d(&root)]));
    assert_eq!(ids_at(&ns, &root), users);
    assert_eq!(ns.mounts_under(&root), vec![d(&root).to_string()]);
    assert!(ns.sh(&format!("umount {}", d(&root))).status.success());
    t.left(&ns, &root);
    t.finish(3, 0);
}

#[test]
fn a_target_whose_way_another_mount_covers_lands_visible_or_is_refused() {
    let ns = Ns::new();
    let mut t = Tally::new("ways through other mount points");
    let h = host_dir(&ns);
    let before = Snapshot::take(&[&h]);
    // /run -> /tmp/x, and the rootfs's own /tmp/x -> /e: once /tmp is
    // mounted, /tmp/x is a directory of that tmpfs; /run must land there.
    t.attacks += 1;
    let root = ns.busybox_root(&format!("sb-{}", t.attacks));
    fs::create_dir_all(root.join("tmp")).unwrap();
    fs::create_dir_all(root.join("e")).unwrap();
    symlink("/e", root.join("tmp/x")).unwrap();
    link(&root, "/run", "/tmp/x");
    ok(&ns.run(&["on", "-d", d(&root)]));
    assert_eq!(
        fstype_at(&ns, &root.join("tmp/x")).as_deref(),
        Some("tmpfs")
    );
    assert_eq!(fstype_at(&ns, &root.join("e")), None, "/run hidden at /e");
    idempotent_cycle(&ns, &mut t, &root, "/run -> /tmp/x -> /e");

    // /tmp -> /q/r/s and /run -> /tmp/x where the rootfs's /q/r/s/x -> /e:
    // /run's way passes through where /tmp lands; refused, nothing mounted.
    t.attacks += 1;
    let root = ns.busybox_root(&format!("sb-{}", t.attacks));
    fs::create_dir_all(root.join("q/r/s")).unwrap();
    fs::create_dir_all(root.join("e")).unwrap();
    symlink("/e", root.join("q/r/s/x")).unwrap();
    link(&root, "/tmp", "/q/r/s");
    link(&root, "/run", "/tmp/x");
    let o = ns.run(&["on", "-d", d(&root)]);
    let e = one_line_error(&o, "way covered");
    assert!(e.contains("/run leads elsewhere"), "{e}");
    assert!(t.left(&ns, &root).is_empty());
    assert_eq!(state(&ns, &root), "off");

    // A tool.conf bind and the resolver file, led into built-ins.
    t.attacks += 1;
    let root = ns.busybox_root(&format!("sb-{}", t.attacks));
    link(&root, "/data", "/tmp/data");
    link(&root, "/etc/resolv.conf", "/run/resolvconf/resolv.conf");
    conf(
        &root,
        &format!("[bind]\ntgt:/data src:{} fs:bind-ro\n", d(&h.join("etc"))),
    );
    ok(&ns.run(&["on", "-d", d(&root)]));
    let data = ok(&ns.run(&["run", "-d", d(&root), "cat /data/passwd"]));
    assert_eq!(data, "host passwd\n");
    assert!(
        ids_at(&ns, &root.join("tmp/data")).len() == 1,
        "bind at /tmp/data"
    );
    assert!(
        ids_at(&ns, &root.join("run/resolvconf/resolv.conf")).len() == 1,
        "resolv.conf at /run/resolvconf/resolv.conf (the host has /etc/resolv.conf)"
    );
    idempotent_cycle(&ns, &mut t, &root, "bind and resolv.conf into built-ins");
    t.changed(&before, &Snapshot::take(&[&h]));
    t.finish(3, 0);
}

// ---- issue 7: files, programs and signals of the sandbox ----

/// chroot-tool ARGS in `ns`, killed by its pid (and the test failed) when it
/// has not ended within `secs`; stdout and stderr go through files, so a
/// process left holding them cannot hang the test.
fn tool_within(ns: &Ns, args: &[std::ffi::OsString], secs: u64, env: &[(&[u8], &[u8])]) -> Output {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir_in(ns.tmp.path()).unwrap();
    let (out, err) = (dir.path().join("out"), dir.path().join("err"));
    let mut c = ns.tool();
    c.args(args)
        .stdout(fs::File::create(&out).unwrap())
        .stderr(fs::File::create(&err).unwrap());
    for (k, v) in env {
        c.env(OsStr::from_bytes(k), OsStr::from_bytes(v));
    }
    let mut child = c.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chroot-tool {args:?} still running after {secs} s: killed");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let o = Output {
        status,
        stdout: fs::read(&out).unwrap(),
        stderr: fs::read(&err).unwrap(),
    };
    assert_ne!(code(&o), 101, "{args:?} panicked: {}", stderr(&o));
    assert!(!stderr(&o).contains("panicked"), "{args:?}: {}", stderr(&o));
    o
}

fn os_args(args: &[&str]) -> Vec<std::ffi::OsString> {
    args.iter().map(Into::into).collect()
}

fn tool_timed(ns: &Ns, args: &[&str], secs: u64) -> Output {
    tool_within(ns, &os_args(args), secs, &[])
}

/// The shapes a file of the sandbox takes in an attack.
#[derive(Clone, Copy, Debug, PartialEq)]
enum FileShape {
    Fifo,
    DevZero,
    Kmsg,
    HostFile,
    Sparse,
}

const FILE_SHAPES: [FileShape; 5] = [
    FileShape::Fifo,
    FileShape::DevZero,
    FileShape::Kmsg,
    FileShape::HostFile,
    FileShape::Sparse,
];

const HOST_SECRET: &str = "HOSTSECRET7";

/// Replaces `rel` in the rootfs by `shape`; `host` is a host file with
/// `HOST_SECRET` in a form that file's reader would show.
fn shape_file(root: &Path, rel: &str, shape: FileShape, host: &Path) {
    let p = root.join(rel);
    let _ = fs::remove_file(&p);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    match shape {
        FileShape::Fifo => {
            nix::unistd::mkfifo(&p, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap()
        }
        FileShape::DevZero => symlink("/dev/zero", &p).unwrap(),
        FileShape::Kmsg => symlink("/proc/kmsg", &p).unwrap(),
        FileShape::HostFile => symlink(host, &p).unwrap(),
        FileShape::Sparse => fs::File::create(&p).unwrap().set_len(100 << 20).unwrap(),
    }
}

#[test]
fn files_of_the_sandbox_are_read_inside_bounded_and_never_block() {
    let ns = Ns::new();
    let mut t = Tally::new("files of the sandbox");
    let hosts = ns.tmp.path().join("hostfiles");
    fs::create_dir_all(&hosts).unwrap();
    let record = format!(
        "suite = \"{HOST_SECRET}\"\nmirror = \"m\"\nvariant = \"v\"\narch = \"a\"\ndate = \"d\"\ntool_version = \"t\"\n"
    );
    let files: [(&str, String); 4] = [
        ("chroot.d/tool.conf", format!("[{HOST_SECRET}\n")),
        ("chroot.d/create.toml", record),
        (
            "etc/passwd",
            format!("root:x:0:0:root:/{HOST_SECRET}:/bin/sh\n"),
        ),
        ("etc/group", format!("root:x:0:{HOST_SECRET}\n")),
    ];
    for (rel, content) in &files {
        let host = hosts.join(rel.replace('/', "_"));
        fs::write(&host, content).unwrap();
        for shape in FILE_SHAPES {
            t.attacks += 1;
            let what = format!("{rel} as {shape:?}");
            let root = ns.busybox_root(&format!("sb-{}", t.attacks));
            shape_file(&root, rel, shape, &host);
            let r = d(&root);
            let outs = [
                ("on", tool_timed(&ns, &["on", "-d", r], 20)),
                ("status", tool_timed(&ns, &["status", "-d", r], 20)),
                (
                    "status --json",
                    tool_timed(&ns, &["status", "--json", "-d", r], 20),
                ),
                (
                    "run",
                    tool_timed(&ns, &["run", "-d", r, "echo H=$HOME"], 20),
                ),
            ];
            for (verb, o) in &outs {
                let all = format!("{}{}", stdout(o), stderr(o));
                assert!(
                    !all.contains(HOST_SECRET),
                    "{what}: {verb} read the host file: {all}"
                );
                if *rel == "chroot.d/tool.conf" && o.status.code() != Some(0) {
                    // The user must know which file is wrong.
                    let e = one_line_error(o, &what);
                    assert!(e.contains("tool.conf"), "{what}: {verb}: {e}");
                }
            }
            let must_refuse = matches!(shape, FileShape::Fifo | FileShape::Sparse);
            if *rel == "chroot.d/tool.conf" {
                if must_refuse {
                    // status does not hold a broken tool.conf against the mounts.
                    for (verb, o) in [&outs[0], &outs[3]] {
                        let e = one_line_error(o, &format!("{what}: {verb}"));
                        assert!(
                            e.contains("not a regular file") || e.contains("larger than"),
                            "{what}: {verb}: {e}"
                        );
                    }
                }
            } else {
                ok(&outs[0].1);
                let run = &outs[3].1;
                ok(run);
                if *rel == "etc/passwd" {
                    assert!(stdout(run).contains("H=/root"), "{what}: {}", stdout(run));
                    if must_refuse {
                        assert!(
                            stderr(run).contains("warning") && stderr(run).contains("passwd"),
                            "{what}: {}",
                            stderr(run)
                        );
                    }
                }
            }
            ok(&tool_timed(&ns, &["off", "-d", r], 20));
            t.left(&ns, &root);
        }
    }
    assert_eq!(t.attacks, 20);
    t.finish(20, 0);
}

/// The sandbox's devpts number of the pty `tty` printed, and the host's ptys.
#[test]
fn a_dev_symlink_never_gives_the_command_a_host_pty() {
    let ns = Ns::new();
    let mut t = Tally::new("pty of the sandbox");
    // A host symlink `hl` to a host directory `n` levels deep: the host
    // resolves `hl/../../(n times)/dev` to its own /dev. Inside the root the
    // same text leads to a directory of the rootfs (its `hl` is a symlink
    // one level deeper), where `on` mounts the sandbox's /dev.
    let deep = ns.tmp.path().join("deep");
    fs::create_dir_all(&deep).unwrap();
    let hl = ns.tmp.path().join("hl");
    symlink(&deep, &hl).unwrap();
    let n = deep.components().count() - 1;
    let via_host = format!("{}/{}dev", d(&hl), "../".repeat(n));
    let up = "/..".repeat(20);
    // What lands on the sandbox's /dev/pts after `on` (as if a process of
    // the host or inside did it): the host's devpts bound there, a tmpfs.
    let bind_host = "mount --bind /dev/pts {r}/realdev/pts";
    let tmpfs = "mount -t tmpfs none {r}/realdev/pts";
    for (k, to, after_on, then) in [
        (0, "realdev".to_string(), false, ""),
        (1, via_host, false, ""),
        (2, format!("{up}/dev"), true, ""),
        (3, "/proc/1/root/dev".to_string(), false, ""),
        (4, "/proc/1/root/dev".to_string(), true, ""),
        (5, "realdev".to_string(), false, bind_host),
        (6, "realdev".to_string(), false, tmpfs),
    ] {
        t.attacks += 1;
        let root = ns.busybox_root(&format!("sb-{k}"));
        // The host paths copied into the rootfs may lie under /tmp (a
        // checkout there): no /tmp tmpfs over them; this test is about /dev.
        conf(&root, "[bind]\ntgt:/tmp ignore:yes\n");
        fs::create_dir(root.join("realdev")).unwrap();
        let inner = format!("/a{}", "/x".repeat(n));
        fs::create_dir_all(root.join(&inner[1..])).unwrap();
        fs::create_dir_all(root.join("a/dev")).unwrap();
        link(&root, d(&hl), &inner);
        if after_on {
            // `on` mounts /dev inside; then a process inside points /dev elsewhere.
            link(&root, "/dev", "realdev");
            ok(&tool_timed(&ns, &["on", "-d", d(&root)], 20));
            link(&root, "/dev", &to);
        } else {
            link(&root, "/dev", &to);
            let _ = tool_timed(&ns, &["on", "-d", d(&root)], 20);
        }
        if !then.is_empty() {
            let o = ns.sh(&then.replace("{r}", d(&root)));
            assert!(o.status.success(), "{then}: {}", stderr(&o));
        }
        // The sandbox's devpts is a new instance: its device differs from the host's.
        let host_dev = fs::metadata("/dev/pts/ptmx").unwrap().dev();
        let line = "tty; stat -L -c DEV=%d /proc/self/fd/0";
        let mut c = ns
            .cmd("script")
            .args([
                "-qec",
                &format!("{} run -d {} '{line}'", common::BIN, d(&root)),
                "/dev/null",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = c.id();
        let killer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(20));
            // Ends the script(1) we started, by its pid, if still there.
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        });
        drop(c.stdin.take());
        let o = c.wait_with_output().unwrap();
        let out = stdout(&o);
        assert!(!killer.is_finished(), "{to}: run on a terminal hung");
        let dev: Option<u64> = out
            .lines()
            // script(1) may echo its stdin's end before the line, as a
            // control character or in caret notation (`^@DEV=42`).
            .find_map(|l| {
                l.rsplit_once("DEV=")?
                    .1
                    .trim_matches(|c: char| c.is_whitespace() || c.is_control())
                    .parse()
                    .ok()
            });
        // Where `on` mounted the sandbox's devpts and nothing covers it, the
        // command gets a pty of it; where something covers it, a refusal.
        match k {
            0 | 1 => assert!(dev.is_some(), "{to}: no pty of the sandbox: {out}"),
            5 | 6 => assert!(dev.is_none(), "{then}: not refused: {out}"),
            _ => {}
        }
        match dev {
            Some(dev) => {
                assert_ne!(
                    dev, host_dev,
                    "{to}: the command saw the host's devpts: {out}"
                );
                assert!(out.contains("/pts/0"), "{to}: {out}");
            }
            None => assert!(
                out.contains("chroot-tool: ") && o.status.code() == Some(125),
                "{to}: neither a pty of the sandbox nor a refusal: {out}"
            ),
        }
        ok(&tool_timed(&ns, &["off", "-d", d(&root)], 20));
        t.left(&ns, &root);
    }
    t.finish(7, 0);
}

#[test]
fn host_cmd_swapped_for_a_host_program_never_runs_it() {
    let ns = Ns::new();
    let mut t = Tally::new("host-cmd swap race");
    let root = ns.busybox_root("sb");
    let marker = ns.tmp.path().join("evil-ran");
    let evil = ns.tmp.path().join("evil.sh");
    script(&evil, &format!("#!/bin/sh\necho ran >> {}\n", d(&marker)));
    let log = ns.tmp.path().join("genuine.log");
    script(
        &root.join("chroot.d/genuine"),
        &format!("#!/bin/sh\necho ran >> {}\n", d(&log)),
    );
    let cd = root.join("chroot.d");
    ok(&tool_timed(&ns, &["on", "-d", d(&root)], 20));
    // The swapper stands for a process inside: it only renames in chroot.d.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swaps = {
        let (stop, cd, evil) = (stop.clone(), cd.clone(), evil.clone());
        std::thread::spawn(move || {
            let mut n = 0u64;
            let _ = fs::remove_file(cd.join("l"));
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = fs::hard_link(cd.join("genuine"), cd.join("g"));
                let _ = fs::rename(cd.join("g"), cd.join("host-cmd"));
                let _ = symlink(&evil, cd.join("l"));
                let _ = fs::rename(cd.join("l"), cd.join("host-cmd"));
                n += 1;
            }
            n
        })
    };
    let runs = 300;
    for _ in 0..runs {
        t.attacks += 1;
        let o = tool_timed(&ns, &["run", "-d", d(&root), "true"], 20);
        assert!(matches!(code(&o), 0 | 125), "{}", stderr(&o));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let swaps = swaps.join().unwrap();
    let genuine = fs::read_to_string(&log).unwrap_or_default().lines().count();
    eprintln!("host-cmd race: {runs} runs, {swaps} swaps, genuine host-cmd ran {genuine} times");
    assert!(!marker.exists(), "a host program ran as host-cmd");
    assert!(swaps >= 1000, "too few swaps to mean anything: {swaps}");
    assert!(
        genuine >= 30,
        "the genuine host-cmd ran only {genuine} times"
    );
    ok(&tool_timed(&ns, &["off", "-d", d(&root)], 20));
    t.left(&ns, &root);
    t.finish(300, 0);
}

#[test]
fn no_environment_byte_or_timeout_makes_it_panic() {
    let ns = Ns::new();
    let root = ns.busybox_root("sb");
    script(&root.join("chroot.d/stop"), "#!/bin/sh\nexit 0\n");
    let r = std::ffi::OsStr::new(d(&root));
    let env: &[(&[u8], &[u8])] = &[(b"CT_V\xff", b"a\xfe\x01b"), (b"CT_W", b"\xff\xff")];
    // The caller's variables are not passed in (a clean environment); the
    // same bytes given with -e reach the command byte-exact.
    let a = |args: &[&str]| -> Vec<std::ffi::OsString> {
        use std::os::unix::ffi::OsStringExt;
        let mut v = os_args(&args[..1]);
        v.push("-d".into());
        v.push(r.into());
        if args[0] == "run" || args[0] == "shell" {
            for (k, val) in env {
                v.push("-e".into());
                v.push(std::ffi::OsString::from_vec([*k, b"=", *val].concat()));
            }
        }
        v.extend(os_args(&args[1..]));
        v
    };
    for args in [
        a(&["on"]),
        a(&["status"]),
        a(&["status", "--json"]),
        a(&["run", "env"]),
        a(&["run", "--", "env"]),
        a(&["shell"]),
        // On, with a stop to run: the environment goes to stop too.
        a(&["off"]),
    ] {
        let o = tool_within(&ns, &args, 30, env);
        let has = |w: &[u8]| o.stdout.windows(w.len()).any(|x| x == w);
        if args.iter().any(|s| s == "env") {
            assert_eq!(code(&o), 0, "{}", stderr(&o));
            // A shell (`run LINE`) drops a variable whose name is no shell name.
            assert!(
                !args.iter().any(|s| s == "--") || has(b"CT_V\xff=a\xfe\x01b"),
                "the variable did not reach the command byte-exact"
            );
            assert!(has(b"CT_W=\xff\xff"), "{:?}", o.stdout);
        }
        if args[0] == "off" {
            assert!(ok(&o).contains("is off ("), "{}", stdout(&o));
        }
    }
    for t in [
        "1e19",
        "-1",
        "NaN",
        "inf",
        "-inf",
        "1e400",
        "18446744073709551616",
        "x",
    ] {
        for verb in ["off", "destroy"] {
            let mut v = a(&[verb, "--timeout", t]);
            if verb == "destroy" {
                v.push("--yes".into());
            }
            let o = tool_within(&ns, &v, 30, env);
            assert_eq!(code(&o), 2, "{verb} --timeout {t}: {}", stderr(&o));
            one_line_error(&o, t);
        }
    }
    assert!(root.exists());
    // destroy, with the odd environment, of a sandbox that is on and has a stop.
    ok(&tool_timed(&ns, &["on", "-d", d(&root)], 20));
    let mut v = a(&["destroy", "--yes"]);
    v.push("--timeout".into());
    v.push("2".into());
    ok(&tool_within(&ns, &v, 60, env));
    assert!(!root.exists());
}

/// The pids of `pid`'s children.
fn child_pids(pid: u32) -> Vec<u32> {
    fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect()
}

#[test]
fn signals_sent_to_the_supervisor_reach_the_command() {
    use nix::sys::signal::Signal::*;
    let ns = Ns::new();
    let root = ns.busybox_root("sb");
    ok(&tool_timed(&ns, &["on", "-d", d(&root)], 20));
    for sig in [
        SIGINT, SIGQUIT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2, SIGALRM, SIGPIPE, SIGKILL,
    ] {
        let mut c = ns
            .tool()
            .args(["run", "-d", d(&root), "--", "sleep", "100"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let tool = c.id();
        let deadline = Instant::now() + Duration::from_secs(20);
        let sleep = loop {
            if let Some(&p) = child_pids(tool).first() {
                if fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "sleep")
                {
                    break p;
                }
            }
            assert!(Instant::now() < deadline, "{sig}: the sleep never started");
            std::thread::sleep(Duration::from_millis(20));
        };
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(tool as i32), sig).unwrap();
        let st = loop {
            if let Some(st) = c.try_wait().unwrap() {
                break st;
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(sleep as i32), SIGKILL);
                panic!("{sig}: chroot-tool still running");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        if sig == SIGKILL {
            // Not to be caught: the command dies with its supervisor.
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(st.signal(), Some(libc::SIGKILL), "{st:?}");
        } else {
            assert_eq!(st.code(), Some(128 + sig as i32), "{sig}: {st:?}");
        }
        // Gone (reaped by chroot-tool, or after a SIGKILL ended and reaped
        // by init) within the deadline.
        while fs::read_to_string(format!("/proc/{sleep}/stat")).is_ok_and(|s| !s.contains(") Z ")) {
            assert!(
                Instant::now() < deadline,
                "{sig}: the command was left running"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    ok(&tool_timed(&ns, &["off", "-d", d(&root)], 20));
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
    t.finish(70, 0);
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
    t.finish(3, 0);
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
    t.finish(8, 0);
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
    t.finish(1, 0);
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
    t.finish(1, 0);
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
    t.finish(4, 0);
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
    t.finish(1, 0);
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
    t.finish(1, 0);
}

// ---- issue 7: a bind of a directory onto itself is anyone's ----

/// A bind of a directory onto itself has the shape of `on`'s self-bind
/// (kubelet makes one of /var/lib/kubelet; users make them by hand), but
/// only a self-bind `on` made and recorded makes a sandbox: off, status
/// and destroy never take someone else's for one, never unmount what lies
/// on it, never end a process chrooted below it.
#[test]
fn a_directory_bound_onto_itself_by_someone_else_is_not_a_sandbox() {
    let ns = Ns::new();
    let mut t = Tally::new("foreign self-binds");
    // A data directory bound onto itself with a volume below (kubelet's shape).
    let k = ns.tmp.path().join("kubelet");
    fs::create_dir_all(k.join("pods/p1/vol")).unwrap();
    fs::write(k.join("pods/p1/data"), "important\n").unwrap();
    ok(&ns.sh(&format!("mount --bind {0} {0}", d(&k))));
    ok(&ns.sh(&format!(
        "mount -t tmpfs vol {}/pods/p1/vol && echo v > {0}/pods/p1/vol/f",
        d(&k)
    )));
    let before = ns.mountinfo();
    for args in [
        vec!["status", "-d", d(&k)],
        vec!["status", "--json", "-d", d(&k)],
        vec!["off", "-d", d(&k)],
        vec!["destroy", "--yes", "-d", d(&k)],
        vec!["on", "-d", d(&k)],
    ] {
        t.attacks += 1;
        let o = ns.run(&args);
        assert_eq!(code(&o), 1, "{args:?} must refuse: {}", stdout(&o));
        one_line_error(&o, &format!("{args:?}"));
        assert_eq!(before, ns.mountinfo(), "{args:?} changed the mount table");
    }
    assert_eq!(
        fs::read_to_string(k.join("pods/p1/data")).unwrap(),
        "important\n"
    );
    assert_eq!(
        ok(&ns.sh(&format!("cat {}/pods/p1/vol/f", d(&k)))),
        "v\n",
        "the volume (mounted in the test's namespace) is intact"
    );

    // A root filesystem someone bound onto itself, with a process chrooted
    // into it by hand and a tmpfs below: not the sandbox's mounts, not its
    // process, before `on`, while on, and after `off`.
    let root = ns.busybox_root("sb");
    fs::create_dir_all(root.join("data")).unwrap();
    ok(&ns.sh(&format!("mount --bind {0} {0}", d(&root))));
    ok(&ns.sh(&format!("mount -t tmpfs user-data {}/data", d(&root))));
    let users_bind = ids_at(&ns, &root);
    let users_data = ids_at(&ns, &root.join("data"));
    assert_eq!((users_bind.len(), users_data.len()), (1, 1));
    let mut daemon = Reap(
        ns.cmd("chroot")
            .arg(&root)
            .args(["/bin/sleep", "1000"])
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let daemon_pid = daemon.0.id() as i32;
    wait_comm(daemon_pid, "sleep");
    t.attacks += 1;
    assert_eq!(ns.state(&root), "off");
    let v: serde_json::Value =
        serde_json::from_str(&ok(&ns.run(&["status", "--json", "-d", d(&root)]))).unwrap();
    assert_eq!(v["processes"].as_array().map(Vec::len), Some(0), "{v}");
    t.attacks += 1;
    ok(&ns.run(&["off", "--timeout", "0.5", "-d", d(&root)]));
    assert!(running(daemon_pid), "off ended a process it does not own");
    assert_eq!(ids_at(&ns, &root), users_bind);
    assert_eq!(ids_at(&ns, &root.join("data")), users_data);
    t.attacks += 1;
    ok(&ns.run(&["on", "-d", d(&root)]));
    assert_eq!(ns.state(&root), "on");
    assert_eq!(
        ok(&ns.run(&["run", "-d", d(&root), "grep -c user-data /proc/mounts"])),
        "1\n"
    );
    ok(&ns.run(&["off", "--timeout", "0.5", "-d", d(&root)]));
    assert!(running(daemon_pid), "off ended a process it does not own");
    assert_eq!(
        ids_at(&ns, &root),
        users_bind,
        "off removed the user's bind"
    );
    assert_eq!(ids_at(&ns, &root.join("data")), users_data);
    assert_eq!(ns.state(&root), "off");
    let _ = daemon.0.kill();
    common::wait_within(&mut daemon.0, common::DEADLINE);
    t.finish(8, 0);
}

/// A sandbox on in another mount namespace (same path, the records of the
/// machine shared) is not destroyed from this one: its processes use the
/// files; destroy refuses before it acts. Once that namespace has turned it
/// off, destroy works.
#[test]
fn destroy_refuses_a_sandbox_on_in_another_namespace() {
    let a = Ns::new();
    let mut b = Ns::new();
    b.run_dir = a.run_dir.clone();
    let mut t = Tally::new("destroy, on in another namespace");
    let root = a.busybox_root("sb");
    ok(&b.run(&["on", "-d", d(&root)]));
    let (mut run_b, sleep_b) = bg_sleep(&b, &root);
    let before = Snapshot::take(&[&root]);
    t.attacks += 1;
    let o = a.run(&["destroy", "--yes", "-d", d(&root)]);
    let e = one_line_error(&o, "destroy");
    assert!(e.contains("another mount namespace"), "{e}");
    assert!(
        running(sleep_b),
        "destroy ended the other namespace's process"
    );
    let diff = t.changed(&before, &Snapshot::take(&[&root]));
    assert!(diff.is_empty(), "{diff:?}");
    ok(&b.run(&["off", "--timeout", "1", "-d", d(&root)]));
    assert!(ends(sleep_b));
    common::wait_within(&mut run_b.0, common::DEADLINE);
    t.left(&b, &root);
    ok(&a.run(&["destroy", "--yes", "-d", d(&root)]));
    assert!(!root.exists());
    t.finish(1, 0);
}

/// A record of a namespace that ended without `off` is not taken for the
/// sandbox being on in the namespace the kernel gave the same number to
/// afterwards (numbers come back as soon as they are free): the mount it
/// names is not there, so it is dropped, and destroy goes on.
#[test]
fn a_record_whose_namespace_number_came_back_is_dropped() {
    let a = Ns::new();
    let b = Ns::new();
    let root = a.busybox_root("sb");
    // The record an `on` in B's namespace would have written, of a mount
    // that is not B's (its unique id is no mount's): as if an earlier
    // namespace with B's number had ended without `off`.
    let number = fs::metadata(format!("/proc/{}/ns/mnt", b.pid()))
        .unwrap()
        .ino();
    let meta = fs::metadata(&root).unwrap();
    let records = a.run_dir.join("on");
    fs::create_dir_all(&records).unwrap();
    let rec = records.join(format!("{number}-4242"));
    fs::write(
        &rec,
        format!("v1 {} {} {}\n", u64::MAX - 7, meta.dev(), meta.ino()),
    )
    .unwrap();
    ok(&a.run(&["destroy", "--yes", "-d", d(&root)]));
    assert!(!root.exists(), "destroy did not delete the sandbox");
    assert!(!rec.exists(), "the stale record was kept");
    // A record of B's own self-bind, with B's sandbox on, still counts.
    let mut b = b;
    b.run_dir = a.run_dir.clone();
    let other = a.busybox_root("sb2");
    ok(&b.run(&["on", "-d", d(&other)]));
    let o = a.run(&["destroy", "--yes", "-d", d(&other)]);
    assert!(
        stderr(&o).contains("another mount namespace"),
        "{}",
        stderr(&o)
    );
    ok(&b.run(&["off", "-d", d(&other)]));
}

/// `run` on a sandbox that is on relies on its mounts only as `on` left
/// them: a mount made since over a planned target (a host directory over
/// `/tmp`), two targets' mounts swapped, or a target planned read-only
/// made writable (a remount keeps the mount's id), sends it the way `on`
/// looks, which says so, each time; as `on` left it, or once put back, it
/// runs without a word.
#[test]
fn run_notices_a_mount_made_since_on_over_a_planned_target() {
    let ns = Ns::new();
    let root = ns.busybox_root("sb");
    ok(&ns.run(&["on", "-d", d(&root)]));
    let quiet = |what: &str| {
        let o = ns.run_in(&root, &["--", "/bin/true"]);
        ok(&o);
        assert!(stderr(&o).is_empty(), "{what}: {}", stderr(&o));
    };
    let noticed = |what: &str| {
        let o = ns.run_in(&root, &["--", "/bin/true"]);
        ok(&o);
        assert!(
            stderr(&o).contains("not as planned"),
            "{what}: {}",
            stderr(&o)
        );
    };
    quiet("as on left it");
    let host = ns.tmp.path().join("host");
    fs::create_dir_all(&host).unwrap();
    ok(&ns.sh(&format!("mount --bind {} {}/tmp", d(&host), d(&root))));
    noticed("a host directory over /tmp");
    noticed("a host directory over /tmp, again");
    ok(&ns.sh(&format!("umount {}/tmp", d(&root))));
    quiet("the bind over /tmp gone");
    // Two targets' own mounts swapped (each keeps its id).
    let hold = ns.tmp.path().join("hold");
    fs::create_dir_all(&hold).unwrap();
    let r = d(&root);
    let h = d(&hold);
    let swap = format!(
        "mount --move {r}/tmp {h} && mount --move {r}/proc {r}/tmp && mount --move {h} {r}/proc"
    );
    ok(&ns.sh(&swap));
    noticed("/tmp and /proc swapped");
    ok(&ns.sh(&swap));
    quiet("/tmp and /proc back");
    ok(&ns.sh(&format!("mount -o remount,bind,rw {}/sys", d(&root))));
    noticed("/sys made writable");
    noticed("/sys still writable");
    ok(&ns.run(&["off", "-d", d(&root)]));
    assert!(ns.mounts_under(&root).is_empty());
}

// ---- issue 7: attack pass ----

/// Lengthens the path of everything under `/home/u/proj` inside the sandbox
/// by `rounds` names of `len` bytes, from inside: `proj` is renamed into a
/// new directory over and over, the mount points in it moving along.
fn lengthen_from_inside(ns: &Ns, root: &Path, len: usize, rounds: usize) {
    let line = format!(
        "L=$(printf %0{len}d 0); cd /home/u || exit 1; i=0; \
         while [ $i -lt {rounds} ]; do mkdir n && mv proj n/$L && mv n proj || exit 1; \
         i=$((i+1)); done"
    );
    ok(&ns.run(&["run", "-d", d(root), "--", "sh", "-c", &line]));
}

#[test]
fn mount_points_beyond_path_max_are_unmounted_by_off_and_destroy() {
    let ns = Ns::new();
    let mut t = Tally::new("mount points beyond PATH_MAX");
    let src = ns.tmp.path().join("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("data"), "keep me\n").unwrap();
    // About 5000 and 9000 bytes in long names, and 4200 in 2100 levels of
    // one-byte names; each through off then destroy, and through destroy
    // alone (which turns the sandbox off itself).
    let cases = [
        (200, 25, true),
        (200, 45, true),
        (1, 2100, true),
        (200, 25, false),
        (200, 45, false),
    ];
    for (i, (len, rounds, via_off)) in cases.into_iter().enumerate() {
        let long_path = rounds * (len + 1);
        t.attacks += 1;
        let root = ns.busybox_root(&format!("sb{i}"));
        fs::create_dir_all(root.join("home/u/proj/t")).unwrap();
        conf(
            &root,
            &format!("[bind]\ntgt:/home/u/proj/m src:{}\n", d(&src)),
        );
        let before = Snapshot::take(&[&src]);
        ok(&ns.run(&["on", "-d", d(&root)]));
        // A tmpfs that root inside mounts itself, and the [bind] target.
        ok(&ns.run(&[
            "run",
            "-d",
            d(&root),
            "--",
            "mount",
            "-t",
            "tmpfs",
            "ct-inside",
            "/home/u/proj/t",
        ]));
        lengthen_from_inside(&ns, &root, len, rounds);
        let long: Vec<String> = ns
            .mounts_under(&root)
            .into_iter()
            .filter(|m| m.len() > long_path)
            .collect();
        assert_eq!(
            long.len(),
            2,
            "{len} x {rounds}: the long mount points: {}",
            long.len()
        );
        // status reads them, as text and as JSON.
        let s = ok(&ns.run(&["status", "-d", d(&root)]));
        assert!(s.contains("ct-inside") || s.contains("tmpfs"), "{s}");
        let j = ok(&ns.run(&["status", "--json", "-d", d(&root)]));
        let v: serde_json::Value = serde_json::from_str(&j).unwrap();
        let targets: Vec<&str> = v["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|m| m["target"].as_str())
            .collect();
        assert!(
            targets.iter().filter(|p| p.len() > long_path).count() == 2,
            "status --json lists both long mount points: {}",
            targets.len()
        );
        if via_off {
            let o = ok(&ns.run(&["off", "--timeout", "1", "-d", d(&root)]));
            assert!(o.contains(" is off ("), "{o}");
            assert!(t.left(&ns, &root).is_empty());
            assert_eq!(ns.state(&root), "off");
        }
        let o = ok(&ns.run(&["destroy", "--yes", "--timeout", "1", "-d", d(&root)]));
        assert!(o.contains("destroyed"), "{o}");
        assert!(!root.exists());
        t.left(&ns, &root);
        t.changed(&before, &Snapshot::take(&[&src]));
    }
    t.finish(5, 0);
}

// ---- issue 7: unmounting never propagates ----

/// A shared mount bound into the sandbox (an `rbind` of the host's /dev,
/// which is shared on a systemd host) is unmounted by `off` without its
/// unmounts reaching the original: every mount is made private before any
/// is unmounted. With `on`'s self-bind, and on a rootfs turned on by hand.
#[test]
fn off_never_unmounts_the_host_through_propagation() {
    let ns = Ns::new();
    let mut t = Tally::new("propagation on off");
    // Stands in for the host's /dev: a shared tmpfs with submounts.
    let fake = ns.tmp.path().join("fakedev");
    fs::create_dir_all(&fake).unwrap();
    let f = d(&fake);
    ok(&ns.sh(&format!(
        "mount -t tmpfs fakedev {f} && mount --make-shared {f} && mkdir {f}/pts {f}/shm && \
         mount -t devpts -o newinstance fakepts {f}/pts && mount -t tmpfs fakeshm {f}/shm"
    )));
    let before = ns.mounts_under(&fake);
    assert_eq!(before.len(), 3, "{before:?}");
    // 1. A sandbox that is on; the shared tree bound in after `on`.
    let root = ns.busybox_root("sb");
    fs::create_dir_all(root.join("mnt/hd")).unwrap();
    ok(&ns.run(&["on", "-d", d(&root)]));
    ok(&ns.sh(&format!("mount --rbind {f} {}/mnt/hd", d(&root))));
    t.attacks += 1;
    ok(&ns.run(&["off", "-d", d(&root)]));
    assert_eq!(
        ns.mounts_under(&fake),
        before,
        "off unmounted the original's submounts"
    );
    t.left(&ns, &root);
    // 2. A rootfs with no self-bind, the shared tree bound on its /dev by
    // hand (a rescue chroot): off clears the plan's targets, only there.
    let legacy = ns.busybox_root("legacy");
    fs::create_dir_all(legacy.join("dev")).unwrap();
    ok(&ns.sh(&format!("mount --rbind {f} {}/dev", d(&legacy))));
    t.attacks += 1;
    ok(&ns.run(&["off", "-d", d(&legacy)]));
    assert_eq!(
        ns.mounts_under(&fake),
        before,
        "off unmounted the original's submounts"
    );
    t.left(&ns, &legacy);
    t.finish(2, 0);
}

/// A record outlives its mount when the self-bind is unmounted by hand;
/// the kernel then reuses the short mount id. A bind the user makes next
/// at the same DIR is still the user's (the record holds the mount's
/// unique id). A sandbox whose parent directory is renamed while on is
/// still the sandbox (the record holds DIR's identity, not its path).
#[test]
fn records_survive_neither_reuse_nor_renames() {
    let ns = Ns::new();
    let mut t = Tally::new("records, reuse and renames");
    let root = ns.busybox_root("sb");
    fs::create_dir_all(root.join("mine")).unwrap();
    let r = d(&root).to_string();
    ok(&ns.run(&["on", "-d", &r]));
    ok(&ns.sh(&format!("umount -R {r}")));
    ok(&ns.sh(&format!(
        "mount --bind {r} {r} && mount -t tmpfs users-own {r}/mine"
    )));
    let users = (ids_at(&ns, &root), ids_at(&ns, &root.join("mine")));
    t.attacks += 1;
    assert_eq!(ns.state(&root), "off");
    ok(&ns.run(&["off", "-d", &r]));
    assert_eq!(
        (ids_at(&ns, &root), ids_at(&ns, &root.join("mine"))),
        users,
        "off took the user's bind for the sandbox's"
    );
    ok(&ns.sh(&format!("umount -R {r}")));
    // Renamed while on: off by the new name ends its process, leaves nothing.
    let parent = ns.tmp.path().join("p");
    fs::create_dir_all(&parent).unwrap();
    let inner = parent.join("sb");
    fs::rename(&root, &inner).unwrap();
    ok(&ns.run(&["on", "-d", d(&inner)]));
    let (mut run, sleep) = bg_sleep(&ns, &inner);
    let moved = ns.tmp.path().join("q");
    fs::rename(&parent, &moved).unwrap();
    let now = moved.join("sb");
    t.attacks += 1;
    assert_eq!(ns.state(&now), "on");
    let o = ok(&ns.run(&["off", "--timeout", "1", "-d", d(&now)]));
    assert!(o.contains("1 process ended"), "{o}");
    assert!(ends(sleep));
    common::wait_within(&mut run.0, common::DEADLINE);
    t.left(&ns, &now);
    t.finish(2, 0);
}

// ---- issue 7: second attack pass ----

/// A process inside the sandbox at `root` (uid 1000, its root the
/// sandbox's own mount) that holds an exclusive flock on its `/`, DIR
/// itself, and sleeps. Returns once the lock is held.
fn flock_holder_inside(ns: &Ns, root: &Path, secs: u32) -> Child {
    let mark = ns
        .tmp
        .path()
        .join(format!("flocked-{}", std::process::id()));
    let _ = fs::remove_file(&mark);
    let child = ns
        .cmd("sh")
        .arg("-c")
        .arg(format!(
            "exec 9<'{r}' && flock -x 9 && touch '{m}' && \
             exec chroot --userspec=1000:1000 '{r}' /bin/sleep {secs}",
            r = d(root),
            m = d(&mark)
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !mark.exists() {
        assert!(Instant::now() < deadline, "the holder never took the lock");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

/// Class 1 of the second pass: a process inside that flocks its `/` (DIR)
/// blocks no verb: the lock is a file on the host side, out of its reach.
/// Each verb finishes within its deadline; `off` and `destroy` end the
/// holder.
#[test]
fn a_process_inside_holding_a_flock_on_its_root_blocks_no_verb() {
    let ns = Ns::new();
    let mut t = Tally::new("flock on / inside");
    for verb in ["on", "run", "off", "destroy"] {
        let root = ns.busybox_root(&format!("flock-{verb}"));
        ok(&ns.run(&["on", "-d", d(&root)]));
        let mut holder = flock_holder_inside(&ns, &root, 40);
        let pid = holder.id() as i32;
        t.attacks += 1;
        let o = match verb {
            "run" => tool_timed(
                &ns,
                &["run", "-d", d(&root), "--", "sh", "-c", "exit 7"],
                20,
            ),
            "destroy" => tool_timed(
                &ns,
                &["destroy", "--yes", "--timeout", "1", "-d", d(&root)],
                20,
            ),
            "off" => tool_timed(&ns, &["off", "--timeout", "1", "-d", d(&root)], 20),
            _ => tool_timed(&ns, &["on", "-d", d(&root)], 20),
        };
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = holder.wait();
        match verb {
            "run" => assert_eq!(code(&o), 7, "{verb}: {}", stderr(&o)),
            _ => assert!(o.status.success(), "{verb}: {}", stderr(&o)),
        }
        if verb == "destroy" {
            assert!(!root.exists(), "destroy left {}", root.display());
        } else {
            ok(&ns.run(&["off", "--timeout", "1", "-d", d(&root)]));
        }
        t.left(&ns, &root);
    }
    t.finish(4, 0);
}

/// The lock is one per DIR, whatever its spelling, and lives under the run
/// dir (root-only), never in DIR: a symlink to DIR shares it.
#[test]
fn the_lock_is_a_host_file_shared_by_every_spelling_of_dir() {
    let ns = Ns::new();
    let root = ns.busybox_root("lockfile");
    let alias = ns.tmp.path().join("alias");
    symlink(&root, &alias).unwrap();
    ok(&ns.run(&["on", "-d", d(&alias)]));
    ok(&ns.run(&["off", "-d", d(&root)]));
    let md = fs::metadata(&root).unwrap();
    let lock = ns
        .run_dir
        .join("lock")
        .join(format!("{}-{}", md.dev(), md.ino()));
    let lmd = fs::symlink_metadata(&lock).expect("the lock file");
    assert!(lmd.is_file());
    assert_eq!(lmd.mode() & 0o777, 0o600);
    let dmd = fs::symlink_metadata(lock.parent().unwrap()).unwrap();
    assert_eq!(dmd.mode() & 0o777, 0o700);
    assert_eq!(
        fs::read_dir(ns.run_dir.join("lock")).unwrap().count(),
        1,
        "one lock for both spellings"
    );
}

/// Class 2 of the second pass: a history file that is not a regular file
/// (a FIFO without a reader, a FIFO with one, a character device) hangs
/// nothing and receives nothing: `run` and `off` finish, warn in one line,
/// and keep their own status.
#[test]
fn a_history_that_is_not_a_regular_file_hangs_nothing() {
    let ns = Ns::new();
    let mut t = Tally::new("history not regular");
    for shape in ["fifo", "fifo-read", "null"] {
        let root = ns.busybox_root(&format!("hist-{shape}"));
        let canon = fs::canonicalize(&root).unwrap();
        let hist = ns.state_dir().join("history");
        fs::create_dir_all(&hist).unwrap();
        let file = hist.join(chroot_tool::audit::file_name(&canon));
        let made = match shape {
            "null" => nix::sys::stat::mknod(
                &file,
                nix::sys::stat::SFlag::S_IFCHR,
                nix::sys::stat::Mode::from_bits_truncate(0o600),
                nix::sys::stat::makedev(1, 3),
            ),
            _ => nix::unistd::mkfifo(&file, nix::sys::stat::Mode::from_bits_truncate(0o600)),
        };
        made.unwrap();
        // A reader that would receive what is written to the FIFO.
        let reader = (shape == "fifo-read").then(|| {
            let out = ns.tmp.path().join(format!("read-{shape}"));
            std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("exec cat '{}' > '{}'", d(&file), d(&out)))
                .spawn()
                .map(|c| (c, out))
                .unwrap()
        });
        if reader.is_some() {
            std::thread::sleep(Duration::from_millis(200));
        }
        for (args, want) in [
            (vec!["run", "-d", d(&root), "--", "sh", "-c", "exit 5"], 5),
            (vec!["off", "-d", d(&root)], 0),
        ] {
            t.attacks += 1;
            let o = tool_timed(&ns, &args, 20);
            assert_eq!(code(&o), want, "{shape} {args:?}: {}", stderr(&o));
            let e = stderr(&o);
            let warn: Vec<&str> = e.lines().filter(|l| l.contains("history")).collect();
            assert_eq!(warn.len(), 1, "{shape} {args:?}: {e}");
            assert!(
                warn[0].starts_with("chroot-tool: warning: history not written: ")
                    && warn[0].contains("not a regular file"),
                "{shape} {args:?}: {e}"
            );
        }
        let md = fs::symlink_metadata(&file).unwrap();
        assert!(!md.is_file(), "{shape}: the file was replaced");
        if let Some((mut c, out)) = reader {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            let _ = c.wait();
            assert_eq!(
                fs::read(&out).unwrap_or_default(),
                b"",
                "{shape}: written to the FIFO"
            );
        }
        t.left(&ns, &root);
    }
    t.finish(6, 0);
}

/// Class 3 of the second pass: the hosts line `on` adds never replaces a
/// symlinked /etc/hosts (nor writes through it), and never writes into a
/// host directory bound on /etc (with a hosts file, without one), while a
/// plain /etc/hosts still gets its line.
#[test]
fn the_hosts_line_is_written_only_to_the_roots_own_regular_file() {
    let ns = Ns::new();
    let mut t = Tally::new("hosts line");
    let name = nix::unistd::gethostname().unwrap().into_string().unwrap();
    let base = "127.0.0.1\tlocalhost\n";
    // A symlinked /etc/hosts stays a symlink; its target is untouched.
    for to in ["../usr/share/hosts", "/usr/share/hosts"] {
        let root = ns.busybox_root(&format!("hosts-link-{}", to.len()));
        fs::create_dir_all(root.join("usr/share")).unwrap();
        fs::write(root.join("usr/share/hosts"), base).unwrap();
        symlink(to, root.join("etc/hosts")).unwrap();
        t.attacks += 1;
        ok(&ns.run(&["on", "-d", d(&root)]));
        let l = fs::read_link(root.join("etc/hosts")).expect("still a symlink");
        assert_eq!(l, Path::new(to));
        assert_eq!(
            fs::read_to_string(root.join("usr/share/hosts")).unwrap(),
            base
        );
        ok(&ns.run(&["off", "-d", d(&root)]));
        t.left(&ns, &root);
    }
    // A host directory bound on /etc: nothing in it is made or replaced.
    for with_hosts in [true, false] {
        let root = ns.busybox_root(&format!("hosts-bind-{with_hosts}"));
        let host = ns.tmp.path().join(format!("host-etc-{with_hosts}"));
        fs::create_dir_all(&host).unwrap();
        fs::write(host.join("passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
        // Where the built-in bind of the host's resolv.conf lands.
        fs::write(host.join("resolv.conf"), "").unwrap();
        if with_hosts {
            fs::write(host.join("hosts"), base).unwrap();
        }
        conf(&root, &format!("[bind]\nsrc:{} tgt:/etc\n", d(&host)));
        let before = Snapshot::take(&[&host]);
        t.attacks += 1;
        let o = ns.run(&["on", "-d", d(&root)]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(
            mounted_at(&ns, &root.join("etc")),
            "the [bind] on /etc is the test's premise"
        );
        ok(&ns.run(&["off", "-d", d(&root)]));
        t.changed(&before, &Snapshot::take(&[&host]));
        if with_hosts {
            assert_eq!(fs::read_to_string(host.join("hosts")).unwrap(), base);
        }
        t.left(&ns, &root);
    }
    // The plain case still works: a regular /etc/hosts gets the line.
    let root = ns.busybox_root("hosts-plain");
    fs::write(root.join("etc/hosts"), base).unwrap();
    ok(&ns.run(&["on", "-d", d(&root)]));
    let text = fs::read_to_string(root.join("etc/hosts")).unwrap();
    assert!(
        text.starts_with(base) && text.contains(&format!("\t{name}\t")),
        "{text}"
    );
    ok(&ns.run(&["off", "-d", d(&root)]));
    t.left(&ns, &root);
    t.finish(4, 0);
}

/// Class 4 of the second pass: the caller's open descriptors never reach
/// the command. Descriptors 8 (a host file) and 9 (a host directory, by
/// which `cd /proc/self/fd/9` would leave the chroot) are open in the
/// process that starts chroot-tool; inside, only 0, 1, 2 and the one `ls`
/// opens are there, as root and as uid 1000, argv and shell line.
#[test]
fn the_callers_descriptors_do_not_reach_the_command() {
    let ns = Ns::new();
    let mut t = Tally::new("inherited descriptors");
    let root = ns.busybox_root("fds");
    let host = host_dir(&ns);
    ok(&ns.run(&["on", "-d", d(&root)]));
    let sh = |rest: &str| -> Output {
        let line = format!(
            "exec 8<'{f}' 9<'{h}'; exec '{bin}' run -d '{r}' {rest}",
            f = d(&host.join("etc/passwd")),
            h = d(&host),
            bin = common::BIN,
            r = d(&root),
        );
        common::output_within(
            ns.cmd("sh").args(["-c", &line]).stdin(Stdio::null()),
            Duration::from_secs(30),
        )
    };
    for user in ["", "-u 1000"] {
        for rest in [
            "-- ls /proc/self/fd".to_string(),
            "'ls /proc/self/fd'".to_string(),
        ] {
            t.attacks += 1;
            let o = sh(&format!("{user} {rest}"));
            let out = ok(&o);
            let fds: Vec<&str> = out.split_whitespace().collect();
            assert_eq!(fds, ["0", "1", "2", "3"], "{user} {rest}: {out}");
        }
        t.attacks += 1;
        let o = sh(&format!(
            "{user} -- sh -c 'cd /proc/self/fd/9 && ls; cat /proc/self/fd/8; true'"
        ));
        let out = stdout(&o);
        assert!(o.status.success(), "{user}: {}", stderr(&o));
        assert!(
            !out.contains("etc") && !out.contains("host passwd"),
            "{user}: the host is reachable: {out}"
        );
    }
    ok(&ns.run(&["off", "-d", d(&root)]));
    t.left(&ns, &root);
    t.finish(6, 0);
}

/// Whether the kernel answers `statmount` (Linux 6.8): what recognises a
/// sandbox under a mount made over DIR (docs/security.md). Before, such a
/// cover is not recognised, and [`cover_unrecognised`] is what holds.
fn statmount_works() -> bool {
    chroot_tool::mountinfo::stack_at(Path::new("/")).is_ok_and(|s| s.is_some())
}

/// Before Linux 6.8: a tmpfs mounted over DIR after `on` is not named,
/// but `off` fails and nothing of it is lost; once it is unmounted, `off`
/// removes everything.
fn cover_unrecognised(ns: &Ns, root: &Path) {
    let r = d(root).to_string();
    ok(&ns.run(&["on", "-d", &r]));
    assert!(ns
        .sh(&format!("mount -t tmpfs cover {r} && echo mine > {r}/f"))
        .status
        .success());
    assert_ne!(code(&ns.run(&["off", "-d", &r])), 0);
    let f = format!("/proc/{}/root{r}/f", ns.pid());
    assert_eq!(fs::read_to_string(&f).unwrap(), "mine\n");
    assert!(ns.sh(&format!("umount {r}")).status.success());
    ok(&ns.run(&["off", "-d", &r]));
    assert!(ns.mounts_under(root).is_empty());
}

/// Something mounted over DIR after `on` hides the sandbox's self-bind:
/// `status` names it; `on`, `run` and `off` refuse, saying to unmount it
/// first, and `off` stops, ends and unmounts nothing through it (the
/// sandbox's `stop` is not reached, and what is mounted on a shared cover
/// would propagate to the host). Once the user unmounts it, `off` ends
/// what runs inside and removes everything. The covers: a tmpfs; a bind
/// of DIR onto itself made by hand (a self-bind's shape without `on`'s
/// record); a bind of a shared host directory on which the host mounts
/// afterwards; and a bind of another root filesystem (with a `stop` of
/// its own) moved over DIR with `mount --move`, which, made before `on`,
/// comes before the self-bind in the mount table.
#[test]
fn a_mount_made_over_dir_after_on_is_named_and_refused() {
    let ns = Ns::new();
    let mut t = Tally::new("mount over DIR after on");
    let root = ns.busybox_root("sb");
    if !statmount_works() {
        cover_unrecognised(&ns, &root);
        return;
    }
    let r = d(&root).to_string();
    let other = ns.busybox_root("other");
    let o_ = d(&other).to_string();
    fs::create_dir_all(other.join("chroot.d")).unwrap();
    let proof = other.join("stopped");
    script(
        &other.join("chroot.d/stop"),
        "#!/bin/sh\necho ran > /stopped\n",
    );
    let host = ns.tmp.path().join("host");
    let moved = ns.tmp.path().join("moved");
    fs::create_dir_all(&host).unwrap();
    fs::create_dir_all(&moved).unwrap();
    let (h, m) = (d(&host).to_string(), d(&moved).to_string());
    let outside = ns.mounts_outside(&root);
    assert!(ns
        .sh(&format!(
            "mount -t tmpfs hostfs {h} && mount --make-shared {h}"
        ))
        .status
        .success());
    for (what, before, cover, after) in [
        (
            "tmpfs",
            String::new(),
            format!("mount -t tmpfs cover {r} && echo mine > {r}/f"),
            String::new(),
        ),
        (
            "self-bind by hand",
            String::new(),
            format!("mount --bind {r} {r}"),
            String::new(),
        ),
        (
            "shared host bind",
            String::new(),
            format!("mount --bind {h} {r}"),
            format!("mount -t tmpfs later {h} && echo host > {h}/f"),
        ),
        (
            "moved over DIR",
            format!("mount --bind {o_} {m}"),
            format!("mount --move {m} {r}"),
            String::new(),
        ),
    ] {
        t.faults += 1;
        if !before.is_empty() {
            assert!(ns.sh(&before).status.success(), "{what}: {before}");
        }
        ok(&ns.run(&["on", "-d", &r]));
        // A process inside since before the cover.
        let inside = host_holder(&ns, &format!("exec chroot {r} sleep 1000"));
        assert!(ns.sh(&cover).status.success(), "{what}: {cover}");
        if !after.is_empty() {
            assert!(ns.sh(&after).status.success(), "{what}: {after}");
        }
        let table = ns.table();
        let st = ok(&ns.run(&["status", "--json", "-d", &r]));
        let v: serde_json::Value = serde_json::from_str(&st).unwrap();
        assert_eq!(v["state"], "partly on", "{what}: {st}");
        assert!(v["covered_by"]["fstype"].is_string(), "{what}: {st}");
        let text = ok(&ns.run(&["status", "-d", &r]));
        assert!(
            text.contains("was mounted over DIR after `on`"),
            "{what}: {text}"
        );
        for args in [
            vec!["on", "-d", &r],
            vec!["run", "-d", &r, "--", "/bin/true"],
            vec!["off", "-d", &r],
        ] {
            let o = ns.run(&args);
            assert_ne!(code(&o), 0, "{what}: {args:?}");
            assert!(
                stderr(&o).contains(&format!("was mounted over it after `on` and hides the sandbox; unmount it (`umount -R {r}`)")),
                "{what}: {args:?}: {}",
                stderr(&o)
            );
        }
        // destroy refuses too (for this reason, or another it finds first).
        assert_ne!(code(&ns.run(&["destroy", "--yes", "-d", &r])), 0, "{what}");
        assert!(root.join("bin/sh").exists(), "{what}: destroy deleted");
        assert_eq!(ns.table(), table, "{what}: a refusal changed the mounts");
        assert!(!proof.exists(), "{what}: another root's stop ran");
        assert!(
            fs::metadata(format!("/proc/{}", inside.0.id())).is_ok(),
            "{what}: the process inside was ended through the cover"
        );
        if what == "shared host bind" {
            let f = format!("/proc/{}/root{h}/f", ns.pid());
            assert_eq!(fs::read_to_string(&f).unwrap(), "host\n", "{what}");
            assert!(ns.sh(&format!("umount {h}")).status.success());
        }
        assert!(ns.sh(&format!("umount {r}")).status.success(), "{what}");
        let o = ns.run(&["off", "-d", &r]);
        assert_eq!(code(&o), 0, "{what}: {}", stderr(&o));
        assert!(
            stdout(&o).contains("1 process ended"),
            "{what}: {}",
            stdout(&o)
        );
        let mut inside = inside;
        common::wait_within(&mut inside.0, common::DEADLINE);
        assert!(t.left(&ns, &root).is_empty(), "{what}");
        assert_eq!(ns.state(&root), "off", "{what}");
        assert!(root.join("bin/sh").exists(), "{what}");
        assert!(!proof.exists(), "{what}: another root's stop ran");
    }
    assert!(ns.sh(&format!("umount {h}")).status.success());
    assert_eq!(ns.mounts_outside(&root), outside);
    t.finish(0, 4);
}

/// A mount over a directory above DIR hides the sandbox's self-bind from
/// DIR's path, which now leads elsewhere: to another root filesystem with
/// a `stop` of its own, or (a bind of DIR's parent onto itself) to DIR's
/// own directory without the sandbox's mounts. The hidden self-bind is
/// not taken for DIR's: `off` and `destroy` run no `stop` (neither that
/// root's nor the sandbox's, in a bare directory), end no process and
/// unmount nothing. Once the user unmounts what hides it, `off` removes all.
#[test]
fn a_mount_over_a_parent_of_dir_is_no_way_into_the_sandbox() {
    let ns = Ns::new();
    let mut t = Tally::new("mount over a parent of DIR");
    let base = ns.tmp.path().join("m");
    fs::create_dir_all(base.join("a")).unwrap();
    let root = base.join("a/b");
    common::make_busybox_root(&root);
    if !statmount_works() {
        cover_unrecognised(&ns, &root);
        return;
    }
    let r = d(&root).to_string();
    let other = ns.tmp.path().join("o");
    common::make_busybox_root(&other.join("b"));
    let a = d(&base.join("a")).to_string();
    let proofs = [other.join("b/stopped"), root.join("stopped")];
    for sb in [other.join("b"), root.clone()] {
        fs::create_dir_all(sb.join("chroot.d")).unwrap();
        script(
            &sb.join("chroot.d/stop"),
            "#!/bin/sh\necho ran > /stopped\n",
        );
    }
    let outside = ns.mounts_outside(&root);
    for over in [d(&other).to_string(), a.clone()] {
        t.faults += 1;
        ok(&ns.run(&["on", "-d", &r]));
        let inside = host_holder(&ns, &format!("exec chroot {r} sleep 1000"));
        assert!(ns.sh(&format!("mount --bind {over} {a}")).status.success());
        let table = ns.table();
        for args in [
            vec!["off", "-d", &r],
            vec!["destroy", "--yes", "-d", &r],
            vec!["status", "-d", &r],
        ] {
            let _ = ns.run(&args);
            for p in &proofs {
                assert!(!p.exists(), "{over}: {args:?}: a stop ran: {}", p.display());
            }
            assert!(
                fs::metadata(format!("/proc/{}", inside.0.id())).is_ok(),
                "{over}: {args:?}: the hidden sandbox's process was ended"
            );
            assert_eq!(ns.table(), table, "{over}: {args:?} changed the mounts");
        }
        assert!(ns.sh(&format!("umount {a}")).status.success());
        let o = ns.run(&["off", "-d", &r]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        assert!(stdout(&o).contains("1 process ended"), "{}", stdout(&o));
        let mut inside = inside;
        common::wait_within(&mut inside.0, common::DEADLINE);
        t.left(&ns, &root);
        // The sandbox's own stop ran, once it could be reached.
        assert!(!proofs[0].exists());
        assert!(
            fs::remove_file(&proofs[1]).is_ok(),
            "{over}: the sandbox's stop did not run"
        );
    }
    assert_eq!(ns.mounts_outside(&root), outside);
    t.finish(0, 2);
}

/// What is mounted over DIR while `off` is at work (here while the
/// sandbox's `stop` runs) is no more the sandbox's than a cover made
/// before: `off` stops there, says so, and unmounts nothing through it;
/// its data stays. An `on` killed after its self-bind leaves a record not
/// settled: a bind of DIR onto itself that the user then makes, with a
/// tmpfs on it, is theirs, not `on`'s momentary copy of DIR.
#[test]
fn a_cover_made_while_off_runs_or_after_a_killed_on_is_refused() {
    let ns = Ns::new();
    let mut t = Tally::new("cover during off, after a killed on");
    let root = ns.busybox_root("sb");
    if !statmount_works() {
        cover_unrecognised(&ns, &root);
        return;
    }
    let r = d(&root).to_string();
    fs::create_dir_all(root.join("chroot.d")).unwrap();
    fs::create_dir_all(root.join("data")).unwrap();
    script(
        &root.join("chroot.d/stop"),
        "#!/bin/sh\n: > /stopping\nsleep 2\n",
    );
    let outside = ns.mounts_outside(&root);
    // A cover while `stop` runs.
    t.faults += 1;
    ok(&ns.run(&["on", "-d", &r]));
    let off = ns
        .tool()
        .args(["off", "-d", &r])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    common::wait_until("stop to begin", || root.join("stopping").exists());
    assert!(ns
        .sh(&format!(
            "mount -t tmpfs work {r} && echo precious > {r}/work.txt"
        ))
        .status
        .success());
    let o = common::finish_within(off, common::DEADLINE);
    assert_ne!(code(&o), 0, "{}", stdout(&o));
    assert!(
        stderr(&o).contains("was mounted over it after `on` and hides the sandbox"),
        "{}",
        stderr(&o)
    );
    let f = format!("/proc/{}/root{r}/work.txt", ns.pid());
    assert_eq!(fs::read_to_string(&f).unwrap(), "precious\n");
    assert!(ns.sh(&format!("umount {r}")).status.success());
    fs::remove_file(root.join("stopping")).unwrap();
    ok(&ns.run(&["off", "-d", &r]));
    t.left(&ns, &root);
    // A user's bind of DIR over the self-bind of a killed `on`.
    t.faults += 1;
    let o = ns.on_killed_after(&root, 0);
    assert!(!o.status.success());
    assert!(ns
        .sh(&format!(
            "mount --bind {r} {r} && mount -t tmpfs userdata {r}/data && echo precious > {r}/data/f"
        ))
        .status
        .success());
    let st = ok(&ns.run(&["status", "--json", "-d", &r]));
    let v: serde_json::Value = serde_json::from_str(&st).unwrap();
    assert!(v["covered_by"].is_object(), "{st}");
    let o = ns.run(&["off", "-d", &r]);
    assert_ne!(code(&o), 0, "{}", stdout(&o));
    assert!(
        stderr(&o).contains("was mounted over it after `on` and hides the sandbox"),
        "{}",
        stderr(&o)
    );
    let f = format!("/proc/{}/root{r}/data/f", ns.pid());
    assert_eq!(fs::read_to_string(&f).unwrap(), "precious\n");
    assert!(ns
        .sh(&format!("umount {r}/data && umount {r}"))
        .status
        .success());
    ok(&ns.run(&["off", "-d", &r]));
    t.left(&ns, &root);
    assert_eq!(ns.mounts_outside(&root), outside);
    t.finish(0, 2);
}

/// On a shared parent with something mounted below DIR, `on` attaches a
/// copy of DIR on its self-bind for a moment. An `on` killed right then
/// (its unmount of the copy) leaves that copy on top at DIR: it is `on`'s
/// own, no cover (`status` names none) and `off` removes it with the rest,
/// the user's mount below DIR staying.
#[test]
fn an_on_killed_with_its_copy_of_dir_on_top_is_no_cover() {
    let ns = Ns::with_propagation("shared");
    let mut t = Tally::new("on killed with its copy on top");
    let root = ns.busybox_root("sb");
    let r = d(&root).to_string();
    fs::create_dir_all(root.join("mnt/x")).unwrap();
    assert!(ns
        .sh(&format!("mount -t tmpfs below {r}/mnt/x"))
        .status
        .success());
    let user = ns.mounts_under(&root);
    t.faults += 1;
    let o = common::output_within(
        ns.cmd("strace")
            .args(["-f", "-o", "/dev/null", "-e", "trace=umount2"])
            .args(["-e", "inject=umount2:signal=SIGKILL:when=1"])
            .arg(common::BIN)
            .args(["on", "-d", &r])
            .stdin(Stdio::null()),
        common::DEADLINE,
    );
    assert!(!o.status.success(), "on was not killed");
    let at_dir = ns.mounts_under(&root).iter().filter(|p| **p == r).count();
    assert_eq!(
        at_dir,
        2,
        "not killed with its copy on top: {:?}",
        ns.mounts_under(&root)
    );
    let st = ok(&ns.run(&["status", "--json", "-d", &r]));
    let v: serde_json::Value = serde_json::from_str(&st).unwrap();
    assert!(v.get("covered_by").is_none(), "{st}");
    ok(&ns.run(&["off", "-d", &r]));
    assert_eq!(ns.mounts_under(&root), user);
    assert!(ns.sh(&format!("umount {r}/mnt/x")).status.success());
    t.left(&ns, &root);
    t.finish(0, 1);
}

/// The indices (from 1) of the `openat` calls of exactly `dir` among
/// those of the first process in an `strace -f -e trace=openat` log.
fn openats_of(log: &str, dir: &str) -> Vec<usize> {
    let first = log.split_whitespace().next().unwrap_or("").to_string();
    let want = format!("openat(AT_FDCWD, \"{dir}\",");
    log.lines()
        .filter(|l| l.split_whitespace().next() == Some(first.as_str()))
        .filter(|l| l.contains("openat("))
        .enumerate()
        .filter(|(_, l)| l.contains(&want))
        .map(|(i, _)| i + 1)
        .collect()
}

/// A root mounted over DIR at any moment `run` opens DIR (each of those
/// `openat` calls held back in turn with `strace`'s delay, the other root
/// bound over DIR meanwhile): the command runs in the sandbox as it was
/// checked, or not at all, never in the root over DIR.
#[test]
fn a_root_mounted_over_dir_while_run_starts_is_not_entered() {
    let ns = Ns::new();
    let mut t = Tally::new("root mounted over DIR while run starts");
    let root = ns.busybox_root("sb");
    let r = d(&root).to_string();
    let other = ns.busybox_root("other");
    let outside = ns.mounts_outside(&root);
    ok(&ns.run(&["on", "-d", &r]));
    let log = ns.tmp.path().join("trace");
    let traced = |inject: &[&str]| {
        ns.cmd("strace")
            .args(["-f", "-o", d(&log), "-e", "trace=openat"])
            .args(inject)
            .arg(common::BIN)
            .args(["run", "-d", &r, "--", "/bin/sh", "-c", ": > /ran"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("strace is needed")
    };
    let o = common::finish_within(traced(&[]), common::DEADLINE);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    fs::remove_file(root.join("ran")).unwrap();
    let opens = openats_of(&fs::read_to_string(&log).unwrap(), &r);
    assert!(opens.len() >= 2, "run opens DIR {} times", opens.len());
    let (mut entered, mut refused) = (0, 0);
    for n in opens {
        t.faults += 1;
        let inject = format!("inject=openat:delay_enter=1500000:when={n}");
        let run = traced(&["-e", &inject]);
        // openat is system call 257.
        common::held_in(&run, 257, "run held in an openat of DIR");
        assert!(ns
            .sh(&format!("mount --bind {} {r}", d(&other)))
            .status
            .success());
        let o = common::finish_within(run, common::DEADLINE);
        assert!(
            !other.join("ran").exists(),
            "openat {n}: the command ran in the root over DIR"
        );
        if code(&o) == 0 {
            assert!(fs::remove_file(root.join("ran")).is_ok(), "openat {n}");
            entered += 1;
        } else {
            assert!(
                stderr(&o).contains("mounted over it"),
                "openat {n}: {}",
                stderr(&o)
            );
            refused += 1;
        }
        assert!(ns.sh(&format!("umount {r}")).status.success());
    }
    // Held before the lean check, run sees the cover and refuses; held
    // after, it enters the sandbox it checked.
    assert!(
        entered > 0 && refused > 0,
        "entered {entered}, refused {refused}"
    );
    ok(&ns.run(&["off", "-d", &r]));
    t.left(&ns, &root);
    assert_eq!(ns.mounts_outside(&root), outside);
    t.finish(0, 1);
}

/// The mount table `on` reads before its mounts (a shared parent, with
/// something mounted below DIR) may show a tmpfs outside DIR that is gone
/// by the time `on` makes its own: the kernel hands the freed device
/// number to the new one, which is still a filesystem of the sandbox's
/// own, and `/dev`'s nodes and links are made in it. Widened with
/// `strace`: `on` is held at its first `fsopen` while twenty tmpfs outside
/// DIR, there when it read the table, are unmounted.
#[test]
fn a_device_number_freed_since_on_read_the_table_is_no_host_filesystem() {
    let ns = Ns::with_propagation("shared");
    let mut t = Tally::new("device number freed during on");
    let root = ns.busybox_root("sb");
    let r = d(&root).to_string();
    fs::create_dir_all(root.join("mnt/x")).unwrap();
    let others = ns.tmp.path().join("others");
    let o = d(&others).to_string();
    let made = (0..20)
        .map(|i| format!("mkdir -p {o}/{i} && mount -t tmpfs t{i} {o}/{i}"))
        .collect::<Vec<_>>()
        .join(" && ");
    assert!(ns
        .sh(&format!("mount -t tmpfs below {r}/mnt/x && {made}"))
        .status
        .success());
    t.faults += 1;
    let on = ns.held_at("fsopen", &["on", "-d", &r]);
    // fsopen is system call 430.
    common::held_in(&on, 430, "on held at its first fsopen");
    let gone = (0..20)
        .map(|i| format!("umount {o}/{i}"))
        .collect::<Vec<_>>()
        .join(" && ");
    assert!(ns.sh(&gone).status.success());
    let out = common::finish_within(on, common::DEADLINE);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(ns.state(&root), "on");
    ok(&ns.run(&["off", "-d", &r]));
    assert!(ns.sh(&format!("umount {r}/mnt/x")).status.success());
    t.left(&ns, &root);
    t.finish(0, 1);
}

/// host-cmd runs on the host as root: one that another user may have
/// written (it, the chroot.d it lies in, or DIR, each owned by a user or
/// writable by group or others) is refused, never run, and says why; made
/// root's alone again, it runs.
#[test]
fn a_host_cmd_another_user_could_write_is_not_run() {
    let ns = Ns::new();
    let root = ns.busybox_root("sb");
    let marker = ns.tmp.path().join("ran");
    script(
        &root.join("chroot.d/host-cmd"),
        &format!("#!/bin/sh\necho ran >> {}\n", d(&marker)),
    );
    let cd = root.join("chroot.d");
    let cmd = cd.join("host-cmd");
    let cases: [(&str, &Path, &str); 5] = [
        ("host-cmd owned by a user", &cmd, "chown 65534 '{}'"),
        ("host-cmd writable by others", &cmd, "chmod o+w '{}'"),
        ("chroot.d owned by a user", &cd, "chown 65534 '{}'"),
        ("chroot.d writable by its group", &cd, "chmod g+w '{}'"),
        ("DIR owned by a user", &root, "chown 65534 '{}'"),
    ];
    for (what, path, how) in cases {
        ok(&ns.sh(&how.replace("{}", d(path))));
        let o = ns.run_in(&root, &["--", "true"]);
        assert_eq!(code(&o), 125, "{what}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(
            (e.contains("so host-cmd is not run") || e.contains("nothing was mounted"))
                && e.contains(d(path))
                && (e.contains("owned by uid 65534") || e.contains("writable by group or others")),
            "{what}: {e}"
        );
        assert!(!marker.exists(), "{what}: it ran");
        ok(&ns.sh(&format!("chown 0:0 '{p}' && chmod go-w '{p}'", p = d(path))));
        ok(&ns.run_in(&root, &["--", "true"]));
        assert!(marker.exists(), "{what}: root's again, it did not run");
        fs::remove_file(&marker).unwrap();
    }
    ok(&ns.run(&["off", "-d", d(&root)]));
}

/// A chroot.d that leads, through a symlink, below where `on` mounts a
/// directory anyone may write (`/tmp`): `on` finds it root's alone (the
/// rootfs's own `/tmp`), but once on, anyone could put a `stop` or a
/// command there. Neither `off` nor `run` runs a program of chroot.d
/// then: `off` says why and turns off; `run NAME` refuses (125).
#[test]
fn programs_of_a_chroot_d_others_may_write_once_on_are_not_run() {
    use std::os::unix::fs::PermissionsExt;
    let ns = Ns::new();
    let _h = common::Holders(ns.run_dir.join("holder"));
    // In the host's mount namespace (chroot), and through a holder, whose
    // mounts the host does not see.
    for (i, how) in [&[][..], &["--ns", "pid"][..]].into_iter().enumerate() {
        let root = ns.busybox_root(&format!("sb{i}"));
        let r = d(&root).to_string();
        fs::create_dir_all(root.join("tmp/cd")).unwrap();
        fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o755)).unwrap();
        // Root's own programs on disk, which the host sees (and a holder's
        // `/tmp` hides).
        for name in ["hello", "stop"] {
            script(&root.join("tmp/cd").join(name), "#!/bin/sh\ntrue\n");
        }
        fs::remove_dir_all(root.join("chroot.d")).unwrap();
        symlink("tmp/cd", root.join("chroot.d")).unwrap();
        let mut on = vec!["on", "-d", &r];
        on.extend_from_slice(how);
        ok(&ns.run(&on));
        // As anyone could, in the 1777 tmpfs `on` mounted (seen from
        // inside, where the holder's mounts are).
        ok(&ns.run_in(
            &root,
            &[
                "--",
                "sh",
                "-c",
                "mkdir -p /tmp/cd && printf '#!/bin/sh\\ntouch /ran-$1\\n' > /tmp/cd/stop \
                 && cp /tmp/cd/stop /tmp/cd/hello && chmod 755 /tmp/cd/stop /tmp/cd/hello \
                 && chown -R 65534 /tmp/cd && test -x /chroot.d/stop",
            ],
        ));
        let o = ns.run_in(&root, &["hello"]);
        assert_eq!(code(&o), 125, "{how:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("not run"), "{how:?}: {}", stderr(&o));
        let o = ns.run(&["off", "-d", &r]);
        ok(&o);
        assert!(
            stderr(&o).contains("stop:") && stderr(&o).contains("not run"),
            "{how:?}: {}",
            stderr(&o)
        );
        assert!(ns.mounts_under(&root).is_empty());
        let ran: Vec<_> = fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("ran"))
            .collect();
        assert!(ran.is_empty(), "{how:?}: {ran:?}");
    }
    // Right before a program runs, a chroot.d (or an entry) leading nowhere
    // at that moment (renamed away for a moment by whoever may) is refused,
    // not taken for nothing to check; `on` is not that strict.
    let root = ns.busybox_root("gone");
    fs::remove_dir_all(root.join("chroot.d")).unwrap();
    symlink("tmp/nowhere", root.join("chroot.d")).unwrap();
    assert!(chroot_tool::sandbox::control_refusal(&root).is_none());
    let refusal = |program: &str| {
        chroot_tool::sandbox::program_check(&root, Root::Path, program.as_ref())
            .err()
            .unwrap_or_default()
    };
    let why = refusal("hello");
    assert!(why.contains("not found where it leads"), "{why}");
    fs::remove_file(root.join("chroot.d")).unwrap();
    fs::create_dir(root.join("chroot.d")).unwrap();
    symlink("../tmp/nowhere", root.join("chroot.d/hello")).unwrap();
    assert!(chroot_tool::sandbox::control_refusal(&root).is_none());
    let why = refusal("hello");
    assert!(why.contains("not found where it leads"), "{why}");
    // Only the program about to run must be there: another entry leading
    // nowhere, or in a loop, holds nothing to read and blocks nothing.
    assert_eq!(refusal("other"), "", "a dangling sibling");
    symlink("loop", root.join("chroot.d/loop")).unwrap();
    assert!(chroot_tool::sandbox::control_refusal(&root).is_none());
    assert!(
        refusal("loop").contains("too many symlinks"),
        "{}",
        refusal("loop")
    );
    assert_eq!(refusal("other"), "", "a loop beside it");
    fs::remove_file(root.join("chroot.d/loop")).unwrap();
    // An entry that leads, through a symlink in a directory anyone may
    // write, to a file of root's: whoever may write there could swap that
    // symlink between the look and the run. Every directory a name is
    // looked up in counts, not only those where the path ends.
    fs::remove_file(root.join("chroot.d/hello")).unwrap();
    fs::create_dir_all(root.join("tmp")).unwrap();
    fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    symlink("/bin/busybox", root.join("tmp/x")).unwrap();
    symlink("/tmp/x", root.join("chroot.d/hello")).unwrap();
    // Refused whichever program runs: the one about to run may read or run
    // its neighbours.
    for program in ["hello", "other"] {
        let why = refusal(program);
        assert!(
            why.contains(&format!("{}/tmp: writable by group or others", d(&root))),
            "{program}: {why}"
        );
    }
    // End to end: a program of root's runs beside a dangling entry and a
    // loop (`on`, `run NAME`, `off`); the dangling one itself is refused.
    let root = ns.busybox_root("beside");
    let r = d(&root).to_string();
    script(&root.join("chroot.d/hello"), "#!/bin/sh\necho hello-ran\n");
    symlink("/opt/removed", root.join("chroot.d/old")).unwrap();
    symlink("loop", root.join("chroot.d/loop")).unwrap();
    ok(&ns.run(&["on", "-d", &r]));
    let o = ns.run_in(&root, &["hello"]);
    ok(&o);
    assert!(stdout(&o).contains("hello-ran"), "{}", stderr(&o));
    let o = ns.run_in(&root, &["old"]);
    assert_ne!(code(&o), 0, "{}", stderr(&o));
    ok(&ns.run(&["off", "-d", &r]));
    assert!(ns.mounts_under(&root).is_empty());
}

/// What `on` reads and runs as root from chroot.d is root's alone, along
/// the whole way to it: a chroot.d that is a symlink to a directory a user
/// owns, an entry that is a symlink to a user's file, a chroot.d below a
/// directory a user owns (who could swap its name) are refused before
/// anything is mounted; root's again, `on` works. A DIR a user made for
/// `create` is taken by root before anything is made in it.
#[test]
fn what_on_reads_from_chroot_d_is_roots_alone_all_the_way() {
    let ns = Ns::new();
    type Setup = fn(&Path);
    let cases: [(&str, Setup, &str); 4] = [
        (
            "an entry of a symlinked chroot.d a user's",
            |r| {
                fs::rename(r.join("chroot.d"), r.join("etc/cd")).unwrap();
                symlink("etc/cd", r.join("chroot.d")).unwrap();
                fs::write(r.join("etc/cd/build"), "#!/bin/sh\n").unwrap();
                std::os::unix::fs::chown(r.join("etc/cd/build"), Some(65534), None).unwrap();
            },
            "etc/cd/build",
        ),
        (
            "chroot.d a symlink to a user's directory",
            |r| {
                fs::rename(r.join("chroot.d"), r.join("etc/cd")).unwrap();
                symlink("etc/cd", r.join("chroot.d")).unwrap();
                std::os::unix::fs::chown(r.join("etc/cd"), Some(65534), None).unwrap();
            },
            "etc/cd",
        ),
        (
            "tool.conf a symlink to a user's file",
            |r| {
                fs::create_dir_all(r.join("home/u")).unwrap();
                fs::write(r.join("home/u/tc"), "# mine\n").unwrap();
                std::os::unix::fs::chown(r.join("home/u/tc"), Some(65534), None).unwrap();
                let _ = fs::remove_file(r.join("chroot.d/tool.conf"));
                symlink("../home/u/tc", r.join("chroot.d/tool.conf")).unwrap();
            },
            "home/u/tc",
        ),
        (
            "chroot.d below a user's directory",
            |r| {
                fs::create_dir_all(r.join("home/u")).unwrap();
                fs::rename(r.join("chroot.d"), r.join("home/u/cd")).unwrap();
                symlink("home/u/cd", r.join("chroot.d")).unwrap();
                std::os::unix::fs::chown(r.join("home/u"), Some(65534), None).unwrap();
            },
            "home/u",
        ),
    ];
    for (i, (what, setup, named)) in cases.into_iter().enumerate() {
        let root = ns.busybox_root(&format!("sb{i}"));
        setup(&root);
        let o = ns.run(&["on", "-d", d(&root)]);
        assert_ne!(code(&o), 0, "{what}");
        let e = stderr(&o);
        assert!(
            e.contains(&format!("{}/{named}: owned by uid 65534", d(&root))),
            "{what}: {e}"
        );
        assert!(ns.mounts_under(&root).is_empty(), "{what}");
        ok(&ns.sh(&format!("chown -R 0:0 '{}'", d(&root))));
        ok(&ns.run(&["on", "-d", d(&root)]));
        ok(&ns.run(&["off", "-d", d(&root)]));
    }
    // A DIR a user made for create: root's before anything is in it.
    let base = ns.busybox_root("base");
    let file = ns.tmp.path().join("sb.tar");
    ok(&ns.run(&["pack", "-q", "-d", d(&base), "-o", d(&file)]));
    for (name, args) in [
        ("ov", vec!["--overlay", d(&base)]),
        ("copy", vec!["--from", d(&file)]),
    ] {
        let dir = ns.tmp.path().join(name);
        fs::create_dir(&dir).unwrap();
        ok(&ns.sh(&format!(
            "chown 65534 '{p}' && chmod 0777 '{p}'",
            p = d(&dir)
        )));
        let mut a = vec!["create", "-q", "-d", d(&dir)];
        a.extend(args);
        ok(&ns.run(&a));
        let m = fs::metadata(&dir).unwrap();
        assert_eq!((m.uid(), m.mode() & 0o022), (0, 0), "{name}");
        assert_eq!(
            fs::metadata(dir.join("chroot.d")).unwrap().uid(),
            0,
            "{name}"
        );
    }
}

/// The check of a program of chroot.d walks name by name from the
/// directory it is in, whatever the depth: a program of root's reached
/// through symlinks at a path longer than PATH_MAX (as the kernel reaches
/// it) runs; the same program a user's, or below a directory anyone may
/// write that deep, is refused and named.
#[test]
fn a_program_of_chroot_d_beyond_path_max_is_checked_all_the_way() {
    use nix::fcntl::{open, openat, OFlag};
    use nix::sys::stat::{fchmodat, mkdirat, FchmodatFlags, Mode};
    use std::os::fd::OwnedFd;
    let ns = Ns::new();
    let root = ns.busybox_root("deep");
    let r = d(&root).to_string();
    // /deep/l1 -> d00/…/d11 and, there, l2 -> d12/…/d24/prog: 25 levels
    // of 200-byte names, 5025 bytes in all; each symlink well below
    // PATH_MAX. Made through descriptors: no path that long is ever named.
    let name = |i: usize| format!("d{i:02}{}", "x".repeat(197));
    fs::create_dir(root.join("deep")).unwrap();
    let dir_flags = OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let mut dirs: Vec<OwnedFd> = vec![open(&root.join("deep"), dir_flags, Mode::empty()).unwrap()];
    for i in 0..25 {
        let at = dirs.last().unwrap();
        mkdirat(at, name(i).as_str(), Mode::from_bits_truncate(0o755)).unwrap();
        dirs.push(openat(at, name(i).as_str(), dir_flags, Mode::empty()).unwrap());
    }
    let first: Vec<String> = (0..12).map(name).collect();
    let rest: Vec<String> = (12..25).map(name).collect();
    symlink(first.join("/"), root.join("deep/l1")).unwrap();
    nix::unistd::symlinkat(format!("{}/prog", rest.join("/")).as_str(), &dirs[12], "l2").unwrap();
    let prog = openat(
        dirs.last().unwrap(),
        "prog",
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o755),
    )
    .unwrap();
    nix::unistd::write(&prog, b"#!/bin/sh\necho deep-ran\n").unwrap();
    drop(prog);
    fchmodat(
        dirs.last().unwrap(),
        "prog",
        Mode::from_bits_truncate(0o755),
        FchmodatFlags::FollowSymlink,
    )
    .unwrap();
    symlink("/deep/l1/l2", root.join("chroot.d/hello")).unwrap();
    let refusal = || {
        chroot_tool::sandbox::program_check(&root, Root::Path, "hello".as_ref())
            .err()
            .unwrap_or_default()
    };
    assert_eq!(refusal(), "", "root's all the way");
    ok(&ns.run(&["on", "-d", &r]));
    let o = ns.run_in(&root, &["hello"]);
    ok(&o);
    assert!(stdout(&o).contains("deep-ran"), "{}", stderr(&o));
    // The program a user's.
    nix::unistd::fchownat(
        dirs.last().unwrap(),
        "prog",
        Some(nix::unistd::Uid::from_raw(65534)),
        None,
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .unwrap();
    let why = refusal();
    assert!(why.contains("/prog: owned by uid 65534"), "{why}");
    let o = ns.run_in(&root, &["hello"]);
    assert_eq!(code(&o), 125, "{}", stderr(&o));
    assert!(!stdout(&o).contains("deep-ran"));
    // Root's again, below a directory anyone may write, 20 levels down.
    nix::unistd::fchownat(
        dirs.last().unwrap(),
        "prog",
        Some(nix::unistd::Uid::from_raw(0)),
        None,
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .unwrap();
    assert_eq!(refusal(), "");
    fchmodat(
        &dirs[19],
        name(19).as_str(),
        Mode::from_bits_truncate(0o777),
        FchmodatFlags::FollowSymlink,
    )
    .unwrap();
    // (A path that long is shown shortened.)
    let why = refusal();
    assert!(why.ends_with("x: writable by group or others"), "{why}");
    let o = ns.run_in(&root, &["hello"]);
    assert_eq!(code(&o), 125, "{}", stderr(&o));
    ok(&ns.run(&["off", "-d", &r]));
    assert!(ns.mounts_under(&root).is_empty());
}

/// The check of a program of chroot.d follows the ways the program and
/// its neighbours are really reached, in the view they run in:
/// - a mount of the run's own (`-m`) over a directory on the way, over
///   chroot.d itself, where a neighbour leads but nothing is yet, or as a
///   new entry of chroot.d, is refused (the program would be found on what
///   it shows), in the host's mount namespace and through a holder; one
///   elsewhere is not, nor a neighbour leading to /dev/null;
/// - a neighbour reached through a symlinked chroot.d by a chain of 39
///   links (40 with chroot.d's own) into a directory anyone may write is
///   refused: the program reaches it as `./NAME`, with 39;
/// - a neighbour that leads through a link of /proc (a process's root) is
///   refused, whatever its text says;
/// - a way that only passes through a directory anyone may write with
///   `..` is not refused (nothing is looked up in it).
#[test]
fn a_program_of_chroot_d_is_checked_as_it_is_reached() {
    use std::os::unix::fs::PermissionsExt;
    let ns = Ns::new();
    let _h = common::Holders(ns.run_dir.join("holder"));
    let user_dir = |name: &str, script_text: &str| {
        let u = ns.tmp.path().join(name);
        fs::create_dir_all(&u).unwrap();
        script(&u.join("build"), script_text);
        std::os::unix::fs::chown(&u, Some(65534), None).unwrap();
        std::os::unix::fs::chown(u.join("build"), Some(65534), None).unwrap();
        d(&u).to_string()
    };
    let evil = user_dir("u", "#!/bin/sh\ntouch /ran-evil\necho evil-ran\n");
    for (i, how) in [&[][..], &["--ns", "pid"][..]].into_iter().enumerate() {
        let root = ns.busybox_root(&format!("m{i}"));
        let r = d(&root).to_string();
        fs::create_dir_all(root.join("opt/tools")).unwrap();
        fs::create_dir_all(root.join("srv")).unwrap();
        script(&root.join("opt/tools/build"), "#!/bin/sh\necho root-ran\n");
        symlink("/opt/tools/build", root.join("chroot.d/build")).unwrap();
        // A neighbour leading where nothing is yet, and one that is a
        // directory elsewhere.
        symlink("/opt/a/b/evil", root.join("chroot.d/helper")).unwrap();
        fs::create_dir_all(root.join("opt/lib")).unwrap();
        symlink("/opt/lib", root.join("chroot.d/lib")).unwrap();
        // The program's own descriptor: no refusal, with a pid namespace
        // of the holder's too (where the check's /proc/self leads nowhere).
        symlink("/dev/stderr", root.join("chroot.d/err")).unwrap();
        let mut on = vec!["on", "-d", &r];
        on.extend_from_slice(how);
        ok(&ns.run(&on));
        let file = format!("{evil}/build");
        for m in [
            format!("{evil}:/opt/tools"),
            format!("{evil}:/opt"),
            format!("{evil}:/chroot.d"),
            // Where the check found nothing, two levels down, or a new
            // entry of chroot.d.
            format!("{evil}:/opt/a/b"),
            format!("{evil}:/opt/a"),
            format!("{file}:/chroot.d/plugin"),
            // In the directory a neighbour leads to (`./lib/x`).
            format!("{file}:/opt/lib/helper"),
        ] {
            let o = ns.run_in(&root, &["-m", &m, "build"]);
            assert_eq!(code(&o), 125, "{how:?} {m}: {}", stderr(&o));
            assert!(
                stderr(&o).contains("not run"),
                "{how:?} {m}: {}",
                stderr(&o)
            );
            assert!(!stdout(&o).contains("evil-ran"), "{how:?} {m}");
        }
        // Refused before anything was made for those mounts, nor for the
        // run's other mounts, before or after the one refused.
        for (one, two) in [
            (
                format!("{evil}:/srv/new/deep"),
                format!("{evil}:/opt/tools"),
            ),
            (format!("{evil}:/srv/new"), format!("{evil}:/opt/a/b")),
            (format!("{evil}:/opt/a"), format!("{evil}:/srv/new")),
        ] {
            let o = ns.run_in(&root, &["-m", &one, "-m", &two, "build"]);
            assert_eq!(code(&o), 125, "{how:?} {one} {two}: {}", stderr(&o));
            assert!(!root.join("srv/new").exists(), "{how:?} {one} {two}");
        }
        // Nor through `..` after a part still to be made, nor when a later
        // mount fails for another reason (targets one in the other, a
        // source that is not there).
        symlink("/newg/../chroot.d", root.join("dl")).unwrap();
        for args in [
            vec!["-m".to_string(), format!("{evil}:/newx/../chroot.d")],
            vec!["-m".to_string(), format!("{evil}:/dl")],
            vec![
                "-m".to_string(),
                format!("{evil}:/newa/x"),
                "-m".to_string(),
                format!("{evil}:/newa"),
            ],
            vec![
                "-m".to_string(),
                format!("{evil}:/newb"),
                "-m".to_string(),
                "/no/such/source:/newc".to_string(),
            ],
        ] {
            let mut a: Vec<&str> = args.iter().map(String::as_str).collect();
            a.push("build");
            let o = ns.run_in(&root, &a);
            assert_eq!(code(&o), 125, "{how:?} {args:?}: {}", stderr(&o));
        }
        fs::remove_file(root.join("dl")).unwrap();
        // A command that never starts (its working directory missing, or
        // not there itself) leaves nothing made either; one that ran
        // keeps its targets.
        let m = format!("{evil}:/newd");
        let o = ns.run_in(&root, &["-m", &m, "-w", "/no/such/dir", "--", "/bin/true"]);
        assert_eq!(code(&o), 125, "{how:?}: {}", stderr(&o));
        let o = ns.run_in(&root, &["-m", &m, "--", "/no/such/program"]);
        assert_eq!(code(&o), 127, "{how:?}: {}", stderr(&o));
        assert!(!root.join("newd").exists(), "{how:?}");
        ok(&ns.run_in(&root, &["-m", &m, "--", "/bin/true"]));
        assert!(root.join("newd").is_dir(), "{how:?}");
        fs::remove_dir(root.join("newd")).unwrap();
        for left in ["newx", "newg", "newa", "newb", "newc"] {
            assert!(!root.join(left).exists(), "{how:?}: {left} left");
        }
        assert!(!root.join("opt/a").exists(), "{how:?}");
        assert!(!root.join("chroot.d/plugin").exists(), "{how:?}");
        let m = format!("{evil}:/srv");
        let o = ns.run_in(&root, &["-m", &m, "build"]);
        ok(&o);
        assert!(stdout(&o).contains("root-ran"), "{how:?}: {}", stderr(&o));
        // Through the program's own /proc/self to its root, then the 1777
        // /tmp: refused, whether the check can follow /proc/self or not.
        symlink("/proc/self/root/tmp/evil", root.join("chroot.d/own")).unwrap();
        let o = ns.run_in(&root, &["build"]);
        assert_eq!(code(&o), 125, "{how:?}: {}", stderr(&o));
        fs::remove_file(root.join("chroot.d/own")).unwrap();
        ok(&ns.run(&["off", "-d", &r]));
        assert!(!root.join("ran-evil").exists(), "{how:?}");
        assert!(ns.mounts_under(&root).is_empty());
    }

    // A chain of links outside chroot.d, reached from a symlinked chroot.d.
    let root = ns.busybox_root("chain");
    let r = d(&root).to_string();
    fs::remove_dir_all(root.join("chroot.d")).unwrap();
    fs::create_dir_all(root.join("etc/real.d")).unwrap();
    fs::create_dir_all(root.join("etc/chain")).unwrap();
    symlink("etc/real.d", root.join("chroot.d")).unwrap();
    script(
        &root.join("etc/real.d/main"),
        "#!/bin/sh\n./helper 2>/dev/null; echo main-ran\n",
    );
    symlink("../chain/c1", root.join("etc/real.d/helper")).unwrap();
    for i in 1..39 {
        symlink(format!("c{}", i + 1), root.join(format!("etc/chain/c{i}"))).unwrap();
    }
    symlink("/tmp/evil", root.join("etc/chain/c39")).unwrap();
    ok(&ns.run(&["on", "-d", &r]));
    fs::write(root.join("tmp/evil"), "#!/bin/sh\ntouch /ran-evil\n").unwrap();
    fs::set_permissions(root.join("tmp/evil"), fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::chown(root.join("tmp/evil"), Some(65534), None).unwrap();
    let o = ns.run_in(&root, &["main"]);
    assert_eq!(code(&o), 125, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("/tmp: writable by group or others"),
        "{}",
        stderr(&o)
    );
    ok(&ns.run(&["off", "-d", &r]));
    assert!(!root.join("ran-evil").exists());

    // Links of /proc, and `..` through /tmp.
    let root = ns.busybox_root("proc");
    let r = d(&root).to_string();
    fs::create_dir_all(root.join("opt/t")).unwrap();
    script(&root.join("opt/t/p"), "#!/bin/sh\necho p-ran\n");
    symlink("/tmp/../opt/t/p", root.join("chroot.d/p")).unwrap();
    ok(&ns.run(&["on", "-d", &r]));
    let o = ns.run_in(&root, &["p"]);
    ok(&o);
    assert!(stdout(&o).contains("p-ran"), "{}", stderr(&o));
    for link in [
        "/proc/self/root/opt/t/p",
        "/proc/1/cwd/x",
        "/proc/1/fd/0",
        // Past the program's own descriptor: what it leads to is unknown.
        "/proc/self/fd/1/x",
    ] {
        let _ = fs::remove_file(root.join("chroot.d/helper"));
        symlink(link, root.join("chroot.d/helper")).unwrap();
        let o = ns.run_in(&root, &["p"]);
        assert_eq!(code(&o), 125, "{link}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("a link of /proc, which leads where its text does not say"),
            "{link}: {}",
            stderr(&o)
        );
    }
    // /proc/self itself is a plain link: what it leads to is looked at.
    fs::remove_file(root.join("chroot.d/helper")).unwrap();
    symlink("/proc/self/status", root.join("chroot.d/helper")).unwrap();
    ok(&ns.run_in(&root, &["p"]));
    // A neighbour leading to /dev/null or /dev/zero (writable by all,
    // carrying nothing) is no refusal; one to the terminal is.
    for (dev, refused) in [
        ("/dev/null", false),
        ("/dev/zero", false),
        // The program's own descriptor (/proc/self/fd/2).
        ("/dev/stderr", false),
        ("/dev/tty", true),
    ] {
        fs::remove_file(root.join("chroot.d/helper")).unwrap();
        symlink(dev, root.join("chroot.d/helper")).unwrap();
        let o = ns.run_in(&root, &["p"]);
        let want = if refused { 125 } else { 0 };
        assert_eq!(code(&o), want, "{dev}: {}", stderr(&o));
    }
    ok(&ns.run(&["off", "-d", &r]));
    assert!(ns.mounts_under(&root).is_empty());
}

/// The check of a program of chroot.d looks at the root the program will
/// be chrooted into, as it is held open, never at DIR's path again (which
/// whoever may rename a directory above DIR could lead to another tree
/// meanwhile): with the path leading to a clean tree and the held root a
/// tree whose program leads into a 1777 directory, the held one decides.
#[test]
fn a_program_of_chroot_d_is_checked_in_the_root_it_runs_in() {
    use std::os::fd::AsFd;
    use std::os::unix::fs::PermissionsExt;
    let ns = Ns::new();
    let real = ns.busybox_root("real");
    let decoy = ns.busybox_root("decoy");
    for r in [&real, &decoy] {
        fs::create_dir_all(r.join("tmp")).unwrap();
    }
    fs::set_permissions(real.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    symlink("/tmp/go", real.join("chroot.d/go")).unwrap();
    script(&decoy.join("chroot.d/go"), "#!/bin/sh\n");
    let held = chroot_tool::sys::open_root(&real).unwrap();
    let why = chroot_tool::sandbox::program_check(&decoy, Root::Held(held.as_fd()), "go".as_ref())
        .err()
        .unwrap_or_default();
    assert!(why.contains("writable by group or others"), "{why}");
    let looked = chroot_tool::sandbox::program_check(&decoy, Root::Path, "go".as_ref());
    let looked = looked.expect("the path alone leads to the clean tree");
    // What the command is then chrooted into must be the root checked.
    let again = chroot_tool::sys::open_root(&decoy).unwrap();
    assert!(looked.walked(again.as_fd()));
    assert!(!looked.walked(held.as_fd()));
}

/// Root refuses a sandbox that lies in a directory another user may
/// rename things in (or below one): that user could swap the tree between
/// the steps of `on` (tool.conf read from one tree, chroot.d checked and
/// mounts made in another). A sticky directory (1777) is fine when DIR's
/// name in it is root's; a directory of the user who ran sudo is theirs.
#[test]
fn root_refuses_a_sandbox_another_user_may_swap() {
    use std::os::unix::fs::PermissionsExt;
    let ns = Ns::new();
    // `on` of `root` refused for `why`, nothing mounted.
    let refused = |root: &Path, why: &str| {
        let o = ns.run(&["on", "-d", d(root)]);
        assert_eq!(code(&o), 1, "{why}: {}", stderr(&o));
        assert!(stderr(&o).contains(why), "{why}: {}", stderr(&o));
        assert!(ns.mounts_under(root).is_empty());
    };
    let users = ns.tmp.path().join("users");
    fs::create_dir_all(&users).unwrap();
    std::os::unix::fs::chown(&users, Some(65534), None).unwrap();
    let root = make_root_in(&users, "sb");
    let r = d(&root).to_string();
    refused(&root, "uid 65534 may rename it");
    // `create` writes the whole tree by DIR's path: refused there too,
    // before anything is made (a plain create and a clone alike).
    let base = ns.busybox_root("base");
    for how in [&[][..], &["--from", &r][..], &["--overlay", d(&base)][..]] {
        let new = users.join("new");
        let mut args = vec!["create", "-d", d(&new)];
        args.extend_from_slice(how);
        let o = ns.run(&args);
        assert_eq!(code(&o), 1, "{how:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("uid 65534 may rename"),
            "{how:?}: {}",
            stderr(&o)
        );
        assert!(!new.exists(), "{how:?}");
    }
    // The directories a create makes on the way to DIR are root's 0755
    // whatever the umask (with 000 anyone could rename DIR away; with 002
    // `on` would refuse the sandbox just made); `..` in the part still to
    // be made, and a dangling symlink as DIR, are refused, nothing made.
    let src = ns.busybox_root("src");
    for mask in ["000", "002"] {
        let top = ns.tmp.path().join(format!("u{mask}"));
        let sb = top.join("mid/sb");
        ok(&ns.sh(&format!(
            "umask {mask} && exec {} create -q --from '{}' -d '{}'",
            common::BIN,
            d(&src),
            d(&sb)
        )));
        for made in [&top, &top.join("mid")] {
            let m = fs::metadata(made).unwrap();
            assert_eq!((m.uid(), m.mode() & 0o7777), (0, 0o755), "{mask}");
        }
        ok(&ns.run(&["on", "-d", d(&sb)]));
        ok(&ns.run(&["off", "-d", d(&sb)]));
    }
    let o = ns.run(&[
        "create",
        "-q",
        "--from",
        d(&src),
        "-d",
        &format!("{}/x/../y", d(ns.tmp.path())),
    ]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("`..`"), "{}", stderr(&o));
    assert!(!ns.tmp.path().join("x").exists() && !ns.tmp.path().join("y").exists());
    // Root's own dangling link leads where it says (made there); one of
    // another user's is refused before anything is made.
    let dangling = ns.tmp.path().join("dangling");
    std::os::unix::fs::symlink(ns.tmp.path().join("nowhere"), &dangling).unwrap();
    ok(&ns.run(&["create", "-q", "--from", d(&src), "-d", d(&dangling)]));
    assert!(ns.tmp.path().join("nowhere/bin/sh").exists());
    let theirs_dangling = ns.tmp.path().join("theirs-dangling");
    std::os::unix::fs::symlink(ns.tmp.path().join("elsewhere"), &theirs_dangling).unwrap();
    std::os::unix::fs::lchown(&theirs_dangling, Some(65534), None).unwrap();
    let o = ns.run(&["create", "-q", "--from", d(&src), "-d", d(&theirs_dangling)]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(!ns.tmp.path().join("elsewhere").exists());
    // A symlink on DIR's path as given decides which directory that is:
    // another user's is refused (for on and for create), root's in a
    // sticky directory is fine. (A sticky directory not world-writable:
    // the kernel's protected_symlinks would refuse to follow the user's
    // link in a world-writable one before the tool is asked.)
    let links = ns.tmp.path().join("links");
    fs::create_dir(&links).unwrap();
    fs::set_permissions(&links, fs::Permissions::from_mode(0o1770)).unwrap();
    let good = make_root_in(ns.tmp.path(), "good");
    let theirs = links.join("theirs");
    std::os::unix::fs::symlink(&good, &theirs).unwrap();
    std::os::unix::fs::lchown(&theirs, Some(65534), None).unwrap();
    refused(&theirs, "symbolic link of uid 65534");
    // Written with a trailing slash, or `/.`, the same.
    refused(
        Path::new(&format!("{}/", d(&theirs))),
        "symbolic link of uid 65534",
    );
    refused(&theirs.join("."), "symbolic link of uid 65534");
    // Also when root's own link leads through theirs.
    let chain = ns.tmp.path().join("chain");
    std::os::unix::fs::symlink(&theirs, &chain).unwrap();
    refused(&chain, "symbolic link of uid 65534");
    let empty = ns.tmp.path().join("empty");
    fs::create_dir(&empty).unwrap();
    let to_empty = links.join("to-empty");
    std::os::unix::fs::symlink(&empty, &to_empty).unwrap();
    std::os::unix::fs::lchown(&to_empty, Some(65534), None).unwrap();
    let o = ns.run(&["create", "-q", "--from", d(&good), "-d", d(&to_empty)]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("symbolic link of uid 65534"),
        "{}",
        stderr(&o)
    );
    assert_eq!(fs::read_dir(&empty).unwrap().count(), 0);
    let ours = links.join("ours");
    std::os::unix::fs::symlink(&good, &ours).unwrap();
    ok(&ns.run(&["on", "-d", d(&ours)]));
    // On, too: their link is no way to it (run, destroy...).
    let o = ns.run(&["run", "-d", d(&theirs), "--", "/bin/true"]);
    assert_eq!(code(&o), 125, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("symbolic link of uid 65534"),
        "{}",
        stderr(&o)
    );
    let o = ns.run(&["destroy", "--yes", "-d", d(&theirs)]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(good.join("bin/sh").exists());
    ok(&ns.run(&["off", "-d", d(&ours)]));
    // A create refused for a DIR that is not empty leaves it as it was
    // (never made root's, nor shut).
    let full = ns.tmp.path().join("full");
    fs::create_dir(&full).unwrap();
    fs::write(full.join("notes"), "mine").unwrap();
    std::os::unix::fs::chown(&full, Some(65534), Some(65534)).unwrap();
    fs::set_permissions(&full, fs::Permissions::from_mode(0o2775)).unwrap();
    let o = ns.run(&["create", "-q", "--from", d(&good), "-d", d(&full)]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("not empty"), "{}", stderr(&o));
    let m = fs::metadata(&full).unwrap();
    assert_eq!((m.uid(), m.mode() & 0o7777), (65534, 0o2775));
    // An empty DIR already there, root's, in the user's directory.
    let there = users.join("there");
    fs::create_dir(&there).unwrap();
    let o = ns.run(&["create", "-d", d(&there)]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("uid 65534 may rename it"),
        "{}",
        stderr(&o)
    );
    assert_eq!(fs::read_dir(&there).unwrap().count(), 0);
    // The same directory, the sudo user's own.
    let o = common::output_within(
        ns.tool().args(["on", "-d", &r]).env("SUDO_UID", "65534"),
        common::DEADLINE,
    );
    ok(&o);
    // On, it is asked again for anything but off and status: being on is
    // no pass (the user could swap their tree in between).
    let o = ns.run(&["run", "-d", &r, "--", "/bin/true"]);
    assert_eq!(code(&o), 125, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("uid 65534 may rename it"),
        "{}",
        stderr(&o)
    );
    ok(&ns.run(&["status", "-d", &r]));
    ok(&ns.run(&["off", "-d", &r]));
    // A root-owned directory others may write: sticky, fine; not, refused.
    let shared = ns.tmp.path().join("shared");
    fs::create_dir_all(&shared).unwrap();
    let root = make_root_in(&shared, "sb");
    let r = d(&root).to_string();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o1777)).unwrap();
    ok(&ns.run(&["on", "-d", &r]));
    ok(&ns.run(&["off", "-d", &r]));
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o777)).unwrap();
    refused(&root, "anyone in its group or all");
    // Sticky, but DIR's own name a user's: that user may rename it.
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o1777)).unwrap();
    std::os::unix::fs::chown(&root, Some(65534), None).unwrap();
    refused(&root, "uid 65534 may rename it");
    // A name on the way that cannot be looked at (renamed away for a
    // moment) is refused, never taken for nothing to refuse.
    let gone = ns.tmp.path().join("gone/sb");
    let why = chroot_tool::sandbox::ancestry_refusal(&gone).unwrap_or_default();
    assert!(why.contains("cannot be looked at"), "{why}");
}

/// A busybox rootfs at `parent/name`.
fn make_root_in(parent: &Path, name: &str) -> PathBuf {
    let dir = parent.join(name);
    common::make_busybox_root(&dir);
    dir
}
