//! Paths inside a root, resolved as if the root were `/` (openat2 with
//! `RESOLVE_IN_ROOT`): no symlink, absolute or `..`, can lead out of it.
//! Missing directories (and a missing last file) are created on the way,
//! always relative to a descriptor that was itself resolved inside the root.
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;

/// `openat2(2)`, again when it says EAGAIN: with `RESOLVE_IN_ROOT` or
/// `RESOLVE_BENEATH` the kernel gives up on a `..` when any rename or mount
/// anywhere raced with the walk (they are counted system-wide), and asks
/// the caller to retry. A busy host (parallel `on`s) makes that happen.
pub(crate) fn openat2<P: ?Sized + nix::NixPath>(
    dirfd: BorrowedFd,
    path: &P,
    how: OpenHow,
) -> nix::Result<OwnedFd> {
    let mut tries = 0;
    loop {
        match nix::fcntl::openat2(dirfd, path, how) {
            Err(Errno::EAGAIN) if tries < 1000 => tries += 1,
            r => return r,
        }
    }
}

/// What to create when a path's last component is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Node {
    Dir,
    File,
}

/// Opens a root directory as an `O_PATH` descriptor.
pub fn open_root(dir: &Path) -> io::Result<OwnedFd> {
    Ok(nix::fcntl::openat(
        nix::fcntl::AT_FDCWD,
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

/// The most bytes of a path [`resolve_beneath`] hands the kernel at once:
/// well under `PATH_MAX` (4096), whole components only.
const CHUNK: usize = 2048;

/// `path` below `root` with no symlink followed at all (for mount points read
/// from mountinfo, which never contain one: a symlink there was swapped in).
/// A path of any length: a process inside can rename the directories above
/// a mount point until its path is longer than `PATH_MAX`, so the path is
/// walked in runs of whole components of at most `CHUNK` bytes, each run
/// resolved beneath the descriptor of the one before (a `..` never leads
/// above the run it is in: mountinfo has none).
pub fn resolve_beneath(root: BorrowedFd, path: &Path) -> io::Result<OwnedFd> {
    let rel = relative(path);
    let how = how(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS);
    let mut at: Option<OwnedFd> = None;
    let mut run = PathBuf::new();
    for c in rel.components() {
        let len = run.as_os_str().len();
        if len > 0 && len + 1 + c.as_os_str().len() > CHUNK {
            let from = at.as_ref().map_or(root, |f| f.as_fd());
            at = Some(openat2(from, run.as_path(), how)?);
            run = PathBuf::new();
        }
        run.push(c);
    }
    let from = at.as_ref().map_or(root, |f| f.as_fd());
    Ok(openat2(from, run.as_path(), how)?)
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
    resolve_create_noting(root, path, last, may_create, &|_, _| ())
}

/// [`resolve_create`], telling `made` of each name this call made itself
/// (in its directory), never of one found made by someone else meanwhile.
pub fn resolve_create_noting(
    root: BorrowedFd,
    path: &Path,
    last: Node,
    may_create: &dyn Fn(BorrowedFd, &std::ffi::OsStr) -> io::Result<()>,
    made: &dyn Fn(BorrowedFd, &std::ffi::OsStr),
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
        // An `O_PATH` directory serves the `*at` calls as a directory.
        let dir = parent.as_fd();
        let r = if is_last && last == Node::File {
            nix::fcntl::openat(
                dir,
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
            nix::sys::stat::mkdirat(dir, name, Mode::from_bits_truncate(0o755))
        };
        match r {
            Ok(()) => {
                made(dir, name);
                created = true;
            }
            Err(Errno::EEXIST) => created = true,
            Err(e) => return Err(e.into()),
        }
    }
    Err(io::Error::from_raw_os_error(libc::ELOOP))
}

/// Where [`resolve_create`] would land for `path` inside `root`, as a path
/// from the root, without creating anything: symlinks (dangling ones too)
/// are followed inside the root, and the missing rest is taken as written,
/// its `..` removed by name. The engine orders its mounts by it.
pub fn locate(root: BorrowedFd, path: &Path) -> io::Result<PathBuf> {
    let mut want = relative(path);
    // A way of names only lands where it says when no symlink is on it up
    // to where it ends or to its first missing name (ENOENT: that name is
    // not even a dangling symlink, and the rest is taken as written).
    if want.components().all(|c| matches!(c, Component::Normal(_))) {
        let plain = how(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_SYMLINKS);
        match openat2(root, &want, plain) {
            Ok(_) | Err(Errno::ENOENT) => return Ok(Path::new("/").join(want)),
            Err(_) => {}
        }
    }
    let root_at = super::where_is(root)?;
    for _ in 0..256 {
        if let Ok(fd) = resolve_in_root(root, &want) {
            return in_root_path_at(&root_at, fd.as_fd());
        }
        let comps: Vec<Component> = want.components().collect();
        let mut depth = comps.len() - 1;
        let parent = loop {
            let prefix: PathBuf = comps[..depth].iter().collect();
            match resolve_in_root(root, &prefix) {
                Ok(fd) => break fd,
                Err(e) if depth > 0 && e.raw_os_error() == Some(libc::ENOENT) => depth -= 1,
                Err(e) => return Err(e),
            }
        };
        let name = comps[depth].as_os_str();
        let rest: PathBuf = comps[depth + 1..].iter().collect();
        if let Ok(target) = nix::fcntl::readlinkat(parent.as_fd(), name) {
            let target = PathBuf::from(target);
            let base = if target.is_absolute() {
                PathBuf::new()
            } else {
                in_root_path_at(&root_at, parent.as_fd())?
            };
            want = relative(&base.join(target).join(rest));
            continue;
        }
        let mut out = in_root_path_at(&root_at, parent.as_fd())?;
        for c in comps[depth..].iter() {
            match c {
                // `..` of `/` is `/`: pop leaves it.
                Component::ParentDir => {
                    out.pop();
                }
                Component::Normal(n) => out.push(n),
                _ => {}
            }
        }
        return Ok(out);
    }
    Err(io::Error::from_raw_os_error(libc::ELOOP))
}

/// What a host path names, decided on the objects it passes through.
pub enum HostPath {
    /// A path that never enters the sandbox: opened on the host.
    Host(OwnedFd),
    /// A path that enters the sandbox's tree (through any spelling: a
    /// symlink to DIR, `..`, a bind of DIR elsewhere): the part from there
    /// on is resolved inside the root, as the sandbox's own content.
    InRoot(OwnedFd),
}

/// Host directories that [`open_host_path`] reached by names alone (no
/// symlink, no `..` on the way) and found outside the sandbox, each by the
/// path that spells it and its device and inode: a later path through one
/// of them starts there (`on` opens the six device nodes of `/dev` one after
/// the other), once that path, opened again with no symlink followed, is
/// still the same directory.
#[derive(Default)]
pub struct HostDirs(Vec<(PathBuf, (u64, u64))>);

impl HostDirs {
    /// The deepest directory kept that `path` passes through, opened again
    /// by its names, when it is still the one that was checked; one that
    /// is not is forgotten (the walk from `/` keeps what it finds now).
    fn start(&mut self, path: &Path) -> Option<(PathBuf, OwnedFd)> {
        let i = (0..self.0.len())
            .filter(|&i| path.is_absolute() && path.starts_with(&self.0[i].0))
            .max_by_key(|&i| self.0[i].0.components().count())?;
        let (p, id) = &self.0[i];
        let same = openat2(
            nix::fcntl::AT_FDCWD,
            p.as_path(),
            how(ResolveFlag::RESOLVE_NO_SYMLINKS),
        )
        .ok()
        .filter(|fd| {
            nix::sys::stat::fstat(fd.as_fd()).is_ok_and(|st| (st.st_dev, st.st_ino) == *id)
        });
        match same {
            Some(fd) => Some((p.clone(), fd)),
            None => {
                self.0.remove(i);
                None
            }
        }
    }
}

/// Opens the host path `path` one component at a time (symlinks on the host
/// followed by hand, at most 40), asking `inside` about every object
/// reached, the first `/` included. As soon as `inside` gives an object's
/// path within the sandbox, the rest of the path is resolved inside `root`
/// from there: a symlink of the rootfs is never followed on the host, and a
/// `..` after that point does not lead back out of the root. `seen`: the
/// directories earlier calls reached (see [`HostDirs`]), added to.
pub fn open_host_path(
    root: BorrowedFd,
    path: &Path,
    inside: &dyn Fn(BorrowedFd) -> io::Result<Option<PathBuf>>,
    seen: &mut HostDirs,
) -> io::Result<HostPath> {
    let open = |at: BorrowedFd, name: &std::ffi::OsStr| -> io::Result<OwnedFd> {
        Ok(nix::fcntl::openat(
            at,
            name,
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?)
    };
    let slash =
        || -> io::Result<OwnedFd> { open(open_root(Path::new("/"))?.as_fd(), ".".as_ref()) };
    let mut todo: std::collections::VecDeque<std::ffi::OsString> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    // The names walked so far, while the way is names alone from `/`.
    let mut spelled: Option<PathBuf> = path.is_absolute().then(|| PathBuf::from("/"));
    let mut cur = match seen.start(path) {
        Some((p, fd)) => {
            for _ in 1..p.components().count() {
                todo.pop_front();
            }
            spelled = Some(p);
            fd
        }
        None => slash()?,
    };
    let mut links = 0;
    loop {
        let kind = |fd: BorrowedFd| -> io::Result<libc::mode_t> {
            Ok(nix::sys::stat::fstat(fd)?.st_mode & libc::S_IFMT)
        };
        // Every object reached (a file bound elsewhere from DIR too).
        if let Some(at) = inside(cur.as_fd())? {
            let rest: PathBuf = todo.iter().collect();
            return resolve_in_root(root, &at.join(rest)).map(HostPath::InRoot);
        }
        let Some(name) = todo.pop_front() else {
            return Ok(HostPath::Host(cur));
        };
        let next = open(cur.as_fd(), &name)?;
        if kind(next.as_fd())? == libc::S_IFLNK {
            spelled = None;
            links += 1;
            if links > 40 {
                return Err(io::Error::from_raw_os_error(libc::ELOOP));
            }
            let target = PathBuf::from(nix::fcntl::readlinkat(next.as_fd(), "")?);
            for c in target.components().rev() {
                match c {
                    Component::Normal(n) => todo.push_front(n.to_os_string()),
                    Component::ParentDir => todo.push_front("..".into()),
                    _ => {}
                }
            }
            if target.is_absolute() {
                cur = slash()?;
            }
            continue;
        }
        // `cur`, a directory outside the sandbox (asked above), is kept for
        // later calls while its way is names alone.
        if let Some(p) = spelled.as_mut() {
            if name == ".." {
                spelled = None;
            } else if seen.0.iter().all(|(s, _)| s != p) {
                let st = nix::sys::stat::fstat(cur.as_fd())?;
                seen.0.push((p.clone(), (st.st_dev, st.st_ino)));
                p.push(&name);
            } else {
                p.push(&name);
            }
        }
        cur = next;
    }
}

/// The path of `fd` seen from inside `root` (both resolved descriptors).
pub fn in_root_path(root: BorrowedFd, fd: BorrowedFd) -> io::Result<PathBuf> {
    in_root_path_at(&super::where_is(root)?, fd)
}

/// [`in_root_path`] with the root's own path (`where_is`) already known.
pub fn in_root_path_at(root_at: &Path, fd: BorrowedFd) -> io::Result<PathBuf> {
    let r = root_at;
    let p = super::where_is(fd)?;
    match p.strip_prefix(r) {
        Ok(rest) => Ok(Path::new("/").join(rest)),
        Err(_) => Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{} is outside the root {}", p.display(), r.display()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn root() -> (tempfile::TempDir, OwnedFd) {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        std::fs::create_dir_all(r.join("tmp/d")).unwrap();
        std::fs::create_dir_all(r.join("e")).unwrap();
        symlink("/tmp/x", r.join("run")).unwrap();
        symlink("/e", r.join("tmp/d/l")).unwrap();
        symlink("../../../../..", r.join("up")).unwrap();
        symlink("loop", r.join("loop")).unwrap();
        let fd = open_root(r).unwrap();
        (t, fd)
    }

    #[test]
    fn locate_follows_symlinks_inside_and_keeps_the_missing_rest() {
        let (_t, r) = root();
        let at = |p: &str| locate(r.as_fd(), Path::new(p)).unwrap();
        assert_eq!(at("/tmp"), Path::new("/tmp"));
        assert_eq!(at("/run"), Path::new("/tmp/x"));
        assert_eq!(at("/run/a/b"), Path::new("/tmp/x/a/b"));
        assert_eq!(at("/tmp/d/l/f"), Path::new("/e/f"));
        assert_eq!(at("/up/etc"), Path::new("/etc"));
        assert_eq!(at("/new/../../x"), Path::new("/x"));
        assert_eq!(at("/"), Path::new("/"));
        // Names only: found without reading any path back, missing or not;
        // a symlink anywhere on the way, even past a missing name's parent,
        // still followed.
        assert_eq!(at("/tmp/d"), Path::new("/tmp/d"));
        assert_eq!(at("/tmp/d/new/deeper"), Path::new("/tmp/d/new/deeper"));
        assert_eq!(at("/e/new"), Path::new("/e/new"));
        assert_eq!(at("/tmp/d/l/new/x"), Path::new("/e/new/x"));
        assert_eq!(at("/run/new"), Path::new("/tmp/x/new"));
        assert_eq!(
            locate(r.as_fd(), Path::new("/loop/x"))
                .unwrap_err()
                .raw_os_error(),
            Some(libc::ELOOP)
        );
    }

    /// An `O_PATH` directory descriptor reopened as a real one.
    fn reopen_dir(fd: BorrowedFd) -> io::Result<OwnedFd> {
        Ok(openat2(
            fd,
            ".",
            OpenHow::new()
                .flags(OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
                .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS),
        )?)
    }

    #[test]
    fn resolve_beneath_walks_paths_longer_than_path_max() {
        let (_t, r) = root();
        // 60 levels of 200-byte names: about 12 000 bytes, made by descriptor.
        let name = "d".repeat(200);
        let mut cur = reopen_dir(r.as_fd()).unwrap();
        let mut rel = PathBuf::from("/tmp");
        cur = nix::fcntl::openat(cur.as_fd(), "tmp", OFlag::O_RDONLY, Mode::empty()).unwrap();
        for _ in 0..60 {
            nix::sys::stat::mkdirat(cur.as_fd(), name.as_str(), Mode::from_bits_truncate(0o755))
                .unwrap();
            cur = nix::fcntl::openat(cur.as_fd(), name.as_str(), OFlag::O_RDONLY, Mode::empty())
                .unwrap();
            rel.push(&name);
        }
        nix::unistd::symlinkat("/", cur.as_fd(), "up").unwrap();
        let ino = |fd: BorrowedFd| nix::sys::stat::fstat(fd).unwrap().st_ino;
        let fd = resolve_beneath(r.as_fd(), &rel).unwrap();
        assert_eq!(ino(fd.as_fd()), ino(cur.as_fd()));
        // No symlink followed in any run of the walk, the first or a later one.
        let below = rel.strip_prefix("/tmp").unwrap();
        for p in [
            rel.join("up"),
            rel.join("up/tmp"),
            Path::new("/tmp/d/l").join(below),
        ] {
            assert_eq!(
                resolve_beneath(r.as_fd(), &p).unwrap_err().raw_os_error(),
                Some(libc::ELOOP),
                "{} bytes",
                p.as_os_str().len()
            );
        }
    }

    #[test]
    fn open_host_path_switches_inside_at_the_first_directory_inside() {
        let (t, r) = root();
        let dir = t.path().to_path_buf();
        let inside = |fd: BorrowedFd| -> io::Result<Option<PathBuf>> {
            let p = crate::sys::where_is(fd)?;
            Ok(p.strip_prefix(&dir).ok().map(|r| Path::new("/").join(r)))
        };
        // DIR/tmp/d/l is a symlink to /e: resolved inside, never on the host.
        let p = dir.join("tmp/d/l");
        match open_host_path(r.as_fd(), &p, &inside, &mut HostDirs::default()).unwrap() {
            HostPath::InRoot(fd) => {
                assert_eq!(crate::sys::where_is(fd.as_fd()).unwrap(), dir.join("e"))
            }
            HostPath::Host(_) => panic!("taken for a host path"),
        }
        // Reached through a host symlink to DIR and `..`: the same.
        let link = tempfile::tempdir().unwrap();
        symlink(&dir, link.path().join("to-dir")).unwrap();
        std::fs::create_dir(link.path().join("x")).unwrap();
        for p in [
            link.path().join("to-dir/tmp/d/l"),
            link.path().join("x/../to-dir/tmp/d/l"),
        ] {
            match open_host_path(r.as_fd(), &p, &inside, &mut HostDirs::default()).unwrap() {
                HostPath::InRoot(fd) => {
                    assert_eq!(crate::sys::where_is(fd.as_fd()).unwrap(), dir.join("e"))
                }
                HostPath::Host(_) => panic!("{p:?} taken for a host path"),
            }
        }
        // One memo across calls, as `on` keeps it: a path through a
        // directory reached before starts there, and lands where a walk
        // from `/` would (inside, when it leads into DIR).
        let mut seen = HostDirs::default();
        std::fs::write(link.path().join("x/f"), "").unwrap();
        for _ in 0..2 {
            for p in [
                link.path().join("x/f"),
                link.path().join("x/../to-dir/tmp/d/l"),
                link.path().join("to-dir/tmp/d/l"),
            ] {
                let inside_dir = !p.ends_with("x/f");
                match open_host_path(r.as_fd(), &p, &inside, &mut seen).unwrap() {
                    HostPath::InRoot(fd) if inside_dir => {
                        assert_eq!(crate::sys::where_is(fd.as_fd()).unwrap(), dir.join("e"))
                    }
                    HostPath::Host(fd) if !inside_dir => {
                        assert_eq!(crate::sys::where_is(fd.as_fd()).unwrap(), p)
                    }
                    _ => panic!("{p:?} taken for what it is not"),
                }
            }
        }
        assert!(seen.0.iter().any(|(p, _)| p == &link.path().join("x")));
        assert!(!seen.0.iter().any(|(p, _)| p.starts_with(&dir)));
        // A directory kept, renamed and made again: the path's new one.
        std::fs::rename(link.path().join("x"), link.path().join("x-old")).unwrap();
        std::fs::create_dir(link.path().join("x")).unwrap();
        std::fs::write(link.path().join("x/f"), "").unwrap();
        match open_host_path(r.as_fd(), &link.path().join("x/f"), &inside, &mut seen).unwrap() {
            HostPath::Host(fd) => assert_eq!(
                crate::sys::where_is(fd.as_fd()).unwrap(),
                link.path().join("x/f")
            ),
            HostPath::InRoot(_) => panic!("taken for a path inside"),
        }
        // And kept as the new one.
        let x = std::fs::metadata(link.path().join("x")).unwrap();
        use std::os::unix::fs::MetadataExt;
        let kept: Vec<_> = seen
            .0
            .iter()
            .filter(|(p, _)| p == &link.path().join("x"))
            .collect();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].1, (x.dev(), x.ino()));
        // A host path stays one.
        assert!(matches!(
            open_host_path(r.as_fd(), link.path(), &inside, &mut HostDirs::default()).unwrap(),
            HostPath::Host(_)
        ));
    }
}
