//! The guard that runs a backend (debootstrap) for `create`: it leads the
//! backend's process group, gives it a private mount namespace, and takes
//! the whole group down when chroot-tool dies, even by SIGKILL.
use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// Makes `cmd`'s spawn go through the guard (see `guard`): `w3` becomes the
/// backend's fd 3, and a copy of `keep` (DIR's lock) is inherited by it.
/// The guard leads a new process group. `cmd` must be spawned from the
/// main thread (the parent-death signal follows the thread that forks).
///
/// With `userns` (the read end of a pipe), the guard first unshares a user
/// namespace, closes every other descriptor it does not need (so that the
/// spawn returns at once, with the guard's pid) and waits for one byte on
/// that pipe: the caller writes the guard's id maps (`idmap`), then that
/// byte; EOF without it ends the guard (status 125). The backend then runs
/// as root of that namespace, in a mount namespace it owns.
pub fn install(cmd: &mut Command, w3: i32, keep: i32, userns: Option<i32>) {
    let parent = std::process::id() as libc::pid_t;
    cmd.process_group(0);
    // SAFETY: between fork and exec, and in the guard that never execs,
    // only async-signal-safe system calls (no allocation, no lock).
    unsafe {
        cmd.pre_exec(move || {
            if let Some(sync) = userns {
                enter_userns(w3, keep, sync)?;
            }
            guard(parent, w3, keep)
        });
    }
}

/// Closes every descriptor but those of `keep` (sorted, async-signal-safe).
unsafe fn close_all_but(keep: &mut [i32]) {
    keep.sort_unstable();
    let mut from: u32 = 0;
    for &k in keep.iter() {
        if k < 0 || (k as u32) < from {
            continue;
        }
        if (k as u32) > from {
            libc::syscall(libc::SYS_close_range, from, k as u32 - 1, 0u32);
        }
        from = k as u32 + 1;
    }
    libc::syscall(libc::SYS_close_range, from, u32::MAX, 0u32);
}

/// The guard's first steps in user-namespace mode (see `install`).
unsafe fn enter_userns(w3: i32, keep: i32, sync: i32) -> io::Result<()> {
    if libc::unshare(libc::CLONE_NEWUSER) < 0 {
        return Err(io::Error::last_os_error());
    }
    // The spawn's own error pipe goes too: the caller gets the pid now.
    close_all_but(&mut [0, 1, 2, w3, keep, sync]);
    let mut byte = 0u8;
    let n = loop {
        let n = libc::read(sync, (&mut byte as *mut u8).cast(), 1);
        if n < 0 && *libc::__errno_location() == libc::EINTR {
            continue;
        }
        break n;
    };
    if n != 1 {
        libc::_exit(125);
    }
    libc::close(sync);
    // Mapped: drop the supplementary groups, which are not (refused when
    // setgroups is denied, the single mapping: they stay, unmapped).
    libc::setgroups(0, std::ptr::null());
    Ok(())
}

/// Runs in the child forked to start debootstrap (async-signal-safe calls
/// only). That child becomes a guard, leader of the new process group,
/// that never execs: it takes a mount namespace of its own (private, so
/// that what debootstrap mounts in DIR lives and dies with it and is never
/// seen outside), forks debootstrap, and waits. When debootstrap ends, the
/// guard ends the same way; when chroot-tool dies (even by SIGKILL: the
/// parent-death signal, set here in a child of the main thread, which
/// lives as long as the process), it kills the whole group, and the
/// namespace with its mounts goes with the last of them. debootstrap
/// itself gets fd 3 (its progress pipe), a descriptor of DIR's lock (so a
/// survivor keeps DIR locked and is seen), and an empty signal mask.
unsafe fn guard(parent: libc::pid_t, w3: i32, keep: i32) -> io::Result<()> {
    let fail = || Err(io::Error::last_os_error());
    if libc::prctl(
        libc::PR_SET_PDEATHSIG,
        libc::SIGHUP as libc::c_ulong,
        0,
        0,
        0,
    ) < 0
    {
        return fail();
    }
    if libc::getppid() != parent {
        return Err(io::Error::from_raw_os_error(libc::ESRCH));
    }
    if libc::unshare(libc::CLONE_NEWNS) < 0 {
        return fail();
    }
    let root = c"/";
    if libc::mount(
        std::ptr::null(),
        root.as_ptr(),
        std::ptr::null(),
        libc::MS_REC | libc::MS_PRIVATE,
        std::ptr::null(),
    ) < 0
    {
        return fail();
    }
    let mut all: libc::sigset_t = std::mem::zeroed();
    libc::sigfillset(&mut all);
    libc::pthread_sigmask(libc::SIG_SETMASK, &all, std::ptr::null_mut());
    let me = libc::getpid();
    // A plain fork by system call: no atfork handler runs (this child of a
    // threaded process may hold copies of locks it cannot take).
    let pid = libc::syscall(libc::SYS_clone, libc::SIGCHLD as libc::c_long, 0, 0, 0, 0);
    if pid < 0 {
        return fail();
    }
    if pid == 0 {
        // debootstrap.
        if libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        ) < 0
            || libc::getppid() != me
        {
            libc::_exit(125);
        }
        // A copy of the lock's descriptor without close-on-exec (above 3).
        if libc::fcntl(keep, libc::F_DUPFD, 10) < 0 {
            return fail();
        }
        if w3 == 3 {
            if libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                return fail();
            }
        } else if libc::dup2(w3, 3) < 0 {
            return fail();
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::pthread_sigmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        return Ok(());
    }
    let pid = pid as libc::pid_t;
    // The guard keeps no descriptor: the pipes end with debootstrap, and
    // chroot-tool's spawn learns that the exec happened.
    if libc::syscall(libc::SYS_close_range, 0u32, u32::MAX, 0u32) < 0 {
        for fd in 0..65536 {
            libc::close(fd);
        }
    }
    let mut wake: libc::sigset_t = std::mem::zeroed();
    libc::sigemptyset(&mut wake);
    libc::sigaddset(&mut wake, libc::SIGHUP);
    libc::sigaddset(&mut wake, libc::SIGCHLD);
    loop {
        let sig = libc::sigwaitinfo(&wake, std::ptr::null_mut());
        if libc::getppid() != parent {
            // chroot-tool is gone: so is everything it started.
            libc::kill(0, libc::SIGKILL);
            libc::_exit(137);
        }
        if sig != libc::SIGCHLD {
            continue;
        }
        let mut status = 0;
        if libc::waitpid(pid, &mut status, libc::WNOHANG) != pid {
            continue;
        }
        if libc::WIFEXITED(status) {
            libc::_exit(libc::WEXITSTATUS(status));
        }
        let sig = libc::WTERMSIG(status);
        libc::signal(sig, libc::SIG_DFL);
        let mut one: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut one);
        libc::sigaddset(&mut one, sig);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &one, std::ptr::null_mut());
        libc::kill(me, sig);
        libc::_exit(128 + sig);
    }
}
