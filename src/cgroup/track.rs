//! The sandbox's own cgroup, which `off` ends its processes by.
//!
//! What root starts inside a sandbox that is on in our mount namespace (a
//! run, a shell, `start`, `stop`) is started in it (`clone3` with
//! `CLONE_INTO_CGROUP`, see [`crate::sys::child::Steps::cgroup_dir`]), and
//! what that starts is in it too, wherever it goes: a mount namespace of
//! its own, a deeper chroot, a double fork. `off` reads its members
//! instead of looking at each process of the host, so what it costs does
//! not grow with the host's processes; and a process a killed run left is
//! found wherever it went.
//!
//! - Which: a cgroup v2 directory `chroot-tool-<ID>` below the v2 cgroup
//!   the tool itself is in (never at the hierarchy's root: what runs keeps
//!   the limits of the service or session that started it), no controller
//!   enabled in it: it only groups. `<ID>` is the 64-bit mount id of the
//!   sandbox's self-bind (`STATX_MNT_ID_UNIQUE`): each `on` makes a new
//!   one, and the kernel never gives it again.
//! - Its record: `RUN/cgroups/<ID>` (root's, out of the sandbox's reach),
//!   one line per directory (runs started from different cgroups each make
//!   one): its path as `/proc/self/cgroup` writes it. Written before the
//!   directory is made, so that a kill between the two leaves no directory
//!   unrecorded.
//! - `on` marks the new self-bind as tracked (`RUN/cgroups/<ID>.tracking`)
//!   before it attaches it. A process that cannot join (no cgroup v2
//!   mounted, a cgroup namespace other than the initial one, a run with
//!   limits of its own, a directory that cannot be made or is not root's)
//!   is recorded as `RUN/cgroups/<ID>.untracked` (or, failing that, the
//!   tracking mark is taken away; failing both, it is not started). `off`
//!   looks at every process of the host unless the tracking mark is there
//!   and the untracked one is not: so too for a sandbox turned on by an
//!   earlier version, and on a kernel without 64-bit mount ids (before
//!   Linux 6.8), where nothing is tracked.
//! - A process that entered by other means (`chroot DIR` by hand) is not in
//!   it: it keeps a mount of the sandbox busy, and `off` then looks at
//!   every process too (see `Sandbox::turn_off`).
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::procs::{self, Proc};
use crate::sys;

/// Where a cgroup v2 hierarchy may be mounted: alone (a v2 host), or
/// beside the v1 ones (a hybrid host).
const MOUNTS: [&str; 2] = ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"];

/// The records' directory.
fn records() -> PathBuf {
    crate::owned::run_dir().join("cgroups")
}

fn record(id: u64) -> PathBuf {
    records().join(id.to_string())
}

fn untracked_mark(id: u64) -> PathBuf {
    records().join(format!("{id}.untracked"))
}

fn tracking_mark(id: u64) -> PathBuf {
    records().join(format!("{id}.tracking"))
}

/// Whether `path` is there; `None` when that cannot be told.
fn there(path: &Path) -> Option<bool> {
    match fs::symlink_metadata(path) {
        Ok(_) => Some(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Some(false),
        Err(_) => None,
    }
}

/// Records that what is started in the sandbox whose new self-bind has
/// the 64-bit id `id` is tracked from now on (`on`, before it attaches the
/// self-bind). Without this mark (a sandbox turned on by an earlier
/// version, a kernel without 64-bit mount ids) `off` looks at every
/// process.
pub fn started(id: Option<u64>) -> io::Result<()> {
    // Root's sandboxes on in our namespace only: a holder's are not
    // tracked (its `off` ends its namespaces).
    let Some(id) = id.filter(|_| crate::audit::invoked_as_root() && !crate::holder::in_setup())
    else {
        return Ok(());
    };
    mark(&tracking_mark(id))
}

/// Makes the (empty) mark `path` in the records' directory.
fn mark(path: &Path) -> io::Result<()> {
    make_records()?;
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map(drop)
}

/// Whether we are in the initial cgroup namespace. In another one,
/// `/proc/self/cgroup` writes paths from that namespace's root, which the
/// mount need not show as its own root: a cgroup made there could land at
/// the hierarchy's root, out of the limits of the one we are in; and the
/// records (paths from the initial namespace's root) may not be where the
/// mount shows them.
fn initial_cgroup_ns() -> bool {
    // PROC_CGROUP_INIT_INO
    std::fs::metadata("/proc/self/ns/cgroup")
        .is_ok_and(|m| std::os::unix::fs::MetadataExt::ino(&m) == 0xEFFF_FFFB)
}

/// The cgroup v2 mount, if one is where it is mounted on every host
/// (looked for once per process).
fn v2_mount() -> Option<&'static str> {
    static FOUND: std::sync::OnceLock<Option<&'static str>> = std::sync::OnceLock::new();
    *FOUND.get_or_init(|| {
        MOUNTS.into_iter().find(|m| {
            nix::sys::statfs::statfs(*m)
                .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
        })
    })
}

/// Our own v2 cgroup, as `/proc/self/cgroup` writes it (`0::PATH`), when
/// it is a plain path below the namespace's root.
fn own_v2() -> Option<String> {
    let text = sys::read_proc(Path::new("/proc/self/cgroup")).ok()?;
    let text = String::from_utf8(text).ok()?;
    let path = text.lines().find_map(|l| l.strip_prefix("0::"))?;
    plain(path).then(|| path.trim_end_matches('/').to_string())
}

/// A cgroup path that leads where it says: absolute, no `..` (a cgroup
/// outside our cgroup namespace's root), no `.`, no line break.
fn plain(path: &str) -> bool {
    path.starts_with('/') && !path.contains('\n') && path.split('/').all(|c| c != ".." && c != ".")
}

/// The 64-bit mount id of the sandbox's root `root` (its self-bind), the
/// key of its cgroup; `None` on a kernel without one.
pub fn id_of(root: BorrowedFd) -> Option<u64> {
    sys::unique_mount_id(root)
}

/// The sandbox's cgroup for a process to be started in the sandbox whose
/// self-bind is `root`: its directory, open for the child to be started
/// in; made (and recorded) when it is not there yet. `Ok(None)` when it
/// cannot be had (recorded as such, see the module's text); an error when
/// that could not be recorded either: `off` would not know to look for
/// the process, which must then not start.
pub fn join(root: BorrowedFd) -> io::Result<Option<OwnedFd>> {
    let Some(id) = id_of(root) else {
        return Ok(None);
    };
    let joined = v2_mount()
        .filter(|_| initial_cgroup_ns())
        .zip(own_v2())
        .and_then(|(mount, own)| open_or_make(id, mount, &format!("{own}/chroot-tool-{id}")));
    if joined.is_none() {
        untracked(id)?;
    }
    Ok(joined)
}

/// Records that a process started in the sandbox keyed `id` is not in its
/// cgroup (a run with limits of its own): the untracked mark, or, if that
/// cannot be written, the tracking mark taken away (either way `off` then
/// looks at every process); an error when neither could be done.
fn untracked(id: u64) -> io::Result<()> {
    match mark(&untracked_mark(id)) {
        Ok(()) => Ok(()),
        Err(e) => match fs::remove_file(tracking_mark(id)) {
            Ok(()) => Ok(()),
            Err(r) if r.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(_) => Err(io::Error::new(
                e.kind(),
                format!("recording under {}: {e}", crate::show::path(records())),
            )),
        },
    }
}

/// `untracked`, for the sandbox whose self-bind is `root`.
pub fn untracked_at(root: BorrowedFd) -> io::Result<()> {
    match id_of(root) {
        Some(id) => untracked(id),
        None => Ok(()),
    }
}

fn make_records() -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(records())
}

/// The cgroup directory `dir`, open as `CLONE_INTO_CGROUP` takes it, if
/// it is root's: one made by another user (in a subtree delegated to
/// them) is theirs to fill, and `off` would end what they put in it.
fn open_cgroup(dir: &Path) -> io::Result<OwnedFd> {
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_CLOEXEC | libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(dir)?;
    if std::os::unix::fs::MetadataExt::uid(&f.metadata()?) != 0 {
        return Err(io::Error::from(io::ErrorKind::PermissionDenied));
    }
    Ok(f.into())
}

fn open_or_make(id: u64, mount: &str, rel: &str) -> Option<OwnedFd> {
    let dir = PathBuf::from(format!("{mount}{rel}"));
    match open_cgroup(&dir) {
        Ok(f) => return Some(f),
        Err(e) if e.kind() != io::ErrorKind::NotFound => return None,
        Err(_) => {}
    }
    make_records().ok()?;
    let mut rec = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(record(id))
        .ok()?;
    rec.write_all(format!("{rel}\n").as_bytes()).ok()?;
    match fs::DirBuilder::new().mode(0o755).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(_) => return None,
    }
    open_cgroup(&dir).ok()
}

/// What [`end`] did.
#[derive(Debug, Default)]
pub struct Ended {
    /// The processes it ended (their pids).
    pub processes: Vec<i32>,
    /// Those still in the sandbox's cgroup at the end.
    pub alive: Vec<Proc>,
    /// Whether every process started in the sandbox was in its cgroup (no
    /// other was started untracked since `on`): then no process of the
    /// host needs a look of its own.
    pub complete: bool,
}

/// The cgroup directories recorded for the sandbox keyed `id`.
fn recorded(id: u64) -> Vec<PathBuf> {
    let Some(mount) = v2_mount() else {
        return vec![];
    };
    let Ok(text) = fs::read_to_string(record(id)) else {
        return vec![];
    };
    let mut out: Vec<PathBuf> = Vec::new();
    for rel in text.lines().filter(|l| plain(l)) {
        let top = PathBuf::from(format!("{mount}{rel}"));
        if !out.contains(&top) {
            out.push(top);
        }
    }
    out
}

/// Whether a process is in the cgroup `dir` or below (`cgroup.events`).
fn populated(dir: &Path) -> bool {
    fs::read_to_string(dir.join("cgroup.events"))
        .map_or(true, |t| !t.lines().any(|l| l == "populated 0"))
}

/// `tops` each followed by the cgroups below it (a process inside may
/// have made some): parents before children.
fn trees(tops: &[PathBuf]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for top in tops {
        let mut i = out.len();
        out.push(top.clone());
        // Breadth first, bounded: a cgroup tree made inside is no reason to
        // loop for ever.
        while i < out.len() && out.len() < 4096 {
            if let Ok(rd) = fs::read_dir(&out[i]) {
                for e in rd.flatten() {
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        out.push(e.path());
                    }
                }
            }
            i += 1;
        }
    }
    out
}

/// The pids in the cgroups `dirs`.
fn members(dirs: &[PathBuf]) -> Vec<i32> {
    let mut pids: Vec<i32> = dirs
        .iter()
        .filter_map(|d| super::members(d).ok())
        .flatten()
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// Ends the processes in the cgroup of the sandbox whose self-bind has the
/// 64-bit id `id` (`None`: a kernel without, or no self-bind): TERM, up to
/// `grace`, then KILL (`cgroup.kill` first: what forks meanwhile goes too).
pub fn end(id: Option<u64>, grace: Duration, waiting: &mut dyn FnMut(usize, Duration)) -> Ended {
    let Some(id) = id else {
        return Ended::default();
    };
    // Tracked since `on`, and nothing untracked since; where that cannot
    // be told, not complete.
    let complete = v2_mount().is_some()
        && initial_cgroup_ns()
        && there(&tracking_mark(id)) == Some(true)
        && there(&untracked_mark(id)) == Some(false)
        && there(&record(id)).is_some();
    let dirs = populated_trees(id);
    if dirs.is_empty() {
        return Ended {
            complete,
            ..Ended::default()
        };
    }
    // Held first, then kept only if still a member: a pid read from the
    // list may be given to another process before the pidfd is opened.
    let find = || -> Vec<(i32, OwnedFd)> {
        let held: Vec<(i32, OwnedFd)> = members(&dirs)
            .into_iter()
            .filter_map(|p| sys::pidfd::open(p).ok().map(|fd| (p, fd)))
            .collect();
        if held.is_empty() {
            return held;
        }
        let now = members(&dirs);
        held.into_iter()
            .filter(|(p, _)| now.binary_search(p).is_ok())
            .collect()
    };
    let kill = || {
        for d in &dirs {
            let _ = fs::write(d.join("cgroup.kill"), "1");
        }
    };
    let (processes, alive) = procs::end_found(&find, &kill, grace, waiting);
    Ended {
        processes,
        alive,
        complete,
    }
}

/// Once the sandbox keyed `id` is off: its cgroups removed (an empty one
/// only: rmdir removes nothing else), and with them its record.
pub fn forget(id: Option<u64>) {
    let Some(id) = id else {
        return;
    };
    // A record is removed only once each of its cgroups is seen gone; in
    // another cgroup namespace, only once each was removed here (its path
    // may not be where the mount shows it). A record of none (no run was
    // tracked) goes at once.
    let listed = fs::read_to_string(record(id)).is_ok_and(|t| !t.trim().is_empty());
    if listed && v2_mount().is_none() {
        return;
    }
    let exact = initial_cgroup_ns();
    let mut all = true;
    let gone = |d: &Path| match fs::remove_dir(d) {
        Ok(()) => true,
        Err(e) => exact && e.kind() == io::ErrorKind::NotFound,
    };
    for top in recorded(id) {
        // What was made below it first, if anything was.
        if !gone(&top) && !trees(&[top]).iter().rev().all(|d| gone(d)) {
            all = false;
        }
    }
    if all {
        let _ = fs::remove_file(record(id));
        let _ = fs::remove_file(untracked_mark(id));
        let _ = fs::remove_file(tracking_mark(id));
    }
}

/// The id of the sandbox at `dir` as `off` finds it: its self-bind's,
/// when what `dir` leads to now is the root of one of `self_binds` (the
/// mount ids of `on`'s self-binds at `dir` in the table read): never the
/// mount of a sandbox that `dir` lies in, nor one `dir` was renamed to
/// lead to since.
pub fn id_at(dir: &Path, self_binds: &[u64]) -> Option<u64> {
    let root = sys::open_root(dir).ok()?;
    match sys::mount_of(root.as_fd()) {
        Ok((short, true)) if self_binds.contains(&short) => id_of(root.as_fd()),
        _ => None,
    }
}

/// The cgroups recorded for the sandbox keyed `id` that hold a process,
/// each followed by those below it.
fn populated_trees(id: u64) -> Vec<PathBuf> {
    let tops: Vec<PathBuf> = recorded(id).into_iter().filter(|d| populated(d)).collect();
    trees(&tops)
}

/// The members of the cgroup `dir` (a descriptor of its directory), when
/// it has no cgroup below it (one made inside: `None`, look elsewhere).
pub fn members_at(dir: BorrowedFd) -> Option<Vec<i32>> {
    let read = |name: &str| -> Option<String> {
        let fd = nix::fcntl::openat(
            dir,
            name,
            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .ok()?;
        io::read_to_string(fs::File::from(fd)).ok()
    };
    let stat = read("cgroup.stat")?;
    if !stat.lines().any(|l| l == "nr_descendants 0") {
        return None;
    }
    Some(super::pids_of(&read("cgroup.procs")?))
}

/// The processes inside the sandbox at `dir`: those [`procs::inside`]
/// finds, and the members of its cgroup (wherever they went), each once;
/// `self_binds` as [`id_at`] takes them.
pub fn inside(dir: &Path, self_binds: &[u64]) -> Vec<Proc> {
    let mut found = procs::inside(dir);
    let Some(id) = id_at(dir, self_binds) else {
        return found;
    };
    for pid in members(&populated_trees(id)) {
        if !found.iter().any(|p| p.pid == pid) {
            found.push(procs::named_pid(pid));
        }
    }
    found.sort_by_key(|p| p.pid);
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_cgroup_paths_are_used() {
        assert!(plain("/"));
        assert!(plain("/user.slice/user-0.slice/session-1.scope"));
        assert!(plain("/a b/c"));
        assert!(!plain("/../../x"));
        assert!(!plain("/a/./b"));
        assert!(!plain("relative"));
        assert!(!plain("/a\n/b"));
        assert!(!plain(""));
    }
}
