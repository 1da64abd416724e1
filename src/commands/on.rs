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

/// Turns the sandbox on (the caller holds its lock); warns about mount
/// points found mounted differently than planned.
pub fn turn_on(sb: &Sandbox) -> Result<engine::OnReport> {
    let report = sb.turn_on(&sb.plan()?)?;
    for d in &report.differs {
        super::warn(crate::show::error_line([d]));
    }
    Ok(report)
}
