//! `[run]`: per-sandbox defaults of `run` and `shell` (the command line
//! wins). Keys applied: `user:USER[:GROUP]`, `workdir:/path`. Other keys
//! are kept in the records for the versions that apply them.
use std::path::PathBuf;

use super::Record;

/// The `[run]` keys this version applies.
pub const APPLIED: [&str; 2] = ["user", "workdir"];

/// A value and the tool.conf line it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting<T> {
    pub value: T,
    pub line: usize,
}

/// What `[run]` sets (the last record that sets a key wins).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunConf {
    pub user: Option<Setting<String>>,
    pub workdir: Option<Setting<PathBuf>>,
}

impl RunConf {
    /// Takes the applied keys of one record; the error is for the record's line.
    pub(crate) fn take(&mut self, rec: &Record) -> Result<(), String> {
        if let Some(u) = rec.get("user") {
            if !is_user_spec(u) {
                return Err(format!(
                    "user:{} is not USER or USER:GROUP (names or numbers)",
                    crate::show::quote(u)
                ));
            }
            self.user = Some(Setting {
                value: u.to_string(),
                line: rec.line,
            });
        }
        if let Some(w) = rec.get("workdir") {
            if !w.starts_with('/') || w.contains('\0') {
                return Err(format!(
                    "workdir:{} must be an absolute path inside the sandbox",
                    crate::show::quote(w)
                ));
            }
            self.workdir = Some(Setting {
                value: PathBuf::from(w),
                line: rec.line,
            });
        }
        Ok(())
    }
}

/// `USER` or `USER:GROUP`, each part non-empty.
pub fn is_user_spec(s: &str) -> bool {
    let mut parts = s.split(':');
    let ok = |p: Option<&str>| p.is_some_and(|p| !p.is_empty() && !p.contains('\0'));
    let first = ok(parts.next());
    match (first, parts.next(), parts.next()) {
        (true, None, _) => true,
        (true, Some(g), None) => ok(Some(g)),
        _ => false,
    }
}
