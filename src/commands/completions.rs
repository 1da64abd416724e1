//! `completions SHELL`: a shell completion script.
use anyhow::Result;
use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs};

pub fn run(args: &CompletionsArgs) -> Result<()> {
    let mut cmd = Cli::command();
    // Into memory first: clap_complete panics when its writer fails (a
    // closed pipe); `out` reports that as the broken pipe it is.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "chroot-tool", &mut script);
    super::out(String::from_utf8_lossy(&script))
}
