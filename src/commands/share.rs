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

/// The completion script for `shell`. clap_complete's bash script names
/// the cases of a hyphenated program's subcommands `chroot__subcmd__tool__...`
/// but sets `cmd=chroot__tool__...`, so that no subcommand's options would
/// complete: the case names are made to match.
pub fn completion(shell: Shell) -> Vec<u8> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "chroot-tool", &mut script);
    if shell == Shell::Bash {
        let text = String::from_utf8_lossy(&script);
        return text
            .replace("chroot__subcmd__tool__subcmd__", "chroot__tool__subcmd__")
            .into_bytes();
    }
    script
}

/// Writes `OUT/completions/*` and `OUT/man/man1/*.1` (one page for the
/// tool, one for each subcommand).
pub fn write_all(out: &Path) -> Result<()> {
    let comp = out.join("completions");
    let man = out.join("man/man1");
    for d in [&comp, &man] {
        std::fs::create_dir_all(d).with_context(|| format!("making {}", show::path(d)))?;
    }
    for (shell, file) in COMPLETIONS {
        let path = comp.join(file);
        std::fs::write(&path, completion(shell))
            .with_context(|| format!("writing {}", show::path(&path)))?;
    }
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut pages = vec![("chroot-tool".to_string(), cmd.clone())];
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        pages.push((format!("chroot-tool-{}", sub.get_name()), sub.clone()));
    }
    for (name, c) in pages {
        let path = man.join(format!("{name}.1"));
        let mut page = Vec::new();
        render_page(c, &mut page)
            .and_then(|()| std::fs::write(&path, page))
            .with_context(|| format!("writing {}", show::path(&path)))?;
    }
    Ok(())
}

/// One man page: clap_mangen's sections, then each paragraph of the help's
/// epilogue (`Files:`, `Environment:`, `Example:`) as a section of its own,
/// its lines kept as they are (no filling: they are tables and commands).
fn render_page(cmd: clap::Command, w: &mut Vec<u8>) -> std::io::Result<()> {
    let extra = cmd
        .get_after_long_help()
        .or(cmd.get_after_help())
        .map(|h| h.to_string())
        .unwrap_or_default();
    let has_subcommands = cmd.has_subcommands();
    let m = clap_mangen::Man::new(cmd).source(format!("chroot-tool {}", env!("CARGO_PKG_VERSION")));
    m.render_title(w)?;
    m.render_name_section(w)?;
    m.render_synopsis_section(w)?;
    m.render_description_section(w)?;
    m.render_options_section(w)?;
    if has_subcommands {
        m.render_subcommands_section(w)?;
    }
    for para in extra.split("\n\n").filter(|p| !p.trim().is_empty()) {
        let mut lines = para.lines();
        let head = lines.next().unwrap_or("").trim_end_matches(':');
        let head = match head {
            "Example" => "EXAMPLES".to_string(),
            h => h.to_uppercase(),
        };
        w.extend_from_slice(format!(".SH {}\n.nf\n", roff_text(&head)).as_bytes());
        for l in lines {
            w.extend_from_slice(roff_text(l.strip_prefix("  ").unwrap_or(l)).as_bytes());
            w.push(b'\n');
        }
        w.extend_from_slice(b".fi\n");
    }
    m.render_version_section(w)
}

/// Text as roff reads it literally: backslashes and hyphens escaped, a
/// line that would start a request guarded.
fn roff_text(s: &str) -> String {
    let t = s.replace('\\', "\\e").replace('-', "\\-");
    if t.starts_with(['.', '\'']) {
        format!("\\&{t}")
    } else {
        t
    }
}
