//! Mechanism that applies a plan and tears a sandbox down.
//!
//! `on` first binds DIR onto itself as a *private* mount, so nothing mounted
//! below it ever propagates to or from the host, then mounts each operation
//! of the plan on a descriptor resolved inside the root. Every mount is made
//! detached (fsmount / open_tree), given its attributes and propagation, and
//! only then attached: there is no instant at which it is shared or writable
//! against the plan. A failure unmounts what this call mounted (rollback).
//!
//! `off` reads the truth from mountinfo, never a remembered list: it unmounts
//! what lies at or below DIR, deepest first, each one reached by a path with
//! no symlink in it and checked by mount id before it is unmounted.
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use crate::mountinfo::{self, Mount};
use crate::plan::{Op, What};
use crate::sys::{self, Attrs, Node, Propagation};

/// Environment variable for fault-injection tests: `on` kills itself with
/// SIGKILL right after this many mounts, as a crash would.
pub const FAULT_KILL_AFTER: &str = "CHROOT_TOOL_FAULT_KILL_AFTER_MOUNTS";

/// What `turn_on` did.
#[derive(Debug, Default)]
pub struct OnReport {
    pub mounted: Vec<String>,
    pub already: usize,
    /// Mount points found mounted differently than planned (left alone).
    pub differs: Vec<String>,
}

/// True when `m` is a bind of its parent's directory onto itself, as `on` makes at DIR.
pub fn is_self_bind(m: &Mount, mounts: &[Mount]) -> bool {
    let Some(parent) = mounts.iter().find(|p| p.id == m.parent) else {
        return false;
    };
    let Ok(rel) = m.point.strip_prefix(&parent.point) else {
        return false;
    };
    m.dev == parent.dev && m.root == parent.root.join(rel)
}

/// Whether the sandbox at `dir` is on: its private self-bind is in the mount table.
pub fn is_on(dir: &Path, mounts: &[Mount]) -> bool {
    mountinfo::top_at(mounts, dir).is_some_and(|m| is_self_bind(m, mounts))
}

/// The quick check `run` makes before anything else: the sandbox is on and
/// every mount of the plan is in the table at its plain path. When it fails
/// (a target behind a symlink, a mount missing), `turn_on` decides.
pub fn looks_on(dir: &Path, plan: &[Op], mounts: &[Mount]) -> bool {
    is_on(dir, mounts)
        && plan.iter().filter(|o| o.is_mount()).all(|o| {
            let point = dir.join(o.target.strip_prefix("/").unwrap_or(&o.target));
            mounts.iter().any(|m| m.point == point)
        })
}

/// Mounts the plan in `dir`. Idempotent: what is already mounted as planned is left alone.
pub fn turn_on(dir: &Path, plan: &[Op]) -> Result<OnReport> {
    let mut undo: Vec<u64> = vec![];
    let mut report = OnReport::default();
    let res = apply(dir, plan, &mut undo, &mut report);
    if let Err(e) = res {
        let left = unmount_ids(dir, &undo);
        if left.is_empty() {
            return Err(anyhow!("{e:#}; nothing was mounted"));
        }
        return Err(anyhow!(
            "{e:#}; and these could not be unmounted again: {}; run `chroot-tool off`",
            left.join(", ")
        ));
    }
    Ok(report)
}

fn apply(dir: &Path, plan: &[Op], undo: &mut Vec<u64>, report: &mut OnReport) -> Result<()> {
    let fault: Option<usize> = std::env::var(FAULT_KILL_AFTER)
        .ok()
        .and_then(|v| v.parse().ok());
    let mounts = mountinfo::read().context("reading /proc/self/mountinfo")?;
    let fresh = !is_on(dir, &mounts);
    if fresh {
        // Recursive: what the user mounted below DIR before `on` stays visible inside.
        let tree = sys::clone_tree(dir, true, Attrs(0), Propagation::Private)
            .with_context(|| format!("binding {} onto itself", dir.display()))?;
        let target = sys::open_path(dir).with_context(|| format!("opening {}", dir.display()))?;
        sys::attach(tree.as_fd(), target.as_fd())
            .with_context(|| format!("binding {} onto itself", dir.display()))?;
        undo.push(sys::mount_of(tree.as_fd())?.0);
    }
    let root = sys::open_root(dir).with_context(|| format!("opening {}", dir.display()))?;
    let (root_id, _) = sys::mount_of(root.as_fd())?;
    // Attached below a shared mount (a systemd host), the kernel makes the
    // self-bind (and the copies of mounts below it) shared with the host's
    // peers; made private again here (the self-bind also on every `on`, in
    // case a crash came between), nothing mounted below it ever propagates
    // to the host or its other namespaces.
    sys::set_attrs(root.as_fd(), Attrs(0), Some(Propagation::Private), fresh)
        .with_context(|| format!("making {} private", dir.display()))?;
    // Directories and files are created only on DIR's own filesystem and on
    // fresh filesystems of the plan, never on a host path bound in (a
    // symlink in the rootfs could otherwise point a target into one).
    let mut creatable: Vec<u64> = vec![root_id];
    let mut mounts = mounts;
    let mut count = 0;
    for op in plan {
        let ctx = || format!("{} ({})", op.describe(), op.origin_note());
        if let What::Symlink { to } = &op.what {
            make_symlink(root.as_fd(), &op.target, to, &creatable).with_context(ctx)?;
            continue;
        }
        // A bind source inside DIR is the sandbox's own content: resolved
        // inside the root like a target, so its symlinks cannot reach the host.
        let src_fd = match &op.what {
            What::Bind { src, .. } => match src.strip_prefix(dir) {
                Ok(rel) => Some(sys::resolve_in_root(root.as_fd(), rel).with_context(|| {
                    format!(
                        "bind source {} resolved inside {} ({})",
                        src.display(),
                        dir.display(),
                        op.origin_note()
                    )
                })?),
                Err(_) => None,
            },
            _ => None,
        };
        let node = match &op.what {
            What::Bind { src, .. } => {
                let md = match &src_fd {
                    Some(fd) => std::fs::metadata(sys::fd_path(fd.as_fd())),
                    None => std::fs::metadata(src),
                }
                .with_context(|| format!("bind source {} ({})", src.display(), op.origin_note()))?;
                if md.is_dir() {
                    Node::Dir
                } else {
                    Node::File
                }
            }
            _ => Node::Dir,
        };
        let may =
            |d: BorrowedFd, name: &std::ffi::OsStr| may_create(root.as_fd(), d, name, &creatable);
        let (target, _) = sys::resolve::resolve_create(root.as_fd(), &op.target, node, &may)
            .with_context(|| format!("resolving {} inside {}", op.target.display(), dir.display()))
            .with_context(ctx)?;
        let inside = sys::resolve::in_root_path(root.as_fd(), target.as_fd())?;
        if inside == Path::new("/") {
            bail!(
                "{} resolves to the sandbox's root itself; refusing to mount over it ({})",
                op.target.display(),
                op.origin_note()
            );
        }
        let (id, is_mount_root) = sys::mount_of(target.as_fd())?;
        if is_mount_root && id != root_id {
            if mounts.iter().all(|m| m.id != id) {
                mounts = mountinfo::read()?;
            }
            match mounts.iter().find(|m| m.id == id) {
                Some(m) if matches_op(m, op) => {
                    report.already += 1;
                    if matches!(op.what, What::Fs { .. }) {
                        creatable.push(id);
                    }
                }
                _ => report.differs.push(format!(
                    "{}: mounted, but not as planned ({}); `off` then `on` to apply tool.conf",
                    dir.join(inside.strip_prefix("/").unwrap_or(&inside))
                        .display(),
                    op.describe()
                )),
            }
            continue;
        }
        let mnt = match (&src_fd, &op.what) {
            (Some(fd), What::Bind { recursive, .. }) => {
                sys::clone_tree_fd(fd.as_fd(), *recursive, op.attrs, op.propagation)
            }
            _ => make_mount(op),
        }
        .with_context(ctx)?;
        sys::attach(mnt.as_fd(), target.as_fd())
            .with_context(|| {
                format!(
                    "attaching at {}",
                    dir.join(inside.strip_prefix("/").unwrap()).display()
                )
            })
            .with_context(ctx)?;
        report.mounted.push(op.describe());
        let (new_id, _) = sys::mount_of(mnt.as_fd())?;
        undo.push(new_id);
        if matches!(op.what, What::Fs { .. }) {
            creatable.push(new_id);
        }
        count += 1;
        if fault == Some(count) {
            let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
        }
    }
    Ok(())
}

fn make_mount(op: &Op) -> io::Result<OwnedFd> {
    match &op.what {
        What::Fs {
            fstype,
            source,
            options,
        } => sys::new_fs(fstype, source, options, op.attrs),
        What::Bind { src, recursive } => sys::clone_tree(src, *recursive, op.attrs, op.propagation),
        What::Symlink { .. } => unreachable!("symlinks are not mounts"),
    }
}

/// Whether the mount found at an operation's target is what the operation makes.
fn matches_op(m: &Mount, op: &Op) -> bool {
    let ro = m.has_option("ro");
    if ro != op.attrs.has(Attrs::RDONLY) {
        return false;
    }
    match &op.what {
        What::Fs { fstype, .. } => &m.fstype == fstype,
        What::Bind { src, .. } => {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata(src).is_ok_and(|md| {
                let dev = md.dev();
                m.dev == format!("{}:{}", libc::major(dev), libc::minor(dev))
            })
        }
        What::Symlink { .. } => true,
    }
}

/// Refuses to create `name` in `dir` unless `dir` lies on one of the `allowed` mounts.
fn may_create(
    root: BorrowedFd,
    dir: BorrowedFd,
    name: &std::ffi::OsStr,
    allowed: &[u64],
) -> io::Result<()> {
    let (id, _) = sys::mount_of(dir)?;
    if allowed.contains(&id) {
        return Ok(());
    }
    let at = sys::resolve::in_root_path(root, dir)
        .map(|p| p.join(name).display().to_string())
        .unwrap_or_else(|_| name.to_string_lossy().into_owned());
    Err(io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!(
            "refusing to create {at}: it would lie on a host directory bound into the sandbox; \
             create it on the host or change the symlink in the rootfs"
        ),
    ))
}

fn make_symlink(root: BorrowedFd, target: &Path, to: &Path, allowed: &[u64]) -> io::Result<()> {
    let parent = target.parent().unwrap_or(Path::new("/"));
    let name = target
        .file_name()
        .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    let may = |d: BorrowedFd, n: &std::ffi::OsStr| may_create(root, d, n, allowed);
    let (dirfd, _) = sys::resolve::resolve_create(root, parent, Node::Dir, &may)?;
    let dir = nix::fcntl::openat(
        dirfd.as_fd(),
        ".",
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    may_create(root, dirfd.as_fd(), name, allowed)?;
    match nix::unistd::symlinkat(to, dir.as_fd(), name) {
        Ok(()) | Err(nix::errno::Errno::EEXIST) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Unmounts everything at or below `dir`, deepest first, as read from
/// mountinfo, until nothing changes. At `dir` itself only `on`'s self-bind
/// is removed, never a filesystem the user mounted there. Returns the mount
/// points that are still there.
pub fn unmount_below(dir: &Path) -> io::Result<Vec<PathBuf>> {
    // When `on`'s self-bind is there, only it and what was mounted on top
    // of it are the sandbox's: mounts the user had made below DIR before
    // `on` (on the directory it covers) are left as they were. Without it
    // (a rootfs turned on by the 2020 tool, debootstrap's own mounts),
    // everything below DIR goes.
    let ours = self_binds(dir, &mountinfo::read()?);
    loop {
        let mounts = mountinfo::read()?;
        let mut todo: Vec<&Mount> = mountinfo::under(&mounts, dir)
            .into_iter()
            .filter(|m| m.point != dir || is_self_bind(m, &mounts))
            .filter(|m| ours.is_empty() || ours.contains(&m.id) || descends_from(m, &ours, &mounts))
            .collect();
        if todo.is_empty() {
            return Ok(vec![]);
        }
        // Deepest first; at one point, the last mounted first.
        todo.sort_by_key(|m| {
            std::cmp::Reverse((m.point.components().count(), position(&mounts, m)))
        });
        let mut progress = false;
        for m in &todo {
            if unmount_one(dir, m).is_ok() {
                progress = true;
            }
        }
        if !progress {
            let mut left: Vec<PathBuf> = todo.iter().map(|m| m.point.clone()).collect();
            left.dedup();
            return Ok(left);
        }
    }
}

/// The ids of `on`'s self-binds at `dir`.
pub fn self_binds(dir: &Path, mounts: &[Mount]) -> Vec<u64> {
    mounts
        .iter()
        .filter(|m| m.point == dir && is_self_bind(m, mounts))
        .map(|m| m.id)
        .collect()
}

/// The sandbox's own mounts: `on`'s self-binds at `dir` and every mount
/// made on them, by mount id (none when the sandbox has no self-bind).
pub fn own_mounts(dir: &Path, mounts: &[Mount]) -> Vec<u64> {
    let ours = self_binds(dir, mounts);
    let mut own = ours.clone();
    own.extend(
        mounts
            .iter()
            .filter(|m| !ours.contains(&m.id) && descends_from(m, &ours, mounts))
            .map(|m| m.id),
    );
    own
}

/// Whether `m` was mounted (directly or not) on one of the mounts `ids`.
fn descends_from(m: &Mount, ids: &[u64], mounts: &[Mount]) -> bool {
    let mut cur = m;
    for _ in 0..mounts.len() {
        if ids.contains(&cur.parent) {
            return true;
        }
        match mounts.iter().find(|p| p.id == cur.parent && p.id != cur.id) {
            Some(p) => cur = p,
            None => return false,
        }
    }
    false
}

fn position(mounts: &[Mount], m: &Mount) -> usize {
    mounts.iter().position(|x| x.id == m.id).unwrap_or(0)
}

/// Unmounts `m` if, reached from `dir` with no symlink followed, it is the
/// mount at the top of its point; anything else is left for a later pass.
/// The check is made on a descriptor; the unmount itself (which an open
/// descriptor would make busy) names the point relative to its verified
/// parent directory, with no symlink followed.
fn unmount_one(dir: &Path, m: &Mount) -> Result<()> {
    let rel = m.point.strip_prefix(dir)?;
    {
        let root = sys::open_root(dir)?;
        let fd = if rel.as_os_str().is_empty() {
            root
        } else {
            sys::resolve_beneath(root.as_fd(), rel)?
        };
        let (id, is_root) = sys::mount_of(fd.as_fd())?;
        if id != m.id || !is_root {
            return Err(anyhow!("{} is covered", m.point.display()));
        }
    }
    let (parent, name) = if rel.as_os_str().is_empty() {
        let p = dir.parent().ok_or_else(|| anyhow!("no parent"))?;
        (
            sys::open_path(p)?,
            dir.file_name().ok_or_else(|| anyhow!("no name"))?,
        )
    } else {
        let root = sys::open_root(dir)?;
        let p = rel.parent().unwrap_or(Path::new(""));
        (
            sys::resolve_beneath(root.as_fd(), p)?,
            rel.file_name().ok_or_else(|| anyhow!("no name"))?,
        )
    };
    match sys::unmount_at(parent.as_fd(), name, false) {
        // DIR's self-bind is the same directory as what it covers and nothing
        // is mounted below it any more: a host shell whose working directory
        // is in DIR may keep it, harmlessly, after it is detached.
        Err(e)
            if rel.as_os_str().is_empty()
                && e.raw_os_error() == Some(libc::EBUSY)
                && mountinfo::read()?.iter().all(|c| c.parent != m.id) =>
        {
            sys::unmount_at(parent.as_fd(), name, true)?
        }
        r => r?,
    }
    Ok(())
}

/// Unmounts the mounts with these ids (made by this process), last first.
fn unmount_ids(dir: &Path, ids: &[u64]) -> Vec<String> {
    let mut left = vec![];
    for id in ids.iter().rev() {
        let Ok(mounts) = mountinfo::read() else {
            left.push(format!("mount {id}"));
            continue;
        };
        if let Some(m) = mounts.iter().find(|m| m.id == *id) {
            if let Err(e) = unmount_one(dir, m) {
                left.push(format!("{} ({e})", m.point.display()));
            }
        }
    }
    left
}
