//! `on`: mount the system mounts and tool.conf's [bind] mounts.
use std::path::Path;

use anyhow::Result;

use crate::engine;
use crate::lock;
use crate::sandbox::{Need, Sandbox};

pub fn run(dir: Option<&Path>) -> Result<()> {
    let sb = Sandbox::open(dir, Need::Rootfs)?;
    let _lock = lock::for_use(&sb.dir)?;
    // Counted as `off` counts: the sandbox's own mounts (the self-bind at
    // DIR and every mount on it), so that `on` then `off` say the same number.
    let own =
        || -> Result<usize> { Ok(engine::own_mounts(&sb.dir, &crate::mountinfo::read()?).len()) };
    let before = own()?;
    let report = turn_on(&sb)?;
    let mounted = own()?.saturating_sub(before);
    super::out(format!(
        "{} is on ({} mounted, {} already there)\n",
        crate::show::path(&sb.dir),
        mounted,
        report.already
    ))
}

/// Turns the sandbox on (the caller holds its lock); warns about mount
/// points found mounted differently than planned.
pub fn turn_on(sb: &Sandbox) -> Result<engine::OnReport> {
    let report = sb.turn_on(&sb.plan()?)?;
    for d in report.differs.iter().chain(&report.warnings) {
        super::warn(crate::show::error_line([d]));
    }
    Ok(report)
}
