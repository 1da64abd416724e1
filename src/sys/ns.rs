//! The raw calls of the holder (`crate::holder`): a fork of a
//! single-threaded process, the signals it ignores, the wait of an init
//! that reaps, and what a process that joined a holder turns off.
use std::io;
use std::os::fd::RawFd;

/// The number of threads of this process (`/proc/self/status`).
fn threads() -> Option<usize> {
    let s = super::read_proc(std::path::Path::new("/proc/self/status")).ok()?;
    super::status_field(&s, "Threads:")?.parse().ok()
}

/// What [`fork`] returned in this process.
pub enum Forked {
    Child,
    Parent(libc::pid_t),
}

/// fork(2). Refused in a process with more than one thread: the child of
/// a single-threaded process may go on as the parent would (allocate,
/// take locks), which the holder's setup does.
pub fn fork() -> io::Result<Forked> {
    if threads() != Some(1) {
        return Err(io::Error::other(
            "cannot fork a helper from a process with several threads",
        ));
    }
    // SAFETY: the process is single-threaded (checked above), so the child
    // holds no lock another thread held.
    match unsafe { super::alloc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(pid)),
    }
}

/// Ends this process at once, running no destructor and no exit handler
/// (a forked child must not flush or unlink what its parent owns).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and touches nothing of ours.
    unsafe { libc::_exit(code) }
}

/// The signals a holder ignores: the end of its terminal (it outlives it),
/// and the usual requests to end, which only `off` makes (with KILL).
pub fn ignore_signals() {
    for sig in [
        libc::SIGHUP,
        libc::SIGINT,
        libc::SIGQUIT,
        libc::SIGTERM,
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGPIPE,
        libc::SIGALRM,
        libc::SIGTSTP,
        libc::SIGTTIN,
        libc::SIGTTOU,
    ] {
        // SAFETY: setting a disposition to SIG_IGN.
        unsafe { libc::signal(sig, libc::SIG_IGN) };
    }
}

/// stdin, stdout and stderr onto /dev/null, every other descriptor but
/// those in `keep` closed: a holder keeps no terminal, pipe or lock of its
/// caller.
pub fn detach_descriptors(keep: &[RawFd]) -> io::Result<()> {
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    use std::os::fd::AsRawFd;
    let mut keep: Vec<libc::c_uint> = keep
        .iter()
        .filter(|&&fd| fd > 2)
        .map(|&fd| fd as libc::c_uint)
        .collect();
    keep.sort_unstable();
    // SAFETY: dup2 onto the standard descriptors; close_range on ranges
    // between the descriptors kept.
    unsafe {
        for fd in 0..3 {
            if libc::dup2(null.as_raw_fd(), fd) < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        drop(null);
        let mut from: libc::c_uint = 3;
        for fd in keep {
            if fd > from {
                libc::syscall(libc::SYS_close_range, from, fd - 1, 0);
            }
            from = from.max(fd + 1);
        }
        libc::syscall(libc::SYS_close_range, from, libc::c_uint::MAX, 0);
    }
    Ok(())
}

/// The holder's name in `ps` (at most 15 bytes).
pub fn set_name(name: &std::ffi::CStr) {
    // SAFETY: a valid C string.
    unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr()) };
}

/// Brings the loopback interface of our network namespace up.
pub fn loopback_up() -> io::Result<()> {
    // SAFETY: a socket and an ioctl on a zeroed request.
    unsafe { super::child::loopback_up() }
}

/// Makes this process undumpable: once it joined a holder's user
/// namespace, the processes inside (root there) may not ptrace it nor
/// open its descriptors through /proc.
pub fn not_dumpable() {
    // SAFETY: a plain prctl.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0) };
}

/// The holder's wait, for ever: it reaps every child that ends (as init
/// of its pid namespace, the orphans inside are its children). It ends
/// only by SIGKILL (from `off`).
pub fn hold() -> ! {
    // SAFETY: signal-set calls on a local set; waitpid on any child.
    unsafe {
        let mut set = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
        libc::sigemptyset(set.as_mut_ptr());
        libc::sigaddset(set.as_mut_ptr(), libc::SIGCHLD);
        let set = set.assume_init();
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        loop {
            let mut info = std::mem::MaybeUninit::<libc::siginfo_t>::uninit();
            libc::sigwaitinfo(&set, info.as_mut_ptr());
            loop {
                let mut w = 0;
                if libc::waitpid(-1, &mut w, libc::WNOHANG) <= 0 {
                    break;
                }
            }
        }
    }
}

/// `_IOR(NSIO, 0x5, __u64)`: the 64-bit id of a mount namespace.
pub const NS_GET_MNTNS_ID: libc::c_ulong = (2 << 30) | (8 << 16) | (0xb7 << 8) | 0x5;

/// The id the kernel gives the mount namespace at `path` (a
/// `/proc/PID/ns/mnt` link, `NS_GET_MNTNS_ID`): 64 bits and never given
/// again, where its inode number is given again as soon as it is gone.
/// `None` where the kernel has no such call.
pub fn mnt_ns_id(path: &std::path::Path) -> Option<u64> {
    mnt_ns_id_of_file(&std::fs::File::open(path).ok()?)
}

/// [`mnt_ns_id`] of the namespace `f` is open on (a `/proc/PID/ns/mnt`).
pub fn mnt_ns_id_of_file(f: &std::fs::File) -> Option<u64> {
    use std::os::fd::AsRawFd;
    let mut id: u64 = 0;
    // SAFETY: an ioctl on a descriptor we own; the kernel writes one u64
    // into `id`, which lives for the call.
    let r = unsafe { libc::ioctl(f.as_raw_fd(), NS_GET_MNTNS_ID as _, &mut id as *mut u64) };
    (r == 0).then_some(id)
}

/// [`mnt_ns_id`] of the process `pid`.
pub fn mnt_ns_id_of(pid: i32) -> Option<u64> {
    mnt_ns_id(std::path::Path::new(&format!("/proc/{pid}/ns/mnt")))
}

/// Whether the namespace `f` is open on (a `/proc/PID/ns/` link, of a
/// user or pid namespace) is the one of inode `ino` or descends from it:
/// each parent is asked of the kernel (`NS_GET_PARENT`), up to the first
/// one out of our reach or the top.
pub fn descends_from(f: std::fs::File, ino: u64) -> bool {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    const NS_GET_PARENT: libc::c_ulong = (0xb7 << 8) | 0x2;
    let mut fd: OwnedFd = f.into();
    for _ in 0..64 {
        let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
        // SAFETY: fstat into a local buffer, read only when it succeeded;
        // an ioctl on a descriptor we own, which returns a new one.
        unsafe {
            if libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) != 0 {
                return false;
            }
            if st.assume_init().st_ino == ino {
                return true;
            }
            let parent = libc::ioctl(fd.as_raw_fd(), NS_GET_PARENT as _);
            if parent < 0 {
                return false;
            }
            fd = OwnedFd::from_raw_fd(parent);
        }
    }
    false
}
