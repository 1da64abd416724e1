//! Moving this process into a new user namespace whose id maps another
//! process writes (the kernel lets a process write only its own single
//! mapping; a range needs the setuid newuidmap, which must run outside).
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;

use nix::fcntl::OFlag;
use nix::unistd::pipe2;

use super::ns::{exit_now, fork, Forked};

/// Unshares a user namespace for this (single-threaded) process and has
/// `write_maps(pid)` write its maps: a helper forked before the unshare,
/// so that it stays in the parent namespace (where newuidmap's setuid
/// counts), waits until the namespace exists, calls `write_maps` with this
/// process's pid and reports. Afterwards this process is root of the new
/// namespace, with the ids `write_maps` mapped. The outer error is the
/// system's (fork, unshare: a multi-threaded caller gets EINVAL); the
/// inner one is `write_maps`'s message.
pub fn unshare_mapped(
    write_maps: impl FnOnce(i32) -> Result<(), String>,
) -> io::Result<Result<(), String>> {
    let (go_r, go_w) = pipe2(OFlag::O_CLOEXEC)?;
    let (res_r, res_w) = pipe2(OFlag::O_CLOEXEC)?;
    let me = std::process::id() as i32;
    // `fork` refuses a multi-threaded caller (unshare of a user namespace
    // needs a single-threaded one too), so the child may run ordinary
    // code; it ends with `exit_now`, never returning.
    match fork()? {
        Forked::Child => {
            drop(go_w);
            drop(res_r);
            exit_now(helper(go_r, res_w, me, write_maps))
        }
        Forked::Parent(child) => {
            drop(go_r);
            drop(res_w);
            // SAFETY: a plain system call on this process.
            let r = unsafe { libc::unshare(libc::CLONE_NEWUSER) };
            let unshared = if r < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(())
            };
            let mut go = std::fs::File::from(go_w);
            if unshared.is_ok() {
                let _ = go.write_all(b"1");
            }
            drop(go);
            let mut msg = String::new();
            let _ = std::fs::File::from(res_r).read_to_string(&mut msg);
            let ended = super::process::wait_child(child)?;
            unshared?;
            Ok(match ended {
                super::process::Ended::Exited(0) => Ok(()),
                other if msg.is_empty() => Err(format!("the id-map helper ended: {other}")),
                _ => Err(msg),
            })
        }
    }
}

fn helper(
    go: OwnedFd,
    res: OwnedFd,
    parent: i32,
    write_maps: impl FnOnce(i32) -> Result<(), String>,
) -> i32 {
    let mut byte = [0u8; 1];
    if std::fs::File::from(go).read_exact(&mut byte).is_err() {
        return 1;
    }
    match write_maps(parent) {
        Ok(()) => 0,
        Err(m) => {
            let _ = std::fs::File::from(res).write_all(m.as_bytes());
            1
        }
    }
}

/// Runs `work` in a child process that first moves into a new user
/// namespace mapped by `write_maps` (see [`unshare_mapped`]); this process
/// stays where it is. The caller must be single-threaded (the child runs
/// ordinary code). The inner error is the mapping's or `work`'s message.
pub fn in_child_mapped(
    write_maps: impl FnOnce(i32) -> Result<(), String>,
    work: impl FnOnce() -> Result<(), String>,
) -> io::Result<Result<(), String>> {
    let (res_r, res_w) = pipe2(OFlag::O_CLOEXEC)?;
    // `fork` refuses a multi-threaded caller; the child ends with
    // `exit_now`, never returning into the caller's code.
    match fork()? {
        Forked::Child => {
            drop(res_r);
            let r = match unshare_mapped(write_maps) {
                Err(e) => Err(format!("entering a user namespace: {e}")),
                Ok(Err(m)) => Err(m),
                Ok(Ok(())) => work(),
            };
            let code = match r {
                Ok(()) => 0,
                Err(m) => {
                    let _ = std::fs::File::from(res_w).write_all(m.as_bytes());
                    1
                }
            };
            exit_now(code)
        }
        Forked::Parent(child) => {
            drop(res_w);
            let mut msg = String::new();
            let _ = std::fs::File::from(res_r).read_to_string(&mut msg);
            Ok(match super::process::wait_child(child)? {
                super::process::Ended::Exited(0) => Ok(()),
                other if msg.is_empty() => Err(format!("ended: {other}")),
                _ => Err(msg),
            })
        }
    }
}
