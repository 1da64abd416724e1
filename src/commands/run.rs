//! `run`: turn on, run host-cmd, then run the command inside.
use std::path::Path;

use anyhow::Result;

use crate::cli::RunArgs;
use crate::commands::{launch_options, report};
use crate::dispatch;
use crate::launch::{build, enter};
use crate::sandbox::{Need, Sandbox};

pub fn run(dir: Option<&Path>, args: &RunArgs) -> Result<u8> {
    let req = args.request()?;
    let opts = launch_options(&args.launch)?;
    let sb = Sandbox::open(dir, Need::Rootfs)?;
    let conf = super::config::under(super::conf_of(&sb)?)?;
    let inv = dispatch::dispatch(
        &req,
        |n| sb.has_command(n),
        sb.chroot_d_file("chroot-cmd").is_some(),
    );
    let launch = build::for_command(&sb, &conf, inv, &opts, &mut super::warn)?;
    let entered = enter::enter(
        &sb,
        &conf,
        &req.display(),
        launch,
        crate::launch::use_pty(),
        &mut super::warn,
    )?;
    Ok(report(&entered))
}
