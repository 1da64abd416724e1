//! `unpack FILE -d DIR`: an archive (of this tool or the original one) as a
//! sandbox. What in it would act on the host (`[bind]` records of host
//! paths, `host-cmd`) is set aside until the user accepts it (`--trust`).
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::archive::{self, trust, UnpackOptions};
use crate::cli::{UnpackArgs, Usage};
use crate::show;

pub fn run(dir: Option<&Path>, args: &UnpackArgs) -> Result<()> {
    let Some(dir) = dir else {
        return Err(Usage(crate::cli::NO_DIR.into()).into());
    };
    if args.accept {
        return accept(dir);
    }
    let Some(file) = &args.file else {
        return Err(Usage("unpack: give the archive FILE (or --accept)".into()).into());
    };
    // An existing DIR must be empty (the unpack checks); it is also never
    // one of the directories no sandbox may be.
    if dir.exists() {
        if let Some(why) = crate::sandbox::refusal(dir) {
            bail!("refusing {}: {why}", show::path(dir));
        }
    }
    let mut bar = super::pack::Bar::new(args.quiet, "unpacking");
    let done = match archive::unpack_file(file, dir, &UnpackOptions::default(), &mut bar) {
        Ok(done) => done,
        Err(e) => {
            bar.done();
            // What was unpacked before the failure stays for the user to
            // look at, with nothing of it acting on the host.
            if !args.trust {
                if let Ok(r) = trust::review(dir) {
                    let _ = trust::set_aside(dir, &r);
                }
            }
            return Err(anyhow::Error::new(e).context(format!(
                "unpacking {} into {} (what was unpacked is left there)",
                show::path(file),
                show::path(dir)
            )));
        }
    };
    bar.done();
    for w in &done.warnings {
        super::warn(w.clone());
    }
    settle_trust(dir, args.trust)?;
    if !args.quiet {
        super::note(format!(
            "unpacked {} into {} ({} entries, {} of data)",
            show::path(file),
            show::path(dir),
            done.entries,
            indicatif::HumanBytes(done.bytes)
        ));
    }
    Ok(())
}

/// Lists what in DIR's `chroot.d` acts on the host; sets it aside unless
/// `trust`.
pub fn settle_trust(dir: &Path, trusted: bool) -> Result<()> {
    let review = trust::review(dir).with_context(|| show::path(dir.join("chroot.d")))?;
    if review.is_clean() {
        return Ok(());
    }
    let mut lines = vec![];
    for b in &review.binds {
        lines.push(format!("  bind of a host path: {b}"));
    }
    if let Some(e) = &review.conf_error {
        lines.push(format!(
            "  tool.conf does not parse (what it mounts cannot be told): {e}"
        ));
    }
    if review.host_cmd {
        lines.push("  host-cmd: a program run on the host before each command".to_string());
    }
    if trusted {
        super::note(format!(
            "trusted (--trust): the archive's chroot.d acts on the host:\n{}",
            lines.join("\n")
        ));
        return Ok(());
    }
    let set = trust::set_aside(dir, &review).with_context(|| show::path(dir.join("chroot.d")))?;
    let names: Vec<String> = set.iter().map(show::path).collect();
    super::warn(format!(
        "the archive's chroot.d would act on the host; set aside, not enabled:\n{}\n  now: {}\n  to accept them after reading them: chroot-tool unpack --accept -d {}",
        lines.join("\n"),
        names.join(", "),
        show::path(dir)
    ));
    Ok(())
}

fn accept(dir: &Path) -> Result<()> {
    let done = trust::accept(dir).with_context(|| show::path(dir.join("chroot.d")))?;
    if done.is_empty() {
        super::note(format!(
            "nothing set aside in {}",
            show::path(dir.join("chroot.d"))
        ));
    }
    for p in done {
        super::note(format!("enabled {}", show::path(p)));
    }
    Ok(())
}
