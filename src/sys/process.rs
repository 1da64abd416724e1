//! Starting a program by descriptor: what was checked is what runs.
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;

/// A command that executes the file `fd` refers to (an `O_PATH` descriptor,
/// close-on-exec), not a path that could be swapped after it was checked:
/// it runs `/proc/self/fd/N`, the kernel's name for that very file, and the
/// child keeps `N` open across exec so that a script's interpreter, which
/// the kernel hands `/proc/self/fd/N`, can open it. The descriptor must
/// stay open until the command is spawned.
pub fn command_of_fd(fd: BorrowedFd) -> Command {
    let raw = fd.as_raw_fd();
    let mut cmd = Command::new(PathBuf::from(format!("/proc/self/fd/{raw}")));
    // SAFETY: fcntl is async-signal-safe; `raw` is open in the child (it is
    // inherited; only exec would close it).
    unsafe {
        cmd.pre_exec(move || {
            if libc::fcntl(raw, libc::F_SETFD, 0) < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd
}

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Exited(i32),
    /// Killed by this signal (any number, real-time signals included).
    Signaled(i32),
}

/// Waits for the child `pid` to end and reaps it (retrying on EINTR).
/// Unlike nix's `waitpid`, any signal number is reported, not only those
/// nix has a name for.
pub fn wait_child(pid: i32) -> io::Result<Ended> {
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: waitpid writes the status into our integer.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if libc::WIFEXITED(status) {
            return Ok(Ended::Exited(libc::WEXITSTATUS(status)));
        }
        if libc::WIFSIGNALED(status) {
            return Ok(Ended::Signaled(libc::WTERMSIG(status)));
        }
    }
}
