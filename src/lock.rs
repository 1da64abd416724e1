//! Serialises the invocations that change a sandbox's state (on, off,
//! destroy, the start of run) with a flock on the sandbox directory itself:
//! nothing to create, nothing left stale after a crash or a reboot.
use std::fs::File;
use std::path::Path;

use anyhow::{Context, Result};
use nix::fcntl::{Flock, FlockArg};

pub struct Lock(#[allow(dead_code)] Flock<File>);

/// Waits for, then holds, the sandbox's exclusive lock until dropped.
pub fn exclusive(dir: &Path) -> Result<Lock> {
    let f = File::open(dir).with_context(|| format!("opening {} to lock it", dir.display()))?;
    let l = Flock::lock(f, FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .with_context(|| format!("locking {}", dir.display()))?;
    Ok(Lock(l))
}
