//! One module per verb.
use std::process::ExitCode;

use crate::cli::{Cli, Command};

pub mod create;

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

pub fn run(cli: Cli) -> Result<ExitCode, Failure> {
    if let Command::Create(args) = &cli.command {
        let Some(dir) = &cli.dir else {
            return Err(Failure {
                error: anyhow::anyhow!("no sandbox directory: give -d DIR or set CHROOT_TOOL_DIR"),
                code: 2,
            });
        };
        create::run(dir, args).map_err(|error| Failure { error, code: 1 })?;
    }
    Ok(ExitCode::SUCCESS)
}
