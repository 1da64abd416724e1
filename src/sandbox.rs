//! A sandbox directory: validation of DIR, its chroot.d files and its plan.
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::conf::Conf;
use crate::plan::{self, Op};
use crate::sys;

#[derive(Debug, Clone)]
pub struct Sandbox {
    /// Absolute, canonical host path of the root filesystem.
    pub dir: PathBuf,
}

/// How much of a root filesystem a command needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// on/run/shell: a root filesystem with /bin/sh.
    Rootfs,
    /// off/status: any existing directory (a broken rootfs can still be turned off).
    Dir,
}

impl Sandbox {
    /// DIR from `-d` or `$CHROOT_TOOL_DIR` (already merged by the CLI); never guessed.
    pub fn open(dir: Option<&Path>, need: Need) -> Result<Sandbox> {
        let Some(given) = dir else {
            return Err(crate::cli::Usage(crate::cli::NO_DIR.into()).into());
        };
        if given.as_os_str().is_empty() {
            bail!("empty sandbox path: pass -d DIR");
        }
        let dir = std::fs::canonicalize(given).with_context(|| {
            format!(
                "{}: no such directory (make one with `chroot-tool create -d DIR`)",
                crate::show::path(given)
            )
        })?;
        if !dir.is_dir() {
            bail!("{}: not a directory", crate::show::path(&dir));
        }
        if dir == Path::new("/") {
            bail!(
                "refusing to use / as a sandbox: pass the directory that holds the root filesystem"
            );
        }
        let sb = Sandbox { dir };
        if need == Need::Rootfs && !sb.has_shell() {
            bail!(
                "{}: not a root filesystem (no /bin/sh inside); make one with `chroot-tool create -d DIR`",
                crate::show::path(&sb.dir)
            );
        }
        Ok(sb)
    }

    /// Does `/bin/sh` resolve inside the root?
    pub fn has_shell(&self) -> bool {
        sys::open_root(&self.dir)
            .and_then(|r| sys::resolve_in_root(r.as_fd(), Path::new("/bin/sh")))
            .is_ok()
    }

    pub fn chroot_d(&self) -> PathBuf {
        self.dir.join("chroot.d")
    }

    /// tool.conf, or an empty one when the sandbox has none.
    pub fn conf(&self) -> Result<Conf> {
        let cd = self.chroot_d();
        if let Ok(root) = sys::open_root(&self.dir) {
            if let Some(msg) = crate::conf::conf_sh_notice(root.as_fd(), &cd) {
                eprintln!("chroot-tool: {msg}");
            }
        }
        let conf = Conf::load_in_root(&self.dir)?.unwrap_or_default();
        for w in &conf.warnings {
            eprintln!("chroot-tool: warning: {w}");
        }
        for section in ["limits", "run"] {
            if let Some(r) = conf.section(section).first() {
                eprintln!(
                    "chroot-tool: warning: {}:{}: [{section}] is not applied by this version; the records are ignored",
                    crate::show::path(cd.join("tool.conf")),
                    r.line
                );
            }
        }
        Ok(conf)
    }

    /// What `on` mounts for this sandbox.
    pub fn plan(&self) -> Result<Vec<Op>> {
        let conf = self.conf()?;
        let filesystems =
            std::fs::read_to_string("/proc/filesystems").context("reading /proc/filesystems")?;
        let resolv = std::fs::canonicalize("/etc/resolv.conf")
            .ok()
            .filter(|p| p.is_file());
        let conf_path = self.chroot_d().join("tool.conf");
        plan::build(&conf.binds, resolv.as_deref(), &filesystems)
            .with_context(|| format!("{}: nothing was mounted", crate::show::path(&conf_path)))
    }

    /// Is `chroot.d/NAME` an executable file (looked up inside the root)?
    pub fn has_command(&self, name: &str) -> bool {
        self.chroot_d_file(name)
            .is_some_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }

    /// Metadata of `chroot.d/NAME`, the path resolved inside the root.
    pub fn chroot_d_file(&self, name: &str) -> Option<std::fs::Metadata> {
        self.chroot_file(Path::new("/chroot.d").join(name))
    }

    /// Metadata of a path inside the root, resolved inside it.
    pub fn chroot_file(&self, path: impl AsRef<Path>) -> Option<std::fs::Metadata> {
        let root = sys::open_root(&self.dir).ok()?;
        let fd = sys::resolve_in_root(root.as_fd(), path.as_ref()).ok()?;
        std::fs::metadata(sys::fd_path(fd.as_fd())).ok()
    }
}
