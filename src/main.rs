//! chroot-tool: parse the command line, run the command, map errors to exit codes.
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = chroot_tool::cli::Cli::parse();
    match chroot_tool::commands::run(cli) {
        Ok(code) => code,
        // A closed pipe (`chroot-tool status | head -1`) is not an error.
        Err(fail) if fail.is_broken_pipe() => ExitCode::SUCCESS,
        Err(fail) => {
            eprintln!("chroot-tool: {:#}", fail.error);
            ExitCode::from(fail.code)
        }
    }
}
