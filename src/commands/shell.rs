//! `shell`: an interactive login shell inside (root's, or `-u USER`'s).
use std::path::Path;

use anyhow::Result;

use crate::cli::LaunchArgs;
use crate::commands::{launch_options, report};
use crate::launch::{build, enter};
use crate::sandbox::{Need, Sandbox};

pub fn run(dir: Option<&Path>, args: &LaunchArgs) -> Result<u8> {
    let opts = launch_options(args)?;
    let sb = Sandbox::open(dir, Need::Rootfs)?;
    let conf = super::config::under(super::conf_of(&sb)?)?;
    let launch = build::for_shell(&sb, &conf, &opts, &mut super::warn)?;
    let line = launch.argv[0].to_string_lossy().into_owned();
    let entered = enter::enter(
        &sb,
        &conf,
        &line,
        launch,
        crate::launch::use_pty(),
        &mut super::warn,
    )?;
    Ok(report(&entered))
}
