//! A cgroup per run, for `--memory`, `--cpus` and `--pids` ([`Limits`]).
//!
//! Each controller is taken where the kernel has it: on cgroup v2 when the
//! unified hierarchy offers it to our own cgroup, on its cgroup v1
//! hierarchy otherwise (hybrid hosts have v1 controllers beside an empty v2
//! mount). The run's cgroup, `chroot-tool-run-<pid>`, is made below the
//! cgroup chroot-tool itself is in (from `/proc/self/cgroup`, per hierarchy
//! on v1), never at a hierarchy's root, so a tool started in a nested
//! cgroup (a container, a service) stays inside it. The child joins it
//! before it execs (it writes its pid to the `cgroup.procs` descriptors
//! opened here: a child step), so nothing it starts is ever outside.
//! [`RunCgroup::remove`] ends what is left in it and removes it.
//!
//! A limit that cannot be applied (no such controller, no permission) is
//! an error naming the limit, never a warning.
pub mod limits;
pub mod track;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use limits::{Limits, Rlimit};

use crate::show;

/// A limit that could not be applied: which one, and why.
#[derive(Debug, thiserror::Error)]
#[error("{limit}: {what}")]
pub struct LimitError {
    /// `--memory 50M`, `--cpus 0.5`, `--pids 20`.
    pub limit: String,
    pub what: String,
}

/// The cgroup controllers the limits use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Controller {
    Memory,
    Cpu,
    Pids,
}

impl Controller {
    fn name(self) -> &'static str {
        match self {
            Controller::Memory => "memory",
            Controller::Cpu => "cpu",
            Controller::Pids => "pids",
        }
    }
}

/// Our own cgroup in one hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Hier {
    /// The directory of the cgroup we are in.
    own: PathBuf,
    v2: bool,
}

/// Where the controllers are: `/proc/self/cgroup` and the cgroup mounts.
struct Map {
    /// `(controllers, path)` of each line; `"" ` for the v2 line `0::`.
    lines: Vec<(String, String)>,
    mounts: Vec<crate::mountinfo::Mount>,
}

impl Map {
    fn read() -> io::Result<Map> {
        let text = fs::read_to_string("/proc/self/cgroup")?;
        let lines = parse_proc_cgroup(&text);
        let mounts = crate::mountinfo::read()?;
        Ok(Map { lines, mounts })
    }

    /// The visible (topmost) mount of `fstype` whose super options pass `want`.
    fn mount(&self, fstype: &str, want: impl Fn(&str) -> bool) -> Option<&crate::mountinfo::Mount> {
        self.mounts.iter().find(|m| {
            m.fstype == fstype
                && want(&m.super_options)
                && crate::mountinfo::top_at(&self.mounts, &m.point).map(|t| t.id) == Some(m.id)
        })
    }

    /// Our cgroup directory under mount `m`, for the path `path` of /proc/self/cgroup.
    fn own_dir(m: &crate::mountinfo::Mount, path: &str) -> Option<PathBuf> {
        let rel = Path::new(path).strip_prefix(&m.root).ok()?;
        Some(m.point.join(rel))
    }

    /// Where `c` is: v2 when our v2 cgroup offers it, else its v1 hierarchy.
    fn find(&self, c: Controller) -> Result<Hier, String> {
        let name = c.name();
        let mut v2_note = String::from("no cgroup v2 mount");
        if let Some((_, path)) = self.lines.iter().find(|(ctl, _)| ctl.is_empty()) {
            if let Some(m) = self.mount("cgroup2", |_| true) {
                if let Some(own) = Map::own_dir(m, path) {
                    let offered =
                        fs::read_to_string(own.join("cgroup.controllers")).unwrap_or_default();
                    if offered.split_whitespace().any(|x| x == name) {
                        return Ok(Hier { own, v2: true });
                    }
                    v2_note = format!(
                        "cgroup v2 at {} offers only: {}",
                        show::path(&m.point),
                        if offered.trim().is_empty() {
                            "none"
                        } else {
                            offered.trim()
                        }
                    );
                }
            }
        }
        let has = |list: &str| list.split(',').any(|x| x == name);
        if let Some((_, path)) = self.lines.iter().find(|(ctl, _)| has(ctl)) {
            if let Some(m) = self.mount("cgroup", |o| has(o)) {
                if let Some(own) = Map::own_dir(m, path) {
                    return Ok(Hier { own, v2: false });
                }
                return Err(format!(
                    "our {name} cgroup {} is not under the mount at {}",
                    show::bytes(path.as_bytes()),
                    show::path(&m.point)
                ));
            }
        }
        Err(format!(
            "the {name} controller is not available ({v2_note}; no cgroup v1 hierarchy of it is mounted)"
        ))
    }
}

/// The first controller that `l` needs and that this host keeps on a
/// cgroup v1 hierarchy, as `--memory`, `--cpus` or `--pids`: a normal user
/// may not make a cgroup there (v1 has no delegation).
pub fn on_v1(l: &Limits) -> Option<&'static str> {
    let map = Map::read().ok()?;
    [
        (l.memory.is_some(), Controller::Memory, "--memory"),
        (l.cpu_quota.is_some(), Controller::Cpu, "--cpus"),
        (l.pids.is_some(), Controller::Pids, "--pids"),
    ]
    .into_iter()
    .find(|(wanted, c, _)| *wanted && map.find(*c).is_ok_and(|h| !h.v2))
    .map(|(_, _, opt)| opt)
}

/// `/proc/self/cgroup`: `ID:CONTROLLERS:PATH` lines into (controllers, path).
fn parse_proc_cgroup(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, ':');
            let _id = parts.next()?;
            let ctl = parts.next()?;
            let path = parts.next()?;
            Some((ctl.to_string(), path.to_string()))
        })
        .collect()
}

/// The cgroup of one run: its directories (one per hierarchy used) and
/// their `cgroup.procs`, open for the child to join.
#[derive(Debug)]
pub struct RunCgroup {
    dirs: Vec<PathBuf>,
    procs: Vec<File>,
    removed: bool,
}

/// How long [`RunCgroup::remove`] waits for what it killed to be gone.
const REMOVE_WAIT: Duration = Duration::from_secs(10);

impl RunCgroup {
    /// Makes the run's cgroup with the limits of `l` (which must need one).
    pub fn create(l: &Limits) -> Result<RunCgroup, LimitError> {
        let mut wanted: Vec<(Controller, String)> = Vec::new();
        if let Some(m) = l.memory {
            wanted.push((Controller::Memory, format!("--memory {}", human_size(m))));
        }
        if let Some(q) = l.cpu_quota {
            wanted.push((Controller::Cpu, format!("--cpus {}", human_cpus(q))));
        }
        if let Some(p) = l.pids {
            wanted.push((Controller::Pids, format!("--pids {p}")));
        }
        let fail = |limit: &str, what: String| LimitError {
            limit: limit.to_string(),
            what,
        };
        let map = Map::read().map_err(|e| {
            fail(
                &wanted
                    .iter()
                    .map(|w| w.1.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                format!("cannot read /proc/self/cgroup or mountinfo: {e}"),
            )
        })?;
        let mut cg = RunCgroup {
            dirs: Vec::new(),
            procs: Vec::new(),
            removed: false,
        };
        let name = format!("chroot-tool-run-{}", std::process::id());
        for (c, limit) in &wanted {
            let hier = map.find(*c).map_err(|e| fail(limit, e))?;
            let dir = hier.own.join(&name);
            if !cg.dirs.contains(&dir) {
                sweep(&hier.own);
                if hier.v2 {
                    enable(&hier.own, *c).map_err(|e| fail(limit, e))?;
                }
                make_dir(&dir).map_err(|e| fail(limit, e))?;
                cg.dirs.push(dir.clone());
                let procs = OpenOptions::new()
                    .write(true)
                    .custom_flags(libc::O_CLOEXEC)
                    .open(dir.join("cgroup.procs"))
                    .map_err(|e| {
                        fail(
                            limit,
                            format!("cannot open {}: {e}", show::path(dir.join("cgroup.procs"))),
                        )
                    })?;
                cg.procs.push(procs);
            }
            write_limit(&dir, *c, hier.v2, l).map_err(|e| fail(limit, e))?;
        }
        Ok(cg)
    }

    /// The `cgroup.procs` descriptors the child writes its pid to.
    pub fn procs_fds(&self) -> Vec<RawFd> {
        self.procs.iter().map(|f| f.as_fd().as_raw_fd()).collect()
    }

    /// The run's cgroup directories.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// Once the command has ended: ends (KILL) what it left running in the
    /// cgroup, waits until it is gone, and removes the directories.
    pub fn remove(mut self) -> io::Result<()> {
        self.removed = true;
        self.procs.clear();
        let deadline = Instant::now() + REMOVE_WAIT;
        let mut result = Ok(());
        for dir in self.dirs.iter().rev() {
            if let Err(e) = empty_and_remove(dir, deadline) {
                if result.is_ok() {
                    result = Err(io::Error::new(
                        e.kind(),
                        format!("remove the run's cgroup {}: {e}", show::path(dir)),
                    ));
                }
            }
        }
        result
    }
}

impl Drop for RunCgroup {
    /// A cgroup made for a command that never started goes too.
    fn drop(&mut self) {
        if !self.removed {
            self.procs.clear();
            let deadline = Instant::now() + REMOVE_WAIT;
            for dir in self.dirs.iter().rev() {
                let _ = empty_and_remove(dir, deadline);
            }
        }
    }
}

/// v2: the controller enabled for the children of our cgroup.
fn enable(own: &Path, c: Controller) -> Result<(), String> {
    let file = own.join("cgroup.subtree_control");
    let on = fs::read_to_string(&file).unwrap_or_default();
    if on.split_whitespace().any(|x| x == c.name()) {
        return Ok(());
    }
    fs::write(&file, format!("+{}", c.name())).map_err(|e| {
        format!(
            "cannot enable the {} controller in {}: {e}{}",
            c.name(),
            show::path(&file),
            if e.raw_os_error() == Some(libc::EBUSY) {
                " (cgroup v2 enables controllers only for a cgroup without processes of its own)"
            } else {
                ""
            }
        )
    })
}

/// Removes the empty cgroups that runs of chroot-tool which are gone
/// (killed outright, so they could not remove their own) left beside
/// ours. A busy one stays: rmdir only removes an empty cgroup.
fn sweep(own: &Path) {
    let Ok(entries) = fs::read_dir(own) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("chroot-tool-run-"))
            .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        if !Path::new("/proc").join(pid).exists() {
            let _ = fs::remove_dir(e.path());
        }
    }
}

/// Makes the run's directory; a stale one of an earlier run of the same
/// pid that is empty is taken over.
fn make_dir(dir: &Path) -> Result<(), String> {
    match fs::create_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            // Only an empty cgroup can be removed: a busy one stays and is an error.
            fs::remove_dir(dir)
                .and_then(|()| fs::create_dir(dir))
                .map_err(|e| format!("cannot make the cgroup {}: {e}", show::path(dir)))
        }
        Err(e) => Err(format!("cannot make the cgroup {}: {e}", show::path(dir))),
    }
}

fn write_file(dir: &Path, name: &str, value: &str) -> Result<(), String> {
    let path = dir.join(name);
    OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|mut f| f.write_all(value.as_bytes()))
        .map_err(|e| format!("cannot write {value} to {}: {e}", show::path(&path)))
}

/// Writes the limit of controller `c` into the run's cgroup `dir`.
fn write_limit(dir: &Path, c: Controller, v2: bool, l: &Limits) -> Result<(), String> {
    match (c, v2) {
        (Controller::Memory, true) => {
            let m = l.memory.unwrap_or(u64::MAX).to_string();
            write_file(dir, "memory.max", &m)?;
            // No escape to swap: the limit is the memory the run may use.
            if dir.join("memory.swap.max").exists() {
                write_file(dir, "memory.swap.max", "0")?;
            }
        }
        (Controller::Memory, false) => {
            let m = l.memory.unwrap_or(u64::MAX).to_string();
            write_file(dir, "memory.limit_in_bytes", &m)?;
            if dir.join("memory.memsw.limit_in_bytes").exists() {
                write_file(dir, "memory.memsw.limit_in_bytes", &m)?;
            }
        }
        (Controller::Cpu, true) => {
            let q = l.cpu_quota.unwrap_or(limits::CPU_PERIOD_US);
            write_file(dir, "cpu.max", &format!("{q} {}", limits::CPU_PERIOD_US))?;
        }
        (Controller::Cpu, false) => {
            let q = l.cpu_quota.unwrap_or(limits::CPU_PERIOD_US);
            write_file(dir, "cpu.cfs_period_us", &limits::CPU_PERIOD_US.to_string())?;
            write_file(dir, "cpu.cfs_quota_us", &q.to_string())?;
        }
        (Controller::Pids, _) => {
            write_file(dir, "pids.max", &l.pids.unwrap_or(u64::MAX).to_string())?;
        }
    }
    Ok(())
}

/// The pids in the cgroup `dir`.
fn members(dir: &Path) -> io::Result<Vec<i32>> {
    Ok(pids_of(&fs::read_to_string(dir.join("cgroup.procs"))?))
}

/// The pids of a `cgroup.procs` text.
fn pids_of(text: &str) -> Vec<i32> {
    text.split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Kills what is in `dir` until it is empty, then removes it; by `deadline`.
fn empty_and_remove(dir: &Path, deadline: Instant) -> io::Result<()> {
    loop {
        let pids = match members(dir) {
            Ok(p) => p,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        if pids.is_empty() {
            match fs::remove_dir(dir) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                // A task that just left may still be counted: try again.
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {}
                Err(e) => return Err(e),
            }
        } else {
            // A pid read from the list may be reused before the signal: hold
            // each by a pidfd, then signal only those still in the cgroup.
            let held: Vec<(i32, std::os::fd::OwnedFd)> = pids
                .iter()
                .filter_map(|&p| crate::sys::pidfd::open(p).ok().map(|fd| (p, fd)))
                .collect();
            let still = members(dir).unwrap_or_default();
            for (p, fd) in &held {
                if still.contains(p) {
                    let _ = crate::sys::pidfd::send_signal(fd.as_fd(), libc::SIGKILL);
                }
            }
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "processes {pids:?} still in it after {} s",
                        REMOVE_WAIT.as_secs()
                    ),
                ));
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A size as given: `50M`, `1G`, or bytes.
fn human_size(b: u64) -> String {
    for (shift, s) in [(40, "T"), (30, "G"), (20, "M"), (10, "K")] {
        if b >= 1 << shift && b % (1 << shift) == 0 {
            return format!("{}{s}", b >> shift);
        }
    }
    b.to_string()
}

/// A quota as CPUs: `0.5`, `1.5`, `2`.
fn human_cpus(q: u64) -> String {
    let s = format!("{:.5}", q as f64 / limits::CPU_PERIOD_US as f64);
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_cgroup_lines() {
        let l = parse_proc_cgroup("4:memory:/a/b\n1:cpu,cpuacct:/\n0::/x\n");
        assert_eq!(l[0], ("memory".into(), "/a/b".into()));
        assert_eq!(l[1], ("cpu,cpuacct".into(), "/".into()));
        assert_eq!(l[2], ("".into(), "/x".into()));
    }

    #[test]
    fn names_of_limits() {
        assert_eq!(human_size(50 << 20), "50M");
        assert_eq!(human_size(1000), "1000");
        assert_eq!(human_cpus(50_000), "0.5");
        assert_eq!(human_cpus(200_000), "2");
        assert_eq!(human_cpus(1000), "0.01");
    }
}
