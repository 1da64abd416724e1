//! The ways in that start with the sandbox itself: `run` and `shell` turn
//! it on, run `host-cmd`, then launch; `off`'s stop launches with a deadline,
//! `on`'s start without. A sandbox with a holder is entered through it.
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};

use super::{spawn, Deadline, ExecError, Launch, Outcome, Reach, Terminal};
use crate::conf::Conf;
use crate::dispatch::{self, Request};
use crate::holder::{self, Found};
use crate::sandbox::{Ensured, Looked, Sandbox};
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
/// Warnings (mount points found mounted differently) go to `warn`. A
/// sandbox with a live holder (or that gets one: a normal user's, or
/// `namespaces` in `[run]`) is entered through it (`through_holder`).
pub fn enter(
    sb: &Sandbox,
    conf: &Conf,
    line: &str,
    launch: Launch,
    pty: bool,
    warn: &mut dyn FnMut(String),
) -> Result<Entered> {
    enter_as(sb, conf, line, launch, pty, false, warn)
}

/// [`enter`] for a program that embeds chroot-tool (the library): no pty,
/// and a holder's namespaces are joined by a child of ours that starts
/// and supervises the command, so that this process stays where it is
/// (it may have threads, which setns into a user namespace refuses). The
/// command's status then comes back as the child's exit status: a command
/// not found or not executable as 127 or 126, and why ours failed (125) as
/// the error's text.
pub fn enter_apart(
    sb: &Sandbox,
    conf: &Conf,
    line: &str,
    launch: Launch,
    warn: &mut dyn FnMut(String),
) -> Result<Entered> {
    enter_as(sb, conf, line, launch, false, true, warn)
}

fn enter_as(
    sb: &Sandbox,
    conf: &Conf,
    line: &str,
    mut launch: Launch,
    pty: bool,
    apart: bool,
    warn: &mut dyn FnMut(String),
) -> Result<Entered> {
    // No pid file (the usual case): one stat and one failed open.
    let by_holder = match holder::find(&sb.dir) {
        Found::Alive(_) => true,
        Found::None | Found::Died(_) => {
            holder::spec_for(conf, false, None)?.is_some() && !on_without_holder(sb)
        }
    };
    if by_holder {
        return through_holder(sb, conf, line, launch, pty, apart, warn);
    }
    let plan = sb.plan_of(conf)?;
    let on = |warn: &mut dyn FnMut(String)| -> Result<(lock::Lock, Option<OwnedFd>)> {
        let guard = lock::for_use(&sb.dir)?;
        match sb.ensure_on(&plan)? {
            Ensured::On(root) => Ok((guard, Some(root))),
            Ensured::TurnedOn(report) => {
                for d in report.differs.iter().chain(&report.warnings) {
                    warn(show::error_line([d]));
                }
                Ok((guard, None))
            }
        }
    };
    let (mut guard, mut root) = on(warn)?;
    if let Some(hook) = host_cmd(sb)? {
        drop(guard);
        if let Some(failed) = run_host_cmd(sb, hook, line)? {
            return Ok(failed);
        }
        (guard, root) = on(warn)?;
    }
    // The root as it is now that it is on: the self-bind at DIR, which the
    // processes inside are known by (a descriptor opened before `on` would
    // lead under the sandbox's mounts); as the lean check opened it, or
    // opened again after a full `on` and checked to be the sandbox's.
    launch.reach = match root {
        Some(root) => Reach::chroot_at(&sb.dir, root),
        None => {
            let reach = Reach::chroot(&sb.dir)
                .with_context(|| format!("opening {}", show::path(&sb.dir)))?;
            crate::engine::check_own_root(&sb.dir, reach.root())?;
            reach
        }
    };
    let looked = refuse_program(sb, &launch, None)?;
    track(&mut launch).context("the sandbox's cgroup")?;
    finish(sb, launch, pty, guard, &looked)
}

/// Root's command, started in a sandbox that is on in our own mount
/// namespace, joins the sandbox's cgroup, where `off` finds it and all it
/// starts ([`crate::cgroup::track`]); one with limits of its own stays in
/// the run's cgroup, and `off` is told to look at every process.
fn track(launch: &mut Launch) -> std::io::Result<()> {
    if !crate::audit::invoked_as_root() {
        return Ok(());
    }
    let root = launch.reach.root();
    if launch.limits.needs_cgroup() {
        crate::cgroup::track::untracked_at(root)
    } else {
        launch.track = crate::cgroup::track::join(root)?;
        Ok(())
    }
}

/// A program of chroot.d (`launch.chroot_d_program`) runs as the invoking
/// user, root included: only when no one else could have written it, nor
/// chroot.d, nor a directory on the way, as found where it runs (through
/// the `holder`'s namespace when it has one: its mounts are not ours),
/// right before it starts (`on` asked before it mounted). Returns what
/// was looked up on the way ([`covered`] asks whether a mount of the
/// run's own changes it).
fn refuse_program(
    sb: &Sandbox,
    launch: &Launch,
    holder: Option<&holder::HolderInfo>,
) -> Result<Looked> {
    let Some(program) = &launch.chroot_d_program else {
        return Ok(Looked::default());
    };
    // Without a holder, through the very root the command is chrooted
    // into; a holder's through its namespace (`/proc/PID/root`).
    let root = match holder {
        None => crate::sandbox::Root::Held(launch.reach.root()),
        Some(h) => crate::sandbox::Root::Holder(h.pid),
    };
    crate::sandbox::program_check(&sb.dir, root, program).map_err(|why| {
        anyhow::anyhow!(
            "{why}: the programs of chroot.d run as {}, so no one else may be able to write them (or chroot.d, or a directory on the way); not run",
            if crate::audit::invoked_as_root() { "root" } else { "you" }
        )
    })
}

/// A mount of the run's own (`-m`, `--pid`'s proc), prepared, over a path
/// the check of the program of chroot.d looked up, or at or below a place
/// it found nothing (`looked`): the program would be found, or find its
/// neighbours, on what that mount shows, not on what was checked. Refused.
fn covered(launch: &Launch, looked: &Looked) -> Result<()> {
    let iso = &launch.isolation;
    let targets = iso
        .prepared
        .iter()
        .map(|p| (p.shown.as_str(), p.at.as_path()))
        .chain(
            iso.proc_at
                .as_deref()
                .map(|at| ("--pid (a fresh /proc)", at)),
        );
    for (shown, at) in targets {
        if let Some(v) = looked.covered_by(at) {
            anyhow::bail!(
                "{shown}: mounts on {}, where the check of the program of chroot.d that runs looked ({}); not run",
                show::path(at),
                show::path(v)
            );
        }
    }
    Ok(())
}

/// Root's sandbox already on in the host's mount namespace (a chroot, no
/// holder): `run` keeps using it that way.
fn on_without_holder(sb: &Sandbox) -> bool {
    crate::audit::invoked_as_root()
        && crate::engine::table_at(&sb.dir).is_ok_and(|m| crate::engine::has_self_bind(&sb.dir, &m))
}

/// The rest of an entry, once `launch.reach` is the root: the run's own
/// mounts, its terminal, the command (the lock dropped once it started).
fn finish(
    sb: &Sandbox,
    mut launch: Launch,
    pty: bool,
    guard: lock::Lock,
    looked: &Looked,
) -> Result<Entered> {
    // Through a holder, DIR was opened again, by path, once joined: it
    // must be the root the check walked (not another tree, a directory
    // above DIR renamed meanwhile).
    if !looked.walked(launch.reach.root()) {
        anyhow::bail!(
            "{}: led elsewhere when its program of chroot.d was checked than now (a directory above it renamed?); not run",
            show::path(&sb.dir)
        );
    }
    if launch.isolation.own_mounts() || !launch.isolation.mounts.is_empty() {
        let keep_out = |at: &Path| {
            looked.covered_by(at).map(|v| {
                format!(
                    "mounts on or makes {}, where the check of the program of chroot.d that runs looked ({}); not run",
                    show::path(at),
                    show::path(v)
                )
            })
        };
        launch
            .isolation
            .prepare(launch.reach.root(), &sb.dir, &keep_out)?;
        if let Err(e) = covered(&launch, looked) {
            launch.isolation.unmake();
            return Err(e);
        }
    }
    if pty {
        match sandbox_devpts(sb) {
            Ok(devpts) => launch.terminal = Terminal::Pty { devpts },
            Err(why) => {
                launch.isolation.unmake();
                return Ok(Entered::NoTerminal(why));
            }
        }
    }
    let ran = spawn::run(&launch, move || drop(guard));
    // What was made for the run's mounts (their targets) stays once the
    // command ran; a command that never started leaves nothing made.
    match &ran {
        Err(
            ExecError::Setup { .. } | ExecError::NotFound { .. } | ExecError::NotExecutable { .. },
        ) => launch.isolation.unmake(),
        _ => launch.isolation.made.clear(),
    }
    Ok(Entered::Ran(ran))
}

/// Runs host-cmd (`hook`, checked by [`host_cmd`]) with `line`; its
/// failure, if it failed.
fn run_host_cmd(sb: &Sandbox, hook: OwnedFd, line: &str) -> Result<Option<Entered>> {
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
        return Ok(Some(Entered::HostCmdFailed {
            name,
            ended: st.into(),
        }));
    }
    Ok(None)
}

/// The holder of `sb`, started when there is none (the caller holds the
/// lock): `on` as `run` does it, without `start`.
pub fn ensure_holder(
    sb: &Sandbox,
    conf: &Conf,
    warn: &mut dyn FnMut(String),
) -> Result<holder::HolderInfo> {
    match holder::find(&sb.dir) {
        Found::Alive(h) => return Ok(h),
        Found::Died(Some(left)) => return Err(left.refusal(&sb.dir)),
        Found::Died(None) | Found::None => {}
    }
    let Some(spec) = holder::spec_for(conf, false, None)? else {
        anyhow::bail!(
            "{}: its holder has ended; turn it on again with `chroot-tool on`",
            show::path(&sb.dir)
        );
    };
    if let Some(w) = spec.userns.as_ref().and_then(|m| m.warning()) {
        warn(w);
    }
    let started = holder::start(sb, &spec, &sb.plan_of(conf)?)?;
    for w in started.warnings {
        warn(w);
    }
    Ok(started.info)
}

/// An entry through the sandbox's holder: started if needed, host-cmd run
/// on the host, then this process joins the holder's namespaces
/// ([`Reach::holder`]) and the command is started there.
fn through_holder(
    sb: &Sandbox,
    conf: &Conf,
    line: &str,
    mut launch: Launch,
    pty: bool,
    apart: bool,
    warn: &mut dyn FnMut(String),
) -> Result<Entered> {
    let on = |warn: &mut dyn FnMut(String)| -> Result<(lock::Lock, holder::HolderInfo)> {
        let guard = lock::for_use(&sb.dir)?;
        let h = ensure_holder(sb, conf, warn)?;
        Ok((guard, h))
    };
    let (mut guard, mut h) = on(warn)?;
    if let Some(hook) = host_cmd(sb)? {
        drop(guard);
        if let Some(failed) = run_host_cmd(sb, hook, line)? {
            return Ok(failed);
        }
        (guard, h) = on(warn)?;
    }
    if !crate::audit::invoked_as_root() && launch.limits.needs_cgroup() {
        if let Some(opt) = crate::cgroup::on_v1(&launch.limits) {
            anyhow::bail!(
                "{opt}: this host keeps that cgroup controller on cgroup v1, where a normal user may not make a cgroup (v1 has no delegation); run it as root, or without {opt}"
            );
        }
    }
    let looked = refuse_program(sb, &launch, Some(&h))?;
    if apart {
        // The lock is held (here and in the child) until the command ends.
        let ran = holder::in_child(move || {
            let entered = Reach::holder(&h, &sb.dir).and_then(|reach| {
                launch.reach = reach;
                finish(sb, launch, false, guard, &looked)
            });
            match entered {
                // Not started: why, rather than a bare 125 (126 and 127
                // say enough).
                Ok(Entered::Ran(Err(e))) if e.code() == 125 => Err(show::error_chain(&e)),
                Ok(e) => Ok(e.code()),
                Err(e) => Err(show::error_chain(&*e)),
            }
        });
        let ran = match ran {
            Ok(Ok(ended)) => Ok(ended),
            Ok(Err(why)) => Err(ExecError::Setup {
                what: why,
                source: std::io::Error::other("the command was not run"),
            }),
            Err(e) => Err(ExecError::Setup {
                what: "start the command through the holder".into(),
                source: e,
            }),
        };
        return Ok(Entered::Ran(ran));
    }
    launch.reach = Reach::holder(&h, &sb.dir)?;
    finish(sb, launch, pty, guard, &looked)
}

/// `off`'s stop: dispatches `stop` inside when the sandbox has one
/// (chroot.d/stop or chroot-cmd), as root with the clean environment. Past
/// `grace` it and what it started are ended (TERM, `grace`, KILL), so a
/// hanging stop never hangs `off`. `None`: nothing to run. Through the
/// holder `h` when the sandbox has one.
pub fn stop(
    sb: &Sandbox,
    grace: Duration,
    h: Option<&holder::HolderInfo>,
) -> Option<Result<Outcome, ExecError>> {
    dispatch_named(sb, "stop", Some(grace), h)
}

/// `on`'s start: dispatches `start` inside when `chroot.d/start` exists
/// (services that outlive a single `run`), as root with the clean
/// environment. `None`: nothing to run.
pub fn start(sb: &Sandbox, h: Option<&holder::HolderInfo>) -> Option<Result<Outcome, ExecError>> {
    if !sb.has_command("start") {
        return None;
    }
    dispatch_named(sb, "start", None, h)
}

fn dispatch_named(
    sb: &Sandbox,
    name: &str,
    grace: Option<Duration>,
    h: Option<&holder::HolderInfo>,
) -> Option<Result<Outcome, ExecError>> {
    let has_cmd = sb.chroot_d_file("chroot-cmd").is_some();
    if !sb.has_command(name) && !has_cmd {
        return None;
    }
    let req = Request::Argv(vec![name.into()]);
    let inv = dispatch::dispatch(&req, |n| sb.has_command(n), has_cmd);
    let mut launch = match super::build::for_stop(sb, inv) {
        Ok(l) => l,
        Err(e) => {
            return Some(Err(ExecError::Setup {
                what: show::error_chain(&*e),
                source: std::io::Error::other(format!("{name} not run")),
            }))
        }
    };
    launch.deadline = grace.map(|g| Deadline { after: g, grace: g });
    let looked = match refuse_program(sb, &launch, h) {
        Ok(looked) => looked,
        Err(e) => {
            return Some(Err(ExecError::Setup {
                what: show::error_chain(&*e),
                source: std::io::Error::other(format!("{name} not run")),
            }))
        }
    };
    let Some(h) = h else {
        // DIR opened by path: what it leads to must still be the sandbox's
        // own view, never a root mounted over DIR meanwhile.
        if let Err(e) = crate::engine::check_own_root(&sb.dir, launch.reach.root()) {
            return Some(Err(ExecError::Setup {
                what: show::error_chain(&*e),
                source: std::io::Error::other(format!("{name} not run")),
            }));
        }
        if let Err(e) = track(&mut launch) {
            return Some(Err(ExecError::Setup {
                what: format!("the sandbox's cgroup: {e}"),
                source: std::io::Error::other(format!("{name} not run")),
            }));
        }
        return Some(spawn::run(&launch, || {}));
    };
    // In a child that joins the holder: this process stays out of its
    // namespaces (`off` must see them end).
    let ran = holder::in_child(move || match Reach::holder(h, &sb.dir) {
        // The root the check walked, or nothing is run (as in `finish`).
        Ok(reach) if looked.walked(reach.root()) => {
            launch.reach = reach;
            Ok(spawn::exit_code(&spawn::run(&launch, || {})))
        }
        Ok(_) => Err(format!(
            "{}: led elsewhere when {name} was checked than now (a directory above it renamed?)",
            show::path(&sb.dir)
        )),
        Err(e) => Err(format!("through the holder: {}", show::error_chain(&*e))),
    });
    Some(match ran {
        Ok(Ok(ended)) if ended.status() == 124 && grace.is_some() => Err(ExecError::TimedOut {
            after: grace.unwrap_or_default(),
        }),
        Ok(Ok(ended)) => Ok(ended),
        Ok(Err(why)) => Err(ExecError::Setup {
            what: why,
            source: std::io::Error::other(format!("{name} not run")),
        }),
        Err(e) => Err(ExecError::Setup {
            what: format!("{name} through the holder"),
            source: e,
        }),
    })
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
    let mounts =
        crate::engine::table_at(&sb.dir).map_err(|e| format!("reading the mount table: {e}"))?;
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
    if !runnable {
        return Ok(None);
    }
    // It runs on the host as the invoking user (root, as a rule): only
    // that user (or root) may have written it, DIR, or any directory on the
    // way to it, whose names could be swapped.
    if let Some(why) =
        crate::sandbox::path_refusal(root.as_fd(), &sb.dir, Path::new("/chroot.d/host-cmd"))
    {
        anyhow::bail!(
            "{why}, so host-cmd is not run (it would run on the host as {}); make it root's and writable by its owner only",
            if nix::unistd::geteuid().is_root() { "root" } else { "you" }
        );
    }
    Ok(Some(fd))
}
