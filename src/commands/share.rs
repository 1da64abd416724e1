//! The completion scripts and the man pages, as committed under `share/`
//! and installed by `make install`. Generated from the command-line
//! definition (clap_complete, clap_mangen), so that they never disagree
//! with it; tests/completions.rs fails when the committed ones are out of
//! date, and writes them again with `CHROOT_TOOL_BLESS=1` (`make share`).
use std::path::Path;

use anyhow::{Context, Result};
use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;
use crate::show;

/// The completion scripts: shell and file name under `completions/`.
pub const COMPLETIONS: [(Shell, &str); 3] = [
    (Shell::Bash, "chroot-tool.bash"),
    (Shell::Zsh, "_chroot-tool"),
    (Shell::Fish, "chroot-tool.fish"),
];

/// Writes `OUT/completions/*` and `OUT/man/man1/*.1` (one page for the
/// tool, one for each subcommand).
pub fn write_all(out: &Path) -> Result<()> {
    let comp = out.join("completions");
    let man = out.join("man/man1");
    for d in [&comp, &man] {
        std::fs::create_dir_all(d).with_context(|| format!("making {}", show::path(d)))?;
    }
    for (shell, file) in COMPLETIONS {
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "chroot-tool", &mut script);
        let path = comp.join(file);
        std::fs::write(&path, script).with_context(|| format!("writing {}", show::path(&path)))?;
    }
    clap_mangen::generate_to(Cli::command(), &man)
        .with_context(|| format!("writing the man pages in {}", show::path(&man)))?;
    Ok(())
}
