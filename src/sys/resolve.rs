//! Paths inside a root, resolved as if the root were `/` (openat2 with
//! `RESOLVE_IN_ROOT`): no symlink, absolute or `..`, can lead out of it.
//! Missing directories (and a missing last file) are created on the way,
//! always relative to a descriptor that was itself resolved inside the root.
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;

/// What to create when a path's last component is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Node {
    Dir,
    File,
}

/// Opens a root directory as an `O_PATH` descriptor.
pub fn open_root(dir: &Path) -> io::Result<OwnedFd> {
    Ok(nix::fcntl::open(
        dir,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?)
}

fn how(resolve: ResolveFlag) -> OpenHow {
    OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(resolve | ResolveFlag::RESOLVE_NO_MAGICLINKS)
}

/// `path` (absolute inside the root, or relative to it) opened `O_PATH`,
/// every symlink resolved inside `root`.
pub fn resolve_in_root(root: BorrowedFd, path: &Path) -> io::Result<OwnedFd> {
    let rel = relative(path);
    Ok(openat2(
        root,
        rel.as_path(),
        how(ResolveFlag::RESOLVE_IN_ROOT),
    )?)
}

/// `path` below `root` with no symlink followed at all (for mount points read
/// from mountinfo, which never contain one: a symlink there was swapped in).
pub fn resolve_beneath(root: BorrowedFd, path: &Path) -> io::Result<OwnedFd> {
    let rel = relative(path);
    Ok(openat2(
        root,
        rel.as_path(),
        how(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS),
    )?)
}

fn relative(path: &Path) -> PathBuf {
    let rel: PathBuf = path
        .components()
        .filter(|c| !matches!(c, Component::RootDir | Component::CurDir))
        .collect();
    if rel.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        rel
    }
}

/// Resolves `path` inside `root`, creating missing directories and, when
/// missing, the last component as `last`. A dangling symlink is followed
/// (inside the root) and what it names is created. `may_create` is asked
/// about each directory before anything is made in it (the engine refuses
/// directories that lie on a host path bound in). Returns the `O_PATH`
/// descriptor of the result and whether anything was created.
pub fn resolve_create(
    root: BorrowedFd,
    path: &Path,
    last: Node,
    may_create: &dyn Fn(BorrowedFd, &std::ffi::OsStr) -> io::Result<()>,
) -> io::Result<(OwnedFd, bool)> {
    let mut created = false;
    let mut want = relative(path);
    // Each round either succeeds, creates one component, or follows one
    // dangling symlink; bound the rounds as the kernel bounds symlinks.
    for _ in 0..256 {
        match resolve_in_root(root, &want) {
            Ok(fd) => return Ok((fd, created)),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(e),
        }
        // Find the deepest existing ancestor.
        let comps: Vec<Component> = want.components().collect();
        let mut depth = comps.len() - 1;
        let parent = loop {
            let prefix: PathBuf = comps[..depth].iter().collect();
            match resolve_in_root(root, &prefix) {
                Ok(fd) => break fd,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) && depth > 0 => depth -= 1,
                Err(e) => return Err(e),
            }
        };
        let name = comps[depth].as_os_str();
        let is_last = depth == comps.len() - 1;
        match nix::fcntl::readlinkat(parent.as_fd(), name) {
            Ok(target) => {
                // A dangling symlink: continue with what it names, inside the root.
                let target = PathBuf::from(target);
                let rest: PathBuf = comps[depth + 1..].iter().collect();
                let base = if target.is_absolute() {
                    PathBuf::new()
                } else {
                    in_root_path(root, parent.as_fd())?
                };
                want = relative(&base.join(target).join(rest));
                continue;
            }
            Err(Errno::ENOENT) => {}
            Err(Errno::EINVAL) => {} // exists, not a symlink: raced; retry
            Err(e) => return Err(e.into()),
        }
        may_create(parent.as_fd(), name)?;
        let dir = reopen_dir(parent.as_fd())?;
        let r = if is_last && last == Node::File {
            nix::fcntl::openat(
                dir.as_fd(),
                name,
                OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_WRONLY
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o644),
            )
            .map(drop)
        } else {
            nix::sys::stat::mkdirat(dir.as_fd(), name, Mode::from_bits_truncate(0o755))
        };
        match r {
            Ok(()) | Err(Errno::EEXIST) => created = true,
            Err(e) => return Err(e.into()),
        }
    }
    Err(io::Error::from_raw_os_error(libc::ELOOP))
}

/// An `O_PATH` directory descriptor reopened as a real one (mkdirat needs it).
fn reopen_dir(fd: BorrowedFd) -> io::Result<OwnedFd> {
    Ok(openat2(
        fd,
        ".",
        OpenHow::new()
            .flags(OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS),
    )?)
}

/// The path of `fd` seen from inside `root` (both resolved descriptors).
pub fn in_root_path(root: BorrowedFd, fd: BorrowedFd) -> io::Result<PathBuf> {
    let r = super::where_is(root)?;
    let p = super::where_is(fd)?;
    match p.strip_prefix(&r) {
        Ok(rest) => Ok(Path::new("/").join(rest)),
        Err(_) => Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{} is outside the root {}", p.display(), r.display()),
        )),
    }
}
