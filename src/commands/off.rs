//! `off`: dispatch `stop`, end every process inside (the sandbox's by mount
//! id and namespace, see `procs`), unmount everything at or below DIR
//! (deepest first, as the mount table says), and verify. A directory that
//! is not a sandbox is refused before anything (`Sandbox::open`).
use std::path::Path;

use anyhow::Result;

use crate::cli::OffArgs;
use crate::sandbox::{Need, Sandbox};
use crate::{lock, show};

pub fn run(dir: Option<&Path>, args: &OffArgs) -> Result<()> {
    let sb = Sandbox::open(dir, Need::Teardown)?;
    // Our own working directory must not keep a mount of the sandbox busy.
    std::env::set_current_dir("/")?;
    let guard = lock::exclusive(&sb.dir)?;
    let r = sb.turn_off(
        super::grace(args.timeout)?,
        &guard,
        &mut super::warn,
        &mut super::note,
    )?;
    drop(guard);
    if r.mounts == 0 && r.processes == 0 {
        super::out(format!("{} is already off\n", show::path(&sb.dir)))?;
    } else {
        super::out(format!(
            "{} is off ({} unmounted, {} ended)\n",
            show::path(&sb.dir),
            r.mounts,
            match r.processes {
                1 => "1 process".to_string(),
                n => format!("{n} processes"),
            }
        ))?;
    }
    Ok(())
}
