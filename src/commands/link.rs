//! `link -d DIR NAME... [--to BINDIR]`, `link --remove`: host wrappers
//! that run NAME inside the sandbox (see `crate::link`).
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::cli::LinkArgs;
use crate::link::{self, Installed};
use crate::sandbox::{Need, Sandbox};
use crate::show;

pub fn run(dir: Option<&Path>, args: &LinkArgs) -> Result<()> {
    // Every name is checked before anything is written.
    let names = args
        .names
        .iter()
        .map(|n| link::check_name(n))
        .collect::<Result<Vec<&str>, _>>()
        .map_err(|e| super::Usage(e.to_string()))?;
    let sb = Sandbox::open(dir, Need::Rootfs)?;
    let bindir = match &args.to {
        Some(b) => std::path::absolute(b).with_context(|| format!("--to {}", show::path(b)))?,
        None => link::default_bindir(nix::unistd::geteuid().is_root(), std::env::var_os("HOME"))
            .context("no home directory for ~/.local/bin: set HOME or pass --to BINDIR")?,
    };
    let mut failed = 0;
    let mut out = String::new();
    if args.remove {
        for name in &names {
            match link::remove(&sb.dir, name, &bindir) {
                Ok(()) => out.push_str(&format!("removed {}\n", show::path(bindir.join(name)))),
                Err(e) => {
                    failed += 1;
                    super::note(show::error_chain(&e));
                }
            }
        }
        super::out(out)?;
        if failed > 0 {
            bail!(
                "{failed} of {} wrappers not removed (see above)",
                names.len()
            );
        }
        return Ok(());
    }
    if !bindir.is_dir() {
        if args.to.is_some() {
            bail!("--to {}: no such directory", show::path(&bindir));
        }
        std::fs::create_dir_all(&bindir)
            .with_context(|| format!("making {}", show::path(&bindir)))?;
    }
    let exe = std::env::current_exe().context("finding chroot-tool's own path for the wrappers")?;
    for name in &names {
        if !in_sandbox_path(&sb, name) {
            super::warn(format!(
                "{name} is not a command in the sandbox's PATH (yet); the wrapper is made anyway"
            ));
        }
        match link::install(&exe, &sb.dir, name, &bindir) {
            Ok(how) => out.push_str(&format!(
                "{} {}: runs {name} in {} (in the current directory, through [bind])\n",
                if how == Installed::New {
                    "made"
                } else {
                    "replaced"
                },
                show::path(bindir.join(name)),
                show::path(&sb.dir)
            )),
            Err(e) => {
                failed += 1;
                super::note(show::error_chain(&e));
            }
        }
    }
    super::out(out)?;
    if failed > 0 {
        bail!("{failed} of {} wrappers not made (see above)", names.len());
    }
    if !link::in_path(&bindir, std::env::var_os("PATH")) {
        super::warn(format!(
            "{} is not in your PATH: add it (e.g. in ~/.profile) to use the wrappers by name",
            show::path(&bindir)
        ));
    }
    Ok(())
}

/// Is `name` a command in one of the directories of the sandbox's PATH?
fn in_sandbox_path(sb: &Sandbox, name: &str) -> bool {
    crate::launch::build::PATH.split(':').any(|d| {
        sb.chroot_file(Path::new(d).join(name))
            .is_some_and(|m| m.is_file())
    })
}
