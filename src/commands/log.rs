//! `log`: the audit history of a sandbox (see `audit`); and the recording
//! of one line for each `on`, `run`, `shell` and `off`.
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use anyhow::Result;

use crate::audit::{self, Entry};
use crate::cli::{Cli, Command, LogArgs, Usage};
use crate::show;

/// The canonical path a directory that no longer exists had: its deepest
/// existing ancestor canonicalized, the rest with `.` dropped and `..`
/// taken back, so that `DIR/`, `P/../DIR` and a symlinked parent name the
/// history `on` and `run` wrote under DIR's canonical path.
fn gone(given: &Path) -> std::path::PathBuf {
    use std::path::{Component, PathBuf};
    let abs = std::path::absolute(given).unwrap_or_else(|_| given.to_path_buf());
    let mut lexical = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                lexical.pop();
            }
            c => lexical.push(c),
        }
    }
    let mut rest = Vec::new();
    let mut base = lexical.as_path();
    loop {
        if let Ok(real) = crate::sys::canonicalize(base) {
            return rest.iter().rev().fold(real, |p, n| p.join(n));
        }
        match (base.parent(), base.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                base = parent;
            }
            _ => return lexical,
        }
    }
}

pub fn run(dir: Option<&Path>, args: &LogArgs) -> Result<()> {
    let Some(given) = dir else {
        return Err(Usage(crate::cli::NO_DIR.into()).into());
    };
    // A sandbox since destroyed still has its history: DIR need not exist.
    let dir = crate::sys::canonicalize(given).unwrap_or_else(|_| gone(given));
    let (path, h) = audit::read(&dir, args.lines)?;
    if h.bad > 0 {
        eprintln!(
            "chroot-tool: warning: {}: {} line{} that {} no history entry, left out",
            show::path(&path),
            h.bad,
            if h.bad == 1 { "" } else { "s" },
            if h.bad == 1 { "is" } else { "are" }
        );
    }
    if h.entries.is_empty() && !args.json {
        eprintln!(
            "chroot-tool: no history for {} (kept in {})",
            show::path(&dir),
            show::path(&path)
        );
        return Ok(());
    }
    let mut out = String::new();
    for (line, e) in &h.entries {
        if args.json {
            out.push_str(line);
            out.push('\n');
        } else {
            out.push_str(&human(e));
        }
    }
    super::out(out)
}

/// One entry for people: time, verb, status, duration, who, what.
fn human(e: &Entry) -> String {
    // The texts were escaped when written; a file edited by hand is escaped again here.
    let t = |s: &str| show::error_line([s]);
    let mut who = format!("{}({})", t(&e.user), e.uid);
    if let Some(s) = &e.sudo_user {
        let _ = write!(who, " sudo:{}", t(s));
    }
    let mut line = format!(
        "{}  {:<5}  exit {:<3}  {:>8}  {who}",
        t(&e.time),
        t(&e.verb),
        e.status,
        format!("{:.3} s", e.duration_ms as f64 / 1000.0),
    );
    match (&e.mode, &e.command) {
        (Some(m), Some(c)) => {
            let _ = write!(line, "  {}: {}", t(m), t(c));
        }
        (Some(m), None) => {
            let _ = write!(line, "  {}", t(m));
        }
        _ => {}
    }
    if !e.options.is_empty() {
        let o: Vec<String> = e.options.iter().map(|o| t(o)).collect();
        let _ = write!(line, "  [{}]", o.join(" "));
    }
    line.push('\n');
    line
}

/// A command to be recorded once it is done.
pub struct Pending {
    verb: &'static str,
    dir: PathBuf,
    options: Vec<String>,
    mode: Option<&'static str>,
    command: Option<String>,
}

impl Pending {
    /// For `on`, `run`, `shell` and `off` of a directory that exists; None
    /// for anything else (nothing to record).
    pub fn new(cli: &Cli) -> Option<Pending> {
        let (verb, words, mode, command) = match &cli.command {
            Command::On(_) => ("on", vec![], None, None),
            Command::Off(_) => ("off", vec![], None, None),
            Command::Shell(_) => ("shell", vec![], Some("login"), None),
            Command::Run(a) => {
                let (mode, command) = match a.request() {
                    Ok(r @ crate::dispatch::Request::Line(_)) => (Some("line"), Some(r.display())),
                    Ok(r) => (Some("argv"), Some(r.display())),
                    Err(_) => (None, None),
                };
                ("run", a.line.clone(), mode, command)
            }
            _ => return None,
        };
        // Who invoked us, pinned before a holder's user namespace is
        // joined (where the real user id reads 0).
        audit::invoking_uid();
        let dir = crate::sys::canonicalize(cli.global.dir.as_deref()?).ok()?;
        let args = crate::sys::process::args();
        Some(Pending {
            verb,
            dir,
            options: audit::options(&args, verb, &words),
            mode,
            command,
        })
    }

    /// The sandbox, its canonical path.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends the line; a history that cannot be written is a warning.
    pub fn finish(self, status: u8, (start, t0): (SystemTime, Instant)) {
        let mut e = Entry::new(self.verb, &self.dir, start, t0.elapsed(), status);
        e.options = self.options;
        e.mode = self.mode.map(String::from);
        e.command = self.command;
        if let Err(err) = audit::append(&self.dir, &e) {
            eprintln!(
                "chroot-tool: warning: history not written: {}",
                show::error_chain(&err)
            );
        }
    }
}
