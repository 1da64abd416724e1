//! The audit history: every `on`, `run`, `shell` and `off` of a sandbox
//! appends one line to a file on the host side, out of reach of the
//! processes inside (they are chrooted into DIR; the history is not in it).
//!
//! - Where: root's under `/var/lib/chroot-tool/history/`, a user's under
//!   `$XDG_STATE_HOME/chroot-tool/history/` (default `~/.local/state`); one
//!   file per sandbox, named by a hash of DIR's canonical path and its base
//!   name ([`file_name`]). `CHROOT_TOOL_STATE_DIR` replaces the state
//!   directory (the tests use it, so as never to write the machine's own).
//! - How: JSON Lines, one object a line of at most [`LINE_MAX`] bytes,
//!   written with `O_APPEND` in one `write(2)`: parallel runs never
//!   interleave or lose a line, and the run's cost is one open, one write,
//!   one close (the directories are made only when the open finds them missing).
//!
//! Library code: errors are returned, the commands decide how to say them.
use std::ffi::OsString;
use std::fs::{DirBuilder, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::show;

/// Replaces the state directory (root's `/var/lib/chroot-tool`).
pub const STATE_ENV: &str = "CHROOT_TOOL_STATE_DIR";
/// root's state directory.
pub const ROOT_STATE: &str = "/var/lib/chroot-tool";
/// The longest line written (a longer record has its texts shortened).
pub const LINE_MAX: usize = 4096;

/// One line of the history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// When the command started, RFC 3339 in UTC with milliseconds.
    pub time: String,
    /// The invoking user: real uid and its name.
    pub uid: u32,
    pub user: String,
    /// `$SUDO_USER`, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sudo_user: Option<String>,
    pub pid: u32,
    /// on, run, shell or off.
    pub verb: String,
    /// The sandbox: DIR's canonical path. (Texts are kept as they are;
    /// bytes that are not UTF-8 make the whole text escaped as `show::escape` does.)
    pub dir: String,
    /// The options on the command line (without `-d DIR` and the command).
    #[serde(default)]
    pub options: Vec<String>,
    /// run: `line` (one shell line) or `argv` (exact words); shell: `login`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// run: the command, as `host-cmd` receives it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// The exit status of chroot-tool.
    pub status: u8,
    pub duration_ms: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("{}: {source}", show::path(.path))]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: only {written} of {len} bytes written", show::path(.path))]
    Short {
        path: PathBuf,
        written: usize,
        len: usize,
    },
    #[error("no home directory for the history (set XDG_STATE_HOME or HOME)")]
    NoHome,
}

impl Entry {
    /// A record of what the invoking process is doing, started at `start`.
    pub fn new(verb: &str, dir: &Path, start: SystemTime, elapsed: Duration, status: u8) -> Entry {
        let uid = invoking_uid();
        let user = crate::sandbox::real_user()
            .map(|u| u.name.clone())
            .unwrap_or_default();
        Entry {
            time: rfc3339(start),
            uid,
            user: text(user.as_bytes()),
            sudo_user: std::env::var_os("SUDO_USER").map(|s| text(s.as_bytes())),
            pid: std::process::id(),
            verb: verb.to_string(),
            dir: text(dir.as_os_str().as_bytes()),
            options: vec![],
            mode: None,
            command: None,
            status,
            duration_ms: elapsed.as_millis().min(u64::MAX as u128) as u64,
        }
    }

    /// The entry as one line (with its `\n`) of at most [`LINE_MAX`]
    /// bytes: texts are shortened (start and end kept) until it fits.
    pub fn to_line(&self) -> String {
        let mut cap = 1024;
        loop {
            let mut e = self.clone();
            let cut = |s: &str| show::shorten(s.to_string(), cap);
            e.dir = cut(&e.dir);
            e.user = cut(&e.user);
            e.sudo_user = e.sudo_user.as_deref().map(cut);
            e.command = e.command.as_deref().map(cut);
            let mut left = cap;
            e.options = e
                .options
                .iter()
                .map_while(|o| {
                    let o = show::shorten(o.clone(), cap.min(256));
                    let n = o.chars().count() + 1;
                    (n <= left).then(|| {
                        left -= n;
                        o
                    })
                })
                .collect();
            let mut line = serde_json::to_string(&e).unwrap_or_default();
            line.push('\n');
            if line.len() <= LINE_MAX || cap <= 16 {
                return line;
            }
            cap /= 4;
        }
    }
}

/// Bytes as JSON text: UTF-8 as it is (JSON escapes what it must), other
/// bytes escaped as `show::escape` does.
pub fn text(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => s.to_string(),
        Err(_) => show::escape(b),
    }
}

/// The options of a command line: its words after the program name
/// without the verb, `-d DIR` (in any of its spellings), `--` and what
/// follows it, and the command's own words (`words`, in their order).
pub fn options(args: &[OsString], verb: &str, words: &[String]) -> Vec<String> {
    let mut out = vec![];
    let mut verb_seen = false;
    let mut next_word = 0;
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        let b = a.as_bytes();
        match b {
            b"--" => break,
            b"-d" | b"--dir" => {
                it.next();
                continue;
            }
            _ if b.starts_with(b"--dir=") || (b.starts_with(b"-d") && !b.starts_with(b"--")) => {
                continue
            }
            _ if !verb_seen && b == verb.as_bytes() => {
                verb_seen = true;
                continue;
            }
            _ if !b.starts_with(b"-")
                && words.get(next_word).is_some_and(|w| w.as_bytes() == b) =>
            {
                next_word += 1;
                continue;
            }
            _ => out.push(text(b)),
        }
    }
    out
}

/// The state directory: `$CHROOT_TOOL_STATE_DIR`, else root's
/// [`ROOT_STATE`], else a user's `$XDG_STATE_HOME/chroot-tool` (an
/// absolute one), `~/.local/state/chroot-tool`.
pub fn state_dir() -> Result<PathBuf, AuditError> {
    choose_state_dir(
        std::env::var_os(STATE_ENV),
        invoked_as_root(),
        std::env::var_os("XDG_STATE_HOME"),
        std::env::var_os("HOME"),
    )
}

/// Whether root invoked this process, decided once: a process that joined
/// a holder's user namespace is root there, and keeps its user's history.
pub fn invoked_as_root() -> bool {
    invoker().1
}

/// The real user id of whoever invoked this process, decided once with
/// [`invoked_as_root`] (inside a holder's user namespace `getuid` says 0).
pub fn invoking_uid() -> u32 {
    invoker().0
}

/// The real user id and whether the effective one was root, read together
/// the first time either is asked (each is pinned by asking for the other).
fn invoker() -> (u32, bool) {
    static WHO: std::sync::OnceLock<(u32, bool)> = std::sync::OnceLock::new();
    *WHO.get_or_init(|| {
        (
            nix::unistd::getuid().as_raw(),
            nix::unistd::geteuid().is_root(),
        )
    })
}

/// [`state_dir`]'s rule, from the environment given.
pub fn choose_state_dir(
    over: Option<OsString>,
    root: bool,
    xdg: Option<OsString>,
    home: Option<OsString>,
) -> Result<PathBuf, AuditError> {
    if let Some(d) = over.filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d));
    }
    if root {
        return Ok(PathBuf::from(ROOT_STATE));
    }
    if let Some(x) = xdg.map(PathBuf::from).filter(|x| x.is_absolute()) {
        return Ok(x.join("chroot-tool"));
    }
    match home.map(PathBuf::from) {
        Some(h) if h.is_absolute() => Ok(h.join(".local/state/chroot-tool")),
        _ => Err(AuditError::NoHome),
    }
}

/// The history file of the sandbox at `dir` (canonical).
pub fn history_file(dir: &Path) -> Result<PathBuf, AuditError> {
    Ok(state_dir()?.join("history").join(file_name(dir)))
}

/// `HASH-NAME.jsonl`: a 64-bit FNV-1a hash of DIR's path (stable across
/// builds) and, to be read by people, DIR's base name in letters, digits,
/// `.`, `_` and `-` (at most 48).
pub fn file_name(dir: &Path) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in dir.as_os_str().as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let base: String = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(48)
        .collect();
    let base = base.trim_start_matches('.');
    if base.is_empty() {
        format!("{h:016x}.jsonl")
    } else {
        format!("{h:016x}-{base}.jsonl")
    }
}

/// Appends `entry` to the history of the sandbox at `dir`: one
/// `O_APPEND` write of the whole line, to a regular file only (see
/// `regular`). Returns the file written.
pub fn append(dir: &Path, entry: &Entry) -> Result<PathBuf, AuditError> {
    let path = history_file(dir)?;
    let line = entry.to_line();
    let io_err = |source| AuditError::Io {
        path: path.clone(),
        source,
    };
    let open = || {
        use nix::fcntl::OFlag;
        let flags = OFlag::O_WRONLY
            | OFlag::O_APPEND
            | OFlag::O_CREAT
            | OFlag::O_NOFOLLOW
            | OFlag::O_NONBLOCK
            | OFlag::O_NOCTTY;
        crate::sys::open_file(&path, flags, 0o600)
            .map_err(|e| match e.raw_os_error() {
                // A FIFO that no one reads (or a device without its device).
                Some(libc::ENXIO) => not_regular(),
                _ => e,
            })
            .and_then(regular)
    };
    let f = match open() {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = path.parent() {
                DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(parent)
                    .map_err(io_err)?;
            }
            open()
        }
        r => r,
    }
    .map_err(io_err)?;
    let written = (&f).write(line.as_bytes()).map_err(io_err)?;
    if written != line.len() {
        return Err(AuditError::Short {
            path,
            written,
            len: line.len(),
        });
    }
    Ok(path)
}

/// `f` when it is a regular file. The history is opened without blocking
/// (a FIFO put at its path never hangs a run or an `off`) and anything
/// else (a FIFO, a device) is refused.
fn regular(f: std::fs::File) -> io::Result<std::fs::File> {
    if f.metadata()?.is_file() {
        Ok(f)
    } else {
        Err(not_regular())
    }
}

fn not_regular() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "not a regular file; left alone")
}

/// What [`read`] found.
#[derive(Debug, Default)]
pub struct History {
    /// The last entries (all, or the last `n` asked for), oldest first,
    /// each with its line as stored.
    pub entries: Vec<(String, Entry)>,
    /// Lines that are not an entry (cut short, edited by hand).
    pub bad: usize,
}

/// Reads the history of the sandbox at `dir` (none yet: empty), keeping
/// the last `last` entries when given.
pub fn read(dir: &Path, last: Option<usize>) -> Result<(PathBuf, History), AuditError> {
    let path = history_file(dir)?;
    let io_err = |source| AuditError::Io {
        path: path.clone(),
        source,
    };
    let f = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(&path)
        .and_then(regular)
    {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((path, History::default())),
        r => r.map_err(io_err)?,
    };
    let mut h = History::default();
    let mut keep = std::collections::VecDeque::new();
    let mut reader = BufReader::new(f);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = io::Read::take(&mut reader, 2 * LINE_MAX as u64)
            .read_until(b'\n', &mut buf)
            .map_err(io_err)?;
        if n == 0 {
            break;
        }
        if buf.last() != Some(&b'\n') && n == 2 * LINE_MAX {
            // Far too long to be ours: skip to its end.
            h.bad += 1;
            let mut rest = Vec::new();
            reader.read_until(b'\n', &mut rest).map_err(io_err)?;
            continue;
        }
        let text = String::from_utf8_lossy(&buf).trim_end().to_string();
        if text.is_empty() {
            continue;
        }
        match serde_json::from_str::<Entry>(&text) {
            Ok(e) => {
                keep.push_back((text, e));
                if last.is_some_and(|n| keep.len() > n) {
                    keep.pop_front();
                }
            }
            Err(_) => h.bad += 1,
        }
    }
    h.entries = keep.into();
    Ok((path, h))
}

/// `t` as RFC 3339 in UTC with milliseconds: `2026-11-25T18:30:01.123Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Days since 1970-01-01 to a civil date (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn times() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_795_631_401_123);
        assert_eq!(rfc3339(t), "2026-11-25T18:30:01.123Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn options_leave_out_dir_verb_and_command() {
        let w = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            options(
                &os(&["ct", "-d", "/x", "off", "--timeout", "2"]),
                "off",
                &[]
            ),
            ["--timeout", "2"]
        );
        assert_eq!(
            options(
                &os(&["ct", "run", "echo a", "--dir=/x", "-u", "dev"]),
                "run",
                &w(&["echo a"])
            ),
            ["-u", "dev"]
        );
        assert_eq!(
            options(
                &os(&["ct", "-d/x", "run", "-e", "run", "--", "run", "x"]),
                "run",
                &[]
            ),
            ["-e", "run"]
        );
        assert_eq!(
            options(
                &os(&["ct", "run", "echo", "a", "b"]),
                "run",
                &w(&["echo", "a", "b"])
            ),
            Vec::<String>::new()
        );
    }

    #[test]
    fn where_the_history_is() {
        let o = |s: &str| Some(OsString::from(s));
        let p = |r: Result<PathBuf, AuditError>| r.unwrap().to_string_lossy().into_owned();
        assert_eq!(
            p(choose_state_dir(None, true, o("/x"), o("/h"))),
            ROOT_STATE
        );
        assert_eq!(
            p(choose_state_dir(None, false, o("/x"), o("/h"))),
            "/x/chroot-tool"
        );
        assert_eq!(
            p(choose_state_dir(None, false, o("rel"), o("/h"))),
            "/h/.local/state/chroot-tool"
        );
        assert_eq!(
            p(choose_state_dir(None, false, None, o("/h"))),
            "/h/.local/state/chroot-tool"
        );
        assert!(choose_state_dir(None, false, None, None).is_err());
        assert_eq!(p(choose_state_dir(o("/t"), true, None, None)), "/t");
        assert_eq!(p(choose_state_dir(o(""), true, None, None)), ROOT_STATE);
    }

    #[test]
    fn file_names_are_stable_and_plain() {
        assert_eq!(
            file_name(Path::new("/srv/sb")),
            file_name(Path::new("/srv/sb"))
        );
        assert_ne!(
            file_name(Path::new("/srv/sb")),
            file_name(Path::new("/srv2/sb"))
        );
        let n = file_name(Path::new("/srv/my sand\nbox"));
        assert_eq!(n.len(), 16 + "-my_sand_box.jsonl".len(), "{n}");
        assert!(n.ends_with("-my_sand_box.jsonl"), "{n}");
        assert!(file_name(Path::new("/srv/..x")).ends_with("-x.jsonl"));
        assert_eq!(file_name(Path::new("/")).len(), 16 + ".jsonl".len());
    }

    #[test]
    fn a_line_is_bounded_and_parses() {
        let mut e = Entry::new("run", Path::new("/srv/sb"), UNIX_EPOCH, Duration::ZERO, 0);
        e.command = Some("\\\"x".repeat(5000));
        e.options = vec!["-e".into(); 3000];
        e.dir = "d".repeat(9000);
        let line = e.to_line();
        assert!(line.len() <= LINE_MAX, "{}", line.len());
        assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
        let back: Entry = serde_json::from_str(&line).unwrap();
        assert_eq!(back.verb, "run");
        assert!(back.command.unwrap().contains("..."));
    }
}
