//! `chroot-tool create`, for real (as root, each test in its own mount
//! namespace): one real create shared with the other test files, creates
//! that fail fast (bad mirror, unknown suite), one interrupted by SIGINT,
//! the directory rules; and the fd-3 progress parser on recorded output.
mod common;

use std::fs;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use chroot_tool::create::progress::{parse, Event, Level};
use common::*;

const BAD_MIRROR: &str = "http://127.0.0.1:9/debian";

fn fixture(name: &str) -> String {
    fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/debootstrap")
            .join(name),
    )
    .unwrap()
}

/// Processes anywhere whose command line or root mentions `dir`.
fn processes_about(dir: &Path) -> Vec<String> {
    let needle = dir.to_str().unwrap();
    let mut out = vec![];
    for e in fs::read_dir("/proc").unwrap().flatten() {
        if e.file_name().to_string_lossy().parse::<u32>().is_err() {
            continue;
        }
        let cmdline = fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let rooted = fs::read_link(e.path().join("root")).is_ok_and(|r| r.starts_with(dir));
        if cmdline.contains(needle) || rooted {
            out.push(format!("{}: {cmdline}", e.file_name().to_string_lossy()));
        }
    }
    out
}

fn own_mounts_under(dir: &Path) -> Vec<String> {
    let d = dir.to_str().unwrap();
    String::from_utf8_lossy(&fs::read("/proc/self/mountinfo").unwrap())
        .lines()
        .map(|l| unescape(l.split(' ').nth(4).unwrap()))
        .filter(|m| m == d || m.starts_with(&format!("{d}/")))
        .collect()
}

// (1) The real create, made once by the harness with `create -q -d DIR`.
#[test]
fn real_create_makes_a_ready_sandbox() {
    let root = debian_rootfs();
    let chroot_d = root.join("chroot.d");
    assert!(chroot_d.join("create.log").is_file());
    let log = fs::read_to_string(chroot_d.join("create.log")).unwrap();
    assert!(log.contains("P: Downloading packages"), "{log}");
    assert!(log.contains("Base system installed successfully"), "{log}");

    let rec = chroot_tool::create::load(root).expect("chroot.d/create.toml");
    assert_eq!(rec.suite, "stable");
    assert_eq!(rec.variant, "minbase");
    assert_eq!(rec.mirror, "http://deb.debian.org/debian");
    assert_eq!(rec.components, vec!["main".to_string()]);
    assert!(!rec.arch.is_empty());
    assert!(
        rec.codename.as_deref().is_some_and(|c| !c.is_empty()),
        "{rec:?}"
    );
    assert_eq!(rec.tool_version, env!("CARGO_PKG_VERSION"));
    assert!(
        rec.date.ends_with('Z') && rec.date.len() == 20,
        "{}",
        rec.date
    );

    let name = root.file_name().unwrap().to_str().unwrap().to_lowercase();
    assert_eq!(
        fs::read_to_string(root.join("etc/hostname")).unwrap(),
        format!("{name}\n")
    );
    let hosts = fs::read_to_string(root.join("etc/hosts")).unwrap();
    assert!(hosts.contains("127.0.0.1\tlocalhost\n"), "{hosts}");
    assert!(hosts.contains(&format!("127.0.1.1\t{name}\n")), "{hosts}");
    assert!(hosts.contains("::1\tlocalhost"), "{hosts}");
    assert_eq!(
        fs::read_to_string(root.join("etc/default/locale")).unwrap(),
        "LANG=C.UTF-8\n"
    );
    assert_eq!(
        fs::read_to_string(chroot_d.join("tool.conf")).unwrap(),
        chroot_tool::create::TOOL_CONF
    );
    // The host's zone as create finds it; every case is checked, none skipped.
    match chroot_tool::create::setup::host_timezone() {
        Some(zone) => {
            assert_eq!(
                fs::read_to_string(root.join("etc/timezone")).unwrap(),
                format!("{zone}\n")
            );
            let link = fs::read_link(root.join("etc/localtime"));
            if root.join("usr/share/zoneinfo").join(&zone).exists() {
                assert_eq!(
                    link.unwrap(),
                    Path::new("../usr/share/zoneinfo").join(&zone)
                );
            } else {
                assert!(
                    link.map_or(true, |l| !l.to_string_lossy().contains(zone.as_str())),
                    "localtime names a zone the rootfs lacks"
                );
            }
        }
        None => {
            let log = fs::read_to_string(chroot_d.join("create.log")).unwrap();
            assert!(log.contains("time zone is unknown"), "{log}");
        }
    }
    assert!(
        !root.join("debootstrap").exists(),
        "debootstrap's work dir is left"
    );
    assert!(own_mounts_under(root).is_empty());

    let ns = Ns::new();
    assert!(ns.mounts_under(root).is_empty());
    let out = common::output_within(
        ns.cmd("chroot").arg(root).arg("/bin/true"),
        common::DEADLINE,
    );
    assert!(
        out.status.success(),
        "chroot DIR /bin/true: {}",
        stderr(&out)
    );
    let out = common::output_within(
        ns.cmd("chroot").arg(root).args([
            "/bin/sh",
            "-c",
            ". /etc/default/locale; LANG=$LANG locale 2>&1 >/dev/null; hostname",
        ]),
        common::DEADLINE,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        !stdout(&out).contains("Cannot set"),
        "C.UTF-8 unusable: {}",
        stdout(&out)
    );
}

// (2) A mirror that cannot be reached: exit 1, the log named, nothing mounted.
#[test]
fn bad_mirror_fails_and_names_the_log() {
    let ns = Ns::new();
    let dir = ns.tmp.path().join("bad-mirror");
    let out = ns.run(&[
        "create",
        "-q",
        "--mirror",
        BAD_MIRROR,
        "-d",
        dir.to_str().unwrap(),
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let log = dir.join("chroot.d/create.log");
    assert!(err.contains(log.to_str().unwrap()), "{err}");
    assert!(err.contains("could not be reached"), "{err}");
    assert!(err.contains("--- last lines of"), "{err}");
    assert_eq!(
        err.lines()
            .filter(|l| l.starts_with("chroot-tool: "))
            .count(),
        1,
        "{err}"
    );
    assert!(log.is_file());
    assert!(!dir.join("chroot.d/create.toml").exists());
    assert!(ns.mounts_under(&dir).is_empty());
}

// (3) A suite the mirror does not have.
#[test]
fn unknown_suite_is_named_as_such() {
    let ns = Ns::new();
    let dir = ns.tmp.path().join("bad-suite");
    let out = ns.run(&[
        "create",
        "-q",
        "--suite",
        "nosuchsuite",
        "-d",
        dir.to_str().unwrap(),
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("suite 'nosuchsuite' is unknown to the mirror http://deb.debian.org/debian"),
        "{err}"
    );
    assert!(
        err.contains(dir.join("chroot.d/create.log").to_str().unwrap()),
        "{err}"
    );
    assert!(ns.mounts_under(&dir).is_empty());
}

// (4) SIGINT while debootstrap has proc mounted inside the target.
#[test]
fn sigint_ends_debootstrap_and_leaves_no_mount() {
    let ns = Ns::new();
    let dir = ns.tmp.path().join("interrupted");
    let errfile = ns.tmp.path().join("interrupted.stderr");
    let mut child = ns
        .tool()
        .args(["create", "-d", dir.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(fs::File::create(&errfile).unwrap())
        .spawn()
        .unwrap();
    // nsenter execs chroot-tool in place: the child's pid is chroot-tool's.
    let start = Instant::now();
    let mut mounted = false;
    while start.elapsed() < Duration::from_secs(180) {
        if !ns.mounts_under(&dir).is_empty() {
            mounted = true;
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "create ended before it was interrupted"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        mounted,
        "debootstrap never mounted anything below {}",
        dir.display()
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(
            start.elapsed() < Duration::from_secs(240),
            "create did not end after SIGINT"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let err = fs::read_to_string(&errfile).unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "create interrupted; nothing is mounted below {}; see {}",
            dir.display(),
            dir.join("chroot.d/create.log").display()
        )),
        "{err}"
    );
    assert!(
        ns.mounts_under(&dir).is_empty(),
        "{:?}",
        ns.mounts_under(&dir)
    );
    assert!(
        processes_about(&dir).is_empty(),
        "{:?}",
        processes_about(&dir)
    );
    assert!(!dir.join("chroot.d/create.toml").exists());
}

// (5) A non-empty DIR is refused and left as it was; `/` is refused.
#[test]
fn non_empty_dir_is_refused() {
    let ns = Ns::new();
    let dir = ns.tmp.path().join("full");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("precious"), "keep me").unwrap();
    let out = ns.run(&[
        "create",
        "-q",
        "--mirror",
        BAD_MIRROR,
        "-d",
        dir.to_str().unwrap(),
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("is not empty"), "{err}");
    assert_eq!(fs::read_to_string(dir.join("precious")).unwrap(), "keep me");
    assert!(!dir.join("chroot.d").exists());

    let out = ns.run(&["create", "-q", "--mirror", BAD_MIRROR, "-d", "/"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("refusing to create a sandbox in /"),
        "{}",
        stderr(&out)
    );

    let out = ns.run(&["create", "-q"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

// (5) A previous failed create of ours is unmounted and deleted first,
// without following its symlinks out of DIR.
#[test]
fn previous_failed_create_is_cleaned() {
    let ns = Ns::new();
    let dir = ns.tmp.path().join("failed-before");
    let outside = ns.tmp.path().join("outside");
    fs::create_dir_all(dir.join("chroot.d")).unwrap();
    fs::create_dir_all(dir.join("proc")).unwrap();
    fs::create_dir_all(dir.join("var/lib")).unwrap();
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("file"), "outside").unwrap();
    fs::write(dir.join("chroot.d/create.log"), "old log\n").unwrap();
    fs::write(dir.join("var/lib/junk"), "junk").unwrap();
    std::os::unix::fs::symlink(&outside, dir.join("var/link")).unwrap();
    std::os::unix::fs::symlink(outside.join("file"), dir.join("filelink")).unwrap();
    let m = ns.sh(&format!(
        "mount -t tmpfs none {}/proc && touch {}/proc/in-tmpfs",
        dir.display(),
        dir.display()
    ));
    assert!(m.status.success(), "{}", stderr(&m));
    assert_eq!(ns.mounts_under(&dir).len(), 1);

    let out = ns.run(&[
        "create",
        "--mirror",
        BAD_MIRROR,
        "-d",
        dir.to_str().unwrap(),
    ]);
    let err = stderr(&out);
    // It cleaned, then failed on the mirror (fast): a fresh log, no old files.
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("cleaning up a previous failed create"),
        "{err}"
    );
    assert!(err.contains("could not be reached"), "{err}");
    assert!(ns.mounts_under(&dir).is_empty());
    assert!(!dir.join("var/lib/junk").exists());
    assert!(fs::symlink_metadata(dir.join("var/link")).is_err());
    assert!(fs::symlink_metadata(dir.join("filelink")).is_err());
    assert!(!fs::read_to_string(dir.join("chroot.d/create.log"))
        .unwrap()
        .contains("old log"));
    assert_eq!(fs::read_to_string(outside.join("file")).unwrap(), "outside");

    // A directory with a finished create (create.toml) is never cleaned.
    let done = ns.tmp.path().join("done");
    fs::create_dir_all(done.join("chroot.d")).unwrap();
    fs::write(done.join("chroot.d/create.log"), "log\n").unwrap();
    fs::write(done.join("chroot.d/create.toml"), "suite = \"stable\"\n").unwrap();
    let out = ns.run(&[
        "create",
        "-q",
        "--mirror",
        BAD_MIRROR,
        "-d",
        done.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("is not empty"), "{}", stderr(&out));
    assert!(done.join("chroot.d/create.toml").exists());
}

// (6) The progress parser on recorded fd-3 output.
#[test]
fn parser_on_a_recorded_minbase_create() {
    let events = parse(&fixture("trixie-minbase.fd3"));
    let mut phases: Vec<&str> = vec![];
    for e in &events {
        match e {
            Event::Phase { name, .. } => {
                // (CONFREQ overshoots: its last count is END + 1; the bar clamps.)
                if phases.last() != Some(&name.as_str()) {
                    phases.push(name);
                }
            }
            Event::Position { now, end } => assert!(now <= end, "{e:?}"),
            Event::Text(t) => panic!("unparsed fd-3 line {t:?}"),
            Event::Message { level, .. } => assert_eq!(*level, Level::Info, "{e:?}"),
        }
    }
    assert_eq!(
        phases,
        [
            "DOWNREL",
            "DOWNRELSIG",
            "DOWNPKGS",
            "SIZEDEBS",
            "DOWNDEBS",
            "EXTRACTPKGS",
            "INSTCORE",
            "UNPACKREQ",
            "CONFREQ",
            "CONFBASE"
        ]
    );
    assert!(events.iter().any(|e| matches!(e,
        Event::Phase { name, text, .. } if name == "DOWNDEBS" && text == "Downloading packages")));
    assert!(events.iter().any(|e| matches!(e,
        Event::Message { name, text, .. } if name == "RETRIEVING" && text == "Retrieving InRelease")));
    assert!(
        events
            .iter()
            .filter(|e| matches!(e, Event::Position { .. }))
            .count()
            > 100
    );
    assert!(matches!(events.last(), Some(Event::Message { name, .. }) if name == "BASESUCCESS"));
}

#[test]
fn parser_on_recorded_failures() {
    let last_error = |text: &str| {
        parse(text).into_iter().rev().find_map(|e| match e {
            Event::Message {
                level: Level::Error,
                name,
                args,
                text,
            } => Some((name, args, text)),
            _ => None,
        })
    };
    let (name, args, text) = last_error(&fixture("bad-mirror.fd3")).unwrap();
    assert_eq!(name, "NOGETREL");
    assert_eq!(args, ["http://127.0.0.1:9/debian/dists/stable/Release"]);
    assert_eq!(
        text,
        "Failed getting release file http://127.0.0.1:9/debian/dists/stable/Release"
    );
    let (name, ..) = last_error(&fixture("unknown-suite.fd3")).unwrap();
    assert_eq!(name, "NOGETREL");
    // Early errors come on stdout, in the same form.
    let (name, _, text) = last_error(&fixture("no-script.stdout")).unwrap();
    assert_eq!(name, "NOSCRIPT");
    assert_eq!(
        text,
        "No such script: /usr/share/debootstrap/scripts/nosuchsuite"
    );
}
