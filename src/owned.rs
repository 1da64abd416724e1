//! Which binds of DIR onto itself chroot-tool made. A bind of a directory
//! onto itself has the same shape whoever made it (kubelet binds
//! `/var/lib/kubelet` onto itself; users do it by hand), so the shape alone
//! never makes a directory a sandbox. When `on` makes its self-bind it
//! records the new mount's id, before attaching it, in a file named by the
//! mount namespace and the mount id, holding DIR's path:
//! `/run/chroot-tool/on/<mntns>-<id>`, a root-only directory on the host
//! side, out of the sandbox's reach, gone at reboot with the mounts it
//! speaks of. A self-bind counts as the sandbox's only when its record is
//! there and names the same DIR. `CHROOT_TOOL_RUN_DIR` moves the directory
//! (the tests give each test its own).
use std::ffi::OsString;
use std::io::{self, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// chroot-tool's root-only directory on the host side: `/run/chroot-tool`,
/// or `$CHROOT_TOOL_RUN_DIR` (the records and DIR's locks are below it).
pub fn run_dir() -> PathBuf {
    std::env::var_os("CHROOT_TOOL_RUN_DIR")
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from("/run/chroot-tool"), PathBuf::from)
}

/// The records' directory.
fn records() -> PathBuf {
    run_dir().join("on")
}

/// This process's mount namespace (the inode of `/proc/self/ns/mnt`).
fn mntns() -> u64 {
    static NS: OnceLock<u64> = OnceLock::new();
    *NS.get_or_init(|| std::fs::metadata("/proc/self/ns/mnt").map_or(0, |m| m.ino()))
}

fn file(id: u64) -> PathBuf {
    records().join(format!("{}-{id}", mntns()))
}

/// Records that the mount `id` (not attached yet) is the self-bind of `dir`.
pub fn note(dir: &Path, id: u64) -> io::Result<()> {
    let at = records();
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&at)?;
    let tmp = at.join(format!(".{}-{id}.{}", mntns(), std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)?;
    f.write_all(dir.as_os_str().as_bytes())?;
    drop(f);
    std::fs::rename(&tmp, file(id))
}

/// Whether the mount `id` at `dir` is a self-bind chroot-tool made.
pub fn is_ours(dir: &Path, id: u64) -> bool {
    use std::io::Read;
    let Ok(f) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(file(id))
    else {
        return false;
    };
    let mut bytes = Vec::new();
    let cap = dir.as_os_str().len() as u64 + 1;
    if f.take(cap).read_to_end(&mut bytes).is_err() {
        return false;
    }
    OsString::from_vec(bytes) == dir.as_os_str()
}

/// Drops the record of the mount `id` (it was unmounted, or never attached).
pub fn forget(id: u64) {
    let _ = std::fs::remove_file(file(id));
}

/// Another mount namespace in which `dir` is on: a record of a self-bind
/// of `dir` made in a namespace other than ours, with a process still in
/// that namespace (one is returned). Records of namespaces that no process
/// holds any more are stale and dropped.
pub fn on_elsewhere(dir: &Path) -> Option<i32> {
    use std::io::Read;
    let me = mntns();
    let entries = std::fs::read_dir(records()).ok()?;
    let mut namespaces: Vec<(u64, PathBuf)> = vec![];
    for e in entries.flatten() {
        let name = e.file_name();
        let Some((ns, _)) = name.to_str().and_then(|n| n.split_once('-')) else {
            continue;
        };
        let Ok(ns) = ns.parse::<u64>() else { continue };
        if ns == me {
            continue;
        }
        let mut bytes = Vec::new();
        let read = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(e.path())
            .and_then(|f| {
                f.take(dir.as_os_str().len() as u64 + 1)
                    .read_to_end(&mut bytes)
            });
        if read.is_ok() && bytes == dir.as_os_str().as_bytes() {
            namespaces.push((ns, e.path()));
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
    let mut found = None;
    for (ns, path) in namespaces {
        match holders.iter().find(|(_, n)| *n == ns) {
            Some((pid, _)) => found = found.or(Some(*pid)),
            None => {
                let _ = std::fs::remove_file(path);
            }
        }
    }
    found
}
