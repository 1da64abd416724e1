//! `import IMAGE -d DIR`: a new sandbox from an OCI image layout, an
//! oci-archive or a docker archive (`crate::archive::oci`). Like `unpack`,
//! what in it would act on the host is set aside until the user accepts it.
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::archive::oci;
use crate::cli::{ImportArgs, Usage};
use crate::show;

pub fn run(dir: Option<&Path>, args: &ImportArgs) -> Result<()> {
    let Some(dir) = dir else {
        return Err(Usage(crate::cli::NO_DIR.into()).into());
    };
    // An existing DIR must be empty (the first layer checks); it is also
    // never one of the directories no sandbox may be.
    if dir.exists() {
        if let Some(why) = crate::sandbox::refusal(dir) {
            bail!("refusing {}: {why}", show::path(dir));
        }
    }
    let mut bar = super::pack::Bar::new(args.quiet, "importing");
    let res = oci::import(&args.image, args.tag.as_deref(), dir, &mut bar);
    bar.done();
    let done = match res {
        Ok(done) => done,
        Err(e) => {
            // What was laid before the failure stays for the user to look
            // at, with nothing of it acting on the host.
            let not_empty = e
                .downcast_ref::<crate::archive::ArchiveError>()
                .is_some_and(|e| matches!(e, crate::archive::ArchiveError::NotEmpty(_)));
            if dir.exists() && !not_empty {
                super::unpack::left_after_failure(dir, args.trust);
            }
            return Err(e.context(format!(
                "importing {} into {} (what was unpacked is left there)",
                show::path(&args.image),
                show::path(dir)
            )));
        }
    };
    for w in &done.warnings {
        super::warn(w.clone());
    }
    super::unpack::settle_trust(dir, args.trust, done.privileged, done.root_mode)?;
    let made = oci::mark_sandbox(dir, &done)
        .with_context(|| format!("writing {}", show::path(dir.join("chroot.d"))))?;
    if !args.quiet {
        super::note(format!(
            "imported the {}{} ({} layer{}, {} entries) into {}{}",
            done.kind,
            done.name
                .as_deref()
                .map_or(String::new(), |n| format!(" {}", show::quote(n))),
            done.layers,
            if done.layers == 1 { "" } else { "s" },
            done.entries,
            show::path(dir),
            if made {
                "; its settings are in chroot.d/tool.conf"
            } else {
                ""
            }
        ));
    }
    Ok(())
}
