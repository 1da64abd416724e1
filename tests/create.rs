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
    assert_eq!(rec.backend, "debootstrap");
    assert!(rec.debootstrap_version.is_some(), "{rec:?}");
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

// (2) A mirror that cannot be reached: exit 1, the log named, nothing
// mounted; the same with either backend.
#[test]
fn bad_mirror_fails_and_names_the_log() {
    for backend in ["debootstrap", "mmdebstrap"] {
        bad_mirror_with(backend);
    }
}

fn bad_mirror_with(backend: &str) {
    let ns = Ns::new();
    let dir = ns.tmp.path().join("bad-mirror");
    let out = ns.run(&[
        "create",
        "--backend",
        backend,
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

// (3) A suite the mirror does not have, with either backend.
#[test]
fn unknown_suite_is_named_as_such() {
    for backend in ["debootstrap", "mmdebstrap"] {
        unknown_suite_with(backend);
    }
}

fn unknown_suite_with(backend: &str) {
    let ns = Ns::new();
    let dir = ns.tmp.path().join("bad-suite");
    let out = ns.run(&[
        "create",
        "--backend",
        backend,
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
        .args([
            "create",
            "--backend",
            "debootstrap",
            "-d",
            dir.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(fs::File::create(&errfile).unwrap())
        .spawn()
        .unwrap();
    // nsenter execs chroot-tool in place: the child's pid is chroot-tool's.
    let start = Instant::now();
    let mut mounted = false;
    let mut guard = 0;
    while start.elapsed() < Duration::from_secs(180) {
        // debootstrap mounts in the backend's own mount namespace: the
        // guard, chroot-tool's child, sees them; the host does not.
        if let Some(g) = backend_guard(child.id()) {
            if !mounts_in(g, &dir).is_empty() {
                assert!(ns.mounts_under(&dir).is_empty(), "seen by the host");
                guard = g;
                mounted = true;
                break;
            }
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
    assert!(
        !Path::new(&format!("/proc/{guard}/mountinfo")).exists()
            || mounts_in(guard, &dir).is_empty()
    );
    assert!(!dir.join("chroot.d/create.toml").exists());
}

/// The guard that runs debootstrap: the child of chroot-tool `pid`.
fn backend_guard(pid: u32) -> Option<u32> {
    fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Mount points at or below `dir` in the mount namespace of `pid`.
fn mounts_in(pid: u32, dir: &Path) -> Vec<String> {
    let d = dir.to_str().unwrap();
    fs::read_to_string(format!("/proc/{pid}/mountinfo"))
        .unwrap_or_default()
        .lines()
        .map(|l| unescape(l.split(' ').nth(4).unwrap()))
        .filter(|m| m == d || m.starts_with(&format!("{d}/")))
        .collect()
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

// ---- issue 7: create (lock, interruption, deep trees, DIR a mount point) ----

/// A fake debootstrap, first in PATH: it makes a few files in DIR, mounts
/// a tmpfs on DIR/proc, writes its pid (and its child's) to the state dir,
/// then, by `FAKE_MODE`: `ok` finishes; `fail` exits 1; `hold` waits on a
/// child `sleep` forever; `gate` waits (at most a minute) for the file
/// `release` in the state dir, then finishes; `orphan` leaves a `sleep` in
/// a session of its own (out of reach of its process group), then holds.
/// Finishing, it names the mirror `http://fake.example/debian` on fd 3.
/// `noisy` only prints escape sequences and 100 KB lines, and fails.
/// Every start is recorded in the state dir's `started`.
const FAKE_DEBOOTSTRAP: &str = r#"#!/bin/sh
if [ "$1" = --version ]; then echo "debootstrap 0.0-fake"; exit 0; fi
echo "$FAKE_MODE" >> "$FAKE_STATE/started"
if [ "$FAKE_MODE" = noisy ]; then
    printf 'I: \033]0;owned\007 title \033[2J cleared \233 csi\n'
    printf 'W: %s\n' "$(head -c 100000 /dev/zero | tr '\0' a)"
    printf 'E: %s\n' "$(head -c 100000 /dev/zero | tr '\0' b)"
    exit 1
fi
n=$#; i=0
for a; do i=$((i+1)); [ $i -eq $((n-1)) ] && dir=$a; done
st=$FAKE_STATE
mkdir -p "$dir/etc/default" "$dir/bin" "$dir/proc" "$dir/debootstrap" || exit 9
echo "written by the backend $$" > "$dir/debootstrap/marker"
mount -t tmpfs fake "$dir/proc" || exit 9
printf 'P: 1 100 DOWNREL\nPF: Retrieving Release\n' >&3
case "$FAKE_MODE" in
fail)
    umount "$dir/proc"
    printf 'E: FAKE\nEF: the fake backend failed\n' >&3
    exit 1 ;;
hold)
    sleep 1000 & echo $! > "$st/child.pid"
    echo $$ > "$st/pid.tmp" && mv "$st/pid.tmp" "$st/backend.pid"
    wait; exit 1 ;;
orphan)
    setsid sleep 1000 </dev/null >/dev/null 2>&1 3>&- &
    echo $! > "$st/orphan.pid"
    sleep 1000 & echo $! > "$st/child.pid"
    echo $$ > "$st/pid.tmp" && mv "$st/pid.tmp" "$st/backend.pid"
    wait; exit 1 ;;
gate)
    echo $$ > "$st/pid.tmp" && mv "$st/pid.tmp" "$st/backend.pid"
    i=0
    while [ ! -e "$st/release" ]; do
        i=$((i+1)); [ $i -gt 1200 ] && exit 8
        sleep 0.05
    done ;;
esac
umount "$dir/proc"
if [ "$FAKE_MODE" = fifo ]; then
    # os-release as a FIFO with a writer waiting for a reader, and as a
    # device node: chroot-tool must open neither.
    mkdir -p "$dir/usr/lib"
    mkfifo "$dir/etc/os-release"
    mknod "$dir/usr/lib/os-release" c 1 3
    (echo VERSION_CODENAME=leaked > "$dir/etc/os-release"; touch "$st/fifo-opened") </dev/null >/dev/null 2>&1 3>&- &
    echo $! > "$st/writer.pid"
else
    echo 'VERSION_CODENAME=fake' > "$dir/etc/os-release"
fi
printf 'I: CHECKINGSIZES\nIA: main\nIA: http://fake.example/debian\nIF: Checking component %%s on %%s...\n' >&3
exit 0
"#;

struct Fake {
    bin: std::path::PathBuf,
    state: std::path::PathBuf,
}

impl Fake {
    fn new(ns: &Ns) -> Fake {
        let bin = ns.tmp.path().join("fakebin");
        let state = ns.tmp.path().join("fakestate");
        fs::create_dir_all(&bin).unwrap();
        fs::create_dir_all(&state).unwrap();
        script(&bin.join("debootstrap"), FAKE_DEBOOTSTRAP);
        Fake { bin, state }
    }

    /// chroot-tool in `ns` with the fake backend in `mode`.
    fn tool(&self, ns: &Ns, mode: &str) -> std::process::Command {
        let mut c = ns.tool();
        c.env(
            "PATH",
            format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", self.bin.display()),
        )
        .env("FAKE_MODE", mode)
        .env("FAKE_STATE", &self.state);
        c
    }

    fn create(&self, ns: &Ns, mode: &str, dir: &Path) -> std::process::Output {
        let mut c = self.tool(ns, mode);
        c.args(["create", "--backend", "debootstrap", "-q", "-d"])
            .arg(dir);
        output_within(c, 120)
    }

    /// A create in `mode`, started; returns once its backend wrote its pid.
    fn start(&self, ns: &Ns, mode: &str, dir: &Path) -> (std::process::Child, i32) {
        let _ = fs::remove_file(self.state.join("backend.pid"));
        let mut child = self
            .tool(ns, mode)
            .args(["create", "--backend", "debootstrap", "-q", "-d"])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(fs::File::create(self.state.join("create.stderr")).unwrap())
            .spawn()
            .unwrap();
        let start = Instant::now();
        loop {
            if let Ok(p) = fs::read_to_string(self.state.join("backend.pid")) {
                return (child, p.trim().parse().unwrap());
            }
            if let Some(st) = child.try_wait().unwrap() {
                panic!(
                    "create ended ({st}) before its backend started: {}",
                    fs::read_to_string(self.state.join("create.stderr")).unwrap()
                );
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the fake backend never started"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn pid(&self, name: &str) -> i32 {
        fs::read_to_string(self.state.join(name))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }
}

/// Whether `pid` is alive (a zombie counts as gone).
fn alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s.rsplit(") ").next().is_some_and(|r| !r.starts_with('Z')),
        Err(_) => false,
    }
}

/// Waits (at most `secs`) for every pid of `pids` to be gone.
fn gone_within(pids: &[i32], secs: u64) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(secs) {
        if pids.iter().all(|&p| !alive(p)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn wait_with_deadline(child: &mut std::process::Child, secs: u64) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if start.elapsed() > Duration::from_secs(secs) {
            let _ = child.kill();
            panic!("chroot-tool did not end within {secs} s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `cmd`'s output, killed and failed after `secs`.
fn output_within(mut cmd: std::process::Command, secs: u64) -> std::process::Output {
    let out = tempfile::tempfile_in(test_tmp()).unwrap();
    let err = tempfile::tempfile_in(test_tmp()).unwrap();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(err.try_clone().unwrap())
        .spawn()
        .unwrap();
    let status = wait_with_deadline(&mut child, secs);
    let read = |mut f: fs::File| {
        use std::io::{Read, Seek};
        let mut v = vec![];
        f.rewind().unwrap();
        f.read_to_end(&mut v).unwrap();
        v
    };
    std::process::Output {
        status,
        stdout: read(out),
        stderr: read(err),
    }
}

/// chroot-tool with `args` in `ns`, within 60 s.
fn run_within(ns: &Ns, args: &[&str]) -> std::process::Output {
    let mut c = ns.tool();
    c.args(args);
    output_within(c, 60)
}

fn one_line(err: &str) -> &str {
    assert_eq!(err.lines().count(), 1, "not one line: {err}");
    err.trim_end()
}

// Class 11: a second create on the same DIR (by its name or through a
// symlink) while the first runs refuses with one line and touches nothing;
// `on`, `run`, `off` and `destroy` refuse too and mount nothing; the first
// create finishes, its files intact, and records the mirror its backend used.
#[test]
fn create_in_progress_is_locked_against_everything() {
    let ns = Ns::new();
    let fake = Fake::new(&ns);
    let dir = ns.tmp.path().join("racing");
    let alias = ns.tmp.path().join("alias");
    std::os::unix::fs::symlink(&dir, &alias).unwrap();
    let (mut first, backend) = fake.start(&ns, "gate", &dir);
    let marker = dir.join("debootstrap/marker");
    let mark = fs::read_to_string(&marker).unwrap();
    for d in [&dir, &alias] {
        let out = fake.create(&ns, "ok", d);
        let err = stderr(&out);
        assert_eq!(code(&out), 1, "{err}");
        let line = one_line(&err);
        assert!(
            line.contains("a create (or other command) is in progress on")
                && line.contains(&format!("pid {backend}")),
            "{line}"
        );
        assert!(!line.contains("cleaning up"), "{line}");
        assert_eq!(fs::read_to_string(&marker).unwrap(), mark);
    }
    let before = ns.mountinfo().lines().count();
    for args in [
        vec!["on", "-d", d(&dir)],
        vec!["run", "-d", d(&dir), "true"],
        vec!["shell", "-d", d(&dir)],
        vec!["off", "-d", d(&dir)],
        vec!["destroy", "--yes", "-d", d(&dir)],
    ] {
        let mut c = fake.tool(&ns, "ok");
        c.args(&args);
        let out = output_within(c, 30);
        let err = stderr(&out);
        assert!(matches!(code(&out), 1 | 125), "{args:?}: {err}");
        let line = one_line(&err);
        assert!(
            line.contains("in progress on") || line.contains("not a root filesystem"),
            "{args:?}: {line}"
        );
        assert!(ns.mounts_under(&dir).is_empty(), "{args:?}");
        assert_eq!(ns.mountinfo().lines().count(), before, "{args:?}");
        assert_eq!(fs::read_to_string(&marker).unwrap(), mark, "{args:?}");
    }
    assert!(alive(backend));
    fs::write(fake.state.join("release"), "").unwrap();
    let st = wait_with_deadline(&mut first, 60);
    let err = fs::read_to_string(fake.state.join("create.stderr")).unwrap();
    assert!(st.success(), "{err}");
    assert_eq!(fs::read_to_string(&marker).unwrap(), mark);
    let rec = chroot_tool::create::load(&dir).expect("create.toml");
    assert_eq!(rec.mirror, "http://fake.example/debian");
    assert_eq!(rec.codename.as_deref(), Some("fake"));
    assert!(ns.mounts_under(&dir).is_empty());
}

// Class 11: `on` and `run` refuse a create that failed (it is no rootfs),
// with the reason, and mount nothing; `off` and `destroy` still work on it.
#[test]
fn failed_create_is_not_used() {
    let ns = Ns::new();
    let fake = Fake::new(&ns);
    let dir = ns.tmp.path().join("failed");
    let out = fake.create(&ns, "fail", &dir);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    // Make it look like a rootfs, as a real debootstrap that failed late leaves it.
    make_busybox_root(&dir);
    for args in [
        vec!["on", "-d", d(&dir)],
        vec!["run", "-d", d(&dir), "true"],
    ] {
        let out = run_within(&ns, &args);
        let err = stderr(&out);
        assert!(matches!(code(&out), 1 | 125), "{args:?}: {err}");
        assert!(
            one_line(&err).contains("its create did not finish"),
            "{args:?}: {err}"
        );
        assert!(ns.mounts_under(&dir).is_empty(), "{args:?}");
    }
    ok(&run_within(&ns, &["off", "-d", d(&dir)]));
    ok(&run_within(&ns, &["destroy", "--yes", "-d", d(&dir)]));
    assert!(!dir.exists());
}

/// Waits (at most 30 s) for a file to appear.
fn wait_file(p: &Path) {
    let start = Instant::now();
    while !p.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{} never appeared",
            p.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

// Class 12: a create killed by SIGKILL takes its backend and the backend's
// children with it, leaves nothing mounted anywhere, and the next create
// cleans the failed one and works.
#[test]
fn killed_create_leaves_no_backend() {
    let ns = Ns::new();
    let fake = Fake::new(&ns);
    let dir = ns.tmp.path().join("killed");
    let (mut create, backend) = fake.start(&ns, "hold", &dir);
    let child = fake.pid("child.pid");
    assert!(alive(backend) && alive(child));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(create.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_with_deadline(&mut create, 10);
    assert!(
        gone_within(&[backend, child], 10),
        "the backend outlived a killed create: {backend} {child}"
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
    let out = fake.create(&ns, "ok", &dir);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(dir.join("chroot.d/create.toml").is_file());
}

// Class 12: every fatal signal that can be caught interrupts the create
// cleanly: exit 1, "create interrupted", backend and its children gone.
#[test]
fn fatal_signals_interrupt_create() {
    use nix::sys::signal::Signal::*;
    let ns = Ns::new();
    let fake = Fake::new(&ns);
    for (i, sig) in [SIGQUIT, SIGHUP, SIGTERM, SIGINT, SIGUSR1, SIGUSR2, SIGALRM]
        .into_iter()
        .enumerate()
    {
        let dir = ns.tmp.path().join(format!("sig{i}"));
        let (mut create, backend) = fake.start(&ns, "hold", &dir);
        let child = fake.pid("child.pid");
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(create.id() as i32), sig).unwrap();
        let st = wait_with_deadline(&mut create, 30);
        let err = fs::read_to_string(fake.state.join("create.stderr")).unwrap();
        assert_eq!(st.code(), Some(1), "{sig}: {st} {err}");
        assert!(err.contains("create interrupted"), "{sig}: {err}");
        assert!(gone_within(&[backend, child], 10), "{sig}");
        assert!(ns.mounts_under(&dir).is_empty(), "{sig}");
    }
}

// Class 12: a process of the backend that escaped its process group keeps
// DIR locked: the next create refuses and names it, and works once it is gone.
#[test]
fn surviving_backend_process_is_named() {
    let ns = Ns::new();
    let fake = Fake::new(&ns);
    let dir = ns.tmp.path().join("orphaned");
    let (mut create, backend) = fake.start(&ns, "orphan", &dir);
    wait_file(&fake.state.join("orphan.pid"));
    let orphan = fake.pid("orphan.pid");
    // The pid is written before `setsid` has exec'ed the sleep: the message
    // names the process as it is, so wait until it is the sleep.
    common::wait_until("the escaped process to be the sleep", || {
        fs::read_to_string(format!("/proc/{orphan}/comm")).is_ok_and(|c| c.trim() == "sleep")
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(create.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_with_deadline(&mut create, 10);
    assert!(gone_within(&[backend], 10));
    assert!(alive(orphan), "the escaped sleep is the test's premise");
    let out = fake.create(&ns, "ok", &dir);
    let err = stderr(&out);
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(orphan),
        nix::sys::signal::Signal::SIGKILL,
    );
    assert_eq!(code(&out), 1, "{err}");
    assert!(
        one_line(&err).contains(&format!(
            "in progress on {} (held by pid {orphan} sleep",
            d(&dir)
        )),
        "{err}"
    );
    assert!(dir.join("debootstrap/marker").is_file());
    assert!(gone_within(&[orphan], 10));
    let out = fake.create(&ns, "ok", &dir);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// A chain of `depth` directories `d/d/…` below `top`, with a file and
/// two symlinks (to `/` and to `../../../../..`) at the bottom, made by
/// descriptor (one held at a time).
fn deep_chain(top: &Path, depth: usize) {
    use nix::fcntl::{openat, OFlag};
    use nix::sys::stat::{mkdirat, Mode};
    let mut fd =
        nix::fcntl::open(top, OFlag::O_DIRECTORY | OFlag::O_RDONLY, Mode::empty()).unwrap();
    for _ in 0..depth {
        mkdirat(&fd, "d", Mode::from_bits_truncate(0o755)).unwrap();
        fd = openat(
            &fd,
            "d",
            OFlag::O_DIRECTORY | OFlag::O_RDONLY,
            Mode::empty(),
        )
        .unwrap();
    }
    nix::unistd::symlinkat("/", &fd, "to-root").unwrap();
    nix::unistd::symlinkat("../../../../..", &fd, "up").unwrap();
    let f = openat(
        &fd,
        "bottom",
        OFlag::O_CREAT | OFlag::O_WRONLY,
        Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    drop(f);
}

// Class 13: destroy of a tree 20000 levels deep, with the default limits
// and with 64 descriptors: it succeeds, nothing aborts.
#[test]
fn destroy_deep_tree() {
    let ns = Ns::new();
    let outside = ns.tmp.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("keep"), "outside").unwrap();
    for (name, limit) in [("deep", None), ("deep-64", Some(64))] {
        let root = ns.busybox_root(name);
        std::os::unix::fs::symlink(&outside, root.join("root/outside")).unwrap();
        deep_chain(&root.join("root"), 20000);
        let line = match limit {
            None => format!("exec {BIN} destroy --yes -d {}", d(&root)),
            Some(n) => format!("ulimit -n {n} && exec {BIN} destroy --yes -d {}", d(&root)),
        };
        let mut c = ns.cmd("sh");
        c.args(["-c", &line]);
        let out = output_within(c, 300);
        assert!(
            out.status.success(),
            "{name}: {:?} {}",
            out.status,
            stderr(&out)
        );
        assert!(stdout(&out).contains("destroyed"), "{}", stdout(&out));
        assert!(!root.exists(), "{name}");
        assert_eq!(fs::read_to_string(outside.join("keep")).unwrap(), "outside");
    }
}

// Class 13: a failed create's cleanup shares the walk: a 20000-level tree
// left by it is cleaned with 64 descriptors.
#[test]
fn failed_create_with_deep_tree_is_cleaned() {
    let ns = Ns::new();
    let fake = Fake::new(&ns);
    let dir = ns.tmp.path().join("deep-failed");
    let out = fake.create(&ns, "fail", &dir);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    deep_chain(&dir.join("debootstrap"), 20000);
    let mut c = ns.cmd("sh");
    c.env(
        "PATH",
        format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", fake.bin.display()),
    )
    .env("FAKE_MODE", "ok")
    .env("FAKE_STATE", &fake.state)
    .args([
        "-c",
        &format!("ulimit -n 64 && exec {BIN} create -d {}", d(&dir)),
    ]);
    let out = output_within(c, 300);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("cleaning up a previous failed create"),
        "{err}"
    );
    assert!(!dir.join("debootstrap/d").exists());
    assert!(dir.join("chroot.d/create.toml").is_file());
}

// Class 15: DIR a mount point the user made: a failed create there is
// cleaned by the next create (DIR's content goes, DIR and its mount stay),
// and destroy empties DIR and says it stays; a DIR that is a bind of
// another directory is refused by destroy, which deletes nothing.
#[test]
fn dir_that_is_a_mount_point() {
    let ns = Ns::new();
    let fake = Fake::new(&ns);
    let dir = ns.tmp.path().join("mnt");
    fs::create_dir(&dir).unwrap();
    ok(&ns.sh(&format!("mount -t tmpfs user-tmpfs {}", d(&dir))));
    let out = fake.create(&ns, "fail", &dir);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let out = fake.create(&ns, "fail", &dir);
    let err = stderr(&out);
    assert_eq!(code(&out), 1, "{err}");
    assert!(err.contains("debootstrap failed"), "{err}");
    assert!(!err.contains("mount point"), "{err}");
    let out = fake.create(&ns, "ok", &dir);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(ns.mounts_under(&dir), vec![d(&dir).to_string()]);
    let out = run_within(&ns, &["destroy", "--yes", "-d", d(&dir)]);
    let said = ok(&out);
    assert!(said.contains("it stays: it is a mount point"), "{said}");
    assert!(dir.is_dir());
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 0);
    assert_eq!(ns.mounts_under(&dir), vec![d(&dir).to_string()]);

    // A bind of another directory on DIR: never emptied.
    let other = ns.tmp.path().join("other");
    let bound = ns.tmp.path().join("bound");
    make_busybox_root(&other);
    fs::create_dir(&bound).unwrap();
    ok(&ns.sh(&format!("mount --bind {} {}", d(&other), d(&bound))));
    let out = run_within(&ns, &["destroy", "--yes", "-d", d(&bound)]);
    let err = stderr(&out);
    assert_eq!(code(&out), 1, "{err}");
    // Refused before anything is ended or deleted (the bind on DIR is not
    // a filesystem of its own).
    assert!(
        err.contains("nothing was deleted") && err.contains(d(&bound)),
        "{err}"
    );
    assert!(other.join("bin/busybox").is_file());
    assert!(other.join("etc/passwd").is_file());
}

/// The new rootfs is data: its os-release as a FIFO (a writer waiting for a
/// reader) or a device node is never opened by create.
#[test]
fn create_never_opens_a_fifo_or_device_of_the_new_rootfs() {
    let ns = Ns::new();
    let fake = Fake::new(&ns);
    let dir = ns.tmp.path().join("sb");
    let out = fake.create(&ns, "fifo", &dir);
    let writer: i32 = fs::read_to_string(fake.state.join("writer.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let opened = fake.state.join("fifo-opened").exists();
    // The writer is ours (the fake backend's child): ended by its pid.
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(writer),
        nix::sys::signal::Signal::SIGKILL,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!opened, "create opened the rootfs's FIFO");
    let rec = chroot_tool::create::load(&dir).expect("create.toml");
    assert_eq!(rec.codename, None);
}

// ---- issue 7: attack pass ----

/// The entries of a directory, sorted (names as bytes).
fn names(dir: &Path) -> Vec<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    let mut v: Vec<Vec<u8>> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().as_bytes().to_vec())
        .collect();
    v.sort();
    v
}

/// debootstrap splits its target at a space, tab or newline (`wget $@`)
/// and writes the Release file to the host path before it, and hands `"`,
/// `$`, `` ` `` and `\` to the shell (`eval`): create refuses such a DIR
/// (by the path given or where its symlinks lead) with one line naming it,
/// before anything is made or debootstrap started.
#[test]
fn create_refuses_a_dir_debootstrap_cannot_take() {
    use std::os::unix::ffi::OsStrExt;
    let ns = Ns::new();
    let fake = Fake::new(&ns);
    let s = ns.tmp.path().join("S");
    fs::create_dir_all(s.join("a b")).unwrap();
    fs::write(s.join("victim"), "precious\n").unwrap();
    std::os::unix::fs::symlink(s.join("a b"), s.join("link")).unwrap();
    let before = names(&s);
    let mut tried = 0;
    for (name, shown) in [
        (&b"victim\nx"[..], &b"victim\\nx"[..]),
        (b"victim\n", b"victim\\n"),
        (b"victim\tx", b"victim\\tx"),
        (b"victim\rx", b"victim\\rx"),
        (b"v\x1b]0;t\x07", b"v\\x1b]0;t\\x07"),
        (b"v\x7f", b"v\\x7f"),
        (b"v\xc2\x9bx", b"v\\xc2\\x9bx"),
        (b"victim x", b"victim x"),
        (b"a b/sb", b"a b/sb"),
        (b"new dir/sb", b"new dir/sb"),
        (b"link/sb", b"a b/sb"),
        (b"$(touch PWNED)", b"$(touch PWNED)"),
        (b"`touch PWNED`", b"`touch PWNED`"),
        (b"a\"b", b"a\"b"),
        (b"a\\b", b"a\\\\b"),
        (b"vic*", b"vic*"),
        (b"vic?im", b"vic?im"),
        (b"[v]ictim", b"[v]ictim"),
    ] {
        tried += 1;
        let dir = s.join(std::ffi::OsStr::from_bytes(name));
        let out = fake.create(&ns, "ok", &dir);
        let err = stderr(&out);
        assert_eq!(code(&out), 1, "{name:?}: {err}");
        let line = one_line(&err);
        assert!(
            line.starts_with("chroot-tool: refusing to create a sandbox in ")
                && line.contains("debootstrap cannot take safely"),
            "{name:?}: {line}"
        );
        assert!(
            out.stderr.windows(shown.len()).any(|w| w == shown),
            "{name:?}: the error does not name DIR: {line}"
        );
        assert_eq!(names(&s), before, "{name:?}: something was made");
        assert!(names(&s.join("a b")).is_empty(), "{name:?}");
        assert_eq!(fs::read_to_string(s.join("victim")).unwrap(), "precious\n");
        assert!(
            !fake.state.join("started").exists(),
            "{name:?}: debootstrap was started"
        );
    }
    assert_eq!(tried, 18);
    // A mirror debootstrap would split the same way.
    for mirror in [
        "http://fake.example/debian -O /tmp/x",
        "http://fake.example/\ndebian",
    ] {
        let dir = s.join("m");
        let mut c = fake.tool(&ns, "ok");
        c.args([
            "create",
            "--backend",
            "debootstrap",
            "-q",
            "--mirror",
            mirror,
            "-d",
        ])
        .arg(&dir);
        let out = output_within(c, 60);
        let err = stderr(&out);
        assert_eq!(code(&out), 1, "{mirror:?}: {err}");
        assert!(one_line(&err).contains("refusing the mirror"), "{err}");
        assert!(!dir.exists() && !fake.state.join("started").exists());
    }
    // What debootstrap takes is still fine: punctuation, non-ASCII, bytes
    // that are not UTF-8.
    let fine = s.join(std::ffi::OsStr::from_bytes(
        b"caf\xc3\xa9-\xff_a.b,c+d@e:f=g~h%i",
    ));
    ok(&fake.create(&ns, "ok", &fine));
    assert!(chroot_tool::create::load(&fine).is_some());
}

/// A failed create's output is bounded and escaped: the log's header names
/// DIR escaped, debootstrap's lines (escape sequences, 100 KB lines) are
/// escaped and bounded, and a 100 KB `--suite` is refused in one short line.
#[test]
fn failed_create_output_is_escaped_and_bounded() {
    use std::os::unix::ffi::OsStrExt;
    let ns = Ns::new();
    let fake = Fake::new(&ns);
    let dir = ns
        .tmp
        .path()
        .join(std::ffi::OsStr::from_bytes(b"sb-\xff\x9b"));
    let out = fake.create(&ns, "noisy", &dir);
    let err = &out.stderr;
    let text = stderr(&out);
    assert_eq!(code(&out), 1, "{text}");
    assert!(
        fs::read_to_string(fake.state.join("started")).unwrap() == "noisy\n",
        "the fake backend did not run"
    );
    for raw in [&b"\x1b"[..], b"\x07", b"\x9b", b"\xff"] {
        assert!(
            !err.windows(raw.len()).any(|w| w == raw),
            "raw {raw:?} on stderr: {text}"
        );
    }
    assert!(
        text.contains("--- last lines of ")
            && text.contains("sb-\\xff\\x9b/chroot.d/create.log ---"),
        "{text}"
    );
    assert!(
        text.contains("\\x1b]0;owned\\x07 title \\x1b[2J cleared"),
        "{text}"
    );
    assert!(err.len() < 8_000, "{} bytes of output", err.len());
    assert!(ns.mounts_under(&dir).is_empty());

    // A 100 KB suite: refused before anything, in one short line.
    for suite in ["a".repeat(100_000), "a/\u{1b}[2J".repeat(20_000)] {
        let other = ns.tmp.path().join("other");
        let mut c = fake.tool(&ns, "ok");
        c.args([
            "create",
            "--backend",
            "debootstrap",
            "-q",
            "--suite",
            &suite,
            "-d",
        ])
        .arg(&other);
        let out = output_within(c, 60);
        let text = stderr(&out);
        assert_ne!(code(&out), 0);
        assert!(
            out.stderr.len() < 1_500,
            "{} bytes of output",
            out.stderr.len()
        );
        assert!(!out.stderr.contains(&0x1b), "{text}");
        assert!(one_line(&text).contains("invalid suite name \""), "{text}");
        assert!(!other.exists());
    }
}

/// The next create empties a DIR whose create did not finish, looked at
/// and emptied through one descriptor: a finished sandbox that whoever may
/// rename DIR's name (here the sudo user, whose directory holds both)
/// swaps in meanwhile (`renameat2` exchange, over and over) is never
/// emptied, in 20 rounds of a create racing the swaps.
#[test]
fn a_finished_sandbox_swapped_for_a_failed_create_is_never_emptied() {
    use nix::fcntl::{renameat2, RenameFlags, AT_FDCWD};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let ns = Ns::new();
    let src = ns.busybox_root("src");
    for round in 0..20 {
        let parent = ns.tmp.path().join(format!("p{round}"));
        fs::create_dir(&parent).unwrap();
        let (failed, done) = (parent.join("f"), parent.join("s"));
        fs::create_dir_all(failed.join("chroot.d")).unwrap();
        fs::write(failed.join("chroot.d/create.log"), "killed\n").unwrap();
        make_busybox_root(&done);
        fs::write(done.join("chroot.d/create.log"), "log\n").unwrap();
        fs::write(done.join("chroot.d/create.toml"), "# made\n").unwrap();
        fs::write(done.join("marker"), "precious\n").unwrap();
        std::os::unix::fs::chown(&parent, Some(1001), Some(1001)).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let swapper = {
            let (stop, a, b) = (stop.clone(), failed.clone(), done.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let _ = renameat2(AT_FDCWD, &a, AT_FDCWD, &b, RenameFlags::RENAME_EXCHANGE);
                }
            })
        };
        let mut c = ns.tool();
        c.args(["create", "-q", "--from", d(&src), "-d", d(&failed)])
            .env("SUDO_UID", "1001");
        let _ = output_within(c, 60);
        stop.store(true, Ordering::Relaxed);
        swapper.join().unwrap();
        let kept = [&failed, &done]
            .iter()
            .any(|p| fs::read_to_string(p.join("marker")).is_ok_and(|t| t == "precious\n"));
        assert!(kept, "round {round}: the finished sandbox was emptied");
    }
}
