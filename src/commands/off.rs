//! `off`: dispatch `stop`, end every process inside (the sandbox's by mount
//! id and namespace, see `procs`), unmount everything at or below DIR
//! (deepest first, as the mount table says), and verify. A directory that
//! is not a sandbox is refused before anything (`Sandbox::open`).
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::cli::OffArgs;
use crate::dispatch::{self, Request};
use crate::sandbox::{Need, Sandbox};
use crate::{engine, lock, mountinfo, procs, show};

pub fn run(dir: Option<&Path>, args: &OffArgs) -> Result<()> {
    let sb = Sandbox::open(dir, Need::Dir)?;
    // Our own working directory must not keep a mount of the sandbox busy.
    std::env::set_current_dir("/")?;
    let guard = lock::exclusive(&sb.dir)?;
    let r = turn_off(&sb, grace(args.timeout)?, &guard)?;
    drop(guard);
    if r.mounts == 0 && r.processes == 0 {
        super::out(format!("{} is already off\n", show::path(&sb.dir)))?;
    } else {
        super::out(format!(
            "{} is off ({} unmounted, {} ended)\n",
            show::path(&sb.dir),
            r.mounts,
            match r.processes {
                1 => "1 process".to_string(),
                n => format!("{n} processes"),
            }
        ))?;
    }
    Ok(())
}

/// The longest `--timeout` (a day): any longer would overflow a clock.
pub const MAX_TIMEOUT: f64 = 86_400.0;

pub fn grace(secs: f64) -> Result<Duration> {
    if !(0.0..=MAX_TIMEOUT).contains(&secs) {
        return Err(crate::commands::Usage(format!(
            "--timeout: {secs} is not a number of seconds from 0 to {MAX_TIMEOUT}"
        ))
        .into());
    }
    Ok(Duration::from_secs_f64(secs))
}

pub struct OffReport {
    pub mounts: usize,
    pub processes: usize,
}

/// Turns the sandbox off; the caller holds its lock (`_guard`) and may keep
/// it for what comes next (destroy).
pub fn turn_off(sb: &Sandbox, grace: Duration, _guard: &lock::Lock) -> Result<OffReport> {
    let mounts = mountinfo::read()?;
    // The plan (tool.conf) decides only for a sandbox without a self-bind.
    let plan = if engine::self_binds(&sb.dir, &mounts).is_empty() {
        sb.plan().ok()
    } else {
        None
    };
    let before = engine::ours(&sb.dir, plan.as_deref(), &mounts).len();
    if engine::is_on(&sb.dir, &mounts) {
        stop(sb, grace);
    }
    let mut say = |n: usize, left: Duration| {
        eprintln!(
            "chroot-tool: waiting up to {} for {} to end (TERM sent; KILL after --timeout)",
            seconds(left),
            match n {
                1 => "1 process".to_string(),
                n => format!("{n} processes"),
            }
        );
    };
    let (processes, alive) =
        procs::end_all(&sb.dir, grace, &mut say).context("finding the processes inside")?;
    let left = engine::unmount_ours(&sb.dir, plan.as_deref())?;
    if !left.is_empty() {
        let list: Vec<String> = left.iter().map(show::path).collect();
        let who = if alive.is_empty() {
            "something outside the sandbox uses them (see `fuser -vm PATH`)".to_string()
        } else {
            let p: Vec<String> = alive
                .iter()
                .map(|p| format!("{} {}", p.pid, show::os(&p.comm)))
                .collect();
            format!("processes that could not be ended: {}", p.join(", "))
        };
        bail!(
            "still mounted after off: {}; {who}; then run `chroot-tool off` again",
            list.join(" ")
        );
    }
    Ok(OffReport {
        mounts: before,
        processes,
    })
}

/// A duration as people say it: `5 s`, `0.5 s`.
fn seconds(d: Duration) -> String {
    let s = (d.as_secs_f64() * 10.0).round() / 10.0;
    if s.fract() == 0.0 {
        format!("{s:.0} s")
    } else {
        format!("{s:.1} s")
    }
}

/// Dispatches `stop` inside when the sandbox has one (chroot.d/stop or chroot-cmd).
/// `stop` gets the grace period too: past it, a watchdog ends every process
/// inside (stop included), so a hanging stop never hangs `off`.
fn stop(sb: &Sandbox, grace: Duration) {
    let req = Request::Argv(vec!["stop".into()]);
    let has_cmd = sb.chroot_d_file("chroot-cmd").is_some();
    if !sb.has_command("stop") && !has_cmd {
        return;
    }
    let inv = dispatch::dispatch(&req, |n| sb.has_command(n), has_cmd);
    let spec = crate::exec::Spec {
        root: sb.dir.clone(),
        argv: inv.argv,
        arg0: None,
        cwd: inv.cwd,
        env: crate::commands::run::command_env(sb),
        terminal: crate::exec::Terminal::Inherit,
    };
    let (done, wait) = std::sync::mpsc::channel::<()>();
    let dir = sb.dir.clone();
    let watchdog = std::thread::spawn(move || {
        // Signals stay with the supervisor's signalfd, never this thread.
        let _ = nix::sys::signal::pthread_sigmask(
            nix::sys::signal::SigmaskHow::SIG_BLOCK,
            Some(&nix::sys::signal::SigSet::all()),
            None,
        );
        if wait.recv_timeout(grace) == Err(std::sync::mpsc::RecvTimeoutError::Timeout) {
            eprintln!(
                "chroot-tool: warning: stop still running after {:.1} s (--timeout); ending it",
                grace.as_secs_f64()
            );
            let _ = procs::end_all(&dir, grace, &mut |_, _| {});
        }
    });
    let res = crate::exec::run(&spec, || {});
    drop(done);
    let _ = watchdog.join();
    let code = crate::exec::exit_code(&res);
    if code != 0 {
        eprintln!("chroot-tool: warning: stop exited with status {code}; turning off anyway");
    }
}
