//! `destroy`: turn the sandbox off, then delete DIR without ever crossing a
//! mount point or following a symlink out of it (`remove`). It first checks
//! everything that can refuse, before it ends or deletes anything: what is
//! not a sandbox (`sandbox::refusal`: `/`, system directories, the user's
//! home, a directory that is neither a root filesystem nor empty), a mount
//! below DIR that `off` would leave, DIR mounted elsewhere (perhaps on
//! there), and the user's confirmation.
use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::cli::DestroyArgs;
use crate::commands::Usage;
use crate::sandbox::{Need, Sandbox};
use crate::{lock, mountinfo, remove, show};

pub fn run(dir: Option<&Path>, args: &DestroyArgs) -> Result<()> {
    let grace = super::grace(args.timeout)?;
    // Everything that can refuse comes before anything is ended or deleted:
    // what DIR is (Sandbox::open), what is mounted where, the user's word.
    let sb = Sandbox::open(dir, Need::Dir)?;
    std::env::set_current_dir("/")?;
    // Refused, not warned: an overlay's upper layer holds only its changes,
    // which mean nothing without the base they were made over.
    let users = crate::overlay::users_of(&sb.dir);
    if !users.is_empty() {
        let list: Vec<String> = users.iter().map(show::path).collect();
        bail!(
            "{}: it is the base of the overlay sandboxes {}; nothing was deleted: destroy them first",
            show::path(&sb.dir),
            list.join(" ")
        );
    }
    let hidden = crate::overlay::hidden_from(&sb.dir);
    if !hidden.is_empty() {
        let list: Vec<String> = hidden.iter().map(show::path).collect();
        bail!(
            "{}: the overlay sandboxes {} are on, hidden by something mounted over them, \
             and may be over this one; nothing was deleted: unmount what hides them first",
            show::path(&sb.dir),
            list.join(" ")
        );
    }
    sb.check_delete()?;
    confirm(&sb.dir, args.yes)?;
    let guard = lock::exclusive(&sb.dir)?;
    // Again under the lock: the sandbox may have changed while we asked.
    sb.check()?;
    sb.check_delete()?;
    sb.turn_off(grace, &guard, &mut super::warn, &mut super::note)
        .with_context(|| format!("turning {} off; nothing was deleted", show::path(&sb.dir)))?;
    let mounts = mountinfo::read().context("reading /proc/self/mountinfo")?;
    // A mount at DIR itself is the user's (off has ended the sandbox's):
    // DIR is emptied and stays.
    let left: Vec<String> = mountinfo::under(&mounts, &sb.dir)
        .iter()
        .filter(|m| m.point != sb.dir)
        .map(|m| show::path(&m.point))
        .collect();
    if !left.is_empty() {
        bail!(
            "still mounted at or below {}: {}; nothing was deleted: unmount them, then run destroy again",
            show::path(&sb.dir),
            left.join(" ")
        );
    }
    if !nix::unistd::geteuid().is_root() {
        as_own_root().with_context(|| {
            format!(
                "deleting {} as a normal user; nothing was deleted",
                show::path(&sb.dir)
            )
        })?;
    }
    let done = remove::remove_tree(&sb.dir).with_context(|| {
        format!(
            "deleting {} (stopped; what is left was not deleted)",
            show::path(&sb.dir)
        )
    })?;
    drop(guard);
    if done.kept {
        return super::out(format!(
            "{} emptied ({} directories, {} other entries deleted); it stays: it is a mount point (unmount it to remove it)\n",
            show::path(&sb.dir),
            done.dirs,
            done.others
        ));
    }
    super::out(format!(
        "{} destroyed ({} directories, {} other entries deleted)\n",
        show::path(&sb.dir),
        done.dirs,
        done.others
    ))
}

/// A normal user's sandbox holds files of the user's subordinate ids (its
/// create ran in a user namespace with the user's mapping): the deletion
/// runs as root of a user namespace with that same mapping, which may
/// remove them. Where user namespaces are disabled, none was used to
/// create either: the deletion runs as the user.
fn as_own_root() -> Result<()> {
    // Decided by who invoked us, before the user namespace makes us root:
    // the run dir, and the state dir whose list of sandboxes forgets DIR.
    let _ = crate::audit::invoked_as_root();
    let _ = crate::owned::run_dir();
    if crate::idmap::check_userns().is_err() {
        return Ok(());
    }
    let me = crate::sandbox::real_user()
        .context("the invoking user has no entry in the password database")?;
    let map = crate::idmap::for_user(me.uid.as_raw(), me.gid.as_raw(), &me.name)?;
    map.enter()?;
    Ok(())
}

fn confirm(dir: &Path, yes: bool) -> Result<()> {
    if yes {
        return Ok(());
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(Usage(format!(
            "refusing to destroy {} without confirmation (no terminal to ask on): pass --yes",
            show::path(dir)
        ))
        .into());
    }
    eprint!("Delete {} and everything in it? [y/N] ", show::path(dir));
    std::io::stderr().flush()?;
    let mut answer = String::new();
    stdin.lock().read_line(&mut answer)?;
    if matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
        Ok(())
    } else {
        bail!(
            "{} was not deleted (answer y to delete it)",
            show::path(dir)
        )
    }
}
