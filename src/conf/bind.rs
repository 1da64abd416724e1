//! `[bind]` records to `BindSpec`s, with the original's defaults.
use super::{BindSpec, FsKind, Record};
use std::path::PathBuf;

pub(crate) const KNOWN_KEYS: &str = "tgt, src, fs, opt, ignore";

fn is_known(key: &str) -> bool {
    matches!(key, "tgt" | "src" | "fs" | "opt" | "ignore")
}

/// The error for the first key of a `[bind]` record that means nothing:
/// it names the key and, when one is near, the key that was meant. A typo
/// must not bring a mount up other than asked (`opts:ro` mounted read-write).
fn unknown_key(rec: &Record) -> Option<String> {
    let (key, _) = rec.pairs.iter().find(|(key, _)| !is_known(key))?;
    let near = ["tgt", "src", "fs", "opt", "ignore"]
        .into_iter()
        .filter(|k| distance(&key.to_ascii_lowercase(), k) <= 2)
        .min_by_key(|k| distance(&key.to_ascii_lowercase(), k));
    let hint = match near {
        Some(k) => format!("did you mean {k}? "),
        None => String::new(),
    };
    Some(format!(
        "unknown key {} in [bind] ({hint}known: {KNOWN_KEYS})",
        crate::show::quote(key)
    ))
}

/// Edit distance (insertions, deletions, substitutions) of two short words.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// Checks one `[bind]` record and applies the defaults; an unknown key is
/// an error. The error is a message for the user; the caller adds the file
/// and the line.
pub(crate) fn to_spec(rec: &Record) -> Result<BindSpec, String> {
    if let Some(msg) = unknown_key(rec) {
        return Err(msg);
    }
    let tgt = rec
        .get("tgt")
        .ok_or_else(|| "tgt is required in a [bind] record (e.g. tgt:/project)".to_string())?;
    let tgt = target(tgt)?;

    let fs = match rec.get("fs") {
        None | Some("bind") => FsKind::Bind,
        Some("bind-ro") => FsKind::BindRo,
        Some("tmpfs") => FsKind::Tmpfs,
        Some(other) => {
            let valid = !other.is_empty()
                && other
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
            if !valid {
                return Err(format!(
                    "fs must be bind, bind-ro, tmpfs or a filesystem type (letters, digits, '.', '_', '-'), found {}",
                    crate::show::quote(other)
                ));
            }
            FsKind::Other(other.to_string())
        }
    };
    let is_bind = matches!(fs, FsKind::Bind | FsKind::BindRo);

    let src = match rec.get("src") {
        Some(src) => {
            if src.contains('\0') {
                return Err("src contains a NUL byte".into());
            }
            if is_bind && !src.starts_with('/') {
                return Err(format!(
                    "src must be an absolute host path for a bind, found {}",
                    crate::show::quote(src)
                ));
            }
            src.to_string()
        }
        None if is_bind => tgt.clone(),
        None => "none".to_string(),
    };

    let opt = match rec.get("opt") {
        Some(opt) => opt.to_string(),
        None => match fs {
            FsKind::Bind | FsKind::BindRo => "private".to_string(),
            FsKind::Tmpfs => "noexec,nosuid,nodev,rw".to_string(),
            FsKind::Other(_) => "defaults".to_string(),
        },
    };

    let ignore = match rec.get("ignore") {
        None => false,
        Some(v) => match v.to_ascii_lowercase().as_str() {
            "yes" | "true" | "1" => true,
            "no" | "false" | "0" => false,
            _ => {
                return Err(format!(
                    "ignore must be yes or no, found {}",
                    crate::show::quote(v)
                ))
            }
        },
    };

    Ok(BindSpec {
        line: rec.line,
        tgt: PathBuf::from(&tgt),
        src,
        fs,
        opt,
        ignore,
    })
}

/// Checks `tgt` and normalises it lexically: `//` collapsed, `.` components
/// and a trailing `/` dropped; `..` is kept for the caller to resolve inside the root.
fn target(tgt: &str) -> Result<String, String> {
    if tgt.contains('\0') {
        return Err("tgt contains a NUL byte".into());
    }
    if !tgt.starts_with('/') {
        return Err(format!(
            "tgt must be an absolute path, found {} (e.g. tgt:/project)",
            crate::show::quote(tgt)
        ));
    }
    let norm = normalize(tgt);
    if norm == "/" {
        return Err(format!(
            "tgt must not be the root itself, found {}",
            crate::show::quote(tgt)
        ));
    }
    Ok(norm)
}

/// Lexical normalisation of an absolute path (see `target`).
pub(crate) fn normalize(path: &str) -> String {
    let parts: Vec<&str> = path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    format!("/{}", parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(list: &[(&str, &str)]) -> Record {
        Record {
            line: 7,
            pairs: list
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn spec(list: &[(&str, &str)]) -> BindSpec {
        to_spec(&rec(list)).unwrap()
    }

    fn err(list: &[(&str, &str)]) -> String {
        to_spec(&rec(list)).unwrap_err()
    }

    #[test]
    fn bind_defaults() {
        let s = spec(&[("tgt", "/project")]);
        assert_eq!(
            s,
            BindSpec {
                line: 7,
                tgt: PathBuf::from("/project"),
                src: "/project".into(),
                fs: FsKind::Bind,
                opt: "private".into(),
                ignore: false,
            }
        );
    }

    #[test]
    fn bind_ro_defaults_like_bind() {
        let s = spec(&[("tgt", "/p"), ("fs", "bind-ro")]);
        assert_eq!(
            (s.fs, s.src.as_str(), s.opt.as_str()),
            (FsKind::BindRo, "/p", "private")
        );
    }

    #[test]
    fn tmpfs_defaults() {
        let s = spec(&[("tgt", "/scratch"), ("fs", "tmpfs")]);
        assert_eq!(s.fs, FsKind::Tmpfs);
        assert_eq!(s.src, "none");
        assert_eq!(s.opt, "noexec,nosuid,nodev,rw");
    }

    #[test]
    fn other_fs_defaults() {
        let s = spec(&[("tgt", "/mnt/x"), ("fs", "fuse.sshfs")]);
        assert_eq!(s.fs, FsKind::Other("fuse.sshfs".into()));
        assert_eq!(s.src, "none");
        assert_eq!(s.opt, "defaults");
    }

    #[test]
    fn explicit_values_win() {
        let s = spec(&[
            ("tgt", "/run"),
            ("src", "/run"),
            ("fs", "bind"),
            ("opt", "default"),
        ]);
        assert_eq!((s.src.as_str(), s.opt.as_str()), ("/run", "default"));
        let s = spec(&[
            ("tgt", "/t"),
            ("fs", "tmpfs"),
            ("src", "scratch"),
            ("opt", "size=1G"),
        ]);
        assert_eq!((s.src.as_str(), s.opt.as_str()), ("scratch", "size=1G"));
        let s = spec(&[("tgt", "/t"), ("opt", "")]);
        assert_eq!(s.opt, "");
    }

    #[test]
    fn invalid_fs_type() {
        assert!(err(&[("tgt", "/t"), ("fs", "my fs")]).starts_with("fs must be"));
        assert!(err(&[("tgt", "/t"), ("fs", "")]).starts_with("fs must be"));
        assert!(err(&[("tgt", "/t"), ("fs", "a/b")]).contains("found \"a/b\""));
    }

    #[test]
    fn tgt_required_and_absolute() {
        assert!(err(&[("src", "/a")]).starts_with("tgt is required"));
        assert_eq!(
            err(&[("tgt", "x")]),
            "tgt must be an absolute path, found \"x\" (e.g. tgt:/project)"
        );
        assert!(err(&[("tgt", "")]).starts_with("tgt must be an absolute path"));
    }

    #[test]
    fn tgt_root_rejected() {
        for root in ["/", "//", "/.", "/./"] {
            assert!(
                err(&[("tgt", root)]).starts_with("tgt must not be the root"),
                "{root}"
            );
        }
    }

    #[test]
    fn tgt_normalised() {
        assert_eq!(normalize("//a//b/"), "/a/b");
        assert_eq!(normalize("/a/./b/."), "/a/b");
        assert_eq!(normalize("/a/../b"), "/a/../b");
        let s = spec(&[("tgt", "/var//cache/./apt/")]);
        assert_eq!(s.tgt, PathBuf::from("/var/cache/apt"));
        assert_eq!(s.src, "/var/cache/apt");
    }

    #[test]
    fn nul_rejected() {
        assert!(err(&[("tgt", "/a\0b")]).contains("NUL"));
        assert!(err(&[("tgt", "/a"), ("src", "/a\0")]).contains("NUL"));
    }

    #[test]
    fn bind_src_must_be_absolute() {
        assert_eq!(
            err(&[("tgt", "/a"), ("src", "home/me")]),
            "src must be an absolute host path for a bind, found \"home/me\""
        );
        assert!(err(&[("tgt", "/a"), ("src", ""), ("fs", "bind-ro")]).starts_with("src must be"));
    }

    #[test]
    fn unknown_key_is_an_error_naming_the_near_one() {
        let r = rec(&[("tgt", "/b"), ("opts", "ro")]);
        assert_eq!(
            to_spec(&r).unwrap_err(),
            "unknown key \"opts\" in [bind] (did you mean opt? known: tgt, src, fs, opt, ignore)"
        );
        assert_eq!(
            err(&[("scr", "/a"), ("tgt", "/b"), ("mode", "x")]),
            "unknown key \"scr\" in [bind] (did you mean src? known: tgt, src, fs, opt, ignore)"
        );
        assert_eq!(
            err(&[("tgt", "/b"), ("mode", "x")]),
            "unknown key \"mode\" in [bind] (known: tgt, src, fs, opt, ignore)"
        );
        assert_eq!(
            err(&[("tgt", "/b"), ("ignroe", "yes")]),
            "unknown key \"ignroe\" in [bind] (did you mean ignore? known: tgt, src, fs, opt, ignore)"
        );
        spec(&[
            ("tgt", "/a"),
            ("src", "/b"),
            ("fs", "bind"),
            ("opt", "x"),
            ("ignore", "no"),
        ]);
        // a misspelt required key is named as what it is
        assert!(
            err(&[("tgr", "/a")]).starts_with("unknown key \"tgr\" in [bind] (did you mean tgt?")
        );
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("kitten", "sitting"), 3);
    }

    #[test]
    fn ignore_values() {
        for v in ["yes", "true", "1", "YES"] {
            assert!(spec(&[("tgt", "/tmp"), ("ignore", v)]).ignore, "{v}");
        }
        for v in ["no", "false", "0"] {
            assert!(!spec(&[("tgt", "/tmp"), ("ignore", v)]).ignore, "{v}");
        }
        assert_eq!(
            err(&[("tgt", "/tmp"), ("ignore", "maybe")]),
            "ignore must be yes or no, found \"maybe\""
        );
        assert!(err(&[("ignore", "yes")]).starts_with("tgt is required"));
    }
}
