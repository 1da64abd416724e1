//! `destroy`: turn the sandbox off, then delete DIR without ever crossing a
//! mount point or following a symlink out of it (`remove`). Refuses `/`,
//! the user's home and what holds it, the host's system directories, and
//! a directory that is neither a root filesystem nor empty.
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::cli::DestroyArgs;
use crate::commands::{off, Usage};
use crate::sandbox::{Need, Sandbox};
use crate::{lock, mountinfo, remove};

/// Host directories never destroyed, whatever they hold.
const SYSTEM: [&str; 22] = [
    "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/libx32", "/media",
    "/mnt", "/opt", "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/var",
];

pub fn run(dir: Option<&Path>, args: &DestroyArgs) -> Result<()> {
    let grace = off::grace(args.timeout)?;
    let sb = Sandbox::open(dir, Need::Dir)?;
    refuse_protected(&sb.dir)?;
    if !is_empty(&sb.dir)? && !sb.has_shell() && !sb.chroot_d().is_dir() {
        bail!(
            "{}: not a root filesystem (no /bin/sh, no chroot.d/) and not empty; refusing to delete it: remove it by hand if it really should go",
            sb.dir.display()
        );
    }
    confirm(&sb.dir, args.yes)?;
    std::env::set_current_dir("/")?;
    let guard = lock::exclusive(&sb.dir)?;
    off::turn_off(&sb, grace, &guard)
        .with_context(|| format!("turning {} off; nothing was deleted", sb.dir.display()))?;
    let mounts = mountinfo::read().context("reading /proc/self/mountinfo")?;
    // A mount at DIR itself is the user's (off has ended the sandbox's):
    // DIR is emptied and stays.
    let left: Vec<String> = mountinfo::under(&mounts, &sb.dir)
        .iter()
        .filter(|m| m.point != sb.dir)
        .map(|m| m.point.display().to_string())
        .collect();
    if !left.is_empty() {
        bail!(
            "still mounted at or below {}: {}; nothing was deleted: unmount them, then run destroy again",
            sb.dir.display(),
            left.join(" ")
        );
    }
    let done = remove::remove_tree(&sb.dir).with_context(|| {
        format!(
            "deleting {} (stopped; what is left was not deleted)",
            sb.dir.display()
        )
    })?;
    drop(guard);
    if done.kept {
        println!(
            "{} emptied ({} directories, {} other entries deleted); it stays: it is a mount point (unmount it to remove it)",
            sb.dir.display(),
            done.dirs,
            done.others
        );
        return Ok(());
    }
    println!(
        "{} destroyed ({} directories, {} other entries deleted)",
        sb.dir.display(),
        done.dirs,
        done.others
    );
    Ok(())
}

/// The homes of the invoking user: `$HOME`, the home of `$SUDO_USER`, and
/// the password entry of the real user id.
fn homes() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = vec![];
    if let Some(h) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        out.push(h.into());
    }
    if let Ok(name) = std::env::var("SUDO_USER") {
        if let Ok(Some(u)) = nix::unistd::User::from_name(&name) {
            out.push(u.dir);
        }
    }
    if let Ok(Some(u)) = nix::unistd::User::from_uid(nix::unistd::getuid()) {
        out.push(u.dir);
    }
    out.into_iter()
        .map(|h| std::fs::canonicalize(&h).unwrap_or(h))
        .collect()
}

fn refuse_protected(dir: &Path) -> Result<()> {
    if SYSTEM.iter().any(|s| dir == Path::new(s)) {
        bail!(
            "refusing to destroy {}: a system directory of the host, not a sandbox",
            dir.display()
        );
    }
    for h in homes() {
        if h.starts_with(dir) {
            bail!(
                "refusing to destroy {}: it is or holds the home directory {}; pass the sandbox's own directory",
                dir.display(),
                h.display()
            );
        }
    }
    Ok(())
}

fn is_empty(dir: &Path) -> Result<bool> {
    Ok(std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .next()
        .is_none())
}

fn confirm(dir: &Path, yes: bool) -> Result<()> {
    if yes {
        return Ok(());
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(Usage(format!(
            "refusing to destroy {} without confirmation (no terminal to ask on): pass --yes",
            dir.display()
        ))
        .into());
    }
    eprint!("Delete {} and everything in it? [y/N] ", dir.display());
    std::io::stderr().flush()?;
    let mut answer = String::new();
    stdin.lock().read_line(&mut answer)?;
    if matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
        Ok(())
    } else {
        bail!("{} was not deleted (answer y to delete it)", dir.display())
    }
}
