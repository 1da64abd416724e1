//! Overlay sandboxes (`create --overlay BASE`: on mounts the merged view,
//! writes land in the upper layer only, off leaves DIR as it was, pack
//! flattens it, destroy never touches BASE) and ephemeral runs (`run
//! --ephemeral`: the run's writes go to a throw-away overlay), in chroot
//! and holder modes, and the attacks on the layout: a BASE path overlayfs
//! options could not spell, a BASE swapped after create, an upper layer
//! replaced by a symlink.
mod common;

use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use common::{code, d, finish_within, ok, output_within, stderr, stdout, wait_until, Ns, DEADLINE};

/// Every path below `dir` (not crossing into another filesystem) with its
/// kind, size and content digest: what must not change.
fn tree(dir: &Path) -> Vec<String> {
    let o = std::process::Command::new("sh")
        .arg("-c")
        .arg(
            "cd \"$1\" && find . -xdev | LC_ALL=C sort | while read -r p; do \
             if [ -f \"$p\" ] && [ ! -L \"$p\" ]; then echo \"$p $(md5sum < \"$p\")\"; \
             else echo \"$p $(stat -c %F \"$p\")\"; fi; done",
        )
        .arg("sh")
        .arg(dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

/// The names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// A busybox base with a file to delete and a chroot.d of its own.
fn base(ns: &Ns, name: &str) -> PathBuf {
    let b = ns.busybox_root(name);
    fs::write(b.join("etc/hello"), "from the base\n").unwrap();
    fs::write(b.join("chroot.d/tool.conf"), "# the base's\n").unwrap();
    b
}

/// `on` of BASE, refused because an overlay over it is on, with nothing
/// mounted; what it said.
#[track_caller]
fn base_on_refused(ns: &Ns, b: &Path, how: &[&str]) -> String {
    let mut args = vec!["on", "-d", d(b)];
    args.extend_from_slice(how);
    let o = ns.run(&args);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("base of overlay sandboxes that are on"),
        "{}",
        stderr(&o)
    );
    assert_eq!(ns.mounts_under(b), Vec::<String>::new());
    stderr(&o)
}

/// A base, and an overlay sandbox over it at `p/ov`: (base, p, ov).
fn overlay_in_a_dir(ns: &Ns) -> (PathBuf, PathBuf, PathBuf) {
    let b = base(ns, "base");
    let parent = ns.tmp.path().join("p");
    fs::create_dir(&parent).unwrap();
    let ov = parent.join("ov");
    create_overlay(ns, &b, &ov);
    (b, parent, ov)
}

fn create_overlay(ns: &Ns, base: &Path, dir: &Path) -> String {
    ok(&ns.run(&["create", "-q", "--overlay", d(base), "-d", d(dir)]))
}

#[test]
fn overlay_writes_go_to_the_upper_layer_and_off_leaves_dir_as_it_was() {
    let ns = Ns::new();
    let b = base(&ns, "base");
    let base_before = tree(&b);
    let dir = ns.tmp.path().join("ov");
    create_overlay(&ns, &b, &dir);
    assert_eq!(names(&dir), [".chroot-tool", "chroot.d"]);
    assert_eq!(names(&dir.join("chroot.d")), ["overlay.toml", "tool.conf"]);
    assert!(names(&dir.join(".chroot-tool/upper")).is_empty());
    let off_view = tree(&dir);

    ok(&ns.run(&["on", "-d", d(&dir)]));
    assert_eq!(ns.state(&dir), "on");
    let st = ok(&ns.run(&["status", "-d", d(&dir)]));
    assert!(st.contains(&format!("overlay over: {}\n", d(&b))), "{st}");
    let mi = ns.mountinfo();
    let top = mi
        .lines()
        .find(|l| l.split(' ').nth(4) == Some(d(&dir)))
        .expect("a mount at DIR");
    assert!(top.contains(" - overlay chroot-tool "), "{top}");
    let out = ok(&ns.run_in(
        &dir,
        &[
            "--",
            "sh",
            "-c",
            "cat /etc/hello; echo x > /etc/marker; rm /etc/hello; echo own > /chroot.d/mine; \
             ls /chroot.d; ls -d /.chroot-tool 2>&1 || true",
        ],
    ));
    assert!(out.starts_with("from the base\n"), "{out}");
    assert!(out.contains("mine\noverlay.toml\ntool.conf\n"), "{out}");
    assert!(
        out.contains("No such file"),
        "the layers are out of sight: {out}"
    );
    // BASE is unchanged on disk while the overlay is on.
    assert_eq!(tree(&b), base_before);

    let off = ok(&ns.run(&["off", "-d", d(&dir)]));
    assert!(off.contains("is off"), "{off}");
    assert!(
        ns.mounts_under(&dir).is_empty(),
        "{:?}",
        ns.mounts_under(&dir)
    );
    assert!(ns.mounts_under(&b).is_empty());
    // One lock, named by DIR's own directory, whether the view covered it
    // (run, off) or not (create, on); and BASE's, which `on` held while it
    // looked at BASE and mounted the view.
    let own = fs::metadata(&dir).unwrap();
    let base_md = fs::metadata(&b).unwrap();
    let mut locks = vec![
        format!("{}-{}", own.dev(), own.ino()),
        format!("{}-{}", base_md.dev(), base_md.ino()),
    ];
    locks.sort();
    assert_eq!(names(&ns.run_dir.join("lock")), locks);
    // DIR shows its own entries again; the writes are in the upper layer,
    // the deleted base file a whiteout there, chroot.d the sandbox's own.
    assert_eq!(names(&dir), names_of(&off_view));
    let upper = dir.join(".chroot-tool/upper");
    assert_eq!(fs::read_to_string(upper.join("etc/marker")).unwrap(), "x\n");
    let wh = fs::symlink_metadata(upper.join("etc/hello")).unwrap();
    assert!(
        wh.file_type().is_char_device() && wh.rdev() == 0,
        "a whiteout"
    );
    assert_eq!(
        fs::read_to_string(dir.join("chroot.d/mine")).unwrap(),
        "own\n"
    );
    assert!(!upper.join("chroot.d/mine").exists());
    assert_eq!(tree(&b), base_before, "BASE unchanged");

    // On again: the writes are still there, the deleted file still gone.
    let out = ok(&ns.run_in(&dir, &["--", "sh", "-c", "cat /etc/marker; ls /etc"]));
    assert!(out.starts_with("x\n") && !out.contains("hello"), "{out}");
    ok(&ns.run(&["off", "-d", d(&dir)]));

    // Destroy: BASE in use refuses; the overlay goes and BASE stays whole.
    let o = ns.run(&["destroy", "-y", "-d", d(&b)]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("base of the overlay sandboxes"),
        "{}",
        stderr(&o)
    );
    assert_eq!(tree(&b), base_before);
    ok(&ns.run(&["destroy", "-y", "-d", d(&dir)]));
    assert!(!dir.exists());
    assert_eq!(
        tree(&b),
        base_before,
        "destroy of the overlay never touches BASE"
    );
    ok(&ns.run(&["destroy", "-y", "-d", d(&b)]));
}

/// The top-level names of a [`tree`] listing.
fn names_of(t: &[String]) -> Vec<String> {
    let mut v: Vec<String> = t
        .iter()
        .filter_map(|l| {
            let p = l.split(' ').next()?;
            let rest = p.strip_prefix("./")?;
            (!rest.contains('/')).then(|| rest.to_string())
        })
        .collect();
    v.sort();
    v
}

/// An overlay sandbox's view is never detached while something outside
/// holds it (a host shell's working directory in it): what that shell
/// wrote afterwards would go to an upper layer that the next `on` mounts a
/// second time. `off` fails naming DIR and leaves it mounted; once the
/// shell is gone, `off` and `on` work, with one overlay at DIR.
#[test]
fn off_leaves_a_held_overlay_mounted_and_names_it() {
    let ns = Ns::new();
    let b = base(&ns, "base");
    let dir = ns.tmp.path().join("ov");
    create_overlay(&ns, &b, &dir);
    let r = d(&dir).to_string();
    let overlays = || {
        ns.mountinfo()
            .lines()
            .filter(|l| l.split(' ').nth(4) == Some(r.as_str()) && l.contains(" - overlay "))
            .count()
    };
    ok(&ns.run(&["on", "-d", &r]));
    let holder = common::Reap(
        ns.cmd("sh")
            .args(["-c", &format!("cd {r}/etc && exec sleep 1000")])
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let comm = format!("/proc/{}/comm", holder.0.id());
    wait_until("the holder to sleep", || {
        fs::read_to_string(&comm).is_ok_and(|c| c.trim() == "sleep")
    });
    let o = ns.run(&["off", "--timeout", "0.2", "-d", &r]);
    assert_eq!(code(&o), 1, "off must fail: {}", stdout(&o));
    assert!(stderr(&o).contains(&r), "{}", stderr(&o));
    assert_eq!(overlays(), 1, "the held overlay stays mounted");
    drop(holder);
    ok(&ns.run(&["off", "-d", &r]));
    assert_eq!(overlays(), 0);
    ok(&ns.run(&["on", "-d", &r]));
    assert_eq!(overlays(), 1);
    ok(&ns.run(&["off", "-d", &r]));
    assert_eq!(overlays(), 0);
}

#[test]
fn two_overlays_over_one_base_are_independent() {
    let ns = Ns::new();
    let b = base(&ns, "base");
    let before = tree(&b);
    let (one, two) = (ns.tmp.path().join("one"), ns.tmp.path().join("two"));
    create_overlay(&ns, &b, &one);
    create_overlay(&ns, &b, &two);
    ok(&ns.run_in(
        &one,
        &["--", "sh", "-c", "echo one > /etc/who; rm /etc/hello"],
    ));
    ok(&ns.run_in(&two, &["--", "sh", "-c", "echo two > /etc/who"]));
    let a = ok(&ns.run_in(&one, &["--", "sh", "-c", "cat /etc/who; ls /etc"]));
    let b2 = ok(&ns.run_in(&two, &["--", "sh", "-c", "cat /etc/who; ls /etc"]));
    assert!(a.starts_with("one\n") && !a.contains("hello"), "{a}");
    assert!(b2.starts_with("two\n") && b2.contains("hello"), "{b2}");
    ok(&ns.run(&["off", "-d", d(&one)]));
    ok(&ns.run(&["off", "-d", d(&two)]));
    assert!(ns.mounts_under(ns.tmp.path()).is_empty());
    assert_eq!(tree(&b), before);
}

#[test]
fn overlay_of_the_debian_base() {
    let ns = Ns::new();
    let b = ns.debian_root("deb");
    let dir = ns.tmp.path().join("ov");
    create_overlay(&ns, &b, &dir);
    let used = fs::read_dir(dir.join(".chroot-tool/upper"))
        .unwrap()
        .count();
    assert_eq!(used, 0, "no disk used until written");
    let out = ok(&ns.run_in(
        &dir,
        &[
            "--",
            "sh",
            "-c",
            "dpkg-query -W -f '${Package}\\n' dpkg && echo x > /etc/marker && rm /usr/bin/yes \
             && mv /etc/debian_version /etc/debian_version.moved && command -v yes || echo gone",
        ],
    ));
    assert!(
        out.starts_with("dpkg\n") && out.ends_with("gone\n"),
        "{out}"
    );
    ok(&ns.run(&["off", "-d", d(&dir)]));
    assert!(ns.mounts_under(&dir).is_empty());
    assert!(b.join("usr/bin/yes").exists() && b.join("etc/debian_version").exists());
    assert!(!b.join("etc/marker").exists());
    let out = ok(&ns.run_in(
        &dir,
        &["--", "sh", "-c", "cat /etc/marker; ls /etc/debian_version*"],
    ));
    assert_eq!(out, "x\n/etc/debian_version.moved\n");
    ok(&ns.run(&["destroy", "-y", "-d", d(&dir)]));
    assert!(b.join("usr/bin/yes").exists());
}

/// The member names of a tar archive.
fn members(ns: &Ns, file: &Path) -> Vec<String> {
    let o = ns.sh(&format!("tar -tf '{}'", d(file)));
    ok(&o)
        .lines()
        .map(|l| l.trim_start_matches("./").trim_end_matches('/').to_string())
        .collect()
}

#[test]
fn pack_flattens_an_overlay_on_or_off() {
    let ns = Ns::new();
    let b = base(&ns, "base");
    let dir = ns.tmp.path().join("ov");
    create_overlay(&ns, &b, &dir);
    ok(&ns.run_in(
        &dir,
        &[
            "--",
            "sh",
            "-c",
            "echo x > /etc/marker; rm /etc/hello; mkdir -p /opt/d; echo y > /opt/d/f; \
             echo own > /chroot.d/mine",
        ],
    ));
    let on_tar = ns.tmp.path().join("on.tar");
    ok(&ns.run(&["pack", "-q", "-d", d(&dir), "-o", d(&on_tar)]));
    ok(&ns.run(&["off", "-d", d(&dir)]));
    let off_tar = ns.tmp.path().join("off.tar");
    ok(&ns.run(&["pack", "-q", "-d", d(&dir), "-o", d(&off_tar)]));
    assert!(ns.mounts_under(&dir).is_empty(), "pack leaves no mount");
    for t in [&on_tar, &off_tar] {
        let m = members(&ns, t);
        for want in [
            "bin/busybox",
            "etc/passwd",
            "etc/marker",
            "opt/d/f",
            "chroot.d/mine",
            "chroot.d/tool.conf",
        ] {
            assert!(
                m.iter().any(|n| n == want),
                "{want} in {}: {m:?}",
                t.display()
            );
        }
        for gone in ["etc/hello", "chroot.d/overlay.toml", ".chroot-tool"] {
            assert!(
                !m.iter().any(|n| n.starts_with(gone)),
                "{gone} in {}: {m:?}",
                t.display()
            );
        }
    }
    let mut a = members(&ns, &on_tar);
    let mut c = members(&ns, &off_tar);
    a.sort();
    c.sort();
    assert_eq!(a, c);
    // Unpacked, it is a plain sandbox with the changes.
    let un = ns.tmp.path().join("un");
    ok(&ns.run(&["unpack", d(&off_tar), "-d", d(&un)]));
    let out = ok(&ns.run_in(
        &un,
        &["--", "sh", "-c", "cat /etc/marker /chroot.d/mine; ls /etc"],
    ));
    assert!(
        out.starts_with("x\nown\n") && !out.contains("hello"),
        "{out}"
    );
    assert!(!un.join(".chroot-tool").exists());
}

#[test]
fn a_base_path_with_a_comma_a_colon_and_a_backslash_is_used_as_it_is() {
    let ns = Ns::new();
    let b = base(&ns, "ba,se:x\\y");
    let dir = ns.tmp.path().join("o,v:1");
    create_overlay(&ns, &b, &dir);
    let out = ok(&ns.run_in(
        &dir,
        &["--", "sh", "-c", "cat /etc/hello; echo x > /etc/marker"],
    ));
    assert_eq!(out, "from the base\n");
    ok(&ns.run(&["off", "-d", d(&dir)]));
    assert!(ns.mounts_under(ns.tmp.path()).is_empty());
    assert!(dir.join(".chroot-tool/upper/etc/marker").exists());
    assert!(!b.join("etc/marker").exists());
}

#[test]
fn a_base_swapped_after_create_is_refused() {
    let ns = Ns::new();
    let real = base(&ns, "real");
    let other = base(&ns, "other");
    fs::write(other.join("etc/hello"), "an impostor\n").unwrap();
    let link = ns.tmp.path().join("base-link");
    symlink(&real, &link).unwrap();
    let dir = ns.tmp.path().join("ov");
    create_overlay(&ns, &link, &dir);
    let rec = fs::read_to_string(dir.join("chroot.d/overlay.toml")).unwrap();
    assert!(rec.contains(&format!("base = \"{}\"", d(&real))), "{rec}");
    // The symlink given at create now leads elsewhere: BASE is the
    // directory it named then.
    fs::remove_file(&link).unwrap();
    symlink(&other, &link).unwrap();
    let out = ok(&ns.run_in(&dir, &["--", "cat", "/etc/hello"]));
    assert_eq!(out, "from the base\n");
    ok(&ns.run(&["off", "-d", d(&dir)]));
    // BASE's own path is now a symlink to another rootfs: refused.
    fs::rename(&real, ns.tmp.path().join("real.moved")).unwrap();
    symlink(&other, &real).unwrap();
    let o = ns.run_in(&dir, &["--", "cat", "/etc/hello"]);
    assert_eq!(code(&o), 125, "{}{}", stdout(&o), stderr(&o));
    assert!(
        stderr(&o).contains("a symlink is on its path"),
        "{}",
        stderr(&o)
    );
    assert!(!stdout(&o).contains("impostor"));
    // Another directory at BASE's path: refused by its identity.
    fs::remove_file(&real).unwrap();
    ok(&ns.sh(&format!("cp -a '{}' '{}'", d(&other), d(&real))));
    let o = ns.run_in(&dir, &["--", "cat", "/etc/hello"]);
    assert_eq!(code(&o), 125, "{}{}", stdout(&o), stderr(&o));
    assert!(
        stderr(&o).contains("not the directory it was"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        stderr(&o).matches("nothing was mounted").count(),
        1,
        "said once: {}",
        stderr(&o)
    );
    assert!(
        ns.mounts_under(ns.tmp.path()).is_empty(),
        "nothing was mounted"
    );
}

#[test]
fn an_upper_layer_replaced_by_a_symlink_is_refused() {
    let ns = Ns::new();
    let b = base(&ns, "base");
    let dir = ns.tmp.path().join("ov");
    create_overlay(&ns, &b, &dir);
    let elsewhere = ns.tmp.path().join("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    fs::remove_dir(dir.join(".chroot-tool/upper")).unwrap();
    symlink(&elsewhere, dir.join(".chroot-tool/upper")).unwrap();
    let o = ns.run_in(&dir, &["--", "sh", "-c", "echo x > /etc/marker"]);
    assert_eq!(code(&o), 125, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("a symlink, not the overlay's own directory"),
        "{}",
        stderr(&o)
    );
    assert!(
        names(&elsewhere).is_empty(),
        "nothing written through the symlink"
    );
    assert!(
        ns.mounts_under(ns.tmp.path()).is_empty(),
        "nothing was mounted"
    );
    // The same for the whole layer directory.
    fs::remove_file(dir.join(".chroot-tool/upper")).unwrap();
    fs::rename(dir.join(".chroot-tool"), ns.tmp.path().join("layers")).unwrap();
    symlink(ns.tmp.path().join("layers"), dir.join(".chroot-tool")).unwrap();
    let o = ns.run_in(&dir, &["--", "true"]);
    assert_eq!(code(&o), 125, "{}", stderr(&o));
    assert!(ns.mounts_under(ns.tmp.path()).is_empty());
}

/// What BASE holds is what an overlay's programs run (root's `run`
/// included), and its chroot.d is copied into DIR's: root's `create
/// --overlay` refuses, before DIR is made, a BASE another user owns, whose
/// chroot.d or tool.conf another user owns, that lies where another user
/// may rename it, or that another user's symlink leads to; and root's
/// `on` of an overlay whose BASE became another user's since mounts
/// nothing.
#[test]
fn a_base_another_user_could_change_is_refused() {
    let ns = Ns::new();
    let user = 1001;
    let chown = |p: &Path| std::os::unix::fs::lchown(p, Some(user), None).unwrap();
    let refused = |b: &Path, why: &str| {
        let new = ns.tmp.path().join("new");
        let o = ns.run(&["create", "-q", "--overlay", d(b), "-d", d(&new)]);
        assert_eq!(code(&o), 1, "{}: {}", d(b), stderr(&o));
        assert!(stderr(&o).contains(why), "{}", stderr(&o));
        assert!(!new.exists(), "{}", d(b));
    };
    let owned = base(&ns, "owned");
    chown(&owned);
    refused(&owned, "owned by uid 1001");
    let cd = base(&ns, "cd");
    chown(&cd.join("chroot.d"));
    refused(&cd, "chroot.d: owned by uid 1001");
    let conf = base(&ns, "conf");
    chown(&conf.join("chroot.d/tool.conf"));
    refused(&conf, "tool.conf: owned by uid 1001");
    let theirs = ns.tmp.path().join("theirs");
    fs::create_dir(&theirs).unwrap();
    chown(&theirs);
    let inside = theirs.join("base");
    fs::rename(base(&ns, "inside"), &inside).unwrap();
    refused(&inside, "where uid 1001 may rename it");
    let good = base(&ns, "good");
    let link = theirs.join("link");
    std::os::unix::fs::symlink(&good, &link).unwrap();
    chown(&link);
    refused(&link, "a symbolic link of uid 1001");
    // A directory of the user's with something in it: refused as not
    // empty, and left the user's.
    let usb = ns.tmp.path().join("usb");
    fs::create_dir_all(usb.join("chroot.d")).unwrap();
    fs::write(usb.join("data"), "mine\n").unwrap();
    chown(&usb);
    let o = ns.run(&["create", "-q", "--overlay", d(&good), "-d", d(&usb)]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("not empty"), "{}", stderr(&o));
    assert_eq!(fs::metadata(&usb).unwrap().uid(), user);
    // Made over a good BASE, which then becomes the user's.
    let ov = ns.tmp.path().join("ov");
    create_overlay(&ns, &good, &ov);
    ok(&ns.run(&["on", "-d", d(&ov)]));
    ok(&ns.run(&["off", "-d", d(&ov)]));
    chown(&good);
    let o = ns.run(&["on", "-d", d(&ov)]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("owned by uid 1001"), "{}", stderr(&o));
    assert_eq!(ns.mounts_under(&ov), Vec::<String>::new());
    std::os::unix::fs::lchown(&good, Some(0), None).unwrap();
    ok(&ns.run_in(&ov, &["--", "true"]));
    ok(&ns.run(&["off", "-d", d(&ov)]));
}

/// A `create --overlay` killed before it wrote its record leaves its log
/// (written first) and no record (written last): `on` refuses (not a root
/// filesystem, as after a plain create that did not finish) and mounts
/// nothing, and the next create empties DIR and makes the sandbox. A DIR
/// without that log is never emptied.
#[test]
fn an_overlay_create_that_did_not_finish_is_made_again() {
    let ns = Ns::new();
    let b = base(&ns, "base");
    let ov = ns.tmp.path().join("ov");
    create_overlay(&ns, &b, &ov);
    // Killed before its record (BASE's create.toml is copied after it).
    fs::write(ov.join("chroot.d/create.log"), "create --overlay\n").unwrap();
    fs::remove_file(ov.join("chroot.d/overlay.toml")).unwrap();
    let o = ns.run(&["on", "-d", d(&ov)]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("not a root filesystem"),
        "{}",
        stderr(&o)
    );
    assert_eq!(ns.mounts_under(&ov), Vec::<String>::new());
    create_overlay(&ns, &b, &ov);
    assert_eq!(
        ok(&ns.run_in(&ov, &["cat", "/etc/hello"])),
        "from the base\n"
    );
    ok(&ns.run(&["off", "-d", d(&ov)]));
    // Killed right after the log: its layers' directories only.
    let early = ns.tmp.path().join("early");
    fs::create_dir_all(early.join(".chroot-tool/upper")).unwrap();
    fs::create_dir_all(early.join("chroot.d")).unwrap();
    fs::write(early.join("chroot.d/create.log"), "create --overlay\n").unwrap();
    create_overlay(&ns, &b, &early);
    ok(&ns.run_in(&early, &["true"]));
    ok(&ns.run(&["off", "-d", d(&early)]));
    // Without the log: someone's directory, left as it is.
    let theirs = ns.tmp.path().join("theirs");
    fs::create_dir_all(theirs.join(".chroot-tool/upper")).unwrap();
    fs::create_dir_all(theirs.join("chroot.d")).unwrap();
    fs::write(theirs.join(".chroot-tool/upper/notes"), "keep\n").unwrap();
    let o = ns.run(&["create", "-q", "--overlay", d(&b), "-d", d(&theirs)]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("not empty"), "{}", stderr(&o));
    assert_eq!(
        fs::read_to_string(theirs.join(".chroot-tool/upper/notes")).unwrap(),
        "keep\n"
    );
    // A finished sandbox with its log and record is never taken for an
    // unfinished overlay, whatever its rootfs holds (a `/.chroot-tool`).
    let plain = ns.tmp.path().join("plain");
    ok(&ns.run(&["create", "-q", "--from", d(&b), "-d", d(&plain)]));
    assert!(plain.join("chroot.d/create.log").is_file());
    let line = "mkdir /.chroot-tool; echo precious > /root/data";
    ok(&ns.run_in(&plain, &["--", "sh", "-c", line]));
    ok(&ns.run(&["off", "-d", d(&plain)]));
    ok(&ns.run_in(&plain, &["cat", "/root/data"]));
    ok(&ns.run(&["off", "-d", d(&plain)]));
    let o = ns.run(&["create", "-q", "--overlay", d(&b), "-d", d(&plain)]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert_eq!(
        fs::read_to_string(plain.join("root/data")).unwrap(),
        "precious\n"
    );
}

#[test]
fn bases_that_cannot_be_one_are_refused() {
    let ns = Ns::new();
    let b = base(&ns, "base");
    let data = ns.tmp.path().join("data");
    fs::create_dir(&data).unwrap();
    fs::write(data.join("notes"), "x").unwrap();
    let o = ns.run(&[
        "create",
        "--overlay",
        d(&data),
        "-d",
        d(&ns.tmp.path().join("a")),
    ]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("not a root filesystem"),
        "{}",
        stderr(&o)
    );
    let ov = ns.tmp.path().join("ov");
    create_overlay(&ns, &b, &ov);
    let o = ns.run(&[
        "create",
        "--overlay",
        d(&ov),
        "-d",
        d(&ns.tmp.path().join("b")),
    ]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("itself an overlay sandbox"),
        "{}",
        stderr(&o)
    );
    let o = ns.run(&[
        "create",
        "--overlay",
        "/",
        "-d",
        d(&ns.tmp.path().join("c")),
    ]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("system directory"), "{}", stderr(&o));
    // DIR inside BASE: refused, and the DIR it made is gone again (it
    // would show in every overlay of BASE).
    let inside = b.join("sub");
    let o = ns.run(&["create", "--overlay", d(&b), "-d", d(&inside)]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("lie one in the other"),
        "{}",
        stderr(&o)
    );
    assert!(!inside.exists());
    // A BASE whose path the record cannot hold (not UTF-8): refused
    // before DIR is made.
    let odd = ns
        .tmp
        .path()
        .join(std::ffi::OsStr::from_bytes(b"b\xff\xfease"));
    fs::rename(base(&ns, "odd"), &odd).unwrap();
    let new = ns.tmp.path().join("new");
    let o = output_within(
        ns.tool()
            .args(["create", "--overlay"])
            .arg(&odd)
            .arg("-d")
            .arg(&new),
        DEADLINE,
    );
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("not UTF-8"), "{}", stderr(&o));
    assert!(!new.exists());
    // A BASE that is on (being written to) is refused by the overlay's on.
    ok(&ns.run(&["on", "-d", d(&b)]));
    let o = ns.run(&["on", "-d", d(&ov)]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("it is on"), "{}", stderr(&o));
    assert_eq!(ns.mounts_under(&ov), Vec::<String>::new());
    ok(&ns.run(&["off", "-d", d(&b)]));
    // And the other way: a BASE is not turned on (by on or run) while an
    // overlay over it is.
    ok(&ns.run(&["on", "-d", d(&ov)]));
    for args in [
        &["on", "-d", d(&b)][..],
        &["run", "-d", d(&b), "--", "true"][..],
    ] {
        let o = ns.run(args);
        assert_ne!(code(&o), 0, "{args:?}");
        assert!(
            stderr(&o).contains("base of overlay sandboxes that are on"),
            "{}",
            stderr(&o)
        );
    }
    assert_eq!(ns.mounts_under(&b), Vec::<String>::new());
    ok(&ns.run(&["off", "-d", d(&ov)]));
    ok(&ns.run_in(&b, &["--", "true"]));
    ok(&ns.run(&["off", "-d", d(&b)]));
}

/// `run --ephemeral`'s checks on `root` (on): writes and a deletion vanish
/// with the run, a parallel run never sees them, a failure keeps its
/// status, and nothing remains: no mount, no file.
fn ephemeral_leaves_nothing(ns: &Ns, root: &Path, disk: &Path) {
    let before_tree = tree(disk);
    let before = ns.table();
    let out = ok(&ns.run_in(
        root,
        &[
            "--ephemeral",
            "--",
            "sh",
            "-c",
            "echo x > /etc/marker; rm /bin/ls; cat /etc/marker; test -e /bin/ls || echo no-ls",
        ],
    ));
    assert_eq!(out, "x\nno-ls\n");
    let out = ok(&ns.run_in(
        root,
        &[
            "--",
            "sh",
            "-c",
            "test -e /etc/marker && echo marker; test -e /bin/ls && echo ls",
        ],
    ));
    assert_eq!(out, "ls\n");
    assert_eq!(ns.table(), before, "no mount of the run is left");
    assert_eq!(tree(disk), before_tree, "the sandbox's files are unchanged");

    // A parallel normal run does not see the ephemeral run's writes.
    let mut c = ns.tool();
    c.args(["run", "-d", d(root), "--ephemeral", "--", "sh", "-c"])
        .arg("echo x > /etc/parallel; touch /tmp/written; while [ ! -e /tmp/seen ]; do sleep 0.05; done")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = c.spawn().unwrap();
    let tmp_seen = |name: &str| {
        let o = ns.run_in(root, &["--", "test", "-e", &format!("/tmp/{name}")]);
        code(&o) == 0
    };
    wait_until("the ephemeral run wrote", || tmp_seen("written"));
    let o = ns.run_in(
        root,
        &["--", "sh", "-c", "cat /etc/parallel 2>&1; touch /tmp/seen"],
    );
    assert!(stdout(&o).contains("No such file"), "{}", stdout(&o));
    ok(&finish_within(child, DEADLINE));
    ok(&ns.run_in(root, &["--", "rm", "/tmp/written", "/tmp/seen"]));

    // A failure inside: its status is kept, nothing is left.
    let o = ns.run_in(
        root,
        &[
            "--ephemeral",
            "--",
            "sh",
            "-c",
            "echo y > /etc/failed; exit 7",
        ],
    );
    assert_eq!(code(&o), 7, "{}", stderr(&o));
    let o = ns.run_in(root, &["--ephemeral", "--", "/no/such/program"]);
    assert_eq!(code(&o), 127, "{}", stderr(&o));
    assert_eq!(ns.table(), before);
    assert_eq!(tree(disk), before_tree);
}

#[test]
fn ephemeral_runs_in_chroot_mode() {
    let ns = Ns::new();
    let root = ns.busybox_root("sb");
    ok(&ns.run(&["on", "-d", d(&root)]));
    ephemeral_leaves_nothing(&ns, &root, &root);
    // shell too.
    let mut c = ns.tool();
    c.args(["shell", "--ephemeral", "-d", d(&root)])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"echo s > /etc/from-shell; cat /etc/from-shell\n")
        .unwrap();
    let o = finish_within(child, DEADLINE);
    assert_eq!(ok(&o), "s\n");
    assert!(!root.join("etc/from-shell").exists());
    // `status` lists, and `off` ends, an ephemeral run's processes (their
    // root is the run's overlay, held by their supervisor).
    let mut c = ns.tool();
    c.args(["run", "-d", d(&root), "--ephemeral", "--", "sleep", "1000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = c.spawn().unwrap();
    wait_until("status lists the ephemeral run's sleep", || {
        stdout(&ns.run(&["status", "-d", d(&root)])).contains(" sleep")
    });
    let off = ok(&ns.run(&["off", "-d", d(&root), "--timeout", "5"]));
    assert!(off.contains("1 process ended"), "{off}");
    let o = finish_within(child, DEADLINE);
    assert_eq!(code(&o), 143, "{}", stderr(&o));
    assert!(ns.mounts_under(&root).is_empty());
}

#[test]
fn ephemeral_runs_over_an_overlay_sandbox() {
    let ns = Ns::new();
    let b = base(&ns, "base");
    let dir = ns.tmp.path().join("ov");
    create_overlay(&ns, &b, &dir);
    ok(&ns.run(&["on", "-d", d(&dir)]));
    // Its own chroot.d is bound read-only in an ephemeral run.
    let o = ns.run_in(
        &dir,
        &["--ephemeral", "--", "sh", "-c", "echo x > /chroot.d/new"],
    );
    assert_ne!(code(&o), 0);
    assert!(!dir.join("chroot.d/new").exists());
    ok(&ns.run(&["off", "-d", d(&dir)]));
    let upper = dir.join(".chroot-tool/upper");
    let before_upper = tree(&upper);
    ok(&ns.run(&["on", "-d", d(&dir)]));
    ephemeral_leaves_nothing(&ns, &dir, &b);
    ok(&ns.run(&["off", "-d", d(&dir)]));
    assert_eq!(tree(&upper), before_upper, "the upper layer is unchanged");
}

#[test]
fn ephemeral_runs_through_a_holder() {
    for how in [&["-N"][..], &["--ns", "pid"][..]] {
        let ns = Ns::new();
        let root = ns.busybox_root("sb");
        let mut on = vec!["on", "-d", d(&root)];
        on.extend_from_slice(how);
        ok(&ns.run(&on));
        let st = ok(&ns.run(&["status", "-d", d(&root)]));
        assert!(st.contains("holder"), "{how:?}: {st}");
        ephemeral_leaves_nothing(&ns, &root, &root);
        ok(&ns.run(&["off", "-d", d(&root)]));
        assert!(ns.mounts_under(&root).is_empty(), "{how:?}");
    }
}

/// chroot-tool as the normal user `name` (made by .ci/run), in the test's
/// mount namespace, with its own runtime, state and config directories
/// under `home` (which it owns).
fn as_user(ns: &Ns, name: &str, home: &Path, args: &[&str]) -> std::process::Output {
    let bin = ns.tmp.path().join("chroot-tool");
    let mut c = ns.cmd("setpriv");
    c.args(["--reuid", name, "--regid", name, "--init-groups", "--"])
        .arg(&bin)
        .args(args)
        .env_remove("CHROOT_TOOL_RUN_DIR")
        .env_remove(chroot_tool::audit::STATE_ENV)
        .env("HOME", home)
        .env("XDG_RUNTIME_DIR", home.join("run"))
        .env("XDG_STATE_HOME", home.join("state"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_CACHE_HOME", home.join("cache"))
        .current_dir(home)
        .stdin(Stdio::null());
    common::output_within(&mut c, DEADLINE)
}

/// The test user ct-user, chroot-tool installed where it may run it, and
/// a home for [`as_user`] (its directories made; chowned by the caller).
fn user_home(ns: &Ns) -> (nix::unistd::User, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let pw = nix::unistd::User::from_name("ct-user")
        .unwrap()
        .expect("the test user ct-user is missing: run .ci/run (it makes it)");
    fs::set_permissions(ns.tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
    common::install_exec(Path::new(common::BIN), &ns.tmp.path().join("chroot-tool"));
    let home = ns.tmp.path().join("home");
    fs::create_dir(&home).unwrap();
    for sub in ["run", "state", "config", "cache"] {
        fs::create_dir(home.join(sub)).unwrap();
    }
    fs::set_permissions(home.join("run"), fs::Permissions::from_mode(0o700)).unwrap();
    (pw, home)
}

#[test]
fn a_normal_user_makes_uses_packs_and_destroys_an_overlay_sandbox() {
    let ns = Ns::new();
    let (pw, home) = user_home(&ns);
    let b = home.join("base");
    common::make_busybox_root(&b);
    fs::write(b.join("etc/hello"), "from the base\n").unwrap();
    let (uid, gid) = (pw.uid.as_raw(), pw.gid.as_raw());
    ok(&ns.sh(&format!("chown -R -h {uid}:{gid} '{}'", d(&home))));
    let before = tree(&b);
    let dir = home.join("ov");
    let u = |args: &[&str]| as_user(&ns, "ct-user", &home, args);
    ok(&u(&["create", "-q", "--overlay", d(&b), "-d", d(&dir)]));
    let out = ok(&u(&[
        "run",
        "-d",
        d(&dir),
        "--",
        "sh",
        "-c",
        "echo x > /etc/marker; rm /etc/hello; id -u",
    ]));
    assert_eq!(out, "0\n");
    let out = ok(&u(&[
        "run",
        "-d",
        d(&dir),
        "--ephemeral",
        "--",
        "sh",
        "-c",
        "echo e > /etc/e; cat /etc/marker",
    ]));
    assert_eq!(out, "x\n");
    let tar = home.join("p.tar");
    ok(&u(&["pack", "-q", "-d", d(&dir), "-o", d(&tar)]));
    let m = members(&ns, &tar);
    assert!(
        m.iter().any(|n| n == "etc/marker") && m.iter().any(|n| n == "bin/busybox"),
        "{m:?}"
    );
    assert!(!m.iter().any(|n| n == "etc/hello" || n == "etc/e"), "{m:?}");
    ok(&u(&["off", "-d", d(&dir)]));
    assert_eq!(
        fs::read_to_string(dir.join(".chroot-tool/upper/etc/marker")).unwrap(),
        "x\n"
    );
    assert!(!dir.join(".chroot-tool/upper/etc/e").exists());
    assert_eq!(tree(&b), before, "BASE unchanged");
    ok(&u(&["destroy", "-y", "-d", d(&dir)]));
    assert!(!dir.exists());
    assert_eq!(tree(&b), before);
    // A shared BASE of root's (what root's files are in the user's own
    // user namespace, the overflow id, is no refusal).
    let shared = ns.tmp.path().join("shared");
    common::make_busybox_root(&shared);
    // (Where the user cannot create the mount targets: there already.)
    fs::write(shared.join("etc/resolv.conf"), "").unwrap();
    let over = home.join("over-shared");
    ok(&u(&[
        "create",
        "-q",
        "--overlay",
        d(&shared),
        "-d",
        d(&over),
    ]));
    assert_eq!(ok(&u(&["run", "-d", d(&over), "--", "id", "-u"])), "0\n");
    ok(&u(&["off", "-d", d(&over)]));
    assert!(ns.mounts_under(&home).is_empty());
}

#[test]
fn an_overlay_made_by_root_is_not_turned_on_in_a_user_namespace() {
    let ns = Ns::new();
    let b = base(&ns, "base");
    let dir = ns.tmp.path().join("ov");
    create_overlay(&ns, &b, &dir);
    let o = ns.run(&["on", "-N", "-d", d(&dir)]);
    assert_eq!(code(&o), 1);
    let e = stderr(&o);
    assert!(e.contains("made by root") && e.lines().count() == 1, "{e}");
    assert!(ns.mounts_under(&dir).is_empty());
    ok(&ns.run(&["on", "-d", d(&dir)]));
    ok(&ns.run(&["off", "-d", d(&dir)]));
}

/// On a host whose mounts are shared (systemd's), a namespace made from it
/// (a service's, a container's) receives a copy of what `on` attaches at
/// DIR: the merged view must reach it without the sandbox's `/chroot.d`
/// bound on it, or `off`'s unmount cannot take the copy along and the other
/// namespace keeps a stale one for good.
#[test]
fn an_overlay_leaves_nothing_in_a_namespace_that_shares_the_hosts_mounts() {
    let ns = Ns::with_propagation("shared");
    let b = base(&ns, "base");
    let dir = ns.tmp.path().join("ov");
    create_overlay(&ns, &b, &dir);
    let peer = ns.peer();
    let peer_points = || common::points_of(peer.0.id(), &dir);
    assert!(peer_points().is_empty());
    for _ in 0..2 {
        ok(&ns.run(&["on", "-d", d(&dir)]));
        assert!(
            !peer_points().iter().any(|p| Path::new(p) != dir),
            "the peer sees the sandbox's mounts: {:?}",
            peer_points()
        );
        ok(&ns.run(&["off", "-d", d(&dir)]));
        assert!(ns.mounts_under(&dir).is_empty());
        assert_eq!(peer_points(), Vec::<String>::new(), "left in the peer");
    }
    drop(peer);
}

/// An overlay sandbox that is on, with something mounted over its
/// directory after `on`: its record of BASE cannot be read through that
/// cover, and `destroy` of BASE refuses rather than take it for no user.
/// Once the cover is gone, the overlay is known again as BASE's user.
#[test]
fn destroy_of_a_base_refuses_while_an_overlay_over_it_is_covered() {
    let ns = Ns::new();
    let b = base(&ns, "base");
    let dir = ns.tmp.path().join("ov");
    create_overlay(&ns, &b, &dir);
    ok(&ns.run(&["on", "-d", d(&dir)]));
    assert!(ns
        .sh(&format!("mount -t tmpfs cover {}", d(&dir)))
        .status
        .success());
    let o = ns.run(&["destroy", "-y", "-d", d(&b)]);
    assert_ne!(code(&o), 0);
    assert!(
        stderr(&o).contains("hidden by something mounted over them, and may be over this one"),
        "{}",
        stderr(&o)
    );
    assert!(b.join("etc/hello").exists(), "the base was deleted");
    assert!(ns.sh(&format!("umount {}", d(&dir))).status.success());
    let o = ns.run(&["destroy", "-y", "-d", d(&b)]);
    assert!(
        stderr(&o).contains("it is the base of the overlay sandboxes"),
        "{}",
        stderr(&o)
    );
    ok(&ns.run(&["off", "-d", d(&dir)]));
    ok(&ns.run(&["destroy", "-y", "-d", d(&dir)]));
    ok(&ns.run(&["destroy", "-y", "-d", d(&b)]));
}

/// An overlay turned on before the index of overlays by base existed (by
/// an earlier version: no link of it) still guards its base: the first
/// `on` reads the list once, indexes what it finds on, and refuses.
#[test]
fn an_overlay_on_without_an_index_still_guards_its_base() {
    let ns = Ns::new();
    let b = base(&ns, "base");
    let ov = ns.tmp.path().join("ov");
    create_overlay(&ns, &b, &ov);
    ok(&ns.run(&["on", "-d", d(&ov)]));
    let bases = ns.run_dir.join("bases");
    assert!(bases.is_dir(), "on of an overlay indexes it");
    fs::remove_dir_all(&bases).unwrap();
    for _ in 0..2 {
        base_on_refused(&ns, &b, &[]);
        assert!(bases.join("indexed").exists());
    }
    // A stale link (the overlay off, or its link pointing elsewhere) is
    // no user.
    ok(&ns.run(&["off", "-d", d(&ov)]));
    let other = ns.busybox_root("other");
    let key = fs::read_dir(&bases)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .unwrap();
    symlink(&other, key.join("0000000000000000-other")).unwrap();
    ok(&ns.run(&["on", "-d", d(&other)]));
    ok(&ns.run(&["on", "-d", d(&b)]));
    ok(&ns.run(&["off", "-d", d(&b)]));
    ok(&ns.run(&["off", "-d", d(&other)]));
}

/// `on` of a base asks the index, not the list of sandboxes: its cost
/// does not grow with the number of sandboxes a user keeps (the list's
/// directory is never opened once the index is complete).
#[test]
fn on_does_not_read_the_list_of_sandboxes() {
    let ns = Ns::new();
    let b = base(&ns, "base");
    let ov = ns.tmp.path().join("ov");
    create_overlay(&ns, &b, &ov);
    for i in 0..3 {
        let r = ns.busybox_root(&format!("r{i}"));
        ok(&ns.run(&["on", "-d", d(&r)]));
        ok(&ns.run(&["off", "-d", d(&r)]));
    }
    let list = ns.state_dir().join("sandboxes");
    assert!(fs::read_dir(&list).unwrap().count() >= 4);
    let log = ns.tmp.path().join("on.strace");
    let traced = |dir: &Path| {
        let o = output_within(
            ns.cmd("strace")
                .args(["-f", "-qq", "-e", "trace=open,openat,openat2", "-o"])
                .arg(&log)
                .arg(common::BIN)
                .args(["on", "-d", d(dir)]),
            DEADLINE,
        );
        (o, fs::read_to_string(&log).unwrap())
    };
    let (o, _) = traced(&ov);
    ok(&o);
    let (o, log) = traced(&b);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("base of overlay sandboxes that are on"));
    let opened = format!("\"{}\"", list.display());
    assert!(!log.contains(&opened), "the list was read:\n{log}");
    ok(&ns.run(&["off", "-d", d(&ov)]));
}

/// `on` of BASE while an `on` of an overlay over it is between its look at
/// BASE and its mount (held at the overlay's `fsopen` by `strace`): the
/// second waits for the first, sees the overlay on and refuses; never are
/// both on.
#[test]
fn on_of_a_base_racing_on_of_its_overlay_leaves_one_on() {
    let ns = Ns::new();
    let b = base(&ns, "base");
    let ov = ns.tmp.path().join("ov");
    create_overlay(&ns, &b, &ov);
    let on = ns.held_at("fsopen", &["on", "-d", d(&ov)]);
    // fsopen is system call 430; the overlay is the first mount of `on`.
    common::held_in(&on, 430, "on of the overlay held at its fsopen");
    let base_on = ns.run(&["on", "-d", d(&b)]);
    ok(&finish_within(on, DEADLINE));
    assert_eq!(code(&base_on), 1, "{}", stderr(&base_on));
    assert!(
        stderr(&base_on).contains("base of overlay sandboxes that are on"),
        "{}",
        stderr(&base_on)
    );
    assert_eq!(ns.mounts_under(&b), Vec::<String>::new());
    assert_eq!(ns.state(&ov), "on");
    ok(&ns.run(&["off", "-d", d(&ov)]));

    // The other way: `on` of BASE held at its self-bind's `open_tree`
    // (after its look for overlays on), `on` of the overlay meanwhile.
    let on = ns.held_at("open_tree", &["on", "-d", d(&b)]);
    // open_tree is system call 428.
    common::held_in(&on, 428, "on of the base held at its open_tree");
    let ov_on = ns.run(&["on", "-d", d(&ov)]);
    ok(&finish_within(on, DEADLINE));
    assert_eq!(code(&ov_on), 1, "{}", stderr(&ov_on));
    assert!(stderr(&ov_on).contains("it is on"), "{}", stderr(&ov_on));
    assert_eq!(ns.mounts_under(&ov), Vec::<String>::new());
    assert_eq!(ns.state(&b), "on");
    ok(&ns.run(&["off", "-d", d(&b)]));
}

/// An overlay sandbox that is on still guards its BASE when its path no
/// longer leads to it: a directory above it renamed, or something mounted
/// over it. `on` of BASE finds its view by identity and names where it is
/// now.
#[test]
fn an_overlay_moved_or_covered_while_on_still_guards_its_base() {
    let ns = Ns::new();
    let (b, parent, ov) = overlay_in_a_dir(&ns);
    ok(&ns.run(&["on", "-d", d(&ov)]));

    let moved = ns.tmp.path().join("q");
    fs::rename(&parent, &moved).unwrap();
    let said = base_on_refused(&ns, &b, &[]);
    assert!(said.contains(d(&moved.join("ov"))), "{said}");
    fs::rename(&moved, &parent).unwrap();

    assert!(ns
        .sh(&format!("mount -t tmpfs cover {}", d(&ov)))
        .status
        .success());
    base_on_refused(&ns, &b, &[]);
    assert!(ns.sh(&format!("umount {}", d(&ov))).status.success());
    ok(&ns.run(&["off", "-d", d(&ov)]));
    ok(&ns.run(&["on", "-d", d(&b)]));
    ok(&ns.run(&["off", "-d", d(&b)]));
}

/// A normal user's overlay sandbox made under umask 002 is writable by
/// no one else on disk (its DIR holds the chroot.d that `on` binds in,
/// where `on`'s checks see only the merged view).
#[test]
fn a_users_overlay_made_under_a_group_umask_is_shut_to_others() {
    use std::os::unix::fs::PermissionsExt;
    let ns = Ns::new();
    let (pw, home) = user_home(&ns);
    let b = home.join("base");
    common::make_busybox_root(&b);
    ok(&ns.sh(&format!("chown -R -h {}:{} '{}'", pw.uid, pw.gid, d(&home))));
    let dir = home.join("ov");
    let o = common::output_within(
        ns.cmd("sh")
            .args(["-c", "umask 002 && exec \"$@\"", "sh", "setpriv"])
            .args([
                "--reuid",
                "ct-user",
                "--regid",
                "ct-user",
                "--init-groups",
                "--",
            ])
            .arg(ns.tmp.path().join("chroot-tool"))
            .args(["create", "-q", "--overlay", d(&b), "-d", d(&dir)])
            .env_remove("CHROOT_TOOL_RUN_DIR")
            .env_remove(chroot_tool::audit::STATE_ENV)
            .env("HOME", &home)
            .env("XDG_RUNTIME_DIR", home.join("run"))
            .env("XDG_STATE_HOME", home.join("state"))
            .current_dir(&home)
            .stdin(Stdio::null()),
        DEADLINE,
    );
    ok(&o);
    for p in [
        &dir,
        &dir.join("chroot.d"),
        &dir.join("chroot.d/overlay.toml"),
    ] {
        let mode = fs::metadata(p).unwrap().permissions().mode();
        assert_eq!(mode & 0o022, 0, "{}: {mode:o}", d(p));
    }
    ok(&as_user(
        &ns,
        "ct-user",
        &home,
        &["run", "-d", d(&dir), "--", "true"],
    ));
    ok(&as_user(&ns, "ct-user", &home, &["off", "-d", d(&dir)]));
}

/// An overlay sandbox on in another mount namespace (the records of the
/// machine shared) still guards its BASE here; a BASE on in another
/// namespace keeps its overlays off here. Once off there, both work here.
#[test]
fn a_base_and_its_overlay_on_in_other_namespaces_guard_each_other() {
    let a = Ns::new();
    let mut other = Ns::new();
    other.run_dir = a.run_dir.clone();
    let b = base(&a, "base");
    let ov = a.tmp.path().join("ov");
    create_overlay(&a, &b, &ov);
    ok(&other.run(&["on", "-d", d(&ov)]));
    base_on_refused(&a, &b, &[]);
    ok(&other.run(&["off", "-d", d(&ov)]));

    ok(&other.run(&["on", "-d", d(&b)]));
    let o = a.run(&["on", "-d", d(&ov)]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("it is on"), "{}", stderr(&o));
    assert_eq!(a.mounts_under(&ov), Vec::<String>::new());
    ok(&other.run(&["off", "-d", d(&b)]));

    ok(&a.run(&["on", "-d", d(&ov)]));
    ok(&a.run(&["off", "-d", d(&ov)]));
    ok(&a.run(&["on", "-d", d(&b)]));
    ok(&a.run(&["off", "-d", d(&b)]));
}

/// BASE's path made a symlink to the overlay sandbox itself: `on` of the
/// overlay refuses (no symlink is followed to BASE) and never waits for
/// its own lock.
#[test]
fn a_base_replaced_by_a_symlink_to_its_overlay_is_refused_at_once() {
    let ns = Ns::new();
    let b = base(&ns, "base");
    let ov = ns.tmp.path().join("ov");
    create_overlay(&ns, &b, &ov);
    fs::rename(&b, ns.tmp.path().join("base.real")).unwrap();
    symlink(&ov, &b).unwrap();
    let o = ns.run(&["on", "-d", d(&ov)]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("symlink"), "{}", stderr(&o));
    assert_eq!(ns.mounts_under(&ov), Vec::<String>::new());
}

/// Through holders (`--ns`): `on` of BASE while an overlay over it is on,
/// in the host's namespace or through its own holder (moved away since,
/// too), is refused; `on` of the overlay while BASE is on through its
/// holder is refused, and BASE's holder is still known afterwards.
#[test]
fn a_base_and_its_overlay_through_holders_are_never_both_on() {
    let ns = Ns::new();
    let _h = common::Holders(ns.run_dir.join("holder"));
    let (b, parent, ov) = overlay_in_a_dir(&ns);

    ok(&ns.run(&["on", "-d", d(&ov)]));
    base_on_refused(&ns, &b, &["--ns", "uts"]);
    ok(&ns.run(&["off", "-d", d(&ov)]));

    ok(&ns.run(&["on", "--ns", "pid", "-d", d(&ov)]));
    let moved = ns.tmp.path().join("q");
    fs::rename(&parent, &moved).unwrap();
    base_on_refused(&ns, &b, &["--ns", "uts"]);
    base_on_refused(&ns, &b, &[]);
    fs::rename(&moved, &parent).unwrap();
    ok(&ns.run(&["off", "-d", d(&ov)]));

    ok(&ns.run(&["on", "--ns", "pid", "-d", d(&b)]));
    let o = ns.run(&["on", "--ns", "pid", "-d", d(&ov)]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("it is on"), "{}", stderr(&o));
    assert_eq!(ns.state(&b), "on");
    let off = ok(&ns.run(&["off", "-d", d(&b)]));
    assert!(off.contains("is off"), "{off}");
    ok(&ns.run(&["on", "--ns", "pid", "-d", d(&ov)]));
    ok(&ns.run(&["off", "-d", d(&ov)]));
}

/// In a pid namespace of its own (a container), an overlay's holder that
/// was killed is known dead (its pid file and records dropped), so the
/// overlay no longer guards its BASE.
#[test]
fn in_a_container_a_killed_overlays_holder_no_longer_guards_its_base() {
    let ns = Ns::new();
    let (b, _, ov) = overlay_in_a_dir(&ns);
    let (bin, run) = (common::BIN, d(&ns.run_dir));
    let script = format!(
        "set -e; {bin} on --ns pid -d {ov}; pid=$(awk '{{print $2}}' {run}/holder/*); \
         kill -9 $pid; while kill -0 $pid 2>/dev/null; do sleep 0.05; done; \
         {bin} on -d {b}; {bin} off -d {b}; {bin} status -d {ov}",
        ov = d(&ov),
        b = d(&b)
    );
    let out = ok(&ns.sh(&format!(
        "unshare -p -f --mount-proc sh -c \"{}\"",
        script.replace('"', "\\\"").replace('$', "\\$")
    )));
    assert!(out.contains(": off"), "{out}");
}

/// BASE turned on by another spelling (a bind of its parent elsewhere):
/// `on` of an overlay over it finds BASE's self-bind by its record and
/// refuses.
#[test]
fn a_base_on_through_a_bind_elsewhere_keeps_its_overlay_off() {
    let ns = Ns::new();
    let b = base(&ns, "base");
    let ov = ns.tmp.path().join("ov");
    create_overlay(&ns, &b, &ov);
    let alias = ns.tmp.path().join("alias");
    fs::create_dir(&alias).unwrap();
    ok(&ns.sh(&format!(
        "mount --bind {} {} && mount --make-private {}",
        d(ns.tmp.path()),
        d(&alias),
        d(&alias)
    )));
    let other = alias.join("base");
    ok(&ns.run(&["on", "-d", d(&other)]));
    let o = ns.run(&["on", "-d", d(&ov)]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("it is on"), "{}", stderr(&o));
    assert_eq!(ns.mounts_under(&ov), Vec::<String>::new());
    ok(&ns.run(&["off", "-d", d(&other)]));
    ok(&ns.sh(&format!("umount {}", d(&alias))));
    ok(&ns.run(&["on", "-d", d(&ov)]));
    ok(&ns.run(&["off", "-d", d(&ov)]));
}
