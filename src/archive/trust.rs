//! An unpacked archive is someone else's data: what in its `chroot.d/`
//! would act on the host is set aside until the user accepts it.
//!
//! Acting on the host are `[bind]` records of `tool.conf` that mount a host
//! path (binds, and any filesystem whose source is an absolute path: a
//! device) and `host-cmd` (run on the host before each command). When there
//! is any, `tool.conf` becomes `tool.conf.untrusted` and `host-cmd` becomes
//! `host-cmd.untrusted`: `on` and `run` never read those names. Accepting
//! is renaming them back ([`accept`], or by hand with `mv`). A `tool.conf`
//! that does not parse is set aside too: what it would mount cannot be told.
//! The renames are made by descriptor inside DIR (no symlink followed).
use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::conf::{Conf, FsKind};
use crate::{show, sys};

pub const CONF: &str = "tool.conf";
pub const HOST_CMD: &str = "host-cmd";
/// The suffix of what was set aside.
pub const SUFFIX: &str = ".untrusted";

/// What in an unpacked sandbox would act on the host.
#[derive(Debug, Default, Clone)]
pub struct Review {
    /// `[bind]` records of host paths, each `tool.conf:LINE: src -> tgt (fs)`.
    pub binds: Vec<String>,
    /// `tool.conf` did not parse: the error.
    pub conf_error: Option<String>,
    /// `chroot.d/host-cmd` exists.
    pub host_cmd: bool,
}

impl Review {
    /// Nothing acts on the host.
    pub fn is_clean(&self) -> bool {
        self.binds.is_empty() && self.conf_error.is_none() && !self.host_cmd
    }
    fn conf_set_aside(&self) -> bool {
        !self.binds.is_empty() || self.conf_error.is_some()
    }
}

/// What the sandbox `dir` has that would act on the host.
pub fn review(dir: &Path) -> io::Result<Review> {
    let mut r = Review::default();
    match Conf::load_in_root(dir) {
        Ok(None) => {}
        Ok(Some(conf)) => {
            for b in conf.binds.iter().filter(|b| !b.ignore) {
                let host = match &b.fs {
                    FsKind::Bind | FsKind::BindRo => true,
                    FsKind::Tmpfs => false,
                    FsKind::Other(_) => b.src.starts_with('/'),
                };
                if host {
                    let fs = match &b.fs {
                        FsKind::Bind => "bind",
                        FsKind::BindRo => "bind-ro",
                        FsKind::Tmpfs => "tmpfs",
                        FsKind::Other(t) => t,
                    };
                    r.binds.push(format!(
                        "{CONF}:{}: {} -> {} ({fs})",
                        b.line,
                        show::os(&b.src),
                        show::path(&b.tgt)
                    ));
                }
            }
        }
        Err(e) => r.conf_error = Some(e.to_string()),
    }
    let cd = chroot_d(dir)?;
    if let Some(cd) = cd {
        r.host_cmd = nix::sys::stat::fstatat(
            cd.as_fd(),
            HOST_CMD,
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .is_ok();
    }
    Ok(r)
}

/// `DIR/chroot.d` as an `O_PATH` descriptor, reached without following a
/// symlink; `None` when there is none.
fn chroot_d(dir: &Path) -> io::Result<Option<OwnedFd>> {
    let root = sys::open_root(dir)?;
    match sys::resolve_beneath(root.as_fd(), Path::new("chroot.d")) {
        Ok(fd) => Ok(Some(fd)),
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ELOOP)) => Ok(None),
        Err(e) => Err(e),
    }
}

fn rename(cd: &OwnedFd, from: &str, to: &str) -> io::Result<()> {
    nix::fcntl::renameat(cd.as_fd(), OsStr::new(from), cd.as_fd(), OsStr::new(to))
        .map_err(io::Error::from)
}

/// Sets aside what `review` found; returns the paths now set aside.
pub fn set_aside(dir: &Path, r: &Review) -> io::Result<Vec<PathBuf>> {
    let mut out = vec![];
    let Some(cd) = chroot_d(dir)? else {
        return Ok(out);
    };
    for (yes, name) in [(r.conf_set_aside(), CONF), (r.host_cmd, HOST_CMD)] {
        if yes {
            let to = format!("{name}{SUFFIX}");
            rename(&cd, name, &to)?;
            out.push(dir.join("chroot.d").join(to));
        }
    }
    Ok(out)
}

/// `chroot.d/tool.conf` is the commented template `create` writes (as
/// `create --from FILE` does after setting the archive's aside): it may
/// be replaced.
fn is_template(dir: &Path, name: &str) -> bool {
    if name != CONF {
        return false;
    }
    let Ok(root) = sys::open_root(dir) else {
        return false;
    };
    let cap = crate::create::TOOL_CONF.len() + 1;
    matches!(
        sys::read_in_root(root.as_fd(), Path::new("/chroot.d/tool.conf"), cap),
        Ok(Some(b)) if b == crate::create::TOOL_CONF.as_bytes()
    )
}

/// Accepts what was set aside: `tool.conf.untrusted` and
/// `host-cmd.untrusted` get their names back (refused when a file of that
/// name exists, but for the template `tool.conf` of `create`). Returns the paths restored.
pub fn accept(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut out = vec![];
    let Some(cd) = chroot_d(dir)? else {
        return Ok(out);
    };
    for name in [CONF, HOST_CMD] {
        let from = format!("{name}{SUFFIX}");
        let flags = nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW;
        if nix::sys::stat::fstatat(cd.as_fd(), from.as_str(), flags).is_err() {
            continue;
        }
        if nix::sys::stat::fstatat(cd.as_fd(), name, flags).is_ok() && !is_template(dir, name) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "{} exists; move one of them away first",
                    show::path(dir.join("chroot.d").join(name))
                ),
            ));
        }
        rename(&cd, &from, name)?;
        out.push(dir.join("chroot.d").join(name));
    }
    Ok(out)
}
