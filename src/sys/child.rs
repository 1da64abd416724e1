//! The one way a launched command is started: [`spawn`] clones a child
//! that shares our memory and runs while we wait (`CLONE_VM | CLONE_VFORK`,
//! as `posix_spawn` does: no copy of our page tables, no fork of the tool),
//! takes the ordered steps below with system calls only on data prepared
//! before the clone, and execs. A failed step is sent back as one `i32`,
//! the errno with the step in its upper bits, so that a chdir's ENOENT is
//! never taken for "command not found": through the memory we share, or a
//! close-on-exec pipe when a plain fork was needed.
use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;

/// One step of the child's setup, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum Step {
    Signals = 1,
    Session,
    Ctty,
    Stdio,
    Chroot,
    Groups,
    Gid,
    Uid,
    Parent,
    Chdir,
    Cgroup,
    Rlimits,
    /// The run's own mount namespace (unshare, private propagation).
    MountNs,
    /// Attaching one of the run's own mounts (its index in the upper bits).
    Mount,
    /// The run's own network namespace and its loopback.
    NetNs,
    /// The run's own pid namespace and its init.
    PidNs,
    /// A fresh proc on the pid namespace's /proc.
    Proc,
    /// `--ephemeral`: the run's overlay over the root, and the sandbox's
    /// mounts bound again on it (the index of one in the upper bits).
    Ephemeral,
}

const STEPS: [Step; 18] = [
    Step::Signals,
    Step::Session,
    Step::Ctty,
    Step::Stdio,
    Step::Chroot,
    Step::Groups,
    Step::Gid,
    Step::Uid,
    Step::Parent,
    Step::Chdir,
    Step::Cgroup,
    Step::Rlimits,
    Step::MountNs,
    Step::Mount,
    Step::NetNs,
    Step::PidNs,
    Step::Proc,
    Step::Ephemeral,
];

const STEP_SHIFT: i32 = 16;
/// Which of the run's mounts failed ([`Step::Mount`]).
const INDEX_SHIFT: i32 = 24;

/// The terminal the child takes: a pty peer, made its controlling terminal
/// in a session of its own.
#[derive(Debug, Clone, Copy)]
pub struct Tty {
    pub peer: RawFd,
    /// Our stderr is a terminal: the child's goes to the pty too.
    pub stderr: bool,
}

/// Who the child becomes after the chroot.
#[derive(Debug, Clone)]
pub struct Ids {
    pub uid: libc::uid_t,
    pub gid: libc::gid_t,
    /// Supplementary groups (setgroups).
    pub groups: Vec<libc::gid_t>,
}

/// Everything the child does before exec.
#[derive(Debug)]
pub struct Steps {
    /// Signals whose disposition goes back to the default (the mask is
    /// emptied too): `launch::spawn` decides which (every one caught when
    /// it looked, so that no handler of ours runs in the child, which
    /// shares our memory).
    pub reset: Vec<libc::c_int>,
    pub tty: Option<Tty>,
    /// Descriptors that become the child's stdin, stdout and stderr (when
    /// it has no tty): a file that captures its output, `/dev/null`.
    pub stdio: Option<[RawFd; 3]>,
    /// A directory descriptor of the root to chroot into (fchdir + chroot ".").
    pub root: RawFd,
    pub ids: Option<Ids>,
    /// Our pid: the child dies with us (PR_SET_PDEATHSIG) and checks we
    /// have not already gone.
    pub parent: libc::pid_t,
    /// The working directory, absolute inside the root.
    pub cwd: CString,
    /// `cgroup.procs` of the run's cgroup (one per hierarchy): the child
    /// writes its pid to each, first, so all it starts is inside.
    pub cgroup_procs: Vec<RawFd>,
    /// A cgroup v2 directory the child is started in (`clone3` with
    /// `CLONE_INTO_CGROUP`: no migration, which waits for an RCU grace
    /// period, milliseconds, once the kernel has been idle); where `clone3`
    /// is refused (a seccomp filter), the child writes its pid to the
    /// directory's `cgroup.procs` instead, before those of `cgroup_procs`.
    pub cgroup_dir: Option<RawFd>,
    /// setrlimit resources and values (soft and hard; `u64::MAX`:
    /// unlimited), set before the change of identity.
    pub rlimits: Vec<(libc::c_int, u64)>,
    pub ns: Namespaces,
}

/// Namespaces of the command's own; all off by default (the host's).
#[derive(Debug, Default)]
pub struct Namespaces {
    /// A mount namespace of its own, entered before the chroot (the root's
    /// directory follows into it), every mount made private first so that
    /// nothing made in it reaches the host.
    pub mount: bool,
    /// Detached mounts (descriptors) and where each goes, as a path inside
    /// the root (no symlinks on the way: resolved before the fork).
    pub mounts: Vec<(RawFd, CString)>,
    /// `--ephemeral`: a detached overlay whose lower layer is the root,
    /// attached on the root in the run's mount namespace and chrooted
    /// into instead of it; then `rebinds` (the sandbox's own mounts,
    /// which an overlay's lower layer does not carry) attached on it at
    /// the same paths, before `mounts`.
    pub ephemeral: Option<RawFd>,
    pub rebinds: Vec<(RawFd, CString)>,
    /// A network namespace of its own, loopback up.
    pub net: bool,
    /// A pid namespace of its own: `Some(/proc as a path inside the
    /// root)`, where its init mounts a fresh proc.
    pub pid: Option<CString>,
    /// The supervisor joined a holder's pid namespace: the child is in it,
    /// its parent (the supervisor) outside, so `getppid` says 0.
    pub joined_pid: bool,
}

fn failed(step: Step) -> io::Error {
    let errno = io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO);
    io::Error::from_raw_os_error(errno | (step as i32) << STEP_SHIFT)
}

fn check(ret: libc::c_int, step: Step) -> io::Result<()> {
    if ret < 0 {
        Err(failed(step))
    } else {
        Ok(())
    }
}

/// What the child executes once its steps are done.
#[derive(Debug)]
pub struct Exec {
    /// Where the program may be, in the order `execvp` would try them: the
    /// program itself when it names a path, else each directory of the
    /// command's own `PATH` joined with it (searched inside the root, after
    /// the chroot).
    candidates: Vec<CString>,
    argv: Vec<CString>,
    env: Vec<CString>,
}

/// `execvp`'s `PATH` when the environment has none.
const DEFAULT_PATH: &[u8] = b"/bin:/usr/bin";

impl Exec {
    /// `prog` with `args` (`argv[0]` is `arg0` when given, else `prog`) in
    /// the environment `env`. `Err` names what holds a NUL byte.
    pub fn new(
        prog: &OsStr,
        arg0: Option<&OsStr>,
        args: &[OsString],
        env: &[(OsString, OsString)],
    ) -> Result<Exec, &'static str> {
        let c = |b: &[u8], what| CString::new(b).map_err(|_| what);
        let name = prog.as_bytes();
        let candidates = if name.contains(&b'/') {
            vec![c(name, "the program")?]
        } else {
            let path = env
                .iter()
                .rev()
                .find(|(k, _)| k == "PATH")
                .map_or(DEFAULT_PATH, |(_, v)| v.as_bytes());
            let mut out = Vec::new();
            for dir in path.split(|b| *b == b':') {
                let mut full = if dir.is_empty() {
                    b".".to_vec()
                } else {
                    dir.to_vec()
                };
                full.push(b'/');
                full.extend_from_slice(name);
                out.push(c(&full, "PATH")?);
            }
            out
        };
        let mut argv = vec![c(arg0.unwrap_or(prog).as_bytes(), "the program")?];
        for a in args {
            argv.push(c(a.as_bytes(), "an argument")?);
        }
        let mut envp = Vec::with_capacity(env.len());
        for (k, v) in env {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            envp.push(c(&kv, "the environment")?);
        }
        Ok(Exec {
            candidates,
            argv,
            env: envp,
        })
    }
}

/// What the child reads: everything is prepared, it only makes system calls.
struct Child<'a> {
    steps: &'a Steps,
    candidates: &'a [CString],
    argv: Vec<*const libc::c_char>,
    /// `/bin/sh`, a placeholder for the script, the arguments: the fallback
    /// of `execvp` for a file the kernel cannot execute (ENOEXEC).
    sh_argv: *mut *const libc::c_char,
    envp: Vec<*const libc::c_char>,
    /// Where a failure is reported: the write end of a pipe after a plain
    /// fork; with shared memory, `failed` (read once the child has exec'ed
    /// or exited, which `CLONE_VFORK` waits for: no pipe to make and read).
    report: Option<RawFd>,
    failed: std::sync::atomic::AtomicI32,
    /// `cgroup.procs` of `steps.cgroup_dir` when the child was not started
    /// in it (-1: it was, or there is none).
    join: RawFd,
    /// The id of the run's own mount namespace (`NS_GET_MNTNS_ID`), which
    /// the child writes once it has made it (0: none, or not known; only
    /// seen when it shares our memory).
    mnt_ns: std::sync::atomic::AtomicU64,
}

/// What [`spawn`] started.
#[derive(Debug, Clone, Copy)]
pub struct Spawned {
    pub pid: libc::pid_t,
    /// The id of its own mount namespace (`NS_GET_MNTNS_ID`, never given
    /// again), when it made one and the kernel tells: known even if the
    /// command has already ended, when `/proc/PID/ns/mnt` is gone.
    pub mnt_ns: Option<u64>,
}

/// The child's stack (it shares our memory, so it needs one of its own).
const STACK: usize = 256 * 1024;

/// Starts `exec` after `steps` in a new child and returns its pid once it
/// has exec'ed, or the error of the step (or of the exec) that failed; a
/// child that failed is reaped. `steps.root`, `steps.tty` and the other
/// descriptors in `steps` must stay open until this returns.
///
/// The child shares our memory and we are suspended until it execs
/// (`CLONE_VFORK`), except with a pid namespace of its own (its relays
/// never exec) or a holder's pid namespace joined: a plain fork then.
pub fn spawn(steps: &Steps, exec: &Exec) -> io::Result<Spawned> {
    let ptrs = |v: &[CString]| -> Vec<*const libc::c_char> {
        v.iter()
            .map(|c| c.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect()
    };
    let mut sh_argv = vec![c"/bin/sh".as_ptr(), std::ptr::null()];
    sh_argv.extend(ptrs(&exec.argv[1..]));
    // The kernel refuses CLONE_VM into another pid namespace than ours (a
    // holder's, joined by setns).
    let shared = steps.ns.pid.is_none() && !steps.ns.joined_pid;
    let mut pipe = [-1; 2];
    let mut stack = vec![0u8; STACK];
    // SAFETY: plain system calls on valid pointers; the child only reads
    // `child` (alive until it has exec'ed or exited: we wait for that) and
    // runs on its own stack.
    unsafe {
        if !shared && libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) < 0 {
            return Err(ours("pipe2", io::Error::last_os_error()));
        }
        let mut child = Child {
            steps,
            candidates: &exec.candidates,
            argv: ptrs(&exec.argv),
            sh_argv: sh_argv.as_mut_ptr(),
            envp: ptrs(&exec.env),
            report: (!shared).then_some(pipe[1]),
            failed: std::sync::atomic::AtomicI32::new(0),
            join: -1,
            mnt_ns: std::sync::atomic::AtomicU64::new(0),
        };
        // No handler of ours may run in the child before it has reset them.
        let mut all = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
        libc::sigfillset(all.as_mut_ptr());
        let mut old = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
        libc::pthread_sigmask(libc::SIG_SETMASK, all.as_ptr(), old.as_mut_ptr());
        let flags = if shared {
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD
        } else {
            libc::SIGCHLD
        };
        let top = stack.as_mut_ptr().add(STACK) as usize & !15;
        let mut pid = -1;
        let mut cloned = io::Error::from_raw_os_error(libc::ENOSYS);
        let mut call = "clone";
        if let Some(dir) = steps.cgroup_dir {
            let stack = shared.then(|| {
                (
                    stack.as_mut_ptr() as u64,
                    (top - stack.as_ptr() as usize) as u64,
                )
            });
            match clone_into(dir, shared, stack, &child) {
                Ok(p) => pid = p,
                // Refused by a filter, or not a kernel's: the slower way.
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::ENOSYS | libc::EPERM | libc::E2BIG | libc::EINVAL)
                    ) =>
                {
                    child.join = libc::openat(
                        dir,
                        c"cgroup.procs".as_ptr(),
                        libc::O_WRONLY | libc::O_CLOEXEC,
                    );
                    if child.join < 0 {
                        cloned = io::Error::last_os_error();
                        call = "open the cgroup.procs of the sandbox's cgroup";
                    }
                }
                Err(e) => cloned = e,
            }
        }
        if pid < 0 && (steps.cgroup_dir.is_none() || child.join >= 0) {
            pid = libc::clone(
                child_main,
                top as *mut libc::c_void,
                flags,
                &child as *const Child as *mut libc::c_void,
            );
            cloned = io::Error::last_os_error();
        }
        if child.join >= 0 {
            libc::close(child.join);
        }
        libc::pthread_sigmask(libc::SIG_SETMASK, old.as_ptr(), std::ptr::null_mut());
        if !shared {
            libc::close(pipe[1]);
        }
        if pid < 0 {
            if !shared {
                libc::close(pipe[0]);
            }
            return Err(ours(call, cloned));
        }
        let code = if shared {
            child.failed.load(std::sync::atomic::Ordering::Acquire)
        } else {
            let mut code: i32 = 0;
            let n = loop {
                let n = libc::read(pipe[0], (&mut code as *mut i32).cast(), 4);
                if n >= 0 || *libc::__errno_location() != libc::EINTR {
                    break n;
                }
            };
            libc::close(pipe[0]);
            if n == 4 {
                code
            } else {
                0
            }
        };
        let mnt_ns = child.mnt_ns.load(std::sync::atomic::Ordering::Acquire);
        drop(child);
        drop(sh_argv);
        if code != 0 {
            let mut w = 0;
            while libc::waitpid(pid, &mut w, 0) < 0 && *libc::__errno_location() == libc::EINTR {}
            return Err(io::Error::from_raw_os_error(code));
        }
        Ok(Spawned {
            pid,
            mnt_ns: (mnt_ns != 0).then_some(mnt_ns),
        })
    }
}

/// `struct clone_args` of `clone3`, up to `cgroup` (`CLONE_ARGS_SIZE_VER2`).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Starts `child_main(child)` in the cgroup v2 directory `dir`: sharing
/// our memory on `stack` (base, size) and suspending us until it execs
/// when `shared`, else as a fork. The child's pid, or why `clone3` failed.
///
/// # Safety
/// `child` and `stack` stay valid until the child has exec'ed or exited
/// (`CLONE_VFORK` waits for that when shared; a fork has its own copy).
unsafe fn clone_into(
    dir: RawFd,
    shared: bool,
    stack: Option<(u64, u64)>,
    child: &Child,
) -> io::Result<libc::pid_t> {
    let mut args = CloneArgs {
        flags: CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: dir as u64,
        ..CloneArgs::default()
    };
    if shared {
        args.flags |= (libc::CLONE_VM | libc::CLONE_VFORK) as u64;
        let (base, size) = stack.ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
        (args.stack, args.stack_size) = (base, size);
    }
    let r = clone3(
        &args,
        child_main,
        child as *const Child as *mut libc::c_void,
    );
    if r < 0 {
        return Err(io::Error::from_raw_os_error(-r as i32));
    }
    Ok(r as libc::pid_t)
}

/// The raw `clone3` system call; in the child, `f(arg)` runs (on the new
/// stack, if one is given) and its return is the child's exit status: the
/// child never comes back here. Returns the pid, or `-errno`.
#[cfg(target_arch = "x86_64")]
unsafe fn clone3(
    args: &CloneArgs,
    f: extern "C" fn(*mut libc::c_void) -> libc::c_int,
    arg: *mut libc::c_void,
) -> i64 {
    let ret: i64;
    // The child starts after `syscall` with rax 0 and rsp at the top of
    // its stack (16-aligned; a fork's is ours, which asm! keeps aligned
    // for a call); r12 and r13 survive the system call.
    std::arch::asm!(
        "syscall",
        "test rax, rax",
        "jnz 2f",
        "mov rdi, r13",
        "call r12",
        "mov edi, eax",
        "mov eax, 60",
        "syscall",
        "ud2",
        "2:",
        inlateout("rax") libc::SYS_clone3 => ret,
        in("rdi") args as *const CloneArgs,
        in("rsi") std::mem::size_of::<CloneArgs>(),
        in("r12") f as usize,
        in("r13") arg,
        lateout("rcx") _,
        lateout("r11") _,
    );
    ret
}

/// See the x86_64 version; x9 and x10 survive the system call.
#[cfg(target_arch = "aarch64")]
unsafe fn clone3(
    args: &CloneArgs,
    f: extern "C" fn(*mut libc::c_void) -> libc::c_int,
    arg: *mut libc::c_void,
) -> i64 {
    let ret: i64;
    std::arch::asm!(
        "svc 0",
        "cbnz x0, 2f",
        "mov x0, x10",
        "blr x9",
        "mov x8, 93",
        "svc 0",
        "brk 0",
        "2:",
        inlateout("x0") args as *const CloneArgs => ret,
        in("x1") std::mem::size_of::<CloneArgs>(),
        in("x8") libc::SYS_clone3,
        in("x9") f as usize,
        in("x10") arg,
    );
    ret
}

/// Elsewhere: as a kernel without `clone3` (the child joins by writing).
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
unsafe fn clone3(
    _args: &CloneArgs,
    _f: extern "C" fn(*mut libc::c_void) -> libc::c_int,
    _arg: *mut libc::c_void,
) -> i64 {
    -(libc::ENOSYS as i64)
}

/// A failure of ours before the child ran, told apart from the child's
/// (a bare errno, which [`decode`] reads as the exec's): `ulimit -n` too
/// low for the pipe is not "cannot execute". The errno stays its source.
fn ours(call: &'static str, source: io::Error) -> io::Error {
    io::Error::new(source.kind(), BeforeChild { call, source })
}

/// See [`ours`].
#[derive(Debug)]
struct BeforeChild {
    call: &'static str,
    source: io::Error,
}

impl std::fmt::Display for BeforeChild {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.call)
    }
}

impl std::error::Error for BeforeChild {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// The child: its steps, then the exec; on failure the error goes to the
/// pipe and the child exits.
extern "C" fn child_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `Child` that `spawn` keeps alive until we exec
    // or exit; only system calls from here on.
    unsafe {
        let c = &*(arg as *const Child);
        let e = match run(c.steps, c.join, &c.mnt_ns) {
            Ok(()) => exec(c),
            Err(e) => e,
        };
        // Never 0: that says "no failure".
        let code: i32 = e.raw_os_error().filter(|&c| c != 0).unwrap_or(libc::EIO);
        match c.report {
            Some(fd) => {
                libc::write(fd, (&code as *const i32).cast(), 4);
            }
            None => c.failed.store(code, std::sync::atomic::Ordering::Release),
        }
        libc::_exit(127)
    }
}

/// `execvp`'s search over the prepared candidates. Returns only on failure.
unsafe fn exec(c: &Child) -> io::Error {
    let mut denied = false;
    let mut last = libc::ENOENT;
    for path in c.candidates {
        libc::execve(path.as_ptr(), c.argv.as_ptr(), c.envp.as_ptr());
        let errno = *libc::__errno_location();
        match errno {
            libc::ENOEXEC => {
                // A script without `#!`: the shell runs it, as execvp does.
                *c.sh_argv.add(1) = path.as_ptr();
                libc::execve(c"/bin/sh".as_ptr(), c.sh_argv, c.envp.as_ptr());
                return io::Error::from_raw_os_error(errno);
            }
            libc::EACCES => denied = true,
            libc::ENOENT | libc::ENOTDIR | libc::ESTALE | libc::ENODEV | libc::ETIMEDOUT => {
                last = errno
            }
            _ => return io::Error::from_raw_os_error(errno),
        }
    }
    io::Error::from_raw_os_error(if denied { libc::EACCES } else { last })
}

/// Runs in the child between clone and exec.
fn run(s: &Steps, join: RawFd, mnt_ns: &std::sync::atomic::AtomicU64) -> io::Result<()> {
    // SAFETY: plain system calls on valid pointers and descriptors.
    unsafe {
        // Handlers first (ours must never run here: we share the
        // supervisor's memory), then the mask, which spawn filled.
        for &sig in &s.reset {
            if libc::signal(sig, libc::SIG_DFL) == libc::SIG_ERR {
                return Err(failed(Step::Signals));
            }
        }
        let mut empty = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
        libc::sigemptyset(empty.as_mut_ptr());
        check(
            libc::pthread_sigmask(libc::SIG_SETMASK, empty.as_ptr(), std::ptr::null_mut()),
            Step::Signals,
        )?;
        if join >= 0 || !s.cgroup_procs.is_empty() {
            let mut buf = [0u8; 24];
            let pid = decimal(libc::getpid() as u64, &mut buf);
            let first = (join >= 0).then_some(join);
            for fd in first.into_iter().chain(s.cgroup_procs.iter().copied()) {
                let n = libc::write(fd, pid.as_ptr().cast(), pid.len());
                if n != pid.len() as isize {
                    if n >= 0 {
                        *libc::__errno_location() = libc::EIO;
                    }
                    return Err(failed(Step::Cgroup));
                }
            }
        }
        if let Some(tty) = s.tty {
            check(libc::setsid(), Step::Session)?;
            check(libc::ioctl(tty.peer, libc::TIOCSCTTY, 0), Step::Ctty)?;
            check(libc::dup2(tty.peer, 0), Step::Stdio)?;
            check(libc::dup2(tty.peer, 1), Step::Stdio)?;
            if tty.stderr {
                check(libc::dup2(tty.peer, 2), Step::Stdio)?;
            }
        }
        if let Some(fds) = s.stdio {
            for (to, &from) in fds.iter().enumerate() {
                let to = to as libc::c_int;
                if from == to {
                    // dup2 onto itself keeps close-on-exec: clear it.
                    check(libc::fcntl(from, libc::F_SETFD, 0), Step::Stdio)?;
                } else {
                    check(libc::dup2(from, to), Step::Stdio)?;
                }
            }
        }
        check(libc::fchdir(s.root), Step::Chroot)?;
        if s.ns.mount {
            // The working directory (the root) moves into the new namespace.
            check(libc::unshare(libc::CLONE_NEWNS), Step::MountNs)?;
            check(
                libc::mount(
                    std::ptr::null(),
                    c"/".as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                ),
                Step::MountNs,
            )?;
            // Told to the supervisor (through the memory we share), which
            // ends what the command leaves in it, even once it has ended.
            let fd = libc::open(
                c"/proc/self/ns/mnt".as_ptr(),
                libc::O_RDONLY | libc::O_CLOEXEC,
            );
            if fd >= 0 {
                let mut id: u64 = 0;
                if libc::ioctl(fd, super::ns::NS_GET_MNTNS_ID as _, &mut id as *mut u64) == 0 {
                    mnt_ns.store(id, std::sync::atomic::Ordering::Release);
                }
                libc::close(fd);
            }
        }
        if let Some(merged) = s.ns.ephemeral {
            // On the root (our working directory, in the run's namespace),
            // then into it.
            let r = libc::syscall(
                libc::SYS_move_mount,
                merged,
                c"".as_ptr(),
                libc::AT_FDCWD,
                c".".as_ptr(),
                0x4 as libc::c_uint, // MOVE_MOUNT_F_EMPTY_PATH
            );
            check(r as libc::c_int, Step::Ephemeral)?;
            check(libc::fchdir(merged), Step::Ephemeral)?;
        }
        check(libc::chroot(c".".as_ptr()), Step::Chroot)?;
        for (i, (mnt, at)) in s.ns.rebinds.iter().enumerate() {
            attach_at(*mnt, at).map_err(|e| tagged(Step::Ephemeral, i + 1, e))?;
        }
        for (i, (mnt, at)) in s.ns.mounts.iter().enumerate() {
            attach_at(*mnt, at).map_err(|e| tagged(Step::Mount, i, e))?;
        }
        if s.ns.net {
            check(libc::unshare(libc::CLONE_NEWNET), Step::NetNs)?;
            loopback_up().map_err(|e| tagged(Step::NetNs, 0, e))?;
        }
        if let Some(proc) = &s.ns.pid {
            pid_ns(s.parent, proc, s.ns.joined_pid)?;
        }
        for &(resource, value) in &s.rlimits {
            let v = if value == u64::MAX {
                libc::RLIM_INFINITY
            } else {
                value as libc::rlim_t
            };
            let lim = libc::rlimit {
                rlim_cur: v,
                rlim_max: v,
            };
            check(libc::setrlimit(resource as _, &lim), Step::Rlimits)?;
        }
        if let Some(ids) = &s.ids {
            check(
                libc::setgroups(ids.groups.len(), ids.groups.as_ptr()),
                Step::Groups,
            )?;
            check(libc::setgid(ids.gid), Step::Gid)?;
            check(libc::setuid(ids.uid), Step::Uid)?;
        }
        // After the change of identity, which clears it. A supervisor
        // killed outright (SIGKILL) takes its command with it: nothing
        // would watch it any more.
        check(
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong),
            Step::Parent,
        )?;
        // In a pid namespace of its own, the parent is its init (pid 1).
        if s.ns.pid.is_none() && !s.ns.joined_pid && libc::getppid() != s.parent {
            libc::_exit(128 + libc::SIGKILL);
        }
        check(libc::chdir(s.cwd.as_ptr()), Step::Chdir)?;
        cloexec_from_3();
    }
    Ok(())
}

/// `n` in decimal, in the end of `buf` (no allocation: runs in the child).
fn decimal(mut n: u64, buf: &mut [u8; 24]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

/// `e` of `step` (of the mount `index` for [`Step::Mount`]).
fn tagged(step: Step, index: usize, e: io::Error) -> io::Error {
    let errno = e.raw_os_error().unwrap_or(libc::EIO) & ((1 << STEP_SHIFT) - 1);
    io::Error::from_raw_os_error(
        errno | (step as i32) << STEP_SHIFT | (index.min(127) as i32) << INDEX_SHIFT,
    )
}

/// `path` (inside our root, no symlinks on the way) as an `O_PATH`
/// descriptor, through [`super::resolve::openat2`] (again on EAGAIN); a
/// `CStr` path is passed as it is, nothing is allocated.
fn open_in_root(path: &CString) -> io::Result<libc::c_int> {
    use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(
            ResolveFlag::RESOLVE_IN_ROOT
                | ResolveFlag::RESOLVE_NO_SYMLINKS
                | ResolveFlag::RESOLVE_NO_MAGICLINKS,
        );
    super::resolve::openat2(nix::fcntl::AT_FDCWD, path.as_c_str(), how)
        .map(std::os::fd::IntoRawFd::into_raw_fd)
        .map_err(io::Error::from)
}

/// Attaches the detached mount `mnt` at `path` inside our root.
unsafe fn attach_at(mnt: RawFd, path: &CString) -> io::Result<()> {
    const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
    const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;
    let target = open_in_root(path)?;
    let r = libc::syscall(
        libc::SYS_move_mount,
        mnt,
        c"".as_ptr(),
        target,
        c"".as_ptr(),
        MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
    );
    let e = io::Error::last_os_error();
    libc::close(target);
    if r < 0 {
        Err(e)
    } else {
        Ok(())
    }
}

/// Brings the loopback interface of our network namespace up.
pub(crate) unsafe fn loopback_up() -> io::Result<()> {
    let sock = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
    if sock < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut req: libc::ifreq = std::mem::zeroed();
    for (d, c) in req.ifr_name.iter_mut().zip(b"lo") {
        *d = *c as libc::c_char;
    }
    req.ifr_ifru.ifru_flags = (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    let r = libc::ioctl(sock, libc::SIOCSIFFLAGS as _, &req as *const libc::ifreq);
    let e = io::Error::last_os_error();
    libc::close(sock);
    if r < 0 {
        Err(e)
    } else {
        Ok(())
    }
}

/// A fresh proc (of our pid namespace) on `path` inside our root.
unsafe fn mount_proc(path: &CString) -> io::Result<()> {
    const FSOPEN_CLOEXEC: libc::c_uint = 0x1;
    const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
    const FSMOUNT_CLOEXEC: libc::c_uint = 0x1;
    const ATTRS: libc::c_uint = 0x2 | 0x4 | 0x8; // nosuid, nodev, noexec
    let fs = libc::syscall(libc::SYS_fsopen, c"proc".as_ptr(), FSOPEN_CLOEXEC);
    if fs < 0 {
        return Err(io::Error::last_os_error());
    }
    let fs = fs as libc::c_int;
    let null = std::ptr::null::<libc::c_char>();
    let mut mnt = -1;
    if libc::syscall(libc::SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, null, null, 0) == 0 {
        mnt = libc::syscall(libc::SYS_fsmount, fs, FSMOUNT_CLOEXEC, ATTRS) as libc::c_int;
    }
    let e = io::Error::last_os_error();
    libc::close(fs);
    if mnt < 0 {
        return Err(e);
    }
    let r = attach_at(mnt, path);
    libc::close(mnt);
    r
}

/// The exit status of a waited-for child as a shell gives it: its own,
/// 128+N when signal N ended it.
fn status_of(w: libc::c_int) -> libc::c_int {
    if libc::WIFSIGNALED(w) {
        128 + libc::WTERMSIG(w)
    } else {
        libc::WEXITSTATUS(w)
    }
}

/// Enters a pid namespace of the command's own. We (the child of the
/// supervisor) stay outside and relay: we fork its init (pid 1), which
/// mounts a fresh proc on `proc` and forks the command. Both pass every
/// signal they receive on to their child, reap, and exit with their child's
/// status (128+N when killed by N); when init exits, the kernel ends what is
/// left in the namespace. Returns only in the command.
unsafe fn pid_ns(parent: libc::pid_t, proc: &CString, joined: bool) -> io::Result<()> {
    check(
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong),
        Step::PidNs,
    )?;
    if !joined && libc::getppid() != parent {
        libc::_exit(128 + libc::SIGKILL);
    }
    // Blocked in the relays, which take them with sigwaitinfo (an init gets
    // a signal from outside only when it handles or blocks it).
    let mut all = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    libc::sigfillset(all.as_mut_ptr());
    let all = all.assume_init();
    check(
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, std::ptr::null_mut()),
        Step::PidNs,
    )?;
    check(libc::unshare(libc::CLONE_NEWPID), Step::PidNs)?;
    let init = libc::fork();
    check(init, Step::PidNs)?;
    if init > 0 {
        relay(init, &all);
    }
    check(
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong),
        Step::PidNs,
    )?;
    mount_proc(proc).map_err(|e| tagged(Step::Proc, 0, e))?;
    let cmd = libc::fork();
    check(cmd, Step::PidNs)?;
    if cmd > 0 {
        relay(cmd, &all);
    }
    let mut empty = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    libc::sigemptyset(empty.as_mut_ptr());
    check(
        libc::pthread_sigmask(libc::SIG_SETMASK, empty.as_ptr(), std::ptr::null_mut()),
        Step::Signals,
    )?;
    Ok(())
}

/// Passes the signals we get on to `child`, reaps every child of ours, and
/// exits with `child`'s status once it ends. Holds no descriptor but the
/// standard ones, so that the spawner learns of the exec from the command.
unsafe fn relay(child: libc::pid_t, all: &libc::sigset_t) -> ! {
    libc::syscall(libc::SYS_close_range, 3, libc::c_uint::MAX, 0);
    loop {
        let mut info = std::mem::MaybeUninit::<libc::siginfo_t>::uninit();
        let sig = libc::sigwaitinfo(all, info.as_mut_ptr());
        if sig < 0 {
            continue;
        }
        if sig != libc::SIGCHLD {
            libc::kill(child, sig);
            continue;
        }
        loop {
            let mut w = 0;
            let pid = libc::waitpid(-1, &mut w, libc::WNOHANG);
            if pid <= 0 {
                break;
            }
            if pid == child {
                libc::_exit(status_of(w));
            }
        }
    }
}

/// Which of the run's mounts a [`Step::Mount`] error is about.
pub fn mount_index(e: &io::Error) -> usize {
    e.raw_os_error().map_or(0, |c| (c >> INDEX_SHIFT) as usize)
}

/// Marks every descriptor from 3 up close-on-exec: the command gets its
/// stdin, stdout and stderr and nothing else of ours or of our caller's (a
/// descriptor of a host directory would let it leave the chroot). They are
/// not closed here: a failed step may report through a pipe up to the exec.
///
/// # Safety
/// Between clone and exec: system calls only.
unsafe fn cloexec_from_3() {
    if libc::syscall(
        libc::SYS_close_range,
        3 as libc::c_uint,
        libc::c_uint::MAX,
        libc::CLOSE_RANGE_CLOEXEC,
    ) == 0
    {
        return;
    }
    // Before Linux 5.11: one by one, up to the limit of descriptors.
    let mut lim: libc::rlimit = std::mem::zeroed();
    let top = if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
        lim.rlim_cur.min(1 << 20) as libc::c_int
    } else {
        1 << 16
    };
    for fd in 3..top {
        libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
    }
}

/// The step an error of [`spawn`] came from (`None`: exec itself
/// failed) and the plain errno.
pub fn decode(e: &io::Error) -> Option<(Option<Step>, io::Error)> {
    let code = e.raw_os_error()?;
    let errno = io::Error::from_raw_os_error(code & ((1 << STEP_SHIFT) - 1));
    let step = match (code >> STEP_SHIFT) & 0xff {
        0 => None,
        n => Some(*STEPS.iter().find(|s| **s as i32 == n)?),
    };
    Some((step, errno))
}

#[cfg(test)]
mod tests {
    #[test]
    fn decimal() {
        let mut buf = [0u8; 24];
        assert_eq!(super::decimal(0, &mut buf), b"0");
        assert_eq!(super::decimal(4_194_304, &mut buf), b"4194304");
        assert_eq!(super::decimal(u64::MAX, &mut buf), b"18446744073709551615");
    }
}
