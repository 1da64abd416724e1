//! The sandboxes this user has created or used (`list`), and what `list`
//! and `status` say about one.
//!
//! - Where: `STATE/sandboxes/`, the state directory of the history
//!   (`audit::state_dir`: root's `/var/lib/chroot-tool`, a user's
//!   `$XDG_STATE_HOME/chroot-tool`, `$CHROOT_TOOL_STATE_DIR` in tests).
//! - How: one symbolic link per sandbox, named as its history file is
//!   (a hash of DIR's canonical path and its base name), whose target is
//!   DIR's canonical path. It is never followed: only read (`readlink`).
//! - Cost: `create`, `on`, `run` and `shell` record a sandbox with one
//!   `symlink(2)`, which finds the link there (`EEXIST`) every time but the
//!   first: no lock, no read, no rewrite on the run path.
//! - Parallel use: making a link is atomic, and two processes making the
//!   same one both succeed (one finds it made). `list` prunes the links of
//!   directories that no longer exist, then looks again and puts a link
//!   back if its directory came back meanwhile (a `create` at that path).
use std::ffi::OsString;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::audit::{self, AuditError};
use crate::mountinfo::Mount;
use crate::plan::Op;
use crate::{engine, procs, show};

/// The directory of the links, under the state directory.
pub fn registry_dir() -> Result<PathBuf, AuditError> {
    Ok(audit::state_dir()?.join("sandboxes"))
}

/// The link's name for the sandbox at `dir` (canonical): `HASH-NAME`.
pub fn entry_name(dir: &Path) -> String {
    let f = audit::file_name(dir);
    f.strip_suffix(".jsonl").unwrap_or(&f).to_string()
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> AuditError + '_ {
    move |source| AuditError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Records the sandbox at `dir` (absolute and canonical) when it is not
/// recorded yet.
pub fn record(dir: &Path) -> Result<(), AuditError> {
    record_in(&registry_dir()?, dir)
}

fn record_in(reg: &Path, dir: &Path) -> Result<(), AuditError> {
    let link = reg.join(entry_name(dir));
    match std::os::unix::fs::symlink(dir, &link) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(reg)
                .map_err(io_err(reg))?;
            match std::os::unix::fs::symlink(dir, &link) {
                Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(io_err(&link)(e)),
                _ => Ok(()),
            }
        }
        Err(e) => Err(io_err(&link)(e)),
    }
}

/// Forgets the sandbox at `dir` (`destroy` deleted it).
pub fn forget(dir: &Path) -> Result<(), AuditError> {
    let link = registry_dir()?.join(entry_name(dir));
    match std::fs::remove_file(&link) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err(&link)(e)),
        _ => Ok(()),
    }
}

/// Does a sandbox still exist at `dir`? A directory that is not there (or
/// is no longer a directory) is gone; one that cannot be looked at is kept.
fn exists(dir: &Path) -> bool {
    match std::fs::symlink_metadata(dir) {
        Ok(m) => m.is_dir(),
        Err(e) => !matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)),
    }
}

/// The recorded sandboxes that still exist, sorted by path; the links of
/// those gone are removed.
pub fn sandboxes() -> Result<Vec<PathBuf>, AuditError> {
    sandboxes_in(&registry_dir()?)
}

fn sandboxes_in(reg: &Path) -> Result<Vec<PathBuf>, AuditError> {
    let rd = match std::fs::read_dir(reg) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(io_err(reg)(e)),
    };
    let mut out = vec![];
    for ent in rd {
        let ent = ent.map_err(io_err(reg))?;
        let link = ent.path();
        // Anything that is not one of our links is left alone.
        let Ok(dir) = std::fs::read_link(&link) else {
            continue;
        };
        if !dir.is_absolute() || ent.file_name() != OsString::from(entry_name(&dir)) {
            continue;
        }
        if exists(&dir) {
            out.push(dir);
            continue;
        }
        let _ = std::fs::remove_file(&link);
        // Made again meanwhile (a create there): recorded again.
        if exists(&dir) {
            let _ = record_in(reg, &dir);
            out.push(dir);
        }
    }
    out.sort_by(|a, b| a.as_os_str().as_bytes().cmp(b.as_os_str().as_bytes()));
    Ok(out)
}

/// `on`, `off` or `partly on`: "on" means the self-bind is the top mount
/// at DIR and every mount of the plan is there (a plan that could not be
/// built, from a broken tool.conf, is not held against the mounts);
/// anything of the sandbox's otherwise there is "partly on".
pub fn state(dir: &Path, plan: Option<&[Op]>, mounts: &[Mount]) -> &'static str {
    let complete = plan.is_none_or(|plan| engine::looks_on(dir, plan, mounts));
    if engine::is_on(dir, mounts) && complete {
        "on"
    } else if engine::ours(dir, plan, mounts).is_empty() {
        "off"
    } else {
        "partly on"
    }
}

/// How the sandbox is reached while it is on, when no holder keeps it:
/// `chroot` (mounts in the host's mount namespace, entered by chroot);
/// `off` when it is off. (`holder` when a holder keeps it: `summary`.)
pub fn mode(state: &str) -> &'static str {
    if state == "off" {
        "off"
    } else {
        "chroot"
    }
}

/// What `list` says of a sandbox, and `status` too (with its mounts).
#[derive(Debug, Serialize)]
pub struct Summary {
    #[serde(serialize_with = "show::serialize_path")]
    pub dir: PathBuf,
    pub state: &'static str,
    pub mode: &'static str,
    /// The suite `create` was asked for (`chroot.d/create.toml`).
    pub suite: Option<String>,
    /// The release's codename: create.toml's, else the rootfs' os-release.
    pub codename: Option<String>,
    pub processes: Vec<procs::Proc>,
    /// With `--size` only.
    pub disk_use: Option<crate::usage::Usage>,
}

/// The summary of the sandbox at `dir`, its tool.conf read without a word
/// said (`status` says what is wrong with it).
pub fn summary(dir: &Path, mounts: &[Mount], size: bool) -> Summary {
    use crate::sandbox::{Need, Sandbox};
    let plan = Sandbox::open(Some(dir), Need::Dir).ok().and_then(|sb| {
        let conf = crate::conf::Conf::load_in_root(&sb.dir).ok()?;
        sb.plan_of(&conf.unwrap_or_default()).ok()
    });
    let holder = match crate::holder::find(dir) {
        crate::holder::Found::Alive(h) => Some(h),
        _ => None,
    };
    let state = match holder {
        Some(_) => "on",
        None => state(dir, plan.as_deref(), mounts),
    };
    let (suite, codename) = release(dir);
    Summary {
        dir: dir.to_path_buf(),
        state,
        mode: if holder.is_some() {
            "holder"
        } else {
            mode(state)
        },
        suite,
        codename,
        processes: match &holder {
            Some(h) => h.processes(),
            None if state == "off" => vec![],
            None => crate::cgroup::track::inside(dir, &engine::self_binds(dir, mounts)),
        },
        disk_use: size.then(|| crate::usage::disk_use(dir).ok()).flatten(),
    }
}

/// The suite and codename of the sandbox at `dir`: from create.toml, the
/// codename else from the rootfs' os-release (a sandbox made otherwise).
pub fn release(dir: &Path) -> (Option<String>, Option<String>) {
    let rec = crate::create::load(dir);
    let suite = rec.as_ref().map(|r| r.suite.clone());
    let codename = rec.and_then(|r| r.codename).or_else(|| os_release(dir));
    (suite, codename)
}

fn os_release(dir: &Path) -> Option<String> {
    let root = crate::sys::open_root(dir).ok()?;
    ["/etc/os-release", "/usr/lib/os-release"]
        .iter()
        .find_map(|p| crate::sys::read_in_root(root.as_fd(), Path::new(p), 64 << 10).ok()?)
        .and_then(|b| codename_of(&String::from_utf8_lossy(&b)))
}

/// `VERSION_CODENAME` of an os-release text.
pub fn codename_of(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
        .map(|v| v.trim().trim_matches(['"', '\'']).to_string())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_once_list_sorted_prune_the_gone() {
        let t = tempfile::tempdir().unwrap();
        let reg = t.path().join("state/sandboxes");
        let a = t.path().join("b sand box");
        let b = t.path().join("a");
        for d in [&a, &b] {
            std::fs::create_dir(d).unwrap();
            record_in(&reg, d).unwrap();
            record_in(&reg, d).unwrap();
        }
        // Someone else's file in the directory is left alone.
        std::fs::write(reg.join("notes"), "x").unwrap();
        assert_eq!(sandboxes_in(&reg).unwrap(), vec![b.clone(), a.clone()]);
        std::fs::remove_dir(&a).unwrap();
        assert_eq!(sandboxes_in(&reg).unwrap(), vec![b.clone()]);
        assert!(!reg.join(entry_name(&a)).exists());
        assert!(reg.join("notes").exists());
        assert_eq!(std::fs::read_dir(&reg).unwrap().count(), 2);
    }

    #[test]
    fn codenames() {
        let t = "PRETTY_NAME=\"Debian GNU/Linux 13 (trixie)\"\nVERSION_CODENAME=trixie\n";
        assert_eq!(codename_of(t).as_deref(), Some("trixie"));
        assert_eq!(codename_of("ID=debian\n"), None);
    }
}
