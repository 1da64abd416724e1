//! config.toml (docs/config.md): every file in tests/fixtures/config/ is
//! parsed, `ok-*.toml` against the settings it must give, `bad-*.toml`
//! against the line and message of its error; share/config.toml (all
//! commented) gives nothing. A fixture without an expectation here fails
//! the run. Then, for real: config.toml's defaults under the command line
//! and tool.conf, and a malformed file named with its line.
mod common;

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use chroot_tool::conf::Config;
use common::{code, d, ok, stderr, stdout, Ns};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config")
}

fn parse(path: &Path) -> Result<Config, chroot_tool::conf::ConfError> {
    Config::parse(&std::fs::read_to_string(path).unwrap(), path)
}

type Check = fn(Config);

const OK: &[(&str, Check)] = &[
    ("ok-full.toml", |c| {
        let cr = &c.create;
        assert_eq!(cr.suite.as_deref(), Some("bookworm"));
        assert_eq!(cr.mirror.as_deref(), Some("http://mirror.example/debian"));
        assert_eq!(cr.variant.as_deref(), Some("buildd"));
        assert_eq!(cr.include, Some(vec!["procps".into(), "less".into()]));
        assert_eq!(cr.components, Some(vec!["main".into(), "contrib".into()]));
        assert_eq!(cr.arch.as_deref(), Some("arm64"));
        assert_eq!(c.cache_dir, Some(PathBuf::from("/srv/cache/chroot-tool")));
        let r = &c.run;
        let u = r.user.as_ref().unwrap();
        assert_eq!((u.value.as_str(), u.line), ("builder:staff", 14));
        assert_eq!(u.file, Some(dir().join("ok-full.toml")));
        let w = r.workdir.as_ref().unwrap();
        assert_eq!((w.value.as_path(), w.line), (Path::new("/work"), 15));
        assert_eq!(
            r.net_none.as_ref().map(|s| (s.value, s.line)),
            Some((true, 16))
        );
        assert_eq!(r.pid.as_ref().map(|s| (s.value, s.line)), Some((true, 17)));
    }),
    ("ok-empty.toml", |c| {
        assert_eq!(c.create, Default::default());
        assert_eq!(c.run, Default::default());
        assert_eq!(c.cache_dir, None);
    }),
    ("ok-include-string.toml", |c| {
        assert_eq!(
            c.create.include,
            Some(vec!["procps".into(), "less".into(), "git".into()])
        );
    }),
];

/// Line and the start of the message (after `FILE:LINE: `).
const BAD: &[(&str, usize, &str)] = &[
    ("bad-syntax.toml", 3, "string values must be quoted"),
    ("bad-unknown-key.toml", 5, "unknown field `usr`"),
    ("bad-unknown-section.toml", 1, "unknown field `creat`"),
    (
        "bad-type.toml",
        2,
        "invalid type: string \"maybe\", expected a boolean",
    ),
    (
        "bad-run-net.toml",
        3,
        "[run] net:\"bridge\" is not host or none",
    ),
    (
        "bad-run-workdir.toml",
        3,
        "[run] workdir:\"work\" must be an absolute path",
    ),
    (
        "bad-suite-spaces.toml",
        2,
        "[create] suite: one word expected",
    ),
    (
        "bad-cache-relative.toml",
        2,
        "[cache] dir: an absolute path expected",
    ),
    (
        "bad-include-type.toml",
        3,
        "[create] include: a list of names",
    ),
];

#[test]
fn every_fixture_parses_as_expected() {
    let mut seen = vec![];
    for e in std::fs::read_dir(dir()).unwrap() {
        let path = e.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if let Some((_, check)) = OK.iter().find(|(n, _)| *n == name) {
            check(parse(&path).unwrap_or_else(|e| panic!("{name}: {e}")));
        } else if let Some((_, line, msg)) = BAD.iter().find(|(n, ..)| *n == name) {
            let e = parse(&path)
                .err()
                .unwrap_or_else(|| panic!("{name} parsed"));
            assert_eq!(
                (e.path.as_path(), e.line),
                (path.as_path(), *line),
                "{name}: {e}"
            );
            assert!(e.msg.starts_with(msg), "{name}: {:?}", e.msg);
            let shown = e.to_string();
            assert!(
                shown.starts_with(&format!("{}:{line}: ", path.display())),
                "{shown}"
            );
        } else {
            panic!("{name}: no expectation in tests/config.rs");
        }
        seen.push(name);
    }
    assert_eq!(seen.len(), OK.len() + BAD.len());
}

#[test]
fn the_example_in_share_is_valid_and_sets_nothing() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("share/config.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let c = Config::parse(&text, &path).unwrap();
    assert_eq!((c.create, c.run, c.cache_dir), Default::default());
    // Uncommented, every key of it is valid too.
    let on: String = text
        .lines()
        .map(|l| {
            l.strip_prefix('#')
                .filter(|l| l.contains(" = "))
                .unwrap_or(l)
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let c = Config::parse(&on, &path).unwrap_or_else(|e| panic!("{e}\n{on}"));
    assert_eq!(c.create.suite.as_deref(), Some("stable"));
    assert_eq!(c.run.user.map(|u| u.value).as_deref(), Some("builder"));
}

#[test]
fn a_missing_config_file_is_no_error() {
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("missing.toml");
    let out = std::process::Command::new(common::BIN)
        .args(["create", "--help"])
        .env("CHROOT_TOOL_CONFIG", &path)
        .output()
        .unwrap();
    let help = stdout(&out)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(help.contains("[default: stable]"), "{help}");
}

/// The defaults of `run` come from config.toml below tool.conf and the
/// command line; `create --help` shows config.toml's defaults; a
/// malformed file stops `run` and `create` with its name and line, and no
/// other command.
#[test]
fn config_defaults_under_the_command_line_and_tool_conf() {
    let ns = Ns::new();
    let root = ns.busybox_root("sb");
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\ncfg:x:1001:1001::/:/bin/sh\nconf:x:1002:1002::/:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(
        root.join("etc/group"),
        "root:x:0:\ncfg:x:1001:\nconf:x:1002:\n",
    )
    .unwrap();
    std::fs::create_dir_all(root.join("w")).unwrap();
    let cfg = ns.tmp.path().join("config.toml");
    std::fs::write(
        &cfg,
        "[create]\nsuite = \"bookworm\"\ninclude = [\"procps\", \"less\"]\n[run]\nuser = \"cfg\"\nworkdir = \"/w\"\n",
    )
    .unwrap();
    let tool = |args: &[&str]| {
        let mut c = ns.tool();
        c.args(args).env("CHROOT_TOOL_CONFIG", &cfg);
        common::output_within(&mut c, common::DEADLINE)
    };
    let id = |extra: &[&str]| {
        let mut a = vec!["run", "-d", d(&root)];
        a.extend_from_slice(extra);
        a.extend_from_slice(&["--", "sh", "-c", "echo $(id -un) $(pwd)"]);
        ok(&tool(&a)).trim().to_string()
    };
    assert_eq!(id(&[]), "cfg /w");
    assert_eq!(id(&["-u", "root", "-w", "/"]), "root /");
    std::fs::write(root.join("chroot.d/tool.conf"), "[run]\nuser:conf\n").unwrap();
    assert_eq!(id(&[]), "conf /w", "tool.conf's user over config.toml's");

    let help = ok(&tool(&["create", "--help"]));
    let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(help.contains("[default: bookworm]"), "{help}");
    assert!(help.contains("[default: procps,less]"), "{help}");

    // A user unknown inside names config.toml and its line.
    std::fs::write(root.join("chroot.d/tool.conf"), "").unwrap();
    std::fs::write(&cfg, "[run]\n\nuser = \"nobody-here\"\n").unwrap();
    let o = tool(&["run", "-d", d(&root), "--", "true"]);
    assert_eq!(code(&o), 125, "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("{}:3: [run] user", d(&cfg))),
        "{}",
        stderr(&o)
    );

    // Malformed: run and create say the file and line; status still works.
    std::fs::write(&cfg, "[run]\nuser = builder\n").unwrap();
    let o = tool(&["run", "-d", d(&root), "--", "true"]);
    assert_eq!(code(&o), 125, "{}", stderr(&o));
    let want = format!("chroot-tool: {}:2: ", d(&cfg));
    assert!(stderr(&o).starts_with(&want), "{}", stderr(&o));
    let o = tool(&["create", "-d", d(&ns.tmp.path().join("new"))]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).starts_with(&want), "{}", stderr(&o));
    assert!(!ns.tmp.path().join("new").exists());
    // The same with a DIR whose name is not UTF-8 before the word `create`
    // (the value of -d is no subcommand, whatever its bytes).
    let odd = ns.tmp.path().join(std::ffi::OsStr::from_bytes(b"new-\xff"));
    let mut c = ns.tool();
    c.arg("-d")
        .arg(&odd)
        .arg("create")
        .env("CHROOT_TOOL_CONFIG", &cfg);
    let o = common::output_within(&mut c, common::DEADLINE);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).starts_with(&want), "{}", stderr(&o));
    assert!(!odd.exists());
    ok(&tool(&["status", "-d", d(&root)]));
    ok(&tool(&["off", "-d", d(&root)]));
}
