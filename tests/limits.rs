//! What a run may use: `--memory`, `--cpus`, `--pids` (a cgroup of the
//! run's own, below chroot-tool's own cgroup, removed at the end),
//! `--rlimit` and `[limits]` of tool.conf; on a busybox rootfs, for real.
//! Each test finds the run's cgroups in what the command prints of its
//! /proc/self/cgroup, and removes any that is left (the test fails then).
mod common;

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{code, d, finish_within, ok, stderr, stdout, Ns, DEADLINE};

/// Prints the command's cgroups, then runs the rest of the line.
const SHOW: &str = "cat /proc/self/cgroup; ";

/// The host directories of the run's cgroups named in `out` (lines
/// `ID:CONTROLLERS:PATH` whose path has `chroot-tool-run-`): each
/// path under every cgroup mount where it exists or could be.
fn run_cgroups(out: &str) -> Vec<PathBuf> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mut dirs = Vec::new();
    for line in out.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(ctl), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if !path.contains("chroot-tool-run-") {
            continue;
        }
        for m in mountinfo.lines() {
            let f: Vec<&str> = m.split(' ').collect();
            let sep = f.iter().position(|x| *x == "-").unwrap();
            let (fstype, sopts) = (f[sep + 1], f[sep + 3]);
            let fits = match ctl {
                "" => fstype == "cgroup2",
                c => fstype == "cgroup" && c.split(',').all(|c| sopts.split(',').any(|o| o == c)),
            };
            if fits && f[3] == "/" {
                dirs.push(Path::new(f[4]).join(path.trim_start_matches('/')));
            }
        }
    }
    dirs
}

/// Removes the run cgroups of `out` that are still there, and says which.
struct Cleanup(Vec<PathBuf>);

impl Cleanup {
    fn left(&self) -> Vec<&PathBuf> {
        self.0.iter().filter(|p| p.exists()).collect()
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for p in &self.0 {
            if p.exists() {
                if let Ok(procs) = fs::read_to_string(p.join("cgroup.procs")) {
                    for pid in procs.split_whitespace().filter_map(|x| x.parse().ok()) {
                        let _ = nix::sys::signal::kill(
                            nix::unistd::Pid::from_raw(pid),
                            nix::sys::signal::Signal::SIGKILL,
                        );
                    }
                }
                let end = Instant::now() + Duration::from_secs(10);
                while fs::remove_dir(p).is_err() && Instant::now() < end {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }
}

#[test]
fn memory_hog_is_killed_and_the_same_without_a_limit_succeeds() {
    let ns = Ns::new();
    let root = ns.busybox_root("sb");
    // 200 MiB with no newline: tail holds it all.
    let hog = "head -c 209715200 /dev/zero | tail >/dev/null";
    let o = ns.run_in(
        &root,
        &[
            "--memory",
            "50M",
            "--",
            "/bin/sh",
            "-c",
            &format!("{SHOW}{hog}"),
        ],
    );
    let out = stdout(&o);
    let cg = Cleanup(run_cgroups(&out));
    assert_eq!(code(&o), 137, "killed by the OOM killer: {o:?}");
    assert!(
        out.lines()
            .any(|l| l.contains(":memory:") && l.contains("chroot-tool-run-")),
        "the command ran in a memory cgroup of the run's own: {out}"
    );
    let own = fs::read_to_string("/proc/self/cgroup").unwrap();
    let own_mem = own.lines().find(|l| l.contains(":memory:")).unwrap();
    let own_path = own_mem.splitn(3, ':').nth(2).unwrap().trim_end_matches('/');
    let run_mem = out.lines().find(|l| l.contains(":memory:")).unwrap();
    assert!(
        run_mem
            .splitn(3, ':')
            .nth(2)
            .unwrap()
            .starts_with(&format!("{own_path}/chroot-tool-run-")),
        "below the cgroup chroot-tool is in ({own_mem}), not at the root: {run_mem}"
    );
    assert!(!cg.0.is_empty());
    assert!(
        cg.left().is_empty(),
        "the run's cgroup is removed: {:?}",
        cg.left()
    );
    // The host (and the supervisor) is unaffected: the same without a limit succeeds.
    let o = ns.run_in(
        &root,
        &["--", "/bin/sh", "-c", &format!("{hog}; echo survived")],
    );
    assert_eq!(stdout(&o), "survived\n", "{o:?}");
    assert_eq!(code(&o), 0);
    ok(&ns.run(&["off", "-d", d(&root)]));
}

#[test]
fn fork_bomb_is_capped_and_what_it_left_is_ended() {
    let ns = Ns::new();
    let root = ns.busybox_root("sb");
    let bomb = "i=0; while [ $i -lt 60 ]; do sleep 2 & i=$((i+1)); done; wait; echo ended";
    let start = Instant::now();
    let o = ns.run_in(
        &root,
        &[
            "--pids",
            "20",
            "--",
            "/bin/sh",
            "-c",
            &format!("{SHOW}{bomb}"),
        ],
    );
    let cg = Cleanup(run_cgroups(&stdout(&o)));
    assert!(
        stderr(&o).contains("can't fork"),
        "fork fails at the cap: {o:?}"
    );
    assert!(start.elapsed() < Duration::from_secs(60));
    assert!(!cg.0.is_empty() && cg.left().is_empty(), "{:?}", cg.0);
    // Without the cap the same loop forks all 60.
    let o = ns.run_in(&root, &["--", "/bin/sh", "-c", bomb]);
    assert_eq!(stdout(&o), "ended\n", "{o:?}");
    assert!(!stderr(&o).contains("can't fork"), "{o:?}");
    // What a capped run leaves in the background is ended with it.
    let o = ns.run_in(
        &root,
        &[
            "--pids",
            "20",
            "--",
            "/bin/sh",
            "-c",
            &format!("{SHOW}sleep 600 & echo started"),
        ],
    );
    let cg = Cleanup(run_cgroups(&stdout(&o)));
    assert_eq!(code(&o), 0, "{o:?}");
    assert!(cg.left().is_empty(), "{:?}", cg.left());
    assert!(
        common::pids_rooted_under(&root).is_empty(),
        "the background sleep is gone"
    );
    ok(&ns.run(&["off", "-d", d(&root)]));
}

#[test]
fn cpus_sets_the_quota_of_the_running_command() {
    let ns = Ns::new();
    let root = ns.busybox_root("sb");
    let go = root.join("root/go");
    let mut child = ns
        .tool()
        .args(["run", "-d", d(&root), "--cpus", "0.5", "--", "/bin/sh", "-c"])
        .arg(format!(
            "{SHOW}echo waiting; i=0; while [ ! -e /root/go ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done"
        ))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut out = String::new();
    while !out.contains("waiting") {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 {
            break;
        }
        out.push_str(&line);
    }
    let cg = Cleanup(run_cgroups(&out));
    let cpu: Vec<&PathBuf> =
        cg.0.iter()
            .filter(|p| p.join("cpu.max").exists() || p.join("cpu.cfs_quota_us").exists())
            .collect();
    assert_eq!(cpu.len(), 1, "one cpu cgroup for the run: {out}");
    let read = |f: &str| fs::read_to_string(cpu[0].join(f)).map(|s| s.trim().to_string());
    match read("cpu.max") {
        Ok(max) => assert_eq!(max, "50000 100000"),
        Err(_) => {
            assert_eq!(read("cpu.cfs_quota_us").unwrap(), "50000");
            assert_eq!(read("cpu.cfs_period_us").unwrap(), "100000");
        }
    }
    fs::write(&go, "").unwrap();
    drop(reader);
    let o = finish_within(child, DEADLINE);
    assert_eq!(code(&o), 0, "{o:?}");
    assert!(cg.left().is_empty(), "removed at the end: {:?}", cg.left());
    ok(&ns.run(&["off", "-d", d(&root)]));
}

#[test]
fn rlimits_and_the_limits_section_with_the_command_line_winning() {
    let ns = Ns::new();
    let root = ns.busybox_root("sb");
    let o = ns.run_in(
        &root,
        &[
            "--rlimit",
            "nofile=16",
            "--rlimit",
            "core=0",
            "--",
            "/bin/sh",
            "-c",
            "ulimit -n; ulimit -Hn; ulimit -c",
        ],
    );
    assert_eq!(ok(&o), "16\n16\n0\n");
    fs::write(
        root.join("chroot.d/tool.conf"),
        "[limits]\n# per sandbox\nmemory:64M nofile:1024 ; pids:100\n",
    )
    .unwrap();
    let line = format!("{SHOW}ulimit -n");
    let o = ns.run_in(&root, &["--", "/bin/sh", "-c", &line]);
    let cg = Cleanup(run_cgroups(&stdout(&o)));
    let out = ok(&o);
    assert!(out.ends_with("1024\n"), "{out}");
    assert!(!stderr(&o).contains("not applied"), "{o:?}");
    for ctl in [":memory:", ":pids:"] {
        assert!(
            out.lines()
                .any(|l| l.contains(ctl) && l.contains("chroot-tool-run-")),
            "[limits] gives the run a cgroup ({ctl}): {out}"
        );
    }
    assert!(cg.left().is_empty());
    let o = ns.run_in(
        &root,
        &["--rlimit", "nofile=32", "--", "/bin/sh", "-c", "ulimit -n"],
    );
    assert_eq!(ok(&o), "32\n", "the command line wins");
    // A memory limit of tool.conf holds: 100 MiB does not fit in 64M.
    let o = ns.run_in(
        &root,
        &[
            "--",
            "/bin/sh",
            "-c",
            "head -c 104857600 /dev/zero | tail >/dev/null",
        ],
    );
    assert_eq!(code(&o), 137, "{o:?}");
    // ... and the command line's wins over it.
    let o = ns.run_in(
        &root,
        &[
            "--memory",
            "1G",
            "--",
            "/bin/sh",
            "-c",
            "head -c 104857600 /dev/zero | tail >/dev/null",
        ],
    );
    assert_eq!(code(&o), 0, "{o:?}");
    ok(&ns.run(&["off", "-d", d(&root)]));
}

#[test]
fn malformed_limits_is_an_error_naming_file_line_and_key() {
    let ns = Ns::new();
    let root = ns.busybox_root("sb");
    for (rec, key) in [
        ("memory:12Q", "memory"),
        ("memory:0", "memory"),
        ("cpus:0", "cpus"),
        ("cpus:1,5", "cpus"),
        ("pids:-1", "pids"),
        ("pids:many", "pids"),
        ("nofile:1K", "nofile"),
        ("memroy:1G", "memroy"),
        ("stack:8M", "stack"),
    ] {
        fs::write(
            root.join("chroot.d/tool.conf"),
            format!("[run]\n\n[limits]\ncpus:1 {rec}\n"),
        )
        .unwrap();
        let o = ns.run_in(&root, &["--", "/bin/touch", "/root/ran"]);
        let err = stderr(&o);
        assert_ne!(code(&o), 0, "{rec}: {o:?}");
        assert!(
            err.contains("chroot.d/tool.conf:4:"),
            "{rec}: file and line: {err}"
        );
        assert!(err.contains(key), "{rec}: names the key: {err}");
        assert!(
            !root.join("root/ran").exists(),
            "{rec}: the command did not run"
        );
    }
    // On the command line: a usage error (2), the command not run.
    fs::remove_file(root.join("chroot.d/tool.conf")).unwrap();
    for bad in [
        ["--memory", "lots"],
        ["--cpus", "0"],
        ["--pids", "0"],
        ["--rlimit", "stack=1"],
        ["--rlimit", "nofile"],
    ] {
        let o = ns.run_in(&root, &[bad[0], bad[1], "--", "/bin/touch", "/root/ran"]);
        assert_eq!(code(&o), 2, "{bad:?}: {o:?}");
        assert!(stderr(&o).contains(bad[0]), "{bad:?}: {o:?}");
        assert!(!root.join("root/ran").exists());
    }
    let _ = ns.run(&["off", "-d", d(&root)]);
}

#[test]
fn a_limit_that_cannot_be_applied_is_an_error_naming_it() {
    let ns = Ns::new();
    let root = ns.busybox_root("sb");
    // In this test's own mount namespace only: the pids hierarchy hidden
    // under a tmpfs, the memory one read-only.
    ok(&ns.sh("mount -t tmpfs ct-test-hide /sys/fs/cgroup/pids"));
    ok(&ns.sh(
        "mount --bind /sys/fs/cgroup/memory /sys/fs/cgroup/memory && \
         mount -o remount,bind,ro /sys/fs/cgroup/memory",
    ));
    let o = ns.run_in(&root, &["--pids", "10", "--", "/bin/touch", "/root/ran"]);
    assert_eq!(code(&o), 125, "{o:?}");
    let err = stderr(&o);
    assert!(
        err.contains("--pids 10") && err.contains("pids controller is not available"),
        "{err}"
    );
    assert!(!root.join("root/ran").exists(), "the command did not run");
    let o = ns.run_in(&root, &["--memory", "50M", "--", "/bin/touch", "/root/ran"]);
    assert_eq!(code(&o), 125, "{o:?}");
    let err = stderr(&o);
    assert!(
        err.contains("--memory 50M") && err.contains("Read-only file system"),
        "{err}"
    );
    assert!(!root.join("root/ran").exists(), "the command did not run");
    // The cpu cgroup made before the pids limit failed is removed too.
    let o = ns.run_in(
        &root,
        &[
            "--cpus",
            "1",
            "--pids",
            "10",
            "--",
            "/bin/touch",
            "/root/ran",
        ],
    );
    assert_eq!(code(&o), 125, "{o:?}");
    assert!(stderr(&o).contains("--pids 10"), "{o:?}");
    assert!(!root.join("root/ran").exists(), "the command did not run");
    let left: Vec<String> = fs::read_dir("/sys/fs/cgroup/cpu")
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            n.strip_prefix("chroot-tool-run-")
                .is_some_and(|pid| !Path::new("/proc").join(pid).exists())
        })
        .collect();
    assert!(
        left.is_empty(),
        "no cgroup of a finished run is left: {left:?}"
    );
    // Without limits the run needs no cgroup and works.
    ok(&ns.run_in(&root, &["--", "/bin/true"]));
    ok(&ns.run(&["off", "-d", d(&root)]));
}

#[test]
fn shell_takes_the_same_limits() {
    let ns = Ns::new();
    let root = ns.busybox_root("sb");
    let mut c = ns.tool();
    c.args([
        "shell",
        "-d",
        d(&root),
        "--rlimit",
        "nofile=20",
        "--pids",
        "30",
    ])
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(b"ulimit -n; cat /proc/self/cgroup\n")
            .unwrap();
    }
    let o = finish_within(child, DEADLINE);
    let out = ok(&o);
    let cg = Cleanup(run_cgroups(&out));
    assert!(out.starts_with("20\n"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.contains(":pids:") && l.contains("chroot-tool-run-")),
        "{out}"
    );
    assert!(cg.left().is_empty(), "{:?}", cg.left());
    ok(&ns.run(&["off", "-d", d(&root)]));
}

#[test]
fn an_empty_cgroup_left_by_a_killed_run_is_removed_by_the_next() {
    let ns = Ns::new();
    let root = ns.busybox_root("sb");
    // A pid that is gone: a process we started and reaped.
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let pid = gone.id();
    gone.wait().unwrap();
    // Beside the runs' cgroups: below the pids cgroup we are in ourselves.
    let own = fs::read_to_string("/proc/self/cgroup").unwrap();
    let own_pids = own
        .lines()
        .find_map(|l| {
            l.splitn(3, ':')
                .nth(2)
                .filter(|_| l.split(':').nth(1) == Some("pids"))
        })
        .expect("a pids cgroup v1 hierarchy, as on this machine and CI");
    let stale = Cleanup(vec![Path::new("/sys/fs/cgroup/pids")
        .join(own_pids.trim_start_matches('/'))
        .join(format!("chroot-tool-run-{pid}"))]);
    fs::create_dir(&stale.0[0]).unwrap();
    let o = ns.run_in(
        &root,
        &[
            "--pids",
            "10",
            "--",
            "/bin/sh",
            "-c",
            &format!("{SHOW}true"),
        ],
    );
    let cg = Cleanup(run_cgroups(&stdout(&o)));
    assert_eq!(code(&o), 0, "{o:?}");
    assert!(cg.left().is_empty());
    assert!(
        stale.left().is_empty(),
        "the stale cgroup is removed: {:?}",
        stale.left()
    );
    ok(&ns.run(&["off", "-d", d(&root)]));
}
