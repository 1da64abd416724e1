//! `on`: mount the system mounts and tool.conf's [bind] mounts.
use std::path::Path;

use anyhow::Result;

use crate::engine;
use crate::lock;
use crate::sandbox::{Need, Sandbox};

pub fn run(dir: Option<&Path>) -> Result<()> {
    let sb = Sandbox::open(dir, Need::Rootfs)?;
    let _lock = lock::exclusive(&sb.dir)?;
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
    if let Err(e) = host_name_resolves(sb) {
        eprintln!(
            "chroot-tool: warning: {}; `sudo` inside may say \"unable to resolve host\"",
            crate::show::error_line([e.to_string()])
        );
    }
    Ok(report)
}

/// The sandbox shares the host's hostname: its /etc/hosts must resolve it
/// (`create` wrote one for a name made from DIR's; the host's may change).
fn host_name_resolves(sb: &Sandbox) -> Result<()> {
    use crate::create::setup::{add_host_name, Root};
    let name = nix::unistd::gethostname()?;
    let Some(name) = name.to_str() else {
        return Ok(());
    };
    let root = Root::open(&sb.dir)?;
    add_host_name(&root, name)?;
    Ok(())
}
