//! One way into a sandbox. Every command that starts a process inside
//! (`run`, `shell`, `off`'s `stop`, `on`'s `start`) builds a [`Launch`] and
//! hands it to the one spawner ([`spawn::run`]): how to reach the root (a
//! chroot in our mount namespace, or setns into a holder's namespaces
//! first: [`Reach`]), the program, who it runs as, its environment,
//! working directory and terminal. New isolation
//! is a new field here and a new child step in `sys::child`, not a new path.
//!
//! - [`spawn`]: the spawner and supervisor (ordered child steps, exact
//!   125/126/127 errors, pidfd + signalfd + pty relay).
//! - [`user`]: `USER[:GROUP]` resolved in the sandbox's own /etc/passwd and /etc/group.
//! - [`build`]: the options of `run` and `shell` (and `[run]` of tool.conf) into a Launch.
//! - [`enter`]: turn on (or through the holder), run host-cmd, then launch;
//!   and `off`'s stop, `on`'s start.
pub mod build;
pub mod enter;
pub mod isolate;
pub mod spawn;
pub mod user;

use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::time::Duration;

pub use spawn::{exit_code, run, use_pty, ExecError, Outcome};

/// How the command reaches the sandbox's root.
#[derive(Debug)]
pub enum Reach {
    /// chroot into the root directory, in our own (the host's) mount
    /// namespace. `root` is a descriptor of the directory (the child does
    /// `fchdir` + `chroot(".")`); `path` names it in messages.
    Chroot { root: OwnedFd, path: PathBuf },
    /// setns into a holder's namespaces (this process joins them: user
    /// namespace first, then mount, then the others; see
    /// [`crate::holder::join`]), then chroot into the root as the holder's
    /// mount namespace shows it. `pid_ns`: the holder's pid namespace was
    /// joined, so the command's parent (us) is outside its namespace.
    Holder {
        root: OwnedFd,
        path: PathBuf,
        pid_ns: bool,
    },
}

impl Reach {
    /// Joins the holder `h`, then opens the root at `path` as its mount
    /// namespace shows it. This process does not come back out.
    pub fn holder(
        h: &crate::holder::HolderInfo,
        path: impl Into<PathBuf>,
    ) -> anyhow::Result<Reach> {
        let path = path.into();
        crate::holder::join(h)?;
        let root = crate::sys::open_root(&path)
            .map_err(|e| anyhow::anyhow!("opening {}: {e}", crate::show::path(&path)))?;
        Ok(Reach::Holder {
            root,
            path,
            pid_ns: h.ns.pid,
        })
    }

    /// The root directory the command is chrooted into.
    pub fn root(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        match self {
            Reach::Chroot { root, .. } | Reach::Holder { root, .. } => root.as_fd(),
        }
    }

    /// Whether the command starts in a pid namespace we are not in.
    pub fn joined_pid_ns(&self) -> bool {
        matches!(self, Reach::Holder { pid_ns: true, .. })
    }

    /// The root by its host path (opened now, resolving nothing inside).
    pub fn chroot(path: impl Into<PathBuf>) -> std::io::Result<Reach> {
        let path = path.into();
        let root = crate::sys::open_root(&path)?;
        Ok(Reach::Chroot { root, path })
    }

    /// The root at `path`, already open as `root` (and checked).
    pub fn chroot_at(path: impl Into<PathBuf>, root: OwnedFd) -> Reach {
        Reach::Chroot {
            root,
            path: path.into(),
        }
    }

    pub fn path(&self) -> &std::path::Path {
        match self {
            Reach::Chroot { path, .. } | Reach::Holder { path, .. } => path,
        }
    }
}

/// Who the command runs as. `None` in [`Launch::identity`]: as we are (root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups, the primary one included.
    pub groups: Vec<u32>,
}

/// Where the command's terminal comes from.
#[derive(Debug)]
pub enum Terminal {
    /// The command shares our stdin, stdout and stderr (and process group).
    Inherit,
    /// The command gets a new pty of the sandbox's own devpts, in a session of
    /// its own; we relay between it and our terminal. `devpts` is the root of
    /// the devpts mount that `on` made inside the sandbox (a descriptor, never
    /// a host path: a `/dev` symlink in the rootfs must not lead to the host's).
    Pty { devpts: OwnedFd },
    /// The command's stdin, stdout and stderr are these descriptors (a
    /// memfd that captures what it writes, `/dev/null`); it shares our
    /// process group. The library's runs take this one.
    Files {
        stdin: OwnedFd,
        stdout: OwnedFd,
        stderr: OwnedFd,
    },
}

/// A limit on how long the command may run: past `after`, it and what it
/// started get TERM, and KILL `grace` later; the run ends with
/// [`ExecError::TimedOut`].
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    pub after: Duration,
    pub grace: Duration,
}

/// One command to start inside a root.
#[derive(Debug)]
pub struct Launch {
    pub reach: Reach,
    /// The program (absolute inside the root, or a name looked up in the
    /// `PATH` of `env`, inside the root) and its arguments. No shell.
    pub argv: Vec<OsString>,
    /// `argv[0]` as the program sees it, when not the program itself
    /// (e.g. `-bash` for a login shell).
    pub arg0: Option<OsString>,
    pub identity: Option<Identity>,
    /// The whole environment of the command (bytes: values need not be UTF-8).
    pub env: Vec<(OsString, OsString)>,
    /// Working directory, inside the root.
    pub cwd: PathBuf,
    pub terminal: Terminal,
    pub deadline: Option<Deadline>,
    /// `--memory`, `--cpus`, `--pids` (a cgroup of the run's own) and
    /// `--rlimit`s (setrlimit in the child).
    pub limits: crate::cgroup::Limits,
    /// Namespaces of the command's own (`-m`, `--net none`, `--pid`).
    pub isolation: isolate::Isolation,
    /// The entry of the sandbox's chroot.d that runs (a named command,
    /// `chroot-cmd`, `start`, `stop`): run only when no one else could
    /// have written it, as found where it runs (see `enter`).
    pub chroot_d_program: Option<OsString>,
    /// The sandbox's own cgroup (its directory), which the command is
    /// started in ([`crate::cgroup::track`]); `None` on the host, through
    /// a holder, and where there is none.
    pub track: Option<std::os::fd::OwnedFd>,
}

impl Launch {
    /// `argv` as root in `/` of the root `reach`, with no environment,
    /// our terminal and no deadline: the caller fills in the rest.
    pub fn new(reach: Reach, argv: Vec<OsString>) -> Launch {
        Launch {
            reach,
            argv,
            arg0: None,
            identity: None,
            env: Vec::new(),
            cwd: PathBuf::from("/"),
            terminal: Terminal::Inherit,
            deadline: None,
            limits: crate::cgroup::Limits::default(),
            isolation: Default::default(),
            chroot_d_program: None,
            track: None,
        }
    }
}
