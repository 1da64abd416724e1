//! Namespaces of a run's own: `-m SRC:TGT[:OPTS]` mounts for this run only
//! (made in its own mount namespace), `--net none` (its own network
//! namespace, loopback only) and `--pid` (its own pid namespace, a fresh
//! /proc). The mounts are made here, detached, and their targets resolved
//! inside the root before the fork; the child attaches them after entering
//! its mount namespace (`sys::child`), so that none is ever visible on the
//! host or to another run, and all go with the namespace when the command ends.
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::show;
use crate::sys::{self, Attrs, Node, Propagation};

/// What a `-m` mounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountKind {
    /// `bind` (the default): the host's SRC, with what is mounted below it.
    Bind,
    /// `ro`: as `bind`, read-only (everything below too).
    BindRo,
    /// A filesystem type (`tmpfs,size=10m`): a new one, SRC its source
    /// (`none` for none), the words after the type its options.
    Fs {
        fstype: String,
        options: Vec<String>,
    },
}

/// One `-m SRC:TGT[:OPTS]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    pub src: String,
    /// Absolute, inside the sandbox.
    pub tgt: PathBuf,
    pub kind: MountKind,
}

impl MountSpec {
    /// `-m SRC:TGT[:OPTS]`: OPTS is `bind` (default), `ro`, or a filesystem
    /// type with its options after commas (`tmpfs,size=10m`).
    pub fn parse(arg: &str) -> Result<MountSpec, String> {
        let bad = |why: &str| format!("-m {}: {why}", show::quote(arg));
        let mut parts = arg.splitn(3, ':');
        let (src, tgt, opts) = (parts.next().unwrap_or(""), parts.next(), parts.next());
        let Some(tgt) = tgt else {
            return Err(bad("expected SRC:TGT[:OPTS]"));
        };
        if src.is_empty() || src.contains('\0') {
            return Err(bad("SRC is empty"));
        }
        if !tgt.starts_with('/') || tgt.contains('\0') {
            return Err(bad("TGT must be an absolute path inside the sandbox"));
        }
        let mut words = opts.unwrap_or("bind").split(',');
        let kind = match words.next().unwrap_or("") {
            "bind" | "" => MountKind::Bind,
            "ro" => MountKind::BindRo,
            t if t
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) =>
            {
                MountKind::Fs {
                    fstype: t.to_string(),
                    options: words.by_ref().map(str::to_string).collect(),
                }
            }
            _ => {
                return Err(bad(
                    "OPTS is bind, ro, or a filesystem type and its options",
                ))
            }
        };
        if matches!(kind, MountKind::Bind | MountKind::BindRo) && words.next().is_some() {
            return Err(bad(
                "bind and ro take no options (a filesystem type does: tmpfs,size=10m)",
            ));
        }
        Ok(MountSpec {
            src: src.to_string(),
            tgt: PathBuf::from(tgt),
            kind,
        })
    }

    fn shown(&self) -> String {
        let opts = match &self.kind {
            MountKind::Bind => "bind".to_string(),
            MountKind::BindRo => "ro".to_string(),
            MountKind::Fs { fstype, options } => std::iter::once(fstype.clone())
                .chain(options.iter().cloned())
                .collect::<Vec<_>>()
                .join(","),
        };
        let spec = format!("{}:{}:{opts}", self.src, self.tgt.display());
        format!("-m {}", show::quote(&spec))
    }
}

/// A `-m` mount made and detached, and where it goes (inside the root).
#[derive(Debug)]
pub struct Prepared {
    pub mnt: OwnedFd,
    pub at: PathBuf,
    /// `-m ...` as given, for messages.
    pub shown: String,
}

/// The namespaces a run asks for. All off: the host's, as before.
#[derive(Debug, Default)]
pub struct Isolation {
    pub mounts: Vec<MountSpec>,
    /// [`Isolation::prepare`]d from `mounts`.
    pub prepared: Vec<Prepared>,
    pub net_none: bool,
    pub pid: bool,
    /// With `pid`: the sandbox's `/proc`, as a path inside the root.
    pub proc_at: Option<PathBuf>,
    /// `--ephemeral`: the run's writes go to a throw-away overlay.
    pub ephemeral: bool,
    /// [`Isolation::prepare`]d from `ephemeral`.
    pub ephemeral_view: Option<Ephemeral>,
    /// What [`Isolation::prepare`] made for the targets (each in its
    /// directory), for [`Isolation::unmake`] when the run is refused.
    pub made: Vec<(OwnedFd, std::ffi::OsString)>,
}

/// The run's own overlay (`--ephemeral`), made before the fork: a tmpfs of
/// the run's (upper and work directories; no file on disk), the overlay
/// over the sandbox's root (detached), and the sandbox's mounts cloned to
/// be bound again on it. The child attaches them in its own mount
/// namespace; everything goes with it when the run ends.
#[derive(Debug)]
pub struct Ephemeral {
    pub merged: OwnedFd,
    /// Each of the sandbox's mounts on its root (with what is mounted on
    /// it), and its path inside the root.
    pub rebinds: Vec<(OwnedFd, PathBuf)>,
}

/// Where a mount at `tgt` inside `root` would first change the tree, as
/// the tree is now, nothing made: the target itself when it is there,
/// else the first of its parts that `prepare` would make. `None` when it
/// cannot be told (`prepare` then says why).
fn first_place(root: BorrowedFd, tgt: &Path) -> Option<std::path::PathBuf> {
    let first = std::cell::RefCell::new(None);
    let ask = |d: BorrowedFd, name: &std::ffi::OsStr| {
        *first.borrow_mut() = Some(sys::resolve::in_root_path(root, d)?.join(name));
        // Nothing is made: the look ends here.
        Err(std::io::Error::from(std::io::ErrorKind::WouldBlock))
    };
    match sys::resolve::resolve_create(root, tgt, Node::Dir, &ask) {
        Ok((fd, _)) => sys::resolve::in_root_path(root, fd.as_fd()).ok(),
        Err(_) => first.into_inner(),
    }
}

impl Isolation {
    /// Whether the command gets a mount namespace of its own.
    pub fn own_mounts(&self) -> bool {
        !self.prepared.is_empty() || self.pid || self.ephemeral
    }

    /// Makes the mounts (detached) and resolves their targets inside
    /// `root`, the sandbox `dir` as it is now that it is on. A missing
    /// target directory (or file, for a file bound) is created as the
    /// engine creates them, only on the sandbox's own filesystem, and
    /// never where `keep_out` (given a path inside the root) says why not:
    /// every target, and the first part of it to be made, is asked first,
    /// so that a run refused for where one of its mounts goes leaves
    /// nothing made for the others either.
    pub fn prepare(
        &mut self,
        root: BorrowedFd,
        dir: &Path,
        keep_out: &dyn Fn(&Path) -> Option<String>,
    ) -> Result<()> {
        for spec in &self.mounts {
            if let Some(why) = first_place(root, &spec.tgt).as_deref().and_then(keep_out) {
                bail!("{}: {why}", spec.shown());
            }
        }
        let (root_id, _) = sys::mount_of(root)?;
        let ephemeral = self.ephemeral;
        let made = std::cell::RefCell::new(vec![]);
        let may = |d: BorrowedFd, name: &std::ffi::OsStr| {
            // Asked again as it is made (the tree may have changed since).
            let at = sys::resolve::in_root_path(root, d)?.join(name);
            if let Some(why) = keep_out(&at) {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    why,
                ));
            }
            if ephemeral {
                // Nothing of an ephemeral run is written to the sandbox.
                return Err(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!(
                        "{} is missing; with --ephemeral a -m target must exist in the sandbox",
                        show::path(name)
                    ),
                ));
            }
            crate::engine::may_create(root, d, name, &[root_id])
        };
        // Only what this run made itself is ever removed again.
        let noted = |d: BorrowedFd, name: &std::ffi::OsStr| {
            if let Ok(d) = d.try_clone_to_owned() {
                made.borrow_mut().push((d, name.to_owned()));
            }
        };
        let prepared = self.prepare_mounts(root, dir, &may, &noted);
        self.made = made.into_inner();
        let prepared = match prepared {
            Ok(p) => p,
            Err(e) => {
                self.unmake();
                return Err(e);
            }
        };
        self.prepared = prepared;
        let rest = self.prepare_views(root, dir);
        if rest.is_err() {
            self.unmake();
        }
        rest
    }

    /// `--ephemeral`'s overlay and `--pid`'s place for a fresh /proc.
    fn prepare_views(&mut self, root: BorrowedFd, dir: &Path) -> Result<()> {
        if self.ephemeral {
            self.ephemeral_view = Some(ephemeral_view(root, dir)?);
        }
        if self.pid {
            let proc = sys::resolve_in_root(root, Path::new("/proc")).with_context(|| {
                format!(
                    "--pid: {} (a fresh proc goes there)",
                    show::path(dir.join("proc"))
                )
            })?;
            self.proc_at = Some(sys::resolve::in_root_path(root, proc.as_fd())?);
        }
        Ok(())
    }

    /// Removes what [`Isolation::prepare`] made for the targets, last made
    /// first, while it is still what was made: an empty directory, or an
    /// empty file (a file bound). A refused run leaves nothing made.
    pub fn unmake(&mut self) {
        use nix::fcntl::AtFlags;
        use nix::unistd::{unlinkat, UnlinkatFlags};
        for (d, name) in self.made.drain(..).rev() {
            match unlinkat(&d, name.as_os_str(), UnlinkatFlags::RemoveDir) {
                Err(nix::errno::Errno::ENOTDIR) => {}
                _ => continue,
            }
            let empty_file =
                nix::sys::stat::fstatat(&d, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW)
                    .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFREG && st.st_size == 0);
            if empty_file {
                let _ = unlinkat(&d, name.as_os_str(), UnlinkatFlags::NoRemoveDir);
            }
        }
    }

    /// The `-m` mounts made (detached), their targets resolved inside
    /// `root` (made where missing, each asked of `may` first).
    fn prepare_mounts(
        &self,
        root: BorrowedFd,
        dir: &Path,
        may: &dyn Fn(BorrowedFd, &std::ffi::OsStr) -> std::io::Result<()>,
        noted: &dyn Fn(BorrowedFd, &std::ffi::OsStr),
    ) -> Result<Vec<Prepared>> {
        let mut prepared: Vec<Prepared> = Vec::new();
        for spec in &self.mounts {
            let shown = spec.shown();
            let (mnt, node) = match &spec.kind {
                MountKind::Bind | MountKind::BindRo => {
                    let abs = std::env::current_dir()
                        .context("the current directory")?
                        .join(&spec.src);
                    let src = crate::engine::open_bind_source(root, &abs)
                        .with_context(|| format!("{shown}: source {}", show::quote(&spec.src)))?;
                    let st = nix::sys::stat::fstat(src.as_fd())
                        .with_context(|| format!("{shown}: source {}", show::quote(&spec.src)))?;
                    let ro = spec.kind == MountKind::BindRo;
                    let attrs = Attrs(if ro { Attrs::RDONLY } else { 0 });
                    let mnt = sys::clone_tree_fd(src.as_fd(), true, attrs, Propagation::Private)
                        .with_context(|| format!("{shown}: binding the source"))?;
                    let dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
                    (mnt, if dir { Node::Dir } else { Node::File })
                }
                MountKind::Fs { fstype, options } => {
                    let mnt = sys::new_fs(fstype, &spec.src, options, Attrs(0))
                        .with_context(|| format!("{shown}: making the {fstype} filesystem"))?;
                    (mnt, Node::Dir)
                }
            };
            let (target, _) =
                sys::resolve::resolve_create_noting(root, &spec.tgt, node, may, noted)
                    .with_context(|| {
                        format!("{shown}: resolving the target inside {}", show::path(dir))
                    })?;
            let at = sys::resolve::in_root_path(root, target.as_fd())?;
            if at == Path::new("/") {
                bail!(
                    "{shown}: the target is the sandbox's root itself; refusing to mount over it"
                );
            }
            if let Some(p) = prepared
                .iter()
                .find(|p| at.starts_with(&p.at) || p.at.starts_with(&at))
            {
                bail!(
                    "{shown}: its target {} and that of {} ({}) lie one in the other; give targets apart",
                    show::path(&at),
                    p.shown,
                    show::path(&p.at)
                );
            }
            prepared.push(Prepared { mnt, at, shown });
        }
        Ok(prepared)
    }
}

/// The run's overlay over `root` (the sandbox `dir`, on): see [`Ephemeral`].
fn ephemeral_view(root: BorrowedFd, dir: &Path) -> Result<Ephemeral> {
    use nix::sys::stat::{fchmodat, mkdirat, FchmodatFlags, Mode};
    let ctx = || "--ephemeral: making the run's overlay".to_string();
    let tmp = sys::new_fs(
        "tmpfs",
        "chroot-tool-ephemeral",
        &["mode=0755".into()],
        Attrs(0),
    )
    .with_context(ctx)?;
    let st = nix::sys::stat::fstat(root).with_context(ctx)?;
    mkdirat(tmp.as_fd(), "upper", Mode::from_bits_truncate(0o755)).with_context(ctx)?;
    mkdirat(tmp.as_fd(), "work", Mode::from_bits_truncate(0o700)).with_context(ctx)?;
    // The merged root takes the upper directory's owner and mode: the root's.
    fchmodat(
        tmp.as_fd(),
        "upper",
        Mode::from_bits_truncate(st.st_mode & 0o7777),
        FchmodatFlags::NoFollowSymlink,
    )
    .with_context(ctx)?;
    nix::unistd::fchownat(
        tmp.as_fd(),
        "upper",
        Some(st.st_uid.into()),
        Some(st.st_gid.into()),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .with_context(ctx)?;
    let upper = sys::resolve_beneath(tmp.as_fd(), Path::new("upper")).with_context(ctx)?;
    let work = sys::resolve_beneath(tmp.as_fd(), Path::new("work")).with_context(ctx)?;
    let options = crate::overlay::options(sys::in_user_ns());
    let merged = sys::new_overlay(
        &[root],
        Some((upper.as_fd(), work.as_fd())),
        &options,
        Attrs(0),
    )
    .with_context(|| format!("--ephemeral: an overlay over {}", show::path(dir)))?;
    // The sandbox's mounts on its root, each found by its path with no
    // symlink on the way and cloned with what is mounted on it. The
    // sandbox's own chroot.d bound over an overlay sandbox's view is a
    // directory on disk: bound read-only here, so that no write of the
    // run reaches it.
    // The mounts on the root as opened (never DIR's path again), asked
    // mount by mount: their cost is the sandbox's, not the host's.
    let (root_id, _) = sys::mount_of(root)?;
    let mounts = match crate::mountinfo::read_on(root) {
        Some(m) => m,
        None => crate::mountinfo::read().context("reading /proc/self/mountinfo")?,
    };
    let mut rebinds: Vec<(OwnedFd, PathBuf)> = Vec::new();
    for m in mounts
        .iter()
        .filter(|m| m.parent == root_id && m.id != root_id)
    {
        let Ok(rel) = m.point.strip_prefix(dir) else {
            continue;
        };
        if rel.as_os_str().is_empty() {
            continue;
        }
        let at = Path::new("/").join(rel);
        if rebinds.iter().any(|(_, p)| *p == at) {
            continue;
        }
        let fd = sys::resolve_beneath(root, rel)
            .with_context(|| format!("--ephemeral: {}", show::path(&m.point)))?;
        let ro = at == Path::new("/chroot.d") && crate::overlay::is_overlay(dir);
        let attrs = Attrs(if ro { Attrs::RDONLY } else { 0 });
        let mnt = sys::clone_tree_fd(fd.as_fd(), true, attrs, Propagation::Private)
            .with_context(|| format!("--ephemeral: binding {} again", show::path(&m.point)))?;
        rebinds.push((mnt, at));
    }
    // Parents first (a mount on a mount point below another one's).
    rebinds.sort_by_key(|(_, at)| at.components().count());
    Ok(Ephemeral { merged, rebinds })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_chorut_format() {
        let m = |s: &str| MountSpec::parse(s);
        assert_eq!(m("/a:/b").unwrap().kind, MountKind::Bind);
        assert_eq!(m("/a:/b:bind").unwrap().kind, MountKind::Bind);
        assert_eq!(m("/a:/b:ro").unwrap().kind, MountKind::BindRo);
        let t = m("none:/scratch:tmpfs,size=10m,mode=1777").unwrap();
        assert_eq!(t.src, "none");
        assert_eq!(t.tgt, Path::new("/scratch"));
        assert_eq!(
            t.kind,
            MountKind::Fs {
                fstype: "tmpfs".into(),
                options: vec!["size=10m".into(), "mode=1777".into()]
            }
        );
        for bad in [
            "/a",
            ":/b",
            "/a:b",
            "/a:",
            "/a:/b:ro,size=1",
            "/a:/b:bad type",
            "/a:/b:x/y",
        ] {
            let e = m(bad).unwrap_err();
            assert!(e.starts_with("-m "), "{bad}: {e}");
        }
    }
}
