//! `pack -d DIR -o FILE`: the sandbox as one archive (`crate::archive`).
use std::io::IsTerminal;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::archive::{self, PackOptions, Progress};
use crate::cli::PackArgs;
use crate::sandbox::{Need, Sandbox};
use crate::show;

pub fn run(dir: Option<&Path>, args: &PackArgs) -> Result<()> {
    let sb = Sandbox::open(dir, Need::Dir)?;
    crate::overlay::enter_for_reading(&sb.dir)?;
    let opts = PackOptions::for_sandbox(&sb.dir)?;
    let mut bar = Bar::new(args.quiet, "packing");
    let packed = archive::pack_file(&sb.dir, &args.output, &opts, &mut bar)
        .with_context(|| format!("packing {}", show::path(&sb.dir)))?;
    bar.done();
    left_out(&packed, "packed", "pack");
    if !args.quiet {
        let size = std::fs::metadata(&args.output)
            .map(|m| m.len())
            .unwrap_or(0);
        super::note(format!(
            "packed {} into {} ({} entries, {} of data, {} archive)",
            show::path(&sb.dir),
            show::path(&args.output),
            packed.entries,
            indicatif::HumanBytes(packed.bytes),
            indicatif::HumanBytes(size),
        ));
    }
    Ok(())
}

/// Progress of pack and unpack: a bar (or a byte count when the total is
/// unknown) on a terminal, nothing otherwise or with `-q`.
pub struct Bar(Option<ProgressBar>);

impl Bar {
    pub fn new(quiet: bool, what: &str) -> Bar {
        if quiet || !std::io::stderr().is_terminal() {
            return Bar(None);
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{spinner:.green} {prefix:.bold} {bytes} {elapsed:>4}")
                .expect("a valid template"),
        );
        bar.set_prefix(what.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        Bar(Some(bar))
    }

    pub fn done(&self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}

impl Progress for Bar {
    fn total(&mut self, bytes: u64) {
        if let Some(b) = &self.0 {
            b.set_length(bytes);
            b.set_style(
                ProgressStyle::with_template(
                    "{spinner:.green} {prefix:.bold} [{bar:25.cyan/blue}] {percent:>3}% {bytes}/{total_bytes} {eta}",
                )
                .expect("a valid template")
                .progress_chars("=> "),
            );
        }
    }
    fn advance(&mut self, bytes: u64) {
        if let Some(b) = &self.0 {
            b.inc(bytes);
        }
    }
}

/// Says what the walk of `pack` or `export` (`done`, `verb`) did not take.
pub fn left_out(packed: &archive::Packed, done: &str, verb: &str) {
    if !packed.mount_points.is_empty() {
        let list: Vec<String> = packed.mount_points.iter().map(show::path).collect();
        super::note(format!(
            "not {done} (mounted): {}; turn the sandbox off to {verb} what lies under them",
            list.join(", ")
        ));
    }
    if !packed.sockets.is_empty() {
        let list: Vec<String> = packed.sockets.iter().map(show::path).collect();
        super::note(format!(
            "sockets left out (a tar cannot hold them): {}",
            list.join(", ")
        ));
    }
}
