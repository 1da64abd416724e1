//! chroot-tool: parse the command line, run the command, map errors to exit codes.
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = chroot_tool::cli::Cli::parse();
    match chroot_tool::commands::run(cli) {
        Ok(code) => code,
        Err(fail) => {
            if !fail.is_broken_pipe() {
                eprintln!("chroot-tool: {:#}", fail.error);
            }
            ExitCode::from(fail.code)
        }
    }
}
