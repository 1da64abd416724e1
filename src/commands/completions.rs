//! `completions SHELL`: a shell completion script (those of bash, zsh and
//! fish are the ones share/completions has: see `share::completion`).
use anyhow::Result;

use crate::cli::CompletionsArgs;

pub fn run(args: &CompletionsArgs) -> Result<()> {
    // Into memory first: clap_complete panics when its writer fails (a
    // closed pipe); `out` reports that as the broken pipe it is.
    let script = super::share::completion(args.shell);
    super::out(String::from_utf8_lossy(&script))
}
