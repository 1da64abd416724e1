//! The holder: a sandbox kept in namespaces of its own by a holder process.
//! As root, a light VM (`on --ns pid,uts,ipc,net`) and `-N`; as the real
//! normal users `ct-user` (a subuid range) and `ct-nosub` (none), the
//! whole life cycle. Every holder a test starts is ended by the test (by
//! the pid its own run dir records), whatever happens.
mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::*;

/// `status --json` of `dir`.
fn status(ns: &Ns, dir: &Path) -> serde_json::Value {
    serde_json::from_str(&ok(&ns.run(&["status", "--json", "-d", d(dir)]))).unwrap()
}

/// Whether `pid` is gone (or a zombie: it ended and awaits its reaper).
fn gone(pid: i64) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => {
            let st = s[s.rfind(')').unwrap() + 1..].split_whitespace().next();
            matches!(st, Some("Z") | Some("X"))
        }
    }
}

/// The inode of `/proc/PID/ns/KIND`.
fn ns_of(pid: i64, kind: &str) -> u64 {
    fs::metadata(format!("/proc/{pid}/ns/{kind}"))
        .unwrap()
        .ino()
}

/// Processes still in the mount namespace `mnt`.
fn in_mount_ns(mnt: u64) -> Vec<String> {
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().parse::<i32>().is_ok())
        .filter(|e| fs::metadata(e.path().join("ns/mnt")).is_ok_and(|m| m.ino() == mnt))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

fn holder_pid(v: &serde_json::Value) -> i64 {
    v["holder_pid"].as_i64().expect("status names the holder")
}

#[test]
fn light_vm_as_root_has_its_own_processes_hostname_and_network() {
    let ns = Ns::new();
    let root = ns.busybox_root("vm");
    let _h = Holders(ns.run_dir.join("holder"));
    let out = ok(&ns.run(&["on", "-d", d(&root), "--ns", "pid,uts,ipc,net"]));
    assert!(out.contains("is on (holder pid"), "{out}");
    let st = status(&ns, &root);
    assert_eq!(st["state"], "on");
    assert_eq!(st["mode"], "holder");
    assert_eq!(
        st["namespaces"],
        serde_json::json!(["mnt", "pid", "uts", "ipc", "net"])
    );
    let holder = holder_pid(&st);
    let mnt = ns_of(holder, "mnt");
    // It outlives the terminal of the `on` that started it: a session of
    // its own, HUP ignored.
    let stat = fs::read_to_string(format!("/proc/{holder}/stat")).unwrap();
    // After the comm: state, ppid, pgrp, session, tty_nr.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 1..]
        .split_whitespace()
        .collect();
    let (sid, tty) = (fields[3], fields[4]);
    // Its session's leader (the first child, gone) was started by `on`
    // in our pid namespace, so it has a number here; ours may not (a CI
    // runner's session leader can be outside our pid namespace: 0).
    assert_ne!(sid, "0", "{stat}");
    assert_ne!(sid, nix::unistd::getsid(None).unwrap().to_string());
    assert_eq!(tty, "0", "no controlling terminal: {stat}");
    let status_text = fs::read_to_string(format!("/proc/{holder}/status")).unwrap();
    let ign = status_text
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .map(|h| u64::from_str_radix(h.trim(), 16).unwrap())
        .unwrap();
    assert_ne!(ign & (1 << (libc::SIGHUP - 1)), 0, "HUP is ignored");
    // Nothing of it is mounted in our namespace: it lives in the holder's.
    assert!(
        ns.mounts_under(&root).is_empty(),
        "{:?}",
        ns.mounts_under(&root)
    );

    // Its own process tree: pid 1 is the holder, and the run is in its
    // pid namespace.
    let ps = ok(&ns.run_in(&root, &["ps -o pid,comm"]));
    let rows: Vec<&str> = ps.lines().skip(1).collect();
    assert!(
        rows.iter().any(|r| r.trim_start().starts_with("1 ")),
        "{ps}"
    );
    assert!(rows.len() <= 4, "only the holder and the run itself: {ps}");
    let inside = ok(&ns.run_in(&root, &["--", "readlink", "/proc/self/ns/pid"]));
    assert_eq!(
        inside.trim(),
        format!("pid:[{}]", ns_of(holder, "pid")),
        "the run's pid namespace is the holder's"
    );
    // Its own IPC namespace, the holder's, not ours.
    let ipc = ok(&ns.run_in(&root, &["--", "readlink", "/proc/self/ns/ipc"]));
    assert_eq!(ipc.trim(), format!("ipc:[{}]", ns_of(holder, "ipc")));
    assert_ne!(
        ns_of(holder, "ipc"),
        ns_of(std::process::id() as i64, "ipc")
    );
    // Its own hostname: the directory's name (busybox has no /etc/hostname).
    assert_eq!(ok(&ns.run_in(&root, &["hostname"])).trim(), "vm");
    // Only loopback.
    let dev = ok(&ns.run_in(&root, &["cat /proc/net/dev"]));
    let ifaces: Vec<&str> = dev
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(str::trim)
        .collect();
    assert_eq!(ifaces, ["lo"], "{dev}");
    let lo = ok(&ns.run_in(
        &root,
        &["cat /sys/class/net/lo/operstate /sys/class/net/lo/flags"],
    ));
    assert!(lo.contains("0x9"), "loopback is up: {lo}");

    // The holder is init: an orphan that ends is reaped, no zombie stays.
    ok(&ns.run_in(&root, &["(sleep 0.2 &) ; true"]));
    wait_until("the orphan to be reaped", || {
        let ps = ok(&ns.run_in(&root, &["ps -o stat,comm"]));
        !ps.contains("sleep") && !ps.lines().any(|l| l.trim_start().starts_with('Z'))
    });

    // A daemon started by one run is still there for the next.
    ok(&ns.run_in(&root, &["sleep 1000 >/dev/null 2>&1 &"]));
    let ps = ok(&ns.run_in(&root, &["ps -o pid,args"]));
    assert!(ps.contains("sleep 1000"), "{ps}");
    let st = status(&ns, &root);
    let daemon = st["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["comm"] == "sleep")
        .expect("status lists the daemon")["pid"]
        .as_i64()
        .unwrap();

    // off ends it, the holder, and with them every mount.
    let out = ok(&ns.run(&["off", "-d", d(&root)]));
    assert!(out.contains("is off ("), "{out}");
    wait_until("the holder to end", || gone(holder));
    assert!(gone(daemon), "the daemon ended with the sandbox");
    wait_until("the holder's mount namespace to empty", || {
        in_mount_ns(mnt).is_empty()
    });
    assert_eq!(status(&ns, &root)["state"], "off");
    assert!(ns.mounts_under(&root).is_empty());
    assert!(
        fs::read_dir(ns.run_dir.join("holder"))
            .unwrap()
            .next()
            .is_none(),
        "the pid file is gone"
    );
}

#[test]
fn a_killed_holder_is_noticed_and_on_starts_a_new_one() {
    let ns = Ns::new();
    let root = ns.busybox_root("k");
    let _h = Holders(ns.run_dir.join("holder"));
    // The hostname is the sandbox's /etc/hostname when it has one.
    fs::write(root.join("etc/hostname"), "kbox\n").unwrap();
    ok(&ns.run(&["on", "-d", d(&root), "--ns", "pid,uts"]));
    assert_eq!(ok(&ns.run_in(&root, &["hostname"])).trim(), "kbox");
    let first = holder_pid(&status(&ns, &root));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_until("the holder to die", || gone(first));
    // The next command notices, says so, and cleans up.
    let o = ns.run(&["on", "-d", d(&root), "--ns", "pid,uts"]);
    ok(&o);
    assert!(stderr(&o).contains("had ended"), "{}", stderr(&o));
    let second = holder_pid(&status(&ns, &root));
    assert_ne!(first, second);
    assert_eq!(ok(&ns.run_in(&root, &["echo", "hi"])).trim(), "hi");
    ok(&ns.run(&["off", "-d", d(&root)]));
    wait_until("the second holder to end", || gone(second));
    assert_eq!(status(&ns, &root)["state"], "off");
    // A pid file pointing at a reused pid is no holder: another process
    // of ours, with the pid file's pid, is left alone.
    let mut decoy = ns.cmd("sleep").arg("1000").spawn().unwrap();
    let file = ns.run_dir.join("holder/forged");
    fs::write(&file, format!("v1 {} 1 root pid 0 1 2\n", decoy.id())).unwrap();
    let md = fs::metadata(&root).unwrap();
    fs::rename(
        &file,
        ns.run_dir.join(format!("holder/{}-{}", md.dev(), md.ino())),
    )
    .unwrap();
    let o = ns.run(&["off", "-d", d(&root)]);
    ok(&o);
    assert!(decoy.try_wait().unwrap().is_none(), "the decoy still runs");
    let _ = decoy.kill();
    let _ = decoy.wait();
}

#[test]
fn start_and_stop_run_inside_the_holder() {
    let ns = Ns::new();
    let root = ns.busybox_root("svc");
    let _h = Holders(ns.run_dir.join("holder"));
    script(
        &root.join("chroot.d/start"),
        "#!/bin/sh\nsleep 1000 >/dev/null 2>&1 &\nhostname > /root/started\n",
    );
    script(
        &root.join("chroot.d/stop"),
        "#!/bin/sh\nps -o args > /root/stopped\n",
    );
    // The namespaces from [run] of tool.conf, as --ns would give them.
    fs::write(
        root.join("chroot.d/tool.conf"),
        "[run]\nnamespaces:uts,pid\n",
    )
    .unwrap();
    let o = ns.run(&["on", "-d", d(&root)]);
    ok(&o);
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
    assert_eq!(
        status(&ns, &root)["namespaces"],
        serde_json::json!(["mnt", "pid", "uts"])
    );
    assert_eq!(
        fs::read_to_string(root.join("root/started"))
            .unwrap()
            .trim(),
        "svc",
        "start ran inside (the sandbox's hostname)"
    );
    let ps = ok(&ns.run_in(&root, &["ps -o args"]));
    assert!(ps.contains("sleep 1000"), "the service runs: {ps}");
    ok(&ns.run(&["off", "-d", d(&root)]));
    let stopped = fs::read_to_string(root.join("root/stopped")).unwrap();
    assert!(
        stopped.contains("sleep 1000"),
        "stop ran inside, before the service was ended: {stopped}"
    );
    // `run` of the sandbox, off, turns it on the same way (start is `on`'s).
    fs::remove_file(root.join("root/started")).unwrap();
    assert_eq!(ok(&ns.run_in(&root, &["hostname"])).trim(), "svc");
    assert_eq!(status(&ns, &root)["mode"], "holder");
    assert!(!root.join("root/started").exists());
    ok(&ns.run(&["off", "-d", d(&root)]));
}

#[test]
fn root_with_dash_n_gets_a_user_namespace_of_every_id() {
    let ns = Ns::new();
    let root = ns.busybox_root("n");
    let _h = Holders(ns.run_dir.join("holder"));
    ok(&ns.run(&["on", "-N", "-d", d(&root)]));
    let st = status(&ns, &root);
    assert_eq!(st["namespaces"], serde_json::json!(["user", "mnt"]));
    let map = ok(&ns.run_in(&root, &["cat /proc/self/uid_map; id -u"]));
    let words: Vec<&str> = map.split_whitespace().collect();
    assert_eq!(words, ["0", "0", "4294967295", "0"], "{map}");
    // In a user namespace without a pid namespace, /proc is the host's, bound read-only.
    let o = ns.run_in(
        &root,
        &["touch /proc/x 2>&1; grep ' /proc ' /proc/self/mountinfo"],
    );
    assert!(stdout(&o).contains(" ro,"), "{}", stdout(&o));
    // On a terminal, the command's terminal is a pty of the sandbox's own
    // devpts, made in the user namespace.
    let line = format!("{BIN} run -d {} -- tty", d(&root));
    let o = output_within(
        ns.cmd("script")
            .args(["-qec", &line, "/dev/null"])
            .stdin(Stdio::null()),
        DEADLINE,
    );
    assert!(
        stdout(&o).contains("/dev/pts/0"),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
    // destroy of a sandbox on with a holder ends it, then deletes.
    ok(&ns.run(&["destroy", "--yes", "-d", d(&root)]));
    assert!(!root.exists());
    wait_until("the holder to end", || gone(holder_pid(&st)));
}

// ---- as a normal user ----

/// A real normal user of this machine (made by .ci/run), with a directory
/// of its own in the test's temp dir, its runtime, state and config
/// directories there, and the tool copied where it may run it.
struct User {
    name: &'static str,
    uid: u32,
    home: PathBuf,
    bin: PathBuf,
}

impl User {
    fn new(ns: &Ns, name: &'static str) -> User {
        let pw = nix::unistd::User::from_name(name)
            .unwrap()
            .unwrap_or_else(|| {
                panic!(
                    "the test user {name} is missing: run .ci/run (it makes ct-user and ct-nosub)"
                )
            });
        fs::set_permissions(ns.tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let home = ns.tmp.path().join(name);
        fs::create_dir(&home).unwrap();
        let bin = ns.tmp.path().join("chroot-tool");
        if !bin.exists() {
            install_exec(Path::new(BIN), &bin);
        }
        for sub in ["run", "state", "config", "cache"] {
            fs::create_dir(home.join(sub)).unwrap();
        }
        fs::set_permissions(home.join("run"), fs::Permissions::from_mode(0o700)).unwrap();
        chown_tree(&home, pw.uid.as_raw(), pw.gid.as_raw());
        User {
            name,
            uid: pw.uid.as_raw(),
            home,
            bin,
        }
    }

    /// A command as this user (`setpriv`), in the test's mount namespace;
    /// `prog` and its arguments follow.
    fn cmd(&self, ns: &Ns) -> Command {
        let mut c = ns.cmd("setpriv");
        c.args([
            "--reuid",
            self.name,
            "--regid",
            self.name,
            "--init-groups",
            "--",
        ]);
        c
    }

    /// chroot-tool as this user, in the test's mount namespace.
    fn tool(&self, ns: &Ns, args: &[&str]) -> Output {
        let mut c = self.cmd(ns);
        c.arg(&self.bin)
            .args(args)
            .env_remove("CHROOT_TOOL_RUN_DIR")
            .env_remove(chroot_tool::audit::STATE_ENV)
            .env("HOME", &self.home)
            .env("XDG_RUNTIME_DIR", self.home.join("run"))
            .env("XDG_STATE_HOME", self.home.join("state"))
            .env("XDG_CONFIG_HOME", self.home.join("config"))
            .env("XDG_CACHE_HOME", self.home.join("cache"))
            .current_dir(&self.home)
            .stdin(Stdio::null());
        output_within(&mut c, DEADLINE)
    }

    fn holders(&self) -> Holders {
        Holders(self.home.join("run/chroot-tool/holder"))
    }

    fn status(&self, ns: &Ns, dir: &Path) -> serde_json::Value {
        serde_json::from_str(&ok(&self.tool(ns, &["status", "--json", "-d", d(dir)]))).unwrap()
    }
}

/// lchown of everything at and below `p`.
fn chown_tree(p: &Path, uid: u32, gid: u32) {
    shift_tree(p, &|_| uid, &|_| gid);
}

/// Every file at and below `p` given the owner `uid(old)`, `gid(old)`.
fn shift_tree(p: &Path, uid: &dyn Fn(u32) -> u32, gid: &dyn Fn(u32) -> u32) {
    let md = fs::symlink_metadata(p).unwrap();
    if md.is_dir() {
        for e in fs::read_dir(p).unwrap().flatten() {
            shift_tree(&e.path(), uid, gid);
        }
    }
    std::os::unix::fs::lchown(p, Some(uid(md.uid())), Some(gid(md.gid()))).unwrap();
    // chown drops set-id bits: put them back as they were.
    if !md.file_type().is_symlink() && md.mode() & 0o6000 != 0 {
        fs::set_permissions(p, fs::Permissions::from_mode(md.mode() & 0o7777)).unwrap();
    }
}

/// A tiny package (`ct-hello`, one file) built with dpkg-deb.
fn make_deb(dir: &Path) -> PathBuf {
    let pkg = dir.join("pkg");
    fs::create_dir_all(pkg.join("DEBIAN")).unwrap();
    fs::create_dir_all(pkg.join("usr/share/ct-hello")).unwrap();
    fs::write(
        pkg.join("DEBIAN/control"),
        "Package: ct-hello\nVersion: 1.0\nArchitecture: all\nMaintainer: t <t@example.org>\nDescription: test\n",
    )
    .unwrap();
    fs::write(pkg.join("usr/share/ct-hello/hello"), "hello\n").unwrap();
    let deb = dir.join("ct-hello.deb");
    let o = Command::new("dpkg-deb")
        .args(["--root-owner-group", "-b"])
        .arg(&pkg)
        .arg(&deb)
        .output()
        .expect("dpkg-deb is needed (apt-get install dpkg)");
    assert!(o.status.success(), "{}", stderr(&o));
    fs::set_permissions(&deb, fs::Permissions::from_mode(0o644)).unwrap();
    deb
}

#[test]
fn a_user_with_a_subuid_range_runs_a_debian_sandbox_without_root() {
    let ns = Ns::new();
    let user = User::new(&ns, "ct-user");
    let _h = user.holders();
    // The rootfs as mmdebstrap's unshare mode leaves it: root's files the
    // user's, id N the range's 100000+N-1.
    let root = ns.debian_root("ct-user/deb");
    let (uid, gid) = (
        user.uid,
        nix::unistd::User::from_name("ct-user")
            .unwrap()
            .unwrap()
            .gid
            .as_raw(),
    );
    shift_tree(
        &root,
        &|u| if u == 0 { uid } else { 100_000 + u - 1 },
        &|g| if g == 0 { gid } else { 100_000 + g - 1 },
    );
    // A directory of the user's, with a file the user owns, bound in.
    let work = user.home.join("work");
    fs::create_dir(&work).unwrap();
    fs::write(work.join("mine"), "x").unwrap();
    make_deb(&work);
    chown_tree(&work, uid, gid);
    fs::set_permissions(&work, fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(
        root.join("chroot.d/tool.conf"),
        format!("[bind]\nsrc:{} tgt:/work\n", work.display()),
    )
    .unwrap();

    let o = user.tool(&ns, &["on", "-d", d(&root)]);
    ok(&o);
    assert!(!stderr(&o).contains("no range"), "{}", stderr(&o));
    let st = user.status(&ns, &root);
    assert_eq!(st["mode"], "holder");
    assert_eq!(st["namespaces"], serde_json::json!(["user", "mnt"]));
    let holder = holder_pid(&st);
    let mnt = ns_of(holder, "mnt");

    assert_eq!(
        ok(&user.tool(&ns, &["run", "-d", d(&root), "--", "id", "-u"])).trim(),
        "0"
    );
    // The user's files are root's inside; what root makes there is the user's.
    let o = user.tool(
        &ns,
        &[
            "run",
            "-d",
            d(&root),
            "stat -c %u /work/mine && touch /work/made",
        ],
    );
    assert_eq!(ok(&o).trim(), "0");
    assert_eq!(fs::metadata(work.join("made")).unwrap().uid(), uid);
    // Other ids are the range's: apt's _apt user included.
    let o = user.tool(
        &ns,
        &["run", "-d", d(&root), "-u", "_apt", "--", "id", "-u"],
    );
    assert_eq!(ok(&o).trim(), "42");
    let o = user.tool(
        &ns,
        &[
            "run",
            "-d",
            d(&root),
            "apt-get install -y /work/ct-hello.deb && cat /usr/share/ct-hello/hello",
        ],
    );
    let out = ok(&o);
    assert!(out.contains("hello"), "{out}\n{}", stderr(&o));
    assert!(
        !stderr(&o).contains("unsandboxed"),
        "apt's _apt sandbox worked: {}",
        stderr(&o)
    );
    assert_eq!(
        fs::metadata(root.join("usr/share/ct-hello/hello"))
            .unwrap()
            .uid(),
        uid,
        "root's files inside are the user's on disk"
    );

    // off with a daemon left running inside: everything ends.
    ok(&user.tool(
        &ns,
        &["run", "-d", d(&root), "sleep 1000 >/dev/null 2>&1 &"],
    ));
    let daemon = user.status(&ns, &root)["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["comm"] == "sleep")
        .expect("the daemon is inside")["pid"]
        .as_i64()
        .unwrap();
    let out = ok(&user.tool(&ns, &["off", "-d", d(&root)]));
    assert!(out.contains("1 process ended"), "{out}");
    wait_until("the holder to end", || gone(holder));
    assert!(gone(daemon));
    wait_until("its mount namespace to empty", || {
        in_mount_ns(mnt).is_empty()
    });
    assert_eq!(user.status(&ns, &root)["state"], "off");
    // The history is the user's own, and says so: the user's id and name
    // on every line, those of runs through the holder (root inside its
    // user namespace) included.
    let log = ok(&user.tool(&ns, &["log", "-d", d(&root), "--json"]));
    assert!(log.lines().count() >= 5, "{log}");
    for line in log.lines() {
        let e: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(e["uid"], user.uid, "{line}");
        assert_eq!(e["user"], user.name, "{line}");
    }
    assert!(log.contains("\"verb\":\"run\""), "{log}");
    // destroy of the sandbox on, a daemon inside: it ends the holder, then
    // deletes every file, whatever id of the range owns it.
    ok(&user.tool(
        &ns,
        &["run", "-d", d(&root), "sleep 1000 >/dev/null 2>&1 &"],
    ));
    let holder = holder_pid(&user.status(&ns, &root));
    let o = user.tool(&ns, &["destroy", "--yes", "-d", d(&root)]);
    assert!(ok(&o).contains("destroyed"), "{}", stderr(&o));
    assert!(!root.exists());
    wait_until("the holder to end", || gone(holder));
}

#[test]
fn a_user_without_a_range_gets_root_alone_and_a_warning() {
    let ns = Ns::new();
    let user = User::new(&ns, "ct-nosub");
    let _h = user.holders();
    let root = user.home.join("bb");
    make_busybox_root(&root);
    chown_tree(&root, user.uid, user.uid);
    let o = user.tool(&ns, &["on", "-d", d(&root)]);
    ok(&o);
    let err = stderr(&o);
    let warning: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("no range in /etc/subuid"))
        .collect();
    assert_eq!(warning.len(), 1, "one line: {}", stderr(&o));
    assert!(
        warning[0].contains("usermod --add-subuids"),
        "{}",
        warning[0]
    );
    let st = user.status(&ns, &root);
    let holder = holder_pid(&st);
    let map = ok(&user.tool(
        &ns,
        &["run", "-d", d(&root), "cat /proc/self/uid_map; id -u"],
    ));
    let words: Vec<&str> = map.split_whitespace().collect();
    assert_eq!(words, ["0", &user.uid.to_string(), "1", "0"], "{map}");
    // The supervisor that joined the holder is not open to the processes
    // inside (root there): neither its descriptors nor its memory.
    let o = user.tool(
        &ns,
        &[
            "run",
            "-d",
            d(&root),
            "ls /proc/$PPID/fd >/dev/null 2>&1 || echo refused",
        ],
    );
    assert_eq!(ok(&o).trim(), "refused");
    // What root makes inside is the user's on disk.
    ok(&user.tool(&ns, &["run", "-d", d(&root), "touch /root/made"]));
    assert_eq!(
        fs::metadata(root.join("root/made")).unwrap().uid(),
        user.uid
    );
    ok(&user.tool(
        &ns,
        &["run", "-d", d(&root), "sleep 1000 >/dev/null 2>&1 &"],
    ));
    let out = ok(&user.tool(&ns, &["off", "-d", d(&root)]));
    assert!(out.contains("1 process ended"), "{out}");
    wait_until("the holder to end", || gone(holder));
    assert_eq!(user.status(&ns, &root)["state"], "off");
    // A light VM as a normal user: its own pid 1, hostname and network.
    ok(&user.tool(&ns, &["on", "--ns", "pid,uts,ipc,net", "-d", d(&root)]));
    let o = user.tool(
        &ns,
        &[
            "run",
            "-d",
            d(&root),
            "ps -o pid | grep -c .; hostname; grep -c : /proc/net/dev",
        ],
    );
    let words: Vec<String> = ok(&o).split_whitespace().map(String::from).collect();
    assert!(words[0].parse::<u32>().unwrap() <= 5, "{words:?}");
    assert_eq!(words[1..], ["bb".to_string(), "1".to_string()], "{words:?}");
    ok(&user.tool(&ns, &["off", "-d", d(&root)]));
    // A cgroup limit a normal user may not set says so.
    let v1 = fs::read_to_string("/proc/self/cgroup")
        .unwrap()
        .lines()
        .any(|l| {
            l.split(':')
                .nth(1)
                .is_some_and(|c| c.split(',').any(|x| x == "pids"))
        });
    if v1 {
        let o = user.tool(&ns, &["run", "-d", d(&root), "--pids", "10", "--", "true"]);
        assert_eq!(code(&o), 125, "{}", stderr(&o));
        assert!(stderr(&o).contains("cgroup v1"), "{}", stderr(&o));
        ok(&user.tool(&ns, &["off", "-d", d(&root)]));
    }
}

#[test]
fn a_holder_that_fails_its_setup_leaves_nothing() {
    let ns = Ns::new();
    let root = ns.busybox_root("f");
    let _h = Holders(ns.run_dir.join("holder"));
    // The holder is killed after three of its mounts, as a crash would.
    let mut c = ns.tool();
    c.args(["on", "-d", d(&root), "--ns", "uts,net"])
        .env(chroot_tool::engine::FAULT_KILL_AFTER, "3");
    let o = output_within(&mut c, DEADLINE);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("ended before it was ready"),
        "{}",
        stderr(&o)
    );
    assert!(
        fs::read_dir(ns.run_dir.join("holder")).map_or(true, |mut d| d.next().is_none()),
        "no pid file"
    );
    assert_eq!(status(&ns, &root)["state"], "off");
    assert_eq!(holders_of(&root), 0, "no holder left");
    // And the next on works.
    ok(&ns.run(&["on", "-d", d(&root), "--ns", "pid,net"]));
    ok(&ns.run(&["off", "-d", d(&root)]));
}

/// The holders running for `dir` (their command line, `on`'s, names it).
fn holders_of(dir: &Path) -> usize {
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c == "chroot-tool-hol\n")
                && fs::read(e.path().join("cmdline"))
                    .is_ok_and(|c| c.split(|&b| b == 0).any(|w| w == d(dir).as_bytes()))
                && !gone(e.file_name().to_string_lossy().parse().unwrap_or(0))
        })
        .count()
}

#[test]
fn on_runs_start_without_a_holder_too() {
    let ns = Ns::new();
    let root = ns.busybox_root("plain");
    script(
        &root.join("chroot.d/start"),
        "#!/bin/sh\necho started >> /root/started\nexit 3\n",
    );
    let o = ns.run(&["on", "-d", d(&root)]);
    ok(&o);
    assert!(
        stderr(&o).contains("start exited with status 3"),
        "{}",
        stderr(&o)
    );
    assert_eq!(status(&ns, &root)["mode"], "chroot");
    // Only when it turned the sandbox on: not again when it was on.
    ok(&ns.run(&["on", "-d", d(&root)]));
    assert_eq!(
        fs::read_to_string(root.join("root/started")).unwrap(),
        "started\n"
    );
    ok(&ns.run(&["off", "-d", d(&root)]));
}

// ---- attack pass ----

/// Kills `pid` on drop when it is still a holder: for the holders whose
/// pid file a test removes.
struct KillHolder(i64);

impl Drop for KillHolder {
    fn drop(&mut self) {
        if fs::read_to_string(format!("/proc/{}/comm", self.0)).unwrap_or_default()
            == "chroot-tool-hol\n"
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.0 as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// The live (not zombie) processes whose command line has the word `w`.
fn with_arg(w: &str) -> Vec<i64> {
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<i64>().ok())
        .filter(|&p| {
            fs::read(format!("/proc/{p}/cmdline"))
                .is_ok_and(|c| c.split(|&b| b == 0).any(|x| x == w.as_bytes()))
                && !gone(p)
        })
        .collect()
}

/// Kills, on drop, what `with_arg` finds for each word (what a failed
/// test left behind).
struct KillArgs(Vec<String>);

impl Drop for KillArgs {
    fn drop(&mut self) {
        for w in &self.0 {
            for p in with_arg(w) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(p as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

#[test]
fn a_holder_whose_pid_file_was_removed_or_rewritten_is_still_found() {
    let ns = Ns::new();
    let user = User::new(&ns, "ct-user");
    let _h = user.holders();
    let root = user.home.join("vm");
    make_busybox_root(&root);
    chown_tree(&root, user.uid, user.uid);
    ok(&user.tool(&ns, &["on", "--ns", "pid,uts,ipc,net", "-d", d(&root)]));
    let holder = holder_pid(&user.status(&ns, &root));
    let _k = KillHolder(holder);
    let md = fs::metadata(&root).unwrap();
    let file = user
        .home
        .join(format!("run/chroot-tool/holder/{}-{}", md.dev(), md.ino()));
    assert!(file.exists());
    // Removed: `on` finds the holder running (no second one) and writes
    // its pid file again.
    fs::remove_file(&file).unwrap();
    let out = ok(&user.tool(&ns, &["on", "--ns", "pid,uts,ipc,net", "-d", d(&root)]));
    assert!(
        !out.contains("is on (holder pid"),
        "no second holder: {out}"
    );
    assert_eq!(holder_pid(&user.status(&ns, &root)), holder);
    // Rewritten (garbage) or removed again: `off` still ends it.
    fs::write(&file, "garbage\n").unwrap();
    let out = ok(&user.tool(&ns, &["off", "-d", d(&root)]));
    assert!(!out.contains("already off"), "{out}");
    wait_until("the holder to end", || gone(holder));
    ok(&user.tool(&ns, &["on", "--ns", "pid,net", "-d", d(&root)]));
    let holder = holder_pid(&user.status(&ns, &root));
    let _k2 = KillHolder(holder);
    fs::remove_file(&file).unwrap();
    let out = ok(&user.tool(&ns, &["off", "-d", d(&root)]));
    assert!(!out.contains("already off"), "{out}");
    wait_until("the holder to end", || gone(holder));
    assert!(!file.exists());
    // Rewritten to name a process inside, with its start time and mount
    // namespace: that one is ended, and so is the holder.
    ok(&user.tool(&ns, &["on", "-d", d(&root)]));
    let holder = holder_pid(&user.status(&ns, &root));
    let _k3 = KillHolder(holder);
    let _s = KillArgs(vec!["9961".into()]);
    ok(&user.tool(
        &ns,
        &[
            "run",
            "-d",
            d(&root),
            "sleep 9961 >/dev/null 2>&1 </dev/null &",
        ],
    ));
    wait_until("the sleep to run", || !with_arg("9961").is_empty());
    let decoy = with_arg("9961")[0];
    let stat = fs::read_to_string(format!("/proc/{decoy}/stat")).unwrap();
    let start = stat[stat.rfind(')').unwrap() + 1..]
        .split_whitespace()
        .nth(19)
        .unwrap()
        .to_string();
    fs::write(
        &file,
        format!(
            "v1 {decoy} {start} user - {} {} 0\n",
            ns_of(decoy, "user"),
            ns_of(decoy, "mnt")
        ),
    )
    .unwrap();
    let out = ok(&user.tool(&ns, &["off", "-d", d(&root)]));
    assert!(!out.contains("already off"), "{out}");
    wait_until("the sleep to end", || with_arg("9961").is_empty());
    wait_until("the holder to end", || gone(holder));
}

#[test]
fn roots_holder_is_not_open_to_the_processes_inside() {
    let ns = Ns::new();
    let root = ns.busybox_root("nd");
    let _h = Holders(ns.run_dir.join("holder"));
    // Root inside a user namespace (-N) and a pid namespace: pid 1 is the
    // holder, whose root, descriptors and environment stay closed.
    ok(&ns.run(&["on", "-d", d(&root), "-N", "--ns", "pid"]));
    let holder = holder_pid(&status(&ns, &root));
    let status_text = fs::read_to_string(format!("/proc/{holder}/status")).unwrap();
    assert!(status_text.contains("NSpid:"), "{status_text}");
    for what in [
        "ls /proc/1/root/",
        "ls /proc/1/cwd/",
        "readlink /proc/1/fd/0",
        "cat /proc/1/environ",
        "cat /proc/1/maps",
    ] {
        let o = ns.run_in(
            &root,
            &[&format!(
                "cat /proc/1/comm; {what} >/dev/null 2>&1 && echo open || echo refused"
            )],
        );
        assert_eq!(ok(&o), "chroot-tool-hol\nrefused\n", "{what}");
    }
    // Joining it still works.
    assert_eq!(ok(&ns.run_in(&root, &["echo", "hi"])).trim(), "hi");
    ok(&ns.run(&["off", "-d", d(&root)]));
    wait_until("the holder to end", || gone(holder));
}

/// Starts, in the background of a run of `dir`, each variant of
/// `unshare` (`{}` in it: the word of the sleep), waits until each sleep
/// runs, turns the sandbox off and checks that none is left.
fn nested_namespaces_end_with_off(
    tool: &dyn Fn(&[&str]) -> Output,
    dir: &Path,
    variants: &[(&str, &str)],
) {
    let words: Vec<String> = variants.iter().map(|(w, _)| w.to_string()).collect();
    let _k = KillArgs(words.clone());
    for (w, cmd) in variants {
        let cmd = cmd.replace("{}", w);
        ok(&tool(&[
            "run",
            "-d",
            d(dir),
            "--",
            "sh",
            "-c",
            &format!("{cmd} >/dev/null 2>&1 </dev/null &"),
        ]));
        wait_until(&format!("`{cmd}` to run"), || !with_arg(w).is_empty());
    }
    let out = ok(&tool(&["off", "-d", d(dir)]));
    for w in &words {
        wait_until(&format!("sleep {w} to end ({out})"), || {
            with_arg(w).is_empty()
        });
    }
}

#[test]
fn a_process_in_namespaces_of_its_own_inside_ends_with_off_as_root() {
    let ns = Ns::new();
    let root = ns.busybox_root("nest");
    let _h = Holders(ns.run_dir.join("holder"));
    ok(&ns.run(&["on", "-d", d(&root), "--ns", "uts,ipc,net"]));
    let holder = holder_pid(&status(&ns, &root));
    let tool = |a: &[&str]| ns.run(a);
    nested_namespaces_end_with_off(
        &tool,
        &root,
        &[
            ("9971", "setsid unshare -m sleep {}"),
            ("9972", "setsid unshare -m -n sleep {}"),
            ("9973", "setsid unshare -m -u -n sleep {}"),
            (
                "9974",
                &format!("cd /proc/{holder}/root && setsid chroot . unshare -U -m -r sleep {{}}"),
            ),
        ],
    );
    wait_until("the holder to end", || gone(holder));
}

#[test]
fn a_process_in_namespaces_of_its_own_inside_ends_with_off_as_a_user() {
    let ns = Ns::new();
    let user = User::new(&ns, "ct-user");
    let _h = user.holders();
    let root = user.home.join("nest");
    make_busybox_root(&root);
    chown_tree(&root, user.uid, user.uid);
    ok(&user.tool(&ns, &["on", "--ns", "uts,ipc,net", "-d", d(&root)]));
    let holder = holder_pid(&user.status(&ns, &root));
    let tool = |a: &[&str]| user.tool(&ns, a);
    nested_namespaces_end_with_off(
        &tool,
        &root,
        &[
            ("9981", "setsid unshare -m sleep {}"),
            ("9982", "setsid unshare -m -n -u -i sleep {}"),
            (
                "9983",
                &format!("cd /proc/{holder}/root && setsid chroot . unshare -U -m -r sleep {{}}"),
            ),
            (
                "9984",
                &format!(
                    "cd /proc/{holder}/root && setsid chroot . unshare -U -r -m -n -u -i sleep {{}}"
                ),
            ),
        ],
    );
    wait_until("the holder to end", || gone(holder));
}

/// The holder's mount namespace kept by a descriptor of a host process
/// (which is not inside: it only holds the namespace open): `off` looks at
/// every process again after the holder's end, finds nothing inside, says
/// off, and leaves that process alone.
#[test]
fn off_when_a_host_process_keeps_the_holders_namespace_open() {
    let ns = Ns::new();
    let user = User::new(&ns, "ct-user");
    let _h = user.holders();
    let root = user.home.join("kept");
    make_busybox_root(&root);
    chown_tree(&root, user.uid, user.uid);
    ok(&user.tool(&ns, &["on", "-d", d(&root)]));
    let holder = holder_pid(&user.status(&ns, &root));
    let _k = KillHolder(holder);
    let _s = KillArgs(vec!["9962".into()]);
    let mut keep = user.cmd(&ns);
    keep.args([
        "sh",
        "-c",
        &format!("exec 3</proc/{holder}/ns/mnt; exec sleep 9962"),
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    let mut keeper = keep.spawn().unwrap();
    wait_until("the keeper to hold it", || {
        fs::read_link(format!("/proc/{}/fd/3", keeper.id()))
            .is_ok_and(|l| l.to_string_lossy() == format!("mnt:[{}]", ns_of(holder, "mnt")))
    });
    let out = ok(&user.tool(&ns, &["off", "-d", d(&root)]));
    assert!(out.contains("is off"), "{out}");
    wait_until("the holder to end", || gone(holder));
    assert!(
        keeper.try_wait().unwrap().is_none(),
        "the host process is left alone"
    );
    let _ = keeper.kill();
    let _ = keeper.wait();
}

/// A program whose main thread ends while a second thread runs on: its
/// `/proc/PID` then shows no namespaces, root nor descriptors (a zombie
/// main thread). Built static with the machine's C compiler into `to`.
fn build_lone_thread(to: &Path) {
    build_c(
        "#include <pthread.h>\n#include <unistd.h>\n#include <sys/syscall.h>\n\
         static void *run(void *a) { for (;;) pause(); return a; }\n\
         int main(void) { if (fork()) return 0; setsid(); close(0); close(1); close(2);\n\
         pthread_t t; pthread_create(&t, 0, run, 0); syscall(SYS_exit, 0); return 0; }\n",
        to,
    );
}

/// The pids of the live processes of `uid` named `comm` whose main thread
/// has ended while another runs on.
fn lone_threads(uid: u32, comm: &str) -> Vec<i64> {
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<i64>().ok())
        .filter(|&p| {
            fs::metadata(format!("/proc/{p}")).is_ok_and(|m| m.uid() == uid)
                && fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == comm)
                && fs::read_dir(format!("/proc/{p}/task")).is_ok_and(|t| {
                    t.flatten().any(|e| {
                        e.file_name().to_string_lossy() != p.to_string()
                            && fs::read_to_string(e.path().join("stat")).is_ok_and(|s| {
                                !s[s.rfind(')').unwrap() + 1..].trim_start().starts_with('Z')
                            })
                    })
                })
        })
        .collect()
}

/// A process inside whose main thread has ended while another thread runs
/// on is still inside: `off` ends it (it was taken for one that had ended,
/// and lived on, with the sandbox's mounts in the holder's namespace).
#[test]
fn off_ends_a_process_whose_main_thread_has_ended() {
    let ns = Ns::new();
    let user = User::new(&ns, "ct-user");
    let _h = user.holders();
    let root = user.home.join("lone");
    make_busybox_root(&root);
    build_lone_thread(&root.join("bin/lonethread"));
    chown_tree(&root, user.uid, user.uid);
    ok(&user.tool(&ns, &["on", "-d", d(&root)]));
    let holder = holder_pid(&user.status(&ns, &root));
    let _k = KillHolder(holder);
    ok(&user.tool(&ns, &["run", "-d", d(&root), "--", "lonethread"]));
    wait_until("the lone thread to run", || {
        !lone_threads(user.uid, "lonethread").is_empty()
    });
    let lone = lone_threads(user.uid, "lonethread")[0];
    let out = ok(&user.tool(&ns, &["off", "-d", d(&root)]));
    if !lone_threads(user.uid, "lonethread").is_empty() {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(lone as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        panic!("off left the process whose main thread had ended: {out}");
    }
    wait_until("the holder to end", || gone(holder));
}

/// A holder killed without a pid namespace leaves the processes started
/// inside running, in its mount namespace (which lives on with them) and
/// chrooted in DIR. They are the sandbox's still: `on` and `run` refuse,
/// naming them and `off`, and mount nothing; `off` ends them (never
/// "already off" while they run); then the sandbox turns on again.
#[test]
fn processes_a_killed_holder_left_are_ended_by_off() {
    let ns = Ns::new();
    let user = User::new(&ns, "ct-user");
    let _h = user.holders();
    let root = user.home.join("left");
    make_busybox_root(&root);
    chown_tree(&root, user.uid, user.uid);
    let line =
        "setsid sh -c 'echo $$ > /apart; exec sleep 1000' </dev/null >/dev/null 2>&1 & exit 0";
    ok(&user.tool(&ns, &["run", "-d", d(&root), "--", "sh", "-c", line]));
    wait_until("the pid written", || {
        fs::read_to_string(root.join("apart")).is_ok_and(|t| t.trim().parse::<i64>().is_ok())
    });
    let apart: i64 = fs::read_to_string(root.join("apart"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let holder = holder_pid(&user.status(&ns, &root));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(holder as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_until("the holder to die", || gone(holder));
    assert!(!gone(apart), "the process set apart ended with the holder");
    let st = ok(&user.tool(&ns, &["status", "-d", d(&root)]));
    assert!(st.contains(&format!(" {apart} ")), "{st}");
    assert!(st.contains("the holder was killed"), "{st}");
    let st = ok(&user.tool(&ns, &["status", "--json", "-d", d(&root)]));
    let v: serde_json::Value = serde_json::from_str(&st).unwrap();
    assert_eq!(v["left_by_killed_holder"], true, "{st}");
    assert!(
        v["processes"]
            .as_array()
            .is_some_and(|a| a.iter().any(|p| p["pid"] == apart)),
        "{st}"
    );
    for args in [
        &["on", "-d", d(&root)][..],
        &["run", "-d", d(&root), "--", "true"][..],
    ] {
        let o = user.tool(&ns, args);
        assert_ne!(code(&o), 0, "{args:?}");
        let e = stderr(&o);
        assert!(
            e.contains(&format!("still run in the sandbox ({apart})")),
            "{e}"
        );
        assert!(e.contains("chroot-tool off -d"), "{e}");
        assert!(!gone(apart));
    }
    let o = user.tool(&ns, &["off", "-d", d(&root)]);
    assert!(ok(&o).contains("1 process ended"), "{}", stdout(&o));
    wait_until("the process set apart to end", || gone(apart));
    assert!(ok(&user.tool(&ns, &["off", "-d", d(&root)])).contains("already off"));
    ok(&user.tool(&ns, &["run", "-d", d(&root), "--", "true"]));
    let second = holder_pid(&user.status(&ns, &root));
    ok(&user.tool(&ns, &["off", "-d", d(&root)]));
    wait_until("the second holder to end", || gone(second));
}

/// A pid file whose holder is gone names its mount namespace by an inode
/// number, which the kernel gives again as soon as the namespace is gone:
/// a process of another namespace that has the number (here one started
/// by hand, chrooted in DIR) is never taken for the holder's, whether the
/// file gives no id (a file of an older version) or another one. `on`
/// goes on, and `off` ends nothing.
#[test]
fn a_holders_namespace_number_given_again_names_no_leftover() {
    let ns = Ns::new();
    let root = ns.busybox_root("reuse");
    let _h = Holders(ns.run_dir.join("holder"));
    let mut hand = ns
        .cmd("unshare")
        .args(["-m", "chroot", d(&root), "sleep", "1000"])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let pid = hand.id();
    wait_until("the process chrooted", || {
        fs::read_link(format!("/proc/{pid}/root")).is_ok_and(|r| r == root)
    });
    let mnt = fs::metadata(format!("/proc/{pid}/ns/mnt")).unwrap().ino();
    let dead = {
        let mut c = Command::new("true").spawn().unwrap();
        let p = c.id();
        c.wait().unwrap();
        p
    };
    let md = fs::metadata(&root).unwrap();
    let file = ns.run_dir.join(format!("holder/{}-{}", md.dev(), md.ino()));
    fs::create_dir_all(file.parent().unwrap()).unwrap();
    for text in [
        format!("v1 {dead} 1 root - 0 {mnt} 0\n"),
        format!("v1 {dead} 1 root - 0 {mnt} 0 12345\n"),
    ] {
        fs::write(&file, text).unwrap();
        ok(&ns.run(&["on", "-d", d(&root)]));
        let o = ok(&ns.run(&["off", "-d", d(&root)]));
        assert!(o.contains("0 processes ended"), "{o}");
        assert!(
            hand.try_wait().unwrap().is_none(),
            "the process started by hand was ended"
        );
    }
    let _ = hand.kill();
    let _ = hand.wait();
}

#[test]
fn a_users_destroy_forgets_the_sandbox_in_the_users_list() {
    let ns = Ns::new();
    let user = User::new(&ns, "ct-user");
    let _h = user.holders();
    let root = user.home.join("gone");
    make_busybox_root(&root);
    chown_tree(&root, user.uid, user.uid);
    ok(&user.tool(&ns, &["on", "-d", d(&root)]));
    ok(&user.tool(&ns, &["off", "-d", d(&root)]));
    let list = user.home.join("state/chroot-tool/sandboxes");
    let entries = || fs::read_dir(&list).map_or(0, |d| d.count());
    assert_eq!(entries(), 1, "on recorded it in {}", list.display());
    let o = user.tool(&ns, &["destroy", "--yes", "-d", d(&root)]);
    ok(&o);
    assert!(!stderr(&o).contains("not updated"), "{}", stderr(&o));
    assert!(!root.exists());
    assert_eq!(entries(), 0, "destroy forgot it");
}

/// A normal user's `on` that fails after some of its mounts (a bind of a
/// source that is not there, last in the plan): what it mounted lay in
/// the holder's namespace, which ended with it, so it says that nothing
/// was mounted, not that something could not be unmounted; nothing is
/// left, and the next `on` works.
#[test]
fn a_users_on_that_fails_half_way_says_nothing_was_mounted() {
    let ns = Ns::new();
    let user = User::new(&ns, "ct-user");
    let _h = user.holders();
    let root = user.home.join("half");
    make_busybox_root(&root);
    fs::write(
        root.join("chroot.d/tool.conf"),
        "[bind]\nsrc:/nonexistent-source tgt:/x\n",
    )
    .unwrap();
    chown_tree(&root, user.uid, user.uid);
    let o = user.tool(&ns, &["on", "-d", d(&root)]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("/nonexistent-source"), "{err}");
    assert!(err.trim_end().ends_with("nothing was mounted"), "{err}");
    assert!(!err.contains("could not be unmounted"), "{err}");
    assert_eq!(user.status(&ns, &root)["state"], "off");
    assert_eq!(holders_of(&root), 0, "no holder left");
    fs::write(root.join("chroot.d/tool.conf"), "").unwrap();
    ok(&user.tool(&ns, &["on", "-d", d(&root)]));
    ok(&user.tool(&ns, &["off", "-d", d(&root)]));
}
