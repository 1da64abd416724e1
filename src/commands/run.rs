//! `run`: turn on, run host-cmd, then run the command inside.
use std::ffi::OsString;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::cli::RunArgs;
use crate::commands::on;
use crate::dispatch;
use crate::exec::{self, Spec, Terminal};
use crate::sandbox::{Need, Sandbox};
use crate::{lock, show};

pub fn run(dir: Option<&Path>, args: &RunArgs) -> Result<u8> {
    let req = args.request()?;
    let sb = Sandbox::open(dir, Need::Rootfs)?;
    let inv = dispatch::dispatch(
        &req,
        |n| sb.has_command(n),
        sb.chroot_d_file("chroot-cmd").is_some(),
    );
    enter(
        &sb,
        &req.display(),
        inv.argv,
        None,
        inv.cwd,
        command_env(&sb),
    )
}

/// The environment of a command run inside: the caller's, with the
/// identity and search path of root inside. Bytes end to end: a variable
/// that is not UTF-8 reaches the command as it is.
pub fn command_env(sb: &Sandbox) -> Vec<(OsString, OsString)> {
    let (home, _) = root_passwd(sb);
    let mut env: Vec<(OsString, OsString)> = std::env::vars_os()
        .filter(|(k, _)| {
            !matches!(
                k.as_bytes(),
                b"PATH" | b"HOME" | b"USER" | b"LOGNAME" | b"CHROOT_TOOL_DIR"
            )
        })
        .collect();
    env.extend(identity_env(&home));
    env
}

pub fn identity_env(home: &str) -> Vec<(OsString, OsString)> {
    [
        (
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        ),
        ("HOME", home),
        ("USER", "root"),
        ("LOGNAME", "root"),
    ]
    .into_iter()
    .map(|(k, v)| (k.into(), v.into()))
    .collect()
}

/// At most this much of the sandbox's `/etc/passwd` is read.
pub const PASSWD_CAP: usize = 4 << 20;

/// root's entry of the sandbox's /etc/passwd: (home, shell). The file is
/// the sandbox's data: read inside the root, a regular file of at most
/// [`PASSWD_CAP`] bytes; anything else counts as no entry, with a warning.
pub fn root_passwd(sb: &Sandbox) -> (String, String) {
    let text = match crate::sys::open_root(&sb.dir).map_err(crate::sys::ReadError::from) {
        Ok(root) => {
            match crate::sys::read_in_root(root.as_fd(), Path::new("/etc/passwd"), PASSWD_CAP) {
                Ok(b) => b.unwrap_or_default(),
                Err(e) => {
                    eprintln!(
                        "chroot-tool: warning: {}: {e}; using /root and /bin/sh for root",
                        show::path(sb.dir.join("etc/passwd"))
                    );
                    Vec::new()
                }
            }
        }
        Err(_) => Vec::new(),
    };
    let line = text
        .split(|&b| b == b'\n')
        .find(|l| l.starts_with(b"root:"))
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .unwrap_or_default();
    let f: Vec<&str> = line.split(':').collect();
    let home = f
        .get(5)
        .filter(|s| !s.is_empty())
        .unwrap_or(&"/root")
        .to_string();
    let shell = f
        .get(6)
        .filter(|s| !s.is_empty())
        .unwrap_or(&"/bin/sh")
        .to_string();
    (home, shell)
}

/// Turns the sandbox on, runs host-cmd, and runs `argv` inside; returns the
/// exit status DESIGN.md gives (the command's, 126/127, 128+N).
pub fn enter(
    sb: &Sandbox,
    line: &str,
    argv: Vec<String>,
    arg0: Option<String>,
    cwd: PathBuf,
    env: Vec<(OsString, OsString)>,
) -> Result<u8> {
    let mut guard = lock::exclusive(&sb.dir)?;
    on::ensure_on(sb)?;
    if let Some(hook) = host_cmd(sb)? {
        drop(guard);
        let name = show::path(sb.chroot_d().join("host-cmd"));
        // The very file that was checked runs, by descriptor: a process
        // inside that swaps host-cmd for a symlink afterwards changes nothing.
        let st = crate::sys::process::command_of_fd(hook.as_fd())
            .arg0(sb.chroot_d().join("host-cmd"))
            .arg(line)
            .arg(&sb.dir)
            .status()
            .with_context(|| format!("running {name}"))?;
        drop(hook);
        if !st.success() {
            use std::os::unix::process::ExitStatusExt;
            let code = st
                .code()
                .map_or_else(|| 128 + st.signal().unwrap_or(0) as u8, |c| c as u8);
            eprintln!("chroot-tool: {name} failed (status {code}); command not run");
            return Ok(code);
        }
        guard = lock::exclusive(&sb.dir)?;
        on::ensure_on(sb)?;
    }
    supervise(sb, argv, arg0, cwd, env, guard)
}

/// Runs `argv` inside a sandbox that is on; `guard` is released once it has started.
pub fn supervise(
    sb: &Sandbox,
    argv: Vec<String>,
    arg0: Option<String>,
    cwd: PathBuf,
    env: Vec<(OsString, OsString)>,
    guard: lock::Lock,
) -> Result<u8> {
    let terminal = if exec::use_pty() {
        match sandbox_devpts(sb) {
            Ok(devpts) => Terminal::Pty { devpts },
            Err(why) => {
                eprintln!(
                    "chroot-tool: the command was not run: no terminal of the sandbox's own: {why}"
                );
                return Ok(125);
            }
        }
    } else {
        Terminal::Inherit
    };
    let spec = Spec {
        root: sb.dir.clone(),
        argv,
        arg0,
        cwd,
        env,
        terminal,
    };
    let res = exec::run(&spec, move || drop(guard));
    if let Err(e) = &res {
        eprintln!("chroot-tool: {}", crate::show::error_chain(e));
    }
    Ok(exec::exit_code(&res))
}

/// The devpts that `on` mounted at the sandbox's `/dev/pts`, as a
/// descriptor: `/dev/pts` resolved inside the root, a devpts mount of its
/// own (the root of a mount listed under DIR, another instance than the
/// host's `/dev/pts`). Never the host path `DIR/dev/pts`, which a `/dev`
/// symlink in the rootfs would lead to the host's devpts.
fn sandbox_devpts(sb: &Sandbox) -> std::result::Result<OwnedFd, String> {
    use crate::sys::{self, pty};
    let here = || show::path(sb.dir.join("dev/pts"));
    let fd = sys::open_root(&sb.dir)
        .and_then(|r| sys::resolve_in_root(r.as_fd(), Path::new("/dev/pts")))
        .map_err(|e| format!("{}: {e}", here()))?;
    if !pty::is_devpts(fd.as_fd()).map_err(|e| format!("{}: {e}", here()))? {
        return Err(format!("{} is not a devpts filesystem", here()));
    }
    let (id, is_root) = sys::mount_of(fd.as_fd()).map_err(|e| format!("{}: {e}", here()))?;
    let mounts = crate::mountinfo::read().map_err(|e| format!("reading the mount table: {e}"))?;
    let ours = crate::mountinfo::under(&mounts, &sb.dir)
        .iter()
        .any(|m| m.id == id);
    let dev = pty::dev_of(fd.as_fd()).map_err(|e| format!("{}: {e}", here()))?;
    let host_dev = sys::open_path(Path::new("/dev/pts"))
        .and_then(|h| pty::dev_of(h.as_fd()))
        .ok();
    if !is_root || !ours || host_dev == Some(dev) {
        return Err(format!(
            "{} is not the devpts that `on` mounted in the sandbox",
            here()
        ));
    }
    Ok(fd)
}

/// `chroot.d/host-cmd` resolved inside the root and opened (`O_PATH`) when
/// it is an executable regular file: the descriptor is what will run.
fn host_cmd(sb: &Sandbox) -> Result<Option<OwnedFd>> {
    let root = crate::sys::open_root(&sb.dir)
        .with_context(|| format!("opening {}", show::path(&sb.dir)))?;
    let fd = match crate::sys::resolve_in_root(root.as_fd(), Path::new("/chroot.d/host-cmd")) {
        Ok(fd) => fd,
        Err(_) => return Ok(None),
    };
    let st = nix::sys::stat::fstat(fd.as_fd())
        .with_context(|| show::path(sb.chroot_d().join("host-cmd")))?;
    let runnable = st.st_mode & libc::S_IFMT == libc::S_IFREG && st.st_mode & 0o111 != 0;
    Ok(runnable.then_some(fd))
}
