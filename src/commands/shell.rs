//! `shell`: an interactive login shell of root inside.
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::commands::run::{enter, identity_env, root_passwd};
use crate::sandbox::{Need, Sandbox};

/// Variables a login shell keeps from the caller (as login(1) does).
const KEEP: [&str; 4] = ["TERM", "COLORTERM", "LANG", "TZ"];

pub fn run(dir: Option<&Path>) -> Result<u8> {
    let sb = Sandbox::open(dir, Need::Rootfs)?;
    let (home, mut shell) = root_passwd(&sb);
    if sb.chroot_file(&shell).is_none() {
        eprintln!(
            "chroot-tool: warning: root's shell {} is not in the sandbox (see its /etc/passwd); using /bin/sh",
            crate::show::bytes(shell.as_bytes())
        );
        shell = "/bin/sh".into();
    }
    let name = Path::new(&shell)
        .file_name()
        .map_or("sh".into(), |n| n.to_string_lossy().into_owned());
    let mut env: Vec<(OsString, OsString)> = std::env::vars_os()
        .filter(|(k, _)| {
            let k = k.as_bytes();
            KEEP.iter().any(|w| w.as_bytes() == k) || k.starts_with(b"LC_")
        })
        .collect();
    env.extend(identity_env(&home));
    env.push(("SHELL".into(), shell.clone().into()));
    let cwd = if sb.chroot_file(&home).is_some_and(|m| m.is_dir()) {
        PathBuf::from(&home)
    } else {
        PathBuf::from("/")
    };
    enter(
        &sb,
        &shell,
        vec![shell.clone()],
        Some(format!("-{name}")),
        cwd,
        env,
    )
}
