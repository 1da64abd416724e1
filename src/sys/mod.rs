//! Mechanism: thin wrappers over the Linux calls chroot-tool needs that nix
//! does not cover (openat2 resolution inside a root, the fd-based mount API,
//! mount ids). No policy here: callers decide what to mount where.
pub mod alloc;
pub mod child;
pub mod file;
pub mod guard;
pub mod mounts;
pub mod ns;
pub mod pidfd;
pub mod process;
pub mod pty;
pub mod resolve;
pub mod signals;
pub mod userns;
pub mod xattr;

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

pub use file::{open_file, read_in_root, read_proc, status_field, ReadError};
pub use pty::open_ptmx;
pub use resolve::{open_root, resolve_beneath, resolve_in_root, Node};

// Constants of the fd-based mount API (linux/mount.h), absent from libc.
const FSOPEN_CLOEXEC: libc::c_uint = 0x1;
const FSCONFIG_SET_FLAG: libc::c_uint = 0;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const FSMOUNT_CLOEXEC: libc::c_uint = 0x1;
const OPEN_TREE_CLONE: libc::c_uint = 0x1;
const OPEN_TREE_CLOEXEC: libc::c_uint = libc::O_CLOEXEC as libc::c_uint;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;

/// Per-mount attributes (`MOUNT_ATTR_*`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Attrs(pub u64);

impl Attrs {
    pub const RDONLY: u64 = 0x1;
    pub const NOSUID: u64 = 0x2;
    pub const NODEV: u64 = 0x4;
    pub const NOEXEC: u64 = 0x8;
    pub const RELATIME: u64 = 0x0;
    pub const NOATIME: u64 = 0x10;
    pub const STRICTATIME: u64 = 0x20;
    pub const NODIRATIME: u64 = 0x80;
    pub const NOSYMFOLLOW: u64 = 0x0020_0000;
    /// The bits that hold the atime choice.
    pub const ATIME: u64 = 0x70;
    pub fn has(self, bit: u64) -> bool {
        self.0 & bit != 0
    }
}

/// Mount propagation types (the `MS_*` values mount_setattr takes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    Private,
    Slave,
}

impl Propagation {
    fn ms(self) -> u64 {
        match self {
            Propagation::Private => libc::MS_PRIVATE,
            Propagation::Slave => libc::MS_SLAVE,
        }
    }
}

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

fn cstr(s: impl AsRef<std::ffi::OsStr>) -> io::Result<CString> {
    CString::new(s.as_ref().as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn check(r: libc::c_long) -> io::Result<libc::c_long> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn owned(r: libc::c_long) -> io::Result<OwnedFd> {
    // SAFETY: the kernel just returned this new descriptor to us.
    check(r).map(|fd| unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

const EMPTY: &[u8; 1] = b"\0";

/// One `fsconfig(2)` call: `key` (or the command) with an optional string value.
fn fsconfig(
    fsfd: RawFd,
    cmd: libc::c_uint,
    key: Option<&str>,
    value: Option<&str>,
) -> io::Result<()> {
    let key = key.map(cstr).transpose()?;
    let value = value.map(cstr).transpose()?;
    let ptr = |c: &Option<CString>| c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
    // SAFETY: a valid fs context fd; NUL-terminated strings or null pointers.
    check(unsafe { libc::syscall(libc::SYS_fsconfig, fsfd, cmd, ptr(&key), ptr(&value), 0) })
        .map(drop)
}

/// A new filesystem of `fstype`, configured with `options` (`key` or
/// `key=value`), as a detached mount with `attrs`. Errors carry the
/// kernel's own explanation when it gives one.
pub fn new_fs(fstype: &str, source: &str, options: &[String], attrs: Attrs) -> io::Result<OwnedFd> {
    let t = cstr(fstype)?;
    // SAFETY: valid C string, plain flags.
    let fsfd = owned(unsafe { libc::syscall(libc::SYS_fsopen, t.as_ptr(), FSOPEN_CLOEXEC) })?;
    let fd = fsfd.as_raw_fd();
    let with_log = |e: io::Error| -> io::Error {
        match fs_log(fd) {
            Some(msg) => io::Error::new(e.kind(), format!("{e}: {msg}")),
            None => e,
        }
    };
    if source != "none" && !source.is_empty() {
        fsconfig(fd, FSCONFIG_SET_STRING, Some("source"), Some(source)).map_err(with_log)?;
    }
    for opt in options {
        match opt.split_once('=') {
            Some((k, v)) => fsconfig(fd, FSCONFIG_SET_STRING, Some(k), Some(v)),
            None => fsconfig(fd, FSCONFIG_SET_FLAG, Some(opt), None),
        }
        .map_err(|e| with_log(io::Error::new(e.kind(), format!("option {opt:?}: {e}"))))?;
    }
    fsconfig(fd, FSCONFIG_CMD_CREATE, None, None).map_err(with_log)?;
    // SAFETY: valid fs context fd.
    owned(unsafe {
        libc::syscall(
            libc::SYS_fsmount,
            fd,
            FSMOUNT_CLOEXEC,
            attrs.0 as libc::c_uint,
        )
    })
    .map_err(with_log)
}

/// Reads the filesystem context's message log ("e Unknown parameter 'x'").
fn fs_log(fsfd: RawFd) -> Option<String> {
    let mut buf = [0u8; 512];
    // SAFETY: reading into our own buffer.
    let n = unsafe { libc::read(fsfd, buf.as_mut_ptr().cast(), buf.len()) };
    if n <= 0 {
        return None;
    }
    let s = String::from_utf8_lossy(&buf[..n as usize]);
    Some(s.trim_start_matches(['e', 'w', 'i']).trim().to_string())
}

/// A detached copy of the mount tree at what the descriptor `src` refers
/// to (a path already resolved, on the host one component at a time or
/// inside a root; `recursive` copies the mounts below it too), with
/// `attrs` set and `prop` propagation, so it is never shared with the
/// host's mounts, not even for an instant.
pub fn clone_tree_fd(
    src: BorrowedFd,
    recursive: bool,
    attrs: Attrs,
    prop: Propagation,
) -> io::Result<OwnedFd> {
    let mut flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: valid descriptor, empty C string and flags.
    let fd = owned(unsafe {
        libc::syscall(libc::SYS_open_tree, src.as_raw_fd(), EMPTY.as_ptr(), flags)
    })?;
    set_attrs(fd.as_fd(), attrs, Some(prop), recursive)?;
    Ok(fd)
}

/// Changes attributes and propagation of the mount `fd` refers to (and those below it when `recursive`).
pub fn set_attrs(
    fd: BorrowedFd,
    attrs: Attrs,
    prop: Option<Propagation>,
    recursive: bool,
) -> io::Result<()> {
    let attr = MountAttr {
        attr_set: attrs.0,
        attr_clr: 0,
        propagation: prop.map_or(0, Propagation::ms),
        userns_fd: 0,
    };
    let mut flags = libc::AT_EMPTY_PATH;
    if recursive {
        flags |= libc::AT_RECURSIVE;
    }
    // SAFETY: valid fd, empty path, a correctly sized mount_attr.
    check(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            EMPTY.as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    })
    .map(drop)
}

/// Attaches the detached mount `mnt` onto the file or directory `target` refers to.
pub fn attach(mnt: BorrowedFd, target: BorrowedFd) -> io::Result<()> {
    // SAFETY: valid fds and empty paths.
    check(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mnt.as_raw_fd(),
            EMPTY.as_ptr(),
            target.as_raw_fd(),
            EMPTY.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    })
    .map(drop)
}

/// The mount `fd` lies on, and whether `fd` is that mount's root.
pub fn mount_of(fd: BorrowedFd) -> io::Result<(u64, bool)> {
    let st = statx_mount(fd)?;
    let root = st.stx_attributes & libc::STATX_ATTR_MOUNT_ROOT as u64 != 0;
    Ok((st.stx_mnt_id, root))
}

/// `statx` of what `fd` names, with its mount id.
fn statx_mount(fd: BorrowedFd) -> io::Result<libc::statx> {
    statx_at(fd, c"", libc::AT_EMPTY_PATH)
}

/// `statx` of `name` in `dir` (a symlink itself, never followed), with its
/// mount id.
fn statx_at(dir: BorrowedFd, name: &std::ffi::CStr, flags: i32) -> io::Result<libc::statx> {
    // SAFETY: statx fills our zeroed struct; `name` is a C string.
    let mut st: libc::statx = unsafe { std::mem::zeroed() };
    let r = unsafe {
        libc::statx(
            dir.as_raw_fd(),
            name.as_ptr(),
            flags | libc::AT_SYMLINK_NOFOLLOW,
            libc::STATX_BASIC_STATS | libc::STATX_MNT_ID,
            &mut st,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st)
}

/// The id of the mount `fd` lies on and the device (`major:minor`) of the
/// file, from one `statx`.
pub fn mount_and_dev(fd: BorrowedFd) -> io::Result<(u64, String)> {
    let st = statx_mount(fd)?;
    Ok((
        st.stx_mnt_id,
        format!("{}:{}", st.stx_dev_major, st.stx_dev_minor),
    ))
}

/// What `/proc/PID/root` of `pid` leads to (the magic link followed), in
/// one `statx` relative to `proc` (an open `/proc`), with the name written
/// on the stack: its mount id, device and inode. `off` asks it of every
/// process of the host.
pub fn root_of(proc: BorrowedFd, pid: i32) -> io::Result<(u64, (u64, u64))> {
    root_at(proc, format_args!("{pid}/root"))
}

/// [`root_of`] of the thread `tid` of `pid` (`PID/task/TID/root`).
pub fn root_of_thread(proc: BorrowedFd, pid: i32, tid: i32) -> io::Result<(u64, (u64, u64))> {
    root_at(proc, format_args!("{pid}/task/{tid}/root"))
}

fn root_at(proc: BorrowedFd, path: std::fmt::Arguments) -> io::Result<(u64, (u64, u64))> {
    let st = statx_in(proc, path, libc::STATX_MNT_ID | libc::STATX_INO)?;
    let dev = libc::makedev(st.stx_dev_major, st.stx_dev_minor);
    Ok((st.stx_mnt_id, (dev, st.stx_ino)))
}

/// The owner of `/proc/PID` of `pid` (its effective uid, dumpable or not:
/// only the files below it turn root's), in one `statx` relative to
/// `proc`.
pub fn owner_of(proc: BorrowedFd, pid: i32) -> io::Result<u32> {
    Ok(statx_in(proc, format_args!("{pid}"), libc::STATX_UID)?.stx_uid)
}

/// `statx` of `path` (following links) relative to `proc`, the name
/// written on the stack.
fn statx_in(proc: BorrowedFd, path: std::fmt::Arguments, mask: u32) -> io::Result<libc::statx> {
    use std::io::Write;
    let mut name = [0u8; 48];
    let mut w = &mut name[..];
    write!(w, "{path}\0").map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: statx fills our zeroed struct; `name` holds a NUL-terminated
    // string (the rest of the array is zero).
    let mut st: libc::statx = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::statx(proc.as_raw_fd(), name.as_ptr().cast(), 0, mask, &mut st) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st)
}

/// The numeric names in `proc` (an open `/proc`): the pids of the thread
/// group leaders this process can see. Read with `getdents64` into one
/// 32 KiB buffer (a host of about a thousand processes in one call; `readdir`
/// reads 2 KiB at a time, a hundred entries), parsed in place.
pub fn proc_pids(proc: BorrowedFd) -> io::Result<Vec<i32>> {
    // The offset is the descriptor's: read from the start.
    nix::unistd::lseek(proc, 0, nix::unistd::Whence::SeekSet)?;
    let mut pids = Vec::new();
    each_name(proc, 32 << 10, |name| {
        if !name.is_empty() && name.iter().all(u8::is_ascii_digit) {
            if let Some(pid) = std::str::from_utf8(name).ok().and_then(|s| s.parse().ok()) {
                pids.push(pid);
            }
        }
    })?;
    Ok(pids)
}

/// Calls `each` with every name in the directory open as `dir`, read with
/// `getdents64` from where its offset stands, `size` bytes at a time.
fn each_name(dir: BorrowedFd, size: usize, mut each: impl FnMut(&[u8])) -> io::Result<()> {
    let mut buf = vec![0u8; size];
    loop {
        // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`.
        let n = unsafe {
            libc::syscall(
                libc::SYS_getdents64,
                dir.as_raw_fd(),
                buf.as_mut_ptr(),
                buf.len(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if n == 0 {
            return Ok(());
        }
        let got = &buf[..n as usize];
        let mut at = 0;
        // Each record: d_ino (8), d_off (8), d_reclen (2), d_type (1), the
        // NUL-terminated name.
        while at + 19 < got.len() {
            let reclen = u16::from_ne_bytes([got[at + 16], got[at + 17]]) as usize;
            if reclen < 20 || at + reclen > got.len() {
                return Err(io::Error::from(io::ErrorKind::InvalidData));
            }
            let name = &got[at + 19..at + reclen];
            each(&name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())]);
            at += reclen;
        }
    }
}

/// The 64-bit id of the mount `fd` names, and whether it is that mount's
/// root (on top there): one `statx`; `None` before Linux 6.8.
pub fn top_unique(fd: BorrowedFd) -> Option<(u64, bool)> {
    // SAFETY: statx fills our zeroed struct.
    let mut st: libc::statx = unsafe { std::mem::zeroed() };
    let r = unsafe {
        libc::statx(
            fd.as_raw_fd(),
            EMPTY.as_ptr().cast(),
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
            libc::STATX_MNT_ID_UNIQUE,
            &mut st,
        )
    };
    (r == 0 && st.stx_mask & libc::STATX_MNT_ID_UNIQUE != 0).then(|| {
        let top = st.stx_attributes & libc::STATX_ATTR_MOUNT_ROOT as u64 != 0;
        (st.stx_mnt_id, top)
    })
}

/// Whether the mount `fd` lies on is read-only (`fstatfs`'s flags are
/// the mount's own); `false` when it cannot be told.
pub fn read_only(fd: BorrowedFd) -> bool {
    nix::sys::statfs::fstatfs(fd)
        .is_ok_and(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
}

/// The 64-bit mount id that the kernel never reuses
/// (`STATX_MNT_ID_UNIQUE`, Linux 6.8); `None` where the kernel has none.
pub fn unique_mount_id(fd: BorrowedFd) -> Option<u64> {
    top_unique(fd).map(|(id, _)| id)
}

/// Unmounts the mount at `name` in the directory `parent` (never lazily,
/// never following a symlink). The process's working directory moves to
/// `parent` for the call and then to `/`, so that it never keeps a mount of
/// the sandbox busy: callers use absolute paths.
pub fn unmount_at(parent: BorrowedFd, name: &std::ffi::OsStr, detach: bool) -> io::Result<()> {
    use nix::mount::MntFlags;
    nix::unistd::fchdir(parent)?;
    let flags = MntFlags::UMOUNT_NOFOLLOW
        | if detach {
            MntFlags::MNT_DETACH
        } else {
            MntFlags::empty()
        };
    let r = nix::mount::umount2(name, flags);
    nix::unistd::chdir("/")?;
    r.map_err(io::Error::from)
}

/// Eight random bytes from the kernel (`getrandom(2)`), for names that
/// must not collide with another process's (a dead one's) leftovers.
pub fn random_u64() -> io::Result<u64> {
    let mut b = [0u8; 8];
    // SAFETY: the kernel writes at most `b.len()` bytes into `b`.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    if n as usize != b.len() {
        return Err(io::Error::other("getrandom: short read"));
    }
    Ok(u64::from_ne_bytes(b))
}

/// `/proc/self/fd/N`: a path the kernel resolves to exactly what `fd` refers to.
pub fn fd_path(fd: BorrowedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// Where `fd` is, as a path from this process's root (for messages and mountinfo look-ups).
pub fn where_is(fd: BorrowedFd) -> io::Result<PathBuf> {
    std::fs::read_link(fd_path(fd))
}

/// `path` absolute, with every symlink followed and no `.` or `..` left
/// (`realpath(3)`), as std's `fs::canonicalize` gives it, but written into
/// a buffer of ours: std lets libc allocate the result, and musl's
/// allocator then maps a page for it and unmaps it at the free, two
/// system calls and a page fault more in each command. A result longer
/// than `PATH_MAX`, which glibc's `realpath` gives only when it allocates,
/// is asked of std.
pub fn canonicalize(path: impl AsRef<Path>) -> io::Result<PathBuf> {
    let path = path.as_ref();
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a path with a NUL byte"))?;
    let mut out = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: `c` ends with a NUL; `out` holds PATH_MAX bytes, the most
    // realpath writes (the result and its NUL).
    let r = unsafe { libc::realpath(c.as_ptr(), out.as_mut_ptr().cast()) };
    if r.is_null() {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ENAMETOOLONG) {
            return std::fs::canonicalize(path);
        }
        return Err(e);
    }
    let n = out.iter().position(|&b| b == 0).unwrap_or(out.len());
    out.truncate(n);
    Ok(PathBuf::from(
        <std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(out),
    ))
}

/// The names in the directory open as `dir` (read from where its offset
/// stands), `.` and `..` left out: where `nix`'s `Dir` (libc's
/// `fdopendir`) would have musl allocate its stream, which maps and
/// unmaps pages of its own on `on`'s path.
pub fn names_in(dir: BorrowedFd) -> io::Result<Vec<CString>> {
    let mut names = vec![];
    each_name(dir, 8 << 10, |name| {
        if name != b"." && name != b".." {
            // Cut at its first NUL by `each_name`: holds none.
            names.extend(CString::new(name).ok());
        }
    })?;
    Ok(names)
}

/// Opens `path` on the host as an `O_PATH` descriptor (following symlinks: sources are the user's).
///
/// Paths are opened here, and on the paths of `on`, `run` and `off`, with
/// `openat(AT_FDCWD, ...)` ([`open_file`] for a `File`): musl's `open`
/// follows every `O_CLOEXEC` open with an `fcntl(F_SETFD)` for kernels
/// older than 2.6.23, one system call more each time.
pub fn open_path(path: &Path) -> io::Result<OwnedFd> {
    let f = nix::fcntl::openat(
        nix::fcntl::AT_FDCWD,
        path,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    Ok(f)
}

/// Opens the directory `path` on the host for reading its entries.
pub fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    let f = nix::fcntl::openat(
        nix::fcntl::AT_FDCWD,
        path,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    Ok(f)
}

/// What `statx` says about `name` in `dir`, the last component never followed.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    /// `S_IFMT` bits of the mode.
    pub kind: u32,
    pub mount_id: u64,
    /// The entry is the root of a mount (something is mounted on it).
    pub mount_root: bool,
    /// Inode number, link count and 512-byte blocks allocated (disk use).
    pub ino: u64,
    pub nlink: u32,
    pub blocks: u64,
    /// The device number of a device.
    pub rdev: u64,
    /// Permission bits (`0o7777`) and owner.
    pub perm: u32,
    pub uid: u32,
}

impl Entry {
    pub fn is_dir(&self) -> bool {
        self.kind == libc::S_IFDIR
    }
}

/// `statx(dir, name, AT_SYMLINK_NOFOLLOW)` for the type and mount of an
/// entry (an empty name: what `dir` names).
pub fn entry_at(dir: BorrowedFd, name: &std::ffi::OsStr) -> io::Result<Entry> {
    let n = cstr(name)?;
    let empty = if name.is_empty() {
        libc::AT_EMPTY_PATH
    } else {
        0
    };
    let st = statx_at(dir, &n, libc::AT_NO_AUTOMOUNT | empty)?;
    let mode = u32::from(st.stx_mode);
    Ok(Entry {
        kind: mode & libc::S_IFMT,
        mount_id: st.stx_mnt_id,
        mount_root: st.stx_attributes & libc::STATX_ATTR_MOUNT_ROOT as u64 != 0,
        ino: st.stx_ino,
        nlink: st.stx_nlink,
        blocks: st.stx_blocks,
        rdev: libc::makedev(st.stx_rdev_major, st.stx_rdev_minor),
        perm: mode & 0o7777,
        uid: st.stx_uid,
    })
}

/// A new overlay filesystem as a detached mount: `lower` layers (the
/// topmost first), and `upper` (the upper directory and the work directory)
/// when it is writable. Every layer is named by a descriptor the caller
/// opened and checked (`/proc/self/fd/N` to the kernel, followed once, at
/// this call): no path of the user's is parsed here, so none needs escaping
/// (a `,`, `:` or `\` in BASE's path is never seen by overlayfs).
pub fn new_overlay(
    lower: &[BorrowedFd],
    upper: Option<(BorrowedFd, BorrowedFd)>,
    extra: &[&str],
    attrs: Attrs,
) -> io::Result<OwnedFd> {
    let name = |fd: BorrowedFd| format!("/proc/self/fd/{}", fd.as_raw_fd());
    let lowers: Vec<String> = lower.iter().map(|fd| name(*fd)).collect();
    let mut options = vec![format!("lowerdir={}", lowers.join(":"))];
    if let Some((up, work)) = upper {
        options.push(format!("upperdir={}", name(up)));
        options.push(format!("workdir={}", name(work)));
    }
    options.extend(extra.iter().map(|o| o.to_string()));
    new_fs("overlay", "chroot-tool", &options, attrs)
}

/// Whether this process is in a user namespace other than the initial one
/// (whose inode is `PROC_USER_INIT_INO`), whatever its id map.
pub fn in_user_ns() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self/ns/user").is_ok_and(|m| m.ino() != 0xEFFF_FFFD)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    /// One read of `/proc` lists what `readdir` lists: this process, its
    /// parent, and no name that is not a number.
    #[test]
    fn proc_pids_lists_the_processes_readdir_lists() {
        let proc = open_dir(Path::new("/proc")).unwrap();
        let pids = proc_pids(proc.as_fd()).unwrap();
        let me = std::process::id() as i32;
        assert!(pids.contains(&me), "{me} not in {pids:?}");
        assert!(pids.contains(&(nix::unistd::getppid().as_raw())));
        assert!(pids.iter().all(|&p| p > 0));
        // Read twice on one descriptor: from the start each time.
        assert!(proc_pids(proc.as_fd()).unwrap().contains(&me));
        let listed: Vec<i32> = std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .collect();
        // Processes come and go between the two reads; those that stay are in both.
        let both = listed.iter().filter(|p| pids.contains(p)).count();
        assert!(both * 10 >= listed.len() * 9, "{pids:?} against {listed:?}");
    }

    /// `names_in` lists what `readdir` lists, over several reads and with
    /// names that are not UTF-8; `canonicalize` gives what std's gives.
    #[test]
    fn names_in_lists_what_readdir_lists_and_canonicalize_agrees_with_std() {
        use std::os::unix::ffi::OsStrExt;
        let t = tempfile::tempdir().unwrap();
        let mut made = vec![];
        for i in 0..400 {
            let name = format!("entry-with-a-long-name-to-fill-the-buffer-{i:04}");
            std::fs::write(t.path().join(&name), "").unwrap();
            made.push(name.into_bytes());
        }
        let odd = std::ffi::OsStr::from_bytes(b"not-utf8-\xff\xfe");
        std::fs::create_dir(t.path().join(odd)).unwrap();
        made.push(odd.as_bytes().to_vec());
        made.sort();
        let dir = open_dir(t.path()).unwrap();
        let mut listed: Vec<Vec<u8>> = names_in(dir.as_fd())
            .unwrap()
            .into_iter()
            .map(|c| c.into_bytes())
            .collect();
        listed.sort();
        assert_eq!(listed, made);
        // Read to its end: nothing more from the same descriptor.
        assert!(names_in(dir.as_fd()).unwrap().is_empty());

        std::os::unix::fs::symlink(t.path().join(odd), t.path().join("link")).unwrap();
        for p in [
            t.path().join("link"),
            t.path().join("link/../link/."),
            PathBuf::from("/etc/../etc//passwd"),
        ] {
            assert_eq!(
                canonicalize(&p).unwrap(),
                std::fs::canonicalize(&p).unwrap()
            );
        }
        let gone = t.path().join("gone");
        assert_eq!(
            canonicalize(&gone).unwrap_err().kind(),
            std::fs::canonicalize(&gone).unwrap_err().kind()
        );
        assert_eq!(
            canonicalize(Path::new("a\0b")).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
    }

    /// `root_of` is `/proc/PID/root` followed: for this process, the root
    /// directory it sees.
    #[test]
    fn root_of_is_the_root_a_process_sees() {
        let proc = open_dir(Path::new("/proc")).unwrap();
        let (id, (dev, ino)) = root_of(proc.as_fd(), std::process::id() as i32).unwrap();
        let root = std::fs::metadata("/").unwrap();
        assert_eq!((dev, ino), (root.dev(), root.ino()));
        assert_eq!(
            id,
            mount_of(open_path(Path::new("/")).unwrap().as_fd())
                .unwrap()
                .0
        );
        assert!(root_of(proc.as_fd(), i32::MAX).is_err());
    }
}
