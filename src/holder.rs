//! The holder: a small process that keeps a sandbox's namespaces while it
//! is on. A normal user's sandbox (or root's with `-N`) lives in a user and
//! a mount namespace of the holder's; with `--ns` (or `namespaces:` in
//! `[run]`) the holder also owns pid, uts, ipc and net namespaces, and is
//! then init of the sandbox: a light VM.
//!
//! `on` starts it ([`start`]): a first child unshares the user namespace
//! and waits on a pipe while we write its id maps (`idmap`), then unshares
//! the others and forks the holder (pid 1 of a new pid namespace). The
//! holder makes its mounts slaves of the host's, sets the sandbox's
//! hostname, brings loopback up, mounts the plan (`engine`, as `on` does
//! in the host's namespace), says it is ready, and waits, reaping, in a
//! session of its own, ignoring the end of its terminal, holding no lock
//! nor any descriptor of ours. Only then its pid file is written.
//!
//! The pid file, `<run dir>/holder/<dev>-<ino>` of DIR, out of the
//! sandbox's reach, holds its pid with its identity: its start time and
//! the inodes of its namespaces. A holder counts as alive only when both
//! still match ([`state`]); one that died (kill -9, a reboot) is noticed
//! by the next command and its file removed ([`find`]). A pid file removed
//! or rewritten while its holder runs does not hide it from `on` and `off`
//! ([`find_or_scan`]).
//!
//! `run` and the others reach the root through it ([`join`]: setns by the
//! holder's pidfd, user namespace first, then the mount namespace and the
//! others, in a single-threaded caller, then chroot). `off` ([`turn_off`])
//! runs `stop`, ends every process inside (by namespace, never by path),
//! and ends the holder: with it go its namespaces and every mount.
use std::fs::{self, File};
use std::io::{self, BufRead, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use nix::sched::CloneFlags;

use crate::conf::{Conf, NsSet};
use crate::idmap::IdMap;
use crate::plan::{Op, What};
use crate::sandbox::Sandbox;
use crate::sys::ns::Forked;
use crate::sys::{self, pidfd, Attrs};
use crate::{owned, procs, show};

/// The holder a sandbox gets when it is turned on.
#[derive(Debug, Clone)]
pub struct Spec {
    /// A user namespace with this mapping (a normal user's; root's with `-N`).
    pub userns: Option<IdMap>,
    /// The namespaces it owns besides the user and mount namespaces.
    pub ns: NsSet,
}

/// How `on` turns a sandbox on: `None` for the chroot in the host's mount
/// namespace (root, no `-N`, no namespaces asked for), else the holder.
/// `ns` is `--ns`, over `[run] namespaces`.
pub fn spec_for(conf: &Conf, userns_flag: bool, ns: Option<NsSet>) -> Result<Option<Spec>> {
    let ns = ns
        .or(conf.run.namespaces.as_ref().map(|s| s.value))
        .unwrap_or_default();
    let root = crate::audit::invoked_as_root();
    if root && !userns_flag && ns.is_empty() {
        return Ok(None);
    }
    let userns = if root && !userns_flag {
        None
    } else {
        let uid = nix::unistd::getuid();
        let gid = nix::unistd::getgid();
        let name = crate::sandbox::real_user()
            .map(|u| u.name.clone())
            .unwrap_or_else(|| uid.to_string());
        Some(crate::idmap::for_user(uid.as_raw(), gid.as_raw(), &name)?)
    };
    Ok(Some(Spec { userns, ns }))
}

/// The inodes of a holder's namespaces (0: not its own).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Inodes {
    user: u64,
    mnt: u64,
    pid: u64,
}

/// A holder found alive: its pid, held by a pidfd (it can no longer be
/// confused with a later process of the same pid), and what it owns.
#[derive(Debug)]
pub struct HolderInfo {
    pub pid: i32,
    /// Whether it owns a user namespace (a normal user's, or `-N`).
    pub userns: bool,
    /// The namespaces it owns besides the user and mount namespaces.
    pub ns: NsSet,
    inodes: Inodes,
    /// The inodes of its uts, ipc and net namespaces, those it owns.
    others: Vec<(&'static str, u64)>,
    /// DIR's root directory (device, inode).
    root: Option<(u64, u64)>,
    pidfd: OwnedFd,
}

impl HolderInfo {
    /// Every namespace it owns, by the names of `/proc/PID/ns/`.
    pub fn namespaces(&self) -> Vec<&'static str> {
        let mut v = vec![];
        if self.userns {
            v.push("user");
        }
        v.push("mnt");
        v.extend(self.ns.names());
        v
    }

    /// The inode of its mount namespace, where the sandbox is mounted.
    pub fn mount_namespace(&self) -> u64 {
        self.inodes.mnt
    }

    /// Whether the process `pid` (not the holder itself) is inside: in
    /// any namespace the holder owns (its mount, uts, ipc or net
    /// namespace), in its pid or user namespace or one made below them
    /// (`unshare -U`, a pid namespace inside: a process cannot leave
    /// them), or, having left all of those (root without a user
    /// namespace may), its root is DIR's root directory and one of its
    /// ancestors is inside.
    pub fn holds(&self, pid: i32) -> bool {
        if pid == self.pid {
            return false;
        }
        // A process that has ended (a zombie its parent has not reaped
        // yet) has no mount namespace any more: it is not inside.
        if ns_inode(pid, "mnt").is_none() {
            return false;
        }
        if self.in_namespaces(pid) {
            return true;
        }
        let rooted = |v: &Path| {
            fs::metadata(v.join("root")).is_ok_and(|m| Some((m.dev(), m.ino())) == self.root)
        };
        if self.root.is_none() || !procs::any_view(pid, rooted) {
            return false;
        }
        let mut at = pid;
        for _ in 0..64 {
            let Some(parent) = procs::ppid(at).filter(|&p| p > 1) else {
                return false;
            };
            if parent == self.pid || self.in_namespaces(parent) {
                return true;
            }
            at = parent;
        }
        false
    }

    /// Whether one of `pid`'s threads ([`procs::any_view`]) is in one of
    /// the holder's namespaces (or below its user or pid namespace).
    fn in_namespaces(&self, pid: i32) -> bool {
        procs::any_view(pid, |v| {
            let ino = |kind: &str| fs::metadata(v.join("ns").join(kind)).ok().map(|m| m.ino());
            let below = |kind: &str, of: u64| {
                fs::File::open(v.join("ns").join(kind)).is_ok_and(|f| sys::ns::descends_from(f, of))
            };
            ino("mnt") == Some(self.inodes.mnt)
                || self.others.iter().any(|&(k, i)| ino(k) == Some(i))
                || (self.ns.pid && below("pid", self.inodes.pid))
                || (self.userns && below("user", self.inodes.user))
        })
    }

    /// The processes inside.
    pub fn processes(&self) -> Vec<procs::Proc> {
        procs::list_where(&|p| self.holds(p))
    }

    /// The holder's mounts at or below `dir`, as its own mount table says.
    pub fn mounts(&self, dir: &Path) -> Vec<crate::mountinfo::Mount> {
        let Ok(text) = crate::sys::read_proc(Path::new(&format!("/proc/{}/mountinfo", self.pid)))
        else {
            return vec![];
        };
        let all = crate::mountinfo::parse(&text).unwrap_or_default();
        crate::mountinfo::under(&all, dir)
            .into_iter()
            .cloned()
            .collect()
    }
}

/// The inode of `/proc/PID/ns/KIND`.
fn ns_inode(pid: i32, kind: &str) -> Option<u64> {
    procs::at(pid, &format!("ns/{kind}"), |p| fs::metadata(p))
        .ok()
        .map(|m| m.ino())
}

/// What the pid file says.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Record {
    pid: i32,
    start: u64,
    userns: bool,
    ns: NsSet,
    inodes: Inodes,
    /// Its mount namespace's id ([`sys::ns::mnt_ns_id`]), when the kernel
    /// tells it (a field added later: absent in older files).
    mnt_id: Option<u64>,
}

impl Record {
    fn text(&self) -> String {
        let ns = self.ns.names().join(",");
        format!(
            "v1 {} {} {} {} {} {} {} {}\n",
            self.pid,
            self.start,
            if self.userns { "user" } else { "root" },
            if ns.is_empty() { "-" } else { &ns },
            self.inodes.user,
            self.inodes.mnt,
            self.inodes.pid,
            self.mnt_id.map_or("-".to_string(), |i| i.to_string()),
        )
    }

    fn parse(text: &[u8]) -> Option<Record> {
        let text = std::str::from_utf8(text).ok()?;
        let mut w = text.split_whitespace();
        (w.next()? == "v1").then_some(())?;
        let pid = w.next()?.parse().ok().filter(|&p: &i32| p > 0)?;
        let start = w.next()?.parse().ok()?;
        let userns = match w.next()? {
            "user" => true,
            "root" => false,
            _ => return None,
        };
        let ns = match w.next()? {
            "-" => NsSet::default(),
            s => NsSet::parse(s).ok()?,
        };
        let mut n = || w.next()?.parse::<u64>().ok();
        let inodes = Inodes {
            user: n()?,
            mnt: n()?,
            pid: n()?,
        };
        // Absent in older files; `-` when the kernel did not tell it.
        let mnt_id = w.next().and_then(|t| t.parse().ok());
        Some(Record {
            pid,
            start,
            userns,
            ns,
            inodes,
            mnt_id,
        })
    }
}

/// The pid file of the holder of `dir` (which must exist): named by DIR's
/// device and inode, so that every spelling of DIR finds it.
pub fn file_of(dir: &Path) -> io::Result<PathBuf> {
    let md = fs::metadata(dir)?;
    Ok(owned::run_dir()
        .join("holder")
        .join(format!("{}-{}", md.dev(), md.ino())))
}

/// What reading a pid file found.
enum PidFile {
    /// No pid file (the usual case).
    Missing,
    /// Something unreadable or malformed is there.
    Bad,
    Record(Record),
}

/// What the pid file says (never through a symlink, a regular file only,
/// a bounded read).
fn read_record(path: &Path) -> PidFile {
    let f = match fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return PidFile::Missing,
        Err(_) => return PidFile::Bad,
    };
    if !f.metadata().is_ok_and(|m| m.is_file()) {
        return PidFile::Bad;
    }
    let mut b = vec![];
    if f.take(256).read_to_end(&mut b).is_err() {
        return PidFile::Bad;
    }
    Record::parse(&b).map_or(PidFile::Bad, PidFile::Record)
}

/// The holder the record speaks of, if it is still that process: held by
/// a pidfd, then its start time and mount namespace checked (a reused pid
/// has another start; a holder's mount namespace is its own).
fn alive(r: &Record, dir: &Path) -> Option<HolderInfo> {
    let fd = pidfd::open(r.pid).ok()?;
    if procs::start_time(r.pid)? != r.start || ns_inode(r.pid, "mnt")? != r.inodes.mnt {
        return None;
    }
    let info = info_of(r, fd, dir)?;
    pidfd::alive(info.pidfd.as_fd()).then_some(info)
}

/// The handle of the holder `r` speaks of, held by `fd`.
fn info_of(r: &Record, fd: OwnedFd, dir: &Path) -> Option<HolderInfo> {
    let mut others = vec![];
    for (on, kind) in [(r.ns.uts, "uts"), (r.ns.ipc, "ipc"), (r.ns.net, "net")] {
        if on {
            others.push((kind, ns_inode(r.pid, kind)?));
        }
    }
    Some(HolderInfo {
        pid: r.pid,
        userns: r.userns,
        ns: r.ns,
        inodes: r.inodes,
        others,
        root: fs::metadata(dir).ok().map(|m| (m.dev(), m.ino())),
        pidfd: fd,
    })
}

/// The holders of `dir` that no pid file names (it was removed or
/// rewritten while they ran): our processes named as a holder is, in a
/// mount namespace not ours with a mount at or below DIR. Their pid file
/// is written again. Only `on` and `off` look (a walk of `/proc`).
fn scan(dir: &Path) -> Vec<HolderInfo> {
    let me = nix::unistd::getuid().as_raw();
    let ours = |kind: &str| ns_inode(std::process::id() as i32, kind);
    let uid_of = |pid: i32| {
        let status = crate::sys::read_proc(Path::new(&format!("/proc/{pid}/status"))).ok()?;
        crate::sys::status_field(&status, "Uid:")?
            .split_whitespace()
            .next()?
            .parse::<u32>()
            .ok()
    };
    let mut found = vec![];
    // A holder runs as its user (root's as root), and /proc/PID shows the
    // effective uid: by that owner, the other users' processes are ruled
    // out first, one statx each.
    for pid in procs::of_owner(me) {
        if !fs::read(format!("/proc/{pid}/comm")).is_ok_and(|c| c == b"chroot-tool-hol\n") {
            continue;
        }
        let Ok(fd) = pidfd::open(pid) else { continue };
        if uid_of(pid) != Some(me) {
            continue;
        }
        let (Some(mnt), Some(start)) = (ns_inode(pid, "mnt"), procs::start_time(pid)) else {
            continue;
        };
        if Some(mnt) == ours("mnt") {
            continue;
        }
        let Ok(text) = crate::sys::read_proc(Path::new(&format!("/proc/{pid}/mountinfo"))) else {
            continue;
        };
        let all = crate::mountinfo::parse(&text).unwrap_or_default();
        if crate::mountinfo::under(&all, dir).is_empty() {
            continue;
        }
        let own = |kind: &str| {
            let i = ns_inode(pid, kind);
            (i.is_some() && i != ours(kind)).then(|| i.unwrap_or(0))
        };
        let ns = NsSet {
            pid: own("pid").is_some(),
            uts: own("uts").is_some(),
            ipc: own("ipc").is_some(),
            net: own("net").is_some(),
        };
        let r = Record {
            pid,
            start,
            userns: own("user").is_some(),
            ns,
            inodes: Inodes {
                user: own("user").unwrap_or(0),
                mnt,
                pid: own("pid").unwrap_or(0),
            },
            mnt_id: sys::ns::mnt_ns_id_of(pid),
        };
        let Some(info) = info_of(&r, fd, dir) else {
            continue;
        };
        if pidfd::alive(info.pidfd.as_fd()) {
            if let Ok(path) = file_of(dir) {
                let _ = write_record(&path, &r);
            }
            found.push(info);
        }
    }
    found
}

/// The holder of the sandbox at `dir`, when one is alive. No pid file
/// (the usual case of a sandbox on without a holder) costs one `stat` of
/// DIR and one failed `open`. Changes nothing (for `list`).
pub fn state(dir: &Path) -> Option<HolderInfo> {
    match read_record(&file_of(dir).ok()?) {
        PidFile::Record(r) => alive(&r, dir),
        PidFile::Missing | PidFile::Bad => None,
    }
}

/// What [`find`] found.
#[derive(Debug)]
pub enum Found {
    None,
    Alive(HolderInfo),
    /// A pid file whose holder is gone (killed, or a reboot): removed now,
    /// unless processes it started still run in its namespaces (killing
    /// the holder does not end them without a pid namespace): then they
    /// are said, and the pid file stays until `off` ends them.
    Died(Option<Left>),
}

/// The processes a holder that is gone left in the sandbox: in its mount
/// namespace (which lives on with them: its inode number, and its id,
/// which unlike the inode number is never given to another namespace) and
/// chrooted in DIR. Without the id (a kernel that does not tell it, a pid
/// file of an older version) nothing is taken for the holder's. A leftover
/// that moved to a mount namespace of its own, or chrooted deeper, is not
/// found this way.
#[derive(Debug)]
pub struct Left {
    file: PathBuf,
    mnt: u64,
    mnt_id: u64,
    root: (u64, u64),
    /// Those found when the holder was found gone.
    pub pids: Vec<i32>,
}

impl Left {
    fn of(file: PathBuf, r: &Record, dir: &Path) -> Option<Left> {
        let root = fs::metadata(dir).ok().map(|m| (m.dev(), m.ino()))?;
        let mut left = Left {
            file,
            mnt: r.inodes.mnt,
            mnt_id: r.mnt_id?,
            root,
            pids: vec![],
        };
        left.pids = procs::list_where(&|p| left.holds(p))
            .into_iter()
            .map(|p| p.pid)
            .collect();
        (!left.pids.is_empty()).then_some(left)
    }

    /// Why the sandbox at `dir` is not turned on again while they run.
    pub fn refusal(&self, dir: &Path) -> anyhow::Error {
        anyhow::anyhow!(
            "the holder of {} had ended (killed), and processes it started still run in the \
             sandbox ({}); nothing was mounted: `chroot-tool off -d {}` ends them",
            show::path(dir),
            self.listed(),
            crate::dispatch::shell_quote(&show::path(dir))
        )
    }

    /// Their pids, a few: `12, 13 and 2 more`.
    pub fn listed(&self) -> String {
        let shown: Vec<String> = self.pids.iter().take(8).map(|p| p.to_string()).collect();
        match self.pids.len() - shown.len() {
            0 => shown.join(", "),
            more => format!("{} and {more} more", shown.join(", ")),
        }
    }

    fn holds(&self, pid: i32) -> bool {
        ns_inode(pid, "mnt") == Some(self.mnt)
            && sys::ns::mnt_ns_id_of(pid) == Some(self.mnt_id)
            && fs::metadata(format!("/proc/{pid}/root"))
                .is_ok_and(|m| (m.dev(), m.ino()) == self.root)
    }

    /// Ends them (TERM, `grace`, KILL), as `off` ends a sandbox's; once
    /// none is left, the pid file and the records of the holder's mounts
    /// go. How many were ended, and those still alive.
    pub fn end(
        self,
        grace: std::time::Duration,
        waiting: &mut dyn FnMut(usize, std::time::Duration),
    ) -> (usize, Vec<procs::Proc>) {
        let held = |p: i32| self.holds(p);
        let (n, alive) = procs::end_where(&held, &held, grace, waiting);
        if alive.is_empty() {
            let _ = fs::remove_file(&self.file);
            owned::forget_namespace(self.mnt);
        }
        (n, alive)
    }
}

/// The holder of `dir`, as [`state`]; a pid file whose holder is gone is
/// removed (with the records of the mounts it had made).
pub fn find(dir: &Path) -> Found {
    let Ok(path) = file_of(dir) else {
        return Found::None;
    };
    let r = match read_record(&path) {
        PidFile::Missing => return Found::None,
        PidFile::Bad => {
            let _ = fs::remove_file(&path);
            return Found::Died(None);
        }
        PidFile::Record(r) => r,
    };
    match alive(&r, dir) {
        Some(h) => Found::Alive(h),
        // From inside a holder's own setup (a pid namespace of its own), a
        // holder not seen may still run: its file and records are left
        // alone. (Anywhere else, a pid that is not seen is gone: a whole
        // container's pid namespace holds the holders it started.)
        None if in_setup() => Found::Died(None),
        None => match Left::of(path.clone(), &r, dir) {
            Some(left) => Found::Died(Some(left)),
            None => {
                let _ = fs::remove_file(&path);
                owned::forget_namespace(r.inodes.mnt);
                Found::Died(None)
            }
        },
    }
}

/// The holder of `dir`, as [`find`]; when no pid file names a live one,
/// a holder whose pid file was removed or rewritten while it ran is looked
/// for among the processes (for `on` and `off`: never a second holder,
/// never "already off" while one runs).
///
/// Only a normal user's holder needs the search: root's holders are
/// undumpable, so nothing inside reaches root's run directory through
/// them, and root's `on` and `off` do not walk every process for nothing.
pub fn find_or_scan(dir: &Path) -> Found {
    match find(dir) {
        Found::Alive(h) => Found::Alive(h),
        other if crate::audit::invoked_as_root() => other,
        other => match scan(dir).into_iter().next() {
            Some(h) => Found::Alive(h),
            None => other,
        },
    }
}

/// The plan a holder mounts: the device nodes bound in (a user namespace
/// may not make them; and in a holder's namespace nothing checks them
/// later, so they must not be removable from inside). In a user namespace
/// also: a fresh proc only in a pid namespace of its own, else the host's
/// bound (recursively, read-only), as bubblewrap does; sysfs likewise with
/// a network namespace; a devpts without a `gid=` naming an unmapped group.
pub fn plan_for(spec: &Spec, plan: &[Op]) -> Vec<Op> {
    let plan: Vec<Op> = plan
        .iter()
        .map(|op| match &op.what {
            What::Node { src } => Op {
                what: What::Bind {
                    src: src.clone(),
                    recursive: false,
                },
                ..op.clone()
            },
            _ => op.clone(),
        })
        .collect();
    let Some(map) = &spec.userns else {
        return plan;
    };
    let host = |op: &Op, src: &str| Op {
        what: What::Bind {
            src: src.into(),
            recursive: true,
        },
        attrs: Attrs(op.attrs.0 | Attrs::RDONLY),
        ..op.clone()
    };
    plan.iter()
        .map(|op| match &op.what {
            What::Fs { fstype, .. } if fstype == "proc" && !spec.ns.pid => host(op, "/proc"),
            What::Fs { fstype, .. } if fstype == "sysfs" && !spec.ns.net => host(op, "/sys"),
            What::Fs {
                fstype,
                source,
                options,
            } if fstype == "devpts" => {
                let mapped = |o: &String| {
                    o.strip_prefix("gid=")
                        .and_then(|g| g.parse::<u32>().ok())
                        .is_none_or(|g| map.outside_gid(g).is_some())
                };
                Op {
                    what: What::Fs {
                        fstype: fstype.clone(),
                        source: source.clone(),
                        options: options.iter().filter(|o| mapped(o)).cloned().collect(),
                    },
                    ..op.clone()
                }
            }
            _ => op.clone(),
        })
        .collect()
}

/// The sandbox's own hostname: its `/etc/hostname` (first word), else
/// DIR's name, cut to what the kernel takes.
pub fn hostname_of(sb: &Sandbox) -> String {
    let from_file = sys::open_root(&sb.dir).ok().and_then(|r| {
        let b = sys::read_in_root(r.as_fd(), Path::new("/etc/hostname"), 256).ok()??;
        let s = String::from_utf8(b).ok()?;
        s.split_whitespace().next().map(str::to_string)
    });
    let name = from_file.unwrap_or_else(|| {
        sb.dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "sandbox".into())
    });
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    if clean.is_empty() {
        "sandbox".into()
    } else {
        clean
    }
}

/// A holder just started, and what it had to say.
pub struct Started {
    pub info: HolderInfo,
    pub warnings: Vec<String>,
}

/// Starts the holder of `sb` (the caller holds its lock) and mounts
/// `plan` (see [`plan_for`]) inside its namespaces. Its pid file is
/// written once it said it is ready. The mapping's own warning (no
/// subordinate range) is for the caller to say.
pub fn start(sb: &Sandbox, spec: &Spec, plan: &[Op]) -> Result<Started> {
    if spec.userns.is_some() {
        crate::idmap::check_userns()?;
    }
    // Decided now, by who we are, before any namespace changes it.
    let _ = crate::audit::invoked_as_root();
    let _ = owned::run_dir();
    let path = file_of(&sb.dir).with_context(|| show::path(&sb.dir))?;
    let at = |e: io::Error| anyhow!("{}: {e}", show::path(&path));
    if let Some(parent) = path.parent() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(at)?;
    }
    let hostname = spec.ns.uts.then(|| hostname_of(sb));
    let plan = plan_for(spec, plan);
    // The overlay guards, asked here, in the host's namespaces: inside the
    // holder's, the records and processes they rest on are not seen. BASE's
    // lock (of an overlay) is held until the holder is ready; the holder's
    // own `on` skips both ([`in_setup`]).
    let _base = sb.overlay_guards()?;
    let in_setup = InSetup::set();
    let (ready_r, ready_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let (go_r, go_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let first = match sys::ns::fork().context("starting the holder")? {
        Forked::Child => {
            drop(ready_r);
            drop(go_w);
            let mut out = File::from(ready_w);
            let code = match first_child(sb, spec, &plan, hostname.as_deref(), &mut out, go_r) {
                Ok(()) => 0,
                Err(e) => {
                    let _ =
                        out.write_all(line("E", &show::error_line([format!("{e:#}")])).as_bytes());
                    1
                }
            };
            sys::ns::exit_now(code)
        }
        Forked::Parent(pid) => pid,
    };
    drop(in_setup);
    drop(ready_w);
    drop(go_r);
    // `g`: the maps are written, go on; `k`: the pid file is written, hold.
    // At its end of file (we failed, or were killed) the child ends.
    let mut go = File::from(go_w);
    let mut lines = io::BufReader::new(File::from(ready_r));
    let mut holder: Option<i32> = None;
    let mut ready = false;
    let mut error: Option<String> = None;
    let mut warnings = vec![];
    let mut line = String::new();
    loop {
        line.clear();
        match lines.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let (tag, rest) = line
            .trim_end()
            .split_once(' ')
            .unwrap_or((line.trim_end(), ""));
        match tag {
            "U" => {
                // The first child unshared its user namespace: its maps,
                // then it may go on.
                let res = spec.userns.as_ref().map_or(Ok(()), |m| m.write_for(first));
                match res {
                    Ok(()) => {
                        let _ = go.write_all(b"g");
                    }
                    Err(e) => {
                        error = Some(format!("writing the id maps of the holder: {e}"));
                        let _ = nix::sys::signal::kill(
                            nix::unistd::Pid::from_raw(first),
                            nix::sys::signal::Signal::SIGKILL,
                        );
                    }
                }
            }
            "P" => holder = rest.parse().ok(),
            "W" => warnings.push(rest.to_string()),
            "E" => error = error.or(Some(rest.to_string())),
            "R" => ready = true,
            _ => {}
        }
    }
    let first_end = sys::process::wait_child(first);
    let info = match (ready, holder, &error) {
        (true, Some(pid), None) => record_of(pid, spec, &sb.dir),
        _ => None,
    };
    // On every way out but success, `go` closes unwritten: a holder still
    // there ends by itself (never signalled by a pid that may be reused).
    let Some((info, rec)) = info else {
        let why = error.unwrap_or_else(|| match first_end {
            Ok(sys::process::Ended::Exited(0)) => "the holder ended before it was ready".into(),
            Ok(e) => format!("the holder ended before it was ready ({e})"),
            Err(e) => format!("the holder ended before it was ready ({e})"),
        });
        if why.ends_with("nothing was mounted") {
            bail!("{why}");
        }
        bail!("{why}; nothing was mounted");
    };
    if let Err(e) = write_record(&path, &rec) {
        let _ = pidfd::send_signal(info.pidfd.as_fd(), libc::SIGKILL);
        return Err(at(e)).context("writing the holder's pid file; the holder was ended");
    }
    // Only now the holder may stay: had we been killed before, it would
    // have ended, not lived on without a pid file.
    if let Err(e) = go.write_all(b"k") {
        let _ = fs::remove_file(&path);
        return Err(e).context("telling the holder its pid file is written");
    }
    Ok(Started { info, warnings })
}

/// The record and handle of the holder `pid`, just started.
fn record_of(pid: i32, spec: &Spec, dir: &Path) -> Option<(HolderInfo, Record)> {
    let fd = pidfd::open(pid).ok()?;
    let rec = Record {
        pid,
        start: procs::start_time(pid)?,
        userns: spec.userns.is_some(),
        ns: spec.ns,
        inodes: Inodes {
            user: if spec.userns.is_some() {
                ns_inode(pid, "user")?
            } else {
                0
            },
            mnt: ns_inode(pid, "mnt")?,
            pid: if spec.ns.pid {
                ns_inode(pid, "pid")?
            } else {
                0
            },
        },
        mnt_id: sys::ns::mnt_ns_id_of(pid),
    };
    let info = info_of(&rec, fd, dir)?;
    Some((info, rec))
}

fn write_record(path: &Path, r: &Record) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    let tmp = dir.join(format!(
        ".{}.{}",
        path.file_name().map_or("h".into(), |n| n.to_string_lossy()),
        std::process::id()
    ));
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)?;
    f.write_all(r.text().as_bytes())?;
    drop(f);
    fs::rename(&tmp, path)
}

/// One line to the parent, written at once: the holder and the first
/// child write to the same pipe, and a line written in pieces could be
/// cut by the other's.
fn line(tag: &str, text: &str) -> String {
    format!("{tag} {text}\n")
}

/// The first child: a session of its own, its user namespace (then waits
/// for its maps), the other namespaces, then the holder forked (pid 1 of
/// the new pid namespace, if one); the first child says its pid and ends.
fn first_child(
    sb: &Sandbox,
    spec: &Spec,
    plan: &[Op],
    hostname: Option<&str>,
    out: &mut File,
    go: OwnedFd,
) -> Result<()> {
    nix::unistd::setsid().context("setsid")?;
    sys::ns::ignore_signals();
    if spec.userns.is_some() {
        nix::sched::unshare(CloneFlags::CLONE_NEWUSER).context("making a user namespace")?;
        out.write_all(b"U\n")?;
        if !told(&go, b'g') {
            // The parent could not map our ids: it has said why.
            sys::ns::exit_now(1);
        }
    }
    // Root's holder is undumpable before anything can be inside: root
    // there (in a user namespace with -N, mapped to uid 0) may then not
    // ptrace it nor open its root, descriptors or environment through
    // /proc. A normal user's holder may not be: the user could no longer
    // join it (setns by pidfd asks for ptrace access); see docs/security.md.
    if crate::audit::invoked_as_root() {
        sys::ns::not_dumpable();
    }
    let mut flags = CloneFlags::CLONE_NEWNS;
    for (on, f) in [
        (spec.ns.pid, CloneFlags::CLONE_NEWPID),
        (spec.ns.uts, CloneFlags::CLONE_NEWUTS),
        (spec.ns.ipc, CloneFlags::CLONE_NEWIPC),
        (spec.ns.net, CloneFlags::CLONE_NEWNET),
    ] {
        if on {
            flags |= f;
        }
    }
    nix::sched::unshare(flags).context("making the holder's namespaces")?;
    match sys::ns::fork().context("starting the holder")? {
        Forked::Parent(pid) => {
            out.write_all(line("P", &pid.to_string()).as_bytes())?;
            sys::ns::exit_now(0)
        }
        Forked::Child => {
            let res = holder_setup(sb, spec, plan, hostname);
            match res {
                Ok(warnings) => {
                    let _ = std::env::set_current_dir("/");
                    sys::ns::detach_descriptors(&[out.as_raw_fd(), go.as_raw_fd()])?;
                    for w in warnings {
                        out.write_all(line("W", &show::error_line([w])).as_bytes())?;
                    }
                    // Named before it says it is ready: once `on` has let
                    // go of the sandbox's lock, a look for it by its name
                    // (its pid file removed) finds it.
                    sys::ns::set_name(c"chroot-tool-hold");
                    out.write_all(b"R\n")?;
                    // Our end of the pipe closes: the caller reads to its end.
                    let _ = nix::unistd::close(out.as_raw_fd());
                    if !told(&go, b'k') {
                        sys::ns::exit_now(1);
                    }
                    drop(go);
                    sys::ns::hold()
                }
                Err(e) => {
                    let _ =
                        out.write_all(line("E", &show::error_line([format!("{e:#}")])).as_bytes());
                    sys::ns::exit_now(1)
                }
            }
        }
    }
}

/// Whether the caller wrote `what` on `go` (not: it failed or is gone).
fn told(go: &OwnedFd, what: u8) -> bool {
    let mut b = [0u8; 1];
    loop {
        match nix::unistd::read(go, &mut b) {
            Ok(1) => return b[0] == what,
            Err(nix::errno::Errno::EINTR) => continue,
            _ => return false,
        }
    }
}

/// The holder's setup, in its namespaces: its mounts slaves of the host's
/// (nothing made here reaches the host; the host's later mounts reach
/// here), its hostname, loopback up, the plan mounted.
fn holder_setup(
    sb: &Sandbox,
    spec: &Spec,
    plan: &[Op],
    hostname: Option<&str>,
) -> Result<Vec<String>> {
    use nix::mount::MsFlags;
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_SLAVE,
        None::<&str>,
    )
    .context("making the holder's mounts slaves of the host's")?;
    owned::namespace_changed();
    if let Some(h) = hostname {
        nix::unistd::sethostname(h).with_context(|| format!("setting the hostname {h}"))?;
    }
    if spec.ns.net {
        sys::ns::loopback_up().context("bringing loopback up")?;
    }
    let report = sb.turn_on(plan, None).map_err(|e| {
        // What could not be unmounted again lies in this namespace, which
        // ends with this process: nothing stays mounted.
        match e.downcast_ref::<crate::engine::NotUnwound>() {
            Some(n) => anyhow::anyhow!("{}; nothing was mounted", n.cause),
            None => e,
        }
    })?;
    Ok(report.differs.into_iter().chain(report.warnings).collect())
}

/// Joins the holder's namespaces: this process (single-threaded; it does
/// not come back) then sees the sandbox as the holder mounted it. One
/// setns by the holder's pidfd, which the kernel applies user namespace
/// first, then the mount namespace and the others. Once in a user
/// namespace, this process is made undumpable: the processes inside, root
/// there, may not ptrace it nor open its descriptors.
pub fn join(h: &HolderInfo) -> Result<()> {
    // Decided by who invoked us, before the user namespace makes us root.
    let _ = owned::run_dir();
    let _ = crate::audit::invoked_as_root();
    let mut flags = CloneFlags::CLONE_NEWNS;
    for (on, f) in [
        (h.userns, CloneFlags::CLONE_NEWUSER),
        (h.ns.pid, CloneFlags::CLONE_NEWPID),
        (h.ns.uts, CloneFlags::CLONE_NEWUTS),
        (h.ns.ipc, CloneFlags::CLONE_NEWIPC),
        (h.ns.net, CloneFlags::CLONE_NEWNET),
    ] {
        if on {
            flags |= f;
        }
    }
    nix::sched::setns(h.pidfd.as_fd(), flags)
        .with_context(|| format!("entering the namespaces of the holder (pid {})", h.pid))?;
    if h.userns {
        sys::ns::not_dumpable();
    }
    owned::namespace_changed();
    Ok(())
}

/// The longest reason [`in_child`] carries back (a pipe holds more).
const WHY_MAX: usize = 4096;

/// Runs `f` in a child process (for `on`'s start and `off`'s stop: the
/// child joins the holder, the caller itself stays out, so that nothing
/// of it keeps the holder's namespaces alive). `f`'s result is the
/// child's exit status, or why it ran nothing: `Err(why)`, the child
/// ending with 125.
pub fn in_child(
    f: impl FnOnce() -> std::result::Result<u8, String>,
) -> io::Result<std::result::Result<sys::process::Ended, String>> {
    // The reason comes back through a pipe (closed on exec: a command the
    // child starts never holds it).
    let (why_r, why_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    match sys::ns::fork()? {
        Forked::Child => {
            drop(why_r);
            let code = f().unwrap_or_else(|why| {
                // Never more than the pipe holds: the parent reads only
                // once this child has ended.
                let b = why.as_bytes();
                let _ = File::from(why_w).write_all(&b[..b.len().min(WHY_MAX)]);
                125
            });
            sys::ns::exit_now(code as i32)
        }
        Forked::Parent(pid) => {
            drop(why_w);
            let ended = sys::process::wait_child(pid)?;
            // Only what the child wrote before it ended, never a wait for
            // the end of the pipe (a process it left behind may hold it).
            nix::fcntl::fcntl(
                &why_r,
                nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
            )?;
            let mut why = Vec::new();
            let _ = File::from(why_r).take(WHY_MAX as u64).read_to_end(&mut why);
            Ok(match ended.status() {
                125 if !why.is_empty() => Err(String::from_utf8_lossy(&why).into_owned()),
                _ => Ok(ended),
            })
        }
    }
}

/// What `off` did to a holder's sandbox.
pub struct Ended {
    /// The holder's mounts at or below DIR.
    pub mounts: usize,
    /// The processes inside that were ended.
    pub processes: usize,
}

/// Ends the sandbox held by `h` (the caller ran `stop` and holds the
/// lock): every process inside (TERM, `grace`, KILL), then the holder
/// (KILL: it ignores the rest); its namespaces end with it. Checked: no
/// process is left in its mount namespace, so no mount of it is left.
pub fn turn_off(
    dir: &Path,
    h: HolderInfo,
    grace: Duration,
    waiting: &mut dyn FnMut(usize, Duration),
) -> Result<Ended> {
    end_holder(dir, h, grace, waiting, 0)
}

fn end_holder(
    dir: &Path,
    h: HolderInfo,
    grace: Duration,
    waiting: &mut dyn FnMut(usize, Duration),
    depth: usize,
) -> Result<Ended> {
    let mounts = h.mounts(dir).len();
    // The holder's mount namespace by its id, when it can be told to
    // exist (asked while the holder is known to still be that process).
    let ns_id = sys::ns::mnt_ns_id_of(h.pid).filter(|&id| {
        pidfd::alive(h.pidfd.as_fd()) && sys::mounts::namespace_exists(id).is_ok_and(|t| t)
    });
    let (mut processes, alive) = procs::end_where(&|_| true, &|p| h.holds(p), grace, waiting);
    let _ = pidfd::send_signal(h.pidfd.as_fd(), libc::SIGKILL);
    if !pidfd::wait_all_exit(&[h.pidfd.as_fd()], Duration::from_secs(10)) {
        bail!(
            "the holder (pid {}) is still there after KILL; run `chroot-tool off` again",
            h.pid
        );
    }
    // With a pid namespace the kernel ends what is left inside with its
    // init (a process that keeps forking and exiting, which a look at
    // every process may miss each time, too): what can be left is only
    // what came into the mount namespace by hand, which would keep it, so
    // every process is looked at again only when it is not gone. Without
    // a pid namespace they are looked at again: the last process in the
    // holder's namespaces may have come in meanwhile, or have been missed.
    let settled = h.ns.pid
        && alive.is_empty()
        && ns_id.is_some_and(|id| matches!(sys::mounts::namespace_exists(id), Ok(false)));
    let (more, left) = if settled {
        (0, vec![])
    } else {
        procs::end_where(&|_| true, &|p| h.holds(p), grace, waiting)
    };
    processes += more;
    if !left.is_empty() {
        bail!(
            "processes still in the holder's namespaces after off: {}; its mounts stay until they end; then run `chroot-tool off` again",
            procs::named(&left)
        );
    }
    if let Ok(path) = file_of(dir) {
        let _ = fs::remove_file(path);
    }
    owned::forget_namespace(h.inodes.mnt);
    let mut ended = Ended { mounts, processes };
    // The pid file may have named another process than the holder (it was
    // rewritten while the sandbox was on): a holder still there is ended too.
    if depth < 4 {
        if let Some(other) = scan(dir).into_iter().next() {
            let more = end_holder(dir, other, grace, waiting, depth + 1)?;
            ended.mounts += more.mounts;
            ended.processes += more.processes;
        }
    }
    Ok(ended)
}

/// Set in a holder's setup (inherited through its fork). Its caller asked
/// the overlay guards ([`crate::sandbox::Sandbox::overlay_guards`]) in the
/// host's namespaces and holds BASE's lock: the holder's `on` asks
/// neither again (it would not see what they rest on, and would wait for
/// that lock forever). Its pid namespace hides other holders: [`find`]
/// keeps a pid file whose holder it does not see.
static IN_SETUP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Marks this process (and the children it forks meanwhile) as in a
/// holder's setup until dropped.
pub struct InSetup(());

impl InSetup {
    pub fn set() -> InSetup {
        IN_SETUP.store(true, std::sync::atomic::Ordering::Relaxed);
        InSetup(())
    }
}

impl Drop for InSetup {
    fn drop(&mut self) {
        IN_SETUP.store(false, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Whether this process is in a holder's setup ([`InSetup`]).
pub fn in_setup() -> bool {
    IN_SETUP.load(std::sync::atomic::Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_refuse_garbage() {
        let r = Record {
            pid: 42,
            start: 123456,
            userns: true,
            ns: NsSet::parse("pid,net").unwrap(),
            inodes: Inodes {
                user: 1,
                mnt: 2,
                pid: 3,
            },
            mnt_id: Some(1 << 40),
        };
        assert_eq!(Record::parse(r.text().as_bytes()), Some(r.clone()));
        let plain = Record {
            userns: false,
            ns: NsSet::default(),
            mnt_id: None,
            ..r
        };
        assert_eq!(Record::parse(plain.text().as_bytes()), Some(plain.clone()));
        // A file of an older version (no id) still reads.
        let old = b"v1 42 123456 root - 1 2 3\n";
        assert_eq!(Record::parse(old), Some(plain));
        assert_eq!(Record::parse(b"v1 0 1 user - 1 2 3"), None, "pid 0");
        assert_eq!(Record::parse(b"v1 5 1 who - 1 2 3"), None);
        assert_eq!(Record::parse(b"v1 5 1 user bogus 1 2 3"), None);
        assert_eq!(Record::parse(b"v2 5 1 user - 1 2 3"), None);
        assert_eq!(Record::parse(b"v1 5 1 user - 1 2"), None);
    }

    #[test]
    fn a_user_namespace_binds_proc_and_sys_unless_it_owns_their_namespaces() {
        let plan =
            crate::plan::build(&[], None, "nodev\tproc\nnodev\tsysfs\nnodev\ttmpfs\n").unwrap();
        let single = IdMap::plan("u", 1000, 1000, &[], &[]);
        let spec = |ns: &str| Spec {
            userns: Some(single.clone()),
            ns: NsSet::parse(ns).unwrap(),
        };
        let at = |ops: &[Op], t: &str| {
            ops.iter()
                .find(|o| o.target == Path::new(t))
                .unwrap()
                .clone()
        };
        let bare = plan_for(&spec(""), &plan);
        for (t, src) in [("/proc", "/proc"), ("/sys", "/sys")] {
            let op = at(&bare, t);
            assert!(
                matches!(&op.what, What::Bind { src: s, recursive: true } if s == Path::new(src)),
                "{t}: {op:?}"
            );
            assert!(op.attrs.has(Attrs::RDONLY), "{t}");
        }
        // Every holder binds the device nodes, with a user namespace or not.
        let root_holder = plan_for(
            &Spec {
                userns: None,
                ns: NsSet::parse("pid").unwrap(),
            },
            &plan,
        );
        for n in crate::plan::DEVICES {
            let t = format!("/dev/{n}");
            assert!(matches!(&at(&plan, &t).what, What::Node { .. }), "{t}");
            for ops in [&bare, &root_holder] {
                let op = at(ops, &t);
                assert!(
                    matches!(&op.what, What::Bind { src, recursive: false } if *src == Path::new(&t)),
                    "{t}: {op:?}"
                );
            }
        }
        let vm = plan_for(&spec("pid,net"), &plan);
        assert!(matches!(&at(&vm, "/proc").what, What::Fs { fstype, .. } if fstype == "proc"));
        assert!(matches!(&at(&vm, "/sys").what, What::Fs { fstype, .. } if fstype == "sysfs"));
        // gid 5 is not mapped without a range: no gid= on devpts.
        let What::Fs { options, .. } = &at(&bare, "/dev/pts").what else {
            panic!()
        };
        assert!(
            options.iter().all(|o| !o.starts_with("gid=")),
            "{options:?}"
        );
        let ranged = IdMap::plan(
            "u",
            1000,
            1000,
            &[crate::idmap::Range {
                start: 100000,
                count: 65536,
            }],
            &[crate::idmap::Range {
                start: 100000,
                count: 65536,
            }],
        );
        let with_range = plan_for(
            &Spec {
                userns: Some(ranged),
                ns: NsSet::default(),
            },
            &plan,
        );
        let What::Fs { options, .. } = &at(&with_range, "/dev/pts").what else {
            panic!()
        };
        assert!(options.iter().any(|o| o == "gid=5"), "{options:?}");
        // Root without -N: the plan as it is, but for the nodes bound.
        for (held, planned) in root_holder.iter().zip(&plan) {
            match planned.what {
                What::Node { .. } => assert_ne!(held, planned),
                _ => assert_eq!(held, planned),
            }
        }
        assert_eq!(root_holder.len(), plan.len());
    }
}
