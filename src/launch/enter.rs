//! The ways in that start with the sandbox itself: `run` and `shell` turn
//! it on, run `host-cmd`, then launch; `off`'s stop launches with a deadline.
use std::ffi::OsString;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};

use super::{spawn, Deadline, ExecError, Launch, Outcome, Reach, Terminal};
use crate::conf::Conf;
use crate::dispatch::{self, Request};
use crate::sandbox::Sandbox;
use crate::{lock, show};

/// How an entry ended.
#[derive(Debug)]
pub enum Entered {
    /// The command ran (or could not be started: 125/126/127).
    Ran(Result<Outcome, ExecError>),
    /// `chroot.d/host-cmd` failed: the command was not run.
    HostCmdFailed { name: String, ended: Outcome },
    /// The command needs a terminal of the sandbox's own and there is none.
    NoTerminal(String),
}

impl Entered {
    /// The exit status DESIGN.md gives.
    pub fn code(&self) -> u8 {
        match self {
            Entered::Ran(r) => spawn::exit_code(r),
            Entered::HostCmdFailed { ended, .. } => ended.status(),
            Entered::NoTerminal(_) => 125,
        }
    }
}

/// Turns the sandbox on (its plan from `conf`), runs host-cmd with `line`,
/// and runs `launch` inside, with a pty of the sandbox's own when `pty`.
/// Warnings (mount points found mounted differently) go to `warn`.
pub fn enter(
    sb: &Sandbox,
    conf: &Conf,
    line: &str,
    mut launch: Launch,
    pty: bool,
    warn: &mut dyn FnMut(String),
) -> Result<Entered> {
    let plan = sb.plan_of(conf)?;
    let on = |warn: &mut dyn FnMut(String)| -> Result<lock::Lock> {
        let guard = lock::for_use(&sb.dir)?;
        if let Some(report) = sb.ensure_on(&plan)? {
            for d in report.differs.iter().chain(&report.warnings) {
                warn(show::error_line([d]));
            }
        }
        Ok(guard)
    };
    let mut guard = on(warn)?;
    if let Some(hook) = host_cmd(sb)? {
        drop(guard);
        let name = show::path(sb.chroot_d().join("host-cmd"));
        // The very file that was checked runs, by descriptor: a process
        // inside that swaps host-cmd for a symlink afterwards changes nothing.
        let st = crate::sys::process::command_of_fd(hook.as_fd())
            .arg0(sb.chroot_d().join("host-cmd"))
            .arg(line)
            .arg(&sb.dir)
            .status()
            .with_context(|| format!("running {name}"))?;
        drop(hook);
        if !st.success() {
            return Ok(Entered::HostCmdFailed {
                name,
                ended: st.into(),
            });
        }
        guard = on(warn)?;
    }
    // The root as it is now that it is on: the self-bind at DIR, which the
    // processes inside are known by (a descriptor opened before `on` would
    // lead under the sandbox's mounts).
    launch.reach =
        Reach::chroot(&sb.dir).with_context(|| format!("opening {}", show::path(&sb.dir)))?;
    if launch.isolation.own_mounts() || !launch.isolation.mounts.is_empty() {
        let Reach::Chroot { root, .. } = &launch.reach;
        launch.isolation.prepare(root.as_fd(), &sb.dir)?;
    }
    if pty {
        match sandbox_devpts(sb) {
            Ok(devpts) => launch.terminal = Terminal::Pty { devpts },
            Err(why) => return Ok(Entered::NoTerminal(why)),
        }
    }
    Ok(Entered::Ran(spawn::run(&launch, move || drop(guard))))
}

/// `off`'s stop: dispatches `stop` inside when the sandbox has one
/// (chroot.d/stop or chroot-cmd), as root with the clean environment. Past
/// `grace` it and what it started are ended (TERM, `grace`, KILL), so a
/// hanging stop never hangs `off`. `None`: nothing to run.
pub fn stop(sb: &Sandbox, grace: Duration) -> Option<Result<Outcome, ExecError>> {
    let has_cmd = sb.chroot_d_file("chroot-cmd").is_some();
    if !sb.has_command("stop") && !has_cmd {
        return None;
    }
    let req = Request::Argv(vec!["stop".into()]);
    let inv = dispatch::dispatch(&req, |n| sb.has_command(n), has_cmd);
    let argv = inv.argv.into_iter().map(OsString::from).collect();
    let mut launch = match super::build::for_stop(sb, argv, inv.cwd) {
        Ok(l) => l,
        Err(e) => {
            return Some(Err(ExecError::Setup {
                what: show::error_chain(&*e),
                source: std::io::Error::other("stop not run"),
            }))
        }
    };
    launch.deadline = Some(Deadline {
        after: grace,
        grace,
    });
    Some(spawn::run(&launch, || {}))
}

/// The devpts that `on` mounted at the sandbox's `/dev/pts`, as a
/// descriptor: `/dev/pts` resolved inside the root, a devpts mount of its
/// own (the root of a mount listed under DIR, another instance than the
/// host's `/dev/pts`). Never the host path `DIR/dev/pts`, which a `/dev`
/// symlink in the rootfs would lead to the host's devpts.
fn sandbox_devpts(sb: &Sandbox) -> std::result::Result<OwnedFd, String> {
    use crate::sys::{self, pty};
    let here = || show::path(sb.dir.join("dev/pts"));
    let fd = sys::open_root(&sb.dir)
        .and_then(|r| sys::resolve_in_root(r.as_fd(), Path::new("/dev/pts")))
        .map_err(|e| format!("{}: {e}", here()))?;
    if !pty::is_devpts(fd.as_fd()).map_err(|e| format!("{}: {e}", here()))? {
        return Err(format!("{} is not a devpts filesystem", here()));
    }
    let (id, is_root) = sys::mount_of(fd.as_fd()).map_err(|e| format!("{}: {e}", here()))?;
    let mounts = crate::mountinfo::read().map_err(|e| format!("reading the mount table: {e}"))?;
    let ours = crate::mountinfo::under(&mounts, &sb.dir)
        .iter()
        .any(|m| m.id == id);
    let dev = pty::dev_of(fd.as_fd()).map_err(|e| format!("{}: {e}", here()))?;
    let host_dev = sys::open_path(Path::new("/dev/pts"))
        .and_then(|h| pty::dev_of(h.as_fd()))
        .ok();
    if !is_root || !ours || host_dev == Some(dev) {
        return Err(format!(
            "{} is not the devpts that `on` mounted in the sandbox",
            here()
        ));
    }
    Ok(fd)
}

/// `chroot.d/host-cmd` resolved inside the root and opened (`O_PATH`) when
/// it is an executable regular file: the descriptor is what will run.
fn host_cmd(sb: &Sandbox) -> Result<Option<OwnedFd>> {
    let root = crate::sys::open_root(&sb.dir)
        .with_context(|| format!("opening {}", show::path(&sb.dir)))?;
    let fd = match crate::sys::resolve_in_root(root.as_fd(), Path::new("/chroot.d/host-cmd")) {
        Ok(fd) => fd,
        Err(_) => return Ok(None),
    };
    let st = nix::sys::stat::fstat(fd.as_fd())
        .with_context(|| show::path(sb.chroot_d().join("host-cmd")))?;
    let runnable = st.st_mode & libc::S_IFMT == libc::S_IFREG && st.st_mode & 0o111 != 0;
    Ok(runnable.then_some(fd))
}
