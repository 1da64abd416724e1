//! `on`: mount the system mounts and tool.conf's `[bind]` mounts, in the
//! host's mount namespace (root), or in a holder's namespaces (a normal
//! user, `-N`, `--ns`); then `start` inside when chroot.d/start exists.
use std::path::Path;

use anyhow::Result;

use crate::cli::OnArgs;
use crate::holder;
use crate::lock;
use crate::sandbox::{Need, Sandbox, Switched};
use crate::show;

pub fn run(dir: Option<&Path>, args: &OnArgs) -> Result<()> {
    let sb = Sandbox::open(dir, Need::Rootfs)?;
    let conf = super::conf_of(&sb)?;
    let lock = lock::for_use(&sb.dir)?;
    let switched = sb.switch_on(
        &conf,
        args.userns,
        args.ns,
        &lock,
        &mut super::warn,
        &mut super::note,
    )?;
    let dir = show::path(&sb.dir);
    match &switched {
        Switched::Held { holder, differs } => {
            if *differs {
                super::warn(format!(
                    "it is already on with a holder that owns {}; `off` then `on` to change that",
                    holder.namespaces().join(", ")
                ));
            }
            return super::out(format!("{dir} is already on ({})\n", mode_line(holder)));
        }
        Switched::Mounted {
            mounted, already, ..
        } => super::out(format!(
            "{dir} is on ({mounted} mounted, {already} already there)\n"
        ))?,
        Switched::Started(h) => super::out(format!(
            "{dir} is on ({}, {} mounted)\n",
            mode_line(h),
            h.mounts(&sb.dir).len()
        ))?,
    }
    if switched.turned_on() {
        sb.start(&switched, &mut super::warn);
    }
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
