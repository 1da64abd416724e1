//! The pack side: a walk of a sandbox's tree by descriptors, written as a
//! tar stream.
//!
//! What is packed is what lies on DIR's own filesystem. As root the walk
//! goes through a detached, non-recursive clone of DIR's mount (`open_tree`
//! without `AT_RECURSIVE`): no mount of a sandbox that is on (`/proc`,
//! `/sys`, `/dev`, `/tmp`, binds) is in that clone, so what is packed is
//! exactly what is on disk, the mount points' own directories included.
//! Where no clone can be made (a normal user), the walk compares every
//! entry's mount id with DIR's and never enters another mount: a mount
//! point that is a directory is packed as an empty directory.
//!
//! Every directory is opened relative to its parent with `O_NOFOLLOW`, so
//! no symlink is ever followed; names are bytes.
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::dir::Dir;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fstat, fstatat, FileStat, Mode};

use super::{io_at, ArchiveError, Progress};
use crate::sys;

/// What to pack and how.
#[derive(Debug, Clone, Default)]
pub struct PackOptions {
    /// Paths inside the sandbox left out with everything below them, as
    /// `[exclude]` writes them (`/var/cache/apt/archives`; a leading `/` is
    /// optional).
    pub excludes: Vec<String>,
    /// Reproducible output: every entry gets this mtime (seconds since the
    /// epoch). Entries are always in byte order of their names.
    pub mtime: Option<u64>,
    /// Leave out the entry of DIR itself (`./`); OCI layers have none.
    pub no_root_entry: bool,
    /// An inode (device, inode number) never packed: the archive being
    /// written, when it lies inside DIR.
    pub skip_inode: Option<(u64, u64)>,
}

impl PackOptions {
    /// The options for packing the sandbox `dir`: its `tool.conf`'s `[exclude]`.
    pub fn for_sandbox(dir: &Path) -> Result<PackOptions, ArchiveError> {
        let excludes = crate::conf::Conf::load_in_root(dir)?
            .map(|c| c.excludes)
            .unwrap_or_default();
        Ok(PackOptions {
            excludes,
            ..PackOptions::default()
        })
    }
}

/// What was packed.
#[derive(Debug, Default, Clone)]
pub struct Packed {
    pub entries: u64,
    /// Bytes of file data.
    pub bytes: u64,
    /// Mount points met and not entered (the walk without a clone), as
    /// paths inside the sandbox.
    pub mount_points: Vec<PathBuf>,
    /// Sockets, which a tar cannot hold, left out (paths inside the sandbox).
    pub sockets: Vec<PathBuf>,
    /// Whether the walk went through a clone of DIR's own mount.
    pub cloned: bool,
}

/// Writes the tar stream of the sandbox `dir` to `out`, then the end of
/// archive marker, and gives `out` back.
pub fn write_tar<W: Write>(
    dir: &Path,
    out: W,
    opts: &PackOptions,
    progress: &mut dyn Progress,
) -> Result<(W, Packed), ArchiveError> {
    let top = open_dir(None, dir.as_os_str()).map_err(|e| io_at(dir)(e.into()))?;
    let mut done = Packed::default();
    let mut excludes: Vec<Vec<u8>> = opts.excludes.iter().map(|e| normalize(e)).collect();
    // An overlay sandbox is packed flattened: BASE with the upper layer
    // over it (what its processes see, whiteouts applied), its own chroot.d
    // grafted in, and no overlay record: the archive is a plain sandbox.
    let flat = overlay_view(dir)?;
    let mut graft = None;
    // The clone is dropped (and so unmounted) when the walk ends.
    let clone = match &flat {
        Some(_) => Err(io::Error::other("flattened")),
        None => sys::clone_tree_fd(
            top.as_fd(),
            false,
            sys::Attrs(sys::Attrs::RDONLY | sys::Attrs::NOSUID | sys::Attrs::NODEV),
            sys::Propagation::Private,
        ),
    };
    let root = match (&clone, flat) {
        (_, Some(flat)) => {
            done.cloned = true;
            excludes.push(normalize(crate::overlay::RECORD));
            graft = Some(flat.chroot_d);
            let root = open_dir(Some(flat.merged.as_fd()), OsStr::new("."))
                .map_err(|e| io_at(dir)(e.into()))?;
            // The mount goes when the walk's last descriptor of it does.
            drop(flat.merged);
            root
        }
        (Ok(m), None) => {
            done.cloned = true;
            open_dir(Some(m.as_fd()), OsStr::new(".")).map_err(|e| io_at(dir)(e.into()))?
        }
        (Err(_), None) => top,
    };
    let mut w = Walker {
        tar: tar::Builder::new(out),
        holes: 0,
        dir,
        opts,
        excludes,
        links: HashMap::new(),
        done,
        progress,
        graft,
    };
    w.walk(root)?;
    let out = w.tar.into_inner().map_err(io_at(dir))?;
    Ok((out, w.done))
}

/// The flattened view of `dir` when it is an overlay sandbox.
fn overlay_view(dir: &Path) -> Result<Option<crate::overlay::Flat>, ArchiveError> {
    let say = |e: anyhow::Error| io_at(dir)(io::Error::other(format!("{e:#}")));
    match crate::overlay::read(dir).map_err(say)? {
        Some(rec) => Ok(Some(crate::overlay::flat(dir, &rec).map_err(say)?)),
        None => Ok(None),
    }
}

/// An `[exclude]` path as the walk compares it: no leading or trailing `/`.
fn normalize(e: &str) -> Vec<u8> {
    let t = e.trim_matches('/');
    let mut out = Vec::with_capacity(t.len());
    for c in t.split('/').filter(|c| !c.is_empty() && *c != ".") {
        if !out.is_empty() {
            out.push(b'/');
        }
        out.extend_from_slice(c.as_bytes());
    }
    out
}

fn excluded(excludes: &[Vec<u8>], rel: &[u8]) -> bool {
    excludes.iter().any(|e| {
        !e.is_empty() && rel.starts_with(e) && (rel.len() == e.len() || rel[e.len()] == b'/')
    })
}

fn open_dir(at: Option<BorrowedFd>, name: &OsStr) -> nix::Result<OwnedFd> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    match at {
        Some(at) => openat(at, name, flags | OFlag::O_NOFOLLOW, Mode::empty()),
        None => nix::fcntl::openat(nix::fcntl::AT_FDCWD, name, flags, Mode::empty()),
    }
}

/// The names in the directory `fd`, in byte order.
fn names(fd: BorrowedFd) -> nix::Result<Vec<OsString>> {
    let mut d = Dir::openat(
        fd,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let mut out = vec![];
    for e in d.iter() {
        let n = e?.file_name().to_bytes().to_vec();
        if n != b"." && n != b".." {
            out.push(OsString::from(OsStr::from_bytes(&n)));
        }
    }
    out.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    Ok(out)
}

/// The holes (unwritten parts) of sparse files one walk packs, at most. A
/// tar keeps no holes: each is read, packed and unpacked as zeros, and
/// written out in full where the archive is unpacked (`export --bundle`,
/// `create --from`): a file of 16 TiB that takes no disk, made by anyone
/// inside the sandbox, would fill the host's disk or keep root's walk
/// busy for hours. Past this, the walk stops, naming the file.
pub const HOLES_MAX: u64 = 1 << 30;

struct Walker<'a, W: Write> {
    tar: tar::Builder<W>,
    /// The bytes of holes met so far ([`HOLES_MAX`]).
    holes: u64,
    dir: &'a Path,
    opts: &'a PackOptions,
    excludes: Vec<Vec<u8>>,
    /// Files with more than one link already packed: (dev, ino) to name.
    links: HashMap<(u64, u64), Vec<u8>>,
    done: Packed,
    progress: &'a mut dyn Progress,
    /// An overlay sandbox's own chroot.d, packed as `chroot.d` in place of
    /// what the flattened view shows there.
    graft: Option<OwnedFd>,
}

/// One directory being walked: its descriptor, its path in the archive
/// (no trailing `/`, empty for DIR), the names still to pack (popped).
struct Level {
    fd: OwnedFd,
    rel: Vec<u8>,
    todo: Vec<OsString>,
    /// The mount the directory lies on (the walk never leaves it).
    mount: u64,
}

impl<W: Write> Walker<'_, W> {
    fn host_path(&self, rel: &[u8]) -> PathBuf {
        self.dir.join(OsStr::from_bytes(rel))
    }

    fn err(&self, rel: &[u8]) -> impl FnOnce(io::Error) -> ArchiveError {
        let path = self.host_path(rel);
        move |source| ArchiveError::Io { path, source }
    }

    fn walk(&mut self, root: OwnedFd) -> Result<(), ArchiveError> {
        let (mount, _) = sys::mount_of(root.as_fd()).map_err(self.err(b""))?;
        let st = fstat(root.as_fd()).map_err(|e| self.err(b"")(e.into()))?;
        if !self.opts.no_root_entry {
            let h = self.header(&st, tar::EntryType::Directory);
            self.xattrs(root.as_fd(), b"")?;
            self.append(h, b"./", io::empty())?;
        }
        let mut todo = names(root.as_fd()).map_err(|e| self.err(b"")(e.into()))?;
        if self.graft.is_some() && !todo.iter().any(|n| n == "chroot.d") {
            todo.push("chroot.d".into());
            todo.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        }
        todo.reverse();
        let mut stack = vec![Level {
            fd: root,
            rel: vec![],
            todo,
            mount,
        }];
        while let Some(level) = stack.last_mut() {
            let Some(name) = level.todo.pop() else {
                stack.pop();
                continue;
            };
            let mut rel = level.rel.clone();
            if !rel.is_empty() {
                rel.push(b'/');
            }
            rel.extend_from_slice(name.as_bytes());
            if excluded(&self.excludes, &rel) {
                continue;
            }
            let top = level.rel.is_empty();
            let mut at = level.mount;
            let next = match self.graft.take() {
                Some(g) if top && name == "chroot.d" => {
                    at = sys::mount_of(g.as_fd()).map_err(self.err(&rel))?.0;
                    let st = fstat(g.as_fd()).map_err(|e| self.err(&rel)(e.into()))?;
                    let h = self.header(&st, tar::EntryType::Directory);
                    self.xattrs(g.as_fd(), &rel)?;
                    self.append(h, &dir_name(&rel), io::empty())?;
                    Some(g)
                }
                g => {
                    self.graft = g;
                    let parent = level.fd.as_fd();
                    self.entry(parent, &name, &rel, at)?
                }
            };
            if let Some(next) = next {
                let mut todo = names(next.as_fd()).map_err(|e| self.err(&rel)(e.into()))?;
                todo.reverse();
                stack.push(Level {
                    fd: next,
                    rel,
                    todo,
                    mount: at,
                });
            }
        }
        Ok(())
    }

    /// Packs one entry; a directory to walk into is returned open.
    fn entry(
        &mut self,
        parent: BorrowedFd,
        name: &OsStr,
        rel: &[u8],
        mount: u64,
    ) -> Result<Option<OwnedFd>, ArchiveError> {
        let e = match sys::entry_at(parent, name) {
            Ok(e) => e,
            // Gone since the directory was read (the sandbox may be on).
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(None),
            Err(e) => return Err(self.err(rel)(e)),
        };
        if e.mount_id != mount || e.mount_root {
            self.done
                .mount_points
                .push(PathBuf::from(OsStr::from_bytes(rel)));
            if e.is_dir() {
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_mtime(self.opts.mtime.unwrap_or(0));
                h.set_size(0);
                self.append(h, &dir_name(rel), io::empty())?;
            }
            return Ok(None);
        }
        let st = match fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(nix::errno::Errno::ENOENT) => return Ok(None),
            Err(e) => return Err(self.err(rel)(e.into())),
        };
        if self.opts.skip_inode == Some((st.st_dev, st.st_ino)) {
            return Ok(None);
        }
        let kind = st.st_mode & libc::S_IFMT;
        match kind {
            libc::S_IFDIR => {
                let fd = open_dir(Some(parent), name).map_err(|e| self.err(rel)(e.into()))?;
                // What was opened is what was checked.
                match sys::mount_of(fd.as_fd()) {
                    Ok((id, false)) if id == mount => {}
                    Ok(_) => {
                        return Err(self.err(rel)(io::Error::other(
                            "became a mount point while it was packed",
                        )))
                    }
                    Err(e) => return Err(self.err(rel)(e)),
                }
                let st = fstat(fd.as_fd()).map_err(|e| self.err(rel)(e.into()))?;
                let h = self.header(&st, tar::EntryType::Directory);
                self.xattrs(fd.as_fd(), rel)?;
                self.append(h, &dir_name(rel), io::empty())?;
                return Ok(Some(fd));
            }
            libc::S_IFREG => self.file(parent, name, rel, &st)?,
            libc::S_IFLNK => {
                let target =
                    nix::fcntl::readlinkat(parent, name).map_err(|e| self.err(rel)(e.into()))?;
                let mut h = self.header(&st, tar::EntryType::Symlink);
                h.set_size(0);
                self.tar
                    .append_link(&mut h, OsStr::from_bytes(rel), &target)
                    .map_err(self.err(rel))?;
                self.done.entries += 1;
            }
            libc::S_IFCHR | libc::S_IFBLK | libc::S_IFIFO => {
                let t = match kind {
                    libc::S_IFCHR => tar::EntryType::Char,
                    libc::S_IFBLK => tar::EntryType::Block,
                    _ => tar::EntryType::Fifo,
                };
                let mut h = self.header(&st, t);
                if kind != libc::S_IFIFO {
                    h.set_device_major(libc::major(st.st_rdev))
                        .map_err(self.err(rel))?;
                    h.set_device_minor(libc::minor(st.st_rdev))
                        .map_err(self.err(rel))?;
                }
                // Never opened for reading or writing: O_PATH.
                let fd = openat(
                    parent,
                    name,
                    OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| self.err(rel)(e.into()))?;
                self.xattrs(fd.as_fd(), rel)?;
                self.append(h, rel, io::empty())?;
            }
            _ => self
                .done
                .sockets
                .push(PathBuf::from(OsStr::from_bytes(rel))),
        }
        Ok(None)
    }

    fn file(
        &mut self,
        parent: BorrowedFd,
        name: &OsStr,
        rel: &[u8],
        st: &FileStat,
    ) -> Result<(), ArchiveError> {
        let id = (st.st_dev, st.st_ino);
        if st.st_nlink > 1 {
            if let Some(first) = self.links.get(&id) {
                let first = first.clone();
                let mut h = self.header(st, tar::EntryType::Link);
                h.set_size(0);
                self.tar
                    .append_link(&mut h, OsStr::from_bytes(rel), OsStr::from_bytes(&first))
                    .map_err(self.err(rel))?;
                self.done.entries += 1;
                return Ok(());
            }
        }
        let fd = openat(
            parent,
            name,
            OFlag::O_RDONLY
                | OFlag::O_NOFOLLOW
                | OFlag::O_NONBLOCK
                | OFlag::O_NOCTTY
                | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| self.err(rel)(e.into()))?;
        let now = fstat(fd.as_fd()).map_err(|e| self.err(rel)(e.into()))?;
        if (now.st_dev, now.st_ino) != id || now.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Err(self.err(rel)(io::Error::other(
                "replaced while it was packed",
            )));
        }
        if st.st_nlink > 1 {
            self.links.insert(id, rel.to_vec());
        }
        let size = now.st_size as u64;
        let left = HOLES_MAX - self.holes;
        let holes =
            holes_in(fd.as_fd(), size, now.st_blocks as u64, left).map_err(|e| self.err(rel)(e))?;
        self.count_holes(holes, size, rel)?;
        let mut h = self.header(&now, tar::EntryType::Regular);
        h.set_size(size);
        self.xattrs(fd.as_fd(), rel)?;
        // Exactly `size` bytes, whatever happens to the file meanwhile
        // (a file that shrank is padded with zeros).
        let file = std::fs::File::from(fd);
        let data = (&file).take(size).chain(io::repeat(0)).take(size);
        let progress = &mut *self.progress;
        let counted = CountRead {
            inner: data,
            progress,
        };
        let path = OsStr::from_bytes(rel);
        self.tar.append_data(&mut h, path, counted).map_err({
            let p = self.dir.join(path);
            move |source| ArchiveError::Io { path: p, source }
        })?;
        // Holes made, or the file cut short, while it was read (a process
        // inside may punch or truncate a file once it was counted): what
        // was packed as zeros with no disk behind it now counts too, so
        // the walk stops at the next file past the budget.
        let after = fstat(file.as_fd()).map_err(|e| self.err(rel)(e.into()))?;
        let backed = (after.st_blocks as u64)
            .saturating_mul(512)
            .min(after.st_size.max(0) as u64)
            .min(size);
        self.count_holes((size - backed).saturating_sub(holes), size, rel)?;
        self.done.entries += 1;
        self.done.bytes += size;
        Ok(())
    }

    /// Adds `more` bytes of holes of the file `rel` (of `size` bytes) to
    /// the walk's, past [`HOLES_MAX`] an error naming it.
    fn count_holes(&mut self, more: u64, size: u64, rel: &[u8]) -> Result<(), ArchiveError> {
        self.holes = self.holes.saturating_add(more);
        if self.holes <= HOLES_MAX {
            return Ok(());
        }
        Err(self.err(rel)(io::Error::other(format!(
            "a sparse file of {} (at least {} of it holes), and an archive keeps no holes: \
             at most {} of them are written out in full; leave it out with `[exclude]` in \
             chroot.d/tool.conf",
            crate::usage::human(size),
            crate::usage::human(more.min(size)),
            crate::usage::human(HOLES_MAX)
        ))))
    }

    fn header(&self, st: &FileStat, t: tar::EntryType) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(t);
        h.set_mode(st.st_mode & 0o7777);
        h.set_uid(st.st_uid as u64);
        h.set_gid(st.st_gid as u64);
        h.set_mtime(self.opts.mtime.unwrap_or(st.st_mtime.max(0) as u64));
        h.set_size(0);
        h
    }

    /// The extended attributes of `fd`, as one PAX header before its entry.
    fn xattrs(&mut self, fd: BorrowedFd, rel: &[u8]) -> Result<(), ArchiveError> {
        let names = sys::xattr::list(fd).map_err(self.err(rel))?;
        if names.is_empty() {
            return Ok(());
        }
        let mut records: Vec<(String, Vec<u8>)> = vec![];
        for n in names {
            // Every attribute name the kernel knows is ASCII.
            let Ok(key) = String::from_utf8(n.clone()) else {
                continue;
            };
            if let Some(v) = sys::xattr::get(fd, &n).map_err(self.err(rel))? {
                records.push((format!("SCHILY.xattr.{key}"), v));
            }
        }
        records.sort();
        self.tar
            .append_pax_extensions(records.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
            .map_err(self.err(rel))
    }

    fn append(
        &mut self,
        mut h: tar::Header,
        rel: &[u8],
        data: impl Read,
    ) -> Result<(), ArchiveError> {
        self.tar
            .append_data(&mut h, OsStr::from_bytes(rel), data)
            .map_err(self.err(rel))?;
        self.done.entries += 1;
        Ok(())
    }
}

/// The bytes of holes in `fd` (a regular file of `size` bytes taking
/// `blocks` 512-byte blocks), counted up to a little past `limit` (each
/// look is one pair of `lseek`s, and an attacker's file may alternate data
/// and holes page by page). A file taking as many blocks as its size has
/// none to look for; a filesystem that cannot tell holes says it has none.
/// The file's offset is back at its start.
fn holes_in(fd: BorrowedFd, size: u64, blocks: u64, limit: u64) -> io::Result<u64> {
    use nix::errno::Errno;
    use nix::unistd::{lseek, Whence};
    if blocks.saturating_mul(512) >= size {
        return Ok(0);
    }
    let end = i64::try_from(size).unwrap_or(i64::MAX);
    let (mut holes, mut at) = (0u64, 0i64);
    while at < end && holes <= limit {
        // ENXIO: nothing but a hole from `at` to the end.
        let data = match lseek(fd, at, Whence::SeekData) {
            Ok(d) => d.min(end),
            Err(Errno::ENXIO) => end,
            Err(e) => return Err(e.into()),
        };
        holes += (data - at) as u64;
        if data >= end {
            break;
        }
        at = match lseek(fd, data, Whence::SeekHole) {
            Ok(h) => h,
            Err(Errno::ENXIO) => end,
            Err(e) => return Err(e.into()),
        };
    }
    lseek(fd, 0, Whence::SeekSet)?;
    Ok(holes)
}

/// A directory's name in the archive: with a trailing `/`.
fn dir_name(rel: &[u8]) -> Vec<u8> {
    let mut n = rel.to_vec();
    n.push(b'/');
    n
}

struct CountRead<'a, R> {
    inner: R,
    progress: &'a mut dyn Progress,
}

impl<R: Read> Read for CountRead<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advance(n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclude_matching() {
        let ex: Vec<Vec<u8>> = ["/var/cache/apt/archives/", "srv//tmp", "/"]
            .iter()
            .map(|e| normalize(e))
            .collect();
        assert_eq!(ex[0], b"var/cache/apt/archives");
        assert_eq!(ex[1], b"srv/tmp");
        assert!(excluded(&ex, b"var/cache/apt/archives"));
        assert!(excluded(&ex, b"var/cache/apt/archives/x.deb"));
        assert!(!excluded(&ex, b"var/cache/apt/archives2"));
        assert!(!excluded(&ex, b"var/cache/apt"));
        assert!(excluded(&ex, b"srv/tmp/a"));
        // `/` alone excludes nothing (not the whole sandbox).
        assert!(!excluded(&ex, b"etc"));
    }
}
