//! `create --backend`, and create and destroy as a normal user, for real.
//!
//! The debootstrap create as root is the shared one of the suite
//! (`common::debian_rootfs`, checked in tests/create.rs); here: mmdebstrap
//! as root with the host's CA certificates and apt proxy carried and apt
//! used inside over HTTPS; as the real user `ct-user` (subordinate range
//! 100000:65536, made by .ci/run) a create whose files are owned as the
//! mapping says, and a destroy that removes them all, and one interrupted
//! that leaves nothing running; as `ct-nosub` (no range) the one-line error. Each creates in its own test so that they
//! run in parallel with the rest of this file.
mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::*;

/// How long a real create may take on a busy machine.
const CREATE: Duration = Duration::from_secs(900);

/// A real normal user of this machine, set up to run chroot-tool in `ns`:
/// the binary copied where the user may run it, a directory of the user's
/// own, and XDG directories of this test's own.
struct User {
    name: &'static str,
    uid: u32,
    gid: u32,
    bin: PathBuf,
    home: PathBuf,
}

impl User {
    fn new(ns: &Ns, name: &'static str) -> User {
        let pw = nix::unistd::User::from_name(name)
            .unwrap()
            .unwrap_or_else(|| panic!("user {name} is missing: .ci/run creates it"));
        fs::set_permissions(ns.tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let bindir = ns.tmp.path().join(format!("{name}-bin"));
        fs::create_dir_all(&bindir).unwrap();
        let bin = bindir.join("chroot-tool");
        install_exec(Path::new(BIN), &bin);
        let home = ns.tmp.path().join(name);
        for d in ["", "run", "state", "config", "cache"] {
            let p = home.join(d);
            fs::create_dir_all(&p).unwrap();
            std::os::unix::fs::chown(&p, Some(pw.uid.as_raw()), Some(pw.gid.as_raw())).unwrap();
        }
        fs::set_permissions(&home, fs::Permissions::from_mode(0o755)).unwrap();
        User {
            name,
            uid: pw.uid.as_raw(),
            gid: pw.gid.as_raw(),
            bin,
            home,
        }
    }

    /// chroot-tool `args` as this user, in `ns`.
    fn cmd(&self, ns: &Ns, args: &[&str]) -> Command {
        let mut c = ns.cmd("runuser");
        c.args([
            "-u",
            self.name,
            "--",
            "env",
            "-u",
            "CHROOT_TOOL_RUN_DIR",
            "-u",
        ])
        .arg(chroot_tool::audit::STATE_ENV)
        .arg(format!(
            "XDG_RUNTIME_DIR={}",
            self.home.join("run").display()
        ))
        .arg(format!(
            "XDG_STATE_HOME={}",
            self.home.join("state").display()
        ))
        .arg(format!(
            "XDG_CONFIG_HOME={}",
            self.home.join("config").display()
        ))
        .arg(format!(
            "XDG_CACHE_HOME={}",
            self.home.join("cache").display()
        ))
        .arg(format!("HOME={}", self.home.display()))
        .arg(&self.bin)
        .args(args)
        .stdin(std::process::Stdio::null());
        c
    }

    fn run(&self, ns: &Ns, args: &[&str], limit: Duration) -> Output {
        output_within(&mut self.cmd(ns, args), limit)
    }
}

fn one_line(err: &str) -> &str {
    assert_eq!(err.lines().count(), 1, "not one line: {err}");
    err.trim_end()
}

/// The host's locally added certificates (the proxy's CA among them on
/// this machine), as (name, text).
fn host_certs() -> Vec<(PathBuf, String)> {
    let dir = Path::new("/usr/local/share/ca-certificates");
    chroot_tool::create::trust::host_certs(dir)
        .into_iter()
        .map(|rel| {
            let text = fs::read_to_string(dir.join(&rel)).unwrap();
            (rel, text)
        })
        .collect()
}

// mmdebstrap as root, with ca-certificates included: the host's local CAs
// are copied and in the bundle, the host's apt proxy setting is written,
// and apt inside works over plain HTTP and over HTTPS (through this
// machine's intercepting proxy, whose CA only the carried certificates
// make trusted).
#[test]
fn mmdebstrap_as_root_carries_trust_and_proxy() {
    let ns = Ns::new();
    let dir = ns.tmp.path().join("mm");
    // The host's apt configuration as apt-config reads it, with a proxy
    // setting that is harmless for apt (DIRECT: no proxy).
    let conf = ns.tmp.path().join("apt.conf");
    fs::write(
        &conf,
        "Acquire::http::Proxy::deb.example.invalid \"DIRECT\";\nAcquire::https::Proxy \"DIRECT\";\n",
    )
    .unwrap();
    let out = output_within(
        ns.tool()
            .env("APT_CONFIG", &conf)
            .args([
                "create",
                "--backend",
                "mmdebstrap",
                "--include",
                "ca-certificates",
                "-d",
            ])
            .arg(&dir),
        CREATE,
    );
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    // Progress in plain mode: mmdebstrap's steps as phases.
    for phase in [
        "create: Downloading packages",
        "create: Installing the essential packages",
    ] {
        assert!(err.contains(phase), "{err}");
    }
    let rec = chroot_tool::create::load(&dir).expect("create.toml");
    assert_eq!(rec.backend, "mmdebstrap");
    assert!(rec.mmdebstrap_version.is_some(), "{rec:?}");
    assert_eq!(rec.debootstrap_version, None);
    assert_eq!(rec.user, None);
    let st = ok(&ns.run(&["status", "-d", d(&dir)]));
    assert!(st.contains(" with mmdebstrap\n"), "{st}");
    assert!(ns.mounts_under(&dir).is_empty());
    assert_eq!(fs::metadata(dir.join("etc/passwd")).unwrap().uid(), 0);
    assert_eq!(
        fs::read_to_string(dir.join("etc/hostname")).unwrap(),
        "mm\n"
    );

    let certs = host_certs();
    assert!(
        !certs.is_empty(),
        "this machine's proxy CA should be in /usr/local/share/ca-certificates"
    );
    let bundle = fs::read_to_string(dir.join("etc/ssl/certs/ca-certificates.crt")).unwrap();
    for (rel, text) in &certs {
        let copied = dir.join("usr/local/share/ca-certificates").join(rel);
        assert_eq!(
            &fs::read_to_string(&copied).unwrap(),
            text,
            "{}",
            rel.display()
        );
        assert!(
            bundle.contains(text.trim()),
            "{} not in the bundle",
            rel.display()
        );
    }
    // mmdebstrap's apt got them too (it reads no host configuration).
    let log = fs::read_to_string(dir.join("chroot.d/create.log")).unwrap();
    assert!(
        log.lines()
            .next()
            .unwrap()
            .contains(" --aptopt=Acquire::https::Proxy \"DIRECT\"; "),
        "{log}"
    );
    assert_eq!(
        fs::read_to_string(dir.join("etc/apt/apt.conf.d/80chroot-tool-proxy")).unwrap(),
        "// The host's proxy for apt, carried by chroot-tool create.\n\
         Acquire::http::Proxy::deb.example.invalid \"DIRECT\";\n\
         Acquire::https::Proxy \"DIRECT\";\n"
    );

    // apt inside: over HTTP as created, then over HTTPS.
    ok(&output_within(
        ns.tool()
            .args(["run", "-d"])
            .arg(&dir)
            .args(["--", "apt-get", "update", "--error-on=any"]),
        CREATE,
    ));
    let sources = fs::read_to_string(dir.join("etc/apt/sources.list")).unwrap();
    assert!(
        sources.contains("http://deb.debian.org/debian"),
        "{sources}"
    );
    fs::write(
        dir.join("etc/apt/sources.list"),
        sources.replace("http://", "https://"),
    )
    .unwrap();
    let out = output_within(
        ns.tool()
            .args(["run", "-d"])
            .arg(&dir)
            .args(["--", "apt-get", "update", "--error-on=any"]),
        CREATE,
    );
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(out.status.success(), "apt over HTTPS inside: {text}");
    assert!(text.contains("https://deb.debian.org"), "{text}");
    ok(&ns.run(&["off", "-d", d(&dir)]));
}

// As a normal user with a subordinate range: mmdebstrap in a user namespace
// with the user's mapping. Root's files inside are the user's on disk, _apt's
// (uid 42 inside) are 100000+42-1, the setup steps' files are there; then
// destroy as the same user removes every file, whatever id owns it.
#[test]
fn user_creates_and_destroys() {
    let ns = Ns::new();
    let u = User::new(&ns, "ct-user");
    let dir = u.home.join("sb");
    let out = u.run(&ns, &["create", "-d", d(&dir)], CREATE);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("create: Installing the essential packages"),
        "{err}"
    );
    assert!(ns.mounts_under(&dir).is_empty());

    let rec = chroot_tool::create::load(&dir).expect("create.toml");
    assert_eq!(rec.backend, "mmdebstrap");
    assert_eq!(rec.user.as_deref(), Some("ct-user"));
    let owner = |p: &str| {
        let m = fs::symlink_metadata(dir.join(p)).unwrap();
        (m.uid(), m.gid())
    };
    assert_eq!(owner("etc/passwd"), (u.uid, u.gid));
    assert_eq!(owner("usr/bin"), (u.uid, u.gid));
    // _apt is uid 42 in Debian: 100000+42-1 on disk (its partial
    // directory's group is root's: the user's).
    let passwd = fs::read_to_string(dir.join("etc/passwd")).unwrap();
    assert!(passwd.contains("_apt:x:42:"), "{passwd}");
    assert_eq!(owner("var/cache/apt/archives/partial"), (100_041, u.gid));
    // root:shadow (gid 42 inside).
    assert_eq!(owner("etc/shadow"), (u.uid, 100_041));
    // What create writes after the backend, as the user: root's inside.
    assert_eq!(owner("etc/hostname"), (u.uid, u.gid));
    assert_eq!(
        fs::read_to_string(dir.join("etc/hostname")).unwrap(),
        "sb\n"
    );
    assert_eq!(owner("chroot.d/tool.conf"), (u.uid, u.gid));
    assert_eq!(owner("chroot.d/create.toml"), (u.uid, u.gid));
    for (rel, text) in host_certs() {
        let p = dir.join("usr/local/share/ca-certificates").join(&rel);
        assert_eq!(fs::read_to_string(&p).unwrap(), text);
    }
    // The lock lived in the user's runtime directory.
    assert!(u.home.join("run/chroot-tool/lock").is_dir());

    // A create that did not finish (no create.toml) is cleaned by the
    // next create, files of the subordinate ids included (that one fails
    // fast on an unreachable mirror).
    let sub = dir.join("var/cache/apt/archives/partial");
    fs::remove_file(dir.join("chroot.d/create.toml")).unwrap();
    let out = u.run(
        &ns,
        &[
            "create",
            "--mirror",
            "http://127.0.0.1:9/debian",
            "-d",
            d(&dir),
        ],
        DEADLINE,
    );
    let err = stderr(&out);
    assert_eq!(code(&out), 1, "{err}");
    assert!(
        err.contains("cleaning up a previous failed create"),
        "{err}"
    );
    assert!(err.contains("could not be reached"), "{err}");
    assert!(!sub.exists() && !dir.join("etc/passwd").exists(), "{err}");

    // Root could not remove these as the user can; the user's destroy does.
    let out = u.run(&ns, &["destroy", "--yes", "-d", d(&dir)], DEADLINE);
    let text = stdout(&out);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(text.contains("destroyed"), "{text}");
    assert!(!dir.exists(), "{} is left", dir.display());
}

// Without a subordinate range: one line that says what is needed, and
// nothing made. debootstrap as a normal user: one line that says why not.
#[test]
fn user_without_a_range_is_told_what_to_add() {
    let ns = Ns::new();
    let u = User::new(&ns, "ct-nosub");
    let dir = u.home.join("sb");
    let out = u.run(&ns, &["create", "-d", d(&dir)], DEADLINE);
    let err = stderr(&out);
    assert_eq!(code(&out), 1, "{err}");
    let line = one_line(&err);
    assert!(
        line.starts_with("chroot-tool: create as a normal user needs a subordinate id range for ct-nosub in /etc/subuid and /etc/subgid")
            && line.contains("usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ct-nosub"),
        "{line}"
    );
    assert!(!dir.exists());

    let u = User::new(&ns, "ct-user");
    let dir = u.home.join("deb");
    let out = u.run(
        &ns,
        &["create", "--backend", "debootstrap", "-d", d(&dir)],
        DEADLINE,
    );
    let err = stderr(&out);
    assert_eq!(code(&out), 1, "{err}");
    assert!(
        one_line(&err).starts_with("chroot-tool: debootstrap needs root"),
        "{err}"
    );
    assert!(!dir.exists());
}

/// The descendants of `pid` whose command name is `comm`.
fn descendants_named(pid: u32, comm: &str) -> Vec<u32> {
    let mut out = vec![];
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        let kids = fs::read_to_string(format!("/proc/{p}/task/{p}/children")).unwrap_or_default();
        for k in kids
            .split_whitespace()
            .filter_map(|k| k.parse::<u32>().ok())
        {
            if fs::read_to_string(format!("/proc/{k}/comm")).is_ok_and(|c| c.trim() == comm) {
                out.push(k);
            }
            todo.push(k);
        }
    }
    out
}

/// The processes in the user namespace whose inode is `ns`.
fn in_userns(ns: u64) -> Vec<String> {
    let mut out = vec![];
    for e in fs::read_dir("/proc").unwrap().flatten() {
        if fs::metadata(e.path().join("ns/user")).is_ok_and(|m| m.ino() == ns) {
            let cmd = fs::read(e.path().join("cmdline")).unwrap_or_default();
            out.push(String::from_utf8_lossy(&cmd).replace('\0', " "));
        }
    }
    out
}

// A user's create interrupted while mmdebstrap works in its user namespace:
// it says so, and nothing of it is left running (apt's processes run as
// _apt there, a subordinate id the user cannot signal from outside).
#[test]
fn user_create_interrupted_leaves_nothing_running() {
    let ns = Ns::new();
    let u = User::new(&ns, "ct-user");
    let dir = u.home.join("int");
    let errfile = ns.tmp.path().join("int.stderr");
    let mut child = u
        .cmd(&ns, &["create", "-d", d(&dir)])
        .stdout(std::process::Stdio::null())
        .stderr(fs::File::create(&errfile).unwrap())
        .spawn()
        .unwrap();
    let log = dir.join("chroot.d/create.log");
    let mut tool = 0;
    let mut userns = 0;
    wait_until("apt downloads in the user's namespace", || {
        if tool == 0 {
            tool = descendants_named(child.id(), "chroot-tool")
                .first()
                .copied()
                .unwrap_or(0);
        }
        // apt's "Get:" lines: its download methods (as _apt) are running.
        let started = fs::read_to_string(&log).is_ok_and(|l| l.contains("\nGet:"));
        if tool != 0 && started && userns == 0 {
            let own = fs::metadata(format!("/proc/{tool}/ns/user")).map(|m| m.ino());
            for g in descendants_named(tool, "chroot-tool") {
                if let (Ok(own), Ok(m)) = (&own, fs::metadata(format!("/proc/{g}/ns/user"))) {
                    if m.ino() != *own {
                        userns = m.ino();
                    }
                }
            }
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "create ended too early"
        );
        userns != 0
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(tool as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = wait_within(&mut child, DEADLINE);
    let err = fs::read_to_string(&errfile).unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains("chroot-tool: create interrupted; nothing is mounted below"),
        "{err}"
    );
    let left = in_userns(userns);
    assert!(left.is_empty(), "still running: {left:?}");
    assert!(!dir.join("chroot.d/create.toml").exists());
}
