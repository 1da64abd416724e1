//! Test harness: every test gets its own mount namespace (a `sleep` process
//! made by `unshare -m`, entered with `nsenter` for each command), so a bug in
//! chroot-tool can never reach the machine's own mounts. Rootfs builders: a
//! tiny busybox-static root for most tests, and one real debootstrap rootfs
//! per build of the tool, made by `chroot-tool create` and copied per test.
#![allow(dead_code)]

use std::fs;
use std::io::Read;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_chroot-tool");

/// Fails loudly (never skips) when the tests are not run as root.
pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "these tests mount and chroot for real: run them as root (see README.md)"
    );
}

/// A private mount namespace held by a `sleep` we started; ended by its pid on drop.
pub struct Ns {
    holder: Child,
    pub tmp: tempfile::TempDir,
    /// Where chroot-tool keeps its records of the self-binds it made
    /// (`CHROOT_TOOL_RUN_DIR`): this test's own, never the machine's.
    pub run_dir: PathBuf,
}

impl Ns {
    pub fn new() -> Ns {
        Ns::with_propagation("private")
    }

    /// `shared` imitates a systemd host, where every mount is shared.
    pub fn with_propagation(prop: &str) -> Ns {
        require_root();
        let holder = Command::new("unshare")
            .args(["-m", "--propagation", prop, "sleep", "100000"])
            .stdin(Stdio::null())
            .spawn()
            .expect("unshare (util-linux) is needed");
        let tmp = tempfile::Builder::new()
            .prefix("ct-test-")
            .tempdir_in(test_tmp())
            .unwrap();
        let ns = Ns {
            holder,
            run_dir: tmp.path().join(".run"),
            tmp,
        };
        // Wait until the holder really is in its own namespace.
        let me = fs::read_link("/proc/self/ns/mnt").unwrap();
        for _ in 0..500 {
            if let Ok(l) = fs::read_link(format!("/proc/{}/ns/mnt", ns.pid())) {
                if l != me {
                    return ns;
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        panic!("unshare did not make a mount namespace");
    }

    /// Where chroot-tool keeps this test's history (`CHROOT_TOOL_STATE_DIR`).
    pub fn state_dir(&self) -> PathBuf {
        self.tmp.path().join("state")
    }

    pub fn pid(&self) -> u32 {
        self.holder.id()
    }

    /// A command run inside this namespace.
    pub fn cmd(&self, prog: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.arg("-t")
            .arg(self.pid().to_string())
            .args(["-m", "--"])
            .arg(prog);
        c.env_remove("CHROOT_TOOL_DIR");
        // chroot-tool's records of the self-binds it made: this test's own,
        // never the machine's /run/chroot-tool.
        c.env("CHROOT_TOOL_RUN_DIR", &self.run_dir);
        // The history of the test's runs stays in its own temp dir, never
        // the machine's /var/lib/chroot-tool.
        c.env(chroot_tool::audit::STATE_ENV, self.state_dir());
        // No config.toml of the machine's (a test gives its own).
        c.env(chroot_tool::conf::config::CONFIG_ENV, "");
        // create's cache of root filesystems: this test's own.
        c.env(
            chroot_tool::create::cache::ENV,
            self.tmp.path().join("cache"),
        );
        c
    }

    /// chroot-tool inside this namespace.
    pub fn tool(&self) -> Command {
        let mut c = self.cmd(BIN);
        c.stdin(Stdio::null());
        c
    }

    /// Runs chroot-tool with `args`; returns its output.
    pub fn run(&self, args: &[&str]) -> Output {
        output_within(self.tool().args(args), DEADLINE)
    }

    /// `chroot-tool run -d ROOT ARGS…` (ARGS: options, then the command).
    pub fn run_in(&self, root: &Path, args: &[&str]) -> Output {
        let mut a = vec!["run", "-d", d(root)];
        a.extend_from_slice(args);
        self.run(&a)
    }

    /// `on` killed with SIGKILL by its fault hook right after `n` mounts.
    pub fn on_killed_after(&self, root: &Path, n: usize) -> Output {
        let mut c = self.tool();
        c.args(["on", "-d"])
            .arg(root)
            .env(chroot_tool::engine::FAULT_KILL_AFTER, n.to_string());
        output_within(&mut c, DEADLINE)
    }

    /// chroot-tool `args` under `strace`, the first `call` it makes held
    /// back 1.5 s (wait for that moment with [`held_in`]).
    pub fn held_at(&self, call: &str, args: &[&str]) -> Child {
        self.cmd("strace")
            .args(["-f", "-o", "/dev/null", "-e", &format!("trace={call}")])
            .args(["-e", &format!("inject={call}:delay_enter=1500000:when=1")])
            .arg(BIN)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("strace is needed")
    }

    /// Runs a shell line on the host side of this namespace.
    pub fn sh(&self, line: &str) -> Output {
        output_within(
            self.cmd("sh").args(["-c", line]).stdin(Stdio::null()),
            DEADLINE,
        )
    }

    /// The sandbox's state as `status --json` gives it: exactly `on`,
    /// `off` or `partly on` (never a substring match).
    #[track_caller]
    pub fn state(&self, dir: &Path) -> String {
        let out = ok(&self
            .tool()
            .arg("status")
            .arg("--json")
            .arg("-d")
            .arg(dir)
            .output_within());
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v["state"]
            .as_str()
            .expect("status --json has a state")
            .to_string()
    }

    /// The namespace's mount table; bytes that are not UTF-8 (a mount point
    /// named so) are replaced, so comparisons still work.
    pub fn mountinfo(&self) -> String {
        let b = fs::read(format!("/proc/{}/mountinfo", self.pid())).unwrap();
        String::from_utf8_lossy(&b).into_owned()
    }

    /// The mount table of this namespace with the mount ids' order not
    /// mattering: root, mount point and source of each line, sorted.
    pub fn table(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .mountinfo()
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                format!("{} {} {}", f[3], f[4], f[f.len() - 2])
            })
            .collect();
        v.sort();
        v
    }

    /// Mount points (field 5, unescaped) at or below `dir` in this namespace.
    pub fn mounts_under(&self, dir: &Path) -> Vec<String> {
        let dir = dir.to_string_lossy().trim_end_matches('/').to_string();
        self.mountinfo()
            .lines()
            .map(|l| unescape(l.split(' ').nth(4).unwrap()))
            .filter(|m| *m == dir || m.starts_with(&format!("{dir}/")))
            .collect()
    }

    /// Every mount line outside `dir`, without the mount ids (for before/after comparisons).
    pub fn mounts_outside(&self, dir: &Path) -> Vec<String> {
        let dir = dir.to_string_lossy().trim_end_matches('/').to_string();
        self.mountinfo()
            .lines()
            .filter(|l| {
                let m = unescape(l.split(' ').nth(4).unwrap());
                !(m == dir || m.starts_with(&format!("{dir}/")))
            })
            .map(|l| l.split(' ').skip(2).collect::<Vec<_>>().join(" "))
            .collect()
    }

    /// A fresh busybox rootfs in this test's temp dir.
    pub fn busybox_root(&self, name: &str) -> PathBuf {
        let dir = self.tmp.path().join(name);
        make_busybox_root(&dir);
        dir
    }

    /// A fresh copy of the shared debootstrap rootfs in this test's temp dir.
    pub fn debian_root(&self, name: &str) -> PathBuf {
        let dir = self.tmp.path().join(name);
        let st = Command::new("cp")
            .args(["-a", "--reflink=auto"])
            .arg(debian_rootfs())
            .arg(&dir)
            .status()
            .unwrap();
        assert!(st.success(), "copying the debootstrap rootfs failed");
        dir
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        // End processes a test left inside its sandboxes (only those whose
        // root is below this test's own temp dir), then the holder.
        let tmp = self.tmp.path().to_path_buf();
        for pid in pids_rooted_under(&tmp) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        // The sandboxes' cgroups this test's runs made (recorded in its own
        // run directory): what is left in them ended, then removed.
        for dir in tracked_cgroups(&self.run_dir) {
            let _ = fs::write(dir.join("cgroup.kill"), "1");
        }
        for _ in 0..200 {
            let left: Vec<PathBuf> = tracked_cgroups(&self.run_dir)
                .into_iter()
                .rev()
                .filter(|d| fs::remove_dir(d).is_err() && d.exists())
                .collect();
            if left.is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// The cgroup directories of the sandboxes whose records are in `run_dir`
/// (`RUN/cgroups/ID`: one cgroup v2 path per line), each followed by those
/// made below it.
pub fn tracked_cgroups(run_dir: &Path) -> Vec<PathBuf> {
    // cgroup v2 beside the v1 hierarchies (hybrid), or alone.
    let mount = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
        .into_iter()
        .find(|m| Path::new(m).join("cgroup.procs").exists());
    let (Some(mount), Ok(rd)) = (mount, fs::read_dir(run_dir.join("cgroups"))) else {
        return vec![];
    };
    let mut out = vec![];
    for e in rd.flatten() {
        let Ok(text) = fs::read_to_string(e.path()) else {
            continue;
        };
        for rel in text
            .lines()
            .filter(|l| l.starts_with('/') && !l.contains(".."))
        {
            let mut i = out.len();
            out.push(PathBuf::from(format!("{mount}{rel}")));
            while i < out.len() {
                if let Ok(sub) = fs::read_dir(&out[i]) {
                    let dirs: Vec<PathBuf> = sub
                        .flatten()
                        .filter(|s| s.file_type().is_ok_and(|t| t.is_dir()))
                        .map(|s| s.path())
                        .collect();
                    out.extend(dirs);
                }
                i += 1;
            }
        }
    }
    out.retain(|d| d.exists());
    out
}

/// Pids whose root directory is at or below `dir` (seen from this namespace's
/// point of view: the test's own temp dir path is the same in every namespace).
pub fn pids_rooted_under(dir: &Path) -> Vec<i32> {
    let mut out = vec![];
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if let Ok(root) = fs::read_link(e.path().join("root")) {
            if root.starts_with(dir) {
                out.push(pid);
            }
        }
    }
    out
}

pub fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push(u8::from_str_radix(&s[i + 1..i + 4], 8).unwrap());
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Where tests keep their files: below the target dir, never in the source tree.
pub fn test_tmp() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    fs::create_dir_all(&p).unwrap();
    p
}

/// A minimal root filesystem: busybox-static and its applets, /etc/passwd, a shell.
pub fn make_busybox_root(dir: &Path) {
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("busybox-static is needed (apt-get install busybox-static)");
    for d in ["bin", "etc", "root", "chroot.d"] {
        fs::create_dir_all(dir.join(d)).unwrap();
    }
    install_exec(Path::new(busybox), &dir.join("bin/busybox"));
    let list = Command::new(busybox).arg("--list").output().unwrap();
    for applet in String::from_utf8(list.stdout).unwrap().lines() {
        if applet != "busybox" {
            let _ = symlink("busybox", dir.join("bin").join(applet));
        }
    }
    fs::write(dir.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    fs::write(dir.join("etc/group"), "root:x:0:\n").unwrap();
}

/// The C program `source` built static with the machine's C compiler
/// into `to` (for what a shell cannot do: threads of their own).
pub fn build_c(source: &str, to: &Path) {
    let dir = tempfile::tempdir_in(test_tmp()).unwrap();
    let src = dir.path().join("p.c");
    fs::write(&src, source).unwrap();
    let o = Command::new("cc")
        .args(["-static", "-O2", "-pthread", "-o"])
        .arg(to)
        .arg(&src)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "cc: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Writes an executable script.
pub fn script(path: &Path, body: &str) {
    let tmp = tempfile::NamedTempFile::new_in(test_tmp()).unwrap();
    fs::write(tmp.path(), body).unwrap();
    install_exec(tmp.path(), path);
}

/// Copies an executable with a child process (`install`), so that no
/// descriptor open for writing on it ever exists in this multi-threaded test
/// process: a fork by another test would inherit it and make exec fail
/// with ETXTBSY.
pub fn install_exec(from: &Path, to: &Path) {
    let st = Command::new("install")
        .args(["-m", "0755"])
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(st.success(), "install {} {}", from.display(), to.display());
}

/// The shared debootstrap rootfs, made once per build of the tool by
/// `chroot-tool create` (the real create test of the suite) and reused.
pub fn debian_rootfs() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let stamp = fs::metadata(BIN).unwrap().modified().unwrap();
        let key = stamp
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let base = test_tmp().join("debian");
        fs::create_dir_all(&base).unwrap();
        // One builder at a time across test binaries.
        let lock = fs::File::create(base.join(".lock")).unwrap();
        let lock = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive).unwrap();
        let dir = base.join(format!("rootfs-{key}"));
        if !dir.join("chroot.d/create.toml").exists() {
            // Earlier builds (other keys) and a half-made one are removed first:
            // they were made by this harness, in private namespaces.
            for e in fs::read_dir(&base).unwrap().flatten() {
                if e.file_name().to_string_lossy().starts_with("rootfs-") {
                    let _ = fs::remove_dir_all(e.path());
                }
            }
            let ns = Ns::new();
            let out = output_within(
                ns.tool()
                    .args(["create", "--backend", "debootstrap", "-q", "-d"])
                    .arg(&dir),
                Duration::from_secs(1200),
            );
            assert!(
                out.status.success(),
                "chroot-tool create failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                ns.mounts_under(&dir).is_empty(),
                "create left mounts behind"
            );
        }
        drop(lock);
        dir
    })
}

/// How long one command of a test may take: a hang fails the test, it
/// never blocks the suite.
pub const DEADLINE: Duration = Duration::from_secs(120);

/// Runs `cmd` to its end like `Command::output`, but fails the test (after
/// killing the command by its pid) when it is not done within `limit`.
#[track_caller]
pub fn output_within(cmd: &mut Command, limit: Duration) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    finish_within(child, limit)
}

/// `output_within(cmd, DEADLINE)` as a method.
pub trait Within {
    fn output_within(&mut self) -> Output;
}

impl Within for Command {
    #[track_caller]
    fn output_within(&mut self) -> Output {
        output_within(self, DEADLINE)
    }
}

/// `Child::wait_with_output` with a deadline (see [`output_within`]).
#[track_caller]
pub fn finish_within(mut child: Child, limit: Duration) -> Output {
    let read = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = vec![];
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = read(
        child
            .stdout
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let err = read(
        child
            .stderr
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let status = wait_within(&mut child, limit);
    // The pipes close when the command and what it left behind are gone;
    // a process left holding them is no reason to hang either.
    let join = |h: std::thread::JoinHandle<Vec<u8>>| {
        let end = Instant::now() + Duration::from_secs(10);
        while !h.is_finished() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(5));
        }
        if h.is_finished() {
            h.join().unwrap()
        } else {
            b"(output still held open by a leftover process)".to_vec()
        }
    };
    Output {
        status,
        stdout: join(out),
        stderr: join(err),
    }
}

/// Polls `cond` until it holds; fails the test (naming `what`) after 30 s.
/// For waits on another process: never a fixed sleep, which a busy
/// machine outruns.
#[track_caller]
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < end, "still waiting after 30 s: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until the tool that `strace` (`traced`) runs is held in the
/// system call numbered `nr` (x86-64), where an injected delay holds it.
pub fn held_in(traced: &Child, nr: u32, what: &str) {
    let id = traced.id();
    let tool = || {
        fs::read_to_string(format!("/proc/{id}/task/{id}/children"))
            .ok()
            .and_then(|c| c.split_whitespace().next().map(str::to_string))
    };
    let call = || tool().and_then(|p| fs::read_to_string(format!("/proc/{p}/syscall")).ok());
    // The same call, arguments and all, a fifth of a second apart: held,
    // not passing through another call of that number.
    wait_until(what, || {
        let Some(now) = call().filter(|c| c.starts_with(&format!("{nr} "))) else {
            return false;
        };
        std::thread::sleep(Duration::from_millis(200));
        call().is_some_and(|again| again == now)
    });
}

/// Waits for `child` for at most `limit`; on a hang, kills it (by its pid:
/// we started it) and fails the test.
#[track_caller]
pub fn wait_within(child: &mut Child, limit: Duration) -> ExitStatus {
    let end = Instant::now() + limit;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("a command of the test still ran after {limit:?}: killed it");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The path as text (test paths are UTF-8).
pub fn d(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Asserts success; returns stdout.
#[track_caller]
pub fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status,
        stdout(o),
        stderr(o)
    );
    stdout(o)
}

/// The exit code (-1 when killed by a signal).
pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

/// A child process of the test, killed (by its pid) and reaped when this
/// is dropped, a failed assertion included.
pub struct Reap(pub std::process::Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Ns {
    /// A namespace made from this one with its propagation unchanged: on a
    /// shared namespace, a peer whose mounts receive what is mounted here
    /// (a systemd service's, a container's). Ended when dropped.
    pub fn peer(&self) -> Reap {
        let peer = Reap(
            self.cmd("unshare")
                .args(["-m", "--propagation", "unchanged", "sleep", "100000"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let pid = peer.0.id();
        let ours = fs::read_link(format!("/proc/{}/ns/mnt", self.pid())).unwrap();
        let host = fs::read_link("/proc/self/ns/mnt").unwrap();
        wait_until("the peer namespace", || {
            fs::read_link(format!("/proc/{pid}/ns/mnt")).is_ok_and(|m| m != ours && m != host)
                && fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default() == "sleep\n"
        });
        peer
    }
}

/// The mount points at or below `dir` in the mount namespace of `pid`.
pub fn points_of(pid: u32, dir: &Path) -> Vec<String> {
    fs::read_to_string(format!("/proc/{pid}/mountinfo"))
        .unwrap()
        .lines()
        .map(|l| unescape(l.split(' ').nth(4).unwrap()))
        .filter(|p| Path::new(p).starts_with(dir))
        .collect()
}

/// Ends, on drop, every holder whose pid file lies in `dir` (a run dir of
/// the test's own), when that pid is still a holder.
pub struct Holders(pub PathBuf);

impl Drop for Holders {
    fn drop(&mut self) {
        let Ok(rd) = fs::read_dir(&self.0) else {
            return;
        };
        for e in rd.flatten() {
            let text = fs::read_to_string(e.path()).unwrap_or_default();
            let Some(pid) = text.split_whitespace().nth(1).and_then(|p| p.parse().ok()) else {
                continue;
            };
            if fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default()
                == "chroot-tool-hol\n"
            {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}
