//! Namespaces of a run's own: `-m` mounts for one run (bind, ro, tmpfs;
//! gone after, invisible to a parallel run, targets resolved inside the
//! root), `--net none` (only loopback, the host's 127.0.0.1 out of reach)
//! and `--pid` (its own pids, orphans reaped, the status and signals
//! passed through); on a busybox rootfs, each test in its own mount namespace.
mod common;

use std::fs;
use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{
    build_c, code, d, finish_within, install_exec, make_busybox_root, ok, output_within,
    pids_rooted_under, script, stderr, stdout, tracked_cgroups, wait_until, wait_within, Ns, Reap,
    BIN, DEADLINE,
};
use std::process::Stdio;

/// Waits (at most 30 s) until `p` exists.
#[track_caller]
fn wait_for(p: &Path) {
    let end = Instant::now() + Duration::from_secs(30);
    while !p.exists() {
        assert!(Instant::now() < end, "{} never appeared", p.display());
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn run_mounts_bind_ro_and_tmpfs_for_the_run_only() {
    let ns = Ns::new();
    let root = ns.busybox_root("sb");
    let host = ns.tmp.path().join("host-src");
    fs::create_dir_all(&host).unwrap();
    fs::write(host.join("f"), "from the host\n").unwrap();
    fs::create_dir_all(root.join("data")).unwrap();
    std::os::unix::fs::symlink("/data", root.join("link")).unwrap();
    // On first, so that the table before is the sandbox's own.
    ok(&ns.run_in(&root, &["--", "true"]));
    let before = ns.table();
    let h = d(&host);
    let line = "cat /mnt/rw/f; echo new > /mnt/rw/g; \
                echo x > /mnt/ro/h 2>/dev/null || echo ro-refused; \
                echo t > /link/t/file; cat /data/t/file; \
                grep -c ' /data/t ' /proc/self/mountinfo";
    let o = ns.run_in(
        &root,
        &[
            "-m",
            &format!("{h}:/mnt/rw"),
            "-m",
            &format!("{h}:/mnt/ro:ro"),
            "-m",
            "none:/link/t:tmpfs,size=1m,mode=0700",
            "--",
            "sh",
            "-c",
            line,
        ],
    );
    assert_eq!(
        ok(&o),
        "from the host\nro-refused\nt\n1\n",
        "{}",
        stderr(&o)
    );
    // The bind wrote through to the host; the ro one did not.
    assert_eq!(fs::read_to_string(host.join("g")).unwrap(), "new\n");
    assert!(!host.join("h").exists());
    // Nothing of them left: the namespace's table is as before, and the
    // tmpfs's file was never on disk. The target through the rootfs
    // symlink landed inside the root (/data/t), never at the host's /data.
    assert_eq!(ns.table(), before);
    assert!(root.join("data/t").is_dir());
    assert!(!root.join("data/t/file").exists());
    assert!(ns.mounts_under(&root).iter().all(|m| !m.contains("/mnt/")));
    // The next run without -m sees the plain directories.
    assert_eq!(
        ok(&ns.run_in(
            &root,
            &["--", "sh", "-c", "find /mnt/rw /data/t -mindepth 1 | wc -l"]
        )),
        "0\n"
    );
    ok(&ns.run(&["off", "-d", d(&root)]));
}

#[test]
fn run_mounts_are_invisible_to_a_parallel_run_and_the_host() {
    let ns = Ns::new();
    let root = ns.busybox_root("sb");
    let mut a = ns.tool();
    a.args([
        "run",
        "-d",
        d(&root),
        "-m",
        "none:/scratch:tmpfs",
        "--",
        "sh",
        "-c",
        "touch /scratch/mine; touch /ready; \
         i=0; while [ ! -e /done ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done; \
         ls /scratch",
    ])
    .stdout(std::process::Stdio::piped());
    let a = a.spawn().unwrap();
    wait_for(&root.join("ready"));
    // A parallel run: its /scratch is the plain directory, no mount there.
    let o = ns.run_in(
        &root,
        &[
            "--",
            "sh",
            "-c",
            "ls -A /scratch; grep -c scratch /proc/self/mountinfo",
        ],
    );
    assert_eq!(stdout(&o), "0\n", "{}", stderr(&o));
    assert!(!ns.mountinfo().contains("scratch"));
    assert!(!root.join("scratch/mine").exists());
    fs::write(root.join("done"), "").unwrap();
    let out = common::finish_within(a, DEADLINE);
    assert_eq!(ok(&out), "mine\n");
    ok(&ns.run(&["off", "-d", d(&root)]));
}

#[test]
fn run_mount_errors_name_the_option() {
    let ns = Ns::new();
    let root = ns.busybox_root("sb");
    let host = ns.tmp.path().join("bound");
    fs::create_dir_all(&host).unwrap();
    fs::write(
        root.join("chroot.d/tool.conf"),
        format!("[bind]\ntgt:/h src:{}\n", host.display()),
    )
    .unwrap();
    for (args, want, status) in [
        (vec!["-m", "/x:relative"], "absolute", 2),
        (vec!["-m", "/x"], "SRC:TGT", 2),
        (vec!["-m", "/x:/y:ro,size=1"], "no options", 2),
        (
            vec!["-m", "/nonexistent-ct-src:/y"],
            "nonexistent-ct-src",
            125,
        ),
        (vec!["-m", "none:/y:nosuchfs"], "nosuchfs", 125),
        (vec!["-m", "none:/:tmpfs"], "root itself", 125),
        (
            vec!["-m", "none:/a:tmpfs", "-m", "none:/a/b:tmpfs"],
            "one in the other",
            125,
        ),
        // Never created on a host directory bound in.
        (vec!["-m", "none:/h/new:tmpfs"], "refusing to create", 125),
    ] {
        let mut a = args.clone();
        a.extend(["--", "true"]);
        let o = ns.run_in(&root, &a);
        assert!(
            code(&o) == status && stderr(&o).contains(want) && stderr(&o).contains("-m"),
            "{args:?}: status {}: {}",
            code(&o),
            stderr(&o)
        );
    }
    assert!(!host.join("new").exists());
    ok(&ns.run(&["off", "-d", d(&root)]));
}

/// Runs `nc` to the host's 127.0.0.1:PORT with `args`; returns its status
/// and whether the test's listener got its line.
fn probe(ns: &Ns, root: &Path, args: &[&str]) -> (i32, bool) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let port = l.local_addr().unwrap().port().to_string();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopped = stop.clone();
    let server = std::thread::spawn(move || {
        let end = Instant::now() + Duration::from_secs(60);
        // Once the run is over, one last look for its connection.
        let mut last = false;
        while Instant::now() < end && !last {
            last = stopped.load(std::sync::atomic::Ordering::SeqCst);
            if let Ok((mut c, _)) = l.accept() {
                c.set_nonblocking(false).unwrap();
                c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let mut buf = [0u8; 64];
                let n = c.read(&mut buf).unwrap_or(0);
                return &buf[..n] == b"hi\n";
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    });
    let line = format!("echo hi | nc -w 3 127.0.0.1 {port}");
    let mut a = args.to_vec();
    a.extend(["--", "sh", "-c", &line]);
    let o = ns.run_in(root, &a);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    (code(&o), server.join().unwrap())
}

#[test]
fn net_none_has_only_loopback_and_cannot_reach_the_host() {
    let ns = Ns::new();
    let root = ns.busybox_root("sb");
    let (st, got) = probe(&ns, &root, &[]);
    assert!(st == 0 && got, "the host's network by default: {st} {got}");
    let (st, got) = probe(&ns, &root, &["--net", "none"]);
    assert!(st != 0 && !got, "--net none reached the host: {st} {got}");
    // Only lo, and it is up.
    let o = ns.run_in(
        &root,
        &[
            "--net",
            "none",
            "--",
            "sh",
            "-c",
            "tail -n +3 /proc/net/dev | cut -d: -f1; ip link",
        ],
    );
    let out = ok(&o);
    let mut lines = out.lines();
    assert_eq!(lines.next().map(str::trim), Some("lo"), "{out}");
    assert!(out.contains("1: lo: <LOOPBACK,UP"), "{out}");
    assert!(!out.contains("2: "), "{out}");
    // Loopback inside works: a server and a client of the command's own.
    let o = ns.run_in(&root,
        &[
            "--net",
            "none",
            "--",
            "sh",
            "-c",
            // The client tries until the server listens (a busy machine
            // may take its time to start it).
            "nc -l -p 4711 > /got & for i in $(seq 100); do echo inside | nc -w 3 127.0.0.1 4711 && break; sleep 0.05; done; wait; cat /got",
        ],
    );
    assert_eq!(ok(&o), "inside\n");
    // [run] net:none in tool.conf; --net host wins.
    let conf = root.join("chroot.d/tool.conf");
    fs::write(&conf, "[run]\nnet:none\n").unwrap();
    let (st, got) = probe(&ns, &root, &[]);
    assert!(st != 0 && !got, "[run] net:none: {st} {got}");
    let (st, got) = probe(&ns, &root, &["--net", "host"]);
    assert!(st == 0 && got, "--net host wins: {st} {got}");
    // Malformed: an error naming the file and the line.
    fs::write(&conf, "[run]\n\nnet:off\n").unwrap();
    let o = ns.run_in(&root, &["--", "true"]);
    assert!(
        code(&o) != 0 && stderr(&o).contains("tool.conf:3") && stderr(&o).contains("net"),
        "{}",
        stderr(&o)
    );
    fs::write(&conf, "[run]\npid:maybe\n").unwrap();
    let o = ns.run_in(&root, &["--", "true"]);
    assert!(
        code(&o) != 0 && stderr(&o).contains("tool.conf:2") && stderr(&o).contains("pid"),
        "{}",
        stderr(&o)
    );
    let o = ns.run_in(&root, &["--net", "off", "--", "true"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    ok(&ns.run(&["off", "-d", d(&root)]));
}

/// Whatever descriptor runs out first (the lock, the root, the signalfd,
/// the pipe of a plain fork), the run fails as chroot-tool's own failure
/// (125), never as the command's "cannot execute" (126) or "not found" (127).
#[test]
fn running_out_of_descriptors_is_our_failure_not_the_commands() {
    let ns = Ns::new();
    let root = ns.busybox_root("sb");
    ok(&ns.run_in(&root, &["--", "true"]));
    for opts in ["", "--pid"] {
        let mut codes = vec![];
        for n in 5..=40 {
            let o = ns.sh(&format!(
                "ulimit -n {n}; exec {} run -d {} {opts} -- true",
                common::BIN,
                d(&root)
            ));
            let c = code(&o);
            assert!(
                c == 0 || c == 125,
                "ulimit -n {n} {opts}: {c}: {}",
                stderr(&o)
            );
            codes.push(c);
        }
        // Both seen: failures (so the class was reached) and, with enough
        // descriptors, the run itself.
        assert!(
            codes.contains(&125) && codes.contains(&0),
            "{opts}: {codes:?}"
        );
    }
    ok(&ns.run(&["off", "-d", d(&root)]));
}

/// The tool's own rule for the command's signal state, end to end (the
/// library's is tested in tests/exec.rs): what the caller ignored among the
/// signals passed on (HUP, INT), SIGPIPE and SIGCHLD are at their default in
/// the command, and a caller that ignores SIGCHLD (whose children would be
/// reaped behind the supervisor's back) still gets the command's status.
/// Also where /proc is another pid namespace's (`unshare -p -f`): the tool
/// does not believe that /proc's `status` and sets every one back.
#[test]
fn the_command_starts_clean_whatever_the_caller_ignored() {
    let ns = Ns::new();
    let root = ns.busybox_root("sb");
    // (perl sets SIG_IGN as asked; dash's `trap '' CHLD` may not.)
    let ignoring = "$SIG{$_} = \"IGNORE\" for qw(CHLD HUP INT PIPE); exec @ARGV";
    for wrap in ["", "unshare -p -f "] {
        let line = |cmd: &str| {
            format!(
                "exec {wrap}perl -e '{ignoring}' {} run -d {} -- {cmd}",
                common::BIN,
                d(&root)
            )
        };
        let o = ns.sh(&line("grep ^SigIgn: /proc/self/status"));
        let ign = ok(&o);
        let mask =
            u64::from_str_radix(ign.trim().trim_start_matches("SigIgn:").trim(), 16).unwrap();
        for sig in [libc::SIGCHLD, libc::SIGHUP, libc::SIGINT, libc::SIGPIPE] {
            assert_eq!(mask & (1 << (sig - 1)), 0, "{wrap}signal {sig}: {ign}");
        }
        let o = ns.sh(&line("sh -c 'exit 3'"));
        assert_eq!(code(&o), 3, "{wrap}{}", stderr(&o));
    }
    ok(&ns.run(&["off", "-d", d(&root)]));
}

/// Root inside turns `/proc` into a symlink to `sys` while the sandbox is
/// on: the quick check that every planned mount is in place must not
/// count `/sys`'s mount for `/proc` too; `run` goes through `on`, which
/// refuses and says why, instead of running without a `/proc`.
#[test]
fn a_target_turned_into_a_symlink_to_another_is_not_in_place() {
    let ns = Ns::new();
    let root = ns.busybox_root("sb");
    ok(&ns.run_in(
        &root,
        &[
            "--",
            "sh",
            "-c",
            "umount /proc && rmdir /proc && ln -s sys /proc",
        ],
    ));
    let o = ns.run_in(&root, &["--", "true"]);
    assert_eq!(code(&o), 125, "{}", stderr(&o));
    assert!(stderr(&o).contains("/proc leads to /sys"), "{}", stderr(&o));
    ok(&ns.run(&["off", "-d", d(&root)]));
    assert!(ns.table().iter().all(|l| !l.contains(d(&root))));
}

#[test]
fn pid_namespace_init_reaps_and_passes_the_status_on() {
    let ns = Ns::new();
    let root = ns.busybox_root("sb");
    ok(&ns.run_in(&root, &["--", "true"]));
    let before = ns.table();
    // The command is the init's child (pid 2); /proc is the namespace's own.
    let o = ns.run_in(
        &root,
        &[
            "--pid",
            "--",
            "sh",
            "-c",
            "echo $$; ls /proc | grep -c '^[0-9]'",
        ],
    );
    let out = ok(&o);
    let mut l = out.lines();
    assert_eq!(l.next(), Some("2"), "{out}");
    let n: u32 = l.next().unwrap().parse().unwrap();
    assert!(n <= 5, "only the namespace's processes in /proc: {out}");
    // The status is the command's.
    assert_eq!(
        code(&ns.run_in(&root, &["--pid", "--", "sh", "-c", "exit 7"])),
        7
    );
    assert_eq!(
        code(&ns.run_in(&root, &["--pid", "--", "sh", "-c", "kill -TERM $$"])),
        143
    );
    // An orphan left in the background does not outlive the run.
    let o = ns.run_in(
        &root,
        &[
            "--pid",
            "--",
            "sh",
            "-c",
            "sleep 1000 >/dev/null 2>&1 & echo started",
        ],
    );
    assert_eq!(ok(&o), "started\n");
    assert_eq!(pids_rooted_under(&root), Vec::<i32>::new());
    // The fresh /proc is gone with the run.
    assert_eq!(ns.table(), before);
    // [run] pid:yes.
    fs::write(root.join("chroot.d/tool.conf"), "[run]\npid:yes\n").unwrap();
    assert_eq!(ok(&ns.run_in(&root, &["--", "sh", "-c", "echo $$"])), "2\n");
    ok(&ns.run(&["off", "-d", d(&root)]));
}

#[test]
fn pid_namespace_term_to_the_tool_ends_the_command_with_143() {
    let ns = Ns::new();
    let root = ns.busybox_root("sb");
    let mut c = ns.tool();
    c.args([
        "run",
        "-d",
        d(&root),
        "--pid",
        "--",
        "sh",
        "-c",
        "touch /ready; sleep 1000 & sleep 1000",
    ]);
    let mut child = c.spawn().unwrap();
    wait_for(&root.join("ready"));
    std::thread::sleep(Duration::from_millis(100));
    // nsenter execs chroot-tool: this pid is the tool's.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let st = wait_within(&mut child, Duration::from_secs(30));
    assert_eq!(st.code(), Some(143));
    assert_eq!(pids_rooted_under(&root), Vec::<i32>::new());
    ok(&ns.run(&["off", "-d", d(&root)]));
}

#[test]
fn isolation_options_combine_in_shell() {
    let ns = Ns::new();
    let root = ns.busybox_root("sb");
    let mut c = ns.tool();
    c.args([
        "shell",
        "-d",
        d(&root),
        "--pid",
        "--net",
        "none",
        "-m",
        "none:/scratch:tmpfs",
    ])
    .stdin(std::process::Stdio::piped());
    let mut child = c
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"echo $$; tail -n +3 /proc/net/dev | wc -l; grep -c ' /scratch ' /proc/self/mountinfo\n")
        .unwrap();
    let o = common::finish_within(child, DEADLINE);
    assert_eq!(ok(&o), "2\n1\n1\n");
    ok(&ns.run(&["off", "-d", d(&root)]));
}

#[test]
fn off_ends_the_processes_of_runs_with_namespaces_of_their_own() {
    let ns = Ns::new();
    let root = ns.busybox_root("sb");
    let mut runs = vec![];
    let opts: [&[&str]; 3] = [
        &["-m", "none:/scratch:tmpfs"],
        &["--pid"],
        &["--net", "none"],
    ];
    for (i, opt) in opts.iter().enumerate() {
        let mut c = ns.tool();
        c.args(["run", "-d", d(&root)]).args(*opt);
        c.args(["--", "sh", "-c", &format!("touch /ready{i}; sleep 1000")]);
        runs.push(c.spawn().unwrap());
        wait_for(&root.join(format!("ready{i}")));
    }
    let st = ok(&ns.run(&["status", "-d", d(&root)]));
    assert!(st.matches("sleep").count() >= 3, "{st}");
    let o = ns.run(&["off", "-d", d(&root), "--timeout", "5"]);
    assert!(ok(&o).contains("processes ended"), "{}", stdout(&o));
    for mut r in runs {
        let st = wait_within(&mut r, Duration::from_secs(30));
        assert_eq!(st.code(), Some(143));
    }
    assert_eq!(pids_rooted_under(&root), Vec::<i32>::new());
    assert!(ns.mounts_under(&root).is_empty());
}

/// The pid a process inside wrote to `p` (waited for), read in the
/// test's mount namespace (where the sandbox is on).
fn pid_in(ns: &Ns, p: &Path) -> i32 {
    let read = || {
        let o = ns.sh(&format!("cat '{}' 2>/dev/null", d(p)));
        String::from_utf8_lossy(&o.stdout)
            .trim()
            .parse::<i32>()
            .ok()
    };
    wait_until(&format!("{} written", p.display()), || read().is_some());
    read().unwrap()
}

/// What a run with a mount namespace of its own (`-m`, `--ephemeral`)
/// leaves running when the run itself is killed (its command ends with it,
/// and what is left in its namespace when it ends normally) is still the
/// sandbox's: a process the command set apart (`setsid ... &`).
/// `status` lists them and `off` ends them (they see the sandbox's own
/// fresh filesystems in their namespace): `off` never says off while they
/// run on in the rootfs. A container of its own that binds the sandbox's
/// /tmp in is no process of the sandbox's.
#[test]
fn off_ends_what_killed_runs_with_namespaces_of_their_own_left() {
    let ns = Ns::new();
    let root = ns.busybox_root("sb");
    ok(&ns.run(&["on", "-d", d(&root)]));
    let opts: [&[&str]; 2] = [&["-m", "none:/scratch:tmpfs"], &["--ephemeral"]];
    let mut pids = vec![];
    for (i, opt) in opts.iter().enumerate() {
        let line = format!(
            "setsid sh -c 'echo $$ > /tmp/apart{i}; exec sleep 1000' </dev/null >/dev/null 2>&1 & \
             echo $$ > /tmp/cmd{i}; exec sleep 1000"
        );
        let mut run = ns.tool();
        run.args(["run", "-d", d(&root)]).args(*opt);
        run.args(["--", "sh", "-c", &line]);
        let mut run = run.stdin(Stdio::null()).spawn().unwrap();
        pid_in(&ns, &root.join(format!("tmp/cmd{i}")));
        pids.push(pid_in(&ns, &root.join(format!("tmp/apart{i}"))));
        run.kill().unwrap();
        wait_within(&mut run, DEADLINE);
    }
    // Not the sandbox's: a container of its own (a tmpfs root) that binds
    // the sandbox's /tmp in.
    let cr = ns.tmp.path().join("container");
    fs::create_dir(&cr).unwrap();
    let line = format!(
        "mount -t tmpfs c {c} && mkdir {c}/bin {c}/tmp && cp /bin/busybox {c}/bin/ && \
         mount --bind {r}/tmp {c}/tmp && exec chroot {c} /bin/busybox sleep 1001",
        c = d(&cr),
        r = d(&root)
    );
    let mut container = ns
        .cmd("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &line])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let other = container.id() as i32;
    wait_until("the container to start", || {
        fs::read_link(format!("/proc/{other}/root")).is_ok_and(|r| r.ends_with("container"))
    });
    let alive = |p: &i32| Path::new(&format!("/proc/{p}")).exists();
    assert!(pids.iter().all(alive), "{pids:?}");
    let st = ok(&ns.run(&["status", "-d", d(&root)]));
    assert_eq!(st.matches("sleep").count(), pids.len(), "{st}");
    let o = ns.run(&["off", "-d", d(&root), "--timeout", "5"]);
    assert!(ok(&o).contains("2 processes ended"), "{}", stdout(&o));
    wait_until("the processes ended", || !pids.iter().any(alive));
    assert!(alive(&other), "the container was ended");
    let _ = container.kill();
    let _ = container.wait();
    assert!(ns.mounts_under(&root).is_empty());
}

/// What root's run starts is the sandbox's wherever it goes, and `off`
/// ends it: a double fork away from the run; a mount namespace of its own
/// in which it unmounts the sandbox's /tmp and /dev and chroots deeper
/// (nothing there looks like the sandbox any more); a process that
/// entered by hand (`chroot DIR`, never through chroot-tool) too, as it
/// keeps the sandbox's root busy. The sandbox's cgroup and its record are
/// gone once it is off.
#[test]
fn off_ends_what_a_run_started_wherever_it_went() {
    let ns = Ns::new();
    let root = ns.busybox_root("sb");
    fs::create_dir_all(root.join("deeper/bin")).unwrap();
    install_exec(&root.join("bin/busybox"), &root.join("deeper/bin/busybox"));
    ok(&ns.run(&["on", "-d", d(&root)]));
    let line = "setsid sh -c 'echo $$ > /tmp/apart; exec sleep 1000' </dev/null >/dev/null 2>&1 & \
        setsid unshare -m sh -c 'echo $$ > /tmp/own; umount -l /tmp; umount -l /dev; \
        exec chroot /deeper /bin/busybox sleep 1001' </dev/null >/dev/null 2>&1 &";
    ok(&ns.run_in(&root, &["--", "sh", "-c", line]));
    let apart = pid_in(&ns, &root.join("tmp/apart"));
    let own = pid_in(&ns, &root.join("tmp/own"));
    let mut by_hand_child = ns
        .cmd("chroot")
        .arg(&root)
        .args(["/bin/sleep", "1002"])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let by_hand = by_hand_child.id() as i32;
    let alive =
        |p: &i32| fs::read_to_string(format!("/proc/{p}/stat")).is_ok_and(|s| !s.contains(") Z "));
    wait_until("the deeper chroot", || {
        fs::read_link(format!("/proc/{own}/root")).is_ok_and(|r| r.ends_with("deeper"))
    });
    wait_until("the chroot by hand", || {
        fs::read_link(format!("/proc/{by_hand}/root")).is_ok_and(|r| r == root)
    });
    let pids = [apart, own, by_hand];
    assert!(pids.iter().all(alive), "{pids:?}");
    assert!(!tracked_cgroups(&ns.run_dir).is_empty(), "no cgroup made");
    let st = ok(&ns.run(&["status", "-d", d(&root)]));
    for p in pids {
        assert!(st.contains(&format!(" {p} ")), "{p}: {st}");
    }
    let o = ns.run(&["off", "-d", d(&root), "--timeout", "5"]);
    assert!(ok(&o).contains("3 processes ended"), "{}", stdout(&o));
    wait_until("the processes ended", || !pids.iter().any(alive));
    wait_within(&mut by_hand_child, DEADLINE);
    assert!(ns.mounts_under(&root).is_empty());
    assert!(tracked_cgroups(&ns.run_dir).is_empty(), "a cgroup is left");
    let records = fs::read_dir(ns.run_dir.join("cgroups")).unwrap().count();
    assert_eq!(records, 0, "a record is left");
}

/// A process is where any of its threads is: one started by hand on the
/// host whose main thread stays at the host's root while a thread of its
/// own (made without sharing its root) chroots into DIR is the sandbox's,
/// and `off` ends it (it was taken for a host process, and ran on with
/// DIR's self-bind detached under it).
#[test]
fn off_ends_a_process_one_of_whose_threads_is_inside() {
    let ns = Ns::new();
    let root = ns.busybox_root("sb");
    let prog = ns.tmp.path().join("split");
    build_c(
        "#define _GNU_SOURCE\n#include <sched.h>\n#include <stdlib.h>\n#include <unistd.h>\n\
         static int inside(void *dir) { if (chroot(dir) == 0) chdir(\"/\"); for (;;) pause(); }\n\
         int main(int c, char **v) { char *stack = malloc(65536);\n\
         if (clone(inside, stack + 65536, CLONE_VM | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM, v[1]) < 0) return 1;\n\
         for (;;) pause(); }\n",
        &prog,
    );
    ok(&ns.run(&["on", "-d", d(&root)]));
    let mut child = Reap(
        ns.cmd(prog.to_str().unwrap())
            .arg(&root)
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pid = child.0.id();
    let thread_inside = || {
        fs::read_dir(format!("/proc/{pid}/task")).is_ok_and(|t| {
            t.flatten()
                .any(|e| fs::read_link(e.path().join("root")).is_ok_and(|r| r == root))
        })
    };
    wait_until("the thread in DIR", thread_inside);
    assert_eq!(
        fs::read_link(format!("/proc/{pid}/root")).unwrap(),
        Path::new("/")
    );
    let o = ns.run(&["off", "-d", d(&root), "--timeout", "5"]);
    assert!(ok(&o).contains("1 process ended"), "{}", stdout(&o));
    wait_within(&mut child.0, DEADLINE);
    assert!(ns.mounts_under(&root).is_empty());
}

/// A sandbox that is off, lying inside one that is on, has no processes:
/// the cgroup of the mount DIR lies on is the other's, which `status` of it
/// never lists (nor `off` of it ends).
#[test]
fn a_sandbox_inside_another_has_none_of_its_processes() {
    let ns = Ns::new();
    let outer = ns.busybox_root("outer");
    let inner = outer.join("srv/inner");
    make_busybox_root(&inner);
    ok(&ns.run(&["on", "-d", d(&outer)]));
    let line = "setsid sh -c 'echo $$ > /tmp/d; exec sleep 1000' </dev/null >/dev/null 2>&1 &";
    ok(&ns.run_in(&outer, &["--", "sh", "-c", line]));
    let pid = pid_in(&ns, &outer.join("tmp/d"));
    let st = ok(&ns.run(&["status", "-d", d(&inner)]));
    assert!(!st.contains("processes inside"), "{st}");
    let st = ok(&ns.run(&["status", "--json", "-d", d(&inner)]));
    let v: serde_json::Value = serde_json::from_str(&st).unwrap();
    assert_eq!(v["processes"].as_array().map(Vec::len), Some(0), "{st}");
    let o = ns.run(&["off", "-d", d(&inner)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        Path::new(&format!("/proc/{pid}")).exists(),
        "the outer run was ended"
    );
    let st = ok(&ns.run(&["status", "-d", d(&outer)]));
    assert!(st.contains(&format!(" {pid} ")), "{st}");
    ok(&ns.run(&["off", "-d", d(&outer)]));
}

/// A process's name is any bytes it gave itself: `status` writes one that
/// is not UTF-8 escaped, as it writes paths (`\xff`, a backslash as `\\`),
/// never an empty name.
#[test]
fn status_names_a_process_whose_name_is_not_utf8() {
    use std::os::unix::ffi::OsStrExt;
    let ns = Ns::new();
    let root = ns.busybox_root("sb");
    let name = std::ffi::OsStr::from_bytes(b"\xff\\x");
    fs::create_dir_all(root.join("opt/w")).unwrap();
    script(&root.join("opt/w").join(name), "#!/bin/sh\nsleep 1000\n");
    ok(&ns.run(&["on", "-d", d(&root)]));
    // The command line takes UTF-8 only: the shell inside names it.
    let mut c = ns.tool();
    c.args(["run", "-d", d(&root), "--", "sh", "-c", "exec /opt/w/*"]);
    let mut child = c.spawn().unwrap();
    wait_until("the script to start", || {
        let st = ok(&ns.run(&["status", "--json", "-d", d(&root)]));
        st.contains("\\\\xff\\\\\\\\x")
    });
    let st = ok(&ns.run(&["status", "--json", "-d", d(&root)]));
    let v: serde_json::Value = serde_json::from_str(&st).unwrap();
    assert!(
        v["processes"]
            .as_array()
            .is_some_and(|a| a.iter().any(|p| p["comm"] == "\\xff\\\\x")),
        "{st}"
    );
    ok(&ns.run(&["off", "-d", d(&root)]));
    let _ = child.wait();
}

/// `off` looks at every process unless `on` marked the sandbox tracked and
/// nothing was started untracked since: a sandbox turned on by an earlier
/// version (no mark) has its processes found as before, here one that
/// entered by hand in a mount namespace copied from ours after `on`. And a
/// run that could be neither tracked nor recorded as untracked is not
/// started.
#[test]
fn off_looks_at_every_process_unless_the_sandbox_is_marked_tracked() {
    let ns = Ns::new();
    let root = ns.busybox_root("sb");
    let marks = ns.run_dir.join("cgroups");
    ok(&ns.run(&["on", "-d", d(&root)]));
    let mark = fs::read_dir(&marks)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "tracking"))
        .expect("on marks the sandbox tracked");
    fs::remove_file(&mark).unwrap();
    let line = format!("exec unshare -m chroot {} /bin/sleep 1000", d(&root));
    let mut by_hand = ns
        .cmd("sh")
        .args(["-c", &line])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let pid = by_hand.id() as i32;
    wait_until("the chroot by hand", || {
        fs::read_link(format!("/proc/{pid}/root")).is_ok_and(|r| r == root)
    });
    let o = ns.run(&["off", "-d", d(&root)]);
    assert!(ok(&o).contains("1 process ended"), "{}", stdout(&o));
    wait_within(&mut by_hand, DEADLINE);
    // Neither the cgroup nor the mark can be recorded: the run is refused.
    ok(&ns.run(&["on", "-d", d(&root)]));
    let aside = ns.run_dir.join("cgroups.aside");
    fs::rename(&marks, &aside).unwrap();
    fs::write(&marks, "").unwrap();
    let o = ns.run_in(&root, &["--", "/bin/true"]);
    assert_eq!(code(&o), 125, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("the sandbox's cgroup"),
        "{}",
        stderr(&o)
    );
    fs::remove_file(&marks).unwrap();
    fs::rename(&aside, &marks).unwrap();
    ok(&ns.run(&["off", "-d", d(&root)]));
    assert!(ns.mounts_under(&root).is_empty());
}

/// In a cgroup namespace of its own, `/proc/self/cgroup` names the cgroup
/// chroot-tool is in from that namespace's root, which the hierarchy's
/// mount does not show as its root: no cgroup is made (it would land at the
/// hierarchy's root, out of the limits of the caller's), and `off` looks at
/// every process instead, still ending what the run started.
#[test]
fn a_run_in_a_cgroup_namespace_of_its_own_makes_no_cgroup() {
    let ns = Ns::new();
    let root = ns.busybox_root("sb");
    ok(&ns.run(&["on", "-d", d(&root)]));
    let line = "setsid sh -c 'echo $$ > /tmp/d; exec sleep 1000' </dev/null >/dev/null 2>&1 &";
    let o = output_within(
        ns.cmd("unshare")
            .args(["-C", BIN, "run", "-d", d(&root), "--", "sh", "-c", line])
            .stdin(Stdio::null()),
        DEADLINE,
    );
    ok(&o);
    let pid = pid_in(&ns, &root.join("tmp/d"));
    assert!(tracked_cgroups(&ns.run_dir).is_empty(), "a cgroup was made");
    let o = ns.run(&["off", "-d", d(&root)]);
    assert!(ok(&o).contains("1 process ended"), "{}", stdout(&o));
    wait_until("the process ended", || {
        fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| s.contains(") Z "))
    });
    assert!(ns.mounts_under(&root).is_empty());
}

#[test]
fn run_mounts_do_not_propagate_on_a_shared_host() {
    // Every mount shared, as on a systemd host, and a peer namespace made
    // from it: a -m mount, even on a host directory bound in, reaches neither.
    let ns = Ns::with_propagation("shared");
    let root = ns.busybox_root("sb");
    let h = ns.tmp.path().join("host");
    fs::create_dir_all(h.join("sub")).unwrap();
    fs::write(
        root.join("chroot.d/tool.conf"),
        format!("[bind]\ntgt:/mnt/host src:{} opt:rbind\n", d(&h)),
    )
    .unwrap();
    let mut peer = ns
        .cmd("unshare")
        .args(["-m", "--propagation", "unchanged", "sleep", "100000"])
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let peer_pid = peer.id();
    let ns_mnt = fs::read_link(format!("/proc/{}/ns/mnt", ns.pid())).unwrap();
    let end = Instant::now() + Duration::from_secs(5);
    while fs::read_link(format!("/proc/{peer_pid}/ns/mnt")).map_or(true, |m| m == ns_mnt)
        || fs::read_to_string(format!("/proc/{peer_pid}/comm")).unwrap_or_default() != "sleep\n"
    {
        assert!(Instant::now() < end, "peer namespace not made");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        ns.mountinfo().contains("shared:"),
        "the namespace is not shared"
    );
    let mut a = ns.tool();
    a.args([
        "run",
        "-d",
        d(&root),
        "-m",
        "ctmarker:/mnt/host/sub:tmpfs",
        "-m",
        "ctmarker2:/scratch:tmpfs",
        "--",
        "sh",
        "-c",
        "grep -c ctmarker /proc/self/mountinfo; touch /ready; \
         i=0; while [ ! -e /done ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done",
    ])
    .stdout(std::process::Stdio::piped());
    let a = a.spawn().unwrap();
    wait_for(&root.join("ready"));
    let peer_info = fs::read_to_string(format!("/proc/{peer_pid}/mountinfo")).unwrap();
    let host_info = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let seen = (
        ns.mountinfo().contains("ctmarker"),
        peer_info.contains("ctmarker"),
        host_info.contains("ctmarker"),
    );
    fs::write(root.join("done"), "").unwrap();
    let out = common::finish_within(a, DEADLINE);
    let _ = peer.kill();
    let _ = peer.wait();
    assert_eq!(ok(&out), "2\n");
    assert_eq!(seen, (false, false, false), "namespace, peer, host");
    assert!(!h.join("sub").read_dir().unwrap().any(|_| true));
    ok(&ns.run(&["off", "-d", d(&root)]));
}

#[test]
fn a_run_mount_source_entering_the_sandbox_stays_inside() {
    // DIR/escape -> / in the rootfs: -m DIR/escape/etc is the sandbox's
    // /etc, never the host's, as a [bind] source would be.
    let ns = Ns::new();
    let root = ns.busybox_root("sb");
    std::os::unix::fs::symlink("/", root.join("escape")).unwrap();
    fs::write(root.join("etc/marker"), "sandbox\n").unwrap();
    let src = format!("{}/escape/etc:/x:ro", d(&root));
    let o = ns.run_in(
        &root,
        &[
            "-m",
            &src,
            "--",
            "sh",
            "-c",
            "cat /x/marker; wc -l < /x/passwd",
        ],
    );
    assert_eq!(ok(&o), "sandbox\n1\n", "{}", stderr(&o));
    ok(&ns.run(&["off", "-d", d(&root)]));
}

/// Processes whose command line is exactly `argv`.
fn pids_running(argv: &[&str]) -> Vec<i32> {
    let want: Vec<u8> = argv
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            (std::fs::read(e.path().join("cmdline")).ok()? == want).then_some(pid)
        })
        .collect()
}

/// A busybox sandbox and a `-m` spec of a host directory onto its `/mnt`:
/// the two ways a run gets a mount namespace of its own are `--ephemeral`
/// and that.
fn own_mounts_setup() -> (Ns, std::path::PathBuf, String) {
    let ns = Ns::new();
    let root = ns.busybox_root("root");
    let src = ns.tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::create_dir_all(root.join("mnt")).unwrap();
    let m = format!("{}:/mnt", d(&src));
    (ns, root, m)
}

/// What a run with a mount namespace of its own (`--ephemeral`, `-m`)
/// leaves running there when its command ends (a daemon it started,
/// reparented away) ends with the run, and the namespace with its copies of
/// the sandbox's mounts with it: nothing of the run is left for `off` to
/// miss.
#[test]
fn a_run_with_its_own_mounts_leaves_nothing_running_when_it_ends() {
    let (ns, root, m) = own_mounts_setup();
    ok(&ns.run(&["on", "-d", d(&root)]));
    for (i, opts) in [vec!["--ephemeral"], vec!["-m", m.as_str()]]
        .into_iter()
        .enumerate()
    {
        let (left, ignoring) = (format!("{}", 4321 + 2 * i), format!("{}", 4322 + 2 * i));
        let line = format!(
            "(setsid sleep {left} </dev/null >/dev/null 2>&1 &); \
             (trap '' TERM; exec setsid sleep {ignoring} </dev/null >/dev/null 2>&1 &); \
             sleep 0.2"
        );
        let mut args = vec!["run", "-d", d(&root)];
        args.extend(opts.iter().copied());
        args.extend(["--", "sh", "-c", line.as_str()]);
        let out = ns.run(&args);
        assert_eq!(code(&out), 0, "{opts:?}: {}", stderr(&out));
        for (what, n) in [("left", &left), ("ignoring TERM", &ignoring)] {
            assert!(
                pids_running(&["sleep", n]).is_empty(),
                "{opts:?}: a process the run {what} outlived it"
            );
        }
    }
    ok(&ns.run(&["off", "-d", d(&root)]));
    assert!(ns.mounts_under(&root).is_empty());
}

/// The same when the command ends at once, before its supervisor has
/// looked at it: the run's namespace is known by the id the child told
/// before it exec'ed, not by `/proc/PID/ns/mnt` (gone with the command).
#[test]
fn a_quick_run_with_its_own_mounts_leaves_nothing_running() {
    let (ns, root, m) = own_mounts_setup();
    ok(&ns.run(&["on", "-d", d(&root)]));
    for (i, opts) in [vec!["--ephemeral"], vec!["-m", m.as_str()]]
        .into_iter()
        .enumerate()
    {
        for round in 0..8 {
            let n = format!("{}", 5501 + 100 * i + round);
            let line = format!("sleep {n} </dev/null >/dev/null 2>&1 & echo x");
            let mut args = vec!["run", "-d", d(&root)];
            args.extend(opts.iter().copied());
            args.extend(["--", "sh", "-c", line.as_str()]);
            ok(&ns.run(&args));
            assert!(
                pids_running(&["sleep", &n]).is_empty(),
                "{opts:?}, round {round}: a process the run left outlived it"
            );
        }
    }
    ok(&ns.run(&["off", "-d", d(&root)]));
}

/// A process of a run with a mount namespace of its own (`--ephemeral`,
/// `-m`) that leaves the run's process tree (a double fork reparents it to
/// init) is still the sandbox's: `status` lists it and `off` ends it, found
/// by the run's mount namespace, which its supervisor holds.
#[test]
fn a_double_forked_process_of_a_run_with_its_own_mounts_ends_with_off() {
    let (ns, root, m) = own_mounts_setup();
    for (i, opts) in [vec!["--ephemeral"], vec!["-m", m.as_str()]]
        .into_iter()
        .enumerate()
    {
        let (away, stay) = (format!("{}", 4301 + 2 * i), format!("{}", 4302 + 2 * i));
        // And one rooted in the run's /tmp (a tmpfs of the run's namespace,
        // no overlay): still the run's.
        let deep = format!("{}", 4311 + i);
        ok(&ns.run(&["on", "-d", d(&root)]));
        let line = format!(
            "cp /bin/busybox /tmp/busybox; (busybox chroot /tmp /busybox sleep {deep} </dev/null >/dev/null 2>&1 &); \
             (setsid sleep {away} </dev/null >/dev/null 2>&1 &); touch /dev/shm/started-{i}; sleep {stay}"
        );
        let mut args = vec!["run", "-d", d(&root)];
        args.extend(opts.iter().copied());
        args.extend(["--", "sh", "-c", line.as_str()]);
        let run = ns.tool().args(&args).stdin(Stdio::null()).spawn().unwrap();
        wait_until("the run to start its processes", || {
            // The sandbox's /dev/shm is a mount of the test's namespace.
            ns.sh(&format!("test -e {}/dev/shm/started-{i}", d(&root)))
                .status
                .success()
                && pids_running(&["sleep", &away]).len() == 1
                && pids_running(&["/busybox", "sleep", &deep]).len() == 1
        });
        let status = ok(&ns.run(&["status", "-d", d(&root), "--json"]));
        let away_pid = pids_running(&["sleep", &away])[0];
        assert!(
            status.contains(&format!("\"pid\": {away_pid}")),
            "{opts:?}: status does not list the double-forked process: {status}"
        );
        ok(&ns.run(&["off", "-d", d(&root)]));
        let _ = finish_within(run, DEADLINE);
        assert!(
            pids_running(&["sleep", &away]).is_empty(),
            "{opts:?}: the double-forked process outlived off"
        );
        assert!(
            pids_running(&["/busybox", "sleep", &deep]).is_empty(),
            "{opts:?}: the process rooted in the run's /tmp outlived off"
        );
        assert!(ns.mounts_under(&root).is_empty(), "{opts:?}");
    }
}

/// `run`, plain, with `--ephemeral` or on a terminal, never reads the
/// whole mount table: the sandbox's part is asked of the kernel mount by
/// mount (`statmount`, `listmount`), so that its cost and memory do not
/// grow with the host's mounts (the bench's 1500). 200 unrelated mounts
/// here, none of which the run may open its way through.
#[test]
fn run_never_reads_the_whole_mount_table() {
    let ns = Ns::new();
    let root = ns.busybox_root("sb");
    let many = ns.tmp.path().join("many");
    fs::create_dir_all(&many).unwrap();
    ok(&ns.sh(&format!(
        "for i in $(seq 200); do mkdir {m}/$i && mount -t tmpfs -o size=4k m$i {m}/$i || exit 1; done",
        m = d(&many)
    )));
    ok(&ns.run(&["on", "-d", d(&root)]));
    let log = ns.tmp.path().join("run.strace");
    // The last on a terminal (`script`), where `run` gives the command a
    // pty of the sandbox's devpts.
    let cases = [("", false), ("--ephemeral", false), ("", true)];
    for (opt, terminal) in cases {
        let line = format!(
            "strace -f -qq -e trace=open,openat,openat2 -o {} {BIN} run -d {} {opt} -- /bin/true",
            d(&log),
            d(&root)
        );
        let o = if terminal {
            output_within(
                ns.cmd("script").args(["-qec", &line, "/dev/null"]),
                DEADLINE,
            )
        } else {
            ns.sh(&line)
        };
        ok(&o);
        let opened = fs::read_to_string(&log).unwrap();
        assert!(
            opened.contains("openat"),
            "{opt} {terminal}: nothing traced"
        );
        if terminal {
            assert!(opened.contains("\"ptmx\""), "no pty was opened:\n{opened}");
        }
        assert!(
            !opened.contains("mountinfo"),
            "{opt} {terminal}: the mount table was read:\n{opened}"
        );
    }
    ok(&ns.run(&["off", "-d", d(&root)]));
    ok(&ns.sh(&format!("umount {}/*", d(&many))));
}
