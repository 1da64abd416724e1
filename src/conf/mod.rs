//! tool.conf: the original chroot-tool's format, kept exactly, plus `#` comments.
//! Pure: text in, records out; every error names the file, the line and what is wrong.
//!
//! - Lines are trimmed; blank lines and lines starting with `#` are skipped
//!   (a `#` later in a line is an ordinary character).
//! - `[name]` starts a section (`bind`, `exclude`, `limits`, `run`); lines
//!   before the first section are ignored; a repeated section continues the
//!   earlier one. Any other `[letters]` section is skipped with its lines, as
//!   the original did, with a warning.
//! - Record sections hold `key:value` pairs (see [`Record`]); `[exclude]`
//!   holds one path per line, optionally `"quoted"`. An unknown key in a
//!   `[bind]` record is an error naming it and the key it is near (the
//!   original ignored it silently, and `opts:ro` came up read-write).
use std::collections::BTreeMap;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

/// At most this much of a `tool.conf` is read (it is a short text file).
pub const CONF_CAP: usize = 1 << 20;

mod bind;
pub mod config;
mod record;
mod run;

pub use config::Config;
pub use record::Record;
pub use run::{is_user_spec, NsSet, RunConf, Setting, APPLIED as RUN_APPLIED};

/// The sections tool.conf may have.
pub const SECTIONS: [&str; 4] = ["bind", "exclude", "limits", "run"];

/// An error in tool.conf, shown as `FILE:LINE: what is wrong`.
#[derive(Debug, thiserror::Error)]
#[error("{}:{line}: {msg}", crate::show::path(path))]
pub struct ConfError {
    pub path: PathBuf,
    pub line: usize,
    pub msg: String,
}

/// What kind of mount a `[bind]` record asks for (`fs:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FsKind {
    Bind,
    BindRo,
    Tmpfs,
    /// Any other filesystem type, mounted with that type.
    Other(String),
}

/// One `[bind]` record with the original's defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindSpec {
    /// Line in tool.conf (1-based) the record came from.
    pub line: usize,
    /// Absolute path inside the root.
    pub tgt: PathBuf,
    /// Host path for binds (default: `tgt`); `none` for tmpfs by default.
    pub src: String,
    pub fs: FsKind,
    /// Mount options as written (default `private` for binds, `noexec,nosuid,nodev,rw` for tmpfs).
    pub opt: String,
    /// `ignore:yes`: drop this mount point, built-in ones too.
    pub ignore: bool,
}

/// A parsed tool.conf.
#[derive(Debug, Clone, Default)]
pub struct Conf {
    pub path: PathBuf,
    pub binds: Vec<BindSpec>,
    pub excludes: Vec<String>,
    /// The records of every record section (`bind`, `limits`, `run`) by
    /// name, in file order; read them with [`Conf::section`].
    pub sections: BTreeMap<String, Vec<Record>>,
    /// What `[run]` sets that this version applies.
    pub run: RunConf,
    /// What `[limits]` sets (the last record that sets a key wins).
    pub limits: crate::cgroup::Limits,
    /// What was ignored for compatibility with the original (unknown
    /// sections, unknown `[bind]` keys), each `FILE:LINE: what; what to do`.
    pub warnings: Vec<String>,
}

impl Conf {
    /// Parses the text of a tool.conf; `path` is only used in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Conf, ConfError> {
        let mut conf = Conf {
            path: path.to_path_buf(),
            ..Conf::default()
        };
        let mut section: Option<&'static str> = None;
        for (idx, raw) in text.lines().enumerate() {
            let line = idx + 1;
            let err = |msg: String| ConfError {
                path: path.to_path_buf(),
                line,
                msg,
            };
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            if trimmed.starts_with('[') {
                let name = header(trimmed).map_err(err)?;
                section = SECTIONS.iter().find(|s| **s == name).copied();
                if section.is_none() {
                    conf.warn(
                        line,
                        format!(
                            "unknown section [{}] ignored with its lines (known: {})",
                            crate::show::bytes(name.as_bytes()),
                            SECTIONS.join(", ")
                        ),
                    );
                }
                continue;
            }
            match section {
                None => {}
                Some("exclude") => conf.excludes.push(exclude_path(trimmed).map_err(err)?),
                Some(name) => {
                    for pairs in record::parse_line(trimmed).map_err(err)? {
                        let rec = Record { line, pairs };
                        if name == "bind" {
                            conf.binds.push(bind::to_spec(&rec).map_err(err)?);
                        }
                        if name == "run" {
                            conf.run.take(&rec).map_err(err)?;
                        }
                        if name == "limits" {
                            for (k, v) in &rec.pairs {
                                conf.limits
                                    .set(k, v)
                                    .map_err(|e| err(format!("[limits] {e}")))?;
                            }
                        }
                        conf.sections.entry(name.to_string()).or_default().push(rec);
                    }
                }
            }
        }
        Ok(conf)
    }

    /// Reads and parses `chroot_d/tool.conf`; `Ok(None)` when there is none.
    /// A file that cannot be read is an error at line 0.
    pub fn load(chroot_d: &Path) -> Result<Option<Conf>, ConfError> {
        let path = chroot_d.join("tool.conf");
        let read = crate::sys::open_root(chroot_d)
            .map_err(crate::sys::ReadError::from)
            .and_then(|d| crate::sys::read_in_root(d.as_fd(), Path::new("tool.conf"), CONF_CAP));
        Conf::from_read(read, path)
    }

    /// Reads and parses the `chroot.d/tool.conf` of the sandbox `dir`, the
    /// path resolved inside the root (a symlink never leads to the host's
    /// files); a file that is not regular (a FIFO, a device) or larger than
    /// [`CONF_CAP`] is an error naming it, and nothing blocks.
    pub fn load_in_root(dir: &Path) -> Result<Option<Conf>, ConfError> {
        let path = dir.join("chroot.d/tool.conf");
        let read = crate::sys::open_root(dir)
            .map_err(crate::sys::ReadError::from)
            .and_then(|d| {
                crate::sys::read_in_root(d.as_fd(), Path::new("/chroot.d/tool.conf"), CONF_CAP)
            });
        Conf::from_read(read, path)
    }

    fn from_read(
        read: Result<Option<Vec<u8>>, crate::sys::ReadError>,
        path: PathBuf,
    ) -> Result<Option<Conf>, ConfError> {
        let bytes = match read {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Ok(None),
            Err(e) => {
                return Err(ConfError {
                    path,
                    line: 0,
                    msg: format!("cannot read: {e}"),
                })
            }
        };
        let text = match std::str::from_utf8(&bytes) {
            Ok(text) => text,
            Err(e) => {
                let line = 1 + bytes[..e.valid_up_to()]
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count();
                return Err(ConfError {
                    path,
                    line,
                    msg: "not valid UTF-8 text (save tool.conf as UTF-8)".into(),
                });
            }
        };
        Conf::parse(text, &path).map(Some)
    }

    /// Adds a warning for `line`, once.
    fn warn(&mut self, line: usize, msg: String) {
        let w = format!("{}:{line}: {msg}", crate::show::path(&self.path));
        if !self.warnings.contains(&w) {
            self.warnings.push(w);
        }
    }

    /// The records of a record section (`bind`, `limits`, `run`), in file
    /// order; empty when the section is absent. `[exclude]` is in `excludes`.
    pub fn section(&self, name: &str) -> &[Record] {
        self.sections.get(name).map_or(&[], Vec::as_slice)
    }
}

/// Checks a `[name]` line (name: ASCII letters) and returns the name.
fn header(trimmed: &str) -> Result<&str, String> {
    trimmed
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .filter(|name| !name.is_empty() && name.chars().all(|c| c.is_ascii_alphabetic()))
        .ok_or_else(|| {
            format!(
                "malformed section header {} (expected [name], one of: {})",
                crate::show::quote(trimmed),
                SECTIONS.join(", ")
            )
        })
}

/// One `[exclude]` line: the path as written, without surrounding quotes.
fn exclude_path(trimmed: &str) -> Result<String, String> {
    let path = if let Some(rest) = trimmed.strip_prefix('"') {
        rest.strip_suffix('"').ok_or_else(|| {
            "unterminated quote (a path opened with \" must close with \" at the end of the line)"
                .to_string()
        })?
    } else {
        trimmed
    };
    if path.is_empty() {
        return Err("empty path in [exclude]".into());
    }
    if path.contains('\0') {
        return Err("path contains a NUL byte".into());
    }
    Ok(path.to_string())
}

/// When `chroot_d/conf.sh` (the original's shell configuration) is present:
/// a one-line notice that it is not executed and how to move its records.
pub fn conf_sh_notice(root: BorrowedFd, chroot_d: &Path) -> Option<String> {
    let conf_sh = chroot_d.join("conf.sh");
    // Looked for inside the root, never read.
    let cd = crate::sys::resolve_in_root(root, Path::new("/chroot.d")).ok()?;
    crate::sys::entry_at(cd.as_fd(), std::ffi::OsStr::new("conf.sh")).ok()?;
    Some(format!(
        "{} is not executed (shell code is no longer run): move each record of its BINDINGS \
         variables, e.g. \"src:/host/dir tgt:/dir\", to its own line in the [bind] section of {}, \
         then delete conf.sh",
        crate::show::path(&conf_sh),
        crate::show::path(chroot_d.join("tool.conf"))
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Conf {
        Conf::parse(text, Path::new("/x/chroot.d/tool.conf")).unwrap()
    }

    fn err(text: &str) -> ConfError {
        Conf::parse(text, Path::new("/x/chroot.d/tool.conf")).unwrap_err()
    }

    fn tgts(conf: &Conf) -> Vec<String> {
        conf.binds
            .iter()
            .map(|b| b.tgt.display().to_string())
            .collect()
    }

    #[test]
    fn empty_text() {
        let c = parse("");
        assert!(c.binds.is_empty() && c.excludes.is_empty() && c.sections.is_empty());
        assert_eq!(c.path, PathBuf::from("/x/chroot.d/tool.conf"));
    }

    #[test]
    fn original_example() {
        let c = parse(
            "[bind]\nsrc:/home/user/project tgt:/project\n\
             src:/var/cache/apt tgt: /var/cache/apt ; tgt:/run src:/run fs:bind opt:default\n",
        );
        assert_eq!(tgts(&c), ["/project", "/var/cache/apt", "/run"]);
        assert_eq!(c.binds[0].src, "/home/user/project");
        assert_eq!(c.binds[0].line, 2);
        assert_eq!(c.binds[2].line, 3);
        assert_eq!(c.binds[2].opt, "default");
        assert_eq!(c.section("bind").len(), 3);
    }

    #[test]
    fn lines_trimmed_blank_and_comments_skipped() {
        let c = parse("\n  [bind]  \n\n  # a comment\n\t tgt:/a \t\n#tgt:/b\n");
        assert_eq!(tgts(&c), ["/a"]);
        assert_eq!(c.binds[0].line, 5);
    }

    #[test]
    fn hash_inside_a_line_is_literal() {
        let c = parse("[bind]\ntgt:/a#b\n");
        assert_eq!(tgts(&c), ["/a#b"]);
    }

    #[test]
    fn lines_before_first_section_ignored() {
        let c = parse("whatever this is\nfoo bar\n[bind]\ntgt:/a\n");
        assert_eq!(tgts(&c), ["/a"]);
    }

    #[test]
    fn repeated_section_appends() {
        let c = parse("[bind]\ntgt:/a\n[exclude]\n/x\n[bind]\ntgt:/b\n[exclude]\n/y\n");
        assert_eq!(tgts(&c), ["/a", "/b"]);
        assert_eq!(c.excludes, ["/x", "/y"]);
    }

    #[test]
    fn unknown_section_skipped_with_a_warning() {
        // Its lines are not read at all, as in the original: not even for syntax.
        let c = parse("[bind]\ntgt:/a\n[mounts]\ntgt:/b\nnot a record \"\n[bind]\ntgt:/c\n");
        assert_eq!(tgts(&c), ["/a", "/c"]);
        assert_eq!(c.section("mounts"), []);
        assert!(!c.sections.contains_key("mounts"));
        assert_eq!(
            c.warnings,
            [
                "/x/chroot.d/tool.conf:3: unknown section [mounts] ignored with its lines \
              (known: bind, exclude, limits, run)"
            ]
        );
        // Section names are case-sensitive, as in the original.
        let c = parse("[Bind]\ntgt:/a\n");
        assert!(c.binds.is_empty());
        assert_eq!(c.warnings.len(), 1);
        assert!(c.warnings[0].contains(":1: unknown section [Bind] ignored"));
    }

    #[test]
    fn known_files_have_no_warnings() {
        let c =
            parse("[bind]\ntgt:/a src:/b fs:bind opt:x ignore:no\n[exclude]\n/e\n[run]\nuser:me\n");
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    #[test]
    fn malformed_header() {
        for h in ["[bind", "[ bind ]", "[]", "[bind] x", "[bind2]"] {
            let e = err(&format!("\n{h}\n"));
            assert_eq!(e.line, 2, "{h}");
            assert!(
                e.msg.starts_with("malformed section header"),
                "{h}: {}",
                e.msg
            );
        }
    }

    #[test]
    fn errors_carry_file_and_line() {
        let e = err("[bind]\ntgt:/a\n\nfoo\n");
        assert_eq!(e.line, 4);
        assert_eq!(e.path, PathBuf::from("/x/chroot.d/tool.conf"));
        assert_eq!(
            e.to_string(),
            "/x/chroot.d/tool.conf:4: expected key:value, found \"foo\""
        );
    }

    #[test]
    fn bind_errors_carry_line() {
        let e = err("[bind]\ntgt:/a ; src:/b\n");
        assert_eq!(e.line, 2);
        assert!(e.msg.starts_with("tgt is required"));
        let e = err("[bind]\ntgt:/a\ntgt:/b fs:\"a b\"\n");
        assert_eq!(e.line, 3);
        assert!(e.msg.starts_with("fs must be"), "{}", e.msg);
    }

    #[test]
    fn unknown_bind_key_is_an_error_with_the_near_one() {
        for (text, line, msg) in [
            (
                "[bind]\ntgt:/a\ntgt:/b opts:ro\n",
                3,
                "unknown key \"opts\" in [bind] (did you mean opt? known: tgt, src, fs, opt, ignore)",
            ),
            (
                "[bind]\nscr:/b tgt:/b\n",
                2,
                "unknown key \"scr\" in [bind] (did you mean src? known: tgt, src, fs, opt, ignore)",
            ),
            (
                "[bind]\ntgt:/a ; tgt:/c FS:tmpfs\n",
                2,
                "unknown key \"FS\" in [bind] (did you mean fs? known: tgt, src, fs, opt, ignore)",
            ),
            (
                "[bind]\nmode:ro tgt:/e\n",
                2,
                "unknown key \"mode\" in [bind] (known: tgt, src, fs, opt, ignore)",
            ),
        ] {
            let e = err(text);
            assert_eq!((e.line, e.msg.as_str()), (line, msg), "{text:?}");
        }
        // [limits] and [run] keep any key: no warning there.
        assert!(parse("[run]\nscr:/b\n").warnings.is_empty());
    }

    #[test]
    fn limits_and_run_keep_records() {
        let c = parse(
            "[limits]\nmemory:512M cpus:1.5 pids:256\n[run]\nuser:me net:none ; workdir:/w\n",
        );
        let limits = c.section("limits");
        assert_eq!(limits.len(), 1);
        assert_eq!(limits[0].line, 2);
        assert_eq!(limits[0].get("cpus"), Some("1.5"));
        let run = c.section("run");
        assert_eq!(run.len(), 2);
        assert_eq!(run[1].get("workdir"), Some("/w"));
        assert!(c.section("bind").is_empty());
        assert!(c.section("nope").is_empty());
    }

    #[test]
    fn limits_and_run_check_record_syntax_only() {
        let c = parse("[run]\nanything:goes x:\"\"\n");
        assert_eq!(c.run, RunConf::default());
        assert_eq!(c.section("run")[0].get("anything"), Some("goes"));
        let e = err("[limits]\nmemory 512M\n");
        assert_eq!(e.line, 2);
        assert!(e.msg.starts_with("expected key:value"));
    }

    #[test]
    fn run_defaults_parsed_and_checked() {
        let c = parse("[run]\nuser:dev workdir:/w net:none\nuser:1000:50\n");
        let u = c.run.user.as_ref().unwrap();
        assert_eq!((u.value.as_str(), u.line), ("1000:50", 3));
        let w = c.run.workdir.as_ref().unwrap();
        assert_eq!((w.value.as_path(), w.line), (Path::new("/w"), 2));
        for (bad, what) in [
            ("user:\"\"", "user:"),
            ("user:a:b:c", "user:"),
            ("user::g", "user:"),
            ("workdir:rel", "workdir:"),
        ] {
            let e = err(&format!("[run]\n\n{bad}\n"));
            assert_eq!(e.line, 3, "{bad}");
            assert!(e.msg.starts_with(what), "{bad}: {}", e.msg);
            assert!(
                e.to_string().starts_with("/x/chroot.d/tool.conf:3: "),
                "{e}"
            );
        }
    }

    #[test]
    fn exclude_paths() {
        let c = parse("[exclude]\n/var/cache/apt/archives\n  \"/home/me/big dir\"  \nsrv/tmp;x\n");
        assert_eq!(
            c.excludes,
            ["/var/cache/apt/archives", "/home/me/big dir", "srv/tmp;x"]
        );
        assert!(c.section("exclude").is_empty());
    }

    #[test]
    fn exclude_errors() {
        let e = err("[exclude]\n\"/a\n");
        assert_eq!(e.line, 2);
        assert!(e.msg.starts_with("unterminated quote"));
        assert!(err("[exclude]\n\"\"\n").msg.starts_with("empty path"));
    }

    #[test]
    fn crlf_lines() {
        let c = parse("[bind]\r\ntgt:/a\r\n");
        assert_eq!(tgts(&c), ["/a"]);
    }

    fn tempdir() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    #[test]
    fn load_absent_is_none() {
        let d = tempdir();
        assert!(Conf::load(d.path()).unwrap().is_none());
    }

    #[test]
    fn load_reads_and_names_file() {
        let d = tempdir();
        let path = d.path().join("tool.conf");
        std::fs::write(&path, "[bind]\ntgt:/a\n").unwrap();
        let c = Conf::load(d.path()).unwrap().unwrap();
        assert_eq!(c.path, path);
        assert_eq!(tgts(&c), ["/a"]);
        std::fs::write(&path, "[bind]\ntgt:a\n").unwrap();
        let e = Conf::load(d.path()).unwrap_err();
        assert_eq!((e.path, e.line), (path, 2));
    }

    #[test]
    fn load_unreadable_is_line_0() {
        let d = tempdir();
        std::fs::create_dir(d.path().join("tool.conf")).unwrap();
        let e = Conf::load(d.path()).unwrap_err();
        assert_eq!(e.line, 0);
        assert!(e.msg.starts_with("cannot read"), "{}", e.msg);
    }

    #[test]
    fn load_invalid_utf8_names_line() {
        let d = tempdir();
        std::fs::write(d.path().join("tool.conf"), b"[bind]\ntgt:/a\ntgt:/\xff\n").unwrap();
        let e = Conf::load(d.path()).unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.msg.contains("UTF-8"));
    }

    #[test]
    fn conf_sh_notice_only_when_present() {
        let d = tempdir();
        let cd = d.path().join("chroot.d");
        std::fs::create_dir(&cd).unwrap();
        let root = crate::sys::open_root(d.path()).unwrap();
        assert_eq!(conf_sh_notice(root.as_fd(), &cd), None);
        std::fs::write(cd.join("conf.sh"), "BINDINGS=\"src:/a tgt:/a\"\n").unwrap();
        let n = conf_sh_notice(root.as_fd(), &cd).unwrap();
        assert!(n.contains("conf.sh is not executed"), "{n}");
        assert!(n.contains("BINDINGS") && n.contains("[bind]") && n.contains("tool.conf"));
        assert!(!n.contains('\n'));
    }
}
