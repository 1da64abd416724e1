//! `completions SHELL`: a shell completion script.
use anyhow::Result;
use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs};

pub fn run(args: &CompletionsArgs) -> Result<()> {
    let mut cmd = Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "chroot-tool", &mut std::io::stdout());
    Ok(())
}
