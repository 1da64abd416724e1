//! Policy: what `on` mounts. A pure function turns the built-in mounts and
//! tool.conf's `[bind]` records into a plan (a list of operations sorted by
//! target, parents first) that the engine applies and `status` compares with
//! the mount table.
use std::path::{Path, PathBuf};

use crate::conf::{BindSpec, FsKind};
use crate::sys::{Attrs, Propagation};

/// What one operation puts at its target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum What {
    /// A new filesystem instance (`proc`, `sysfs`, `tmpfs`, `devpts`, ...).
    Fs {
        fstype: String,
        source: String,
        /// Filesystem options, `key` or `key=value`.
        options: Vec<String>,
    },
    /// A host path bound in (resolved on the host).
    Bind { src: PathBuf, recursive: bool },
    /// A symlink (made inside a fresh tmpfs such as /dev).
    Symlink { to: PathBuf },
    /// A device node like the host's `src` (`/dev/null`): made in a
    /// filesystem `on` made fresh, where it costs no mount to make and no
    /// unmount to remove; elsewhere (see the engine's `make_node`) `src` is
    /// bound in, as a [`What::Bind`].
    Node { src: PathBuf },
}

/// Where an operation comes from, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Builtin,
    Conf { line: usize },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    /// Absolute path inside the root.
    pub target: PathBuf,
    pub what: What,
    pub attrs: Attrs,
    pub propagation: Propagation,
    pub origin: Origin,
}

impl Op {
    fn builtin_fs(target: &str, fstype: &str, options: &[&str], attrs: u64) -> Op {
        Op {
            target: target.into(),
            what: What::Fs {
                fstype: fstype.into(),
                source: fstype.into(),
                options: options.iter().map(|s| s.to_string()).collect(),
            },
            attrs: Attrs(attrs),
            propagation: Propagation::Private,
            origin: Origin::Builtin,
        }
    }

    fn builtin_bind(target: &str, src: &str) -> Op {
        Op {
            target: target.into(),
            what: What::Bind {
                src: src.into(),
                recursive: false,
            },
            attrs: Attrs(0),
            propagation: Propagation::Private,
            origin: Origin::Builtin,
        }
    }

    fn builtin_node(target: &str, src: &str) -> Op {
        Op {
            what: What::Node { src: src.into() },
            ..Op::builtin_bind(target, src)
        }
    }

    fn symlink(target: &str, to: &str) -> Op {
        Op {
            target: target.into(),
            what: What::Symlink { to: to.into() },
            attrs: Attrs(0),
            propagation: Propagation::Private,
            origin: Origin::Builtin,
        }
    }

    /// Whether the operation always makes a mount (a node is a mount only
    /// when it has to be bound in).
    pub fn is_mount(&self) -> bool {
        matches!(self.what, What::Fs { .. } | What::Bind { .. })
    }

    /// The host path a bind of this operation binds: a bind's source, or the
    /// node a device node is made like (bound where it cannot be made).
    pub fn bind_source(&self) -> Option<(&Path, bool)> {
        match &self.what {
            What::Bind { src, recursive } => Some((src, *recursive)),
            What::Node { src } => Some((src, false)),
            What::Fs { .. } | What::Symlink { .. } => None,
        }
    }

    /// A short description: `tmpfs on /tmp`, `/home/u bound on /home/u (ro)`.
    pub fn describe(&self) -> String {
        let ro = if self.attrs.has(Attrs::RDONLY) {
            " (read-only)"
        } else {
            ""
        };
        match &self.what {
            What::Fs { fstype, .. } => format!("{fstype} on {}{ro}", self.target.display()),
            What::Bind { src, .. } => {
                format!("{} bound on {}{ro}", src.display(), self.target.display())
            }
            What::Symlink { to } => format!("{} -> {}", self.target.display(), to.display()),
            What::Node { src } => {
                format!("device {} on {}", src.display(), self.target.display())
            }
        }
    }

    pub fn origin_note(&self) -> String {
        match self.origin {
            Origin::Builtin => "built-in mount".into(),
            Origin::Conf { line } => format!("tool.conf line {line}"),
        }
    }
}

const NOSUID: u64 = Attrs::NOSUID;
const NODEV: u64 = Attrs::NODEV;
const NOEXEC: u64 = Attrs::NOEXEC;

/// Device nodes made in the fresh /dev like the host's (or bound in).
pub const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// The built-in mounts: fresh proc, read-only sysfs, a tmpfs /dev with the
/// usual device nodes and a new devpts instance, tmpfs /dev/shm, /run and /tmp.
pub fn builtins() -> Vec<Op> {
    let mut ops = vec![
        Op::builtin_fs("/proc", "proc", &[], NOSUID | NODEV | NOEXEC),
        Op::builtin_fs(
            "/sys",
            "sysfs",
            &[],
            Attrs::RDONLY | NOSUID | NODEV | NOEXEC,
        ),
        Op::builtin_fs("/dev", "tmpfs", &["mode=755", "size=4m"], NOSUID | NOEXEC),
        Op::builtin_fs(
            "/dev/pts",
            "devpts",
            &["newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
            NOSUID | NOEXEC,
        ),
        Op::builtin_fs("/dev/shm", "tmpfs", &["mode=1777"], NOSUID | NODEV),
        Op::builtin_fs("/run", "tmpfs", &["mode=755"], NOSUID | NODEV),
        Op::builtin_fs("/tmp", "tmpfs", &["mode=1777"], NOSUID | NODEV),
        Op::symlink("/dev/ptmx", "pts/ptmx"),
        Op::symlink("/dev/fd", "/proc/self/fd"),
        Op::symlink("/dev/stdin", "/proc/self/fd/0"),
        Op::symlink("/dev/stdout", "/proc/self/fd/1"),
        Op::symlink("/dev/stderr", "/proc/self/fd/2"),
        Op::symlink("/dev/core", "/proc/kcore"),
    ];
    for d in DEVICES {
        ops.push(Op::builtin_node(&format!("/dev/{d}"), &format!("/dev/{d}")));
    }
    ops
}

/// Why a `[bind]` record cannot be planned.
#[derive(Debug, thiserror::Error)]
#[error("tool.conf line {line}: {msg}")]
pub struct PlanError {
    pub line: usize,
    pub msg: String,
}

/// Mount options split into per-mount attributes, propagation, recursion and
/// filesystem options.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ParsedOptions {
    pub attrs: Attrs,
    pub propagation: Option<Propagation>,
    pub recursive: bool,
    pub fs_options: Vec<String>,
}

/// Splits an `opt:` value. For binds every word must be a mount attribute;
/// for other filesystems unknown words are handed to the filesystem, which
/// rejects what it does not know.
pub fn parse_options(opt: &str, bind: bool) -> Result<ParsedOptions, String> {
    let mut p = ParsedOptions::default();
    for word in opt.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        let a = &mut p.attrs.0;
        match word {
            "default" | "defaults" | "rw" | "suid" | "dev" | "exec" | "async" | "relatime" | "atime"
            | "diratime" => {}
            "ro" => *a |= Attrs::RDONLY,
            "nosuid" => *a |= Attrs::NOSUID,
            "nodev" => *a |= Attrs::NODEV,
            "noexec" => *a |= Attrs::NOEXEC,
            "noatime" => *a |= Attrs::NOATIME,
            "strictatime" => *a |= Attrs::STRICTATIME,
            "nodiratime" => *a |= Attrs::NODIRATIME,
            "nosymfollow" => *a |= Attrs::NOSYMFOLLOW,
            "private" | "rprivate" => p.propagation = Some(Propagation::Private),
            "slave" | "rslave" => p.propagation = Some(Propagation::Slave),
            "shared" | "rshared" => {
                return Err(format!(
                    "option {} would share mounts with the host; use private or slave",
                    crate::show::quote(word)
                ))
            }
            "bind" if bind => {}
            "rbind" if bind => p.recursive = true,
            "remount" | "move" | "bind" | "rbind" => {
                return Err(format!("option {} is not allowed here", crate::show::quote(word)))
            }
            _ if bind => {
                return Err(format!(
                    "unknown mount option {} for a bind (known: ro, nosuid, nodev, noexec, noatime, nodiratime, strictatime, nosymfollow, private, slave, rbind)",
                    crate::show::quote(word)
                ))
            }
            _ => p.fs_options.push(word.to_string()),
        }
    }
    Ok(p)
}

/// Builds the plan: built-ins, replaced or dropped by tool.conf records for
/// the same target, plus the records' own mounts; `resolv_conf` is the
/// host's resolver file, bound last (its target may lie in /run).
/// `filesystems` is the kernel's list (/proc/filesystems) to check `fs:` against.
pub fn build(
    binds: &[BindSpec],
    resolv_conf: Option<&Path>,
    filesystems: &str,
) -> Result<Vec<Op>, PlanError> {
    let known: Vec<&str> = filesystems
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .collect();
    let mut ops = builtins();
    for b in binds {
        let err = |msg: String| PlanError { line: b.line, msg };
        let under = |o: &Op| o.target == b.tgt;
        ops.retain(|o| !under(o));
        if b.ignore {
            continue;
        }
        let bind = matches!(b.fs, FsKind::Bind | FsKind::BindRo);
        let parsed = parse_options(&b.opt, bind).map_err(err)?;
        let what = match &b.fs {
            FsKind::Bind | FsKind::BindRo => {
                let src = PathBuf::from(&b.src);
                if !src.is_absolute() {
                    return Err(err(format!(
                        "src must be an absolute host path, found {}",
                        crate::show::quote(&b.src)
                    )));
                }
                What::Bind {
                    src,
                    recursive: parsed.recursive,
                }
            }
            FsKind::Tmpfs => What::Fs {
                fstype: "tmpfs".into(),
                source: b.src.clone(),
                options: parsed.fs_options.clone(),
            },
            FsKind::Other(t) => {
                if !known.contains(&t.as_str()) {
                    return Err(err(format!(
                        "unknown filesystem type {} (this kernel knows: {})",
                        crate::show::quote(t),
                        known.join(", ")
                    )));
                }
                What::Fs {
                    fstype: t.clone(),
                    source: b.src.clone(),
                    options: parsed.fs_options.clone(),
                }
            }
        };
        let mut attrs = parsed.attrs;
        if b.fs == FsKind::BindRo {
            attrs.0 |= Attrs::RDONLY;
        }
        if bind && !parsed.fs_options.is_empty() {
            return Err(err("filesystem options on a bind".into()));
        }
        ops.push(Op {
            target: b.tgt.clone(),
            what,
            attrs,
            propagation: parsed.propagation.unwrap_or(Propagation::Private),
            origin: Origin::Conf { line: b.line },
        });
    }
    sort(&mut ops);
    if let Some(rc) = resolv_conf {
        let tgt = Path::new("/etc/resolv.conf");
        if !binds.iter().any(|b| b.tgt == tgt) {
            let mut op = Op::builtin_bind("/etc/resolv.conf", "/");
            op.what = What::Bind {
                src: rc.to_path_buf(),
                recursive: false,
            };
            // Read-only: nothing inside may rewrite the host's resolver file.
            op.attrs = Attrs(Attrs::RDONLY | NOSUID | NODEV | NOEXEC);
            ops.push(op);
        }
    }
    Ok(ops)
}

/// Parents before children; among siblings, by name.
fn sort(ops: &mut [Op]) {
    ops.sort_by(|a, b| a.target.components().cmp(b.target.components()));
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILESYSTEMS: &str = "nodev\tsysfs\nnodev\ttmpfs\nnodev\tproc\n\text4\nnodev\toverlay\n";

    fn spec(line: usize, tgt: &str, src: &str, fs: FsKind, opt: &str) -> BindSpec {
        BindSpec {
            line,
            tgt: tgt.into(),
            src: src.into(),
            fs,
            opt: opt.into(),
            ignore: false,
        }
    }

    fn targets(ops: &[Op]) -> Vec<String> {
        ops.iter().map(|o| o.target.display().to_string()).collect()
    }

    #[test]
    fn builtins_sorted_parents_first() {
        let ops = build(&[], None, FILESYSTEMS).unwrap();
        let t = targets(&ops);
        let pos = |p: &str| t.iter().position(|x| x == p).unwrap();
        assert!(pos("/dev") < pos("/dev/pts"));
        assert!(pos("/dev") < pos("/dev/null"));
        assert!(pos("/dev/pts") < pos("/dev/ptmx") || pos("/dev/ptmx") > pos("/dev"));
        assert!(pos("/proc") < pos("/sys"));
        let sys = &ops[pos("/sys")];
        assert!(sys.attrs.has(Attrs::RDONLY));
        assert!(
            matches!(&ops[pos("/dev/pts")].what, What::Fs { fstype, options, .. } if fstype == "devpts" && options.iter().any(|o| o == "ptmxmode=0666"))
        );
    }

    #[test]
    fn resolv_conf_comes_last() {
        let ops = build(
            &[spec(1, "/srv", "/srv", FsKind::Bind, "private")],
            Some(Path::new("/run/resolv.conf")),
            FILESYSTEMS,
        )
        .unwrap();
        assert_eq!(ops.last().unwrap().target, Path::new("/etc/resolv.conf"));
        assert!(ops.last().unwrap().attrs.has(Attrs::RDONLY));
        assert!(
            matches!(&ops.last().unwrap().what, What::Bind { src, .. } if src == Path::new("/run/resolv.conf"))
        );
    }

    #[test]
    fn conf_record_replaces_builtin() {
        let ops = build(
            &[spec(3, "/run", "/run", FsKind::Bind, "default")],
            None,
            FILESYSTEMS,
        )
        .unwrap();
        let run: Vec<_> = ops
            .iter()
            .filter(|o| o.target == Path::new("/run"))
            .collect();
        assert_eq!(run.len(), 1);
        assert!(matches!(&run[0].what, What::Bind { src, .. } if src == Path::new("/run")));
        assert_eq!(run[0].origin, Origin::Conf { line: 3 });
    }

    #[test]
    fn ignore_drops_builtin() {
        let mut s = spec(2, "/tmp", "/tmp", FsKind::Bind, "private");
        s.ignore = true;
        let ops = build(&[s], None, FILESYSTEMS).unwrap();
        assert!(!targets(&ops).contains(&"/tmp".to_string()));
        assert!(targets(&ops).contains(&"/run".to_string()));
    }

    #[test]
    fn bind_ro_and_options() {
        let ops = build(
            &[spec(
                1,
                "/data",
                "/srv/data",
                FsKind::BindRo,
                "nosuid,slave",
            )],
            None,
            FILESYSTEMS,
        )
        .unwrap();
        let d = ops.iter().find(|o| o.target == Path::new("/data")).unwrap();
        assert!(d.attrs.has(Attrs::RDONLY) && d.attrs.has(Attrs::NOSUID));
        assert_eq!(d.propagation, Propagation::Slave);
    }

    #[test]
    fn tmpfs_options_go_to_the_filesystem() {
        let ops = build(
            &[spec(
                1,
                "/cache",
                "none",
                FsKind::Tmpfs,
                "noexec,nosuid,nodev,rw,size=10m",
            )],
            None,
            FILESYSTEMS,
        )
        .unwrap();
        let c = ops
            .iter()
            .find(|o| o.target == Path::new("/cache"))
            .unwrap();
        assert!(c.attrs.has(Attrs::NOEXEC));
        assert!(
            matches!(&c.what, What::Fs { fstype, options, .. } if fstype == "tmpfs" && options == &vec!["size=10m".to_string()])
        );
    }

    #[test]
    fn errors_name_the_line() {
        let e = build(
            &[spec(7, "/x", "/y", FsKind::Bind, "bogus")],
            None,
            FILESYSTEMS,
        )
        .unwrap_err();
        assert_eq!(e.line, 7);
        assert!(e.msg.contains("bogus"));
        let e = build(
            &[spec(
                4,
                "/x",
                "none",
                FsKind::Other("nosuchfs".into()),
                "defaults",
            )],
            None,
            FILESYSTEMS,
        )
        .unwrap_err();
        assert!(e.to_string().contains("line 4") && e.msg.contains("nosuchfs"));
        let e = build(
            &[spec(5, "/x", "rel/path", FsKind::Bind, "private")],
            None,
            FILESYSTEMS,
        )
        .unwrap_err();
        assert!(e.msg.contains("absolute"));
        assert!(build(
            &[spec(6, "/x", "/y", FsKind::Bind, "rshared")],
            None,
            FILESYSTEMS
        )
        .is_err());
        assert!(build(
            &[spec(
                6,
                "/x",
                "none",
                FsKind::Other("overlay".into()),
                "lowerdir=/a"
            )],
            None,
            FILESYSTEMS
        )
        .is_ok());
    }

    fn attrs_only(bits: u64) -> ParsedOptions {
        ParsedOptions {
            attrs: Attrs(bits),
            ..Default::default()
        }
    }

    #[test]
    fn each_attribute_option_sets_exactly_its_bit() {
        let table = [
            ("ro", Attrs::RDONLY),
            ("nosuid", Attrs::NOSUID),
            ("nodev", Attrs::NODEV),
            ("noexec", Attrs::NOEXEC),
            ("noatime", Attrs::NOATIME),
            ("strictatime", Attrs::STRICTATIME),
            ("nodiratime", Attrs::NODIRATIME),
            ("nosymfollow", Attrs::NOSYMFOLLOW),
        ];
        for bind in [true, false] {
            for (word, bit) in table {
                assert_eq!(
                    parse_options(word, bind),
                    Ok(attrs_only(bit)),
                    "{word} (bind: {bind})"
                );
            }
        }
        // Several words add up; blanks and empty words are skipped.
        assert_eq!(
            parse_options(" ro , ,nosuid,noatime,nosymfollow,", true),
            Ok(attrs_only(
                Attrs::RDONLY | Attrs::NOSUID | Attrs::NOATIME | Attrs::NOSYMFOLLOW
            ))
        );
        assert_eq!(parse_options("", true), Ok(ParsedOptions::default()));
    }

    #[test]
    fn default_words_set_nothing() {
        for bind in [true, false] {
            for word in [
                "default", "defaults", "rw", "suid", "dev", "exec", "async", "relatime", "atime",
                "diratime",
            ] {
                assert_eq!(
                    parse_options(word, bind),
                    Ok(ParsedOptions::default()),
                    "{word} (bind: {bind})"
                );
            }
        }
    }

    #[test]
    fn propagation_options() {
        for bind in [true, false] {
            for (word, want) in [
                ("private", Propagation::Private),
                ("rprivate", Propagation::Private),
                ("slave", Propagation::Slave),
                ("rslave", Propagation::Slave),
            ] {
                assert_eq!(
                    parse_options(word, bind),
                    Ok(ParsedOptions {
                        propagation: Some(want),
                        ..Default::default()
                    }),
                    "{word} (bind: {bind})"
                );
            }
            // The last word wins.
            assert_eq!(
                parse_options("slave,private", bind).unwrap().propagation,
                Some(Propagation::Private)
            );
            for word in ["shared", "rshared"] {
                assert_eq!(
                    parse_options(&format!("ro,{word}"), bind),
                    Err(format!(
                        "option \"{word}\" would share mounts with the host; use private or slave"
                    )),
                    "{word} (bind: {bind})"
                );
            }
        }
    }

    #[test]
    fn bind_and_rbind_only_for_binds() {
        assert_eq!(parse_options("bind", true), Ok(ParsedOptions::default()));
        assert_eq!(
            parse_options("rbind", true),
            Ok(ParsedOptions {
                recursive: true,
                ..Default::default()
            })
        );
        for word in ["bind", "rbind"] {
            assert_eq!(
                parse_options(word, false),
                Err(format!("option \"{word}\" is not allowed here"))
            );
        }
        for bind in [true, false] {
            for word in ["remount", "move"] {
                assert_eq!(
                    parse_options(&format!("nodev,{word}"), bind),
                    Err(format!("option \"{word}\" is not allowed here")),
                    "{word} (bind: {bind})"
                );
            }
        }
    }

    #[test]
    fn unknown_words_refused_for_binds_kept_for_filesystems() {
        let e = parse_options("ro,size=10m", true).unwrap_err();
        assert!(
            e.starts_with("unknown mount option \"size=10m\" for a bind (known: ro, "),
            "{e}"
        );
        assert_eq!(
            parse_options("ro,size=10m,mode=0755", false),
            Ok(ParsedOptions {
                attrs: Attrs(Attrs::RDONLY),
                fs_options: vec!["size=10m".into(), "mode=0755".into()],
                ..Default::default()
            })
        );
    }

    #[test]
    fn symlinks_and_device_nodes_are_not_mounts() {
        let ops = builtins();
        let find = |t: &str| ops.iter().find(|o| o.target == Path::new(t)).unwrap();
        assert!(find("/proc").is_mount());
        assert!(!find("/dev/null").is_mount());
        assert_eq!(
            find("/dev/null").bind_source(),
            Some((Path::new("/dev/null"), false))
        );
        assert!(!find("/dev/ptmx").is_mount());
        assert!(!find("/dev/fd").is_mount());
        assert_eq!(
            ops.iter().filter(|o| !o.is_mount()).count(),
            ops.iter()
                .filter(|o| matches!(o.what, What::Symlink { .. } | What::Node { .. }))
                .count()
        );
    }

    #[test]
    fn describe_and_origin_note() {
        let ops = build(
            &[spec(3, "/data", "/srv/data", FsKind::BindRo, "nosuid")],
            Some(Path::new("/run/systemd/resolve/resolv.conf")),
            FILESYSTEMS,
        )
        .unwrap();
        let find = |t: &str| ops.iter().find(|o| o.target == Path::new(t)).unwrap();
        assert_eq!(find("/tmp").describe(), "tmpfs on /tmp");
        assert_eq!(find("/sys").describe(), "sysfs on /sys (read-only)");
        assert_eq!(
            find("/dev/null").describe(),
            "device /dev/null on /dev/null"
        );
        assert_eq!(find("/dev/ptmx").describe(), "/dev/ptmx -> pts/ptmx");
        assert_eq!(
            find("/data").describe(),
            "/srv/data bound on /data (read-only)"
        );
        assert_eq!(
            find("/etc/resolv.conf").describe(),
            "/run/systemd/resolve/resolv.conf bound on /etc/resolv.conf (read-only)"
        );
        assert_eq!(find("/tmp").origin_note(), "built-in mount");
        assert_eq!(find("/etc/resolv.conf").origin_note(), "built-in mount");
        assert_eq!(find("/data").origin_note(), "tool.conf line 3");
    }

    #[test]
    fn resolv_conf_is_read_only_nosuid_nodev_noexec() {
        let ops = build(&[], Some(Path::new("/etc/resolv.conf")), FILESYSTEMS).unwrap();
        let rc = ops.last().unwrap();
        assert_eq!(rc.target, Path::new("/etc/resolv.conf"));
        assert_eq!(
            rc.attrs,
            Attrs(Attrs::RDONLY | Attrs::NOSUID | Attrs::NODEV | Attrs::NOEXEC)
        );
        assert_eq!(rc.propagation, Propagation::Private);
        assert_eq!(rc.origin, Origin::Builtin);
        // A record for /etc/resolv.conf replaces the host's file.
        let ops = build(
            &[spec(2, "/etc/resolv.conf", "/srv/rc", FsKind::Bind, "")],
            Some(Path::new("/etc/resolv.conf")),
            FILESYSTEMS,
        )
        .unwrap();
        let rc: Vec<_> = ops
            .iter()
            .filter(|o| o.target == Path::new("/etc/resolv.conf"))
            .collect();
        assert_eq!(rc.len(), 1);
        assert_eq!(rc[0].origin, Origin::Conf { line: 2 });
    }

    #[test]
    fn plan_is_sorted_parents_first_siblings_by_name() {
        // Records given children first, after the built-ins.
        let ops = build(
            &[
                spec(1, "/srv/a/b", "/h/b", FsKind::Bind, ""),
                spec(2, "/srv/a-b", "/h/ab", FsKind::Bind, ""),
                spec(3, "/srv/a", "/h/a", FsKind::Bind, ""),
                spec(4, "/dev/pts/x", "/h/x", FsKind::Bind, ""),
                spec(5, "/a", "/h/root-a", FsKind::Bind, ""),
            ],
            None,
            FILESYSTEMS,
        )
        .unwrap();
        assert_eq!(
            targets(&ops),
            [
                "/a",
                "/dev",
                "/dev/core",
                "/dev/fd",
                "/dev/full",
                "/dev/null",
                "/dev/ptmx",
                "/dev/pts",
                "/dev/pts/x",
                "/dev/random",
                "/dev/shm",
                "/dev/stderr",
                "/dev/stdin",
                "/dev/stdout",
                "/dev/tty",
                "/dev/urandom",
                "/dev/zero",
                "/proc",
                "/run",
                "/srv/a",
                "/srv/a/b",
                "/srv/a-b",
                "/sys",
                "/tmp",
            ]
        );
        // Whatever the names: no operation comes after one below it.
        for (i, a) in ops.iter().enumerate() {
            for b in &ops[..i] {
                assert!(
                    !b.target.starts_with(&a.target),
                    "{} after {}",
                    a.target.display(),
                    b.target.display()
                );
            }
        }
    }
}
