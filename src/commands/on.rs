//! `on`: mount the system mounts and tool.conf's [bind] mounts.
use std::path::Path;

use anyhow::Result;

use crate::engine;
use crate::lock;
use crate::sandbox::{Need, Sandbox};

pub fn run(dir: Option<&Path>) -> Result<()> {
    let sb = Sandbox::open(dir, Need::Rootfs)?;
    let _lock = lock::for_use(&sb.dir)?;
    let report = turn_on(&sb)?;
    super::out(format!(
        "{} is on ({} mounted, {} already there)\n",
        crate::show::path(&sb.dir),
        report.mounted.len(),
        report.already
    ))
}

/// Turns the sandbox on (the caller holds its lock).
pub fn turn_on(sb: &Sandbox) -> Result<engine::OnReport> {
    apply(sb, &sb.plan()?)
}

/// What `run` and `shell` do first (the caller holds the lock): nothing when
/// the sandbox already looks on (the lean path), else the full `on`.
pub fn ensure_on(sb: &Sandbox) -> Result<()> {
    let plan = sb.plan()?;
    if !engine::looks_on(&sb.dir, &plan, &crate::mountinfo::read()?) {
        apply(sb, &plan)?;
    }
    Ok(())
}

/// Applies the plan; warns about mount points found mounted differently than planned.
fn apply(sb: &Sandbox, plan: &[crate::plan::Op]) -> Result<engine::OnReport> {
    let report = engine::turn_on(&sb.dir, plan)?;
    for d in &report.differs {
        eprintln!("chroot-tool: warning: {}", crate::show::error_line([d]));
    }
    Ok(report)
}
