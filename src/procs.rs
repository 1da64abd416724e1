//! Processes inside a sandbox and ending them: TERM, a grace period, KILL.
//!
//! A process is the sandbox's only by kernel identity, never because the
//! text of its root or its root's device and inode look like DIR: it is in
//! this process's mount namespace, and its root directory lies on one of
//! the sandbox's own mounts (`on`'s self-bind at DIR, or a mount made on
//! it), compared by mount id. A sandbox without its self-bind has no
//! processes. Each process is held by a pidfd from before it is checked, so
//! a recycled pid is never signalled.
//!
//! A run with a mount namespace of its own (`-m`, `--pid`) has its
//! processes in another namespace, where our mount ids mean nothing: such a
//! process is the sandbox's when its root is DIR's root directory (device
//! and inode) and its nearest ancestor in our namespace (the run's
//! supervisor) holds a descriptor of the root of one of the sandbox's own
//! mounts (the root it launched into). An ephemeral run's root is its own
//! overlay over DIR's root: its processes are the sandbox's when that
//! supervisor also holds a descriptor of that very root (the overlay it
//! made for the run).
use std::fs;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::sys::pidfd;
use crate::{engine, mountinfo, sys};

#[derive(Debug, Clone, Serialize)]
pub struct Proc {
    pub pid: i32,
    /// The kernel's short name of its command, any bytes a process gave
    /// itself (escaped as paths are, in JSON).
    #[serde(serialize_with = "crate::show::serialize_os")]
    pub comm: std::ffi::OsString,
}

/// What makes a process the sandbox's: the ids of its own mounts, and the
/// mount namespace they are in (ours).
struct Members {
    mounts: Vec<u64>,
    ns: (u64, u64),
    /// DIR's root directory (device, inode).
    root: Option<(u64, u64)>,
    supervisors: std::sync::OnceLock<Vec<i32>>,
    /// `/proc`, open: every process is looked at relative to it.
    proc: OwnedFd,
    /// The sandbox's own mounts that may be fresh filesystems `on` made (a
    /// tmpfs or devpts mounted whole): where each lies below DIR, its
    /// device, and its device as the mount table writes it.
    fresh: Vec<(std::path::PathBuf, u64, String)>,
    /// Whether one of them is a host filesystem bound in (a mount outside
    /// the sandbox shows its device): read from the whole mount table,
    /// once, only when a process sees them all.
    shared: std::sync::OnceLock<bool>,
}

impl Members {
    /// The sandbox at `dir` as the mount table says now.
    fn of(dir: &Path) -> io::Result<Members> {
        Members::in_table(dir, &mountinfo::read()?)
    }

    /// The sandbox at `dir` as the mount table `mounts` says.
    fn in_table(dir: &Path, mounts: &[mountinfo::Mount]) -> io::Result<Members> {
        let ns = fs::metadata("/proc/self/ns/mnt")?;
        let own = engine::own_mounts(dir, mounts);
        let fresh = mounts
            .iter()
            .filter(|m| own.contains(&m.id) && matches!(m.fstype.as_str(), "tmpfs" | "devpts"))
            .filter(|m| m.root == Path::new("/"))
            .filter_map(|m| {
                let rel = m.point.strip_prefix(dir).ok()?;
                let (major, minor) = m.dev.split_once(':')?;
                let dev = libc::makedev(major.parse().ok()?, minor.parse().ok()?);
                Some((rel.to_path_buf(), dev, m.dev.clone()))
            })
            .collect();
        Ok(Members {
            mounts: own,
            fresh,
            shared: std::sync::OnceLock::new(),
            ns: (ns.dev(), ns.ino()),
            root: fs::metadata(dir).ok().map(|m| (m.dev(), m.ino())),
            supervisors: std::sync::OnceLock::new(),
            proc: open_proc()?,
        })
    }

    /// Is `pid` the sandbox's? It is when one of its threads is
    /// ([`any_view`]: threads made without sharing their root may each be
    /// elsewhere). Of each, its namespace first (a mount id means nothing
    /// in another one), then the mount its root lies on (the magic link
    /// followed to the root itself, never read as text).
    fn contains(&self, pid: i32) -> bool {
        if self.mounts.is_empty() {
            return false;
        }
        any_view(pid, |v| {
            if mnt_ns_at(v) != Some(self.ns) {
                return self.in_a_run(pid, v);
            }
            sys::open_path(&v.join("root"))
                .and_then(|root| sys::mount_of(root.as_fd()))
                .is_ok_and(|(id, _)| self.mounts.contains(&id))
        })
    }

    /// A first look, in one `statx` and without holding the process:
    /// could `pid` be the sandbox's at all (its root on one of the
    /// sandbox's mounts, or its root DIR's root directory)? Most of the
    /// host's processes are ruled out here; the others are held by a pidfd
    /// and checked by [`Members::contains`].
    fn may_contain(&self, pid: i32) -> bool {
        if self.mounts.is_empty() {
            return false;
        }
        let may = |root: io::Result<(u64, (u64, u64))>| match root {
            Ok((id, root)) => {
                self.mounts.contains(&id)
                    || Some(root) == self.root
                    || (ephemeral_like(root) && !self.in_our_ns(pid) && !kernel_thread(pid))
            }
            // Gone, or not ours to look at: `contains` decides the same.
            Err(_) => false,
        };
        // Each thread's root (threads made without sharing it may each
        // have one), the others only when the first does not answer yes.
        may(sys::root_of(self.proc.as_fd(), pid))
            || other_threads(pid)
                .into_iter()
                .any(|t| may(sys::root_of_thread(self.proc.as_fd(), pid, t)))
    }

    fn in_our_ns(&self, pid: i32) -> bool {
        mnt_ns(pid) == Some(self.ns)
    }

    /// `pid`, seen in `view` (one of its threads) in another mount
    /// namespace: a process of a run of the sandbox with a namespace of its
    /// own?
    fn in_a_run(&self, pid: i32, view: &Path) -> bool {
        let Ok(root) = fs::metadata(view.join("root")).map(|m| (m.dev(), m.ino())) else {
            return false;
        };
        let root_is_dir = Some(root) == self.root;
        if !root_is_dir && !ephemeral_like(root) {
            return false;
        }
        // Up to the first ancestor in our namespace.
        let mut at = pid;
        for _ in 0..64 {
            let Some(parent) = ppid(at).filter(|&p| p > 0) else {
                break;
            };
            if self.in_our_ns(parent) {
                if self.holds_own_root(parent) && (root_is_dir || holds(parent, root)) {
                    return true;
                }
                break;
            }
            at = parent;
        }
        // Left the run's process tree (a double fork reparents it to init):
        // a supervisor of the sandbox (a process of ours holding the root
        // of one of its mounts) still holds the run's mount namespace, or
        // the ephemeral root it lives in.
        let Some(ns) = mnt_ns_at(view) else {
            return false;
        };
        self.supervisors()
            .iter()
            .any(|&s| holds(s, ns) || (!root_is_dir && holds(s, root)))
            || self.sees_fresh(view)
    }

    /// Whether a mount outside the sandbox shows the device of one of
    /// [`Members::fresh`] (a host tmpfs bound in by `[bind]`, a host's
    /// /run holding resolv.conf): then they are not all fresh ones of `on`.
    /// The whole mount table, read once; unreadable, they count as shared.
    fn shared(&self) -> bool {
        *self.shared.get_or_init(|| {
            let Ok(all) = mountinfo::read() else {
                return true;
            };
            self.fresh.iter().any(|(_, _, dev)| {
                all.iter()
                    .any(|o| &o.dev == dev && !self.mounts.contains(&o.id))
            })
        })
    }

    /// Whether `pid` (rooted in DIR or a run's own overlay, in a mount
    /// namespace of its own) sees every one of the sandbox's fresh
    /// filesystems where it lies: its namespace was copied from ours since
    /// `on` (a run's `-m` or `--ephemeral`, or `unshare -m` by hand), and
    /// it uses the sandbox's /dev, /tmp, /run... This marks a run's process
    /// once the run that started it (its supervisor) has ended. Every one:
    /// a process elsewhere that binds one of them in is not the sandbox's.
    /// Looked up inside the process's root with no symlink followed: a link
    /// planted there leads nowhere. (A process that unmounts one of them
    /// in its namespace, or chroots deeper, is not found this way; nor any
    /// in a sandbox one of whose tmpfs mounts is a host one bound in.) The
    /// whole mount table is read only for a process that sees them all.
    fn sees_fresh(&self, view: &Path) -> bool {
        if self.fresh.is_empty() {
            return false;
        }
        let Ok(root) = sys::open_path(&view.join("root")) else {
            return false;
        };
        let sees = self.fresh.iter().all(|(rel, dev, _)| {
            sys::resolve_beneath(root.as_fd(), rel)
                .and_then(|fd| nix::sys::stat::fstat(fd.as_fd()).map_err(io::Error::from))
                .is_ok_and(|st| st.st_dev == *dev)
        });
        sees && !self.shared()
    }

    /// The processes in our namespace that hold the root of one of the
    /// sandbox's own mounts: the supervisors of its runs (looked for once).
    fn supervisors(&self) -> &[i32] {
        self.supervisors.get_or_init(|| {
            pids_in(self.proc.as_fd())
                .into_iter()
                .filter(|&p| self.in_our_ns(p) && self.holds_own_root(p))
                .collect()
        })
    }

    /// Whether `pid` holds a descriptor of the root of one of the sandbox's own mounts.
    fn holds_own_root(&self, pid: i32) -> bool {
        let Ok(fds) = at(pid, "fd", |p| fs::read_dir(p)) else {
            return false;
        };
        fds.flatten().any(|e| {
            sys::open_path(&e.path())
                .and_then(|fd| sys::mount_of(fd.as_fd()))
                .is_ok_and(|(id, is_root)| is_root && self.mounts.contains(&id))
        })
    }
}

/// Whether this process sees every process of the machine (it is in the
/// initial pid namespace, `PROC_PID_INIT_INO`): only then does a pid it
/// cannot find prove that a process is gone.
pub fn sees_every_process() -> bool {
    fs::metadata("/proc/self/ns/pid").is_ok_and(|m| m.ino() == 0xEFFF_FFFC)
}

/// The mount namespace of `pid` (device, inode of `/proc/PID/ns/mnt`), if
/// it can be seen.
fn mnt_ns(pid: i32) -> Option<(u64, u64)> {
    at(pid, "ns/mnt", |p| fs::metadata(p))
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

/// The mount namespace `view` (`/proc/PID` or `/proc/PID/task/TID`) shows.
fn mnt_ns_at(view: &Path) -> Option<(u64, u64)> {
    fs::metadata(view.join("ns/mnt"))
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

/// Whether `yes` holds of one of the views of `pid`'s threads: `/proc/PID`,
/// then, when it does not, `/proc/PID/task/TID` of each other thread.
/// Threads made without sharing their root and working directory
/// (`clone` without `CLONE_FS`) may each have a root and mount namespace of
/// their own, and the main thread may have ended while others run on (a
/// zombie shows none): a process is where any of its threads is.
pub fn any_view(pid: i32, mut yes: impl FnMut(&Path) -> bool) -> bool {
    views(pid).any(|v| yes(&v))
}

/// `look` at `/proc/PID/REL`; when that fails, at the same of each other
/// thread of `pid` (`/proc/PID/task/TID/REL`) until one answers. A process
/// whose main thread has exited while another runs on shows no namespaces,
/// root or descriptors at `/proc/PID` (its main thread is a zombie), and
/// would otherwise be taken for one that ended. Costs nothing more when the
/// first look answers.
pub fn at<T>(pid: i32, rel: &str, look: impl Fn(&Path) -> io::Result<T>) -> io::Result<T> {
    let mut views = views(pid).map(|v| look(&v.join(rel)));
    let first = views
        .next()
        .unwrap_or_else(|| Err(io::ErrorKind::NotFound.into()));
    match first {
        Ok(v) => Ok(v),
        Err(e) => views.find_map(Result::ok).ok_or(e),
    }
}

/// The views of `pid`'s threads: `/proc/PID`, then (looked for only when
/// asked for) `/proc/PID/task/TID` of each other thread.
fn views(pid: i32) -> impl Iterator<Item = PathBuf> {
    std::iter::once(PathBuf::from(format!("/proc/{pid}"))).chain(
        std::iter::once_with(move || other_threads(pid))
            .flatten()
            .map(move |t| PathBuf::from(format!("/proc/{pid}/task/{t}"))),
    )
}

/// The threads of `pid` other than its main thread (none looked for
/// when `/proc/PID/task` counts one thread: its links are 2 and one for
/// each).
fn other_threads(pid: i32) -> Vec<i32> {
    let task = format!("/proc/{pid}/task");
    if fs::metadata(&task).is_ok_and(|m| m.nlink() <= 3) {
        return vec![];
    }
    let Ok(tasks) = fs::read_dir(task) else {
        return vec![];
    };
    tasks
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&t| t != pid)
        .collect()
}

/// A root that may be a run's own (an ephemeral run's overlay, or a
/// filesystem its mount namespace made: a device of its own, major 0), to
/// be checked further.
fn ephemeral_like(root: (u64, u64)) -> bool {
    libc::major(root.0) == 0
}

/// The flag of a kernel thread in `/proc/PID/stat`.
const PF_KTHREAD: u64 = 0x0020_0000;

/// Whether `pid` is a kernel thread (never a sandbox's). kdevtmpfs, rooted
/// in a devtmpfs in a mount namespace of its own, would otherwise send
/// every `off` through the descriptors of every process of the host,
/// looking for the supervisor of a run it is not part of.
fn kernel_thread(pid: i32) -> bool {
    stat_of(pid)
        .and_then(|s| flags_of_stat(&s))
        .is_some_and(|f| f & PF_KTHREAD != 0)
}

/// Whether `pid` holds a descriptor of the file `id` (device, inode).
fn holds(pid: i32, id: (u64, u64)) -> bool {
    let Ok(fds) = at(pid, "fd", |p| fs::read_dir(p)) else {
        return false;
    };
    fds.flatten()
        .any(|e| fs::metadata(e.path()).is_ok_and(|m| (m.dev(), m.ino()) == id))
}

/// Processes as they are named to the user: `12 sleep, 13 sh`.
pub fn named(procs: &[Proc]) -> String {
    procs
        .iter()
        .map(|p| format!("{} {}", p.pid, crate::show::os(&p.comm)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `pid` with its name, as listed.
pub fn named_pid(pid: i32) -> Proc {
    Proc {
        pid,
        comm: comm(pid),
    }
}

fn comm(pid: i32) -> std::ffi::OsString {
    use std::os::unix::ffi::OsStringExt;
    let mut b = fs::read(format!("/proc/{pid}/comm")).unwrap_or_default();
    if b.last() == Some(&b'\n') {
        b.pop();
    }
    std::ffi::OsString::from_vec(b)
}

fn open_proc() -> io::Result<OwnedFd> {
    sys::open_dir(Path::new("/proc"))
}

/// Every process this one can see, but itself.
fn pids() -> Vec<i32> {
    open_proc().map_or_else(|_| vec![], |p| pids_in(p.as_fd()))
}

/// The processes whose `/proc/PID` belongs to `uid` (the directory always
/// shows the effective uid, dumpable or not), one `statx` each: a first
/// look that rules out the other users' processes before anything else is
/// read of them.
pub fn of_owner(uid: u32) -> Vec<i32> {
    let Ok(proc) = open_proc() else {
        return vec![];
    };
    pids_in(proc.as_fd())
        .into_iter()
        .filter(|&p| sys::owner_of(proc.as_fd(), p).is_ok_and(|u| u == uid))
        .collect()
}

/// [`pids`], read from `proc` (an open `/proc`), without the kernel's
/// own threads ([`kernel_threads`]).
fn pids_in(proc: BorrowedFd) -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut all = sys::proc_pids(proc).unwrap_or_default();
    let kernel = kernel_threads();
    all.retain(|&p| p != me && kernel.binary_search(&p).is_err());
    all
}

/// The children of kthreadd, sorted: the kernel's own threads, most of a
/// host's processes, never a sandbox's, a holder or in a run's namespace,
/// ruled out in one read instead of a look at each. (Beside them are the
/// user-mode helpers the kernel starts, such as modprobe or a
/// `core_pattern` pipe: root's configured programs, in the host's root.)
/// Empty unless this process sees every process and pid 2 is kthreadd: in
/// another pid namespace pid 2 is anyone's.
fn kernel_threads() -> Vec<i32> {
    let kthreadd = || {
        stat_of(2).is_some_and(|s| {
            s.starts_with("2 (kthreadd) ")
                && ppid_of_stat(&s) == Some(0)
                && flags_of_stat(&s).is_some_and(|f| f & PF_KTHREAD != 0)
        })
    };
    if !sees_every_process() || !kthreadd() {
        return vec![];
    }
    let Ok(text) = sys::read_proc(Path::new("/proc/2/task/2/children")) else {
        return vec![];
    };
    let mut pids = children_of_text(&text);
    pids.sort_unstable();
    pids
}

/// The pids of a `/proc/PID/task/TID/children` text.
fn children_of_text(text: &[u8]) -> Vec<i32> {
    String::from_utf8_lossy(text)
        .split_ascii_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect()
}

fn list(members: &Members) -> Vec<Proc> {
    pids_in(members.proc.as_fd())
        .into_iter()
        .filter(|&p| members.may_contain(p) && members.contains(p))
        .map(named_pid)
        .collect()
}

/// The processes inside the sandbox at `dir` (none when the mount table
/// cannot be read: nothing is the sandbox's by guess).
pub fn inside(dir: &Path) -> Vec<Proc> {
    Members::of(dir).map(|m| list(&m)).unwrap_or_default()
}

/// Ends every process inside the sandbox at `dir`: TERM, up to `grace` for
/// them to exit, then KILL. Repeats for processes that appear meanwhile.
/// Returns those ended (their pids) and those still alive at the end.
/// `waiting(n, grace)` is told when `n` processes are still running a moment
/// after TERM, before the wait of up to `grace` (for the caller to say so).
/// `mounts` is the mount table as read now.
pub fn end_all(
    dir: &Path,
    mounts: &[mountinfo::Mount],
    grace: Duration,
    waiting: &mut dyn FnMut(usize, Duration),
) -> io::Result<(Vec<i32>, Vec<Proc>)> {
    let members = Members::in_table(dir, mounts)?;
    let find = || held_where(&|p| members.may_contain(p), &|p| members.contains(p));
    Ok(end_found(&find, &|| {}, grace, waiting))
}

/// Every process (other than this one) for which `member` holds, held by a
/// pidfd from before it is asked; `may` first rules most out cheaply.
fn held_where(may: &dyn Fn(i32) -> bool, member: &dyn Fn(i32) -> bool) -> Vec<(i32, OwnedFd)> {
    pids()
        .into_iter()
        .filter(|&p| may(p))
        .filter_map(|p| pidfd::open(p).ok().map(|fd| (p, fd)))
        .filter(|(p, _)| member(*p))
        .collect()
}

/// A mount namespace, as [`end_namespace`] knows it.
#[derive(Debug, Clone, Copy)]
pub enum MntNs<'a> {
    /// A descriptor of it, which keeps its identity from being reused.
    Held(BorrowedFd<'a>),
    /// Its 64-bit id (`NS_GET_MNTNS_ID`), never given again.
    Id(u64),
}

/// Ends every process (other than this one) one of whose threads is in
/// the mount namespace `ns` ([`any_view`]): TERM, up to `grace`, KILL.
/// Returns how many there were. `among` gives the only processes that may
/// be in it (a cgroup's members), when it can: else every process is
/// looked at.
pub fn end_namespace(ns: MntNs, grace: Duration, among: &dyn Fn() -> Option<Vec<i32>>) -> usize {
    let in_ns: Box<dyn Fn(i32) -> bool> = match ns {
        MntNs::Held(fd) => {
            let Ok(st) = nix::sys::stat::fstat(fd) else {
                return 0;
            };
            let id = (st.st_dev, st.st_ino);
            Box::new(move |p| any_view(p, |v| mnt_ns_at(v) == Some(id)))
        }
        MntNs::Id(id) => {
            Box::new(move |p| any_view(p, |v| sys::ns::mnt_ns_id(&v.join("ns/mnt")) == Some(id)))
        }
    };
    let find = || -> Vec<(i32, OwnedFd)> {
        among()
            .unwrap_or_else(pids)
            .into_iter()
            .filter(|&p| in_ns(p))
            .filter_map(|p| pidfd::open(p).ok().map(|fd| (p, fd)))
            .filter(|(p, _)| in_ns(*p))
            .collect()
    };
    end_found(&find, &|| {}, grace, &mut |_, _| {}).0.len()
}

/// The processes (other than this one) for which `member` holds.
pub fn list_where(member: &dyn Fn(i32) -> bool) -> Vec<Proc> {
    pids()
        .into_iter()
        .filter(|&p| member(p))
        .map(named_pid)
        .collect()
}

/// Ends every process for which `member` holds, as [`end_all`] does.
/// `may` is a first look, before a process is held by a pidfd, that rules
/// most of the host's processes out cheaply (`|_| true` when there is none).
pub fn end_where(
    may: &dyn Fn(i32) -> bool,
    member: &dyn Fn(i32) -> bool,
    grace: Duration,
    waiting: &mut dyn FnMut(usize, Duration),
) -> (usize, Vec<Proc>) {
    let find = || held_where(may, member);
    let (ended, alive) = end_found(&find, &|| {}, grace, waiting);
    (ended.len(), alive)
}

/// Ends the processes `find` gives, held by a pidfd from before each was
/// found to be one to end (so that a recycled pid is never signalled):
/// TERM, up to `grace` for them to exit, then `kill` and KILL; again for
/// those `find` gives then (started meanwhile), up to five times. `kill`
/// is told before each KILL (to end at once, by other means, what the
/// pids cannot reach). Returns those ended (their pids, sorted) and those
/// still there.
pub fn end_found(
    find: &dyn Fn() -> Vec<(i32, OwnedFd)>,
    kill: &dyn Fn(),
    grace: Duration,
    waiting: &mut dyn FnMut(usize, Duration),
) -> (Vec<i32>, Vec<Proc>) {
    let mut seen = std::collections::HashSet::new();
    for _ in 0..5 {
        let held = find();
        if held.is_empty() {
            return (sorted(seen), vec![]);
        }
        seen.extend(held.iter().map(|(p, _)| *p));
        let told = std::cell::Cell::new(false);
        let waiting = std::cell::RefCell::new(&mut *waiting);
        let fds: Vec<BorrowedFd> = held.iter().map(|(_, fd)| fd.as_fd()).collect();
        let send = |sig| {
            if sig == libc::SIGKILL {
                kill();
            }
            for fd in &fds {
                let _ = pidfd::send_signal(*fd, sig);
            }
            // Said once, when processes are still there a moment after TERM
            // (those that end at once are not waited for that moment).
            if sig == libc::SIGTERM && !told.replace(true) {
                pidfd::wait_all_exit(&fds, Duration::from_millis(20));
                let n = fds.iter().filter(|fd| pidfd::alive(**fd)).count();
                if n > 0 {
                    (waiting.borrow_mut())(n, grace);
                }
            }
        };
        let running = || fds.iter().any(|fd| pidfd::alive(*fd));
        let pause = |d| pidfd::wait_exit(&fds, d);
        sys::process::term_grace_kill(send, running, pause, grace, Duration::from_secs(2));
    }
    let alive: Vec<Proc> = find().into_iter().map(|(pid, _)| named_pid(pid)).collect();
    // Held but still there: not ended.
    seen.retain(|p| alive.iter().all(|a| a.pid != *p));
    (sorted(seen), alive)
}

fn sorted(set: std::collections::HashSet<i32>) -> Vec<i32> {
    let mut v: Vec<i32> = set.into_iter().collect();
    v.sort_unstable();
    v
}

/// The parent pid in a `/proc/PID/stat` text (after the last `)`: comm may hold anything).
pub fn ppid_of_stat(stat: &str) -> Option<i32> {
    after_comm(stat)?.nth(1)?.parse().ok()
}

/// The flags (field 9) of a `/proc/PID/stat` text.
pub fn flags_of_stat(stat: &str) -> Option<u64> {
    after_comm(stat)?.nth(6)?.parse().ok()
}

/// The text of `/proc/PID/stat`. Its comm is whatever the process named
/// itself (`prctl(PR_SET_NAME)`: any bytes, `)` too), so it is read as
/// bytes, not as UTF-8, which such a name would make fail: the fields after
/// the last `)` are all that is read of it.
fn stat_of(pid: i32) -> Option<String> {
    let bytes = crate::sys::read_proc(Path::new(&format!("/proc/{pid}/stat"))).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// The fields of a `/proc/PID/stat` text after comm (state first).
fn after_comm(stat: &str) -> Option<std::str::SplitWhitespace<'_>> {
    Some(stat[stat.rfind(')')? + 1..].split_whitespace())
}

/// When `pid` started (field 22 of `/proc/PID/stat`, clock ticks after
/// boot): with the pid, the process's identity (a reused pid starts later).
pub fn start_time(pid: i32) -> Option<u64> {
    after_comm(&stat_of(pid)?)?.nth(19)?.parse().ok()
}

/// Whether `pid` is stopped (state `T`).
pub fn stopped(pid: i32) -> bool {
    stat_of(pid)
        .and_then(|s| Some(after_comm(&s)?.next()? == "T"))
        .unwrap_or(false)
}

/// The parent of `pid` (field 4 of `/proc/PID/stat`).
pub fn ppid(pid: i32) -> Option<i32> {
    ppid_of_stat(&stat_of(pid)?)
}

/// Sends `sig` to every descendant of `pid` (not to `pid` itself): a signal
/// forwarded to a command reaches the whole tree it started (a shell that
/// did not exec its last command would otherwise leave it running). Each
/// process is held by a pidfd and its parent checked again before it is signalled.
pub fn signal_descendants(pid: i32, sig: i32) {
    let all: Vec<(i32, i32)> = pids()
        .into_iter()
        .filter_map(|p| Some((p, ppid(p)?)))
        .collect();
    let mut tree = vec![pid];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(all.iter().filter(|(_, pp)| *pp == parent).map(|(p, _)| *p));
        i += 1;
    }
    for &p in &tree[1..] {
        if let Ok(fd) = pidfd::open(p) {
            let parent = all.iter().find(|(q, _)| *q == p).map(|(_, pp)| *pp);
            if ppid(p) == parent {
                let _ = pidfd::send_signal(fd.as_fd(), sig);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ppid_from_stat_with_odd_comm() {
        assert_eq!(ppid_of_stat("42 (sleep) S 7 42 42 0"), Some(7));
        assert_eq!(ppid_of_stat("42 (a) b) c) R 9 1 1"), Some(9));
        assert_eq!(ppid_of_stat("garbage"), None);
        let kdevtmpfs = "25 (kdevtmpfs) S 2 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 25";
        assert_eq!(flags_of_stat(kdevtmpfs), Some(2129984));
        assert_ne!(flags_of_stat(kdevtmpfs).unwrap() & 0x0020_0000, 0);
        assert_eq!(
            flags_of_stat("7 (a) b) S 1 7 7 0 -1 4194560 1"),
            Some(4194560)
        );
        assert_eq!(flags_of_stat("7 (x) S 1"), None);
    }

    #[test]
    fn children_are_read_from_their_list() {
        assert_eq!(children_of_text(b"3 4 5 17 "), vec![3, 4, 5, 17]);
        assert_eq!(children_of_text(b""), Vec::<i32>::new());
        assert_eq!(children_of_text(b"12 x 13\n"), vec![12, 13]);
    }

    /// The kernel's threads are left out of the processes looked at, and
    /// only they: in the initial pid namespace each is a child of kthreadd
    /// and a kernel thread (there are always some), a process of ours is
    /// still listed; elsewhere none is left out.
    #[test]
    fn only_the_kernels_threads_are_left_out() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let kernel = kernel_threads();
        let listed = pids();
        let _ = child.kill();
        let _ = child.wait();
        assert!(listed.contains(&pid));
        assert!(!kernel.contains(&pid));
        if sees_every_process() {
            assert!(!kernel.is_empty());
            // (One may end meanwhile: its stat is then gone.)
            for k in &kernel {
                if let Some(stat) = stat_of(*k) {
                    assert_eq!(ppid_of_stat(&stat), Some(2), "{stat}");
                }
            }
            assert!(kernel.iter().any(|&k| kernel_thread(k)));
            assert!(listed.iter().all(|p| kernel.binary_search(p).is_err()));
        } else {
            assert!(kernel.is_empty());
        }
    }

    /// A process names itself with any bytes (`prctl(PR_SET_NAME)`): its
    /// parent, start and state are still read (they decide which processes
    /// `off` and a forwarded signal reach). A thread of ours, named so, read
    /// by its tid.
    #[test]
    fn a_process_named_with_bytes_that_are_not_text_is_still_read() {
        let (tx, rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || {
            nix::sys::prctl::set_name(c"\xff) S 1 \xfe").unwrap();
            tx.send(nix::unistd::gettid().as_raw()).unwrap();
            let _ = done_rx.recv();
        });
        let tid = rx.recv().unwrap();
        let name = fs::read(format!("/proc/{tid}/comm")).unwrap();
        let (parent, started, stopped) = (ppid(tid), start_time(tid), stopped(tid));
        drop(done_tx);
        t.join().unwrap();
        assert!(std::str::from_utf8(&name).is_err(), "{name:?}");
        assert_eq!(parent, Some(nix::unistd::getppid().as_raw()));
        assert!(started.is_some());
        assert!(!stopped);
    }
}
