//! Who, where and with what environment a command runs inside: `-u`, `-w`,
//! `--here`, `-e`, the clean environment, `shell -u`, and `[run]` of
//! tool.conf; on a busybox rootfs with a user `dev` added to its own
//! /etc/passwd and /etc/group, and on the Debian rootfs for one real case.
mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use common::{code, d, ok, output_within, stderr, stdout, Ns, DEADLINE};

/// A busybox rootfs with `dev` (1000:1000, in wheel and audio, home
/// /home/dev owned by it) and `/work` writable by everyone.
fn root_with_dev(ns: &Ns) -> PathBuf {
    let root = ns.busybox_root("sb");
    fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\n\
         dev:x:1000:1000:Dev:/home/dev:/bin/ash\n\
         other:x:1001:1001::/home/other:/bin/sh\n",
    )
    .unwrap();
    fs::write(
        root.join("etc/group"),
        "root:x:0:\nwheel:x:10:other,dev\naudio:x:29:dev\ndev:x:1000:\nstaff:x:50:\n",
    )
    .unwrap();
    fs::create_dir_all(root.join("home/dev")).unwrap();
    std::os::unix::fs::chown(root.join("home/dev"), Some(1000), Some(1000)).unwrap();
    fs::create_dir_all(root.join("work")).unwrap();
    fs::set_permissions(
        root.join("work"),
        std::os::unix::fs::PermissionsExt::from_mode(0o1777),
    )
    .unwrap();
    root
}

fn owner(p: &Path) -> (u32, u32) {
    let m = fs::metadata(p).unwrap();
    (m.uid(), m.gid())
}

#[test]
fn user_runs_with_its_ids_groups_and_login_variables() {
    let ns = Ns::new();
    let root = root_with_dev(&ns);
    ok(&ns.run_in(&root, &["-u", "dev", "--", "/bin/touch", "/work/by-dev"]));
    assert_eq!(owner(&root.join("work/by-dev")), (1000, 1000));
    // Supplementary groups from the sandbox's /etc/group (the kernel keeps them sorted).
    assert_eq!(
        ok(&ns.run_in(&root, &["-u", "dev", "--", "id"])),
        "uid=1000(dev) gid=1000(dev) groups=10(wheel),29(audio),1000(dev)\n"
    );
    // USER:GROUP by names and by numbers.
    ok(&ns.run_in(&root, &["-u", "dev:staff", "--", "touch", "/work/g"]));
    assert_eq!(owner(&root.join("work/g")), (1000, 50));
    assert_eq!(
        ok(&ns.run_in(&root, &["-u", "1001:29", "--", "id", "-G"])),
        "29 10\n"
    );
    // A number with no entry is taken as it is.
    ok(&ns.run_in(&root, &["-u", "4242", "--", "touch", "/work/n"]));
    assert_eq!(owner(&root.join("work/n")), (4242, 4242));
    // HOME, USER, LOGNAME and SHELL are the user's.
    let env = ok(&ns.run_in(&root, &["-u", "dev", "--", "env"]));
    for v in [
        "HOME=/home/dev",
        "USER=dev",
        "LOGNAME=dev",
        "SHELL=/bin/ash",
    ] {
        assert!(env.lines().any(|l| l == v), "{v} not in:\n{env}");
    }
    // A shell line runs as the user too.
    assert_eq!(
        ok(&ns.run_in(&root, &["-u", "dev", "id -un; echo $HOME"])),
        "dev\n/home/dev\n"
    );
    // Without -u: root, as before.
    assert_eq!(ok(&ns.run_in(&root, &["--", "id", "-u"])), "0\n");
    ok(&ns.run(&["off", "-d", d(&root)]));
}

#[test]
fn unknown_user_or_group_is_an_error_naming_it() {
    let ns = Ns::new();
    let root = root_with_dev(&ns);
    // `daemon` is in the host's /etc/passwd, not in the sandbox's: never the host's.
    assert!(fs::read_to_string("/etc/passwd")
        .unwrap()
        .contains("\ndaemon:"));
    for (spec, name) in [
        ("nosuchuser", "nosuchuser"),
        ("daemon", "daemon"),
        ("dev:nosuchgroup", "nosuchgroup"),
    ] {
        let o = ns.run_in(&root, &["-u", spec, "--", "touch", "/work/x"]);
        assert_eq!(code(&o), 125, "{spec}: {}", stderr(&o));
        assert!(stderr(&o).contains(name), "{spec}: {}", stderr(&o));
        assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
        assert!(!root.join("work/x").exists());
    }
    let o = ns.run_in(&root, &["-u", "a:b:c", "--", "true"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
}

#[test]
fn workdir_inside_and_its_errors() {
    let ns = Ns::new();
    let root = root_with_dev(&ns);
    fs::create_dir_all(root.join("srv/app")).unwrap();
    assert_eq!(
        ok(&ns.run_in(&root, &["-w", "/srv/app", "--", "pwd"])),
        "/srv/app\n"
    );
    // It wins over the directory the dispatch rules give (/ here).
    assert_eq!(ok(&ns.run_in(&root, &["-w", "/work", "pwd"])), "/work\n");
    let o = ns.run_in(&root, &["-w", "/no/such/dir", "--", "pwd"]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("/no/such/dir"), "{}", stderr(&o));
    let o = ns.run_in(&root, &["-w", "relative", "--", "pwd"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    // Entered as the user: a directory the user may not enter is refused.
    fs::create_dir_all(root.join("secret")).unwrap();
    fs::set_permissions(
        root.join("secret"),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let o = ns.run_in(&root, &["-u", "dev", "-w", "/secret", "--", "pwd"]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("/secret"), "{}", stderr(&o));
}

/// chroot-tool ARGS run from the host directory `cwd` (in the test's namespace).
fn tool_in(ns: &Ns, cwd: &Path, args: &str) -> std::process::Output {
    let line = format!("cd '{}' && exec {} {args}", d(cwd), common::BIN);
    output_within(ns.cmd("sh").args(["-c", &line]), DEADLINE)
}

#[test]
fn here_maps_the_current_directory_through_the_binds() {
    let ns = Ns::new();
    let root = root_with_dev(&ns);
    let project = ns.tmp.path().join("project");
    fs::create_dir_all(project.join("src/deep")).unwrap();
    fs::create_dir_all(project.join("vendor")).unwrap();
    let elsewhere = ns.tmp.path().join("elsewhere");
    fs::create_dir_all(&elsewhere).unwrap();
    fs::write(
        root.join("chroot.d/tool.conf"),
        format!(
            "[bind]\nsrc:{p} tgt:/project\nsrc:{p}/vendor tgt:/opt/vendor fs:bind-ro\n",
            p = d(&project)
        ),
    )
    .unwrap();
    let r = d(&root);
    let pwd = |cwd: &Path| tool_in(&ns, cwd, &format!("run -d {r} --here -- pwd"));
    assert_eq!(ok(&pwd(&project)), "/project\n");
    assert_eq!(ok(&pwd(&project.join("src/deep"))), "/project/src/deep\n");
    // The longest source wins.
    assert_eq!(ok(&pwd(&project.join("vendor"))), "/opt/vendor\n");
    // Inside the sandbox itself: the same place inside.
    assert_eq!(ok(&pwd(&root.join("work"))), "/work\n");
    // Under no bind: one clear line, nothing run.
    let o = pwd(&elsewhere);
    assert_eq!(code(&o), 125, "{}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("--here")
            && err.contains("elsewhere")
            && err.contains("[bind]")
            && err.contains("chroot.d/tool.conf"),
        "{err}"
    );
    // -w and --here together are a usage error.
    let o = tool_in(&ns, &project, &format!("run -d {r} --here -w / -- pwd"));
    assert_eq!(code(&o), 2);
    ok(&ns.run(&["off", "-d", r]));
}

#[test]
fn environment_is_clean_and_e_sets_variables() {
    let ns = Ns::new();
    let root = root_with_dev(&ns);
    let o = output_within(
        ns.tool()
            .env_clear()
            // Still this test's own records and history, never the machine's.
            .env("CHROOT_TOOL_RUN_DIR", &ns.run_dir)
            .env(chroot_tool::audit::STATE_ENV, ns.state_dir())
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .args([
                "run",
                "-d",
                d(&root),
                "-e",
                "GREETING=hello world",
                "-e",
                "X=a=b",
            ])
            .args(["-e", "TZ=UTC0", "--", "env"])
            .env("FOO", "1")
            .env("LD_PRELOAD", "/nope.so")
            .env("TERM", "xterm-ct")
            .env("LANG", "C.UTF-8")
            .env("LC_TIME", "C")
            .env("TZ", "Europe/Paris"),
        DEADLINE,
    );
    let out = ok(&o);
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "GREETING=hello world",
            "HOME=/root",
            "LANG=C.UTF-8",
            "LC_TIME=C",
            "LOGNAME=root",
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "SHELL=/bin/sh",
            "TERM=xterm-ct",
            "TZ=UTC0",
            "USER=root",
            "X=a=b",
        ]
    );
    // -e wins over what the tool sets.
    assert_eq!(
        ok(&ns.run_in(
            &root,
            &[
                "-u",
                "dev",
                "-e",
                "HOME=/work",
                "-e",
                "PATH=/bin",
                "--",
                "sh",
                "-c",
                "echo $HOME $PATH"
            ]
        )),
        "/work /bin\n"
    );
    for bad in ["NOEQUALS", "=value"] {
        let o = ns.run_in(&root, &["-e", bad, "--", "true"]);
        assert_eq!(code(&o), 2, "{bad}: {}", stderr(&o));
        assert!(stderr(&o).contains(bad), "{}", stderr(&o));
    }
}

#[test]
fn shell_as_a_user_is_its_login_shell_in_its_home() {
    let ns = Ns::new();
    let root = root_with_dev(&ns);
    let r = d(&root);
    let shell = |args: &str| {
        let line = format!(
            "echo 'echo $0; pwd; id -u; echo $HOME $SHELL' | {} shell -d {r} {args}",
            common::BIN
        );
        output_within(ns.cmd("sh").args(["-c", &line]), DEADLINE)
    };
    assert_eq!(
        ok(&shell("-u dev")),
        "-ash\n/home/dev\n1000\n/home/dev /bin/ash\n"
    );
    assert_eq!(
        ok(&shell("-u dev -w /work")),
        "-ash\n/work\n1000\n/home/dev /bin/ash\n"
    );
    // No home in the sandbox: /. A shell not in the sandbox: /bin/sh, with a warning.
    let o = shell("-u other");
    assert_eq!(ok(&o), "-sh\n/\n1001\n/home/other /bin/sh\n");
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
    fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\ndev:x:1000:1000:Dev:/home/dev:/bin/zsh\n",
    )
    .unwrap();
    let o = shell("-u dev");
    assert_eq!(ok(&o), "-sh\n/home/dev\n1000\n/home/dev /bin/sh\n");
    assert!(stderr(&o).contains("/bin/zsh"), "{}", stderr(&o));
    // root's, as before.
    assert_eq!(ok(&shell("")), "-sh\n/root\n0\n/root /bin/sh\n");
    ok(&ns.run(&["off", "-d", r]));
}

#[test]
fn run_section_gives_defaults_and_the_command_line_wins() {
    let ns = Ns::new();
    let root = root_with_dev(&ns);
    let conf = root.join("chroot.d/tool.conf");
    fs::write(&conf, "[run]\nuser:dev workdir:/work\n").unwrap();
    let o = ns.run_in(&root, &["id -u; pwd; echo $USER"]);
    assert_eq!(ok(&o), "1000\n/work\ndev\n");
    assert!(
        stderr(&o).is_empty(),
        "applied keys are not warned about: {}",
        stderr(&o)
    );
    assert_eq!(
        ok(&ns.run_in(&root, &["-u", "root", "-w", "/", "id -u; pwd; echo $USER"])),
        "0\n/\nroot\n"
    );
    assert_eq!(
        ok(&ns.run_in(&root, &["-u", "1001", "--", "sh", "-c", "id -u; pwd"])),
        "1001\n/work\n"
    );
    let o = ns.run(&["shell", "-d", d(&root)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // Keys not applied by this version are named in a warning.
    fs::write(&conf, "[run]\nuser:dev\nhostname:box\n").unwrap();
    let o = ns.run_in(&root, &["--", "id", "-u"]);
    assert_eq!(ok(&o), "1000\n");
    assert!(
        stderr(&o).contains("tool.conf:3") && stderr(&o).contains("\"hostname\""),
        "{}",
        stderr(&o)
    );
    // An unknown user of [run] is an error naming the file, the line and the user.
    fs::write(&conf, "[run]\n\nuser:ghost\n").unwrap();
    let o = ns.run_in(&root, &["--", "true"]);
    assert_eq!(code(&o), 125);
    assert!(
        stderr(&o).contains("tool.conf:3") && stderr(&o).contains("ghost"),
        "{}",
        stderr(&o)
    );
    // Malformed: an error naming the file and the line; nothing runs.
    for bad in ["workdir:relative", "user:a:b:c", "user:\"\""] {
        fs::write(&conf, format!("[run]\n{bad}\n")).unwrap();
        let o = ns.run_in(&root, &["--", "touch", "/work/ran"]);
        assert_eq!(code(&o), 125, "{bad}: {}", stderr(&o));
        assert!(stderr(&o).contains("tool.conf:2"), "{bad}: {}", stderr(&o));
        assert!(!root.join("work/ran").exists());
    }
    ok(&ns.run(&["off", "-d", d(&root)]));
}

#[test]
fn off_runs_stop_as_root_with_the_clean_environment() {
    let ns = Ns::new();
    let root = root_with_dev(&ns);
    fs::write(root.join("chroot.d/tool.conf"), "[run]\nuser:dev\n").unwrap();
    common::script(
        &root.join("chroot.d/stop"),
        "#!/bin/sh\n{ id -u; env | sort; } > /chroot.d/stop-saw\n",
    );
    ok(&ns.run(&["on", "-d", d(&root)]));
    ok(&output_within(
        ns.tool().args(["off", "-d", d(&root)]).env("FOO", "1"),
        DEADLINE,
    ));
    let saw = fs::read_to_string(root.join("chroot.d/stop-saw")).unwrap();
    assert!(saw.starts_with("0\n"), "{saw}");
    assert!(!saw.contains("FOO="), "{saw}");
    assert!(saw.contains("PATH=/usr/local/sbin:"), "{saw}");
}

#[test]
fn debian_user_with_groups_and_login_shell() {
    let ns = Ns::new();
    let root = ns.debian_root("deb");
    let r = d(&root);
    ok(&ns.run(&[
        "run",
        "-d",
        r,
        "--",
        "useradd",
        "-m",
        "-s",
        "/bin/bash",
        "-G",
        "audio,video",
        "dev",
    ]));
    let out = ok(&ns.run(&[
        "run",
        "-d",
        r,
        "-u",
        "dev",
        "--",
        "sh",
        "-c",
        "id -un; id -Gn; cd && touch made && stat -c %U:%G made",
    ]));
    assert_eq!(out, "dev\ndev audio video\ndev:dev\n");
    let uid: u32 = ok(&ns.run(&["run", "-d", r, "--", "id", "-u", "dev"]))
        .trim()
        .parse()
        .unwrap();
    assert_eq!(owner(&root.join("home/dev/made")).0, uid);
    let line = format!(
        "echo 'echo $0 $PWD $HOME $SHELL; id -un' | {} shell -d {r} -u dev",
        common::BIN
    );
    let o = output_within(ns.cmd("sh").args(["-c", &line]), DEADLINE);
    assert_eq!(ok(&o), "-bash /home/dev /home/dev /bin/bash\ndev\n");
    let o = ns.run(&["run", "-d", r, "-u", "nobody-here", "--", "true"]);
    assert_eq!(code(&o), 125);
    assert!(
        stdout(&o).is_empty() && stderr(&o).contains("nobody-here"),
        "{}",
        stderr(&o)
    );
    ok(&ns.run(&["off", "-d", r]));
}
