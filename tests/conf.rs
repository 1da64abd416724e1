//! Parses every file in tests/fixtures/conf/: `ok-*.conf` against the
//! records they must give (`ok-warn-*.conf` also against their warnings, the
//! others must give none), `bad-*.conf` against the line and message of
//! their error. A fixture without an expectation here fails the run.
use chroot_tool::conf::{BindSpec, Conf, FsKind};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/conf")
}

fn parse(name: &str) -> Result<Conf, chroot_tool::conf::ConfError> {
    let path = dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    Conf::parse(&text, &path)
}

fn ok(name: &str) -> Conf {
    parse(name).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn b(line: usize, tgt: &str, src: &str, fs: FsKind, opt: &str, ignore: bool) -> BindSpec {
    BindSpec {
        line,
        tgt: PathBuf::from(tgt),
        src: src.into(),
        fs,
        opt: opt.into(),
        ignore,
    }
}

const PRIVATE: &str = "private";
const TMPFS_OPT: &str = "noexec,nosuid,nodev,rw";

type Check = fn(Conf);

/// The warnings of a fixture without its path: `LINE: message`.
fn warnings(c: &Conf) -> Vec<String> {
    let prefix = format!("{}:", c.path.display());
    c.warnings
        .iter()
        .map(|w| {
            w.strip_prefix(&prefix)
                .unwrap_or_else(|| panic!("{w:?} does not start with {prefix:?}"))
                .to_string()
        })
        .collect()
}

const OK: &[(&str, Check)] = &[
    ("ok-original-typical.conf", |c| {
        assert_eq!(
            c.binds,
            [
                b(
                    2,
                    "/project",
                    "/home/user/project",
                    FsKind::Bind,
                    PRIVATE,
                    false
                ),
                b(
                    3,
                    "/var/cache/apt",
                    "/var/cache/apt",
                    FsKind::Bind,
                    PRIVATE,
                    false
                ),
                b(3, "/run", "/run", FsKind::Bind, "default", false),
            ]
        );
        assert!(c.excludes.is_empty());
    }),
    ("ok-original-readme.conf", |c| {
        assert_eq!(
            c.binds,
            [
                b(2, "/data", "/srv/data", FsKind::Bind, PRIVATE, false),
                b(
                    3,
                    "/root/.ssh",
                    "/home/user/.ssh",
                    FsKind::Bind,
                    PRIVATE,
                    false
                ),
            ]
        );
    }),
    ("ok-comments.conf", |c| {
        assert_eq!(
            c.binds,
            [
                b(
                    4,
                    "/project",
                    "/home/user/project",
                    FsKind::Bind,
                    PRIVATE,
                    false
                ),
                b(
                    7,
                    "/var/cache/apt#1",
                    "/var/cache/apt",
                    FsKind::Bind,
                    PRIVATE,
                    false
                ),
            ]
        );
    }),
    ("ok-quotes-escapes.conf", |c| {
        assert_eq!(
            c.binds,
            [
                b(
                    2,
                    "/my projects",
                    "/home/user/My Projects",
                    FsKind::Bind,
                    PRIVATE,
                    false
                ),
                b(3, "/ab", "/srv/a b;c", FsKind::Bind, PRIVATE, false),
                b(4, "/t", "", FsKind::Tmpfs, TMPFS_OPT, false),
                b(5, "/x", "none", FsKind::Tmpfs, "mode=0755;size=1G", false),
            ]
        );
    }),
    ("ok-fs-kinds.conf", |c| {
        assert_eq!(
            c.binds,
            [
                b(
                    2,
                    "/opt/tools",
                    "/opt/tools",
                    FsKind::BindRo,
                    PRIVATE,
                    false
                ),
                b(3, "/scratch", "none", FsKind::Tmpfs, TMPFS_OPT, false),
                b(4, "/cache", "cachefs", FsKind::Tmpfs, "size=2G", false),
                b(
                    5,
                    "/mnt/remote",
                    "none",
                    FsKind::Other("fuse.sshfs".into()),
                    "defaults",
                    false,
                ),
                b(6, "/var/lib/x", "/data", FsKind::Bind, PRIVATE, false),
            ]
        );
    }),
    ("ok-ignore.conf", |c| {
        let got: Vec<(usize, String, bool)> = c
            .binds
            .iter()
            .map(|b| (b.line, b.tgt.display().to_string(), b.ignore))
            .collect();
        let want = [
            (2, "/run", true),
            (3, "/tmp", true),
            (3, "/dev/shm", true),
            (4, "/srv", false),
            (5, "/proc", true),
        ]
        .map(|(l, t, i)| (l, t.to_string(), i));
        assert_eq!(got, want);
    }),
    ("ok-sections.conf", |c| {
        let tgts: Vec<_> = c.binds.iter().map(|b| (b.line, b.tgt.clone())).collect();
        assert_eq!(tgts, [(11, "/a".into()), (13, "/b".into())]);
        assert_eq!(
            c.excludes,
            [
                "/var/cache/apt/archives",
                "/home/builder/big files",
                "/tmp/*"
            ]
        );
        let limits = c.section("limits");
        assert_eq!(limits.len(), 1);
        assert_eq!(limits[0].line, 4);
        assert_eq!(
            (
                limits[0].get("memory"),
                limits[0].get("cpus"),
                limits[0].get("pids")
            ),
            (Some("512M"), Some("1.5"), Some("256"))
        );
        let run = c.section("run");
        assert_eq!(run.len(), 2);
        assert_eq!(
            (run[0].line, run[0].get("user"), run[0].get("net")),
            (6, Some("builder"), Some("none"))
        );
        assert_eq!(
            (run[1].line, run[1].get("workdir")),
            (6, Some("/home/builder/src"))
        );
        assert_eq!(c.section("bind").len(), 2);
    }),
    ("ok-warn-unknown-section.conf", |c| {
        let tgts: Vec<_> = c.binds.iter().map(|b| (b.line, b.tgt.clone())).collect();
        assert_eq!(tgts, [(2, "/a".into()), (7, "/c".into())]);
        assert!(c.excludes.is_empty());
        assert_eq!(c.sections.keys().collect::<Vec<_>>(), ["bind"]);
        assert_eq!(
            warnings(&c),
            [
                "3: unknown section [mount] ignored with its lines (known: bind, exclude, limits, run)",
                "8: unknown section [Exclude] ignored with its lines (known: bind, exclude, limits, run)",
            ]
        );
    }),
    ("ok-empty.conf", |c| {
        assert!(c.binds.is_empty() && c.excludes.is_empty());
        assert!(c.section("run").is_empty());
    }),
];

/// (fixture, line, fragments the message must contain)
const BAD: &[(&str, usize, &[&str])] = &[
    ("bad-no-tgt.conf", 3, &["tgt is required"]),
    (
        "bad-relative-tgt.conf",
        3,
        &["tgt must be an absolute path, found \"project\""],
    ),
    (
        "bad-root-tgt.conf",
        3,
        &["tgt must not be the root", "\"//\""],
    ),
    ("bad-unterminated-quote.conf", 2, &["unterminated quote"]),
    (
        "bad-missing-value.conf",
        2,
        &["missing value for \"src\"", "src:\"\""],
    ),
    (
        "bad-not-a-pair.conf",
        3,
        &["expected key:value, found \"foo\""],
    ),
    (
        "bad-malformed-header.conf",
        2,
        &["malformed section header \"[ bind ]\""],
    ),
    ("bad-fs-type.conf", 2, &["fs must be", "found \"my fs\""]),
    (
        "bad-ignore-value.conf",
        2,
        &["ignore must be yes or no, found \"maybe\""],
    ),
    (
        "bad-relative-src.conf",
        2,
        &["src must be an absolute host path", "\"home/user\""],
    ),
    ("bad-exclude-quote.conf", 3, &["unterminated quote"]),
    (
        "bad-run-syntax.conf",
        3,
        &["expected key:value, found \"workdir\""],
    ),
    ("bad-trailing-backslash.conf", 2, &["escapes nothing"]),
    (
        "bad-unknown-key.conf",
        2,
        &["unknown key \"opts\" in [bind] (did you mean opt? known: tgt, src, fs, opt, ignore)"],
    ),
];

#[test]
fn good_fixtures_parse_to_expected_records() {
    for (name, check) in OK {
        let conf = ok(name);
        assert_eq!(conf.path, dir().join(name));
        if !name.starts_with("ok-warn-") {
            assert!(conf.warnings.is_empty(), "{name}: {:?}", conf.warnings);
        }
        check(conf);
    }
}

#[test]
fn bad_fixtures_name_file_line_and_problem() {
    for (name, line, fragments) in BAD {
        let e = match parse(name) {
            Ok(c) => panic!("{name} parsed: {c:?}"),
            Err(e) => e,
        };
        assert_eq!(e.path, dir().join(name), "{name}");
        assert_eq!(e.line, *line, "{name}: {e}");
        for f in *fragments {
            assert!(e.msg.contains(f), "{name}: {:?} lacks {f:?}", e.msg);
        }
        let shown = e.to_string();
        let prefix = format!("{}:{line}: ", dir().join(name).display());
        assert!(shown.starts_with(&prefix), "{name}: {shown}");
    }
}

#[test]
fn every_fixture_has_an_expectation() {
    let on_disk: BTreeSet<String> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let listed: BTreeSet<String> = OK
        .iter()
        .map(|(n, _)| n.to_string())
        .chain(BAD.iter().map(|(n, _, _)| n.to_string()))
        .collect();
    assert_eq!(on_disk, listed);
}

#[test]
fn load_reads_chroot_d_tool_conf() {
    let d = tempfile::tempdir().unwrap();
    assert!(Conf::load(d.path()).unwrap().is_none());
    std::fs::copy(
        dir().join("ok-original-typical.conf"),
        d.path().join("tool.conf"),
    )
    .unwrap();
    let c = Conf::load(d.path()).unwrap().unwrap();
    assert_eq!(c.path, d.path().join("tool.conf"));
    assert_eq!(c.binds.len(), 3);
}

#[test]
fn conf_sh_is_reported_not_run() {
    use std::os::fd::AsFd;
    let d = tempfile::tempdir().unwrap();
    let cd = d.path().join("chroot.d");
    std::fs::create_dir(&cd).unwrap();
    let root = chroot_tool::sys::open_root(d.path()).unwrap();
    assert!(chroot_tool::conf::conf_sh_notice(root.as_fd(), &cd).is_none());
    std::fs::write(
        cd.join("conf.sh"),
        "BINDINGS=\"src:/a tgt:/a\"\ntouch /tmp/ran\n",
    )
    .unwrap();
    let n = chroot_tool::conf::conf_sh_notice(root.as_fd(), &cd).unwrap();
    assert!(n.contains("not executed") && n.contains("[bind]"), "{n}");
}
