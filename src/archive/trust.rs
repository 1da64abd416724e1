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
//!
//! The review looks at exactly what `on` and `run` use: `chroot.d` and the
//! files in it resolved inside the root (symlinks followed as if DIR were
//! `/`, as `Conf::load_in_root` and `host-cmd`'s lookup do), and the very
//! name they would find is renamed, by the descriptor of the directory it
//! is in. A set-aside is checked by reviewing again.
//!
//! An archive's set-id files, files with capabilities and device nodes
//! outside `/dev` are reachable by every local user once DIR is: DIR is
//! unpacked mode 0700 and stays so while the archive holds any of them
//! ([`settle_root`]) until it is accepted; the archive's mode for DIR is
//! kept in `chroot.d/root-mode.untrusted` until then.
use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::conf::{Conf, FsKind};
use crate::{show, sys};

pub const CONF: &str = "tool.conf";
pub const HOST_CMD: &str = "host-cmd";
/// An overlay sandbox's record: it names a host directory that `on`
/// mounts as the sandbox's lower layer.
pub const OVERLAY: &str = "overlay.toml";
/// The suffix of what was set aside.
pub const SUFFIX: &str = ".untrusted";
/// The archive's mode for DIR, while DIR is held at 0700.
pub const ROOT_MODE: &str = "root-mode.untrusted";

/// What in an unpacked sandbox would act on the host.
#[derive(Debug, Default, Clone)]
pub struct Review {
    /// `[bind]` records of host paths, each `tool.conf:LINE: src -> tgt (fs)`.
    pub binds: Vec<String>,
    /// `tool.conf` did not parse: the error.
    pub conf_error: Option<String>,
    /// `chroot.d/host-cmd` exists.
    pub host_cmd: bool,
    /// `chroot.d/overlay.toml` exists: `on` would mount the host directory
    /// it names under the sandbox (`pack` never writes one: it flattens).
    pub overlay: bool,
}

impl Review {
    /// Nothing acts on the host.
    pub fn is_clean(&self) -> bool {
        self.binds.is_empty() && self.conf_error.is_none() && !self.host_cmd && !self.overlay
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
                let host = acts_on_host(&b.fs, &b.opt);
                if host {
                    let fs = match &b.fs {
                        FsKind::Bind => "bind",
                        FsKind::BindRo => "bind-ro",
                        FsKind::Tmpfs => "tmpfs",
                        FsKind::Other(t) => t,
                    };
                    let opt = if matches!(b.fs, FsKind::Bind | FsKind::BindRo) {
                        String::new()
                    } else {
                        format!(", {}", show::os(&b.opt))
                    };
                    r.binds.push(format!(
                        "{CONF}:{}: {} -> {} ({fs}{opt})",
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
        let exists = |name: &str| {
            nix::sys::stat::fstatat(cd.as_fd(), name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
                .is_ok()
        };
        r.host_cmd = exists(HOST_CMD);
        r.overlay = exists(OVERLAY);
    }
    Ok(r)
}

/// Filesystems that are a fresh kernel instance, reaching nothing of the
/// host's files, as long as their options name no path.
const FRESH: &[&str] = &["tmpfs", "proc", "sysfs", "devpts", "mqueue"];

/// Whether a `[bind]` record mounts something of the host: everything but
/// a fresh kernel filesystem whose options hold no `/` (a bind, a device,
/// `overlay` with `lowerdir=/etc`, ...). An allow-list: a type not known
/// here counts as acting on the host.
pub fn acts_on_host(fs: &FsKind, opt: &str) -> bool {
    let fresh = match fs {
        FsKind::Bind | FsKind::BindRo => false,
        FsKind::Tmpfs => true,
        FsKind::Other(t) => FRESH.contains(&t.as_str()),
    };
    !fresh || opt.contains('/')
}

/// `DIR/chroot.d` as an `O_PATH` descriptor, resolved inside the root as
/// `on` and `run` resolve it (a symlink followed inside DIR); `None` when
/// there is none.
fn chroot_d(dir: &Path) -> io::Result<Option<OwnedFd>> {
    let root = sys::open_root(dir)?;
    match sys::resolve_in_root(root.as_fd(), Path::new("/chroot.d")) {
        Ok(fd) => Ok(Some(fd)),
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENOTDIR)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The host path of the directory `cd` found inside DIR (for a symlinked
/// `chroot.d`, where it leads inside the root, not where the host would
/// follow it).
fn host_name(dir: &Path, cd: &OwnedFd) -> PathBuf {
    match sys::open_root(dir).and_then(|r| sys::resolve::in_root_path(r.as_fd(), cd.as_fd())) {
        Ok(p) => dir.join(p.strip_prefix("/").unwrap_or(&p)),
        Err(_) => dir.join("chroot.d"),
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
    for (yes, name) in [
        (r.conf_set_aside(), CONF),
        (r.host_cmd, HOST_CMD),
        (r.overlay, OVERLAY),
    ] {
        if yes {
            let to = format!("{name}{SUFFIX}");
            rename(&cd, name, &to)?;
            out.push(host_name(dir, &cd).join(to));
        }
    }
    // What `run` would use now: nothing of the host may be left.
    let after = review(dir)?;
    if !after.binds.is_empty() || after.host_cmd || after.overlay {
        return Err(io::Error::other(format!(
            "{} still acts on the host after setting it aside",
            show::path(dir.join("chroot.d"))
        )));
    }
    Ok(out)
}

/// Ends an unpack made with `private_root` (DIR 0700): DIR gets the
/// archive's `mode` within `ROOT_MASK` (0755 when the archive has none) unless the archive
/// holds `privileged` members and is not `trusted`; then DIR stays 0700
/// and the mode is kept in `chroot.d/root-mode.untrusted` for [`accept`].
/// Returns whether DIR is held.
pub fn settle_root(
    dir: &Path,
    privileged: u64,
    mode: Option<u32>,
    trusted: bool,
) -> io::Result<bool> {
    let mode = mode.unwrap_or(0o755);
    if privileged == 0 || trusted {
        chmod_dir(dir, mode)?;
        return Ok(false);
    }
    hold(dir, mode)?;
    Ok(true)
}

/// Makes the directory `dir` root's and writable by no one else, before
/// anything is made in it or its content is looked at (for root; nothing
/// for a normal user): a DIR another user owns would let that user swap
/// the `chroot.d` made in it, or keep a descriptor open on a file in it.
pub fn own_dir(dir: &Path) -> io::Result<()> {
    use nix::fcntl::OFlag;
    if !nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = nix::fcntl::open(dir, flags, nix::sys::stat::Mode::empty())?;
    own(fd.as_fd())
}

/// Makes the directory `dir` writable by no one but its owner, for any
/// user (whatever the umask it was made under): what another could write
/// in DIR decides what `on` mounts and runs.
pub fn shut_dir(dir: &Path) -> io::Result<()> {
    use nix::fcntl::OFlag;
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = nix::fcntl::open(dir, flags, nix::sys::stat::Mode::empty())?;
    shut(fd.as_fd())
}

/// The group's and others' write bits of the directory open as `d` cleared.
fn shut(d: BorrowedFd) -> io::Result<()> {
    let st = nix::sys::stat::fstat(d)?;
    if st.st_mode & 0o022 != 0 {
        nix::sys::stat::fchmod(
            d,
            nix::sys::stat::Mode::from_bits_truncate(st.st_mode & 0o7755),
        )?;
    }
    Ok(())
}

/// Root's (owner and group), and not writable by group or others: the
/// directory open as `d`.
fn own(d: BorrowedFd) -> io::Result<()> {
    let st = nix::sys::stat::fstat(d)?;
    if st.st_uid != 0 || st.st_gid != 0 {
        let (root, wheel) = (nix::unistd::Uid::from_raw(0), nix::unistd::Gid::from_raw(0));
        nix::unistd::fchown(d, Some(root), Some(wheel))?;
    }
    shut(d)
}

/// Makes DIR's own `chroot.d` (the directory of that name, never a
/// symlink followed) and everything in it root's, writable by no one else:
/// what `on` and `run` read and run as root on the host is never left to a
/// uid an archive or a copied tree named. Each directory is taken before
/// it is listed, so nothing in it can be swapped meanwhile; a chown clears
/// set-id bits. Nothing for a normal user (what it unpacks is its own).
pub fn own_chroot_d(dir: &Path) -> io::Result<()> {
    use nix::fcntl::OFlag;
    if !nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    let root = sys::open_root(dir)?;
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    match nix::fcntl::openat(
        root.as_fd(),
        "chroot.d",
        flags,
        nix::sys::stat::Mode::empty(),
    ) {
        Ok(cd) => own_tree(cd.as_fd(), 0),
        Err(nix::errno::Errno::ENOENT | nix::errno::Errno::ENOTDIR | nix::errno::Errno::ELOOP) => {
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// Root's, and not writable by group or others: the directory `d`, then
/// what it holds (symlinks never followed).
fn own_tree(d: BorrowedFd, depth: u32) -> io::Result<()> {
    use nix::fcntl::{AtFlags, OFlag};
    use nix::sys::stat::Mode;
    if depth > 64 {
        return Err(io::Error::from_raw_os_error(libc::ELOOP));
    }
    own(d)?;
    let root = Some(nix::unistd::Uid::from_raw(0));
    let wheel = Some(nix::unistd::Gid::from_raw(0));
    let names: Vec<std::ffi::CString> =
        nix::dir::Dir::openat(d, ".", OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())?
            .iter()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_owned())
            .filter(|n| n.as_bytes() != b"." && n.as_bytes() != b"..")
            .collect();
    for name in names {
        let path = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = match nix::fcntl::openat(d, name.as_c_str(), path, Mode::empty()) {
            Ok(fd) => fd,
            Err(nix::errno::Errno::ENOENT) => continue,
            Err(e) => return Err(e.into()),
        };
        let st = nix::sys::stat::fstat(fd.as_fd())?;
        match st.st_mode & libc::S_IFMT {
            libc::S_IFDIR => {
                let dirf =
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
                let sub = nix::fcntl::openat(d, name.as_c_str(), dirf, Mode::empty())?;
                own_tree(sub.as_fd(), depth + 1)?;
            }
            kind => {
                nix::unistd::fchownat(
                    d,
                    name.as_c_str(),
                    root,
                    wheel,
                    AtFlags::AT_SYMLINK_NOFOLLOW,
                )?;
                if kind != libc::S_IFLNK && st.st_mode & 0o022 != 0 {
                    // An O_PATH descriptor is changed through /proc.
                    let mode = Mode::from_bits_truncate(st.st_mode & 0o7755 & !0o6000);
                    nix::sys::stat::fchmodat(
                        nix::fcntl::AT_FDCWD,
                        &sys::fd_path(fd.as_fd()),
                        mode,
                        nix::sys::stat::FchmodatFlags::FollowSymlink,
                    )?;
                }
            }
        }
    }
    Ok(())
}

/// Keeps DIR at 0700, the archive's `mode` for it recorded (one the
/// archive itself brought is overwritten).
pub fn hold(dir: &Path, mode: u32) -> io::Result<()> {
    use nix::fcntl::OFlag;
    chmod_dir(dir, 0o700)?;
    let cd = match chroot_d(dir)? {
        Some(cd) => cd,
        None => {
            let root = sys::open_root(dir)?;
            keeping_times(root.as_fd(), || {
                nix::sys::stat::mkdirat(
                    root.as_fd(),
                    "chroot.d",
                    nix::sys::stat::Mode::from_bits_truncate(0o755),
                )
                .map_err(io::Error::from)
            })?;
            sys::resolve_beneath(root.as_fd(), Path::new("chroot.d"))?
        }
    };
    // One the archive brought is replaced: the record is ours.
    let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_TRUNC | OFlag::O_NOFOLLOW;
    keeping_times(cd.as_fd(), || {
        match nix::fcntl::openat(
            cd.as_fd(),
            ROOT_MODE,
            flags | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        ) {
            Ok(fd) => {
                use std::io::Write;
                std::fs::File::from(fd).write_all(format!("{:o}\n", mode & 0o7777).as_bytes())
            }
            Err(e) => Err(e.into()),
        }
    })
}

/// Runs `f`, then gives the directory `fd` back the access and modification
/// times it had: the record of a hold leaves no trace in the tree.
fn keeping_times<T>(fd: BorrowedFd, f: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
    use nix::sys::time::TimeSpec;
    let st = nix::sys::stat::fstat(fd)?;
    let out = f()?;
    nix::sys::stat::utimensat(
        nix::fcntl::AT_FDCWD,
        &sys::fd_path(fd),
        &TimeSpec::new(st.st_atime, st.st_atime_nsec),
        &TimeSpec::new(st.st_mtime, st.st_mtime_nsec),
        nix::sys::stat::UtimensatFlags::FollowSymlink,
    )?;
    Ok(out)
}

/// The most DIR's mode may be: no one but its owner may rename `chroot.d`
/// (write), and no set-id or sticky bit, whatever the archive says.
const ROOT_MASK: u32 = 0o755;

fn chmod_dir(dir: &Path, mode: u32) -> io::Result<()> {
    use nix::fcntl::OFlag;
    let fd = nix::fcntl::openat(
        nix::fcntl::AT_FDCWD,
        dir,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    nix::sys::stat::fchmod(
        fd.as_fd(),
        nix::sys::stat::Mode::from_bits_truncate(mode & ROOT_MASK),
    )?;
    Ok(())
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
    for name in [CONF, HOST_CMD, OVERLAY] {
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
                    show::path(host_name(dir, &cd).join(name))
                ),
            ));
        }
        rename(&cd, &from, name)?;
        out.push(host_name(dir, &cd).join(name));
    }
    let root = sys::open_root(dir)?;
    let held = Path::new("/chroot.d").join(ROOT_MODE);
    let mode = match sys::read_in_root(root.as_fd(), &held, 32) {
        Ok(None) => return Ok(out),
        Ok(Some(b)) => std::str::from_utf8(&b)
            .ok()
            .and_then(|t| u32::from_str_radix(t.trim(), 8).ok()),
        Err(_) => None,
    };
    // Unreadable: the mode of a sandbox's root.
    chmod_dir(dir, mode.unwrap_or(0o755))?;
    keeping_times(cd.as_fd(), || {
        nix::unistd::unlinkat(
            cd.as_fd(),
            ROOT_MODE,
            nix::unistd::UnlinkatFlags::NoRemoveDir,
        )
        .map_err(io::Error::from)
    })?;
    out.push(dir.to_path_buf());
    Ok(out)
}
