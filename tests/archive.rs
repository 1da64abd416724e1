//! `pack` and `unpack`, for real (as root, each test in its own mount
//! namespace): what a round trip keeps (owners, modes, xattrs such as file
//! capabilities, hard links, symlinks, device nodes, FIFOs, mtimes) with
//! every compression; a sandbox packed while it is on (nothing mounted is
//! packed); the original tool's tar.xz; members that would land outside
//! DIR refused by name; an archive's host binds and host-cmd set aside
//! until trusted; and create's cache and `--from`.
mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// Everything a round trip must keep about one entry, by path below the root.
fn listing(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(p) = todo.pop() {
        let md = fs::symlink_metadata(&p).unwrap();
        let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        let ft = md.file_type();
        let target = if ft.is_symlink() {
            fs::read_link(&p).unwrap().to_string_lossy().into_owned()
        } else {
            String::new()
        };
        let mut xattrs = vec![];
        if !ft.is_symlink() {
            // Device nodes and FIFOs: their attributes through an O_PATH descriptor.
            let fd = nix::fcntl::open(
                &p,
                nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_NOFOLLOW,
                nix::sys::stat::Mode::empty(),
            )
            .unwrap();
            use std::os::fd::AsFd;
            for n in chroot_tool::sys::xattr::list(fd.as_fd()).unwrap() {
                let v = chroot_tool::sys::xattr::get(fd.as_fd(), &n).unwrap();
                xattrs.push(format!("{}={:?}", String::from_utf8_lossy(&n), v));
            }
            xattrs.sort();
        }
        // A directory's link count and size depend on the filesystem.
        let (nlink, size) = if ft.is_dir() {
            (0, 0)
        } else {
            (md.nlink(), md.size())
        };
        out.insert(
            rel,
            format!(
                "mode {:o} owner {}:{} size {size} links {nlink} rdev {:x} mtime {} -> {target} {xattrs:?}",
                md.mode(),
                md.uid(),
                md.gid(),
                md.rdev(),
                md.mtime()
            ),
        );
        if ft.is_dir() {
            for e in fs::read_dir(&p).unwrap() {
                todo.push(e.unwrap().path());
            }
        }
    }
    out
}

fn sh(line: &str) {
    let st = Command::new("sh").args(["-c", line]).status().unwrap();
    assert!(st.success(), "{line}");
}

/// `getcap` (libcap2-bin) prints a file's capabilities; the test fails
/// saying what to install when it is missing.
fn getcap(file: &Path) -> String {
    let o = Command::new("getcap")
        .arg(file)
        .output()
        .expect("getcap is needed: apt-get install libcap2-bin");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn setcap(caps: &str, file: &Path) {
    let o = Command::new("setcap")
        .arg(caps)
        .arg(file)
        .output()
        .expect("setcap is needed: apt-get install libcap2-bin");
    assert!(o.status.success(), "setcap: {}", stderr(&o));
}

/// A busybox root with one of each kind of thing an archive must keep.
fn rich_root(ns: &Ns, name: &str) -> PathBuf {
    let root = ns.busybox_root(name);
    let etc = root.join("etc");
    fs::write(etc.join("owned"), "data\n").unwrap();
    std::os::unix::fs::chown(etc.join("owned"), Some(1234), Some(5678)).unwrap();
    fs::set_permissions(etc.join("owned"), fs::Permissions::from_mode(0o4751)).unwrap();
    fs::hard_link(etc.join("owned"), etc.join("owned.link")).unwrap();
    std::os::unix::fs::symlink("/etc/owned", root.join("abs-link")).unwrap();
    std::os::unix::fs::symlink("../etc/owned", root.join("bin/rel-link")).unwrap();
    fs::create_dir(root.join("dev")).unwrap();
    sh(&format!(
        "mknod {d}/dev/null c 1 3 && mknod {d}/dev/loop9 b 7 9 && mkfifo {d}/dev/fifo && chmod 0666 {d}/dev/null",
        d = d(&root)
    ));
    fs::copy(root.join("bin/busybox"), root.join("bin/capped")).unwrap();
    setcap("cap_net_raw+ep", &root.join("bin/capped"));
    {
        use std::os::fd::AsFd;
        let f = fs::File::open(etc.join("owned")).unwrap();
        // A newline inside a value (its PAX record is read by its length).
        chroot_tool::sys::xattr::set(f.as_fd(), b"user.note", b"\x00bin\nary\xff").unwrap();
        // An ACL that reads uid 10 (0x0a: a newline byte in its binary form).
        let mut acl = 2u32.to_le_bytes().to_vec();
        for (tag, perm, id) in [
            (0x01u16, 6u16, u32::MAX),
            (0x02, 4, 10),
            (0x04, 4, u32::MAX),
            (0x10, 4, u32::MAX),
            (0x20, 4, u32::MAX),
        ] {
            acl.extend(tag.to_le_bytes());
            acl.extend(perm.to_le_bytes());
            acl.extend(id.to_le_bytes());
        }
        let f = fs::File::open(etc.join("passwd")).unwrap();
        chroot_tool::sys::xattr::set(f.as_fd(), b"system.posix_acl_access", &acl).unwrap();
    }
    // A read-only directory with something in it, and old mtimes.
    fs::create_dir_all(root.join("ro/inner")).unwrap();
    fs::write(root.join("ro/inner/f"), "x").unwrap();
    sh(&format!(
        "touch -h -d 2001-02-03T04:05:06Z {d}/ro/inner/f {d}/ro/inner {d}/abs-link && chmod 0555 {d}/ro",
        d = d(&root)
    ));
    root
}

#[test]
fn round_trip_keeps_owners_modes_xattrs_links_and_devices_in_every_compression() {
    let ns = Ns::new();
    let root = rich_root(&ns, "src");
    let want = listing(&root);
    assert!(getcap(&root.join("bin/capped")).contains("cap_net_raw"));
    for ext in ["tar.zst", "tar.xz", "tar.gz", "tar"] {
        let file = ns.tmp.path().join(format!("sb.{ext}"));
        ok(&ns.run(&["pack", "-q", "-d", d(&root), "-o", d(&file)]));
        let magic = fs::read(&file).unwrap();
        let want_magic: &[u8] = match ext {
            "tar.zst" => &[0x28, 0xb5, 0x2f, 0xfd],
            "tar.xz" => b"\xfd7zXZ\0",
            "tar.gz" => &[0x1f, 0x8b],
            _ => b"./",
        };
        assert!(
            magic.starts_with(want_magic),
            "{ext} is not what its name says"
        );
        let copy = ns.tmp.path().join(format!("copy-{ext}"));
        ok(&ns.run(&["unpack", "-q", d(&file), "-d", d(&copy)]));
        // A set-id file: DIR is held at 0700 until accepted.
        assert_eq!(fs::metadata(&copy).unwrap().mode() & 0o7777, 0o700);
        ok(&ns.run(&["unpack", "-q", "--accept", "-d", d(&copy)]));
        let got = listing(&copy);
        assert_eq!(got, want, "{ext}: the copy differs");
        assert!(
            getcap(&copy.join("bin/capped")).contains("cap_net_raw"),
            "{ext}"
        );
        // The copy works as a sandbox.
        assert_eq!(
            ok(&ns.run_in(&copy, &["--", "/bin/cat", "/etc/owned.link"])),
            "data\n"
        );
        ok(&ns.run(&["off", "-d", d(&copy)]));
    }
}

#[test]
fn pack_leaves_out_exclude_and_its_own_archive() {
    let ns = Ns::new();
    let root = ns.busybox_root("src");
    fs::create_dir_all(root.join("var/cache/apt/archives")).unwrap();
    fs::write(root.join("var/cache/apt/archives/big.deb"), "x").unwrap();
    fs::create_dir_all(root.join("srv/keep")).unwrap();
    fs::write(root.join("srv/keep/f"), "x").unwrap();
    fs::write(
        root.join("chroot.d/tool.conf"),
        "[exclude]\n/var/cache/apt/archives\n\"srv/keep/f\"\n",
    )
    .unwrap();
    // The archive written inside DIR is not packed into itself.
    let file = root.join("self.tar");
    ok(&ns.run(&["pack", "-q", "-d", d(&root), "-o", d(&file)]));
    let copy = ns.tmp.path().join("copy");
    ok(&ns.run(&["unpack", "-q", d(&file), "-d", d(&copy)]));
    assert!(copy.join("var/cache/apt").is_dir());
    assert!(!copy.join("var/cache/apt/archives").exists());
    assert!(copy.join("srv/keep").is_dir());
    assert!(!copy.join("srv/keep/f").exists());
    assert!(!copy.join("self.tar").exists());
    assert!(copy.join("chroot.d/tool.conf").is_file());
}

/// A sparse file's holes are read, packed and unpacked as zeros (a tar
/// keeps none), so one made inside a sandbox could fill the host's disk
/// through `export --bundle` or `create --from`: past 1 GiB of holes in
/// one walk, `pack`, `export --bundle` and `create --from` refuse, naming
/// the file and `[exclude]`, and leave nothing behind; for one file, and
/// for several adding up. Left out with `[exclude]`, the walk goes on, and
/// a file with fewer holes keeps its size and data.
#[test]
fn sparse_files_past_the_limit_are_refused_not_written_out() {
    use std::os::unix::fs::FileExt;
    let ns = Ns::new();
    let root = ns.busybox_root("src");
    let r = d(&root).to_string();
    let sparse = |name: &str, size: u64, data_at: u64| {
        let f = fs::File::create(root.join(name)).unwrap();
        f.write_at(b"data", data_at).unwrap();
        f.set_len(size).unwrap();
    };
    let out = ns.tmp.path().join("out");
    fs::create_dir(&out).unwrap();
    let refused = |args: &[&str], name: &str| {
        let o = ns.run(args);
        assert_eq!(code(&o), 1, "{args:?}: {}", stderr(&o));
        let e = stderr(&o);
        // (create's longer line may be shortened in its middle.)
        assert!(e.contains(&format!("/{name}: a sparse file of ")), "{e}");
        assert!(e.contains("`[exclude]`") || args[0] == "create", "{e}");
    };
    let tar = d(&out.join("a.tar.zst")).to_string();
    let bundle = d(&out.join("bundle")).to_string();
    let clone = d(&ns.tmp.path().join("clone")).to_string();
    let cases: [&[&str]; 3] = [
        &["pack", "-q", "-d", &r, "-o", &tar],
        &["export", "-q", "-d", &r, "--bundle", &bundle],
        &["create", "-q", "--from", &r, "-d", &clone],
    ];
    // One file of 2 GiB with 4 bytes of data.
    sparse("big", 2 << 30, 1 << 30);
    for args in cases {
        refused(args, "big");
        assert_eq!(
            fs::read_dir(&out).unwrap().count(),
            0,
            "{args:?} left something"
        );
    }
    assert!(!Path::new(&clone).join("big").exists());
    // Three of 400 MiB: the third is one too many.
    fs::remove_file(root.join("big")).unwrap();
    for n in ["s1", "s2", "s3"] {
        sparse(n, 400 << 20, 0);
    }
    refused(cases[0], "s3");
    assert_eq!(fs::read_dir(&out).unwrap().count(), 0);
    // Left out, the walk goes on; fewer holes are kept as zeros.
    for n in ["s1", "s2", "s3"] {
        fs::remove_file(root.join(n)).unwrap();
    }
    sparse("big", 2 << 30, 1 << 30);
    sparse("small", 8 << 20, 4 << 20);
    fs::write(root.join("chroot.d/tool.conf"), "[exclude]\n/big\n").unwrap();
    ok(&ns.run(cases[0]));
    let copy = ns.tmp.path().join("copy");
    ok(&ns.run(&["unpack", "-q", &tar, "-d", d(&copy)]));
    assert!(!copy.join("big").exists());
    let small = fs::File::open(copy.join("small")).unwrap();
    assert_eq!(small.metadata().unwrap().len(), 8 << 20);
    let mut b = [0u8; 4];
    small.read_exact_at(&mut b, 4 << 20).unwrap();
    assert_eq!(&b, b"data");
}

#[test]
fn a_debian_sandbox_packed_while_on_unpacks_and_runs_apt() {
    let ns = Ns::new();
    let root = ns.debian_root("deb");
    let host = ns.tmp.path().join("project");
    fs::create_dir_all(&host).unwrap();
    fs::write(host.join("host-file"), "of the host").unwrap();
    fs::write(
        root.join("chroot.d/tool.conf"),
        format!("[bind]\nsrc:{} tgt:/project\n", d(&host)),
    )
    .unwrap();
    // A file under /tmp on disk, hidden by the tmpfs while on: it is the
    // sandbox's own and is packed; what the tmpfs holds is not.
    fs::write(root.join("tmp/on-disk"), "x").unwrap();
    fs::copy(root.join("bin/true"), root.join("usr/local/bin/ping")).unwrap();
    setcap("cap_net_raw+ep", &root.join("usr/local/bin/ping"));
    ok(&ns.run_in(&root, &["touch /tmp/in-tmpfs"]));
    assert!(
        ns.mounts_under(&root).len() >= 4,
        "{:?}",
        ns.mounts_under(&root)
    );
    let file = ns.tmp.path().join("deb.tar.zst");
    ok(&ns.run(&["pack", "-d", d(&root), "-o", d(&file)]));
    let before = ns.mounts_under(&root);
    assert!(!before.is_empty(), "pack turned the sandbox off");

    let copy = ns.tmp.path().join("copy");
    ok(&ns.run(&["unpack", d(&file), "-d", d(&copy)]));
    assert_eq!(
        fs::read_dir(copy.join("proc")).unwrap().count(),
        0,
        "/proc content packed"
    );
    assert_eq!(
        fs::read_dir(copy.join("sys")).unwrap().count(),
        0,
        "/sys content packed"
    );
    assert!(copy.join("project").is_dir());
    assert!(
        !copy.join("project/host-file").exists(),
        "bind content packed"
    );
    assert!(copy.join("tmp/on-disk").exists());
    assert!(!copy.join("tmp/in-tmpfs").exists(), "tmpfs content packed");
    // The devpts and tmpfs of /dev are not packed: only what is on disk.
    assert!(!copy.join("dev/pts/ptmx").exists());
    assert!(getcap(&copy.join("usr/local/bin/ping")).contains("cap_net_raw"));
    // The copy's bind of a host path was set aside (someone else's archive).
    assert!(copy.join("chroot.d/tool.conf.untrusted").is_file());
    let o = ns.run_in(&copy, &["--", "apt-get", "--version"]);
    assert!(ok(&o).starts_with("apt "), "{}", stdout(&o));
    assert!(
        ns.mounts_under(&copy)
            .iter()
            .all(|m| !m.ends_with("/project")),
        "an untrusted bind was mounted"
    );
    ok(&ns.run(&["off", "-d", d(&copy)]));
    ok(&ns.run(&["off", "-d", d(&root)]));
}

#[test]
fn an_archive_of_the_original_tool_unpacks() {
    let ns = Ns::new();
    let root = rich_root(&ns, "old");
    fs::create_dir_all(root.join("proc/1")).unwrap();
    // The original's pack: tar -cJ of the rootfs, leaving out proc, sys, dev, var/run.
    let file = ns.tmp.path().join("old.tar.xz");
    sh(&format!(
        "tar -C {} -cJf {} --exclude=./proc --exclude=./sys --exclude=./dev --exclude=./var/run .",
        d(&root),
        d(&file)
    ));
    let copy = ns.tmp.path().join("copy");
    ok(&ns.run(&["unpack", "-q", d(&file), "-d", d(&copy)]));
    assert!(!copy.join("proc").exists() && !copy.join("dev").exists());
    let md = fs::metadata(copy.join("etc/owned")).unwrap();
    assert_eq!(
        (md.uid(), md.gid(), md.mode() & 0o7777),
        (1234, 5678, 0o4751)
    );
    assert_eq!(md.nlink(), 2);
    assert_eq!(
        ok(&ns.run_in(&copy, &["--", "/bin/echo", "works"])),
        "works\n"
    );
    ok(&ns.run(&["off", "-d", d(&copy)]));
}

// --- crafted archives -------------------------------------------------

enum Kind<'a> {
    File(&'a [u8]),
    Dir,
    Symlink(&'a str),
    Hard(&'a str),
}

/// A tar with names as given, `..` and absolute ones included (written
/// into the raw header: the tar crate's own setters refuse them).
fn crafted(path: &Path, members: &[(&str, Kind)]) {
    let mut b = tar::Builder::new(fs::File::create(path).unwrap());
    for (name, kind) in members {
        let mut h = tar::Header::new_gnu();
        let raw = &mut h.as_old_mut().name;
        assert!(
            name.len() < raw.len(),
            "test path too long for a plain header: {name}"
        );
        raw[..name.len()].copy_from_slice(name.as_bytes());
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        let data: &[u8] = match kind {
            Kind::File(data) => {
                h.set_entry_type(tar::EntryType::Regular);
                data
            }
            Kind::Dir => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                b""
            }
            Kind::Symlink(t) | Kind::Hard(t) => {
                h.set_entry_type(if matches!(kind, Kind::Symlink(_)) {
                    tar::EntryType::Symlink
                } else {
                    tar::EntryType::Link
                });
                let l = &mut h.as_old_mut().linkname;
                assert!(
                    t.len() < l.len(),
                    "test path too long for a plain header: {t}"
                );
                l[..t.len()].copy_from_slice(t.as_bytes());
                b""
            }
        };
        h.set_size(data.len() as u64);
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.finish().unwrap();
}

#[test]
fn unpack_refuses_members_that_would_land_outside_naming_them() {
    let ns = Ns::new();
    let outside = ns.tmp.path().join("outside");
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("secret"), "secret").unwrap();
    let o = d(&outside).to_string();
    // (what, the members, what the error must name)
    type Case<'a> = (&'a str, Vec<(&'a str, Kind<'a>)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            "dotdot",
            vec![
                ("ok", Kind::File(b"x")),
                ("a/../../outside/pwned", Kind::File(b"x")),
            ],
            "a/../../outside/pwned",
        ),
        (
            "absolute",
            vec![(leak(&format!("{o}/pwned")), Kind::File(b"x"))],
            "/outside/pwned",
        ),
        (
            "symlink-absolute",
            vec![
                ("evil", Kind::Symlink(leak(&o))),
                ("evil/pwned", Kind::File(b"x")),
            ],
            "evil/pwned",
        ),
        (
            "symlink-relative",
            vec![
                ("d", Kind::Dir),
                ("d/evil", Kind::Symlink("../../outside")),
                ("d/evil/pwned", Kind::File(b"x")),
            ],
            "d/evil/pwned",
        ),
        (
            "symlink-dir",
            vec![("evil", Kind::Symlink(leak(&o))), ("evil/sub/", Kind::Dir)],
            "evil/sub",
        ),
        (
            "dir-then-symlink",
            vec![
                ("d/", Kind::Dir),
                ("d", Kind::Symlink(leak(&o))),
                ("d/pwned", Kind::File(b"x")),
            ],
            "d/pwned",
        ),
        (
            "hardlink-dotdot",
            vec![("h", Kind::Hard("../outside/secret"))],
            "../outside/secret",
        ),
        (
            "hardlink-absolute",
            vec![("h", Kind::Hard(leak(&format!("{o}/secret"))))],
            "/outside/secret",
        ),
        (
            "hardlink-through-symlink",
            vec![
                ("evil", Kind::Symlink(leak(&o))),
                ("h", Kind::Hard("evil/secret")),
            ],
            "evil",
        ),
    ];
    for (what, members, named) in cases {
        let file = ns.tmp.path().join(format!("{what}.tar"));
        crafted(&file, &members);
        let dir = ns.tmp.path().join(format!("x-{what}"));
        let out = ns.run(&["unpack", "-q", d(&file), "-d", d(&dir)]);
        assert_eq!(code(&out), 1, "{what}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.starts_with("chroot-tool: "), "{what}: {err}");
        assert!(
            err.contains("refusing to unpack it") && err.contains(named),
            "{what}: {err}"
        );
        let names: Vec<_> = fs::read_dir(&outside)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["secret"], "{what}: something landed outside");
        assert_eq!(
            fs::read_to_string(outside.join("secret")).unwrap(),
            "secret"
        );
        assert_eq!(
            fs::metadata(outside.join("secret")).unwrap().nlink(),
            1,
            "{what}"
        );
    }
}

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_string().into_boxed_str())
}

#[test]
fn a_member_replacing_a_planted_symlink_never_writes_through_it() {
    let ns = Ns::new();
    let outside = ns.tmp.path().join("outside");
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("target"), "host").unwrap();
    let file = ns.tmp.path().join("replace.tar");
    let t = format!("{}/target", d(&outside));
    crafted(
        &file,
        &[
            ("evil", Kind::Symlink(&t)),
            ("evil", Kind::File(b"archive")),
        ],
    );
    let dir = ns.tmp.path().join("x");
    ok(&ns.run(&["unpack", "-q", d(&file), "-d", d(&dir)]));
    assert_eq!(fs::read_to_string(outside.join("target")).unwrap(), "host");
    assert!(fs::symlink_metadata(dir.join("evil")).unwrap().is_file());
    assert_eq!(fs::read_to_string(dir.join("evil")).unwrap(), "archive");
}

#[test]
fn unpack_refuses_a_non_empty_directory() {
    let ns = Ns::new();
    let root = ns.busybox_root("src");
    let file = ns.tmp.path().join("sb.tar.zst");
    ok(&ns.run(&["pack", "-q", "-d", d(&root), "-o", d(&file)]));
    let dir = ns.tmp.path().join("full");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("mine"), "x").unwrap();
    let out = ns.run(&["unpack", "-q", d(&file), "-d", d(&dir)]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("not empty"), "{}", stderr(&out));
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
}

// --- trust -------------------------------------------------------------

#[test]
fn host_binds_and_host_cmd_of_an_archive_stay_off_until_trusted() {
    let ns = Ns::new();
    let root = ns.busybox_root("src");
    let host = ns.tmp.path().join("host-dir");
    fs::create_dir_all(&host).unwrap();
    fs::write(host.join("host-file"), "x").unwrap();
    let marker = ns.tmp.path().join("host-cmd-ran");
    fs::write(
        root.join("chroot.d/tool.conf"),
        format!(
            "[bind]\nsrc:{} tgt:/hostdir\ntgt:/scratch fs:tmpfs\n[exclude]\n/nothing\n",
            d(&host)
        ),
    )
    .unwrap();
    script(
        &root.join("chroot.d/host-cmd"),
        &format!("#!/bin/sh\ntouch {}\n", d(&marker)),
    );
    let file = ns.tmp.path().join("sb.tar.zst");
    ok(&ns.run(&["pack", "-q", "-d", d(&root), "-o", d(&file)]));

    let copy = ns.tmp.path().join("copy");
    let out = ns.run(&["unpack", d(&file), "-d", d(&copy)]);
    ok(&out);
    let err = stderr(&out);
    assert!(err.contains(d(&host)) && err.contains("/hostdir"), "{err}");
    assert!(
        err.contains("host-cmd") && err.contains("--accept"),
        "{err}"
    );
    assert!(
        !err.contains("/scratch"),
        "a tmpfs is not a host path: {err}"
    );
    let cd = copy.join("chroot.d");
    assert!(!cd.join("tool.conf").exists() && cd.join("tool.conf.untrusted").is_file());
    assert!(!cd.join("host-cmd").exists() && cd.join("host-cmd.untrusted").is_file());
    ok(&ns.run_in(&copy, &["--", "/bin/true"]));
    assert!(!marker.exists(), "the untrusted host-cmd ran");
    let seen = |p: &Path| ns.sh(&format!("test -e {}", d(p))).status.success();
    assert!(seen(&copy.join("bin")));
    assert!(
        !seen(&copy.join("hostdir/host-file")),
        "the untrusted bind was mounted"
    );
    ok(&ns.run(&["off", "-d", d(&copy)]));

    // Accepted later.
    ok(&ns.run(&["unpack", "--accept", "-d", d(&copy)]));
    assert!(cd.join("tool.conf").is_file() && cd.join("host-cmd").is_file());
    ok(&ns.run_in(&copy, &["--", "/bin/true"]));
    assert!(marker.exists(), "the accepted host-cmd did not run");
    assert!(seen(&copy.join("hostdir/host-file")));
    ok(&ns.run(&["off", "-d", d(&copy)]));
    fs::remove_file(&marker).unwrap();

    // Trusted at once.
    let trusted = ns.tmp.path().join("trusted");
    ok(&ns.run(&["unpack", "-q", "--trust", d(&file), "-d", d(&trusted)]));
    assert!(trusted.join("chroot.d/tool.conf").is_file());
    ok(&ns.run_in(&trusted, &["--", "/bin/true"]));
    assert!(marker.exists());
    ok(&ns.run(&["off", "-d", d(&trusted)]));
}

#[test]
fn an_archive_without_anything_acting_on_the_host_is_left_as_it_is() {
    let ns = Ns::new();
    let root = ns.busybox_root("src");
    fs::write(
        root.join("chroot.d/tool.conf"),
        "[bind]\ntgt:/scratch fs:tmpfs\n",
    )
    .unwrap();
    let file = ns.tmp.path().join("sb.tar.gz");
    ok(&ns.run(&["pack", "-q", "-d", d(&root), "-o", d(&file)]));
    let copy = ns.tmp.path().join("copy");
    let out = ns.run(&["unpack", "-q", d(&file), "-d", d(&copy)]);
    ok(&out);
    assert_eq!(stderr(&out), "");
    assert!(copy.join("chroot.d/tool.conf").is_file());
}

// --- create's cache and --from ------------------------------------------

/// A stand-in for debootstrap, first in PATH: a busybox root with a
/// device node, an owned file, and `etc/made` unique to each run; every
/// run is counted in `$STUB_STATE/runs`.
const STUB_DEBOOTSTRAP: &str = r#"#!/bin/sh
if [ "$1" = --version ]; then echo "debootstrap 0.0-stub"; exit 0; fi
n=$#; i=0
for a; do i=$((i+1)); [ $i -eq $((n-1)) ] && dir=$a; done
echo run >> "$STUB_STATE/runs"
mkdir -p "$dir/bin" "$dir/etc" "$dir/dev" "$dir/root" || exit 9
cp "$STUB_BUSYBOX" "$dir/bin/busybox" && ln -s busybox "$dir/bin/sh" && ln -s busybox "$dir/bin/cat" || exit 9
echo "root:x:0:0:root:/root:/bin/sh" > "$dir/etc/passwd"
echo "root:x:0:" > "$dir/etc/group"
echo 'VERSION_CODENAME=stub' > "$dir/etc/os-release"
echo "$$ $(date +%s%N)" > "$dir/etc/made"
chown 1234:4321 "$dir/etc/made"
mknod "$dir/dev/null" c 1 3
printf 'P: 1 100 DOWNREL\nPF: Retrieving Release\n' >&3
printf 'I: CHECKINGSIZES\nIA: main\nIA: http://stub.example/debian\nIF: Checking component %%s on %%s...\n' >&3
exit 0
"#;

struct Stub {
    bin: PathBuf,
    state: PathBuf,
}

impl Stub {
    fn new(ns: &Ns) -> Stub {
        let bin = ns.tmp.path().join("stubbin");
        let state = ns.tmp.path().join("stubstate");
        fs::create_dir_all(&bin).unwrap();
        fs::create_dir_all(&state).unwrap();
        script(&bin.join("debootstrap"), STUB_DEBOOTSTRAP);
        Stub { bin, state }
    }

    fn cmd(&self, ns: &Ns, dir: &Path, extra: &[&str]) -> Command {
        self.cmd_as(ns.tool(), dir, extra)
    }

    /// `c` (chroot-tool, or a command that runs it) given the stub's
    /// environment and `create ... -d DIR EXTRA`.
    fn cmd_as(&self, mut c: Command, dir: &Path, extra: &[&str]) -> Command {
        let busybox = ["/bin/busybox", "/usr/bin/busybox"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("busybox-static is needed (apt-get install busybox-static)");
        c.env(
            "PATH",
            format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", self.bin.display()),
        )
        .env("STUB_STATE", &self.state)
        .env("STUB_BUSYBOX", busybox)
        // The stub stands for debootstrap (auto would take mmdebstrap).
        .args(["create", "--backend", "debootstrap", "-d"])
        .arg(dir)
        .args(extra);
        c
    }

    #[track_caller]
    fn create(&self, ns: &Ns, dir: &Path, extra: &[&str]) -> String {
        let out = output_within(&mut self.cmd(ns, dir, extra), DEADLINE);
        ok(&out);
        stderr(&out)
    }

    fn runs(&self) -> usize {
        fs::read_to_string(self.state.join("runs"))
            .map(|t| t.lines().count())
            .unwrap_or(0)
    }
}

fn made(dir: &Path) -> String {
    fs::read_to_string(dir.join("etc/made")).unwrap()
}

/// The files in the cache's rootfs directory.
fn cache_files(ns: &Ns) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(ns.tmp.path().join("cache/rootfs"))
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn create_uses_the_cache_for_the_same_settings_only() {
    let ns = Ns::new();
    let stub = Stub::new(&ns);
    let t = ns.tmp.path();
    // Miss: the backend runs, its rootfs is stored (without chroot.d).
    stub.create(&ns, &t.join("a"), &["-q"]);
    assert_eq!(stub.runs(), 1);
    let files = cache_files(&ns);
    assert_eq!(files.len(), 3, "{files:?}");
    assert!(files.iter().any(|f| f.ends_with(".tar.zst")), "{files:?}");
    assert!(files.iter().any(|f| f.ends_with(".key")), "{files:?}");
    assert!(
        files.iter().all(|f| f.starts_with("stable-minbase-")),
        "{files:?}"
    );

    // Hit: no backend; the same rootfs, the sandbox's own files its own.
    let err = stub.create(&ns, &t.join("b"), &[]);
    assert!(err.contains("from the cache"), "{err}");
    assert_eq!(stub.runs(), 1);
    let b = t.join("b");
    assert_eq!(made(&b), made(&t.join("a")));
    let md = fs::metadata(b.join("etc/made")).unwrap();
    assert_eq!((md.uid(), md.gid()), (1234, 4321));
    assert!(std::os::unix::fs::FileTypeExt::is_char_device(
        &fs::metadata(b.join("dev/null")).unwrap().file_type()
    ));
    assert_eq!(fs::read_to_string(b.join("etc/hostname")).unwrap(), "b\n");
    assert!(b.join("chroot.d/tool.conf").is_file());
    let rec = chroot_tool::create::load(&b).expect("create.toml");
    assert_eq!(rec.codename.as_deref(), Some("stub"));
    let log = fs::read_to_string(b.join("chroot.d/create.log")).unwrap();
    assert!(log.contains("rootfs from the cache"), "{log}");
    assert_eq!(
        ok(&ns.run_in(&b, &["--", "/bin/cat", "/etc/made"])),
        made(&b)
    );
    ok(&ns.run(&["off", "-d", d(&b)]));

    // --no-cache: the backend runs, the cache is left as it was.
    let before = fs::read(
        t.join("cache/rootfs")
            .join(files.iter().find(|f| f.ends_with(".tar.zst")).unwrap()),
    )
    .unwrap();
    stub.create(&ns, &t.join("c"), &["-q", "--no-cache"]);
    assert_eq!(stub.runs(), 2);
    assert_ne!(made(&t.join("c")), made(&t.join("a")));
    assert_eq!(cache_files(&ns), files);
    let after = fs::read(
        t.join("cache/rootfs")
            .join(files.iter().find(|f| f.ends_with(".tar.zst")).unwrap()),
    )
    .unwrap();
    assert!(before == after, "--no-cache changed the cache");

    // Other settings: another entry.
    stub.create(&ns, &t.join("d"), &["-q", "--include", "less,procps"]);
    assert_eq!(stub.runs(), 3);
    assert_eq!(cache_files(&ns).len(), 6);
    // The same includes in another order: a hit.
    stub.create(&ns, &t.join("d2"), &["-q", "--include", "procps,less"]);
    assert_eq!(stub.runs(), 3);
    assert_eq!(made(&t.join("d2")), made(&t.join("d")));

    // --refresh: the backend runs, and its rootfs replaces the entry.
    stub.create(&ns, &t.join("e"), &["-q", "--refresh"]);
    assert_eq!(stub.runs(), 4);
    stub.create(&ns, &t.join("f"), &["-q"]);
    assert_eq!(stub.runs(), 4);
    assert_eq!(made(&t.join("f")), made(&t.join("e")));
    assert_ne!(made(&t.join("f")), made(&t.join("a")));

    // An entry past the age limit is made again.
    for f in cache_files(&ns).iter().filter(|f| f.ends_with(".tar.zst")) {
        sh(&format!(
            "touch -d '8 days ago' {}",
            d(&t.join("cache/rootfs").join(f))
        ));
    }
    stub.create(&ns, &t.join("g"), &["-q"]);
    assert_eq!(stub.runs(), 5);
    assert_ne!(made(&t.join("g")), made(&t.join("e")));
    stub.create(&ns, &t.join("h"), &["-q"]);
    assert_eq!(stub.runs(), 5);
    assert_eq!(made(&t.join("h")), made(&t.join("g")));
    // One made in the future (a clock set back) is not new: made again.
    for f in cache_files(&ns).iter().filter(|f| f.ends_with(".tar.zst")) {
        sh(&format!(
            "touch -d '2 days' {}",
            d(&t.join("cache/rootfs").join(f))
        ));
    }
    stub.create(&ns, &t.join("h2"), &["-q"]);
    assert_eq!(stub.runs(), 6, "an entry from the future was used");
    stub.create(&ns, &t.join("h3"), &["-q"]);
    assert_eq!(stub.runs(), 6);

    // An entry emptied, or cut in half: never a sandbox without a rootfs,
    // nor a create that fails until --refresh. The entry is removed, the
    // rootfs built again and stored anew, and the next create hits it.
    let entry = t
        .join("cache/rootfs")
        .join(files.iter().find(|f| f.ends_with(".tar.zst")).unwrap());
    let whole = fs::read(&entry).unwrap();
    for (i, cut) in [0, whole.len() / 2].into_iter().enumerate() {
        fs::write(&entry, &whole[..cut]).unwrap();
        let dir = t.join(format!("cut{i}"));
        let err = stub.create(&ns, &dir, &[]);
        assert_eq!(
            err.matches("is unusable").count(),
            1,
            "{cut}: said once: {err}"
        );
        assert_eq!(stub.runs(), 7 + i, "{cut}");
        assert!(dir.join("bin/sh").exists(), "{cut}");
        let log = fs::read_to_string(dir.join("chroot.d/create.log")).unwrap();
        assert!(log.contains("is unusable"), "{cut}: {log}");
        assert!(fs::metadata(&entry).unwrap().len() > 0, "{cut}");
        stub.create(&ns, &t.join(format!("after{i}")), &["-q"]);
        assert_eq!(stub.runs(), 7 + i, "{cut}: the new entry was not used");
        assert_eq!(made(&t.join(format!("after{i}"))), made(&dir));
    }
    // What fails on DIR's side (its disk full) is not the entry's fault:
    // the create fails, naming its log, and the entry stays as it was.
    let small = t.join("small");
    fs::create_dir(&small).unwrap();
    ok(&ns.sh(&format!(
        "mount -t tmpfs -o size=256k tmpfs '{}'",
        d(&small)
    )));
    let (before, runs) = (fs::read(&entry).unwrap(), stub.runs());
    let o = output_within(&mut stub.cmd(&ns, &small.join("sb"), &["-q"]), DEADLINE);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("unpacking the cached rootfs") && stderr(&o).contains("create.log"),
        "{}",
        stderr(&o)
    );
    assert!(fs::read(&entry).unwrap() == before, "the entry changed");
    assert_eq!(stub.runs(), runs);
}

/// Whatever the umask (000 here), what create writes is root's alone: the
/// sandbox's chroot.d (its log too, which `on` would otherwise refuse),
/// and the cache's entry (which the next create would otherwise not use).
#[test]
fn create_under_umask_000_makes_what_on_and_the_cache_accept() {
    let ns = Ns::new();
    let stub = Stub::new(&ns);
    let t = ns.tmp.path();
    for (i, name) in ["a", "b"].into_iter().enumerate() {
        let dir = t.join(name);
        let mut sh = ns.cmd("sh");
        sh.args(["-c", "umask 000 && exec \"$0\" \"$@\"", common::BIN]);
        let o = output_within(&mut stub.cmd_as(sh, &dir, &[]), DEADLINE);
        ok(&o);
        assert_eq!(stub.runs(), 1, "{name}: {}", stderr(&o));
        assert_eq!(
            stderr(&o).contains("from the cache"),
            i == 1,
            "{}",
            stderr(&o)
        );
        assert!(!stderr(&o).contains("not used"), "{}", stderr(&o));
        ok(&ns.run(&["on", "-d", d(&dir)]));
        ok(&ns.run(&["off", "-d", d(&dir)]));
    }
}

/// A cache another user could have written is neither read nor written:
/// the create goes without it and says why. An entry whose archive
/// carries a chroot.d (the cache never stores one) has it reviewed as an
/// unpacked archive's: host-cmd is set aside.
#[test]
fn create_refuses_a_cache_another_user_could_write() {
    let ns = Ns::new();
    let stub = Stub::new(&ns);
    let t = ns.tmp.path();
    let cache = t.join("cache");
    let rootfs = cache.join("rootfs");
    stub.create(&ns, &t.join("a"), &["-q"]);
    let files = cache_files(&ns);
    let archive = rootfs.join(files.iter().find(|f| f.ends_with(".tar.zst")).unwrap());
    let key = rootfs.join(files.iter().find(|f| f.ends_with(".key")).unwrap());
    // The poison: a rootfs whose chroot.d has a host-cmd, as the entry.
    let marker = t.join("host-cmd-ran");
    let a = t.join("a");
    fs::write(
        a.join("chroot.d/host-cmd"),
        format!("#!/bin/sh\ntouch {}\n", d(&marker)),
    )
    .unwrap();
    fs::set_permissions(
        a.join("chroot.d/host-cmd"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    ok(&ns.run(&["pack", "-q", "-d", d(&a), "-o", d(&archive)]));
    let poisoned = fs::read(&archive).unwrap();
    let untrusted: [(&str, &Path, &str); 5] = [
        ("chown -R nobody", &cache, "owned by uid 65534"),
        ("chmod 0757", &cache, "writable by others"),
        ("chmod 0770", &rootfs, "writable by its group"),
        ("chown nobody", &key, "owned by uid 65534"),
        ("chmod 0646", &archive, "writable by others"),
    ];
    let mut runs = stub.runs();
    for (i, (change, path, why)) in untrusted.iter().enumerate() {
        sh(&format!(
            "chown -R root:root {0} && chmod 0700 {0} {1} && chmod 0644 {1}/*",
            d(&cache),
            d(&rootfs)
        ));
        sh(&format!("{change} {}", d(path)));
        let dir = t.join(format!("u{i}"));
        let err = stub.create(&ns, &dir, &[]);
        runs += 1;
        assert_eq!(stub.runs(), runs, "{change}: the cache was used\n{err}");
        let line = format!("the cache is not used: {}: {why}", d(path));
        assert_eq!(err.matches(&line).count(), 1, "{change}: {err}");
        assert!(!dir.join("chroot.d/host-cmd").exists(), "{change}");
        assert!(
            fs::read(&archive).unwrap() == poisoned,
            "{change}: the cache was written"
        );
        let log = fs::read_to_string(dir.join("chroot.d/create.log")).unwrap();
        assert!(log.contains(&line), "{log}");
    }
    // A symlink in the cache's place is not followed.
    sh(&format!(
        "chown -R root:root {0} && chmod 0700 {0} {1} && chmod 0644 {1}/*",
        d(&cache),
        d(&rootfs)
    ));
    fs::rename(&cache, t.join("real-cache")).unwrap();
    std::os::unix::fs::symlink(t.join("real-cache"), &cache).unwrap();
    let err = stub.create(&ns, &t.join("link"), &[]);
    assert!(
        err.contains(&format!("{}: a symbolic link", d(&cache))),
        "{err}"
    );
    assert_eq!(stub.runs(), runs + 1);
    fs::remove_file(&cache).unwrap();
    fs::rename(t.join("real-cache"), &cache).unwrap();

    // The user's own cache is used; what its archive's chroot.d would run
    // on the host is set aside, and never runs.
    let dir = t.join("own");
    let err = stub.create(&ns, &dir, &[]);
    assert_eq!(stub.runs(), runs + 1, "{err}");
    assert!(err.contains("from the cache"), "{err}");
    assert!(err.contains("chroot.d would act on the host"), "{err}");
    assert!(!dir.join("chroot.d/host-cmd").exists());
    assert!(dir.join("chroot.d/host-cmd.untrusted").is_file());
    ok(&ns.run_in(&dir, &["--", "/bin/cat", "/etc/made"]));
    ok(&ns.run(&["off", "-d", d(&dir)]));
    assert!(!marker.exists(), "the cached host-cmd ran");
}

/// What a killed store left (`.NAME.partial-PID`) never stands in the way
/// of a later store by a process with the same pid, and is removed once
/// old; other files are left alone.
#[test]
fn a_killed_stores_leftovers_neither_block_nor_stay() {
    let ns = Ns::new();
    let stub = Stub::new(&ns);
    let t = ns.tmp.path();
    let rootfs = t.join("cache/rootfs");
    stub.create(&ns, &t.join("a"), &["-q"]);
    let files = cache_files(&ns);
    let name = files.iter().find(|f| f.ends_with(".tar.zst")).unwrap();
    let key = files.iter().find(|f| f.ends_with(".key")).unwrap();
    // In a new pid namespace chroot-tool is pid 1: a killed store's files
    // with that pid, hours old; one of another store still writing.
    let old = [format!(".{name}.partial-1"), format!(".{key}.partial-1")];
    for f in &old {
        fs::write(rootfs.join(f), "half").unwrap();
        sh(&format!("touch -d '1 day ago' {}", d(&rootfs.join(f))));
    }
    let fresh = format!(".{name}.partial-77");
    fs::write(rootfs.join(&fresh), "writing").unwrap();
    let other = "notes.partial-1";
    fs::write(rootfs.join(other), "mine").unwrap();
    sh(&format!("touch -d '1 day ago' {}", d(&rootfs.join(other))));
    let mut c = ns.cmd("unshare");
    c.args(["--pid", "--fork", "--", BIN])
        .stdin(std::process::Stdio::null());
    let out = output_within(&mut stub.cmd_as(c, &t.join("b"), &["--refresh"]), DEADLINE);
    ok(&out);
    let err = stderr(&out);
    assert!(!err.contains("not stored"), "{err}");
    assert_eq!(stub.runs(), 2);
    assert_ne!(made(&t.join("b")), made(&t.join("a")));
    let left = cache_files(&ns);
    for f in &old {
        assert!(!left.contains(f), "{f} stayed: {left:?}");
    }
    assert!(left.contains(&fresh), "{left:?}");
    assert!(left.contains(&other.to_string()), "{left:?}");
    // The stored entry is the new one.
    stub.create(&ns, &t.join("c"), &["-q"]);
    assert_eq!(stub.runs(), 2);
    assert_eq!(made(&t.join("c")), made(&t.join("b")));
}

#[test]
fn parallel_creates_never_corrupt_the_cache() {
    let ns = Ns::new();
    let stub = Stub::new(&ns);
    let t = ns.tmp.path();
    // Cold, then warm with a refresh among them.
    for round in 0..2 {
        let dirs: Vec<PathBuf> = (0..4).map(|i| t.join(format!("p{round}-{i}"))).collect();
        let children: Vec<_> = dirs
            .iter()
            .enumerate()
            .map(|(i, dir)| {
                let extra: &[&str] = if round == 1 && i == 0 {
                    &["-q", "--refresh"]
                } else {
                    &["-q"]
                };
                stub.cmd(&ns, dir, extra)
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for (c, dir) in children.into_iter().zip(&dirs) {
            let out = finish_within(c, DEADLINE);
            ok(&out);
            assert!(chroot_tool::create::load(dir).is_some(), "{}", d(dir));
            assert_eq!(made(dir).lines().count(), 1);
            assert!(dir.join("bin/busybox").is_file());
        }
    }
    // Only whole entries: no temporary file left, and the entry unpacks.
    let files = cache_files(&ns);
    assert_eq!(files.len(), 3, "{files:?}");
    let runs = stub.runs();
    stub.create(&ns, &t.join("after"), &["-q"]);
    assert_eq!(stub.runs(), runs, "the entry was not usable");
    let all: Vec<String> = fs::read_dir(t)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with('p'))
        .map(|p| made(&p))
        .collect();
    assert!(all.contains(&made(&t.join("after"))));
}

#[test]
fn create_from_a_sandbox_that_is_on_copies_what_is_on_disk() {
    let ns = Ns::new();
    let src = rich_root(&ns, "src");
    let host = ns.tmp.path().join("project");
    fs::create_dir_all(&host).unwrap();
    fs::write(host.join("host-file"), "x").unwrap();
    fs::write(
        src.join("chroot.d/tool.conf"),
        format!("[bind]\nsrc:{} tgt:/project\n[exclude]\n/ro\n", d(&host)),
    )
    .unwrap();
    ok(&ns.run_in(&src, &["--", "/bin/true"]));
    let mounted = ns.mounts_under(&src);
    assert!(mounted.len() >= 4, "{mounted:?}");

    // The source's own settings, which a copy keeps (all but its name).
    fs::create_dir_all(src.join("etc/default")).unwrap();
    fs::write(src.join("etc/hostname"), "src\n").unwrap();
    fs::write(src.join("etc/default/locale"), "LANG=de_DE.UTF-8\n").unwrap();
    fs::write(src.join("etc/timezone"), "Europe/Berlin\n").unwrap();
    let _ = fs::remove_file(src.join("etc/localtime"));
    symlink(
        "../usr/share/zoneinfo/Europe/Berlin",
        src.join("etc/localtime"),
    )
    .unwrap();
    fs::write(
        src.join("etc/hosts"),
        "127.0.0.1\tlocalhost\n127.0.1.1\tsrc\n10.1.1.1 myhost\n",
    )
    .unwrap();

    let clone = ns.tmp.path().join("clone");
    ok(&ns.run(&["create", "-q", "--from", d(&src), "-d", d(&clone)]));
    assert_eq!(ns.mounts_under(&src), mounted, "the source was changed");
    let read = |p: &str| fs::read_to_string(clone.join(p)).unwrap();
    assert_eq!(read("etc/default/locale"), "LANG=de_DE.UTF-8\n");
    assert_eq!(read("etc/timezone"), "Europe/Berlin\n");
    assert_eq!(
        fs::read_link(clone.join("etc/localtime")).unwrap(),
        Path::new("../usr/share/zoneinfo/Europe/Berlin")
    );
    assert_eq!(
        read("etc/hosts"),
        "127.0.0.1\tlocalhost\n127.0.1.1\tclone\n10.1.1.1 myhost\n"
    );
    // Owners, capabilities, devices as in an archive; no mount's content.
    let md = fs::metadata(clone.join("etc/owned")).unwrap();
    assert_eq!(
        (md.uid(), md.gid(), md.mode() & 0o7777),
        (1234, 5678, 0o4751)
    );
    assert_eq!(md.nlink(), 2);
    assert!(getcap(&clone.join("bin/capped")).contains("cap_net_raw"));
    assert!(clone.join("project").is_dir());
    assert!(!clone.join("project/host-file").exists());
    assert!(!clone.join("ro").exists(), "[exclude] is honoured");
    assert_eq!(fs::read_dir(clone.join("dev")).unwrap().count(), 3);
    // The source's own sandbox: its tool.conf kept as it is (trusted).
    assert_eq!(
        fs::read_to_string(clone.join("chroot.d/tool.conf")).unwrap(),
        fs::read_to_string(src.join("chroot.d/tool.conf")).unwrap()
    );
    assert_eq!(
        fs::read_to_string(clone.join("etc/hostname")).unwrap(),
        "clone\n"
    );
    assert!(chroot_tool::create::load(&clone).is_some());
    assert!(
        ns.tmp.path().join("cache").read_dir().is_err(),
        "--from used the cache"
    );
    ok(&ns.run_in(&clone, &["--", "/bin/true"]));
    assert!(ns
        .sh(&format!("test -e {}/project/host-file", d(&clone)))
        .status
        .success());
    ok(&ns.run(&["off", "-d", d(&clone)]));
    ok(&ns.run(&["off", "-d", d(&src)]));
}

/// An archive of something that is no root filesystem (no `/bin/sh`), or
/// of nothing, never gives a sandbox: a failed create that names its log,
/// which says why, and that the next create in DIR cleans.
#[test]
fn create_from_an_archive_without_a_rootfs_fails() {
    let ns = Ns::new();
    let t = ns.tmp.path();
    let stuff = t.join("stuff");
    fs::create_dir_all(stuff.join("etc")).unwrap();
    fs::write(stuff.join("etc/notes"), "no shell here\n").unwrap();
    let tar = t.join("stuff.tar");
    ok(&ns.sh(&format!("tar -C '{}' -cf '{}' .", d(&stuff), d(&tar))));
    let empty = t.join("empty.tar");
    ok(&ns.sh(&format!("tar -cf '{}' -T /dev/null", d(&empty))));
    for (i, file) in [&tar, &empty].into_iter().enumerate() {
        let dir = t.join(format!("copy{i}"));
        let o = ns.run(&["create", "-q", "--from", d(file), "-d", d(&dir)]);
        assert_eq!(code(&o), 1, "{}", stderr(&o));
        let log = dir.join("chroot.d/create.log");
        assert!(
            stderr(&o).contains("no root filesystem") && stderr(&o).contains(d(&log)),
            "{}",
            stderr(&o)
        );
        assert!(fs::read_to_string(&log)
            .unwrap()
            .contains("no root filesystem"));
        assert!(chroot_tool::create::load(&dir).is_none());
        // The next create there cleans it and makes a sandbox.
        let src = ns.busybox_root(&format!("src{i}"));
        ok(&ns.run(&["create", "-q", "--from", d(&src), "-d", d(&dir)]));
        assert!(dir.join("bin/sh").exists());
        assert!(!dir.join("etc/notes").exists());
    }
    // A source that is not there: said so, with what --from takes, and
    // nothing made.
    let dir = t.join("copy-none");
    let o = ns.run(&[
        "create",
        "-q",
        "--from",
        d(&t.join("none.tar")),
        "-d",
        d(&dir),
    ]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no such file or directory; --from takes"),
        "{}",
        stderr(&o)
    );
    assert!(!dir.exists());
}

/// A copy runs no debootstrap: what only debootstrap cannot take in
/// DIR's path (a space) is no reason to refuse one.
#[test]
fn create_from_takes_a_dir_debootstrap_could_not() {
    let ns = Ns::new();
    let src = ns.busybox_root("src");
    let dir = ns.tmp.path().join("with space");
    let o = ns.run(&["create", "--from", d(&src), "-d", d(&dir)]);
    ok(&o);
    // The hint's command line pastes as it is.
    assert!(
        stderr(&o).contains(&format!("try: chroot-tool run -d '{}' ", d(&dir))),
        "{}",
        stderr(&o)
    );
    assert_eq!(ok(&ns.run_in(&dir, &["--", "/bin/echo", "in"])), "in\n");
    ok(&ns.run(&["off", "-d", d(&dir)]));
    assert!(ns.mounts_under(&dir).is_empty());
}

#[test]
fn create_from_an_archive_sets_host_binds_aside_unless_trusted() {
    let ns = Ns::new();
    let src = ns.busybox_root("src");
    fs::write(
        src.join("chroot.d/tool.conf"),
        "[bind]\nsrc:/etc tgt:/hostetc\n",
    )
    .unwrap();
    let file = ns.tmp.path().join("sb.tar.xz");
    ok(&ns.run(&["pack", "-q", "-d", d(&src), "-o", d(&file)]));

    let copy = ns.tmp.path().join("copy");
    let out = ns.run(&["create", "-q", "--from", d(&file), "-d", d(&copy)]);
    ok(&out);
    assert!(stderr(&out).contains("/hostetc"), "{}", stderr(&out));
    assert!(copy.join("chroot.d/tool.conf.untrusted").is_file());
    // In its place, the template every new sandbox gets (no binds).
    assert_eq!(
        fs::read_to_string(copy.join("chroot.d/tool.conf")).unwrap(),
        chroot_tool::create::TOOL_CONF
    );
    assert!(chroot_tool::create::load(&copy).is_some());
    ok(&ns.run(&["unpack", "--accept", "-d", d(&copy)]));
    assert!(fs::read_to_string(copy.join("chroot.d/tool.conf"))
        .unwrap()
        .contains("/hostetc"));
    let log = fs::read_to_string(copy.join("chroot.d/create.log")).unwrap();
    assert!(log.contains("a copy of"), "{log}");

    let trusted = ns.tmp.path().join("trusted");
    ok(&ns.run(&[
        "create",
        "-q",
        "--trust",
        "--from",
        d(&file),
        "-d",
        d(&trusted),
    ]));
    assert!(trusted.join("chroot.d/tool.conf").is_file());
}

#[test]
fn a_debian_sandbox_cloned_with_from_runs_apt() {
    let ns = Ns::new();
    let root = ns.debian_root("deb");
    let clone = ns.tmp.path().join("clone");
    ok(&ns.run(&["create", "-q", "--from", d(&root), "-d", d(&clone)]));
    let rec = chroot_tool::create::load(&clone).expect("create.toml");
    assert_eq!(rec.suite, "stable");
    let o = ns.run_in(&clone, &["--", "apt-get", "--version"]);
    assert!(ok(&o).starts_with("apt "), "{}", stdout(&o));
    ok(&ns.run(&["off", "-d", d(&clone)]));
}

/// What OCI export builds on: with a fixed mtime and no root entry, the
/// same tree gives the same bytes, whatever its files' times and the order
/// the filesystem lists them in; and OCI whiteouts are applied on request.
#[test]
fn reproducible_tar_and_whiteouts_through_the_library() {
    use chroot_tool::archive::{self, PackOptions, Quiet, UnpackOptions};
    let ns = Ns::new();
    let root = rich_root(&ns, "src");
    let opts = PackOptions {
        mtime: Some(0),
        no_root_entry: true,
        ..PackOptions::default()
    };
    let (first, packed) = archive::write_tar(&root, Vec::new(), &opts, &mut Quiet).unwrap();
    assert!(packed.cloned && packed.mount_points.is_empty());
    sh(&format!("touch {d}/etc/owned {d}/bin {d}", d = d(&root)));
    let (again, _) = archive::write_tar(&root, Vec::new(), &opts, &mut Quiet).unwrap();
    assert!(first == again, "the same tree gave other bytes");
    let mut names = vec![];
    for e in tar::Archive::new(&first[..]).entries().unwrap() {
        let e = e.unwrap();
        assert_eq!(e.header().mtime().unwrap(), 0);
        names.push(e.path_bytes().into_owned());
    }
    assert!(!names.iter().any(|n| n == b"./"), "a root entry");
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);

    // A lower layer, then an upper one with a whiteout and an opaque directory.
    let dir = ns.tmp.path().join("layers");
    archive::unpack_tar(&first[..], &dir, &UnpackOptions::default(), &mut Quiet).unwrap();
    let upper = ns.tmp.path().join("upper.tar");
    crafted(
        &upper,
        &[
            ("etc/.wh.owned", Kind::File(b"")),
            ("ro/", Kind::Dir),
            ("ro/new", Kind::File(b"upper")),
            ("ro/.wh..wh..opq", Kind::File(b"")),
        ],
    );
    let layered = UnpackOptions {
        whiteouts: true,
        require_empty: false,
        ..UnpackOptions::default()
    };
    archive::unpack_tar(fs::File::open(&upper).unwrap(), &dir, &layered, &mut Quiet).unwrap();
    assert!(!dir.join("etc/owned").exists() && dir.join("etc/owned.link").exists());
    assert!(!dir.join("etc/.wh.owned").exists());
    let mut ro: Vec<_> = fs::read_dir(dir.join("ro"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    ro.sort();
    assert_eq!(
        ro,
        ["new"],
        "the opaque directory kept the lower layer's entries"
    );
}

/// A normal user packs and unpacks their own tree: no root needed, owners
/// become theirs, device nodes (which only root can make) are left out
/// with a warning, and escapes are refused as for root.
#[test]
fn a_normal_user_packs_and_unpacks_their_own_tree() {
    require_root();
    // Outside the checkout, which may be unreadable to other users.
    let place = tempfile::Builder::new()
        .prefix("ct-archive-")
        .tempdir_in("/tmp")
        .unwrap();
    fs::set_permissions(place.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let home = place.path().join("home");
    fs::create_dir(&home).unwrap();
    let bin = place.path().join("chroot-tool");
    install_exec(Path::new(BIN), &bin);
    let as_user = |line: &str| {
        let o = output_within(
            Command::new("runuser")
                .args(["-u", "ct-user", "--", "sh", "-c", line])
                .env("XDG_STATE_HOME", home.join("state"))
                .env("XDG_CACHE_HOME", home.join("cache"))
                .env("XDG_RUNTIME_DIR", home.join("run"))
                .env("XDG_CONFIG_HOME", home.join("config"))
                .env_remove("CHROOT_TOOL_DIR")
                .current_dir(&home),
            DEADLINE,
        );
        o
    };
    sh(&format!("chown ct-user: {}", d(&home)));
    let tree = home.join("tree");
    ok(&as_user(&format!(
        "mkdir -p {t}/etc {t}/chroot.d && echo mine > {t}/etc/f && ln -s f {t}/etc/l && ln {t}/etc/f {t}/etc/h && mkfifo {t}/p",
        t = d(&tree)
    )));
    // A device node root put there.
    sh(&format!("mknod {}/null c 1 3", d(&tree)));
    let file = home.join("t.tar.zst");
    let out = as_user(&format!(
        "{} pack -q -d {} -o {}",
        d(&bin),
        d(&tree),
        d(&file)
    ));
    ok(&out);
    let copy = home.join("copy");
    let out = as_user(&format!(
        "{} unpack -q {} -d {}",
        d(&bin),
        d(&file),
        d(&copy)
    ));
    ok(&out);
    assert!(
        stderr(&out).contains("null") && stderr(&out).contains("only root"),
        "{}",
        stderr(&out)
    );
    assert!(!copy.join("null").exists());
    assert_eq!(fs::read_to_string(copy.join("etc/l")).unwrap(), "mine\n");
    assert_eq!(fs::metadata(copy.join("etc/h")).unwrap().nlink(), 2);
    let uid = fs::metadata(copy.join("etc/f")).unwrap().uid();
    assert_eq!(uid, fs::metadata(&home).unwrap().uid());

    let evil = home.join("evil.tar");
    let outside = place.path().join("outside");
    fs::create_dir(&outside).unwrap();
    sh(&format!("chown ct-user: {}", d(&outside)));
    crafted(
        &evil,
        &[
            ("x", Kind::Symlink(d(&outside))),
            ("x/pwned", Kind::File(b"x")),
        ],
    );
    sh(&format!("chown ct-user: {}", d(&evil)));
    let out = as_user(&format!(
        "{} unpack -q {} -d {}",
        d(&bin),
        d(&evil),
        d(&home.join("e"))
    ));
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("x/pwned"), "{}", stderr(&out));
    assert_eq!(
        fs::read_dir(&outside).unwrap().count(),
        0,
        "written through the symlink"
    );
}

// ---- trust: attack pass ----

/// Each way of making `run` find a `chroot.d` file through a symlink or a
/// hard link: the review finds what `run` would use and sets that aside.
#[test]
fn chroot_d_reached_through_symlinks_or_links_is_reviewed_where_run_finds_it() {
    let ns = Ns::new();
    let host = ns.tmp.path().join("host-dir");
    fs::create_dir_all(&host).unwrap();
    fs::write(host.join("host-file"), "x").unwrap();
    let marker = ns.tmp.path().join("PWNED");
    let conf = format!("[bind]\nsrc:{} tgt:/hostdir fs:bind\n", d(&host));
    let cmd = format!("#!/bin/sh\nid -u > {}\n", d(&marker));
    use std::os::unix::fs::symlink;
    // (name, how the rootfs is laid out)
    type Lay = Box<dyn Fn(&Path, &str, &str)>;
    let in_etc_cd = |r: &Path, conf: &str, cmd: &str| {
        fs::remove_dir_all(r.join("chroot.d")).unwrap();
        fs::create_dir_all(r.join("etc/cd")).unwrap();
        fs::write(r.join("etc/cd/tool.conf"), conf).unwrap();
        script(&r.join("etc/cd/host-cmd"), cmd);
    };
    let variants: Vec<(&str, Lay)> = vec![
        (
            "chroot.d -> etc/cd",
            Box::new(move |r, c, h| {
                in_etc_cd(r, c, h);
                symlink("etc/cd", r.join("chroot.d")).unwrap();
            }),
        ),
        (
            "chroot.d -> /etc/cd (absolute)",
            Box::new(move |r, c, h| {
                in_etc_cd(r, c, h);
                symlink("/etc/cd", r.join("chroot.d")).unwrap();
            }),
        ),
        (
            "chroot.d -> etc/x/../cd",
            Box::new(move |r, c, h| {
                in_etc_cd(r, c, h);
                fs::create_dir_all(r.join("etc/x")).unwrap();
                symlink("etc/x/../cd", r.join("chroot.d")).unwrap();
            }),
        ),
        (
            "chroot.d -> ../../../etc/cd (climbing above the root)",
            Box::new(move |r, c, h| {
                in_etc_cd(r, c, h);
                symlink("../../../etc/cd", r.join("chroot.d")).unwrap();
            }),
        ),
        (
            "tool.conf and host-cmd symlinks",
            Box::new(move |r, c, h| {
                in_etc_cd(r, c, h);
                fs::create_dir_all(r.join("chroot.d")).unwrap();
                symlink("/etc/cd/tool.conf", r.join("chroot.d/tool.conf")).unwrap();
                symlink("../etc/cd/host-cmd", r.join("chroot.d/host-cmd")).unwrap();
            }),
        ),
        (
            "host-cmd a hard link",
            Box::new(move |r, c, h| {
                in_etc_cd(r, c, h);
                fs::create_dir_all(r.join("chroot.d")).unwrap();
                fs::hard_link(r.join("etc/cd/host-cmd"), r.join("chroot.d/host-cmd")).unwrap();
                fs::hard_link(r.join("etc/cd/tool.conf"), r.join("chroot.d/tool.conf")).unwrap();
            }),
        ),
    ];
    for (i, (what, lay)) in variants.iter().enumerate() {
        let root = ns.busybox_root(&format!("src{i}"));
        lay(&root, &conf, &cmd);
        let file = ns.tmp.path().join(format!("evil{i}.tar"));
        ok(&ns.run(&["pack", "-q", "-d", d(&root), "-o", d(&file)]));
        let dst = ns.tmp.path().join(format!("dst{i}"));
        let out = ns.run(&["unpack", d(&file), "-d", d(&dst)]);
        ok(&out);
        let err = stderr(&out);
        assert!(
            err.contains("host-cmd") && err.contains("/hostdir") && err.contains("--accept"),
            "{what}: {err}"
        );
        if i < 4 {
            // Named where it is inside DIR, never through the symlink
            // (which the host would follow to its own /etc/cd).
            let aside = format!("{}/etc/cd/host-cmd.untrusted", d(&dst));
            assert!(err.contains(&aside), "{what}: {err}");
            assert!(dst.join("etc/cd/host-cmd.untrusted").is_file(), "{what}");
        }
        ok(&ns.run_in(&dst, &["--", "/bin/true"]));
        assert!(!marker.exists(), "{what}: the untrusted host-cmd ran");
        let seen = ns
            .sh(&format!("test -e {}/hostdir/host-file", d(&dst)))
            .status
            .success();
        assert!(!seen, "{what}: the untrusted bind was mounted");
        ok(&ns.run(&["off", "-d", d(&dst)]));
        // Accepted: the very names come back and act.
        ok(&ns.run(&["unpack", "--accept", "-d", d(&dst)]));
        ok(&ns.run_in(&dst, &["--", "/bin/true"]));
        assert!(marker.exists(), "{what}: the accepted host-cmd did not run");
        ok(&ns.run(&["off", "-d", d(&dst)]));
        fs::remove_file(&marker).unwrap();
    }

    // The same for import (an OCI layout exported from such a sandbox).
    let root = ns.busybox_root("oci-src");
    variants[0].1(&root, &conf, &cmd);
    let image = ns.tmp.path().join("evil.oci");
    ok(&ns.run(&["export", "-q", "-d", d(&root), "--oci", d(&image)]));
    let dst = ns.tmp.path().join("imported");
    let out = ns.run(&["import", d(&image), "-d", d(&dst)]);
    ok(&out);
    assert!(stderr(&out).contains("--accept"), "{}", stderr(&out));
    ok(&ns.run_in(&dst, &["--", "/bin/true"]));
    assert!(!marker.exists(), "import: the untrusted host-cmd ran");
    ok(&ns.run(&["off", "-d", d(&dst)]));
}

/// Only a fresh kernel filesystem with no path in its options is not the
/// host's: an overlay of host directories, a device, cgroup2 are.
#[test]
fn records_of_other_filesystems_naming_host_paths_act_on_the_host() {
    use chroot_tool::archive::trust::acts_on_host;
    use chroot_tool::conf::FsKind;
    let other = |t: &str| FsKind::Other(t.into());
    for (fs, opt) in [
        (other("overlay"), "lowerdir=/etc:/root"),
        (other("overlay"), "lowerdir=a,upperdir=/root,workdir=/w"),
        (other("ext4"), "defaults"),
        (other("cgroup2"), "defaults"),
        (other("nfs"), "addr=1.2.3.4"),
        (FsKind::Tmpfs, "size=1m,x=/etc"),
        (other("proc"), "hidepid=2,/x"),
        (FsKind::Bind, "ro"),
        (FsKind::BindRo, "private"),
    ] {
        assert!(acts_on_host(&fs, opt), "{fs:?} {opt}");
    }
    for (fs, opt) in [
        (FsKind::Tmpfs, "noexec,nosuid,nodev,rw"),
        (other("tmpfs"), "size=1m"),
        (other("proc"), "defaults"),
        (other("sysfs"), "ro"),
        (other("devpts"), "newinstance,ptmxmode=0666"),
        (other("mqueue"), "defaults"),
    ] {
        assert!(!acts_on_host(&fs, opt), "{fs:?} {opt}");
    }

    // For real: the overlay record is listed and set aside.
    let ns = Ns::new();
    let root = ns.busybox_root("src");
    fs::write(
        root.join("chroot.d/tool.conf"),
        "[bind]\nsrc:overlay tgt:/mnt fs:overlay opt:lowerdir=/etc:/root\n",
    )
    .unwrap();
    let file = ns.tmp.path().join("overlay.tar");
    ok(&ns.run(&["pack", "-q", "-d", d(&root), "-o", d(&file)]));
    let dst = ns.tmp.path().join("dst");
    let out = ns.run(&["unpack", d(&file), "-d", d(&dst)]);
    ok(&out);
    assert!(stderr(&out).contains("lowerdir") || stderr(&out).contains("overlay"));
    assert!(dst.join("chroot.d/tool.conf.untrusted").is_file());
    assert!(!dst.join("chroot.d/tool.conf").exists());
    ok(&ns.run_in(&dst, &["--", "/bin/true"]));
    assert!(
        !ns.sh(&format!("test -e {}/mnt/passwd", d(&dst)))
            .status
            .success(),
        "the host's /etc was mounted"
    );
    ok(&ns.run(&["off", "-d", d(&dst)]));
}

/// A set-uid root file or a device node of an archive is out of every other
/// local user's reach until accepted; accepted (or trusted), DIR has the
/// archive's mode and the set-uid bit is still there (sudo inside works).
#[test]
fn set_id_files_and_devices_of_an_archive_are_out_of_users_reach_until_accepted() {
    let ns = Ns::new();
    // The test's tree reachable by ct-user, so only DIR's mode can stop it.
    fs::set_permissions(ns.tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let user_sees = |p: &Path| {
        output_within(
            ns.cmd("runuser")
                .args(["-u", "ct-user", "--", "stat", d(p)])
                .stdin(std::process::Stdio::null()),
            DEADLINE,
        )
        .status
        .success()
    };
    assert!(
        user_sees(ns.tmp.path()),
        "ct-user cannot reach the test dir"
    );
    let mk = |name: &str, suid: bool, dev: Option<&str>| {
        let root = ns.busybox_root(name);
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).unwrap();
        if suid {
            fs::copy(root.join("bin/busybox"), root.join("bin/rootbash")).unwrap();
            fs::set_permissions(
                root.join("bin/rootbash"),
                fs::Permissions::from_mode(0o4755),
            )
            .unwrap();
        }
        if let Some(dev) = dev {
            let p = root.join(dev);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            ok(&ns.sh(&format!("mknod -m 666 {} b 254 0", d(&p))));
        }
        let file = ns.tmp.path().join(format!("{name}.tar"));
        ok(&ns.run(&["pack", "-q", "-d", d(&root), "-o", d(&file)]));
        file
    };
    let mode = |p: &Path| fs::metadata(p).unwrap().mode() & 0o7777;
    for (what, file, probe) in [
        ("set-uid", mk("suid", true, None), "bin/rootbash"),
        ("device", mk("dev", false, Some("disk")), "disk"),
    ] {
        let dst = ns.tmp.path().join(format!("dst-{what}"));
        let out = ns.run(&["unpack", d(&file), "-d", d(&dst)]);
        ok(&out);
        assert!(stderr(&out).contains("0700"), "{what}: {}", stderr(&out));
        assert_eq!(mode(&dst), 0o700, "{what}");
        assert!(!user_sees(&dst.join(probe)), "{what}: a user reaches it");
        // Root runs it as before.
        ok(&ns.run_in(&dst, &["--", "/bin/true"]));
        ok(&ns.run(&["off", "-d", d(&dst)]));
        ok(&ns.run(&["unpack", "--accept", "-d", d(&dst)]));
        assert_eq!(mode(&dst), 0o755, "{what}: the archive's mode");
        assert!(user_sees(&dst.join(probe)), "{what}");
        assert!(!dst.join("chroot.d/root-mode.untrusted").exists());
    }
    let dst = ns.tmp.path().join("dst-set-uid");
    assert_eq!(mode(&dst.join("bin/rootbash")), 0o4755, "set-uid kept");

    // Trusted at once, or nothing privileged (a device in /dev only): the
    // archive's mode at once.
    for (name, file, trust) in [
        ("trusted", ns.tmp.path().join("suid.tar"), true),
        ("plain", mk("plain", false, Some("dev/null2")), false),
    ] {
        let dst = ns.tmp.path().join(format!("dst-{name}"));
        let mut args = vec!["unpack", "-q", d(&file), "-d", d(&dst)];
        if trust {
            args.push("--trust");
        }
        ok(&ns.run(&args));
        assert_eq!(mode(&dst), 0o755, "{name}");
    }
    // DIR's mode from an archive never lets others write DIR (rename
    // chroot.d) nor has set-id bits; a record the archive planted is not
    // taken for the tool's.
    let wide = ns.busybox_root("wide");
    fs::write(wide.join("chroot.d/root-mode.untrusted"), "4777\n").unwrap();
    fs::copy(wide.join("bin/busybox"), wide.join("bin/rootbash")).unwrap();
    fs::set_permissions(
        wide.join("bin/rootbash"),
        fs::Permissions::from_mode(0o4755),
    )
    .unwrap();
    fs::set_permissions(&wide, fs::Permissions::from_mode(0o777)).unwrap();
    let file = ns.tmp.path().join("wide.tar");
    ok(&ns.run(&["pack", "-q", "-d", d(&wide), "-o", d(&file)]));
    for trust in [false, true] {
        let dst = ns.tmp.path().join(format!("dst-wide-{trust}"));
        let mut args = vec!["unpack", "-q", d(&file), "-d", d(&dst)];
        if trust {
            args.push("--trust");
        }
        ok(&ns.run(&args));
        if !trust {
            assert_eq!(mode(&dst), 0o700);
            assert_eq!(
                fs::read_to_string(dst.join("chroot.d/root-mode.untrusted")).unwrap(),
                "777\n"
            );
            ok(&ns.run(&["unpack", "--accept", "-d", d(&dst)]));
        }
        assert_eq!(mode(&dst), 0o755, "trust {trust}");
    }

    // A DIR that is not empty is refused and not touched.
    let busy = ns.tmp.path().join("suid");
    let out = ns.run(&[
        "unpack",
        "-q",
        d(&ns.tmp.path().join("suid.tar")),
        "-d",
        d(&busy),
    ]);
    assert_ne!(code(&out), 0);
    assert_eq!(mode(&busy), 0o755);
    assert!(!busy.join("chroot.d/root-mode.untrusted").exists());

    // import holds the same.
    let image = ns.tmp.path().join("suid.oci");
    let root = ns.tmp.path().join("suid");
    ok(&ns.run(&["export", "-q", "-d", d(&root), "--oci", d(&image)]));
    let dst = ns.tmp.path().join("imported");
    ok(&ns.run(&["import", "-q", d(&image), "-d", d(&dst)]));
    assert_eq!(mode(&dst), 0o700);
    assert!(!user_sees(&dst.join("bin/rootbash")));
    ok(&ns.run(&["unpack", "--accept", "-d", d(&dst)]));
    assert_eq!(mode(&dst), 0o755);
}

// ---- trust: an overlay record in an archive (second attack pass) ----

/// `chroot.d/overlay.toml` names a host directory that `on` would mount as
/// the sandbox's lower layer: an archive's is set aside like a host bind
/// (by `unpack` and by `create --from FILE`), so the host tree it names is
/// never seen inside until accepted. `pack` never writes one (it flattens).
#[test]
fn an_overlay_record_of_an_archive_stays_off_until_accepted() {
    use std::os::unix::fs::MetadataExt;
    let ns = Ns::new();
    let secret = ns.busybox_root("secret");
    fs::write(secret.join("etc/shadowish"), "HOSTSECRET\n").unwrap();
    let src = ns.busybox_root("src");
    fs::create_dir_all(src.join(".chroot-tool/upper")).unwrap();
    fs::create_dir_all(src.join(".chroot-tool/work")).unwrap();
    let md = fs::metadata(&secret).unwrap();
    fs::write(
        src.join("chroot.d/overlay.toml"),
        format!(
            "base = \"{}\"\ndev = {}\nino = {}\nuserxattr = false\n",
            d(&secret),
            md.dev(),
            md.ino()
        ),
    )
    .unwrap();
    let file = ns.tmp.path().join("evil.tar");
    let out = ns
        .cmd("tar")
        .arg("-C")
        .arg(&src)
        .args(["-cf", d(&file), "."])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));

    for (how, dir) in [("unpack", "u"), ("create --from", "c")] {
        let dir = ns.tmp.path().join(dir);
        let out = if how == "unpack" {
            ns.run(&["unpack", d(&file), "-d", d(&dir)])
        } else {
            ns.run(&["create", "-q", "--from", d(&file), "-d", d(&dir)])
        };
        ok(&out);
        let err = stderr(&out);
        assert!(err.contains("overlay.toml"), "{how}: {err}");
        let cd = dir.join("chroot.d");
        assert!(
            !cd.join("overlay.toml").exists() && cd.join("overlay.toml.untrusted").is_file(),
            "{how}: the record was not set aside"
        );
        let o = ns.run_in(&dir, &["--", "cat", "/etc/shadowish"]);
        assert!(
            !stdout(&o).contains("HOSTSECRET"),
            "{how}: the host tree was mounted"
        );
        ok(&ns.run(&["off", "-d", d(&dir)]));
        assert!(ns.mounts_under(&dir).is_empty(), "{how}");
    }
    // Accepted, it is the user's own choice again.
    let dir = ns.tmp.path().join("u");
    ok(&ns.run(&["unpack", "--accept", "-d", d(&dir)]));
    assert!(dir.join("chroot.d/overlay.toml").is_file());
}

/// `create --from` never leaves what acts as root to another user: an
/// archive whose `./`, `chroot.d` and `host-cmd` belong to a user, with a
/// set-id file and a device node, gives a DIR held at 0700 (as `unpack`
/// does), root's own `chroot.d` with its host-cmd set aside; a tree a user
/// owns is reviewed as an archive is; the host's `/`, `/dev`, `/proc` and
/// what is neither a directory nor a file are refused, nothing made.
#[test]
fn create_from_never_leaves_what_acts_as_root_to_another_user() {
    let ns = Ns::new();
    let src = ns.busybox_root("src");
    fs::copy(src.join("bin/busybox"), src.join("bin/suid")).unwrap();
    ok(&ns.sh(&format!(
        "cd '{s}' && chmod 4755 bin/suid && mknod disk c 1 3 && chmod 0666 disk \
         && printf '#!/bin/sh\\nid\\n' > chroot.d/host-cmd && chmod 0777 chroot.d/host-cmd \
         && chown -R 65534:65534 chroot.d && chown 65534:65534 . && chmod 0777 . chroot.d",
        s = d(&src)
    )));
    let file = ns.tmp.path().join("evil.tar");
    ok(&ns.sh(&format!(
        "tar --numeric-owner -C '{}' -cf '{}' .",
        d(&src),
        d(&file)
    )));
    let owned_by_root_alone = |dir: &Path| {
        for e in std::iter::once(dir.join("chroot.d")).chain(
            fs::read_dir(dir.join("chroot.d"))
                .unwrap()
                .map(|e| e.unwrap().path()),
        ) {
            let m = fs::symlink_metadata(&e).unwrap();
            assert_eq!(m.uid(), 0, "{}", e.display());
            assert_eq!(m.mode() & 0o022, 0, "{}", e.display());
        }
        let m = fs::metadata(dir).unwrap();
        assert_eq!((m.uid(), m.mode() & 0o022), (0, 0), "{}", dir.display());
    };

    let t = ns.tmp.path().join("t");
    let o = ns.run(&["create", "-q", "--from", d(&file), "-d", d(&t)]);
    ok(&o);
    assert!(stderr(&o).contains("set-id"), "{}", stderr(&o));
    assert_eq!(fs::metadata(&t).unwrap().mode() & 0o777, 0o700);
    owned_by_root_alone(&t);
    assert!(t.join("chroot.d/host-cmd.untrusted").exists());
    assert!(!t.join("chroot.d/host-cmd").exists());

    // `unpack` and `import` give DIR's chroot.d to root too.
    let p = ns.tmp.path().join("p");
    ok(&ns.run(&["unpack", "-q", d(&file), "-d", d(&p)]));
    owned_by_root_alone(&p);

    // A tree a user owns: reviewed as an archive is.
    let u = ns.tmp.path().join("u");
    let o = ns.run(&["create", "-q", "--from", d(&src), "-d", d(&u)]);
    ok(&o);
    assert!(stderr(&o).contains("host-cmd"), "{}", stderr(&o));
    assert!(!u.join("chroot.d/host-cmd").exists());
    assert_eq!(fs::metadata(&u).unwrap().mode() & 0o777, 0o700);
    owned_by_root_alone(&u);

    let fifo = ns.tmp.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    for bad in ["/", "/dev", "/proc", "/sys", d(&fifo)] {
        let dir = ns.tmp.path().join("refused");
        let o = ns.run(&["create", "-q", "--from", bad, "-d", d(&dir)]);
        assert_eq!(code(&o), 1, "{bad}: {}", stderr(&o));
        assert!(stderr(&o).contains("refusing to copy"), "{}", stderr(&o));
        assert!(!dir.exists(), "{bad}");
    }
}

/// A proxy password carried into a sandbox is for root's apt alone: the
/// apt file that holds it is 0600, and create's log shows `***`.
#[test]
fn a_proxy_password_is_carried_only_where_root_reads_it() {
    let ns = Ns::new();
    let src = ns.busybox_root("src");
    let file = ns.tmp.path().join("sb.tar");
    ok(&ns.run(&["pack", "-q", "-d", d(&src), "-o", d(&file)]));
    let dir = ns.tmp.path().join("t");
    ok(&output_within(
        ns.tool()
            .env("http_proxy", "http://alice:S3cretPw@proxy.invalid:3128/")
            .args(["create", "-q", "--from", d(&file), "-d", d(&dir)]),
        DEADLINE,
    ));
    let conf = dir.join("etc/apt/apt.conf.d/80chroot-tool-proxy");
    assert!(fs::read_to_string(&conf)
        .unwrap()
        .contains("alice:S3cretPw@"));
    let m = fs::metadata(&conf).unwrap();
    assert_eq!((m.uid(), m.mode() & 0o777), (0, 0o600));
    let log = fs::read_to_string(dir.join("chroot.d/create.log")).unwrap();
    assert!(!log.contains("S3cretPw"), "{log}");
    assert!(log.contains("alice:***@proxy.invalid"), "{log}");
}

#[test]
fn create_from_a_source_whose_chroot_d_is_a_symlink_is_refused() {
    use std::os::unix::fs::symlink;
    let ns = Ns::new();
    // A host directory whose path a symlink of the rootfs names: never
    // written.
    let host_cd = ns.tmp.path().join("host-cd");
    fs::create_dir(&host_cd).unwrap();
    let good = ns.busybox_root("good");
    let good_tar = ns.tmp.path().join("good.tar");
    ok(&ns.run(&["pack", "-q", "-d", d(&good), "-o", d(&good_tar)]));
    for (i, target) in ["etc/cd", d(&host_cd), "/nowhere"].iter().enumerate() {
        let src = ns.busybox_root(&format!("src{i}"));
        fs::remove_dir_all(src.join("chroot.d")).unwrap();
        fs::create_dir_all(src.join("etc/cd")).unwrap();
        symlink(target, src.join("chroot.d")).unwrap();
        let file = ns.tmp.path().join(format!("src{i}.tar"));
        let tar = Command::new("tar")
            .args(["-C", d(&src), "-cf", d(&file), "."])
            .status()
            .unwrap();
        assert!(tar.success());
        // An archive: refused at its chroot.d, the create left as failed
        // (so the next one cleans it up), whatever the umask.
        let copy = ns.tmp.path().join(format!("copy{i}"));
        let out = ns.sh(&format!(
            "umask 002 && exec {} create -q --from {} -d {}",
            common::BIN,
            d(&file),
            d(&copy)
        ));
        assert_eq!(code(&out), 1, "{}", stderr(&out));
        assert!(
            stderr(&out).contains("chroot.d that is not a directory"),
            "{}",
            stderr(&out)
        );
        assert!(copy.join("chroot.d").is_dir() && !copy.join("chroot.d").is_symlink());
        assert!(chroot_tool::create::is_failed_create(&copy));
        ok(&ns.run(&["create", "-q", "--from", d(&good_tar), "-d", d(&copy)]));
        assert!(chroot_tool::create::load(&copy).is_some());
        // A directory: refused before anything is made.
        let copy = ns.tmp.path().join(format!("dcopy{i}"));
        let out = ns.run(&["create", "-q", "--from", d(&src), "-d", d(&copy)]);
        assert_eq!(code(&out), 1, "{}", stderr(&out));
        assert!(
            stderr(&out).contains("its chroot.d is a symlink"),
            "{}",
            stderr(&out)
        );
        assert!(fs::read_dir(&copy).map_or(true, |mut d| d.next().is_none()));
    }
    assert_eq!(fs::read_dir(&host_cd).unwrap().count(), 0);

    // A directory whose `chroot.d` names, on the host, what looks like a
    // failed create's, or whose `chroot.d` another user may write: not
    // taken for a failed create (the next create would empty it).
    let looks = ns.tmp.path().join("looks-failed");
    fs::create_dir(&looks).unwrap();
    fs::write(looks.join("create.log"), "").unwrap();
    let linked = ns.tmp.path().join("linked");
    fs::create_dir(&linked).unwrap();
    symlink(&looks, linked.join("chroot.d")).unwrap();
    let open = ns.tmp.path().join("open");
    fs::create_dir_all(open.join("chroot.d")).unwrap();
    fs::write(open.join("chroot.d/create.log"), "").unwrap();
    fs::set_permissions(open.join("chroot.d"), fs::Permissions::from_mode(0o777)).unwrap();
    for dir in [&linked, &open] {
        fs::write(dir.join("data"), "keep").unwrap();
        assert!(!chroot_tool::create::is_failed_create(dir));
        let out = ns.run(&["create", "-q", "--from", d(&good_tar), "-d", d(dir)]);
        assert_ne!(code(&out), 0);
        assert!(stderr(&out).contains("not empty"), "{}", stderr(&out));
        assert_eq!(fs::read_to_string(dir.join("data")).unwrap(), "keep");
    }
}

/// `create --from` with a relative path, into a failed create whose
/// cleaning has to unmount something below DIR: the source is still found.
#[test]
fn create_from_a_relative_path_survives_the_cleaning_of_a_failed_create() {
    let ns = Ns::new();
    let src = ns.busybox_root("src");
    ok(&ns.run(&[
        "pack",
        "-q",
        "-d",
        d(&src),
        "-o",
        d(&ns.tmp.path().join("src.tar")),
    ]));
    let dir = ns.tmp.path().join("dir");
    fs::create_dir_all(dir.join("chroot.d")).unwrap();
    fs::create_dir_all(dir.join("mnt")).unwrap();
    fs::write(dir.join("chroot.d/create.log"), "").unwrap();
    ok(&ns.sh(&format!("mount -t tmpfs left {}/mnt", d(&dir))));
    ok(&ns.sh(&format!(
        "cd {} && {} create -q --from src.tar -d dir",
        d(ns.tmp.path()),
        common::BIN
    )));
    assert!(chroot_tool::create::load(&dir).is_some());
    assert!(ns.mounts_under(&dir).is_empty());
}

/// One PAX record, its length counted as the format says.
fn pax_record(key: &str, value: &str) -> Vec<u8> {
    let body = format!(" {key}={value}\n");
    let mut len = body.len() + 1;
    while len.to_string().len() + body.len() != len {
        len += 1;
    }
    format!("{len}{body}").into_bytes()
}

/// The header and data blocks of one member (`kind`: the tar type byte).
fn member_blocks(name: &str, kind: u8, data: &[u8]) -> Vec<u8> {
    let mut h = tar::Header::new_ustar();
    h.set_path(name).unwrap();
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(data.len() as u64);
    h.set_entry_type(tar::EntryType::new(kind));
    h.set_cksum();
    let mut out = h.as_bytes().to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

/// `blocks` with its header's bytes changed by `edit`, the checksum made
/// again.
fn edited(mut blocks: Vec<u8>, edit: impl FnOnce(&mut [u8])) -> Vec<u8> {
    edit(&mut blocks[..512]);
    let mut h = tar::Header::from_byte_slice(&blocks[..512]).clone();
    h.set_cksum();
    blocks[..512].copy_from_slice(h.as_bytes());
    blocks
}

/// [`member_blocks`] in a v7 header (no ustar mark).
fn old_blocks(name: &str, kind: u8, data: &[u8]) -> Vec<u8> {
    edited(member_blocks(name, kind, data), |h| h[257..265].fill(0))
}

/// A file owned by uid 2^32 (base-256 in a GNU header).
fn big_uid_blocks(name: &str) -> Vec<u8> {
    let mut h = tar::Header::new_gnu();
    h.set_path(name).unwrap();
    h.set_mode(0o644);
    h.set_uid(1 << 32);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(0);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    h.as_bytes().to_vec()
}

/// PAX headers that other readers read otherwise than a plain reading
/// would (a `+` length, a size given twice, a global size, a uid past 32
/// bits, a GNU long name and a PAX path both, a header of 2 MiB, a global
/// header between a header and its member, PAX sparse records, extension
/// headers without the ustar mark or of Solaris' kind, a file named as a
/// directory, a base-256 uid past 32 bits, a link with data, a ustar
/// header of another version, an unknown kind, an old GNU sparse file, a
/// signed size, a hard link to itself) are refused, naming the member: never a
/// member that GNU tar does not list (here one hidden in another's data)
/// unpacked, nor an owner cut to 32 bits, nor the header read into memory.
#[test]
fn unpack_refuses_pax_headers_that_other_readers_read_otherwise() {
    let ns = Ns::new();
    let t = ns.tmp.path();
    // `readme`'s 1024 bytes of data are a whole member of their own.
    let hidden = member_blocks("etc/hidden-by-ct", b'0', b"SMUGGLED");
    let rest = [
        member_blocks("readme", b'0', &hidden),
        member_blocks("after", b'0', b"ok"),
    ]
    .concat();
    let x = |records: Vec<u8>| member_blocks("./PaxHeaders/readme", b'x', &records);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("plus", [x(b"+11 size=0\n".to_vec()), rest.clone()].concat()),
        (
            "twice",
            [
                x([pax_record("size", "0"), pax_record("size", "1024")].concat()),
                rest.clone(),
            ]
            .concat(),
        ),
        (
            "global",
            [
                member_blocks("pax_global_header", b'g', &pax_record("size", "0")),
                rest.clone(),
            ]
            .concat(),
        ),
        (
            "uid",
            [x(pax_record("uid", "4294967296")), rest.clone()].concat(),
        ),
        (
            "named-twice",
            [
                member_blocks("././@LongLink", b'L', b"gnu-name\0"),
                x(pax_record("path", "pax-name")),
                rest.clone(),
            ]
            .concat(),
        ),
        ("huge", [x(vec![b'\n'; 2 << 20]), rest.clone()].concat()),
        (
            "x-then-global",
            [
                x(pax_record("path", "evil")),
                member_blocks("pax_global_header", b'g', &pax_record("comment", "c")),
                rest.clone(),
            ]
            .concat(),
        ),
        (
            "sparse",
            [x(pax_record("GNU.sparse.name", "evil")), rest.clone()].concat(),
        ),
        (
            "solaris-x",
            [
                member_blocks("./PaxHeaders/readme", b'X', &pax_record("size", "0")),
                rest.clone(),
            ]
            .concat(),
        ),
        (
            "v7-x",
            [
                old_blocks("./PaxHeaders/readme", b'x', &pax_record("size", "0")),
                rest.clone(),
            ]
            .concat(),
        ),
        (
            "slash-file",
            [member_blocks("dd/", b'0', b""), rest.clone()].concat(),
        ),
        ("uid-256", [big_uid_blocks("f"), rest.clone()].concat()),
        // A symlink with 1024 bytes of "data": a whole member for this
        // reader to skip, the next header for GNU tar.
        (
            "link-data",
            [
                edited(member_blocks("l", b'2', &hidden), |h| h[157] = b'f'),
                rest.clone(),
            ]
            .concat(),
        ),
        (
            "ustar-version",
            [
                edited(member_blocks("f", b'0', b"x"), |h| {
                    h[263..265].copy_from_slice(b"\0\0")
                }),
                rest.clone(),
            ]
            .concat(),
        ),
        (
            "unknown-kind",
            [member_blocks("z", b'Z', b"x"), rest.clone()].concat(),
        ),
        (
            "old-sparse",
            [member_blocks("s", b'S', b""), rest.clone()].concat(),
        ),
        (
            "signed-size",
            [
                edited(member_blocks("f", b'0', b""), |h| {
                    h[124..136].copy_from_slice(b"+0000000000\0")
                }),
                rest.clone(),
            ]
            .concat(),
        ),
        (
            "self-link",
            [
                member_blocks("f", b'0', b"keep"),
                edited(member_blocks("f", b'1', b""), |h| h[157] = b'f'),
            ]
            .concat(),
        ),
    ];
    for (name, mut bytes) in cases {
        bytes.extend_from_slice(&[0; 1024]);
        let file = t.join(format!("{name}.tar"));
        fs::write(&file, &bytes).unwrap();
        let dir = t.join(format!("u-{name}"));
        let o = ns.run(&["unpack", "-q", d(&file), "-d", d(&dir)]);
        assert_eq!(code(&o), 1, "{name}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(
            e.contains("archive member") || e.contains("not a readable tar archive"),
            "{name}: {e}"
        );
        assert!(
            !dir.join("etc/hidden-by-ct").exists(),
            "{name}: the hidden member"
        );
    }
    // The link to itself removed nothing.
    assert_eq!(fs::read_to_string(t.join("u-self-link/f")).unwrap(), "keep");
    // A well-made one (GNU tar's own comment, as `git archive` writes) unpacks.
    let good = [
        member_blocks("pax_global_header", b'g', &pax_record("comment", "c0ffee")),
        x([pax_record("path", "etc/long\nname"), pax_record("uid", "7")].concat()),
        member_blocks("x", b'0', b"data"),
        vec![0; 1024],
    ]
    .concat();
    let file = t.join("good.tar");
    fs::write(&file, good).unwrap();
    let dir = t.join("u-good");
    let o = ns.run(&["unpack", "-q", d(&file), "-d", d(&dir)]);
    // No root filesystem in it: a failed unpack, but of that reason only.
    let e = stderr(&o);
    assert!(
        !e.contains("archive member") && !e.contains("not a readable"),
        "{e}"
    );
    let md = fs::metadata(dir.join("etc/long\nname")).unwrap();
    assert_eq!(md.uid(), 7);
}
