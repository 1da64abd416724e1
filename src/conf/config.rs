//! `config.toml`: the user's defaults for `create` and for runs, read from
//! `/etc/chroot-tool/config.toml`, then `$XDG_CONFIG_HOME/chroot-tool/config.toml`
//! (`~/.config/...`); a key set in the later file wins. `$CHROOT_TOOL_CONFIG`
//! names the only file read instead (empty: none). Precedence, highest
//! first: the command line, the sandbox's tool.conf, config.toml, the
//! built-in defaults. See docs/config.md.
//!
//! Pure: [`Config::parse`] takes text and returns the settings, or an
//! error naming the file, the line and what is wrong (an unknown key is an
//! error: a misspelt key would otherwise do nothing).
use std::ffi::OsString;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::{ConfError, Record, RunConf};

/// Names the one config file to read (tests; empty: none).
pub const CONFIG_ENV: &str = "CHROOT_TOOL_CONFIG";
/// The system's config file, read first.
pub const SYSTEM_FILE: &str = "/etc/chroot-tool/config.toml";
/// At most this much of a config file is read.
pub const CAP: usize = 1 << 20;

/// tool.conf with config.toml's `[run]` settings where it has none of
/// its own (what `run`, `shell` and the library's runs use).
pub fn under(mut conf: super::Conf) -> Result<super::Conf, ConfError> {
    let cfg = Config::load()?;
    conf.run.fill_from(cfg.run, false);
    Ok(conf)
}

/// Defaults of `create`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateDefaults {
    pub suite: Option<String>,
    pub mirror: Option<String>,
    pub variant: Option<String>,
    /// Extra packages.
    pub include: Option<Vec<String>>,
    pub components: Option<Vec<String>>,
    pub arch: Option<String>,
}

/// The settings of the config files read, merged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    pub create: CreateDefaults,
    /// Where `create` keeps its cache of finished root filesystems.
    pub cache_dir: Option<PathBuf>,
    /// Defaults of `run` and `shell` (below tool.conf's `[run]`): each
    /// setting names the config file it came from.
    pub run: RunConf,
    /// The files read, in order.
    pub files: Vec<PathBuf>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    create: RawCreate,
    #[serde(default)]
    cache: RawCache,
    #[serde(default)]
    run: RawRun,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawCreate {
    suite: Option<Spanned<String>>,
    mirror: Option<Spanned<String>>,
    variant: Option<Spanned<String>>,
    include: Option<Spanned<toml::Value>>,
    components: Option<Spanned<toml::Value>>,
    arch: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawCache {
    dir: Option<Spanned<PathBuf>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRun {
    user: Option<Spanned<String>>,
    workdir: Option<Spanned<String>>,
    net: Option<Spanned<String>>,
    pid: Option<Spanned<bool>>,
}

/// A list of words: `["procps", "less"]` or `"procps,less"`; `None` for
/// any other value.
fn words(v: &toml::Value) -> Option<Vec<String>> {
    let all: Vec<&str> = match v {
        toml::Value::String(s) => s.split(',').collect(),
        toml::Value::Array(a) => a.iter().map(toml::Value::as_str).collect::<Option<_>>()?,
        _ => return None,
    };
    let out: Vec<String> = all
        .iter()
        .map(|w| w.trim())
        .filter(|w| !w.is_empty())
        .map(String::from)
        .collect();
    out.iter()
        .all(|w| !w.contains(char::is_whitespace))
        .then_some(out)
}

/// The 1-based line of byte `at` in `text`.
fn line_of(text: &str, at: usize) -> usize {
    1 + text.as_bytes()[..at.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
}

impl Config {
    /// Parses one config file's text over the settings so far (its keys win).
    pub fn parse_over(&mut self, text: &str, path: &Path) -> Result<(), ConfError> {
        let err = |line: usize, msg: String| ConfError {
            path: path.to_path_buf(),
            line,
            msg,
        };
        let raw: Raw = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(0, |s| line_of(text, s.start));
            err(line, e.message().trim_end().replace('\n', "; "))
        })?;
        // One word each (a suite, a URL...), never empty.
        let word = |v: Option<Spanned<String>>, name: &str| match v {
            Some(v) if v.get_ref().is_empty() || v.get_ref().contains(char::is_whitespace) => {
                Err(err(
                    line_of(text, v.span().start),
                    format!("[create] {name}: one word expected, without spaces"),
                ))
            }
            v => Ok(v.map(Spanned::into_inner)),
        };
        let c = &mut self.create;
        let r = raw.create;
        c.suite = word(r.suite, "suite")?.or(c.suite.take());
        c.mirror = word(r.mirror, "mirror")?.or(c.mirror.take());
        c.variant = word(r.variant, "variant")?.or(c.variant.take());
        c.arch = word(r.arch, "arch")?.or(c.arch.take());
        let list = |v: Option<Spanned<toml::Value>>, name: &str| {
            match v {
            None => Ok(None),
            Some(v) => words(v.get_ref()).map(Some).ok_or_else(|| {
                err(
                    line_of(text, v.span().start),
                    format!("[create] {name}: a list of names ([\"a\", \"b\"]) or one \"a,b\" string expected"),
                )
            }),
        }
        };
        c.include = list(r.include, "include")?.or(c.include.take());
        c.components = list(r.components, "components")?.or(c.components.take());
        if let Some(dir) = raw.cache.dir {
            if !dir.get_ref().is_absolute() {
                return Err(err(
                    line_of(text, dir.span().start),
                    "[cache] dir: an absolute path expected".into(),
                ));
            }
            self.cache_dir = Some(dir.into_inner());
        }
        // [run] through tool.conf's own rules, a record per key.
        let run = raw.run;
        let pid = run.pid.map(|p| {
            Spanned::new(
                p.span(),
                if *p.get_ref() { "yes" } else { "no" }.to_string(),
            )
        });
        let keys = [
            ("user", run.user),
            ("workdir", run.workdir),
            ("net", run.net),
            ("pid", pid),
        ];
        let mut set = RunConf::default();
        for (key, v) in keys {
            let Some(v) = v else { continue };
            let line = line_of(text, v.span().start);
            let rec = Record {
                line,
                pairs: vec![(key.to_string(), v.into_inner())],
            };
            set.take(&rec)
                .map_err(|m| err(line, format!("[run] {m}")))?;
        }
        set.mark_file(path);
        self.run.fill_from(set, true);
        self.files.push(path.to_path_buf());
        Ok(())
    }

    /// Parses one file's text (tests and fixtures).
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfError> {
        let mut c = Config::default();
        c.parse_over(text, path)?;
        Ok(c)
    }

    /// Reads the config files of this process's environment (see the
    /// module's documentation); a missing file is no error.
    pub fn load() -> Result<Config, ConfError> {
        let mut c = Config::default();
        for path in files(
            std::env::var_os(CONFIG_ENV),
            std::env::var_os("XDG_CONFIG_HOME"),
            std::env::var_os("HOME"),
        ) {
            if let Some(text) = read(&path)? {
                c.parse_over(&text, &path)?;
            }
        }
        Ok(c)
    }
}

/// The config files to read, in order.
pub fn files(
    over: Option<OsString>,
    xdg: Option<OsString>,
    home: Option<OsString>,
) -> Vec<PathBuf> {
    if let Some(o) = over {
        return if o.is_empty() {
            vec![]
        } else {
            vec![PathBuf::from(o)]
        };
    }
    let mut out = vec![PathBuf::from(SYSTEM_FILE)];
    let user = match (xdg.map(PathBuf::from), home.map(PathBuf::from)) {
        (Some(x), _) if x.is_absolute() => Some(x),
        (_, Some(h)) if h.is_absolute() => Some(h.join(".config")),
        _ => None,
    };
    if let Some(u) = user {
        out.push(u.join("chroot-tool/config.toml"));
    }
    out
}

/// A config file's text; `None` when there is none. Only a regular file
/// is read (a FIFO never blocks), at most [`CAP`] bytes, UTF-8.
fn read(path: &Path) -> Result<Option<String>, ConfError> {
    let err = |line: usize, msg: String| ConfError {
        path: path.to_path_buf(),
        line,
        msg,
    };
    let f = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(err(0, format!("cannot read: {e}"))),
    };
    if !f.metadata().is_ok_and(|m| m.is_file()) {
        return Err(err(0, "not a regular file".into()));
    }
    let mut bytes = Vec::new();
    f.take(CAP as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| err(0, format!("cannot read: {e}")))?;
    if bytes.len() > CAP {
        return Err(err(0, format!("larger than {CAP} bytes")));
    }
    String::from_utf8(bytes).map(Some).map_err(|e| {
        let line = 1 + e.as_bytes()[..e.utf8_error().valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        err(line, "not valid UTF-8 text".into())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_files() {
        let o = |s: &str| Some(OsString::from(s));
        assert_eq!(
            files(None, o("/x"), o("/home/a")),
            [
                PathBuf::from(SYSTEM_FILE),
                "/x/chroot-tool/config.toml".into()
            ]
        );
        assert_eq!(
            files(None, o("rel"), o("/home/a")),
            [
                PathBuf::from(SYSTEM_FILE),
                "/home/a/.config/chroot-tool/config.toml".into()
            ]
        );
        assert_eq!(files(None, None, None), [PathBuf::from(SYSTEM_FILE)]);
        assert_eq!(
            files(o("/t/c.toml"), o("/x"), None),
            [PathBuf::from("/t/c.toml")]
        );
        assert!(files(o(""), o("/x"), None).is_empty());
    }

    #[test]
    fn later_file_wins_key_by_key() {
        let mut c = Config::default();
        c.parse_over(
            "[create]\nsuite = \"bookworm\"\nmirror = \"http://m/debian\"\n[run]\nuser = \"a\"\nnet = \"none\"\n",
            Path::new("/etc/c.toml"),
        )
        .unwrap();
        c.parse_over(
            "[create]\nsuite = \"trixie\"\ninclude = \"procps, less\"\n\n[run]\nuser = \"b\"\n",
            Path::new("/home/c.toml"),
        )
        .unwrap();
        assert_eq!(c.create.suite.as_deref(), Some("trixie"));
        assert_eq!(c.create.mirror.as_deref(), Some("http://m/debian"));
        assert_eq!(c.create.include, Some(vec!["procps".into(), "less".into()]));
        let u = c.run.user.as_ref().unwrap();
        assert_eq!((u.value.as_str(), u.line), ("b", 6));
        assert_eq!(u.file.as_deref(), Some(Path::new("/home/c.toml")));
        let n = c.run.net_none.as_ref().unwrap();
        assert_eq!((n.value, n.line), (true, 6));
        assert_eq!(n.file.as_deref(), Some(Path::new("/etc/c.toml")));
    }
}
