//! Overlay sandboxes (`create --overlay BASE`): a sandbox whose root is an
//! overlayfs over a shared, read-only base sandbox.
//!
//! Layout of DIR on disk (what is there while it is off):
//!
//! ```text
//! DIR/chroot.d/              the sandbox's own chroot.d (tool.conf, commands...)
//!   overlay.toml             BASE's canonical path and its device and inode
//! DIR/.chroot-tool/upper/    the upper layer: every file written, whiteouts
//! DIR/.chroot-tool/work/     overlayfs's work directory
//! ```
//!
//! `on` mounts the merged view (lower BASE, upper and work above) on DIR
//! itself, in place of the self-bind of a plain sandbox, recorded as `on`
//! records its self-binds (`owned`), then binds DIR's own `chroot.d` over
//! the merged view's `/chroot.d`: a sandbox's chroot.d is its own, never
//! BASE's, and reads the same whether the sandbox is on (through the bind)
//! or off (on disk). `.chroot-tool` lies under the merged view, out of
//! reach of the processes inside. `off` unmounts it last, like a
//! self-bind, and DIR shows its own three entries again.
//!
//! Every layer is opened by the tool and handed to overlayfs by descriptor:
//! BASE by its recorded path with no symlink on the way and checked against
//! its recorded device and inode (a BASE moved away, or a symlink swapped
//! into its path, is refused), the upper and work directories beneath DIR
//! with no symlink either.
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::{show, sys};

/// The record, inside the root (the sandbox's own chroot.d).
pub const RECORD: &str = "/chroot.d/overlay.toml";
/// DIR's directory of the layers, hidden under the merged view.
pub const STATE: &str = ".chroot-tool";
const UPPER: &str = ".chroot-tool/upper";
const WORK: &str = ".chroot-tool/work";

/// What `chroot.d/overlay.toml` says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// BASE's canonical path.
    pub base: PathBuf,
    /// BASE's device and inode when the overlay was made.
    pub dev: u64,
    pub ino: u64,
    /// Made in a user namespace (a normal user's): overlayfs keeps its
    /// marks in `user.overlay.*` attributes, not `trusted.overlay.*`.
    #[serde(default)]
    pub userxattr: bool,
}

/// The overlay record of the sandbox at `dir` (as its root shows it now:
/// on disk when off, through the chroot.d bind when on), if it is one.
pub fn read(dir: &Path) -> Result<Option<Record>> {
    let root = sys::open_root(dir).with_context(|| format!("opening {}", show::path(dir)))?;
    read_at(root.as_fd(), dir)
}

fn read_at(root: BorrowedFd, dir: &Path) -> Result<Option<Record>> {
    let path = dir.join(RECORD.trim_start_matches('/'));
    let Some(bytes) =
        sys::read_in_root(root, Path::new(RECORD), 64 * 1024).with_context(|| show::path(&path))?
    else {
        return Ok(None);
    };
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| anyhow::anyhow!("{}: not UTF-8 text", show::path(&path)))?;
    let rec: Record = toml::from_str(text).map_err(|e| {
        anyhow::anyhow!("{}: {}", show::path(&path), show::error_line([e.message()]))
    })?;
    if !rec.base.is_absolute() {
        bail!("{}: base is not an absolute path", show::path(&path));
    }
    Ok(Some(rec))
}

/// Whether `dir` is an overlay sandbox (its record is there).
pub fn is_overlay(dir: &Path) -> bool {
    sys::open_root(dir)
        .and_then(|r| sys::resolve_in_root(r.as_fd(), Path::new(RECORD)))
        .is_ok()
}

/// What `create --overlay` made.
pub struct Created {
    pub dir: PathBuf,
    pub base: PathBuf,
}

/// Makes DIR (missing or empty) an overlay sandbox over `base`: its
/// `chroot.d` (a copy of BASE's own files: tool.conf, commands, create.toml;
/// not its log), the record, and the empty upper and work directories.
/// Nothing of BASE is written, and nothing is copied from its root.
pub fn create(dir: &Path, base: &Path) -> Result<Created> {
    let missing = || format!("--overlay {}: no such directory", show::path(base));
    // Root resolves BASE as it resolves DIR: a symlink on the way chooses
    // the directory, so each must be root's (or the sudo user's).
    let base = if crate::audit::invoked_as_root() {
        use crate::sandbox::Unresolved;
        let abs = std::path::absolute(base).with_context(missing)?;
        match crate::sandbox::resolve_trusted(&abs, false) {
            Ok((b, _)) => b,
            Err(Unresolved::Refused(why)) => bail!("--overlay {}: {why}", show::path(base)),
            Err(Unresolved::Missing(_)) => bail!(missing()),
            Err(Unresolved::Io(p, e)) => {
                return Err(e).with_context(|| format!("--overlay {}", show::path(p)))
            }
        }
    } else {
        crate::sys::canonicalize(base).with_context(missing)?
    };
    let base_fd =
        sys::open_root(&base).with_context(|| format!("--overlay {}", show::path(&base)))?;
    check_base(&base, base_fd.as_fd(), "--overlay")?;
    // Before DIR is made: a refusal leaves nothing behind.
    let Some(text) = base.to_str() else {
        bail!(
            "--overlay {}: the path is not UTF-8, which the record cannot hold",
            show::path(&base)
        );
    };
    let abs = std::path::absolute(dir).with_context(|| show::path(dir))?;
    // Made as any create makes DIR: root refuses, before anything is made,
    // a DIR another user may rename (the layers and the record are
    // written by its path), and makes the missing parts from a descriptor.
    let apart = |dir: &Path| {
        if dir.starts_with(&base) || base.starts_with(dir) {
            return Err(crate::create::CreateError::Ancestry(format!(
                "--overlay {}: BASE and DIR {} lie one in the other; give directories apart",
                show::path(&base),
                show::path(dir)
            )));
        }
        Ok(())
    };
    let (dir, made_dir) = crate::create::make_dir(&abs, &apart)?;
    if let Some(why) = crate::sandbox::refusal(&dir) {
        // A refused DIR this create made goes again (empty, so never
        // anything of the user's).
        if made_dir {
            let _ = std::fs::remove_dir(&dir);
        }
        bail!("refusing {}: {why}", show::path(&dir));
    }
    let _lock = crate::lock::exclusive(&dir)?;
    // Before DIR is made root's: a refused DIR is left as it was.
    if std::fs::read_dir(&dir)
        .with_context(|| show::path(&dir))?
        .next()
        .is_some()
    {
        // What a create of ours left unfinished (killed) is ours to empty,
        // looked at on the descriptor emptied: never a directory swapped
        // in meanwhile (a finished sandbox), never anyone else's.
        let emptied = crate::remove::empty_tree_if(&dir, crate::create::is_failed_create_at)
            .with_context(|| {
                format!(
                    "emptying what a create that did not finish left in {}",
                    show::path(&dir)
                )
            })?;
        if emptied.is_none() {
            return Err(crate::create::CreateError::NotEmpty(dir).into());
        }
    }
    crate::archive::trust::own_dir(&dir).with_context(|| show::path(&dir))?;
    // A normal user's too: `on`'s checks see the merged view at DIR, not
    // DIR's own directory, which holds the chroot.d that is bound in.
    crate::archive::trust::shut_dir(&dir).with_context(|| show::path(&dir))?;
    let st = nix::sys::stat::fstat(base_fd.as_fd()).with_context(|| show::path(&base))?;
    let rec = Record {
        base: PathBuf::from(text),
        dev: st.st_dev,
        ino: st.st_ino,
        userxattr: !nix::unistd::geteuid().is_root(),
    };
    let made = || -> io::Result<()> {
        let mut db = std::fs::DirBuilder::new();
        db.mode(0o755).create(dir.join("chroot.d"))?;
        // First: the mark of a create of ours at work, which the next
        // create empties if this one does not finish (the record, written
        // last, says it did).
        let log = dir.join("chroot.d").join(crate::create::LOG);
        std::fs::write(&log, format!("create --overlay {}\n", show::path(&base)))?;
        std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o644))?;
        db.mode(0o700).create(dir.join(STATE))?;
        db.mode(0o755).create(dir.join(UPPER))?;
        db.mode(0o700).create(dir.join(WORK))?;
        // The merged root takes the upper directory's owner and mode.
        let upper = dir.join(UPPER);
        std::fs::set_permissions(&upper, std::fs::Permissions::from_mode(st.st_mode & 0o7777))?;
        if nix::unistd::geteuid().is_root() {
            std::os::unix::fs::chown(&upper, Some(st.st_uid), Some(st.st_gid))?;
        }
        Ok(())
    };
    made().with_context(|| format!("making the layers in {}", show::path(&dir)))?;
    // BASE's `create.toml` last, after the overlay's own record: until
    // then a killed create reads as one that did not finish
    // ([`crate::create::is_failed_create`]), which the next one empties.
    copy_chroot_d(base_fd.as_fd(), &base, &dir, |n| {
        n != crate::create::record::FILE
    })?;
    let text = format!(
        "# chroot-tool: this sandbox is an overlay over BASE; its files are written to\n\
         # ../.chroot-tool/upper. BASE must not change while an overlay over it is on.\n{}",
        toml::to_string(&rec).context("writing the overlay record")?
    );
    // 0644 whatever the umask: `on` refuses a record others may write.
    let record = dir.join("chroot.d/overlay.toml");
    std::fs::write(&record, text)
        .and_then(|()| std::fs::set_permissions(&record, std::fs::Permissions::from_mode(0o644)))
        .with_context(|| show::path(&record))?;
    copy_chroot_d(base_fd.as_fd(), &base, &dir, |n| {
        n == crate::create::record::FILE
    })?;
    // Finished: the mark of a create at work goes.
    let log = dir.join("chroot.d").join(crate::create::LOG);
    std::fs::remove_file(&log).with_context(|| show::path(&log))?;
    Ok(Created { dir, base })
}

/// BASE's own chroot.d files (regular files, up to 1 MiB each, read
/// through the one door) whose names `pick` takes, copied into DIR's new
/// chroot.d with their modes.
fn copy_chroot_d(
    base_fd: BorrowedFd,
    base: &Path,
    dir: &Path,
    pick: impl Fn(&str) -> bool,
) -> Result<()> {
    let Ok(cd) = sys::resolve_in_root(base_fd, Path::new("/chroot.d")) else {
        return Ok(());
    };
    let Ok(entries) = std::fs::read_dir(sys::fd_path(cd.as_fd())) else {
        return Ok(());
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let text = name.to_str().unwrap_or("");
        if ["overlay.toml", crate::create::LOG].contains(&text) || !pick(text) {
            continue;
        }
        let inside = Path::new("/chroot.d").join(&name);
        let Ok(Some(bytes)) = sys::read_in_root(base_fd, &inside, 1 << 20) else {
            continue;
        };
        let mode = e.metadata().map_or(0o644, |m| m.mode() & 0o777);
        let to = dir.join("chroot.d").join(&name);
        std::fs::write(&to, bytes)
            .and_then(|()| std::fs::set_permissions(&to, std::fs::Permissions::from_mode(mode)))
            .with_context(|| {
                format!(
                    "copying {} to {}",
                    show::path(base.join("chroot.d").join(&name)),
                    show::path(&to)
                )
            })?;
    }
    Ok(())
}

/// Refuses a BASE that is not a root filesystem, is itself an overlay
/// sandbox, or is a directory that may never be a sandbox (`/`, `/etc`...);
/// and one that someone else than the invoking user (or root) could have
/// written or could swap, as `on` refuses such a DIR: what BASE holds is
/// what the overlay's programs run, root's `run` included, and its
/// chroot.d is copied into DIR's (tool.conf's host binds, commands).
/// `named`: how BASE is named in what is said (`--overlay BASE`).
fn check_base(base: &Path, fd: BorrowedFd, named: &str) -> Result<()> {
    let say = |why: &str| anyhow::anyhow!("{named} {}: {why}", show::path(base));
    if let Some(why) = crate::sandbox::refusal(base) {
        return Err(say(&why));
    }
    if let Some(why) = crate::sandbox::ancestry_refusal(base) {
        return Err(say(&why));
    }
    // Owners as the host sees them: inside a normal user's own user
    // namespace (a holder's, at `on`) root's files show as the overflow
    // id; that user's BASE was looked at from the host at create. What is
    // looked at is what was opened (`fd`), never BASE's path again.
    let users_own_ns = !crate::audit::invoked_as_root() && nix::unistd::getuid().is_root();
    if !users_own_ns {
        let own = nix::sys::stat::fstat(fd).map_err(|e| say(&e.to_string()))?;
        if let Some(why) = crate::sandbox::not_alone(&own) {
            return Err(say(&why));
        }
        if let Some(why) = crate::sandbox::control_refusal_at(fd, base) {
            return Err(say(&why));
        }
    }
    if sys::resolve_in_root(fd, Path::new(RECORD)).is_ok() {
        return Err(say(
            "it is itself an overlay sandbox; give its BASE, or a sandbox of its own (a packed and unpacked copy)",
        ));
    }
    if sys::resolve_in_root(fd, Path::new("/bin/sh")).is_err() {
        return Err(say(
            "not a root filesystem (no /bin/sh inside): BASE is a sandbox made by create",
        ));
    }
    Ok(())
}

/// BASE opened for a mount: by its recorded path with no symlink on the
/// way (a symlink swapped into the path is refused, never followed), the
/// same directory as when the overlay was made (device and inode), still
/// a root filesystem, and not on (a base that is on is being written to).
pub fn open_base(rec: &Record) -> Result<OwnedFd> {
    let base = &rec.base;
    let say = |why: String| anyhow::anyhow!("the overlay's BASE {}: {why}", show::path(base));
    let slash = sys::open_root(Path::new("/")).context("opening /")?;
    let fd = sys::resolve_beneath(slash.as_fd(), base).map_err(|e| match e.raw_os_error() {
        Some(libc::ELOOP) => say(
            "a symlink is on its path now; BASE is named by the path it had at create, and no symlink is followed".into(),
        ),
        _ => say(format!("{e}")),
    })?;
    let st = nix::sys::stat::fstat(fd.as_fd()).map_err(|e| say(e.to_string()))?;
    if (st.st_dev, st.st_ino) != (rec.dev, rec.ino) {
        return Err(say(
            "not the directory it was when the overlay was made (moved or replaced)".into(),
        ));
    }
    if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
        return Err(say("not a directory".into()));
    }
    let (id, top) = sys::mount_of(fd.as_fd()).map_err(|e| say(e.to_string()))?;
    if (top && crate::owned::is_ours(base, id))
        || matches!(crate::holder::find(base), crate::holder::Found::Alive(_))
        || crate::owned::on_elsewhere(base, None).is_some()
        // On through another spelling (a bind of BASE, or of a directory
        // above it, elsewhere): its self-bind, by its record.
        || crate::owned::self_bind_of((rec.dev, rec.ino)).is_some()
    {
        return Err(say(
            "it is on; an overlay sandbox uses BASE only while BASE is off (turn it off first)"
                .into(),
        ));
    }
    check_base(base, fd.as_fd(), "the overlay's BASE")?;
    Ok(fd)
}

/// A directory beneath DIR's own tree, no symlink on the way.
fn layer_dir(disk: BorrowedFd, dir: &Path, rel: &str) -> Result<OwnedFd> {
    let at = dir.join(rel);
    let fd = sys::resolve_beneath(disk, Path::new(rel)).map_err(|e| match e.raw_os_error() {
        Some(libc::ELOOP) => anyhow::anyhow!(
            "{}: a symlink, not the overlay's own directory; refusing to use it",
            show::path(&at)
        ),
        _ => anyhow::anyhow!("{}: {e}", show::path(&at)),
    })?;
    let st = nix::sys::stat::fstat(fd.as_fd()).with_context(|| show::path(&at))?;
    if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
        bail!("{}: not a directory", show::path(&at));
    }
    Ok(fd)
}

/// The options the sandbox's overlays are made with: no directory
/// redirects, no metadata-only copies, no index (the upper layer stays
/// plain files, whiteouts and opaque directories, which `pack` reads back
/// as a lower layer); in a user namespace `userxattr`, which implies the
/// first two (and refuses them given).
pub fn options(userxattr: bool) -> Vec<&'static str> {
    if userxattr {
        vec!["userxattr", "index=off"]
    } else {
        vec!["redirect_dir=off", "metacopy=off", "index=off"]
    }
}

fn check_xattr_mode(rec: &Record) -> Result<()> {
    let userns = sys::in_user_ns();
    match (rec.userxattr, userns) {
        (false, true) => bail!(
            "this overlay sandbox was made by root: turn it on as root, without a user namespace (no -N)"
        ),
        (true, false) if nix::unistd::geteuid().is_root() => bail!(
            "this overlay sandbox was made by a normal user: turn it on as that user"
        ),
        _ => Ok(()),
    }
}

/// The merged view of the sandbox at `dir` (off in this mount namespace:
/// DIR shows its own directory), as a detached mount, and a detached bind
/// of DIR's own chroot.d to put over its `/chroot.d`.
pub struct View {
    pub merged: OwnedFd,
    pub chroot_d: OwnedFd,
}

pub fn view(dir: &Path, rec: &Record) -> Result<View> {
    check_xattr_mode(rec)?;
    let disk = sys::open_root(dir).with_context(|| format!("opening {}", show::path(dir)))?;
    let upper = layer_dir(disk.as_fd(), dir, UPPER)?;
    let work = layer_dir(disk.as_fd(), dir, WORK)?;
    let cd = layer_dir(disk.as_fd(), dir, "chroot.d")?;
    let base = open_base(rec)?;
    let merged = sys::new_overlay(
        &[base.as_fd()],
        Some((upper.as_fd(), work.as_fd())),
        &options(rec.userxattr),
        sys::Attrs(0),
    )
    .with_context(|| {
        format!(
            "mounting the overlay of {} over {}",
            show::path(dir),
            show::path(&rec.base)
        )
    })?;
    let chroot_d = sys::clone_tree_fd(cd.as_fd(), false, sys::Attrs(0), sys::Propagation::Private)
        .with_context(|| format!("binding {}", show::path(dir.join("chroot.d"))))?;
    Ok(View { merged, chroot_d })
}

/// DIR's own directory, whatever is mounted on it: DIR itself when
/// nothing is, else DIR as found in a detached, non-recursive clone of
/// its parent's mount (as root).
fn own_dir(dir: &Path) -> Result<(OwnedFd, Option<OwnedFd>)> {
    let fd = sys::open_root(dir).with_context(|| format!("opening {}", show::path(dir)))?;
    let (_, top) = sys::mount_of(fd.as_fd())?;
    if !top {
        return Ok((fd, None));
    }
    let parent = dir.parent().unwrap_or(Path::new("/"));
    let name = dir.file_name().unwrap_or_default();
    let p = sys::open_root(parent).with_context(|| show::path(parent))?;
    let clone = sys::clone_tree_fd(
        p.as_fd(),
        false,
        sys::Attrs(sys::Attrs::RDONLY),
        sys::Propagation::Private,
    )
    .with_context(|| {
        format!(
            "reaching {}'s own directory under what is mounted on it",
            show::path(dir)
        )
    })?;
    let own =
        sys::resolve_beneath(clone.as_fd(), Path::new(name)).with_context(|| show::path(dir))?;
    Ok((own, Some(clone)))
}

/// A read-only, flattened view of the overlay sandbox at `dir` for
/// `pack`, whether it is on or off: a detached overlay with the upper
/// layer as the top lower layer over BASE (whiteouts and opaque
/// directories apply as they do in the sandbox), and DIR's own chroot.d.
pub struct Flat {
    pub merged: OwnedFd,
    pub chroot_d: OwnedFd,
    _keep: Vec<OwnedFd>,
}

pub fn flat(dir: &Path, rec: &Record) -> Result<Flat> {
    let (own, clone) = own_dir(dir)?;
    let upper = layer_dir(own.as_fd(), dir, UPPER)?;
    let cd = layer_dir(own.as_fd(), dir, "chroot.d")?;
    let ro = sys::Attrs(sys::Attrs::RDONLY | sys::Attrs::NOSUID | sys::Attrs::NODEV);
    let merged = if clone.is_some() && crate::engine::recorded_on(dir) {
        // On here: its merged view, without the mounts on it.
        let top = sys::open_root(dir).with_context(|| show::path(dir))?;
        sys::clone_tree_fd(top.as_fd(), false, ro, sys::Propagation::Private)
            .with_context(|| format!("a view of {}", show::path(dir)))?
    } else {
        let base = open_base_for_reading(rec)?;
        let o = if rec.userxattr {
            vec!["userxattr"]
        } else {
            vec!["redirect_dir=off", "metacopy=off"]
        };
        sys::new_overlay(&[upper.as_fd(), base.as_fd()], None, &o, ro).with_context(|| {
            format!(
                "a flattened view of {} over {}",
                show::path(dir),
                show::path(&rec.base)
            )
        })?
    };
    let chroot_d = nix::fcntl::openat(
        cd.as_fd(),
        ".",
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .with_context(|| show::path(dir.join("chroot.d")))?;
    let mut keep = vec![own];
    keep.extend(clone);
    Ok(Flat {
        merged,
        chroot_d,
        _keep: keep,
    })
}

/// BASE for reading (pack): as [`open_base`], except that BASE may be on
/// (it is read, not written; its own mounts are not in the view).
fn open_base_for_reading(rec: &Record) -> Result<OwnedFd> {
    let base = &rec.base;
    let say = |why: String| anyhow::anyhow!("the overlay's BASE {}: {why}", show::path(base));
    let slash = sys::open_root(Path::new("/")).context("opening /")?;
    let fd = sys::resolve_beneath(slash.as_fd(), base).map_err(|e| say(e.to_string()))?;
    let st = nix::sys::stat::fstat(fd.as_fd()).map_err(|e| say(e.to_string()))?;
    if (st.st_dev, st.st_ino) != (rec.dev, rec.ino) {
        return Err(say(
            "not the directory it was when the overlay was made (moved or replaced)".into(),
        ));
    }
    // Its own directory, not what may be mounted at it (its self-bind's
    // submounts are not layers anyway).
    let clone = sys::clone_tree_fd(
        fd.as_fd(),
        false,
        sys::Attrs(sys::Attrs::RDONLY),
        sys::Propagation::Private,
    );
    Ok(clone.unwrap_or(fd))
}

/// For a normal user about to read the overlay sandbox at `dir` (`pack`,
/// `export`): this (still single-threaded) process enters a user namespace
/// with the user's mapping and a mount namespace of its own, where it may
/// make the flattened view ([`flat`]); files it writes are the user's on
/// disk. Nothing for root, or for a sandbox that is not an overlay.
pub fn enter_for_reading(dir: &Path) -> Result<()> {
    if nix::unistd::geteuid().is_root() || !is_overlay(dir) {
        return Ok(());
    }
    let me = crate::sandbox::real_user()
        .context("the invoking user has no entry in the password database")?;
    let map = crate::idmap::for_user(me.uid.as_raw(), me.gid.as_raw(), &me.name)?;
    map.enter()
        .context("entering a user namespace to read the overlay sandbox")?;
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .context("making a mount namespace to read the overlay sandbox")?;
    Ok(())
}

/// The overlay sandboxes over `base` among those this user's list knows
/// (`list`), by BASE's device and inode.
pub fn users_of(base: &Path) -> Vec<PathBuf> {
    let Ok(md) = std::fs::metadata(base) else {
        return vec![];
    };
    let Ok(all) = crate::registry::sandboxes() else {
        return vec![];
    };
    all.into_iter()
        .filter(|d| d != base && is_over(d, (md.dev(), md.ino())))
        .collect()
}

/// Whether the sandbox at `dir` is an overlay over the base `key`
/// (device, inode), by its record.
fn is_over(dir: &Path, key: (u64, u64)) -> bool {
    read(dir)
        .ok()
        .flatten()
        .is_some_and(|r| (r.dev, r.ino) == key)
}

/// The overlay sandboxes this user's list knows, other than `base`, that
/// are on and that something mounted over their directory after `on`
/// hides (`engine::cover_of`): whether one of them is over `base` cannot
/// be read through it.
pub fn hidden_from(base: &Path) -> Vec<PathBuf> {
    let hidden_overlay = |d: &Path| {
        crate::engine::cover_of(d)
            .is_some_and(|(_, t)| t.iter().any(|m| m.point == d && m.fstype == "overlay"))
    };
    crate::registry::sandboxes()
        .unwrap_or_default()
        .into_iter()
        .filter(|d| d != base && hidden_overlay(d))
        .collect()
}

/// The overlay sandboxes over `base` that are on: in this mount
/// namespace, or through a holder. Asked of the index of overlays turned
/// on ([`note_on`]), so that `on` costs the same whatever the number of
/// sandboxes in the list: the links under `RUN/bases/DEV-INO/` of BASE's
/// device and inode name the candidates, and each one's own record and
/// state decide. Until the index is known complete for this run directory
/// (overlays turned on by an earlier version have no link), the list is
/// read once and every overlay found on is indexed.
pub fn users_on(base: &Path) -> Vec<PathBuf> {
    let Ok(md) = std::fs::metadata(base) else {
        return vec![];
    };
    let key = (md.dev(), md.ino());
    let candidates = if is_indexed() {
        indexed_over(key)
    } else {
        index_all().into_iter().map(|d| (d, None)).collect()
    };
    let mut on = vec![];
    for (d, own) in candidates {
        if d == base {
            continue;
        }
        if is_over(&d, key) && is_on(&d) {
            on.push(d);
        } else if let Some(own) = own {
            // Its path no longer leads to it (DIR or a directory above it
            // moved, or something covers it): its view, found by
            // identity, is still mounted over BASE, here or in another
            // namespace (a holder's).
            if let Some(at) = crate::owned::view_of(own) {
                on.push(at);
            } else if crate::owned::on_elsewhere_of(own, None).is_some() {
                on.push(d);
            }
        }
    }
    on.sort();
    on.dedup();
    on
}

/// Whether the overlay sandbox at `dir` is on: in this mount namespace,
/// through a holder, or in another mount namespace that a process still
/// holds (by the records of its view there).
fn is_on(dir: &Path) -> bool {
    crate::engine::recorded_on(dir)
        || matches!(crate::holder::find(dir), crate::holder::Found::Alive(_))
        || crate::owned::on_elsewhere(dir, None).is_some()
}

/// The index of overlay sandboxes turned on, by base.
fn bases_dir() -> PathBuf {
    crate::owned::run_dir().join("bases")
}

/// Made once every overlay on had its link (see [`users_on`]).
const INDEXED: &str = "indexed";

fn is_indexed() -> bool {
    std::fs::symlink_metadata(bases_dir().join(INDEXED)).is_ok()
}

/// The directory of the links of the overlays over the base `(dev, ino)`.
fn over_dir(key: (u64, u64)) -> PathBuf {
    bases_dir().join(format!("{}-{}", key.0, key.1))
}

/// Notes that the overlay sandbox at `dir` (canonical, its own directory
/// not covered yet) is turned on over `rec`'s base: a link to DIR under
/// `RUN/bases/DEV-INO/`, named `o-DEV-INO` by DIR's own device and inode
/// (which find its view by its record if DIR moves: [`users_on`]), made
/// before the overlay is mounted and left there (a stale link is only a
/// candidate that [`users_on`] rules out).
pub fn note_on(dir: &Path, rec: &Record) -> io::Result<()> {
    let own = std::fs::metadata(dir)?;
    let at = over_dir((rec.dev, rec.ino));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&at)?;
    let name = format!("o-{}-{}", own.dev(), own.ino());
    // A link of an earlier `on` under the same name may name DIR's old path.
    let _ = std::fs::remove_file(at.join(&name));
    match std::os::unix::fs::symlink(dir, at.join(&name)) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(e),
        _ => Ok(()),
    }
}

/// The overlay sandboxes the index names over the base `key` (their links
/// read, never followed), each with its own directory's device and inode
/// when the link's name gives them (an earlier version's does not).
fn indexed_over(key: (u64, u64)) -> Vec<(PathBuf, Option<(u64, u64)>)> {
    let Ok(rd) = std::fs::read_dir(over_dir(key)) else {
        return vec![];
    };
    rd.flatten()
        .filter_map(|e| {
            let d = std::fs::read_link(e.path())
                .ok()
                .filter(|d| d.is_absolute())?;
            Some((d, own_of_link(e.file_name().to_str()?)))
        })
        .collect()
}

/// DIR's own device and inode from the name of its link, `o-DEV-INO`.
fn own_of_link(name: &str) -> Option<(u64, u64)> {
    let (dev, ino) = name.strip_prefix("o-")?.split_once('-')?;
    Some((dev.parse().ok()?, ino.parse().ok()?))
}

/// Reads the list once, links every overlay sandbox of it that is on, then
/// marks the index complete; the overlay sandboxes of the list.
fn index_all() -> Vec<PathBuf> {
    let overlays: Vec<(PathBuf, Record)> = crate::registry::sandboxes()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|d| read(&d).ok().flatten().map(|r| (d, r)))
        .collect();
    let mut complete = true;
    for (d, r) in &overlays {
        if is_on(d) && note_on(d, r).is_err() {
            complete = false;
        }
    }
    if complete {
        let _ = std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(bases_dir())
            .and_then(|()| std::fs::File::create(bases_dir().join(INDEXED)));
    }
    overlays.into_iter().map(|(d, _)| d).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trips_paths_with_commas_and_colons() {
        let r = Record {
            base: PathBuf::from("/srv/a,b:c\\d \"e\""),
            dev: 2049,
            ino: 12,
            userxattr: false,
        };
        let text = toml::to_string(&r).unwrap();
        assert_eq!(toml::from_str::<Record>(&text).unwrap(), r);
    }
}
