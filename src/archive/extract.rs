//! The unpack side: a tar stream extracted into DIR by descriptors only.
//!
//! Every member's name is checked before anything is made: an absolute
//! name or a `..` component is refused. Its parent directory is then
//! reached from DIR's descriptor one component at a time with
//! `openat(O_NOFOLLOW)`, checking that each step stays on DIR's mount: a
//! symlink on the way (one the archive planted earlier) refuses the member,
//! as does a hard link whose target is outside DIR. The member itself is
//! created relative to that parent's descriptor (`O_CREAT|O_EXCL`,
//! `mkdirat`, `symlinkat`, `mknodat`, `linkat`), so nothing is ever written
//! through a symlink. Owners, modes, extended attributes and mtimes are
//! restored (directories last, so a read-only directory can still be
//! filled); device nodes and FIFOs are made with `mknodat`.
use std::collections::HashSet;
use std::ffi::OsStr;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{
    fchmod, fchmodat, fstatat, futimens, mkdirat, mknodat, utimensat, FchmodatFlags, Mode, SFlag,
    UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, linkat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};

use super::{io_at, ArchiveError, Progress};
use crate::sys;

/// How to unpack.
#[derive(Debug, Clone)]
pub struct UnpackOptions {
    /// Restore each member's owner (numeric uid and gid). Default: when
    /// running as root.
    pub owners: bool,
    /// Apply OCI whiteouts: `.wh.NAME` removes NAME from what is already
    /// in DIR, `.wh..wh..opq` empties its directory of what earlier layers
    /// put there; neither is created.
    pub whiteouts: bool,
    /// Refuse a DIR that is not empty (default). Off to lay one OCI layer
    /// over another.
    pub require_empty: bool,
    /// Take a leading `/` of a member's name (and of a hard link's
    /// target) as DIR itself rather than refusing it: OCI layers name
    /// paths from the image's root, and some tools (umoci) write `/` and
    /// `/etc/...`. A `..` is still refused.
    pub rooted_names: bool,
    /// DIR is made mode 0700 and owned by the unpacking user before the
    /// first member, and stays so: the archive's mode for DIR is returned
    /// in [`Unpacked::root_mode`] instead of applied, so no other user can
    /// reach what is unpacked (a set-id file) until the caller decides.
    pub private_root: bool,
    /// A directory of the caller's in DIR (device, inode) that no member
    /// of another kind may take the place of: the `chroot.d` that `create
    /// --from` makes before unpacking, so that an interrupted one is known
    /// as a failed create. A sandbox's `chroot.d` that is not a directory
    /// (a symlink) is refused by name.
    pub keep_dir: Option<(u64, u64)>,
}

impl Default for UnpackOptions {
    fn default() -> Self {
        UnpackOptions {
            owners: nix::unistd::geteuid().is_root(),
            whiteouts: false,
            require_empty: true,
            rooted_names: false,
            private_root: false,
            keep_dir: None,
        }
    }
}

/// What was unpacked.
#[derive(Debug, Default, Clone)]
pub struct Unpacked {
    pub entries: u64,
    /// Bytes of file data.
    pub bytes: u64,
    /// What could not be restored and was let go, one line each (an
    /// extended attribute the filesystem refuses, a device node a normal
    /// user may not make, a member of a kind tar has but Linux has not).
    pub warnings: Vec<String>,
    /// Members that give privileges to whoever can reach them: set-id
    /// files, files with capabilities, device nodes outside `/dev`.
    pub privileged: u64,
    /// The archive's mode for DIR, when kept back ([`UnpackOptions::private_root`]).
    pub root_mode: Option<u32>,
}

/// The metadata of a member.
#[derive(Debug, Clone)]
struct Meta {
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: i64,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Extracts the tar stream `input` into `dir` (created when missing).
pub fn unpack_tar<R: Read>(
    input: R,
    dir: &Path,
    opts: &UnpackOptions,
    progress: &mut dyn Progress,
) -> Result<Unpacked, ArchiveError> {
    match std::fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io_at(dir)(e)),
    }
    let root = nix::fcntl::openat(
        nix::fcntl::AT_FDCWD,
        dir,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io_at(dir)(e.into()))?;
    if opts.require_empty {
        let mut d = nix::dir::Dir::openat(root.as_fd(), ".", OFlag::O_RDONLY, Mode::empty())
            .map_err(|e| io_at(dir)(e.into()))?;
        for e in d.iter() {
            let e = e.map_err(|e| io_at(dir)(e.into()))?;
            let n = e.file_name().to_bytes();
            if n != b"." && n != b".." {
                return Err(ArchiveError::NotEmpty(dir.to_path_buf()));
            }
        }
    }
    if opts.private_root {
        fchown(
            root.as_fd(),
            Some(nix::unistd::geteuid()),
            Some(nix::unistd::getegid()),
        )
        .map_err(|e| io_at(dir)(e.into()))?;
        fchmod(root.as_fd(), Mode::from_bits_truncate(0o700)).map_err(|e| io_at(dir)(e.into()))?;
    }
    let (mount, _) = sys::mount_of(root.as_fd()).map_err(io_at(dir))?;
    let mut x = Extractor {
        root,
        mount,
        opts,
        cache: None,
        dirs: vec![],
        layer: HashSet::new(),
        done: Unpacked::default(),
    };
    let format = |source| ArchiveError::Format {
        path: dir.to_path_buf(),
        source,
    };
    let mut archive = tar::Archive::new(input);
    for entry in archive.entries().map_err(format)? {
        let entry = entry.map_err(format)?;
        x.member(entry, progress)?;
    }
    x.finish_dirs()?;
    Ok(x.done)
}

/// The components of a member's name, or why it is refused. Empty for DIR
/// itself (`./`).
pub(crate) fn components(raw: &[u8], rooted: bool) -> Result<Vec<&[u8]>, &'static str> {
    if raw.first() == Some(&b'/') && !rooted {
        return Err("an absolute name (it would land outside the directory)");
    }
    let mut out = vec![];
    for c in raw.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err("a `..` in its name (it would land outside the directory)"),
            c => out.push(c),
        }
    }
    Ok(out)
}

fn join(comps: &[&[u8]]) -> Vec<u8> {
    comps.join(&b'/')
}

struct Extractor<'a> {
    root: OwnedFd,
    mount: u64,
    opts: &'a UnpackOptions,
    /// The last parent directory reached: its path and an `O_PATH` descriptor.
    cache: Option<(Vec<u8>, OwnedFd)>,
    /// Directories whose metadata is set at the end: path and metadata.
    dirs: Vec<(Vec<u8>, Meta)>,
    /// Paths this archive made (for opaque whiteouts).
    layer: HashSet<Vec<u8>>,
    done: Unpacked,
}

fn refused(member: &[u8], why: impl Into<String>) -> ArchiveError {
    ArchiveError::Refused {
        member: member.to_vec(),
        why: why.into(),
    }
}

fn failed(member: &[u8]) -> impl FnOnce(io::Error) -> ArchiveError + '_ {
    move |source| ArchiveError::Member {
        member: member.to_vec(),
        source,
    }
}

fn errno(member: &[u8]) -> impl FnOnce(Errno) -> ArchiveError + '_ {
    move |e| failed(member)(e.into())
}

/// A PAX global header (`git archive` writes one, its commit as a
/// `comment`): read, checked, and refused when it says where members are,
/// what they are called or whom they are given (`path`, `linkpath`, `size`,
/// `uid`, `gid`), which other readers apply to every member after it and
/// this one does not.
fn global_header<R: Read>(entry: &mut tar::Entry<'_, R>, raw: &[u8]) -> Result<(), ArchiveError> {
    let bad = |e: io::Error| failed(raw)(e);
    if entry.header().entry_size().map_err(bad)? > tar::EXTENSION_MAX {
        return Err(refused(raw, "a PAX global header of more than 1 MiB"));
    }
    let mut data = Vec::new();
    entry.read_to_end(&mut data).map_err(bad)?;
    tar::check_pax(&data).map_err(bad)?;
    for ext in tar::PaxExtensions::new(&data) {
        let key = ext.map_err(bad)?.key_bytes();
        if tar::PAX_DECIDING.contains(&key) {
            return Err(refused(
                raw,
                "a PAX global header that renames, resizes or gives away the members after it",
            ));
        }
    }
    Ok(())
}

impl Extractor<'_> {
    fn member<R: Read>(
        &mut self,
        mut entry: tar::Entry<'_, R>,
        progress: &mut dyn Progress,
    ) -> Result<(), ArchiveError> {
        let raw = entry.path_bytes().into_owned();
        let kind = entry.header().entry_type();
        if matches!(kind, tar::EntryType::XGlobalHeader) {
            return global_header(&mut entry, &raw);
        }
        // An extension header the reader did not take as one (no ustar
        // magic: v7's; Solaris' `X`) applies, for GNU tar, to the member
        // after it: never a member here, nor left out.
        if matches!(
            kind,
            tar::EntryType::XHeader | tar::EntryType::GNULongName | tar::EntryType::GNULongLink
        ) || kind.as_byte() == b'X'
        {
            return Err(refused(
                &raw,
                "an extension header without the ustar mark, which other readers apply to the next member",
            ));
        }
        // The header as GNU tar reads it: `ustar\0` with another version
        // than `00` is ustar to it (its prefix and device numbers used),
        // a plain old header to the reader here.
        let h = entry.header().as_bytes();
        if &h[257..263] == b"ustar\0" && &h[263..265] != b"00" {
            return Err(refused(
                &raw,
                "a ustar header of another version than 00, which other readers read as ustar",
            ));
        }
        // Data after a member that has none for GNU tar (a link, a device,
        // a directory, a FIFO): it reads a header where this reader would
        // skip data, and each sees other members.
        let dataless = matches!(
            kind,
            tar::EntryType::Link
                | tar::EntryType::Symlink
                | tar::EntryType::Char
                | tar::EntryType::Block
                | tar::EntryType::Directory
                | tar::EntryType::Fifo
        );
        if dataless && entry.size() != 0 {
            return Err(refused(
                &raw,
                "a link, device, directory or FIFO with data, which other readers read as the next member",
            ));
        }
        // Old GNU sparse files: their holes would be written out whole
        // here (a 2 KiB archive made 1 GiB), and `pack` never makes one.
        if matches!(kind, tar::EntryType::GNUSparse) {
            return Err(refused(&raw, "a sparse file, which is not supported"));
        }
        // A file named as a directory is one for GNU tar (the old way of
        // writing one).
        if matches!(kind, tar::EntryType::Regular | tar::EntryType::Continuous)
            && raw.ends_with(b"/")
        {
            return Err(refused(
                &raw,
                "a file whose name ends in `/`, which other readers make a directory",
            ));
        }
        let meta = self.meta(&mut entry, &raw)?;
        let comps = components(&raw, self.opts.rooted_names).map_err(|why| refused(&raw, why))?;
        if privileged(kind, &meta, &comps) {
            self.done.privileged += 1;
        }
        let Some((name, parents)) = comps.split_last() else {
            if kind.is_dir() {
                self.dirs.push((vec![], meta));
                self.done.entries += 1;
                return Ok(());
            }
            return Err(refused(
                &raw,
                "it names the directory itself, not as a directory",
            ));
        };
        let name = OsStr::from_bytes(name);
        let parent = self.parent(parents, &raw, true)?;
        let p = parent.as_fd();
        if self.opts.whiteouts {
            if let Some(hidden) = name.as_bytes().strip_prefix(b".wh.") {
                return self.whiteout(p, parents, hidden, &raw);
            }
            self.layer.insert(join(&comps));
        }
        match kind {
            tar::EntryType::Directory => {
                match mkdirat(p, name, Mode::from_bits_truncate(0o700)) {
                    Ok(()) => {}
                    Err(Errno::EEXIST) => {
                        let st =
                            fstatat(p, name, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(errno(&raw))?;
                        if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
                            remove(p, name, &raw, self.opts.keep_dir)?;
                            self.cache = None;
                            mkdirat(p, name, Mode::from_bits_truncate(0o700))
                                .map_err(errno(&raw))?;
                        }
                    }
                    Err(e) => return Err(errno(&raw)(e)),
                }
                self.dirs.push((join(&comps), meta));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let flags = OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC;
                let mode = Mode::from_bits_truncate(0o600);
                let fd = match openat(p, name, flags, mode) {
                    Err(Errno::EEXIST) => {
                        remove(p, name, &raw, self.opts.keep_dir)?;
                        self.cache = None;
                        openat(p, name, flags, mode)
                    }
                    r => r,
                }
                .map_err(errno(&raw))?;
                let mut file = std::fs::File::from(fd);
                let mut counted = super::counted(&mut entry, progress);
                let n = io::copy(&mut counted, &mut file).map_err(failed(&raw))?;
                self.done.bytes += n;
                self.restore(file.as_fd(), &meta, &raw)?;
                futimens(file.as_fd(), &ts(meta.mtime), &ts(meta.mtime)).map_err(errno(&raw))?;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| refused(&raw, "a symlink without a target"))?
                    .into_owned();
                let target = OsStr::from_bytes(&target);
                if let Err(Errno::EEXIST) = symlinkat(target, p, name) {
                    remove(p, name, &raw, self.opts.keep_dir)?;
                    self.cache = None;
                    symlinkat(target, p, name).map_err(errno(&raw))?;
                }
                // The symlink may already be there from an earlier attempt: check
                // it is one before touching it without following.
                if self.opts.owners {
                    fchownat(
                        p,
                        name,
                        Some(Uid::from_raw(meta.uid as u32)),
                        Some(Gid::from_raw(meta.gid as u32)),
                        AtFlags::AT_SYMLINK_NOFOLLOW,
                    )
                    .map_err(errno(&raw))?;
                }
                utimensat(
                    p,
                    name,
                    &ts(meta.mtime),
                    &ts(meta.mtime),
                    UtimensatFlags::NoFollowSymlink,
                )
                .map_err(errno(&raw))?;
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| refused(&raw, "a hard link without a target"))?
                    .into_owned();
                let tcomps = components(&target, self.opts.rooted_names).map_err(|why| {
                    refused(
                        &raw,
                        format!("a hard link to {}: {why}", crate::show::bytes(&target)),
                    )
                })?;
                let Some((tname, tparents)) = tcomps.split_last() else {
                    return Err(refused(&raw, "a hard link to the directory itself"));
                };
                let tparent = self.parent(tparents, &raw, false).map_err(|e| match e {
                    ArchiveError::Refused { member, why } => ArchiveError::Refused {
                        member,
                        why: format!(
                            "the target of its hard link, {}: {why}",
                            crate::show::bytes(&target)
                        ),
                    },
                    e => e,
                })?;
                let tname = OsStr::from_bytes(tname);
                // A link to itself would remove the file first.
                if tcomps == comps {
                    return Err(refused(&raw, "a hard link to itself"));
                }
                let link = || linkat(tparent.as_fd(), tname, p, name, AtFlags::empty());
                match link() {
                    Err(Errno::EEXIST) => {
                        remove(p, name, &raw, self.opts.keep_dir)?;
                        self.cache = None;
                        link()
                    }
                    r => r,
                }
                .map_err(|e| {
                    failed(&raw)(io::Error::new(
                        io::Error::from(e).kind(),
                        format!("cannot link to {}: {e}", crate::show::bytes(&target)),
                    ))
                })?;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let (kind_flag, dev) = match kind {
                    tar::EntryType::Char | tar::EntryType::Block => {
                        let h = entry.header();
                        let major = h.device_major().ok().flatten().unwrap_or(0);
                        let minor = h.device_minor().ok().flatten().unwrap_or(0);
                        let f = if kind == tar::EntryType::Char {
                            SFlag::S_IFCHR
                        } else {
                            SFlag::S_IFBLK
                        };
                        (f, libc::makedev(major, minor))
                    }
                    _ => (SFlag::S_IFIFO, 0),
                };
                let perm = Mode::from_bits_truncate(0o600);
                let made = match mknodat(p, name, kind_flag, perm, dev) {
                    Err(Errno::EEXIST) => {
                        remove(p, name, &raw, self.opts.keep_dir)?;
                        self.cache = None;
                        mknodat(p, name, kind_flag, perm, dev)
                    }
                    r => r,
                };
                match made {
                    Ok(()) => {}
                    Err(Errno::EPERM) if kind != tar::EntryType::Fifo && !is_root() => {
                        self.done.warnings.push(format!(
                            "{}: a device node, which only root can make; left out",
                            crate::show::bytes(&raw)
                        ));
                        return Ok(());
                    }
                    Err(e) => return Err(errno(&raw)(e)),
                }
                // Never opened for reading or writing: O_PATH.
                let fd = openat(
                    p,
                    name,
                    OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(errno(&raw))?;
                self.restore(fd.as_fd(), &meta, &raw)?;
                utimensat(
                    p,
                    name,
                    &ts(meta.mtime),
                    &ts(meta.mtime),
                    UtimensatFlags::NoFollowSymlink,
                )
                .map_err(errno(&raw))?;
            }
            // A volume label: nothing to unpack, for GNU tar either.
            other if other.as_byte() == b'V' => return Ok(()),
            // Any other kind GNU tar makes something of (a plain file, for
            // one it does not know): never left out unsaid, nor made
            // otherwise here.
            other => {
                return Err(refused(
                    &raw,
                    format!(
                        "a tar member of kind {:?}, which this reader does not unpack",
                        char::from(other.as_byte())
                    ),
                ));
            }
        }
        self.done.entries += 1;
        Ok(())
    }

    fn meta<R: Read>(
        &self,
        entry: &mut tar::Entry<'_, R>,
        raw: &[u8],
    ) -> Result<Meta, ArchiveError> {
        let bad = |e: io::Error| failed(raw)(e);
        let h = entry.header();
        // Owners past 32 bits (base-256 in the header) are no owners: cut,
        // 2^32 would be root.
        let id = |v: u64| {
            (v <= u32::MAX.into())
                .then_some(v)
                .ok_or_else(|| refused(raw, "a uid or gid past 32 bits"))
        };
        let mut m = Meta {
            mode: h.mode().map_err(bad)?,
            uid: id(h.uid().map_err(bad)?)?,
            gid: id(h.gid().map_err(bad)?)?,
            mtime: h.mtime().map_err(bad)? as i64,
            xattrs: vec![],
        };
        if let Some(exts) = entry.pax_extensions().map_err(bad)? {
            for ext in exts {
                let ext = ext.map_err(bad)?;
                let key = ext.key_bytes();
                if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                    m.xattrs.push((name.to_vec(), ext.value_bytes().to_vec()));
                } else if key == b"uid" || key == b"gid" {
                    let v = ext.value().ok().and_then(|v| v.parse().ok());
                    let v =
                        v.ok_or_else(|| refused(raw, "a PAX uid or gid that is not a number"))?;
                    if key == b"uid" {
                        m.uid = v;
                    } else {
                        m.gid = v;
                    }
                }
            }
        }
        Ok(m)
    }

    /// Owner, then mode (a chown clears set-id bits and capabilities),
    /// then extended attributes, of what `fd` refers to.
    fn restore(&mut self, fd: BorrowedFd, m: &Meta, raw: &[u8]) -> Result<(), ArchiveError> {
        if self.opts.owners {
            fchown(
                fd,
                Some(Uid::from_raw(m.uid as u32)),
                Some(Gid::from_raw(m.gid as u32)),
            )
            .or_else(|e| match e {
                // O_PATH descriptors (device nodes): through /proc.
                Errno::EBADF => nix::unistd::fchownat(
                    nix::fcntl::AT_FDCWD,
                    &sys::fd_path(fd),
                    Some(Uid::from_raw(m.uid as u32)),
                    Some(Gid::from_raw(m.gid as u32)),
                    AtFlags::empty(),
                ),
                e => Err(e),
            })
            .map_err(errno(raw))?;
        }
        let mode = Mode::from_bits_truncate(m.mode & 0o7777);
        fchmod(fd, mode)
            .or_else(|e| match e {
                Errno::EBADF => fchmodat(
                    nix::fcntl::AT_FDCWD,
                    &sys::fd_path(fd),
                    mode,
                    FchmodatFlags::FollowSymlink,
                ),
                e => Err(e),
            })
            .map_err(errno(raw))?;
        for (name, value) in &m.xattrs {
            if let Err(e) = sys::xattr::set(fd, name, value) {
                let skip = match e.raw_os_error() {
                    Some(libc::ENOTSUP) => true,
                    Some(libc::EPERM) | Some(libc::EACCES) => !is_root(),
                    _ => false,
                };
                if !skip {
                    return Err(failed(raw)(io::Error::new(
                        e.kind(),
                        format!("extended attribute {}: {e}", crate::show::bytes(name)),
                    )));
                }
                self.done.warnings.push(format!(
                    "{}: extended attribute {} not restored: {e}",
                    crate::show::bytes(raw),
                    crate::show::bytes(name)
                ));
            }
        }
        Ok(())
    }

    /// The directory `comps` inside DIR as an `O_PATH` descriptor, reached
    /// one component at a time without following a symlink or leaving
    /// DIR's mount; missing directories are made when `create`.
    fn parent(
        &mut self,
        comps: &[&[u8]],
        raw: &[u8],
        create: bool,
    ) -> Result<OwnedFd, ArchiveError> {
        let key = join(comps);
        if let Some((k, fd)) = &self.cache {
            if *k == key {
                return fd.try_clone().map_err(failed(raw));
            }
        }
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let mut cur = self.root.try_clone().map_err(failed(raw))?;
        for (i, c) in comps.iter().enumerate() {
            let c = OsStr::from_bytes(c);
            let here = || crate::show::bytes(&join(&comps[..=i]));
            let next = match openat(cur.as_fd(), c, flags, Mode::empty()) {
                Err(Errno::ENOENT) if create => {
                    match mkdirat(cur.as_fd(), c, Mode::from_bits_truncate(0o755)) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(e) => return Err(errno(raw)(e)),
                    }
                    openat(cur.as_fd(), c, flags, Mode::empty())
                }
                r => r,
            };
            let next = match next {
                Ok(fd) => fd,
                Err(Errno::ENOTDIR) | Err(Errno::ELOOP) => {
                    let st = fstatat(cur.as_fd(), c, AtFlags::AT_SYMLINK_NOFOLLOW);
                    let link = st.is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFLNK);
                    return Err(refused(
                        raw,
                        if link {
                            format!("its path goes through the symlink {} (it could lead outside the directory)", here())
                        } else {
                            format!("{} is not a directory", here())
                        },
                    ));
                }
                Err(e) => return Err(errno(raw)(e)),
            };
            match sys::mount_of(next.as_fd()) {
                Ok((id, false)) if id == self.mount => {}
                Ok(_) => {
                    return Err(refused(raw, format!("{} is on another mount", here())));
                }
                Err(e) => return Err(failed(raw)(e)),
            }
            cur = next;
        }
        let out = cur.try_clone().map_err(failed(raw))?;
        self.cache = Some((key, cur));
        Ok(out)
    }

    /// `.wh.NAME` in `parent`: NAME goes; `.wh..wh..opq`: what earlier
    /// layers left in `parent` goes.
    fn whiteout(
        &mut self,
        parent: BorrowedFd,
        parents: &[&[u8]],
        hidden: &[u8],
        raw: &[u8],
    ) -> Result<(), ArchiveError> {
        let doomed: Vec<Vec<u8>> = if hidden == b".wh..opq" {
            let mut d = nix::dir::Dir::openat(
                parent,
                ".",
                OFlag::O_RDONLY | OFlag::O_DIRECTORY,
                Mode::empty(),
            )
            .map_err(errno(raw))?;
            let mut v = vec![];
            for e in d.iter() {
                let n = e.map_err(errno(raw))?.file_name().to_bytes().to_vec();
                if n == b"." || n == b".." {
                    continue;
                }
                let mut full = parents.to_vec();
                full.push(&n);
                if !self.layer.contains(&join(&full)) {
                    v.push(n);
                }
            }
            v
        } else {
            if hidden.is_empty() || hidden == b"." || hidden == b".." {
                return Err(refused(raw, "a whiteout of nothing"));
            }
            vec![hidden.to_vec()]
        };
        for n in doomed {
            let n = OsStr::from_bytes(&n);
            match fstatat(parent, n, AtFlags::AT_SYMLINK_NOFOLLOW) {
                Err(Errno::ENOENT) => continue,
                Err(e) => return Err(errno(raw)(e)),
                Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => {
                    let path = sys::fd_path(parent).join(n);
                    crate::remove::remove_tree(&path)
                        .map_err(|e| failed(raw)(io::Error::other(e.to_string())))?;
                }
                Ok(_) => unlinkat(parent, n, UnlinkatFlags::NoRemoveDir).map_err(errno(raw))?,
            }
        }
        self.cache = None;
        self.done.entries += 1;
        Ok(())
    }

    /// Owners, modes, attributes and mtimes of the directories, deepest
    /// first, once nothing more is created in them.
    fn finish_dirs(&mut self) -> Result<(), ArchiveError> {
        let dirs = std::mem::take(&mut self.dirs);
        self.cache = None;
        for (path, meta) in dirs.iter().rev() {
            let comps: Vec<&[u8]> = path
                .split(|&b| b == b'/')
                .filter(|c| !c.is_empty())
                .collect();
            let fd = match comps.split_last() {
                None if self.opts.private_root => {
                    self.done.root_mode = Some(meta.mode & 0o7777);
                    futimens(self.root.as_fd(), &ts(meta.mtime), &ts(meta.mtime))
                        .map_err(errno(path))?;
                    continue;
                }
                None => self.root.try_clone().map_err(failed(b"./"))?,
                Some((name, parents)) => {
                    let p = self.parent(parents, path, false)?;
                    match openat(
                        p.as_fd(),
                        OsStr::from_bytes(name),
                        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                        Mode::empty(),
                    ) {
                        Ok(fd) => fd,
                        // Replaced by a later member or whited out.
                        Err(Errno::ENOENT) | Err(Errno::ENOTDIR) | Err(Errno::ELOOP) => continue,
                        Err(e) => return Err(errno(path)(e)),
                    }
                }
            };
            self.restore(fd.as_fd(), meta, path)?;
            futimens(fd.as_fd(), &ts(meta.mtime), &ts(meta.mtime)).map_err(errno(path))?;
        }
        Ok(())
    }
}

/// A member that gives privileges to whoever can reach it: a set-id file,
/// a file with capabilities, a device node outside `/dev`.
fn privileged(kind: tar::EntryType, m: &Meta, comps: &[&[u8]]) -> bool {
    match kind {
        tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
            m.mode & 0o6000 != 0 || m.xattrs.iter().any(|(n, _)| n == b"security.capability")
        }
        tar::EntryType::Char | tar::EntryType::Block => comps.first() != Some(&&b"dev"[..]),
        _ => false,
    }
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn ts(secs: i64) -> TimeSpec {
    TimeSpec::new(secs, 0)
}

/// Removes what is at `name` in `parent` so a member can take its place:
/// a file or symlink, or an empty directory other than `keep_dir`.
fn remove(
    parent: BorrowedFd,
    name: &OsStr,
    raw: &[u8],
    keep_dir: Option<(u64, u64)>,
) -> Result<(), ArchiveError> {
    let st = match fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(errno(raw)(e)),
    };
    let how = if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
        if keep_dir == Some((st.st_dev, st.st_ino)) {
            return Err(refused(
                raw,
                "a sandbox's chroot.d that is not a directory (a symlink?); \
                 chroot-tool copies only a chroot.d that is one",
            ));
        }
        UnlinkatFlags::RemoveDir
    } else {
        UnlinkatFlags::NoRemoveDir
    };
    unlinkat(parent, name, how).map_err(errno(raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_names() {
        assert_eq!(
            components(b"./etc/passwd", false).unwrap(),
            [b"etc".as_ref(), b"passwd"]
        );
        assert_eq!(
            components(b"etc//x/", false).unwrap(),
            [b"etc".as_ref(), b"x"]
        );
        assert!(components(b"./", false).unwrap().is_empty());
        assert!(components(b"/etc/passwd", false).is_err());
        assert_eq!(
            components(b"/etc/passwd", true).unwrap(),
            [b"etc".as_ref(), b"passwd"]
        );
        assert!(components(b"/", true).unwrap().is_empty());
        assert!(components(b"/../x", true).is_err());
        assert!(components(b"a/../../b", false).is_err());
        assert!(components(b"..", false).is_err());
        assert_eq!(
            components(b"a/..b", false).unwrap(),
            [b"a".as_ref(), b"..b"]
        );
    }
}
