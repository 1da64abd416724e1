//! Which binds of DIR onto itself chroot-tool made. A bind of a directory
//! onto itself has the same shape whoever made it (kubelet binds
//! `/var/lib/kubelet` onto itself; users do it by hand), so the shape alone
//! never makes a directory a sandbox. When `on` makes its self-bind it
//! records it, before attaching it, in a file named by the mount namespace
//! and the mount id: `/run/chroot-tool/on/<mntns>-<id>`, a root-only
//! directory on the host side, out of the sandbox's reach, gone at reboot
//! with the mounts it speaks of. The record holds the mount's unique id
//! (`STATX_MNT_ID_UNIQUE`: the kernel reuses the short ids of mountinfo,
//! never these) and DIR's identity (device and inode: the same under every
//! spelling, alias or rename of DIR). A self-bind counts as the sandbox's
//! only when its record is there and both match. `CHROOT_TOOL_RUN_DIR`
//! moves the directory (the tests give each test its own).
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::sys;

/// chroot-tool's directory on the host side: `/run/chroot-tool` for root,
/// `$XDG_RUNTIME_DIR/chroot-tool` (else `/run/user/UID/chroot-tool`) for a
/// normal user, or `$CHROOT_TOOL_RUN_DIR` (the records, DIR's locks and
/// the holders' pid files are below it). Decided once per process, by who
/// invoked it: a process that joined a holder's user namespace is root
/// there, and still keeps the invoking user's directory.
pub fn run_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Some(v) = std::env::var_os("CHROOT_TOOL_RUN_DIR").filter(|v| !v.is_empty()) {
            return PathBuf::from(v);
        }
        let uid = nix::unistd::geteuid();
        if uid.is_root() {
            return PathBuf::from("/run/chroot-tool");
        }
        std::env::var_os("XDG_RUNTIME_DIR")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .unwrap_or_else(|| PathBuf::from(format!("/run/user/{uid}")))
            .join("chroot-tool")
    })
    .clone()
}

/// The records' directory.
fn records() -> PathBuf {
    run_dir().join("on")
}

/// This process's mount namespace (the inode of `/proc/self/ns/mnt`),
/// read once and again after [`namespace_changed`].
fn mntns() -> u64 {
    use std::sync::atomic::Ordering;
    match MNTNS.load(Ordering::Relaxed) {
        0 => {
            let ns = std::fs::metadata("/proc/self/ns/mnt").map_or(0, |m| m.ino());
            MNTNS.store(ns, Ordering::Relaxed);
            ns
        }
        ns => ns,
    }
}

static MNTNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// This process entered another mount namespace (a holder's).
pub fn namespace_changed() {
    MNTNS.store(0, std::sync::atomic::Ordering::Relaxed);
    anything_may_have_changed();
}

/// Drops every record of the mount namespace `ns` (it is gone: its holder
/// ended with everything inside).
pub fn forget_namespace(ns: u64) {
    anything_may_have_changed();
    let Ok(rd) = std::fs::read_dir(records()) else {
        return;
    };
    let prefix = format!("{ns}-");
    for e in rd.flatten() {
        if e.file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(&prefix))
        {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

fn file(id: u64) -> PathBuf {
    records().join(format!("{}-{id}", mntns()))
}

/// A record whose owner may execute it is of a self-bind that `on` has
/// not finished: what the user mounted below DIR may not be on it yet.
/// The bit is set explicitly (no umask takes it away) and [`settle`]
/// clears it; no record of an earlier version has it.
const SETTLED: u32 = 0o600;
const UNFINISHED: u32 = 0o100;

/// The self-bind `id` is finished (see [`note`]).
pub fn settle(id: u64) -> io::Result<()> {
    std::fs::set_permissions(file(id), std::fs::Permissions::from_mode(SETTLED))?;
    anything_may_have_changed();
    Ok(())
}

/// Whether the self-bind `id` is recorded as not finished: an `on` was
/// killed before it was.
pub fn is_pending(id: u64) -> bool {
    std::fs::symlink_metadata(file(id)).is_ok_and(|m| m.mode() & UNFINISHED != 0)
}

/// What a record says: the mount's unique id (0 where the kernel has
/// none) and DIR's device and inode as the mount shows it; for a mount
/// that shows another directory than DIR's own (an overlay sandbox's
/// merged view), also DIR's own device and inode, which it covers.
#[derive(Debug, PartialEq, Eq)]
struct Record {
    unique: u64,
    dev: u64,
    ino: u64,
    covered: Option<(u64, u64)>,
    /// The unique ids of the mounts on top at the plan's targets, in the
    /// plan's order, when `on` last found its plan in place
    /// ([`mark_verified`], the last list in the file); written after
    /// `covers`, which earlier versions read up to, ignoring the rest.
    mounts: Option<Vec<u64>>,
}

impl Record {
    fn text(&self) -> String {
        let mut t = format!("v1 {} {} {}", self.unique, self.dev, self.ino);
        if let Some((d, i)) = self.covered {
            t.push_str(&format!(" covers {d} {i}"));
        }
        if let Some(ids) = &self.mounts {
            let ids: Vec<String> = ids.iter().map(u64::to_string).collect();
            t.push_str(&format!(" mounts {}", ids.join(",")));
        }
        t.push('\n');
        t
    }

    fn parse(text: &[u8]) -> Option<Record> {
        let text = std::str::from_utf8(text).ok()?;
        let mut w = text.split_whitespace();
        (w.next()? == "v1").then_some(())?;
        let mut n = || w.next()?.parse::<u64>().ok();
        let (unique, dev, ino) = (n()?, n()?, n()?);
        let (mut covered, mut mounts) = (None, None);
        while let Some(word) = w.next() {
            match word {
                "covers" => {
                    let mut n = || w.next()?.parse::<u64>().ok();
                    covered = Some((n()?, n()?));
                }
                // A list cut short (an append caught half done) is none:
                // the record itself stands.
                "mounts" => {
                    mounts = w
                        .next()
                        .and_then(|l| l.split(',').map(|n| n.parse::<u64>().ok()).collect());
                }
                // A later version's: what this one does not know of.
                _ => {}
            }
        }
        Some(Record {
            unique,
            dev,
            ino,
            covered,
            mounts,
        })
    }

    fn read(path: &Path) -> Option<Record> {
        use nix::fcntl::OFlag;
        let f = sys::open_file(
            path,
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK,
            0,
        )
        .ok()?;
        if !f.metadata().ok()?.is_file() {
            return None;
        }
        let mut bytes = Vec::new();
        f.take(READ_MAX).read_to_end(&mut bytes).ok()?;
        Record::parse(&bytes)
    }
}

/// DIR's device and inode.
fn identity(dir: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(dir).ok().map(|m| (m.dev(), m.ino()))
}

/// Records that `tree` (a detached bind of `dir`, or an overlay sandbox's
/// merged view, not attached yet) is the self-bind of `dir`; `pending`: as
/// not finished, until [`settle`].
pub fn note(dir: &Path, tree: BorrowedFd, pending: bool) -> io::Result<()> {
    let (id, _) = sys::mount_of(tree)?;
    let own = identity(dir).ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))?;
    let st = nix::sys::stat::fstat(tree)?;
    let (dev, ino) = (st.st_dev, st.st_ino);
    let record = Record {
        unique: sys::unique_mount_id(tree).unwrap_or(0),
        dev,
        ino,
        covered: (own != (dev, ino)).then_some(own),
        mounts: None,
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(records())?;
    write(id, &record, pending)
}

/// Writes the record of the self-bind `id` whole, in place of any before
/// (a new file renamed over it); `pending`: as not finished.
fn write(id: u64, record: &Record, pending: bool) -> io::Result<()> {
    let tmp = records().join(format!(".{}-{id}.{}", mntns(), std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(SETTLED)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)?;
    if pending {
        f.set_permissions(std::fs::Permissions::from_mode(SETTLED | UNFINISHED))?;
    }
    f.write_all(record.text().as_bytes())?;
    drop(f);
    std::fs::rename(&tmp, file(id))?;
    anything_may_have_changed();
    Ok(())
}

/// What a record of a self-bind says `run` may rely on without looking
/// further ([`ours_at`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    /// A kernel without unique mount ids (before Linux 6.8): no more than
    /// that each target has a mount of its own.
    NoIds,
    /// `on` has not found the plan in place since this record was made
    /// (or the record is of an earlier version): look as `on` does.
    Not,
    /// `on` found the plan in place with these mounts (unique ids) on top
    /// at its targets, in the plan's order: a mount made, moved or
    /// unmounted since at a target shows another one there.
    Mounts(Vec<u64>),
}

/// [`is_ours_at`], with what its record says was checked.
pub fn ours_at(fd: BorrowedFd, id: u64) -> Option<Checked> {
    let r = record_of(fd, id)?;
    if r.unique == 0 {
        return Some(Checked::NoIds);
    }
    if sys::unique_mount_id(fd) != Some(r.unique) {
        return None;
    }
    Some(match r.mounts {
        Some(ids) => Checked::Mounts(ids),
        None => Checked::Not,
    })
}

/// Notes in the record of the self-bind `id` (on top at DIR, open as
/// `fd`) that `on` has just found its plan in place, with the mounts
/// `ids` (unique ids, in the plan's order) on top at its targets
/// ([`Checked::Mounts`]). Nothing is written when the record says so
/// already.
pub fn mark_verified(fd: BorrowedFd, id: u64, ids: Vec<u64>) -> io::Result<()> {
    let mut r = record_of(fd, id).ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))?;
    if r.unique == 0
        || sys::unique_mount_id(fd) != Some(r.unique)
        || r.mounts.as_ref() == Some(&ids)
    {
        return Ok(());
    }
    // Appended to the record, not the record written again: a file renamed
    // over another is written out at once (ext4's `auto_da_alloc`), and
    // `off` then paid a quarter of a millisecond to unlink it. A reader that
    // catches the append half done finds no list or a short one: nothing
    // it may rely on, as before `on` marked it. The last list counts; a
    // record grown past half of what is read of it is written whole again.
    let path = file(id);
    let grown = std::fs::symlink_metadata(&path).map_or(0, |m| m.len());
    if grown > READ_MAX / 2 {
        r.mounts = Some(ids);
        return write(id, &r, is_pending(id));
    }
    let list: Vec<String> = ids.iter().map(u64::to_string).collect();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)?;
    f.write_all(format!("mounts {}\n", list.join(",")).as_bytes())?;
    anything_may_have_changed();
    Ok(())
}

/// What is read of a record.
const READ_MAX: u64 = 4096;

/// Whether the mount `id` at `dir` is a self-bind chroot-tool made.
pub fn is_ours(dir: &Path, id: u64) -> bool {
    let keep = KEEP.load(std::sync::atomic::Ordering::Relaxed);
    if keep {
        let answers = ANSWERS.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(a) = answers.iter().find(|a| a.0 == dir && a.1 == id) {
            return a.2;
        }
    }
    let Ok(fd) = sys::open_path(dir) else {
        return false;
    };
    let ours = match sys::mount_of(fd.as_fd()) {
        // The mount on top at `dir` (the usual case): its unique id too.
        Ok((top, _)) if top == id => is_ours_at(fd.as_fd(), id),
        // Covered: its unique id cannot be read from here.
        _ => covered_is_ours(dir, fd.as_fd(), id),
    };
    if keep {
        let mut answers = ANSWERS.lock().unwrap_or_else(|e| e.into_inner());
        answers.push((dir.to_path_buf(), id, ours));
    }
    ours
}

/// The answers [`is_ours`] gave within one operation (see
/// [`within_one_operation`]), by DIR and mount id.
static ANSWERS: std::sync::Mutex<Vec<(PathBuf, u64, bool)>> = std::sync::Mutex::new(Vec::new());

static KEEP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Runs `f` (one `off`, under the sandbox's lock), within which
/// [`is_ours`] answers the same question once: `off` asks about the
/// self-bind each time it looks at the mount table. Outside, every answer
/// is read afresh (a mount id is taken again once its mount is gone);
/// within, [`anything_may_have_changed`] starts afresh, as writing or
/// dropping a record does.
pub fn within_one_operation<T>(f: impl FnOnce() -> T) -> T {
    use std::sync::atomic::Ordering;
    /// Ends the operation however `f` ends (a panic too).
    struct End;
    impl Drop for End {
        fn drop(&mut self) {
            KEEP.store(false, Ordering::Relaxed);
            anything_may_have_changed();
        }
    }
    KEEP.store(true, Ordering::Relaxed);
    let _end = End;
    f()
}

/// Something ran that could have mounted or unmounted (a `stop`, a process
/// ending), or this process wrote or dropped a record or entered another
/// mount namespace: the answers kept so far are dropped.
pub fn anything_may_have_changed() {
    ANSWERS.lock().unwrap_or_else(|e| e.into_inner()).clear();
}

/// [`is_ours`] for the mount `id` on top at DIR, open as `fd`: the
/// identity and the unique id are read from that descriptor, not from
/// DIR's path again.
pub fn is_ours_at(fd: BorrowedFd, id: u64) -> bool {
    ours_at(fd, id).is_some()
}

/// [`is_ours`] for the mount `id` at `dir` with something else mounted
/// over it (DIR open as `fd`, leading to what is on top): `id` is in the
/// stack of mounts DIR's path leads through (`mountinfo::stack_at`; a
/// self-bind hidden by a mount over a directory above DIR is not), and is
/// the mount its record names: by the record's 64-bit id, never reused
/// (what is mounted over DIR may show another directory); for a record
/// without one, by the identity of what DIR shows (another self-bind of
/// DIR over it shows the same directory). Before Linux 6.8 (no
/// `statmount`), by that identity alone.
fn covered_is_ours(dir: &Path, fd: BorrowedFd, id: u64) -> bool {
    let Some(r) = Record::read(&file(id)) else {
        return false;
    };
    let Ok(Some(stack)) = crate::mountinfo::stack_at(dir) else {
        return record_of(fd, id).is_some();
    };
    stack.iter().any(|m| {
        m.id == id
            && Path::new(&m.point) == dir
            && match r.unique {
                0 => record_of(fd, id).is_some(),
                u => m.unique == u,
            }
    })
}

/// The record of the mount `id` when it names the directory open as `fd`
/// (its device and inode).
fn record_of(fd: BorrowedFd, id: u64) -> Option<Record> {
    let r = Record::read(&file(id))?;
    let st = nix::sys::stat::fstat(fd).ok()?;
    ((st.st_dev, st.st_ino) == (r.dev, r.ino)).then_some(r)
}

/// DIR's own device and inode when the mount on top at `dir` is an
/// overlay sandbox's merged view that `on` made (which shows other ones):
/// what names DIR's lock whether it is on or off.
pub fn covered(dir: &Path) -> Option<(u64, u64)> {
    let fd = sys::open_path(dir).ok()?;
    let (id, root) = sys::mount_of(fd.as_fd()).ok()?;
    if !root {
        return None;
    }
    let r = Record::read(&file(id))?;
    let st = nix::sys::stat::fstat(fd.as_fd()).ok()?;
    ((st.st_dev, st.st_ino) == (r.dev, r.ino)).then_some(r.covered?)
}

/// Where a self-bind of the sandbox whose root directory is `id` (device,
/// inode) is mounted now in this mount namespace, if one is: by its
/// record and its 64-bit mount id, whatever path DIR was turned on by (a
/// bind of DIR, or of a directory above it, elsewhere). Nothing for a
/// record without a 64-bit id (before Linux 6.8).
pub fn self_bind_of(id: (u64, u64)) -> Option<PathBuf> {
    on_here(|r| r.covered.is_none() && (r.dev, r.ino) == id, None)
}

/// The mount point of a mount recorded in this namespace whose record
/// `wanted`, still mounted (and of type `fstype`, when given).
fn on_here(wanted: impl Fn(&Record) -> bool, fstype: Option<&str>) -> Option<PathBuf> {
    let prefix = format!("{}-", mntns());
    std::fs::read_dir(records()).ok()?.flatten().find_map(|e| {
        if !e.file_name().to_str()?.starts_with(&prefix) {
            return None;
        }
        let r = Record::read(&e.path())?;
        if !wanted(&r) || r.unique == 0 {
            return None;
        }
        let m = sys::mounts::stat(r.unique).ok()?;
        fstype
            .is_none_or(|t| m.fstype == t)
            .then(|| PathBuf::from(m.point))
    })
}

/// Where the merged view of the overlay sandbox whose own directory is
/// `own` (device, inode) is mounted now in this mount namespace, if it
/// is: by its record and its 64-bit mount id, wherever DIR was moved or
/// renamed since, and whatever covers it. Nothing for a record without a
/// 64-bit id (before Linux 6.8).
pub fn view_of(own: (u64, u64)) -> Option<PathBuf> {
    on_here(|r| r.covered == Some(own), Some("overlay"))
}

/// Drops the record of the mount `id` (it was unmounted, or never attached).
pub fn forget(id: u64) {
    let _ = std::fs::remove_file(file(id));
    anything_may_have_changed();
}

/// Another mount namespace in which `dir` is on: a record of a self-bind
/// of `dir` (by identity: any spelling or alias) made in a namespace other
/// than ours that a process still holds. `Some(pid)` names such a process;
/// `Some(0)` when the namespace may be held by a process this pid namespace
/// cannot see. Records of namespaces no process holds are stale and dropped
/// (only where every process is visible). The namespace `except` (the
/// sandbox's own holder's, which `off` ends) does not count.
pub fn on_elsewhere(dir: &Path, except: Option<u64>) -> Option<i32> {
    on_elsewhere_of(identity(dir)?, except)
}

/// [`on_elsewhere`] of the sandbox whose own directory is `want` (device,
/// inode), wherever its path leads now.
pub fn on_elsewhere_of(want: (u64, u64), except: Option<u64>) -> Option<i32> {
    let me = mntns();
    let mut namespaces: Vec<(u64, PathBuf, Record)> = vec![];
    for e in std::fs::read_dir(records()).ok()?.flatten() {
        let name = e.file_name();
        let Some((ns, _)) = name.to_str().and_then(|n| n.split_once('-')) else {
            continue;
        };
        let Ok(ns) = ns.parse::<u64>() else { continue };
        if ns == me || Some(ns) == except {
            continue;
        }
        if let Some(r) =
            Record::read(&e.path()).filter(|r| (r.dev, r.ino) == want || r.covered == Some(want))
        {
            namespaces.push((ns, e.path(), r));
        }
    }
    if namespaces.is_empty() {
        return None;
    }
    let holders: Vec<(i32, u64)> = std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let ns = std::fs::metadata(e.path().join("ns/mnt")).ok()?.ino();
            Some((pid, ns))
        })
        .collect();
    let sees_all = crate::procs::sees_every_process();
    let mut found = None;
    for (ns, path, rec) in namespaces {
        match holders.iter().find(|(_, n)| *n == ns) {
            Some((pid, _)) if gone_from(&path, &rec, *pid, ns) => {
                let _ = std::fs::remove_file(path);
            }
            Some((pid, _)) => found = found.or(Some(*pid)),
            None if sees_all => {
                let _ = std::fs::remove_file(path);
            }
            None => found = found.or(Some(0)),
        }
    }
    found
}

/// Whether the record `rec` (at `path`), of the namespace numbered `ns`
/// that `pid` was found in, is of a mount that namespace does not hold:
/// its own namespace ended without `off`, and the kernel gave the number
/// again to this one (numbers come back as soon as they are free; the
/// 64-bit ids of mounts and namespaces never do). Asked only of a
/// finished record (an unfinished one's mount may not be attached yet)
/// with a unique id, and only where the kernel is seen to answer for that
/// namespace (it lists its root): else it is kept, as before.
fn gone_from(path: &Path, rec: &Record, pid: i32, ns: u64) -> bool {
    let finished = std::fs::symlink_metadata(path).is_ok_and(|m| m.mode() & UNFINISHED == 0);
    if !finished || rec.unique == 0 {
        return false;
    }
    // The namespace asked about is the one open here, still numbered `ns`
    // (the process may have entered another one since it was listed, or
    // its pid be another's): it lives as long as it is open.
    let Ok(f) = std::fs::File::open(format!("/proc/{pid}/ns/mnt")) else {
        return false;
    };
    if !f.metadata().is_ok_and(|m| m.ino() == ns) {
        return false;
    }
    let Some(ns_id) = sys::ns::mnt_ns_id_of_file(&f) else {
        return false;
    };
    matches!(sys::mounts::namespace_exists(ns_id), Ok(true))
        && matches!(sys::mounts::is_in(rec.unique, ns_id), Ok(false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_refuse_garbage() {
        let r = Record {
            unique: 1 << 40,
            dev: 2049,
            ino: 7,
            covered: None,
            mounts: None,
        };
        assert_eq!(Record::parse(r.text().as_bytes()), Some(r));
        let r = Record {
            unique: 1,
            dev: 50,
            ino: 2,
            covered: Some((2049, 7)),
            mounts: None,
        };
        assert_eq!(Record::parse(r.text().as_bytes()), Some(r));
        let r = Record {
            unique: 9,
            dev: 50,
            ino: 2,
            covered: Some((2049, 7)),
            mounts: Some(vec![12, 10, 11]),
        };
        assert_eq!(r.text(), "v1 9 50 2 covers 2049 7 mounts 12,10,11\n");
        assert_eq!(Record::parse(r.text().as_bytes()), Some(r));
        let r = Record {
            mounts: Some(vec![10]),
            ..Record::parse(b"v1 9 50 2").unwrap()
        };
        assert_eq!(Record::parse(r.text().as_bytes()), Some(r));
        // Appended lists: the last counts; one cut short is none.
        let r = Record::parse(b"v1 9 50 2\nmounts 1,2\nmounts 3,4\n").unwrap();
        assert_eq!(r.mounts, Some(vec![3, 4]));
        for cut in [
            &b"v1 9 50 2 mounts"[..],
            b"v1 9 50 2 mounts 1,x",
            b"v1 9 50 2 mounts 3,",
        ] {
            let r = Record::parse(cut).unwrap();
            assert_eq!((r.unique, r.mounts), (9, None));
        }
        assert!(Record::parse(b"v1 9 50 2 later 3").is_some());
        assert_eq!(Record::parse(b"/srv/sb"), None);
        assert_eq!(Record::parse(b"v1 1 2"), None);
        assert_eq!(Record::parse(b"v2 1 2 3"), None);
        assert_eq!(Record::parse(b"v1 x 2 3"), None);
    }
}
