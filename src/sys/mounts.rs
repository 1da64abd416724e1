//! `listmount(2)` and `statmount(2)` (Linux 6.8): the mount tree asked
//! about one mount at a time, by the 64-bit ids the kernel never reuses,
//! instead of the whole table as text. `ENOSYS` on older kernels (and on
//! architectures whose numbers are not listed here): callers fall back to
//! `/proc/self/mountinfo`.
use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::OsStringExt;

// The same numbers in the one table every architecture shares since 5.1
// (alpha, mips and ia64 have their own; not listed: ENOSYS there).
const SYSCALLS: Option<(libc::c_long, libc::c_long)> = if cfg!(any(
    target_arch = "x86_64",
    target_arch = "x86",
    target_arch = "aarch64",
    target_arch = "arm",
    target_arch = "riscv64",
    target_arch = "loongarch64",
    target_arch = "powerpc64",
    target_arch = "s390x"
)) {
    Some((457, 458))
} else {
    None
};

/// `LSMT_ROOT`: the root mount of this process's mount namespace.
pub const ROOT: u64 = u64::MAX;

// What statmount is asked for: all of Linux 6.8's first set.
const SB_BASIC: u64 = 0x1;
const MNT_BASIC: u64 = 0x2;
const PROPAGATE_FROM: u64 = 0x4;
const MNT_ROOT: u64 = 0x8;
const MNT_POINT: u64 = 0x10;
const FS_TYPE: u64 = 0x20;
const WANT: u64 = SB_BASIC | MNT_BASIC | PROPAGATE_FROM | MNT_ROOT | MNT_POINT | FS_TYPE;

/// `struct mnt_id_req`, first version.
#[repr(C)]
struct Req {
    size: u32,
    spare: u32,
    mnt_id: u64,
    param: u64,
}

/// `struct mnt_id_req`, second version (Linux 6.11): with the mount
/// namespace asked about.
#[repr(C)]
struct ReqNs {
    size: u32,
    spare: u32,
    mnt_id: u64,
    param: u64,
    mnt_ns_id: u64,
}

/// The fixed part of `struct statmount` (512 bytes in every version; the
/// strings follow it).
#[repr(C)]
#[derive(Clone, Copy)]
struct Raw {
    size: u32,
    mnt_opts: u32,
    mask: u64,
    sb_dev_major: u32,
    sb_dev_minor: u32,
    sb_magic: u64,
    sb_flags: u32,
    fs_type: u32,
    mnt_id: u64,
    mnt_parent_id: u64,
    mnt_id_old: u32,
    mnt_parent_id_old: u32,
    mnt_attr: u64,
    mnt_propagation: u64,
    mnt_peer_group: u64,
    mnt_master: u64,
    propagate_from: u64,
    mnt_root: u32,
    mnt_point: u32,
    rest: [u64; 50],
}
const FIXED: usize = std::mem::size_of::<Raw>();
const _: () = assert!(FIXED == 512);

/// What statmount says of one mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountStat {
    /// The 64-bit ids (never reused).
    pub unique: u64,
    pub parent_unique: u64,
    /// The ids mountinfo and `STATX_MNT_ID` give.
    pub id: u64,
    pub parent: u64,
    pub dev: (u32, u32),
    /// `MOUNT_ATTR_*`.
    pub attr: u64,
    /// `MS_SHARED`, `MS_SLAVE`, `MS_PRIVATE`, `MS_UNBINDABLE`.
    pub propagation: u64,
    pub peer_group: u64,
    pub master: u64,
    pub propagate_from: u64,
    pub root: OsString,
    pub point: OsString,
    pub fstype: String,
}

fn numbers() -> io::Result<(libc::c_long, libc::c_long)> {
    SYSCALLS.ok_or_else(|| io::Error::from_raw_os_error(libc::ENOSYS))
}

/// The mount with the 64-bit id `unique`, in this mount namespace.
pub fn stat(unique: u64) -> io::Result<MountStat> {
    let (nr, _) = numbers()?;
    let req = Req {
        size: std::mem::size_of::<Req>() as u32,
        spare: 0,
        mnt_id: unique,
        param: WANT,
    };
    // On the stack as a rule (no allocation, no page to fault in); on the
    // heap only for paths longer than about 3 KiB in all.
    let mut small = [0u64; 512];
    let mut large: Vec<u64> = vec![];
    let mut buf: &mut [u64] = &mut small;
    loop {
        let len = std::mem::size_of_val(buf);
        // SAFETY: the kernel writes at most `len` bytes into `buf`.
        let r = unsafe { libc::syscall(nr, &req as *const Req, buf.as_mut_ptr(), len, 0) };
        if r == 0 {
            break;
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EOVERFLOW) || len >= 1 << 20 {
            return Err(e);
        }
        large.resize((len / 8) * 4, 0);
        buf = &mut large;
    }
    // SAFETY: `buf` holds at least FIXED bytes, aligned for u64.
    let raw: Raw = unsafe { std::ptr::read(buf.as_ptr().cast::<Raw>()) };
    if raw.mask & WANT != WANT {
        return Err(io::Error::from_raw_os_error(libc::ENOSYS));
    }
    let bytes: &[u8] =
        // SAFETY: u64s seen as the bytes they are, within the buffer.
        unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), std::mem::size_of_val(buf)) };
    let end = (raw.size as usize).min(bytes.len());
    let text = |off: u32| -> io::Result<Vec<u8>> {
        let s = bytes
            .get(FIXED + off as usize..end)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
        let n = s
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
        Ok(s[..n].to_vec())
    };
    Ok(MountStat {
        unique: raw.mnt_id,
        parent_unique: raw.mnt_parent_id,
        id: raw.mnt_id_old.into(),
        parent: raw.mnt_parent_id_old.into(),
        dev: (raw.sb_dev_major, raw.sb_dev_minor),
        attr: raw.mnt_attr,
        propagation: raw.mnt_propagation,
        peer_group: raw.mnt_peer_group,
        master: raw.mnt_master,
        propagate_from: raw.propagate_from,
        root: OsString::from_vec(text(raw.mnt_root)?),
        point: OsString::from_vec(text(raw.mnt_point)?),
        fstype: String::from_utf8_lossy(&text(raw.fs_type)?).into_owned(),
    })
}

/// The mount the file `fd` names lies on (its 64-bit id from `statx`).
pub fn stat_of(fd: std::os::fd::BorrowedFd) -> io::Result<MountStat> {
    let unique =
        super::unique_mount_id(fd).ok_or_else(|| io::Error::from_raw_os_error(libc::ENOSYS))?;
    stat(unique)
}

/// The 64-bit ids of every mount below the mount `unique` (mounted on it,
/// directly or not), in the order they were made.
pub fn list(unique: u64) -> io::Result<Vec<u64>> {
    let (_, nr) = numbers()?;
    let mut out: Vec<u64> = vec![];
    let mut chunk: Vec<u64> = vec![0; 256];
    loop {
        let req = Req {
            size: std::mem::size_of::<Req>() as u32,
            spare: 0,
            mnt_id: unique,
            param: out.last().copied().unwrap_or(0),
        };
        // SAFETY: the kernel writes at most `chunk.len()` ids into `chunk`.
        let r =
            unsafe { libc::syscall(nr, &req as *const Req, chunk.as_mut_ptr(), chunk.len(), 0) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = r as usize;
        out.extend_from_slice(&chunk[..n.min(chunk.len())]);
        if n < chunk.len() {
            return Ok(out);
        }
    }
}

/// Whether the mount with the 64-bit id `unique` is in the mount namespace
/// with the 64-bit id `ns_id` (`NS_GET_MNTNS_ID`; Linux 6.11): `Ok(false)`
/// on ENOENT, which the kernel also says to a caller without
/// `CAP_SYS_ADMIN` over that namespace (so ask [`namespace_exists`] first).
pub fn is_in(unique: u64, ns_id: u64) -> io::Result<bool> {
    let (nr, _) = numbers()?;
    let mut buf = [0u64; FIXED / 8];
    ask_in_ns(nr, unique, SB_BASIC, ns_id, &mut buf, false)
}

/// Whether the mount namespace with the 64-bit id `ns_id`
/// (`NS_GET_MNTNS_ID`) still exists: its root mount listed (`Ok(false)`:
/// ENOENT). The kernel says ENOENT too to a caller without
/// `CAP_SYS_ADMIN` over that namespace, so only a namespace this answered
/// `true` for before can be told gone by a later `false`; a kernel before
/// 6.11 refuses the question.
pub fn namespace_exists(ns_id: u64) -> io::Result<bool> {
    let (_, nr) = numbers()?;
    ask_in_ns(nr, ROOT, 0, ns_id, &mut [0u64; 1], true)
}

/// One call of statmount or listmount (`nr`) about the mount `mnt_id` in
/// the namespace `ns_id`, its answer in `buf` (`ids`: listmount's, which
/// counts its room in ids; statmount counts it in bytes): whether the
/// kernel found them (`Ok(false)` on ENOENT).
fn ask_in_ns(
    nr: libc::c_long,
    mnt_id: u64,
    param: u64,
    ns_id: u64,
    buf: &mut [u64],
    ids: bool,
) -> io::Result<bool> {
    let req = ReqNs {
        size: std::mem::size_of::<ReqNs>() as u32,
        spare: 0,
        mnt_id,
        param,
        mnt_ns_id: ns_id,
    };
    let len = if ids {
        buf.len()
    } else {
        std::mem::size_of_val(buf)
    };
    // SAFETY: the kernel writes at most `len` (ids or bytes, as it counts
    // them) into `buf`, which holds that many.
    let r = unsafe { libc::syscall(nr, &req as *const ReqNs, buf.as_mut_ptr(), len, 0) };
    if r >= 0 {
        return Ok(true);
    }
    match io::Error::last_os_error() {
        e if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
        e => Err(e),
    }
}
