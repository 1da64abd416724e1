//! `chroot-tool create`: arguments resolved into `create::Options`; the work is in `crate::create`.
use std::path::Path;

use crate::cli::CreateArgs;
use crate::create::{create, Options};

fn list(s: &Option<String>) -> Vec<String> {
    s.iter()
        .flat_map(|s| s.split(','))
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .map(String::from)
        .collect()
}

/// DIR as the hint's command line can be pasted: one shell word (quoted
/// when it needs it), or escaped as any name shown when it holds what a
/// terminal must not get (a control character, bytes that are not UTF-8).
fn as_shell_word(dir: &Path) -> String {
    match dir.to_str() {
        Some(s) if !s.chars().any(char::is_control) => crate::dispatch::shell_quote(s),
        _ => crate::show::path(dir),
    }
}

pub fn run(dir: &Path, args: &CreateArgs) -> anyhow::Result<()> {
    if let Some(base) = &args.overlay {
        let made = crate::overlay::create(dir, base)?;
        if !args.quiet {
            eprintln!(
                "created {} as an overlay over {}; try: chroot-tool run -d {} \"apt-get update\"",
                crate::show::path(&made.dir),
                crate::show::path(&made.base),
                as_shell_word(&made.dir)
            );
        }
        return Ok(());
    }
    let opts = Options {
        suite: args.suite.clone(),
        mirror: args.mirror.trim_end_matches('/').to_string(),
        variant: args.variant.clone(),
        include: list(&args.include),
        arch: args.arch.clone(),
        components: list(&args.components),
        extra: args.extra.clone(),
        quiet: args.quiet,
        backend: args.backend.parse().map_err(crate::commands::Usage)?,
        cache: if args.no_cache {
            crate::create::cache::Mode::Off
        } else if args.refresh {
            crate::create::cache::Mode::Refresh
        } else {
            crate::create::cache::Mode::Use
        },
        from: args.from.clone(),
        trust: args.trust,
    };
    let made = create(dir, &opts)?;
    for w in &made.warnings {
        super::warn(w.clone());
    }
    if !opts.quiet {
        let r = &made.record;
        // What is known of it (a copy of an archive may know no variant).
        let what: Vec<&str> = [
            r.codename.as_deref().unwrap_or(&r.suite),
            &r.variant,
            &r.arch,
        ]
        .into_iter()
        .filter(|w| !w.is_empty())
        .collect();
        eprintln!(
            "created {} ({}) in {} s; try: chroot-tool run -d {} \"apt-get update\"",
            crate::show::path(&made.dir),
            what.join(" "),
            r.seconds.unwrap_or(0),
            as_shell_word(&made.dir)
        );
    }
    Ok(())
}
