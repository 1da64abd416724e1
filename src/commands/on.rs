//! `on`: mount the system mounts and tool.conf's [bind] mounts, in the
//! host's mount namespace (root), or in a holder's namespaces (a normal
//! user, `-N`, `--ns`); then `start` inside when chroot.d/start exists.
use std::path::Path;

use anyhow::{bail, Result};

use crate::cli::OnArgs;
use crate::holder::{self, Found};
use crate::launch::{enter, exit_code};
use crate::lock;
use crate::sandbox::{Need, Sandbox};
use crate::{engine, show};

pub fn run(dir: Option<&Path>, args: &OnArgs) -> Result<()> {
    let sb = Sandbox::open(dir, Need::Rootfs)?;
    let conf = sb.conf()?;
    let spec = holder::spec_for(&conf, args.userns, args.ns)?;
    let lock = lock::for_use(&sb.dir)?;
    let found = holder::find_or_scan(&sb.dir);
    if let Found::Died = found {
        super::note(format!(
            "the holder of {} had ended (killed, or a reboot); its pid file was removed",
            show::path(&sb.dir)
        ));
    }
    if let Found::Alive(h) = found {
        let want = spec.as_ref().map(|s| (s.userns.is_some(), s.ns));
        if want.is_some_and(|w| w != (h.userns, h.ns)) || (want.is_none() && args.ns.is_some()) {
            super::warn(format!(
                "it is already on with a holder that owns {}; `off` then `on` to change that",
                h.namespaces().join(", ")
            ));
        }
        return super::out(format!(
            "{} is already on ({})\n",
            show::path(&sb.dir),
            mode_line(&h)
        ));
    }
    let Some(spec) = spec else {
        // Counted as `off` counts: the sandbox's own mounts (the self-bind at
        // DIR and every mount on it), so that `on` then `off` say the same number.
        let own = || -> Result<usize> {
            Ok(engine::own_mounts(&sb.dir, &crate::mountinfo::read()?).len())
        };
        let before = own()?;
        let was_on = engine::is_on(&sb.dir, &crate::mountinfo::read()?);
        let report = turn_on(&sb, &conf)?;
        let mounted = own()?.saturating_sub(before);
        super::out(format!(
            "{} is on ({} mounted, {} already there)\n",
            crate::show::path(&sb.dir),
            mounted,
            report.already
        ))?;
        if !was_on {
            start(&sb, None);
        }
        drop(lock);
        return Ok(());
    };
    if engine::is_on(&sb.dir, &crate::mountinfo::read()?) {
        bail!(
            "{} is on without a holder (mounted in this mount namespace); turn it off first to turn it on with one",
            show::path(&sb.dir)
        );
    }
    if let Some(w) = spec.userns.as_ref().and_then(|m| m.warning()) {
        super::warn(w);
    }
    let started = holder::start(&sb, &spec, &sb.plan_of(&conf)?)?;
    for w in &started.warnings {
        super::warn(show::error_line([w]));
    }
    let h = started.info;
    super::out(format!(
        "{} is on ({}, {} mounted)\n",
        show::path(&sb.dir),
        mode_line(&h),
        h.mounts(&sb.dir).len()
    ))?;
    start(&sb, Some(&h));
    drop(lock);
    Ok(())
}

/// `holder pid N: user, mnt, pid, ...`.
pub fn mode_line(h: &holder::HolderInfo) -> String {
    format!(
        "holder pid {}, namespaces: {}",
        h.pid,
        h.namespaces().join(", ")
    )
}

/// Dispatches `start` inside when chroot.d/start exists; a failure is a warning.
fn start(sb: &Sandbox, h: Option<&holder::HolderInfo>) {
    let Some(res) = enter::start(sb, h) else {
        return;
    };
    let code = exit_code(&res);
    match res {
        Err(e) => super::warn(format!("start: {}", show::error_chain(&e))),
        Ok(_) if code != 0 => super::warn(format!("start exited with status {code}")),
        Ok(_) => {}
    }
}

/// Turns the sandbox on (the caller holds its lock); warns about mount
/// points found mounted differently than planned.
pub fn turn_on(sb: &Sandbox, conf: &crate::conf::Conf) -> Result<engine::OnReport> {
    let report = sb.turn_on(&sb.plan_of(conf)?)?;
    for d in report.differs.iter().chain(&report.warnings) {
        super::warn(crate::show::error_line([d]));
    }
    Ok(report)
}
