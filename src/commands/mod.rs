//! One module per verb.
use std::process::ExitCode;

use crate::cli::Cli;

/// A failure to report once, with the exit code it maps to.
pub struct Failure {
    pub error: anyhow::Error,
    pub code: u8,
}

impl Failure {
    pub fn is_broken_pipe(&self) -> bool {
        self.error.chain().any(|c| {
            c.downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
        })
    }
}

pub fn run(_cli: Cli) -> Result<ExitCode, Failure> {
    Ok(ExitCode::SUCCESS)
}
