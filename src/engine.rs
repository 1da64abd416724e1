//! Mechanism that applies a plan and tears a sandbox down.
//!
//! `on` first binds DIR onto itself as a *private* mount, so nothing mounted
//! below it ever propagates to or from the host, then mounts each operation
//! of the plan on a descriptor resolved inside the root. Every mount is made
//! detached (fsmount / open_tree), given its attributes and propagation, and
//! only then attached: there is no instant at which it is shared or writable
//! against the plan. A failure unmounts what this call mounted (rollback).
//!
//! `off` reads the truth from the kernel's mount table (the sandbox's part
//! of it, see `mountinfo::read_at`), never a remembered list: it unmounts
//! what lies at or below DIR, deepest first, each one reached by a path with
//! no symlink in it and checked by mount id before it is unmounted.
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use crate::mountinfo::{self, Mount};
use crate::plan::{Op, What};
use crate::show;
use crate::sys::{self, Attrs, Node, Propagation};

/// Environment variable for fault-injection tests: `on` kills itself with
/// SIGKILL right after this many mounts of the plan, as a crash would; `0`:
/// right after the self-bind (and the copies of what the user mounted
/// below DIR), before its record is settled.
pub const FAULT_KILL_AFTER: &str = "CHROOT_TOOL_FAULT_KILL_AFTER_MOUNTS";

/// What `turn_on` did.
#[derive(Debug, Default)]
pub struct OnReport {
    pub mounted: Vec<String>,
    /// How many mounts this call made, as `off` counts them (the
    /// self-bind too), when each attach made one: `None` when a tree was
    /// attached (an `rbind`, the copies of what lay below DIR), whose
    /// mounts only the mount table counts.
    pub made: Option<usize>,
    pub already: usize,
    /// Mount points found mounted differently than planned (left alone).
    pub differs: Vec<String>,
    /// Other things the caller should warn about (one line each).
    pub warnings: Vec<String>,
}

/// True when `m` is the bind of DIR onto itself that `on` made: a bind of
/// its parent's directory onto itself (the shape), *and* recorded by `on`
/// when it made it (`owned`): the shape alone is anyone's.
pub fn is_self_bind(m: &Mount, mounts: &[Mount]) -> bool {
    // An overlay sandbox's merged view takes the self-bind's place.
    if m.fstype == "overlay" {
        return crate::owned::is_ours(&m.point, m.id);
    }
    let Some(parent) = mounts.iter().find(|p| p.id == m.parent) else {
        return false;
    };
    let Ok(rel) = m.point.strip_prefix(&parent.point) else {
        return false;
    };
    m.dev == parent.dev && m.root == parent.root.join(rel) && crate::owned::is_ours(&m.point, m.id)
}

/// [`is_on`] on the mount table read now, which is read only when DIR is a
/// mount point at all (a sandbox that is off, as a rule, is not).
pub fn is_on_now(dir: &Path) -> io::Result<bool> {
    Ok(is_mount_point(dir)? && is_on(dir, &table_at(dir)?))
}

/// The part of the mount table that says whether the sandbox at `dir` is
/// on and which mounts are its own ([`is_on`], [`own_mounts`]): asked of
/// the kernel ([`mountinfo::read_at`]), or the whole table before Linux
/// 6.8.
pub fn table_at(dir: &Path) -> io::Result<Vec<Mount>> {
    match mountinfo::read_at(dir)? {
        Some(part) => Ok(part),
        None => mountinfo::read(),
    }
}

/// Whether something is mounted on `dir` (one `statx`).
pub fn is_mount_point(dir: &Path) -> io::Result<bool> {
    Ok(sys::mount_of(sys::open_path(dir)?.as_fd())?.1)
}

/// Whether the sandbox at `dir` is on: its private self-bind is in the mount table.
pub fn is_on(dir: &Path, mounts: &[Mount]) -> bool {
    mountinfo::top_at(mounts, dir)
        .is_some_and(|m| is_self_bind(m, mounts) && !crate::owned::is_pending(m.id))
}

/// Whether the mount on top at `dir` is a self-bind `on` made, finished
/// or not: the sandbox is on in this mount namespace, or an `on` of it
/// was interrupted here.
pub fn has_self_bind(dir: &Path, mounts: &[Mount]) -> bool {
    mountinfo::top_at(mounts, dir).is_some_and(|m| is_self_bind(m, mounts))
}

/// What is mounted over DIR since `on`, hiding the sandbox's self-bind:
/// the mount on top at DIR as DIR's path leads (`mountinfo::stack_at`),
/// when it is not a self-bind of `on`'s and one lies below it in that
/// stack. Neither `on`, `run` nor `off` reach the sandbox through it: the
/// user unmounts it first. One exception: what an `on` killed in the
/// middle left on its self-bind, its momentary copy of DIR, which `off`
/// removes as before; it is known by all three of: the self-bind's record
/// not settled, a bind of the same directory, and a 64-bit id older than
/// the self-bind's (the copy is made first). `mounts`: the mount table
/// (whole, or the part at DIR) that the self-bind is looked for in; a top
/// made since it was read is no self-bind (only `on`, under the lock the
/// caller holds, makes one). Linux 6.8 and later (`statmount`): before,
/// none is found.
pub fn covering(dir: &Path, mounts: &[Mount]) -> Option<Mount> {
    let stack = mountinfo::stack_at(dir).ok().flatten()?;
    let at_dir = |s: &&crate::sys::mounts::MountStat| Path::new(&s.point) == dir;
    // The walk goes down only while at DIR: the first is on top there, or
    // nothing is mounted at DIR.
    let first = stack.first().filter(at_dir)?;
    let top = match mounts.iter().find(|m| m.id == first.id) {
        Some(m) if is_self_bind(m, mounts) => return None,
        Some(m) => m.clone(),
        None => mountinfo::from_stat(first),
    };
    let (bind_unique, bind) = stack.iter().skip(1).filter(at_dir).find_map(|s| {
        mounts
            .iter()
            .find(|m| m.id == s.id && is_self_bind(m, mounts))
            .map(|m| (s.unique, m))
    })?;
    let its_copy = crate::owned::is_pending(bind.id)
        && (&top.dev, &top.root) == (&bind.dev, &bind.root)
        && first.unique < bind_unique;
    (!its_copy).then_some(top)
}

/// Refuses to act on the sandbox at `dir` while something mounted over
/// DIR hides it ([`covering`], in the table `mounts`).
pub fn refuse_cover(dir: &Path, mounts: &[Mount]) -> Result<()> {
    match covering(dir, mounts) {
        Some(cover) => Err(anyhow!("{}", covered_message(dir, &cover))),
        None => Ok(()),
    }
}

/// What `on`, `run` and `off` say of a sandbox that `cover`, mounted over
/// DIR after `on`, hides ([`covering`]).
pub fn covered_message(dir: &Path, cover: &Mount) -> String {
    format!(
        "{}: something ({}) was mounted over it after `on` and hides the sandbox; \
         unmount it (`umount -R {}`), then run `chroot-tool off`",
        show::path(dir),
        show::os(&cover.fstype),
        show::path(dir)
    )
}

/// [`covering`], asked of the kernel only when DIR is a mount point (one
/// `statx` otherwise), with the part of the table at DIR it was found in.
pub fn cover_of(dir: &Path) -> Option<(Mount, Vec<Mount>)> {
    if !is_mount_point(dir).ok()? {
        return None;
    }
    let table = table_at(dir).ok()?;
    covering(dir, &table).map(|c| (c, table))
}

/// [`refuse_cover`] on the table read now ([`cover_of`]).
pub fn refuse_cover_now(dir: &Path) -> Result<()> {
    match cover_of(dir) {
        Some((cover, _)) => Err(anyhow!("{}", covered_message(dir, &cover))),
        None => Ok(()),
    }
}

/// The check `status` makes: the sandbox is on (its self-bind is in the
/// mount table) and every mount of the plan is in place.
pub fn looks_on(dir: &Path, plan: &[Op], mounts: &[Mount]) -> bool {
    is_on(dir, mounts) && in_place(dir, plan)
}

/// The lean check `run` makes, without reading the mount table (whose size
/// is the host's, not the sandbox's): the mount on top at `dir` is a
/// self-bind `on` made and recorded (by mount id, unique id, device and
/// inode; see `owned`), and every mount of the plan is in place. That
/// root, DIR opened once, when it holds: the one the command is chrooted
/// into, so that what was checked is what is entered. When it fails,
/// `turn_on` decides.
pub fn lean_root(dir: &Path, plan: &[Op]) -> Option<OwnedFd> {
    let root = sys::open_root(dir).ok()?;
    let (id, top) = sys::mount_of(root.as_fd()).ok()?;
    let checked = crate::owned::ours_at(root.as_fd(), id).filter(|_| top)?;
    in_place_at(root.as_fd(), id, plan, checked).then_some(root)
}

/// Whether the mount on top at `dir` is a self-bind `on` made and recorded.
pub fn recorded_on(dir: &Path) -> bool {
    recorded_on_id(dir).is_some()
}

/// The id of the mount on top at `dir` when it is a self-bind `on` made
/// and recorded.
fn recorded_on_id(dir: &Path) -> Option<u64> {
    sys::open_path(dir)
        .ok()
        .and_then(|fd| recorded_at(fd.as_fd()))
}

/// `root`, DIR as opened again by path (the root a command is chrooted
/// into, or the one the sandbox's mounts are made in), is a view `on` made
/// and recorded, on top at DIR; else nothing is to be done through it
/// (something was mounted over DIR meanwhile).
pub fn check_own_root(dir: &Path, root: BorrowedFd) -> Result<()> {
    if recorded_at(root).is_some() {
        return Ok(());
    }
    bail!(
        "{}: something was mounted over it while chroot-tool was at work; \
         nothing was done through it (see `chroot-tool status`)",
        show::path(dir)
    )
}

/// The id of the mount on top at DIR (open as `fd`) when it is a self-bind
/// `on` made and recorded.
fn recorded_at(fd: BorrowedFd) -> Option<u64> {
    let (id, root) = sys::mount_of(fd).ok()?;
    (root && crate::owned::is_ours_at(fd, id)).then_some(id)
}

/// Every mount of the plan is there, each target resolved inside the root as
/// `on` resolves it (a symlinked target is found where it leads): the top of
/// a mount other than the root's own; and every device node
/// ([`node_in_place`]). Nothing is created or followed out of the root. One
/// `openat2` and one `statx` per target.
fn in_place(dir: &Path, plan: &[Op]) -> bool {
    let Ok(root) = sys::open_root(dir) else {
        return false;
    };
    let Ok((root_id, _)) = sys::mount_of(root.as_fd()) else {
        return false;
    };
    in_place_at(root.as_fd(), root_id, plan, crate::owned::Checked::NoIds)
}

/// [`in_place`] in the root open as `root`, whose mount is `root_id`. Each
/// target has a mount of its own: one that leads to another's (`/proc`
/// made a symlink to `sys` inside) is not in place. What `checked` (the
/// self-bind's record) asks more: with unique mount ids, each target's
/// mount is the very one `on` last found there ([`crate::owned::Checked`]):
/// one mounted, moved or unmounted since (another source, a bind of the
/// host's `/tmp`, two targets' mounts swapped) sends the command the way
/// `on` looks; and a target planned read-only is read-only (a remount
/// keeps the mount's id). Nothing is in place for a record that says
/// nothing was checked.
fn in_place_at(
    root: BorrowedFd,
    root_id: u64,
    plan: &[Op],
    checked: crate::owned::Checked,
) -> bool {
    use crate::owned::Checked;
    let expected = match checked {
        Checked::Not => return false,
        Checked::NoIds => None,
        Checked::Mounts(ids) => Some(ids),
    };
    let mounts = plan.iter().filter(|o| o.is_mount());
    if expected
        .as_ref()
        .is_some_and(|e| e.len() != mounts.clone().count())
    {
        return false;
    }
    // The nodes share their directory (/dev): opened once.
    let mut dir: Option<(&Path, OwnedFd)> = None;
    let nodes = plan
        .iter()
        .filter(|o| matches!(o.what, What::Node { .. }))
        .all(|o| node_in_place(root, root_id, o, &mut dir));
    // The ids seen so far, where the kernel has no unique ones.
    let mut seen = vec![];
    nodes
        && mounts.enumerate().all(|(i, o)| {
            let fd = match &expected {
                Some(e) => match top_at(root, o) {
                    Some((fd, id)) if id == e[i] => fd,
                    _ => return false,
                },
                None => {
                    let Ok(fd) = sys::resolve_in_root(root, &o.target) else {
                        return false;
                    };
                    match sys::mount_of(fd.as_fd()) {
                        Ok((id, true)) if id != root_id && !seen.contains(&id) => seen.push(id),
                        _ => return false,
                    }
                    fd
                }
            };
            !o.attrs.has(Attrs::RDONLY) || sys::read_only(fd.as_fd())
        })
}

/// The mount on top at `op`'s target (resolved inside the root as `on`
/// resolves it), open, and its unique id; `None` when the target has no
/// mount of its own, or the kernel no unique ids.
fn top_at(root: BorrowedFd, op: &Op) -> Option<(OwnedFd, u64)> {
    let fd = sys::resolve_in_root(root, &op.target).ok()?;
    let (id, top) = sys::top_unique(fd.as_fd())?;
    top.then_some((fd, id))
}

/// The mounts at or below `dir` that are the sandbox's, those `off` removes:
/// `on`'s self-bind at DIR and everything mounted on it (directly or not).
/// Without a self-bind (a sandbox turned on by the 2020 tool), the mounts at
/// a planned target's plain path and below it; with no plan known, every
/// mount below DIR. A mount the user made below DIR before `on` lies under
/// the self-bind, not on it, and is never the sandbox's.
pub fn ours<'a>(dir: &Path, plan: Option<&[Op]>, mounts: &'a [Mount]) -> Vec<&'a Mount> {
    let binds = self_binds(dir, mounts);
    mountinfo::under(mounts, dir)
        .into_iter()
        .filter(|m| {
            if !binds.is_empty() {
                return binds.contains(&m.id) || descends_from(m, &binds, mounts);
            }
            if m.point == dir {
                return false;
            }
            match plan {
                None => true,
                Some(plan) => plan
                    .iter()
                    .filter(|o| !matches!(o.what, What::Symlink { .. }))
                    .any(|o| {
                        let t = dir.join(o.target.strip_prefix("/").unwrap_or(&o.target));
                        m.point.starts_with(t)
                    }),
            }
        })
        .collect()
}

/// The ids of `on`'s self-binds at `dir` (covered or not); when there is
/// one, [`ours`] needs no plan.
pub fn self_binds(dir: &Path, mounts: &[Mount]) -> Vec<u64> {
    mounts
        .iter()
        .filter(|m| m.point == dir && is_self_bind(m, mounts))
        .map(|m| m.id)
        .collect()
}

/// A failed `on` that could not unmount again all it had mounted.
#[derive(Debug)]
pub struct NotUnwound {
    /// Why `on` failed.
    pub cause: String,
    /// What is still mounted (each with its error).
    pub left: Vec<String>,
}

impl std::fmt::Display for NotUnwound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}; and these could not be unmounted again: {}; run `chroot-tool off`",
            self.cause,
            self.left.join(", ")
        )
    }
}

impl std::error::Error for NotUnwound {}

/// Mounts the plan in `dir`. Idempotent: what is already mounted as planned
/// is left alone. `on_now`: whether it is on ([`is_on_now`]), when the
/// caller has just found out.
pub fn turn_on(dir: &Path, plan: &[Op], on_now: Option<bool>) -> Result<OnReport> {
    let mut undo: Vec<u64> = vec![];
    let mut report = OnReport::default();
    let trees = match apply(dir, plan, on_now, &mut undo, &mut report) {
        Ok(trees) => trees,
        Err(e) => {
            let left = unmount_ids(dir, &undo);
            if left.is_empty() {
                return Err(anyhow!("{e:#}; nothing was mounted"));
            }
            return Err(NotUnwound {
                cause: format!("{e:#}"),
                left,
            }
            .into());
        }
    };
    report.made = (!trees).then_some(undo.len());
    Ok(report)
}

/// Mounts the plan (see [`turn_on`]); whether it attached a tree of mounts
/// (an `rbind`, the copies of what lay below DIR), which `undo` counts as
/// one.
fn apply(
    dir: &Path,
    plan: &[Op],
    on_now: Option<bool>,
    undo: &mut Vec<u64>,
    report: &mut OnReport,
) -> Result<bool> {
    let mut trees = false;
    let fault: Option<usize> = std::env::var(FAULT_KILL_AFTER)
        .ok()
        .and_then(|v| v.parse().ok());
    let mut fresh = match on_now {
        Some(on) => !on,
        None => !is_on_now(dir)?,
    };
    if fresh && resume_interrupted(dir)? {
        fresh = false;
    }
    let overlay = if fresh {
        crate::overlay::read(dir)?
    } else {
        None
    };
    // The sandbox's tree (see below), and the mount table when it was
    // read for the self-bind.
    let mut pre: Option<(Tree, Option<Vec<Mount>>)> = None;
    if let Some(rec) = &overlay {
        mount_overlay(dir, rec, undo)?;
    } else if fresh {
        let made = self_bind(dir, undo)?;
        if fault == Some(0) {
            let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
        }
        crate::owned::settle(made.id)
            .with_context(|| format!("recording {}'s self-bind", show::path(dir)))?;
        trees = made.copies;
        pre = Some((made.tree, made.table));
    }
    let root = sys::open_root(dir).with_context(|| format!("opening {}", dir.display()))?;
    let (root_id, _) = sys::mount_of(root.as_fd())?;
    // DIR opened again: what it leads to now must be the sandbox's own
    // view, not something mounted over DIR since it was looked at.
    check_own_root(dir, root.as_fd())?;
    let root_at = sys::where_is(root.as_fd())?;
    // Attached below a shared mount (a systemd host), the kernel makes the
    // self-bind (and the copies of mounts below it) shared with the host's
    // peers; made private again here (the self-bind also on every `on`, in
    // case a crash came between), nothing mounted below it ever propagates
    // to the host or its other namespaces.
    sys::set_attrs(root.as_fd(), Attrs(0), Some(Propagation::Private), fresh)
        .with_context(|| format!("making {} private", dir.display()))?;
    // The sandbox's tree: DIR's filesystem and DIR's path within it, as the
    // self-bind shows them. Any mount of that filesystem at or below that
    // path (DIR reached through a symlink, `..` or a bind elsewhere) is DIR.
    // Known before the self-bind (its table serves: what is mounted since
    // is the sandbox's, and a mount not in it is looked up again), or read.
    let read_tree = |mounts: &[Mount]| {
        mounts
            .iter()
            .find(|m| m.id == root_id)
            .map(|m| (m.dev.clone(), m.root.clone()))
            .ok_or_else(|| {
                anyhow!(
                    "{}: the self-bind is not in the mount table",
                    show::path(dir)
                )
            })
    };
    let (tree, mut mounts) = match pre {
        Some(known) => {
            #[cfg(debug_assertions)]
            assert_eq!(
                known.0,
                read_tree(&mountinfo::read()?)?,
                "the self-bind as derived"
            );
            known
        }
        None => {
            let mounts = mountinfo::read().context("reading /proc/self/mountinfo")?;
            (read_tree(&mounts)?, Some(mounts))
        }
    };
    // Directories and files are created only on DIR's own filesystem and on
    // filesystems of the plan that chroot-tool made empty itself, never on a
    // host path bound in or a filesystem whose content is the host's (a
    // symlink in the rootfs could otherwise point a target into one).
    let mut creatable: Vec<u64> = vec![root_id];
    // Of those, the filesystems `on` made (this call, or an earlier one:
    // found mounted, the one mount of its filesystem), never the user's:
    // the only ones device nodes are made in.
    let mut made_fresh: Vec<u64> = vec![];
    // Where this plan's mounts are (path inside the root), so that none is
    // hidden by a later one.
    let mut placed: Vec<(PathBuf, String)> = vec![];
    // Each mount of the plan (made or found) whose target's way took a
    // symlink, by its mount id.
    let mut seen: Vec<(&Op, u64)> = vec![];
    let mut count = 0;
    // Mounted in the order of where the targets land (resolved inside the
    // root now, with what is mounted so far), shallowest first: a target
    // that a rootfs symlink leads below another one's (`/run` -> `/tmp/x`)
    // is mounted after it, on it, and stays visible.
    // At one depth, a target that lands at its own name goes first: the
    // way a symlinked one takes may pass through it.
    // Where each target lands is found once, and again only when a mount
    // or symlink made since could change it: one made at or above where it
    // lands or at or above its own name, or any when its way takes a
    // symlink or does not resolve yet (a way without symlinks passes only
    // through the directories its name spells).
    // A symlink or a device node is made at its name in the directory its
    // parent leads to: that name is where it lands, never followed.
    // Within one round nothing is made, so each path is located once (the
    // nodes and symlinks of /dev share their parent).
    let located: std::cell::RefCell<Vec<(PathBuf, Option<PathBuf>)>> = Default::default();
    let locate = |p: &Path| -> Option<PathBuf> {
        if let Some((_, at)) = located.borrow().iter().find(|(q, _)| *q == p) {
            return at.clone();
        }
        let at = sys::resolve::locate(root.as_fd(), p).ok();
        located.borrow_mut().push((p.to_path_buf(), at.clone()));
        at
    };
    let key = |o: &Op| {
        let at = match (&o.what, o.target.parent(), o.target.file_name()) {
            (What::Symlink { .. } | What::Node { .. }, Some(p), Some(n)) => {
                locate(p).map(|d| d.join(n))
            }
            _ => locate(&o.target),
        };
        match at {
            Some(p) => ((p.components().count(), p != o.target), Some(p)),
            None => ((usize::MAX, true), None),
        }
    };
    let mut todo: Vec<(&Op, (usize, bool), Option<PathBuf>)> = plan
        .iter()
        .map(|o| {
            let (k, at) = key(o);
            (o, k, at)
        })
        .collect();
    let mut changed: Option<PathBuf> = None;
    let mut host_dirs = sys::resolve::HostDirs::default();
    // The mount table read again for bind sources (see `in_tree`).
    let again = std::cell::RefCell::new(None);
    while !todo.is_empty() {
        if let Some(c) = changed.take() {
            located.borrow_mut().clear();
            for t in todo.iter_mut() {
                let (_, detour) = t.1;
                if detour
                    || t.0.target.starts_with(&c)
                    || t.2.as_ref().is_some_and(|p| p.starts_with(&c))
                {
                    (t.1, t.2) = key(t.0);
                }
            }
        }
        let next = (0..todo.len()).min_by_key(|&i| todo[i].1).unwrap_or(0);
        let (op, _, landed) = todo.remove(next);
        let ctx = || format!("{} ({})", op.describe(), op.origin_note());
        if let What::Symlink { to } = &op.what {
            make_symlink(root.as_fd(), &op.target, to, &creatable).with_context(ctx)?;
            changed = Some(landed.unwrap_or_else(|| op.target.clone()));
            continue;
        }
        // A device node made (or there) changes no other target's way: no
        // path leads through it. Else it is bound in, as a bind.
        if let What::Node { src } = &op.what {
            match make_node(root.as_fd(), root_id, &op.target, src, &made_fresh)
                .with_context(ctx)?
            {
                NodeDone::There => continue,
                NodeDone::Differs(what) => {
                    report.differs.push(format!(
                        "{}: {what} where the device node {} belongs, left as it is; remove it, \
                         then `chroot-tool on`",
                        show::path(dir.join(op.target.strip_prefix("/").unwrap_or(&op.target))),
                        src.display()
                    ));
                    continue;
                }
                NodeDone::Bind => {}
            }
        }
        // A bind source is opened on the host one component at a time; from
        // the first directory that is DIR (by any spelling) on, the rest is
        // the sandbox's own content, resolved inside the root, so that its
        // symlinks cannot reach the host.
        let src_fd = match op.bind_source() {
            Some((src, _)) => {
                let made: &[u64] = undo;
                let inside = |fd: BorrowedFd| in_tree(fd, &tree, mounts.as_deref(), made, &again);
                let fd =
                    match sys::resolve::open_host_path(root.as_fd(), src, &inside, &mut host_dirs)
                        .with_context(|| {
                        format!("bind source {} ({})", show::path(src), op.origin_note())
                    })? {
                        sys::resolve::HostPath::Host(fd) | sys::resolve::HostPath::InRoot(fd) => fd,
                    };
                Some(fd)
            }
            None => None,
        };
        let src_md = match &src_fd {
            Some(fd) => Some(nix::sys::stat::fstat(fd.as_fd()).with_context(ctx)?),
            None => None,
        };
        let node = match &src_md {
            Some(md) if md.st_mode & libc::S_IFMT != libc::S_IFDIR => Node::File,
            _ => Node::Dir,
        };
        let may =
            |d: BorrowedFd, name: &std::ffi::OsStr| may_create(root.as_fd(), d, name, &creatable);
        let (target, _) = sys::resolve::resolve_create(root.as_fd(), &op.target, node, &may)
            .with_context(|| format!("resolving {} inside {}", op.target.display(), dir.display()))
            .with_context(ctx)?;
        let inside = sys::resolve::in_root_path_at(&root_at, target.as_fd())?;
        if inside == Path::new("/") {
            bail!(
                "{} resolves to the sandbox's root itself; refusing to mount over it ({})",
                op.target.display(),
                op.origin_note()
            );
        }
        if let Some((at, what)) = placed.iter().find(|(p, _)| p.starts_with(&inside)) {
            let how = if *at == inside {
                "the same place as".to_string()
            } else {
                format!("a directory above {} of", show::path(at))
            };
            bail!(
                "{} leads to {} inside the sandbox, {how} {what}, which it would hide; \
                 change the symlink in the rootfs ({})",
                show::path(&op.target),
                show::path(&inside),
                op.origin_note()
            );
        }
        let shown = dir.join(inside.strip_prefix("/").unwrap_or(&inside));
        let (id, is_mount_root) = sys::mount_of(target.as_fd())?;
        if is_mount_root && id != root_id {
            // Found mounted: whether a mount outside DIR shares it needs
            // the whole table.
            if !mounts
                .as_ref()
                .is_some_and(|t| t.iter().any(|m| m.id == id))
            {
                mounts = Some(mountinfo::read()?);
            }
            let table = mounts.as_deref().unwrap_or_default();
            // A node bound in is the host's node, no other one.
            let node_ok = || match (&op.what, &src_md) {
                (What::Node { .. }, Some(host)) => matches!(
                    sys::entry_at(target.as_fd(), std::ffi::OsStr::new("")),
                    Ok(e) if is_hosts(&e, host)
                ),
                _ => true,
            };
            match table.iter().find(|m| m.id == id) {
                Some(m) if matches_op(m, op, src_md.as_ref()) && node_ok() => {
                    report.already += 1;
                    // Written to only when it is a fresh kind that no
                    // mount outside DIR shares (not the host's own bound in).
                    if matches!(op.what, What::Fs { .. })
                        && made_empty(target.as_fd(), &m.fstype, &m.dev, Some(table), dir)
                    {
                        creatable.push(id);
                        // An earlier `on`'s: the one mount of its
                        // filesystem. A user's mounted below DIR before
                        // `on` is there twice (it, and its copy on the
                        // self-bind).
                        if table.iter().filter(|o| o.dev == m.dev).count() == 1 {
                            made_fresh.push(id);
                        }
                    }
                }
                _ => report.differs.push(format!(
                    "{}: mounted, but not as planned ({}); `off` then `on` to apply tool.conf",
                    shown.display(),
                    op.describe()
                )),
            }
            if inside != op.target {
                seen.push((op, id));
            }
            placed.push((inside, op.describe()));
            continue;
        }
        // A bind (or a node bound in) from its source opened above; else a
        // filesystem, made new.
        let mnt = match (&src_fd, op.bind_source(), &op.what) {
            (Some(fd), Some((_, recursive)), _) => {
                trees |= recursive;
                sys::clone_tree_fd(fd.as_fd(), recursive, op.attrs, op.propagation)
            }
            (
                _,
                _,
                What::Fs {
                    fstype,
                    source,
                    options,
                },
            ) => sys::new_fs(fstype, source, options, op.attrs),
            _ => unreachable!("a bind has its source opened; a symlink is no mount"),
        }
        .with_context(ctx)?;
        // A tmpfs made new gets what the plan puts in it (/dev's nodes and
        // symlinks) before it is attached.
        if matches!(&op.what, What::Fs { fstype, .. } if fstype == "tmpfs") && inside == op.target {
            let filled =
                fill_fresh(mnt.as_fd(), &op.target, todo.iter().map(|t| t.0)).with_context(ctx)?;
            todo.retain(|t| !filled.iter().any(|f| std::ptr::eq(*f, t.0)));
        }
        sys::attach(mnt.as_fd(), target.as_fd())
            .with_context(|| format!("attaching at {}", shown.display()))
            .with_context(ctx)?;
        report.mounted.push(op.describe());
        let (new_id, new_dev) = sys::mount_and_dev(mnt.as_fd())?;
        undo.push(new_id);
        // A filesystem just made is empty unless the kernel handed back one
        // that a mount outside DIR already shows (sysfs, proc): decided on
        // the table read before, with no new read per mount. A tmpfs or a
        // devpts is a new one each time: the table read before may show
        // its device number on a mount gone since (another sandbox's,
        // turned off meanwhile), which says nothing of it.
        if let What::Fs { fstype, .. } = &op.what {
            let new_kind = matches!(fstype.as_str(), "tmpfs" | "devpts");
            let table = if new_kind { None } else { mounts.as_deref() };
            if made_empty(mnt.as_fd(), fstype, &new_dev, table, dir) {
                creatable.push(new_id);
                made_fresh.push(new_id);
            }
        }
        changed = Some(inside.clone());
        if inside != op.target {
            seen.push((op, new_id));
        }
        placed.push((inside, op.describe()));
        count += 1;
        if fault == Some(count) {
            let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
        }
    }
    // Every mount of the plan is still where its target leads: none was
    // reached by a way that a later mount changed (a rootfs symlink through
    // a place that a built-in covers afterwards). A target whose way took
    // no symlink lands where its name says, and nothing made later covers
    // it or a directory above it (`placed`): only the others are looked at
    // again.
    for (op, id) in &seen {
        let now =
            sys::resolve_in_root(root.as_fd(), &op.target).and_then(|fd| sys::mount_of(fd.as_fd()));
        if !matches!(now, Ok((i, true)) if i == *id) {
            bail!(
                "{} leads elsewhere once the other mounts are made: the symlinks on its way \
                 in the rootfs pass through another mount point; change the symlink in the \
                 rootfs ({})",
                show::path(&op.target),
                op.origin_note()
            );
        }
    }
    // What `run` may rely on from now (`in_place_at`): the plan found in
    // place, nothing differing; else `run` looks as `on` does (and warns).
    if report.differs.is_empty() {
        if let Some(ids) = planned_mounts(root.as_fd(), plan) {
            let _ = crate::owned::mark_verified(root.as_fd(), root_id, ids);
        }
    }
    Ok(trees)
}

/// The unique ids of the mounts on top at the plan's targets (resolved
/// inside the root as `on` resolves them), in the plan's order; `None`
/// when one has no mount of its own there, or the kernel has no unique
/// ids.
fn planned_mounts(root: BorrowedFd, plan: &[Op]) -> Option<Vec<u64>> {
    plan.iter()
        .filter(|o| o.is_mount())
        .map(|o| top_at(root, o).map(|(_, id)| id))
        .collect()
}

/// Makes, in `mnt` (a tmpfs just made for the target `at`, not attached
/// yet: seen by no one else, empty), the symlinks and device nodes of the
/// plan that go directly in it, and the directories the plan's
/// filesystems are mounted on there; returns the operations so done. A
/// node is made where `make_node` would make one, when the host's is a
/// character device and the kernel lets us. Inside the sandbox, /dev then
/// comes whole, at once, for a fraction of the system calls. What is left
/// goes the plan's usual way (a node the kernel refuses, in a user
/// namespace, is bound in).
fn fill_fresh<'a>(
    mnt: BorrowedFd,
    at: &Path,
    rest: impl Iterator<Item = &'a Op>,
) -> io::Result<Vec<&'a Op>> {
    use nix::sys::stat::{umask, Mode};
    let nodes = may_hold_nodes(mnt)?;
    // Nodes with the host's permission bits as they are.
    let mask = umask(Mode::empty());
    let mut done = vec![];
    let fill = || -> io::Result<()> {
        for op in rest {
            let (Some(parent), Some(name)) = (op.target.parent(), op.target.file_name()) else {
                continue;
            };
            if parent != at {
                continue;
            }
            let made = match &op.what {
                What::Symlink { to } => {
                    nix::unistd::symlinkat(to.as_path(), mnt, name).map(|()| true)
                }
                What::Node { src } if nodes => match host_node(src) {
                    Some(host) => match mknod_like(mnt, name, &host) {
                        Err(nix::errno::Errno::EPERM) => Ok(false),
                        r => r.map(|()| true),
                    },
                    None => Ok(false),
                },
                What::Fs { .. } => {
                    nix::sys::stat::mkdirat(mnt, name, Mode::from_bits_truncate(0o755))
                        .map(|()| false)
                }
                _ => Ok(false),
            };
            match made {
                Ok(true) => done.push(op),
                Ok(false) => {}
                Err(e) => {
                    return Err(io::Error::new(
                        io::Error::from(e).kind(),
                        format!("{} ({}): {e}", op.describe(), op.origin_note()),
                    ))
                }
            }
        }
        Ok(())
    };
    let filled = fill();
    umask(mask);
    filled?;
    Ok(done)
}

/// An earlier `on`'s self-bind on top at DIR, recorded as not finished
/// (killed before it had brought in what the user mounted below DIR):
/// taken up again (`true`) when nothing of the user's lies below DIR, or a
/// refusal, since going on would leave the user's mounts out, unseen
/// (inside, a command would write into the rootfs's own directory under
/// them). Asked of the whole mount table, only after such a crash.
fn resume_interrupted(dir: &Path) -> Result<bool> {
    let Some(id) = recorded_on_id(dir).filter(|&id| crate::owned::is_pending(id)) else {
        return Ok(false);
    };
    let mounts = mountinfo::read().context("reading /proc/self/mountinfo")?;
    let ours: Vec<u64> = ours(dir, None, &mounts).iter().map(|m| m.id).collect();
    let users = mountinfo::under(&mounts, dir)
        .iter()
        .any(|m| m.point != dir && !ours.contains(&m.id));
    if users {
        bail!(
            "{}: an earlier `on` was interrupted before it had brought in what you mounted \
             below it; run `chroot-tool off`, then `on` again",
            show::path(dir)
        );
    }
    crate::owned::settle(id)
        .with_context(|| format!("recording {}'s self-bind", show::path(dir)))?;
    Ok(true)
}

/// The sandbox's tree: DIR's filesystem (`major:minor`) and DIR's path in it.
type Tree = (String, PathBuf);

/// The mount table as read again by [`in_tree`], kept for the next look.
type Again = std::cell::RefCell<Option<Vec<Mount>>>;

/// What [`self_bind`] made.
struct SelfBind {
    /// Its mount id.
    id: u64,
    tree: Tree,
    /// The mount table, when it was read.
    table: Option<Vec<Mount>>,
    /// Whether copies of what lay below DIR were attached.
    copies: bool,
}

/// Binds DIR onto itself, privately (see [`apply`]), and puts on it
/// copies of what the user mounted below DIR before `on`, which stay
/// visible inside.
///
/// Whether anything is mounted below DIR (as a rule nothing) is asked of
/// a recursive copy of DIR (`listmount`: the sandbox's size, where the
/// mount table is the host's). Below a private mount (nothing attached
/// there propagates anywhere) that copy is the self-bind, and with nothing
/// on it, all there is to do. Below a shared one (a systemd host), the
/// self-bind is bare, made private, and only then gets what lies below
/// DIR, so that the host's peers get a bare self-bind, which `off` takes
/// along; the copy, taken before the self-bind covers DIR, is attached on
/// it for a moment to ask. A copy with something on it goes again, and
/// then (or on a kernel without `listmount`, before 6.8) the table is
/// read and copies of the trees below DIR, as DIR shows them, are
/// attached one by one, unbindable ones left out (as `mount --rbind`
/// leaves them out).
fn self_bind(dir: &Path, undo: &mut Vec<u64>) -> Result<SelfBind> {
    // DIR held open first: the mount it lies on cannot go, nor its id be
    // taken by another, while it is looked at, and the self-bind is a bind
    // of what was held.
    let target = sys::open_path(dir).with_context(|| format!("opening {}", dir.display()))?;
    let (at, _) = sys::mount_of(target.as_fd())?;
    // The mount DIR lies on, by the id the kernel never reuses.
    let lies_on = mountinfo::of_fd(target.as_fd()).filter(|m| m.id == at);
    // What the self-bind shows: DIR's filesystem and DIR's path in it,
    // from the mount DIR lies on and DIR's path below it.
    let shows = |m: &Mount| Some((m.dev.clone(), m.root.join(dir.strip_prefix(&m.point).ok()?)));
    let fast = |p: &Mount, id: u64| -> Result<SelfBind> {
        Ok(SelfBind {
            id,
            tree: shows(p).ok_or_else(|| {
                anyhow!("{} is not below {}", show::path(dir), show::path(&p.point))
            })?,
            table: None,
            copies: false,
        })
    };
    // Whether something is known to be mounted below DIR.
    let mut below_dir = false;
    // Below a private mount, nothing attached propagates anywhere: the
    // self-bind is a recursive copy of DIR. With nothing on it (the rule)
    // that is all.
    if let Some(p) = lies_on.as_ref().filter(|p| p.propagation() == "private") {
        let tree = sys::clone_tree_fd(target.as_fd(), true, Attrs(0), Propagation::Private)
            .with_context(|| format!("binding {} onto itself", dir.display()))?;
        let id = attach_self_bind(dir, tree, target.as_fd(), undo)?;
        if is_bare(&id) {
            return fast(p, id.0);
        }
        // Something was below DIR: put on the self-bind as DIR shows it
        // (below). The kernel's recursive copy leaves an unbindable mount
        // out but keeps what that one hid, which DIR does not show.
        detach_from(dir, id.0, "the self-bind")?;
        crate::owned::forget(id.0);
        undo.pop();
        below_dir = true;
    }
    let copy = match (&lies_on, below_dir) {
        (Some(_), false) => Some(
            sys::clone_tree_fd(target.as_fd(), true, Attrs(0), Propagation::Private)
                .with_context(|| format!("copying what is mounted below {}", dir.display()))?,
        ),
        _ => None,
    };
    let tree = sys::clone_tree_fd(target.as_fd(), false, Attrs(0), Propagation::Private)
        .with_context(|| format!("binding {} onto itself", dir.display()))?;
    let (id, _) = attach_self_bind(dir, tree, target.as_fd(), undo)?;
    // Attached below a shared mount (a systemd host), the self-bind is
    // shared with the copies the kernel made in the host's peers: private
    // before anything is attached on it, so that nothing attached on it
    // reaches them, where `off` could not take it along.
    let bound = sys::open_root(dir)?;
    sys::set_attrs(bound.as_fd(), Attrs(0), Some(Propagation::Private), false)
        .with_context(|| format!("making {} private", dir.display()))?;
    if let (Some(p), Some(copy)) = (&lies_on, copy) {
        let copied = (
            sys::mount_of(copy.as_fd())?.0,
            sys::unique_mount_id(copy.as_fd()),
        );
        sys::attach(copy.as_fd(), bound.as_fd())
            .with_context(|| format!("binding {} again", show::path(dir)))?;
        undo.push(copied.0);
        drop(copy);
        drop(bound);
        detach_from(dir, copied.0, "the copy")?;
        undo.pop();
        if is_bare(&copied) {
            return fast(p, id);
        }
    } else {
        drop(bound);
    }
    let table = mountinfo::read().context("reading /proc/self/mountinfo")?;
    let below = submounts_below(dir, target.as_fd(), &table)?;
    let t = table
        .iter()
        .find(|m| m.id == at)
        .and_then(shows)
        .ok_or_else(|| {
            anyhow!(
                "{}: the mount it lies on is not in the mount table",
                show::path(dir)
            )
        })?;
    let copies = !below.is_empty();
    let bound = sys::open_root(dir)?;
    for (rel, copy) in below {
        sys::resolve_beneath(bound.as_fd(), &rel)
            .and_then(|at| sys::attach(copy.as_fd(), at.as_fd()))
            .with_context(|| format!("binding {} again", show::path(dir.join(&rel))))?;
        undo.push(sys::mount_of(copy.as_fd())?.0);
    }
    Ok(SelfBind {
        id,
        tree: t,
        table: Some(table),
        copies,
    })
}

/// Records the self-bind `tree` and attaches it at DIR (open as
/// `target`). Recorded before it is attached: a crash in between leaves a
/// record of nothing, never a self-bind nobody owns. Returns its mount id
/// and the 64-bit one.
fn attach_self_bind(
    dir: &Path,
    tree: OwnedFd,
    target: BorrowedFd,
    undo: &mut Vec<u64>,
) -> Result<(u64, Option<u64>)> {
    let (id, _) = sys::mount_of(tree.as_fd())?;
    let unique = sys::unique_mount_id(tree.as_fd());
    crate::owned::note(dir, tree.as_fd(), true).with_context(|| {
        format!(
            "recording {}'s self-bind under /run/chroot-tool",
            show::path(dir)
        )
    })?;
    track_from_now(dir, id, unique)?;
    if let Err(e) = sys::attach(tree.as_fd(), target) {
        crate::owned::forget(id);
        return Err(e).with_context(|| format!("binding {} onto itself", dir.display()));
    }
    undo.push(id);
    Ok((id, unique))
}

/// What is started in the sandbox at `dir` from now on is tracked
/// (`cgroup::track::started`), for the self-bind `id` (64-bit: `unique`)
/// recorded and not attached yet; its record is dropped if that fails.
fn track_from_now(dir: &Path, id: u64, unique: Option<u64>) -> Result<()> {
    if let Err(e) = crate::cgroup::track::started(unique) {
        crate::owned::forget(id);
        return Err(e).with_context(|| {
            format!(
                "recording {}'s cgroup under {}",
                show::path(dir),
                show::path(crate::owned::run_dir())
            )
        });
    }
    Ok(())
}

/// Whether nothing is mounted on the mount (`listmount` of its 64-bit
/// id); `false` when the kernel cannot say.
fn is_bare(id: &(u64, Option<u64>)) -> bool {
    id.1.and_then(|u| sys::mounts::list(u).ok())
        .is_some_and(|l| l.is_empty())
}

/// Detaches the mount `id` that `on` attached at DIR a moment ago (`what`
/// it is, for the error), with whatever is on it, once it is checked to be
/// what is on top at DIR. Detached, since whoever opened DIR in that
/// moment (a `run` looking whether DIR is on) keeps it busy; such a one
/// holds a bind of DIR's own directory that is no self-bind on record,
/// with nothing of the user's on it but copies (`run` then finds DIR not
/// on, and asks again under the lock).
fn detach_from(dir: &Path, id: u64, what: &str) -> Result<()> {
    let parent = sys::open_path(dir.parent().unwrap_or(Path::new("/")))?;
    let name = dir.file_name().unwrap_or_default();
    let on_top = sys::resolve_beneath(parent.as_fd(), Path::new(name))
        .and_then(|fd| sys::mount_of(fd.as_fd()))?;
    if on_top != (id, true) {
        bail!(
            "{}: something was mounted over it while `on` ran; run `chroot-tool off`, then `on`",
            show::path(dir)
        );
    }
    sys::unmount_at(parent.as_fd(), name, true)
        .with_context(|| format!("unmounting {what} of {}", show::path(dir)))?;
    Ok(())
}

/// Copies (detached, private, recursive) of the trees mounted below `dir`
/// that can be seen from it (`from`: DIR as it was before the self-bind
/// covered it), each with its path below `dir`: at each point that no
/// other one lies below, the mount on top, reached from `dir` with no
/// symlink followed. A mount hidden by another (mounted over DIR or over a
/// directory above it) is none of them. None, as a rule.
fn submounts_below(
    dir: &Path,
    from: BorrowedFd,
    mounts: &[Mount],
) -> Result<Vec<(PathBuf, OwnedFd)>> {
    let below: Vec<&Mount> = mountinfo::under(mounts, dir)
        .into_iter()
        .filter(|m| m.point != dir)
        .collect();
    if below.is_empty() {
        return Ok(vec![]);
    }
    let mut copies: Vec<(PathBuf, OwnedFd)> = vec![];
    // Unbindable mounts and what lies on them are left out, as a recursive
    // bind (`mount --rbind`, and the copy `self_bind` asks first) leaves
    // them out.
    let mut pruned: Vec<&Path> = vec![];
    let mut points: Vec<&Path> = below.iter().map(|m| m.point.as_path()).collect();
    points.sort();
    points.dedup();
    for p in points {
        let rel = p.strip_prefix(dir)?;
        if copies.iter().any(|(c, _)| rel.starts_with(c))
            || pruned.iter().any(|u| rel.starts_with(u))
        {
            continue; // in the tree of a copy already, or of an unbindable one
        }
        let fd = match sys::resolve_beneath(from, rel) {
            Ok(fd) => fd,
            // Hidden: nothing there any more, as seen from DIR.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => {
                return Err(e).with_context(|| {
                    format!(
                        "reaching {}, mounted below the sandbox before `on` (a directory on \
                         its way is no longer one?): unmount it, or put the directory back",
                        show::path(p)
                    )
                })
            }
        };
        // What is seen there is one of the mounts at that point (not a
        // directory of another one that hides them).
        let (id, is_root) = sys::mount_of(fd.as_fd())?;
        let Some(m) = below.iter().find(|m| m.id == id && m.point == p) else {
            continue;
        };
        if !is_root {
            continue;
        }
        if m.tags.iter().any(|t| t == "unbindable") {
            pruned.push(rel);
            continue;
        }
        let copy = sys::clone_tree_fd(fd.as_fd(), true, Attrs(0), Propagation::Private)
            .with_context(|| format!("copying the mount at {}", show::path(p)))?;
        copies.push((rel.to_path_buf(), copy));
    }
    Ok(copies)
}

/// The merged view of an overlay sandbox on DIR, recorded as `on`'s
/// self-binds are (before it is attached), then DIR's own chroot.d bound
/// over its `/chroot.d` (see `overlay`).
fn mount_overlay(dir: &Path, rec: &crate::overlay::Record, undo: &mut Vec<u64>) -> Result<()> {
    // BASE's lock, held until the overlay is attached: this `on` asks
    // whether BASE is on, an `on` of BASE asks (under that lock) whether
    // an overlay over it is on; the two come one after the other, never
    // both between the other's question and its mount. (Always in this
    // order, overlay then BASE, and BASE's `on` takes no other lock.)
    // By the identity the record holds, never by BASE's path, which may
    // lead elsewhere now (`open_base` refuses that below).
    let _base = match crate::holder::in_setup() {
        true => None,
        false => Some(crate::lock::exclusive_of((rec.dev, rec.ino), &rec.base)?),
    };
    let view = crate::overlay::view(dir, rec)?;
    let target = sys::open_path(dir).with_context(|| format!("opening {}", dir.display()))?;
    let id = sys::mount_of(view.merged.as_fd())?.0;
    crate::overlay::note_on(dir, rec).with_context(|| {
        format!(
            "noting {}'s overlay under {}",
            show::path(dir),
            show::path(crate::owned::run_dir())
        )
    })?;
    crate::owned::note(dir, view.merged.as_fd(), false).with_context(|| {
        format!(
            "recording {}'s overlay under /run/chroot-tool",
            show::path(dir)
        )
    })?;
    track_from_now(dir, id, sys::unique_mount_id(view.merged.as_fd()))?;
    if let Err(e) = sys::attach(view.merged.as_fd(), target.as_fd()) {
        crate::owned::forget(id);
        return Err(e).with_context(|| format!("mounting the overlay on {}", show::path(dir)));
    }
    undo.push(id);
    let root = sys::open_root(dir).with_context(|| format!("opening {}", dir.display()))?;
    // Attached below a shared mount (a systemd host), the view joined a
    // peer group with the copies the kernel made in the namespaces that
    // share it: private before anything is mounted on it, or the chroot.d
    // bind would be copied on them too, and `off` could not take those
    // copies along (a mount with a mount on it is not unmounted by
    // propagation).
    sys::set_attrs(root.as_fd(), Attrs(0), Some(Propagation::Private), false)
        .with_context(|| format!("making {} private", dir.display()))?;
    let may = |d: BorrowedFd, name: &std::ffi::OsStr| may_create(root.as_fd(), d, name, &[id]);
    let (at, _) =
        sys::resolve::resolve_create(root.as_fd(), Path::new("/chroot.d"), Node::Dir, &may)
            .with_context(|| format!("resolving /chroot.d inside {}", show::path(dir)))?;
    if sys::resolve::in_root_path(root.as_fd(), at.as_fd())? != Path::new("/chroot.d") {
        bail!(
            "{}: /chroot.d of the merged view is a symlink; refusing to bind the sandbox's own chroot.d elsewhere",
            show::path(dir)
        );
    }
    sys::attach(view.chroot_d.as_fd(), at.as_fd())
        .with_context(|| format!("binding {}'s own chroot.d", show::path(dir)))?;
    undo.push(sys::mount_of(view.chroot_d.as_fd())?.0);
    Ok(())
}

/// Opens a bind source as `on` does: on the host one component at a time;
/// from the first object that is the sandbox's (by any spelling) on, inside
/// `root` (the sandbox at `dir`, on), so that a rootfs symlink never leads
/// to the host. For `run -m`.
pub(crate) fn open_bind_source(root: BorrowedFd, src: &Path) -> Result<OwnedFd> {
    let (root_id, _) = sys::mount_of(root)?;
    let mounts = mountinfo::read().context("reading /proc/self/mountinfo")?;
    let tree = mounts
        .iter()
        .find(|m| m.id == root_id)
        .map(|m| (m.dev.clone(), m.root.clone()))
        .ok_or_else(|| anyhow!("the sandbox's root is not in the mount table"))?;
    let again = std::cell::RefCell::new(None);
    let inside = |fd: BorrowedFd| in_tree(fd, &tree, Some(&mounts), &[], &again);
    match sys::resolve::open_host_path(root, src, &inside, &mut Default::default())? {
        sys::resolve::HostPath::Host(fd) | sys::resolve::HostPath::InRoot(fd) => Ok(fd),
    }
}

/// Whether the mount on `fd`, of type `fstype` (in the mount table, or as
/// made) on device `dev` (`major:minor`), is a filesystem that chroot-tool
/// makes empty (tmpfs, proc, sysfs, devpts), by what the kernel reports (the
/// magic of `fstatfs` too, not the name in the plan), and no mount outside
/// `dir` in `mounts` shows the same filesystem. An overlay,
/// cgroup2 or devtmpfs (whose magic is tmpfs's, and which is the host's
/// `/dev`) shows the host's content; so does a host tmpfs bound in.
/// Without a table (`None`: a mount this call just made), by kind: a new
/// tmpfs, proc (Linux 5.8) or devpts is always a new filesystem, while
/// sysfs may be the host's.
fn made_empty(
    fd: BorrowedFd,
    fstype: &str,
    dev: &str,
    mounts: Option<&[Mount]>,
    dir: &Path,
) -> bool {
    const TMPFS: u64 = 0x0102_1994;
    const PROC: u64 = 0x9fa0;
    const SYSFS: u64 = 0x6265_6572;
    const DEVPTS: u64 = 0x1cd1;
    let magic = nix::sys::statfs::fstatfs(fd)
        .is_ok_and(|st| [TMPFS, PROC, SYSFS, DEVPTS].contains(&(st.filesystem_type().0 as u64)));
    magic
        && match mounts {
            Some(mounts) => {
                ["tmpfs", "proc", "sysfs", "devpts"].contains(&fstype)
                    && mounts
                        .iter()
                        .all(|o| o.dev != dev || mountinfo::is_at_or_below(&o.point, dir))
            }
            None => ["tmpfs", "proc", "devpts"].contains(&fstype),
        }
}

/// The path inside the sandbox of what `fd` names, when it lies in the
/// sandbox's tree (`tree`: DIR's filesystem and DIR's path in it), reached
/// by whatever path; `None` when it lies elsewhere.
fn in_tree(
    fd: BorrowedFd,
    tree: &Tree,
    mounts: Option<&[Mount]>,
    made: &[u64],
    again: &Again,
) -> io::Result<Option<PathBuf>> {
    // Asked of the kernel by the id it never reuses (Linux 6.8): exact,
    // and no table to read.
    if let Some(m) = mountinfo::of_fd(fd) {
        return in_mount(&sys::where_is(fd)?, &m, tree);
    }
    in_table(fd, tree, mounts, made, again)
}

/// [`in_tree`] by the mount table (`mounts`, when known).
fn in_table(
    fd: BorrowedFd,
    tree: &Tree,
    mounts: Option<&[Mount]>,
    made: &[u64],
    again: &Again,
) -> io::Result<Option<PathBuf>> {
    let at = sys::where_is(fd)?;
    // The table may be older than the mount: the id of a mount gone since,
    // taken again by a new one (a bind of DIR where it was, or one this
    // call made: `made`), is not that mount. Its place and its device (but
    // on btrfs and overlayfs, whose files may show the device of a
    // subvolume or a layer) must be those the table gives, or the table is
    // read again.
    let (id, dev) = sys::mount_and_dev(fd)?;
    let fits = |m: &&Mount| {
        m.id == id
            && at.starts_with(&m.point)
            && (m.dev == dev || ["btrfs", "overlay"].contains(&m.fstype.as_str()))
    };
    let mut again = again.borrow_mut();
    let known = mounts
        .into_iter()
        .flatten()
        .filter(|m| !made.contains(&m.id))
        .chain(again.iter().flatten())
        .find(fits)
        .cloned();
    let m = match known {
        Some(m) => m,
        None => {
            let fresh = mountinfo::read()?;
            let m = fresh.iter().find(|m| m.id == id).cloned();
            *again = Some(fresh);
            m.ok_or_else(|| io::Error::other(format!("mount {id} not in the mount table")))?
        }
    };
    in_mount(&at, &m, tree)
}

/// [`in_tree`] for what lies at `at` on the mount `m`.
fn in_mount(at: &Path, m: &Mount, tree: &Tree) -> io::Result<Option<PathBuf>> {
    if m.dev != tree.0 {
        return Ok(None);
    }
    let rel = at.strip_prefix(&m.point).map_err(|_| {
        io::Error::other(format!(
            "{} is not below its mount point {}",
            show::path(at),
            show::path(&m.point)
        ))
    })?;
    let path = m.root.join(rel);
    Ok(path
        .strip_prefix(&tree.1)
        .ok()
        .map(|r| Path::new("/").join(r)))
}

/// Whether the mount found at an operation's target is what the operation
/// makes (`src`: what a bind's source was resolved to).
fn matches_op(m: &Mount, op: &Op, src: Option<&nix::sys::stat::FileStat>) -> bool {
    let ro = m.has_option("ro");
    if ro != op.attrs.has(Attrs::RDONLY) {
        return false;
    }
    match &op.what {
        What::Fs { fstype, .. } => &m.fstype == fstype,
        What::Bind { .. } | What::Node { .. } => src.is_some_and(|md| {
            let dev = md.st_dev;
            m.dev == format!("{}:{}", libc::major(dev), libc::minor(dev))
        }),
        What::Symlink { .. } => true,
    }
}

/// Refuses to create `name` in `dir` unless `dir` lies on one of the `allowed` mounts.
pub(crate) fn may_create(
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
            "refusing to create {at}: it would lie on a host directory bound into the sandbox \
             or a filesystem whose content is the host's; create it there yourself or change \
             the symlink in the rootfs"
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
    if nix::fcntl::readlinkat(dirfd.as_fd(), name).is_ok_and(|l| Path::new(&l) == to) {
        return Ok(());
    }
    may_create(root, dirfd.as_fd(), name, allowed)?;
    // An `O_PATH` directory serves `symlinkat` as a directory.
    match nix::unistd::symlinkat(to, dirfd.as_fd(), name) {
        Ok(()) | Err(nix::errno::Errno::EEXIST) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// What [`make_node`] found or did.
enum NodeDone {
    /// The node is there (made, or found as the host's).
    There,
    /// To be bound in, as a bind.
    Bind,
    /// Something is at its name that is neither the node nor to be bound
    /// over: left as it is.
    Differs(&'static str),
}

/// Whether `e` is the host's node `host`: a character device with its
/// number, permission bits and owner.
fn is_hosts(e: &sys::Entry, host: &nix::sys::stat::FileStat) -> bool {
    e.kind == libc::S_IFCHR
        && e.rdev == host.st_rdev
        && e.perm == host.st_mode & 0o7777
        && e.uid == host.st_uid
}

/// Puts the device node `target` (inside the root; its name never
/// followed) in place like the host's `src`. Found as the host's node on a
/// mount other than DIR's own (`root_id`): left alone. Missing, in a
/// filesystem `on` made (`fresh`: never the user's) that allows
/// devices, in a directory only root may change (owned by root, written to
/// by no one else): made, with its number and permission bits, owned by
/// root, in one `mknodat`. Anywhere else, or where the kernel refuses (a
/// device cgroup), the host's node is bound in ([`NodeDone::Bind`]), also
/// over a file or another node at the name, as before device nodes were
/// made. A symlink or a directory at the name is never followed, replaced
/// or bound over ([`NodeDone::Differs`]).
fn make_node(
    root: BorrowedFd,
    root_id: u64,
    target: &Path,
    src: &Path,
    fresh: &[u64],
) -> io::Result<NodeDone> {
    let Some(host) = host_node(src) else {
        return Ok(NodeDone::Bind); // the bind says why
    };
    let (Some(parent), Some(name)) = (target.parent(), target.file_name()) else {
        return Ok(NodeDone::Bind);
    };
    let Ok(dirfd) = sys::resolve_in_root(root, parent) else {
        return Ok(NodeDone::Bind);
    };
    let judge = |e: io::Result<sys::Entry>| match e {
        // On DIR's own filesystem (which may be `nodev`): bound over.
        Ok(e) if is_hosts(&e, &host) && e.mount_id != root_id => Ok(Some(NodeDone::There)),
        Ok(e) if e.kind == libc::S_IFLNK => Ok(Some(NodeDone::Differs("a symlink"))),
        Ok(e) if e.kind == libc::S_IFDIR => Ok(Some(NodeDone::Differs("a directory"))),
        Ok(_) => Ok(Some(NodeDone::Bind)),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(e) => Err(e),
    };
    if let Some(done) = judge(sys::entry_at(dirfd.as_fd(), name))? {
        return Ok(done);
    }
    let (id, _) = sys::mount_of(dirfd.as_fd())?;
    if !fresh.contains(&id) || !may_hold_nodes(dirfd.as_fd())? {
        return Ok(NodeDone::Bind);
    }
    let mask = nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    let done = mknod_like(dirfd.as_fd(), name, &host);
    nix::sys::stat::umask(mask);
    match done {
        Ok(()) => Ok(NodeDone::There),
        // Made by someone else in between: what is there is judged.
        Err(nix::errno::Errno::EEXIST) => {
            Ok(judge(sys::entry_at(dirfd.as_fd(), name))?.unwrap_or(NodeDone::Bind))
        }
        Err(nix::errno::Errno::EPERM) => Ok(NodeDone::Bind),
        Err(e) => Err(e.into()),
    }
}

/// The host's device node `src`, when it is a character device.
fn host_node(src: &Path) -> Option<nix::sys::stat::FileStat> {
    nix::sys::stat::stat(src)
        .ok()
        .filter(|host| host.st_mode & libc::S_IFMT == libc::S_IFCHR)
}

/// Whether device nodes may be made in the directory `d`: its filesystem
/// allows devices, and only root may change it (sticky is not enough:
/// another user could put a symlink at a name still missing, after a
/// kill, or racing the making).
fn may_hold_nodes(d: BorrowedFd) -> io::Result<bool> {
    let st = nix::sys::stat::fstat(d)?;
    let nodev = nix::sys::statvfs::fstatvfs(d)?
        .flags()
        .contains(nix::sys::statvfs::FsFlags::ST_NODEV);
    Ok(st.st_uid == 0 && st.st_mode & 0o022 == 0 && !nodev)
}

/// A node `name` in `d` like the host's `host`: its number and permission
/// bits, as they are only under an empty umask (the caller's to set).
fn mknod_like(
    d: BorrowedFd,
    name: &std::ffi::OsStr,
    host: &nix::sys::stat::FileStat,
) -> nix::Result<()> {
    use nix::sys::stat::{Mode, SFlag};
    let perm = Mode::from_bits_truncate(host.st_mode & 0o777);
    nix::sys::stat::mknodat(d, name, SFlag::S_IFCHR, perm, host.st_rdev)
}

/// Whether the device node of `op` (a [`What::Node`]) is in place in the
/// root: at its name (never followed) in the directory its parent leads
/// to, the host's node (number, permission bits, owner) on a mount other
/// than the root's own (the fresh /dev, or a bind of the host's node).
/// `dir`: the directory the last node's parent led to, kept for the next.
fn node_in_place<'a>(
    root: BorrowedFd,
    root_id: u64,
    op: &'a Op,
    dir: &mut Option<(&'a Path, OwnedFd)>,
) -> bool {
    let (What::Node { src }, Some(parent), Some(name)) =
        (&op.what, op.target.parent(), op.target.file_name())
    else {
        return false;
    };
    let Ok(host) = nix::sys::stat::stat(src) else {
        return false;
    };
    if dir.as_ref().is_none_or(|(p, _)| *p != parent) {
        match sys::resolve_in_root(root, parent) {
            Ok(fd) => *dir = Some((parent, fd)),
            Err(_) => return false,
        }
    }
    let Some((_, fd)) = dir else {
        return false;
    };
    matches!(
        sys::entry_at(fd.as_fd(), name),
        Ok(e) if is_hosts(&e, &host) && e.mount_id != root_id
    )
}

/// Unmounts everything at or below `dir`, deepest first, as read from
/// mountinfo, until nothing changes. At `dir` itself only `on`'s self-bind
/// is removed, never a filesystem the user mounted there. When `on`'s
/// self-bind is there, only it and what was mounted on it go (see
/// [`ours`]). Returns the mount points that are still there.
pub fn unmount_below(dir: &Path) -> io::Result<Vec<PathBuf>> {
    unmount_ours(dir, None, Table::whole()?, true)
}

/// The mount table as `off` reads it: the whole of it, or only the part
/// that decides the sandbox ([`mountinfo::read_at`]).
pub struct Table {
    pub mounts: Vec<Mount>,
    part: bool,
}

impl Table {
    pub fn whole() -> io::Result<Table> {
        Ok(Table {
            mounts: mountinfo::read()?,
            part: false,
        })
    }

    /// The part that decides the sandbox at `dir` when `on`'s self-bind is
    /// at `dir`: all that `off` takes is on it, and what lies below it
    /// (the user's) is none of `off`'s business. Otherwise (no self-bind:
    /// a sandbox of the 2020 tool, or off; or a kernel older than 6.8)
    /// the whole table.
    pub fn for_off(dir: &Path) -> io::Result<Table> {
        if let Some(mounts) = mountinfo::read_at(dir)? {
            if !self_binds(dir, &mounts).is_empty() {
                return Ok(Table { mounts, part: true });
            }
        }
        Table::whole()
    }

    /// Read again, the same way: a part is never mixed with the whole
    /// (what lay below the self-bind would read as new).
    pub fn again(&self, dir: &Path) -> io::Result<Table> {
        if !self.part {
            return Table::whole();
        }
        match mountinfo::read_at(dir)? {
            Some(mounts) => Ok(Table { mounts, part: true }),
            None => Err(io::Error::other(format!(
                "{}: the kernel no longer answers statmount, which it did a moment ago; \
                 run `chroot-tool off` again",
                show::path(dir)
            ))),
        }
    }
}

/// Unmounts the sandbox's mounts ([`ours`], `plan` deciding for a sandbox
/// without a self-bind), deepest first, until nothing changes; a mount the
/// user made below DIR before `on` stays. Returns the mount points left.
/// `first` is the mount table as found (read by the caller), and is read
/// again the same way. `detach_root`: DIR's self-bind, busy once nothing
/// is mounted on it, is detached (see `unmount_one`); else it is left,
/// and named, for the caller to find who keeps it.
pub fn unmount_ours(
    dir: &Path,
    plan: Option<&[Op]>,
    table: Table,
    detach_root: bool,
) -> io::Result<Vec<PathBuf>> {
    let first = &table.mounts;
    // Decided once, on the table as found: the self-bind goes last, and
    // what lay below it before `on` must not become "ours" once it is gone.
    let picked: Vec<u64> = ours(dir, plan, first).iter().map(|m| m.id).collect();
    let mut again: Option<Table> = None;
    loop {
        // The table as found serves the first pass; each later one reads it.
        let mounts: &[Mount] = match &again {
            None => first,
            Some(t) => &t.mounts,
        };
        // Something mounted over DIR since off began (while `stop` ran, or
        // the processes inside were given their time) is no more the
        // sandbox's than one there before: nothing is unmounted through it.
        if let Some(cover) = covering(dir, mounts) {
            return Err(io::Error::other(covered_message(dir, &cover)));
        }
        let fresh: Vec<u64> = ours(dir, plan, mounts).iter().map(|m| m.id).collect();
        let mut todo: Vec<&Mount> = mountinfo::under(mounts, dir)
            .into_iter()
            .filter(|m| {
                picked.contains(&m.id)
                    || (fresh.contains(&m.id) && first.iter().all(|f| f.id != m.id))
            })
            .collect();
        if todo.is_empty() {
            return Ok(vec![]);
        }
        // Deepest first; at one point, the last mounted first.
        todo.sort_by_key(|m| {
            std::cmp::Reverse((m.point.components().count(), position(mounts, m)))
        });
        // Private first, all of them, before any unmount: an unmount
        // propagates to the peers of the mount it is made on, so a shared
        // mount bound in (an `rbind` of the host's /dev) would take the
        // host's own submounts along. Everything on the self-bind is ours
        // and goes: one recursive change for all of it; one by one the rest.
        let mut root = sys::open_root(dir).ok();
        let binds = self_binds(dir, mounts);
        let tree = root.as_ref().and_then(|r| {
            todo.iter()
                .filter(|m| m.point == dir && binds.contains(&m.id))
                .find(|m| make_private(r.as_fd(), dir, m, true).is_ok())
        });
        for m in &todo {
            let done = tree.is_some_and(|t| t.id == m.id || descends_from(m, &[t.id], mounts));
            if let (false, Some(r)) = (done, &root) {
                let _ = make_private(r.as_fd(), dir, m, false);
            }
        }
        let mut progress = false;
        for m in &todo {
            if m.point == dir {
                // No descriptor of a mount at DIR may stay open while it
                // is unmounted.
                root = None;
            }
            if unmount_one(root.as_ref().map(|r| r.as_fd()), dir, m, detach_root).is_ok() {
                progress = true;
            }
        }
        if !progress {
            let mut left: Vec<PathBuf> = todo.iter().map(|m| m.point.clone()).collect();
            left.dedup();
            return Ok(left);
        }
        again = Some(table.again(dir)?);
    }
}

/// The sandbox's own mounts: `on`'s self-binds at `dir` and every mount
/// made on them, by mount id (none when the sandbox has no self-bind).
pub fn own_mounts(dir: &Path, mounts: &[Mount]) -> Vec<u64> {
    if self_binds(dir, mounts).is_empty() {
        return vec![];
    }
    ours(dir, None, mounts).iter().map(|m| m.id).collect()
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

/// The root of the mount `m`, reached from `dir` (its root `root`, opened
/// here when not given) with no symlink followed, if it is the mount at the
/// top of its point.
fn reach(root: Option<BorrowedFd>, dir: &Path, m: &Mount) -> Result<OwnedFd> {
    let rel = m.point.strip_prefix(dir)?;
    let fd = match (root, rel.as_os_str().is_empty()) {
        (Some(r), true) => r.try_clone_to_owned()?,
        (Some(r), false) => sys::resolve_beneath(r, rel)?,
        (None, true) => sys::open_root(dir)?,
        (None, false) => sys::resolve_beneath(sys::open_root(dir)?.as_fd(), rel)?,
    };
    let (id, is_root) = sys::mount_of(fd.as_fd())?;
    if id != m.id || !is_root {
        return Err(anyhow!("{} is covered", show::path(&m.point)));
    }
    Ok(fd)
}

/// The directory `m` is mounted in and its name there, if `m` is the
/// mount at the top of its point (reached as [`reach`] does): what an
/// unmount names, since an open descriptor of `m` would make it busy.
fn point_of<'a>(
    root: Option<BorrowedFd>,
    dir: &Path,
    m: &'a Mount,
) -> Result<(OwnedFd, &'a std::ffi::OsStr)> {
    let rel = m.point.strip_prefix(dir)?;
    drop(reach(root, dir, m)?);
    if rel.as_os_str().is_empty() {
        let p = dir.parent().ok_or_else(|| anyhow!("no parent"))?;
        return Ok((
            sys::open_path(p)?,
            m.point.file_name().ok_or_else(|| anyhow!("no name"))?,
        ));
    }
    let owned;
    let root = match root {
        Some(r) => r,
        None => {
            owned = sys::open_root(dir)?;
            owned.as_fd()
        }
    };
    let p = rel.parent().unwrap_or(Path::new(""));
    Ok((
        sys::resolve_beneath(root, p)?,
        rel.file_name().ok_or_else(|| anyhow!("no name"))?,
    ))
}

/// Makes the mount `m` (and, `recursive`, every mount on it) private, so
/// that nothing unmounted on it propagates anywhere.
fn make_private(root: BorrowedFd, dir: &Path, m: &Mount, recursive: bool) -> Result<()> {
    let fd = reach(Some(root), dir, m)?;
    sys::set_attrs(fd.as_fd(), Attrs(0), Some(Propagation::Private), recursive)?;
    Ok(())
}

/// Unmounts `m` if, reached from `dir` with no symlink followed, it is the
/// mount at the top of its point; anything else is left for a later pass.
/// The check is made on a descriptor; the unmount itself (which an open
/// descriptor would make busy) names the point relative to its verified
/// parent directory, with no symlink followed; the point may be longer than
/// `PATH_MAX` (see [`sys::resolve_beneath`]).
fn unmount_one(root: Option<BorrowedFd>, dir: &Path, m: &Mount, detach_root: bool) -> Result<()> {
    let rel = m.point.strip_prefix(dir)?;
    let (parent, name) = point_of(root, dir, m)?;
    match sys::unmount_at(parent.as_fd(), name, false) {
        // DIR's self-bind is the same directory as what it covers and nothing
        // is mounted below it any more: a host shell whose working directory
        // is in DIR may keep it, harmlessly, after it is detached. Never an
        // overlay sandbox's view (what is written there afterwards would go
        // to an upper layer that the next `on` mounts a second time), nor
        // anything else mounted at DIR.
        Err(e)
            if detach_root
                && rel.as_os_str().is_empty()
                && e.raw_os_error() == Some(libc::EBUSY)
                && m.fstype != "overlay"
                && crate::owned::is_ours(&m.point, m.id)
                && !mountinfo::has_mounts_on(m)? =>
        {
            sys::unmount_at(parent.as_fd(), name, true)?
        }
        r => r?,
    }
    if rel.as_os_str().is_empty() {
        crate::owned::forget(m.id);
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
            if let Err(e) = unmount_one(None, dir, m, true) {
                left.push(format!("{} ({e:#})", show::path(&m.point)));
            }
        }
    }
    left
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table older than the mount it is asked about: the id is there,
    /// but for another mount (gone since, its id taken again). What lies
    /// on the mount is judged on the table read again, not on the old line.
    #[test]
    fn in_table_reads_the_table_again_for_an_id_taken_again() {
        let now = mountinfo::read().unwrap();
        let etc = sys::open_path(Path::new("/etc")).unwrap();
        let (id, _) = sys::mount_of(etc.as_fd()).unwrap();
        let real = now.iter().find(|m| m.id == id).unwrap().clone();
        // The sandbox: the whole filesystem /etc lies on, as mounted there.
        let tree = (real.dev.clone(), real.root.clone());
        let want = in_table(etc.as_fd(), &tree, Some(&now), &[], &Default::default()).unwrap();
        assert!(want.is_some());
        // The same id in an old table, for a tmpfs mounted at the same place.
        let old = vec![Mount {
            dev: "0:999999".into(),
            fstype: "tmpfs".into(),
            root: "/".into(),
            ..real
        }];
        let again = Default::default();
        assert_eq!(
            in_table(etc.as_fd(), &tree, Some(&old), &[], &again).unwrap(),
            want
        );
        assert!(again.borrow().is_some(), "the table was not read again");
    }
}
