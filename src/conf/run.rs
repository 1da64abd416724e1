//! `[run]`: per-sandbox defaults of `run` and `shell` (the command line
//! wins). Keys applied: `user:USER[:GROUP]`, `workdir:/path`, `net:host|none`,
//! `pid:yes|no`, `namespaces:pid,uts,ipc,net` (what `on` gives the
//! sandbox's holder). Other keys
//! are kept in the records for the versions that apply them.
use std::path::PathBuf;

use super::Record;

/// The `[run]` keys this version applies.
pub const APPLIED: [&str; 5] = ["user", "workdir", "net", "pid", "namespaces"];

/// A value and the tool.conf line it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting<T> {
    pub value: T,
    pub line: usize,
    /// The file it came from when not the sandbox's tool.conf (config.toml).
    pub file: Option<PathBuf>,
}

/// What `[run]` sets (the last record that sets a key wins).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunConf {
    pub user: Option<Setting<String>>,
    pub workdir: Option<Setting<PathBuf>>,
    /// `net:none` (true) or `net:host`.
    pub net_none: Option<Setting<bool>>,
    /// `pid:yes` or `pid:no`.
    pub pid: Option<Setting<bool>>,
    /// `namespaces:pid,uts,ipc,net`: the holder's own namespaces.
    pub namespaces: Option<Setting<NsSet>>,
}

/// The namespaces a holder owns besides its user and mount namespaces.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NsSet {
    pub pid: bool,
    pub uts: bool,
    pub ipc: bool,
    pub net: bool,
}

impl NsSet {
    /// `pid,uts,ipc,net` (any of them, in any order; `none` or nothing: none).
    pub fn parse(s: &str) -> Result<NsSet, String> {
        let mut n = NsSet::default();
        for w in s.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            match w {
                "pid" => n.pid = true,
                "uts" => n.uts = true,
                "ipc" => n.ipc = true,
                "net" => n.net = true,
                "none" => {}
                _ => {
                    return Err(format!(
                        "{} is not a namespace a sandbox may own (pid, uts, ipc, net)",
                        crate::show::quote(w)
                    ))
                }
            }
        }
        Ok(n)
    }

    pub fn is_empty(&self) -> bool {
        *self == NsSet::default()
    }

    /// The names of the namespaces in the set, in a fixed order.
    pub fn names(&self) -> Vec<&'static str> {
        [
            (self.pid, "pid"),
            (self.uts, "uts"),
            (self.ipc, "ipc"),
            (self.net, "net"),
        ]
        .into_iter()
        .filter_map(|(on, n)| on.then_some(n))
        .collect()
    }
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
                file: None,
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
                file: None,
            });
        }
        if let Some(n) = rec.get("net") {
            let none = match n {
                "none" => true,
                "host" => false,
                _ => return Err(format!("net:{} is not host or none", crate::show::quote(n))),
            };
            self.net_none = Some(Setting {
                value: none,
                line: rec.line,
                file: None,
            });
        }
        if let Some(p) = rec.get("pid") {
            let own = match p {
                "yes" => true,
                "no" => false,
                _ => return Err(format!("pid:{} is not yes or no", crate::show::quote(p))),
            };
            self.pid = Some(Setting {
                value: own,
                line: rec.line,
                file: None,
            });
        }
        if let Some(n) = rec.get("namespaces") {
            let set = NsSet::parse(n).map_err(|e| format!("namespaces: {e}"))?;
            self.namespaces = Some(Setting {
                value: set,
                line: rec.line,
                file: None,
            });
        }
        Ok(())
    }
}

impl RunConf {
    /// Takes `other`'s settings: all of them (`over`), or only those
    /// `self` does not have (config.toml's under tool.conf's).
    pub fn fill_from(&mut self, other: RunConf, over: bool) {
        fn one<T>(mine: &mut Option<Setting<T>>, theirs: Option<Setting<T>>, over: bool) {
            if theirs.is_some() && (over || mine.is_none()) {
                *mine = theirs;
            }
        }
        one(&mut self.user, other.user, over);
        one(&mut self.workdir, other.workdir, over);
        one(&mut self.net_none, other.net_none, over);
        one(&mut self.pid, other.pid, over);
        one(&mut self.namespaces, other.namespaces, over);
    }

    /// Marks every setting as coming from `path`.
    pub(crate) fn mark_file(&mut self, path: &std::path::Path) {
        let file = Some(path.to_path_buf());
        if let Some(s) = &mut self.user {
            s.file.clone_from(&file);
        }
        if let Some(s) = &mut self.workdir {
            s.file.clone_from(&file);
        }
        if let Some(s) = &mut self.net_none {
            s.file.clone_from(&file);
        }
        if let Some(s) = &mut self.pid {
            s.file.clone_from(&file);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_sets() {
        let n = NsSet::parse("net, pid").unwrap();
        assert_eq!(n.names(), ["pid", "net"]);
        assert!(NsSet::parse("").unwrap().is_empty());
        assert!(NsSet::parse("none").unwrap().is_empty());
        assert_eq!(NsSet::parse("pid,uts,ipc,net").unwrap().names().len(), 4);
        let e = NsSet::parse("pid,user").unwrap_err();
        assert!(e.contains("\"user\""), "{e}");
    }
}
