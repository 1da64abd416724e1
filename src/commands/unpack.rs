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
    // DIR stays 0700 until the end (`trust::settle_root`): no other user
    // reaches a set-id file of the archive meanwhile.
    let opts = UnpackOptions {
        private_root: true,
        ..UnpackOptions::default()
    };
    let done = match archive::unpack_file(file, dir, &opts, &mut bar) {
        Ok(done) => done,
        Err(e) => {
            bar.done();
            // What was unpacked before the failure stays for the user to
            // look at, with nothing of it acting on the host (a DIR that
            // was not empty is not ours to touch).
            if !matches!(e, archive::ArchiveError::NotEmpty(_)) {
                left_after_failure(dir, args.trust);
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
    settle_trust(dir, args.trust, done.privileged, done.root_mode)?;
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

/// What a failed unpack or import left: set aside and held at 0700, or,
/// when `trusted`, given the mode of a sandbox's root.
pub fn left_after_failure(dir: &Path, trusted: bool) {
    let _ = trust::own_chroot_d(dir);
    if trusted {
        let _ = trust::settle_root(dir, 0, None, true);
    } else {
        if let Ok(r) = trust::review(dir) {
            let _ = trust::set_aside(dir, &r);
        }
        let _ = trust::hold(dir, 0o755);
    }
}

/// Lists what in DIR's `chroot.d` acts on the host and sets it aside unless
/// `trust`; DIR, unpacked at 0700, gets the archive's `root_mode` unless it
/// holds `privileged` members (set-id files, capabilities, device nodes
/// outside /dev) and is not trusted.
pub fn settle_trust(
    dir: &Path,
    trusted: bool,
    privileged: u64,
    root_mode: Option<u32>,
) -> Result<()> {
    trust::own_chroot_d(dir).with_context(|| show::path(dir.join("chroot.d")))?;
    let review = trust::review(dir).with_context(|| show::path(dir.join("chroot.d")))?;
    let held =
        trust::settle_root(dir, privileged, root_mode, trusted).with_context(|| show::path(dir))?;
    if held {
        super::warn(format!(
            "the archive holds {privileged} set-id file(s), file(s) with capabilities or device node(s) outside /dev: {} stays mode 0700 (only root reaches inside from the host; users inside the sandbox other than root cannot reach /) until accepted: chroot-tool unpack --accept -d {}",
            show::path(dir),
            show::path(dir)
        ));
    } else if trusted && privileged > 0 {
        super::note(format!(
            "trusted (--trust): the archive's {privileged} set-id file(s), file(s) with capabilities or device node(s) outside /dev are reachable"
        ));
    }
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
    if review.overlay {
        lines.push(
            "  overlay.toml: a host directory mounted as the sandbox's lower layer".to_string(),
        );
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
        if p == dir {
            super::note(format!("{} has the archive's mode again", show::path(p)));
        } else {
            super::note(format!("enabled {}", show::path(p)));
        }
    }
    Ok(())
}
