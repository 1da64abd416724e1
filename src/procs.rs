//! Processes inside a sandbox (their root directory is at or below DIR) and
//! ending them: TERM, a grace period, KILL. Each process is held by a pidfd
//! from before it is checked, so a recycled pid is never signalled.
use std::fs;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Proc {
    pub pid: i32,
    pub comm: String,
}

/// Is the process's root directory `dir` or below it?
fn rooted_in(pid: i32, dir: &Path, dir_id: (u64, u64)) -> bool {
    let root = format!("/proc/{pid}/root");
    if fs::read_link(&root).is_ok_and(|r| r.starts_with(dir)) {
        return true;
    }
    fs::metadata(&root).is_ok_and(|m| (m.dev(), m.ino()) == dir_id)
}

fn comm(pid: i32) -> String {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim_end().to_string())
        .unwrap_or_default()
}

fn pids() -> Vec<i32> {
    let me = std::process::id() as i32;
    fs::read_dir("/proc")
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .filter(|&p| p != me)
                .collect()
        })
        .unwrap_or_default()
}

fn dir_id(dir: &Path) -> (u64, u64) {
    fs::metadata(dir)
        .map(|m| (m.dev(), m.ino()))
        .unwrap_or((0, 0))
}

/// The processes whose root is inside `dir`.
pub fn inside(dir: &Path) -> Vec<Proc> {
    let id = dir_id(dir);
    pids()
        .into_iter()
        .filter(|&p| rooted_in(p, dir, id))
        .map(|pid| Proc {
            pid,
            comm: comm(pid),
        })
        .collect()
}

fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    // SAFETY: plain syscall; a non-negative result is a new descriptor we own.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    (r >= 0).then(|| unsafe { OwnedFd::from_raw_fd(r as i32) })
}

fn send(fd: &OwnedFd, sig: i32) {
    // SAFETY: valid pidfd, no siginfo.
    unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            sig,
            std::ptr::null::<u8>(),
            0,
        );
    }
}

/// Still running (a pidfd turns readable when its process exits).
fn alive(fd: &OwnedFd) -> bool {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, no wait.
    unsafe { libc::poll(&mut p, 1, 0) == 0 }
}

/// Ends every process inside `dir`: TERM, up to `grace` for them to exit,
/// then KILL. Repeats for processes that appear meanwhile. Returns how many
/// were ended and those still alive at the end.
pub fn end_all(dir: &Path, grace: Duration) -> (usize, Vec<Proc>) {
    let id = dir_id(dir);
    let mut seen = std::collections::HashSet::new();
    for _ in 0..5 {
        let held: Vec<(i32, OwnedFd)> = pids()
            .into_iter()
            .filter_map(|p| pidfd_open(p).map(|fd| (p, fd)))
            .filter(|(p, _)| rooted_in(*p, dir, id))
            .collect();
        if held.is_empty() {
            return (seen.len(), vec![]);
        }
        seen.extend(held.iter().map(|(p, _)| *p));
        for (_, fd) in &held {
            send(fd, libc::SIGTERM);
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline && held.iter().any(|(_, fd)| alive(fd)) {
            std::thread::sleep(Duration::from_millis(20));
        }
        for (_, fd) in held.iter().filter(|(_, fd)| alive(fd)) {
            send(fd, libc::SIGKILL);
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline && held.iter().any(|(_, fd)| alive(fd)) {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    (seen.len(), inside(dir))
}

/// The parent pid in a `/proc/PID/stat` text (after the last `)`: comm may hold anything).
pub fn ppid_of_stat(stat: &str) -> Option<i32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

fn ppid(pid: i32) -> Option<i32> {
    ppid_of_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
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
        if let Some(fd) = pidfd_open(p) {
            let parent = all.iter().find(|(q, _)| *q == p).map(|(_, pp)| *pp);
            if ppid(p) == parent {
                send(&fd, sig);
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
    }
}
