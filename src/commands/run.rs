//! `run`: turn on, run host-cmd, then run the command inside.
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::cli::RunArgs;
use crate::commands::{on, Usage};
use crate::dispatch::{self, Request};
use crate::exec::{self, Spec, Terminal};
use crate::lock;
use crate::sandbox::{Need, Sandbox};

pub fn run(dir: Option<&Path>, args: &RunArgs) -> Result<u8> {
    let req = match (&args.line, args.argv.is_empty()) {
        (Some(l), true) => Request::Line(l.clone()),
        (None, false) => Request::Argv(args.argv.clone()),
        _ => return Err(Usage("nothing to run: give \"LINE\" or -- PROG ARGS...".into()).into()),
    };
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
/// identity and search path of root inside.
pub fn command_env(sb: &Sandbox) -> Vec<(String, String)> {
    let (home, _) = root_passwd(sb);
    let mut env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "PATH" | "HOME" | "USER" | "LOGNAME" | "CHROOT_TOOL_DIR"
            )
        })
        .collect();
    env.extend(identity_env(&home));
    env
}

pub fn identity_env(home: &str) -> Vec<(String, String)> {
    vec![
        (
            "PATH".into(),
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        ),
        ("HOME".into(), home.into()),
        ("USER".into(), "root".into()),
        ("LOGNAME".into(), "root".into()),
    ]
}

/// root's entry of the sandbox's /etc/passwd: (home, shell).
pub fn root_passwd(sb: &Sandbox) -> (String, String) {
    use std::os::fd::AsFd;
    let text = crate::sys::open_root(&sb.dir)
        .and_then(|r| crate::sys::resolve_in_root(r.as_fd(), Path::new("/etc/passwd")))
        .and_then(|fd| std::fs::read_to_string(crate::sys::fd_path(fd.as_fd())))
        .unwrap_or_default();
    let f: Vec<&str> = text
        .lines()
        .find(|l| l.starts_with("root:"))
        .map(|l| l.split(':').collect())
        .unwrap_or_default();
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
    env: Vec<(String, String)>,
) -> Result<u8> {
    let mut guard = lock::for_use(&sb.dir)?;
    on::ensure_on(sb)?;
    if let Some(hook) = host_cmd(sb) {
        drop(guard);
        let st = std::process::Command::new(&hook)
            .arg(line)
            .arg(&sb.dir)
            .status()
            .with_context(|| format!("running {}", hook.display()))?;
        if !st.success() {
            use std::os::unix::process::ExitStatusExt;
            let code = st
                .code()
                .map_or_else(|| 128 + st.signal().unwrap_or(0) as u8, |c| c as u8);
            eprintln!(
                "chroot-tool: {} failed (status {code}); command not run",
                hook.display()
            );
            return Ok(code);
        }
        guard = lock::for_use(&sb.dir)?;
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
    env: Vec<(String, String)>,
    guard: lock::Lock,
) -> Result<u8> {
    let ptmx = sb.dir.join("dev/pts/ptmx");
    let terminal = if exec::use_pty() && ptmx.exists() {
        Terminal::Pty { ptmx }
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
        eprintln!("chroot-tool: {e}");
    }
    Ok(exec::exit_code(&res))
}

/// `chroot.d/host-cmd` when it is executable, as a host path inside DIR.
fn host_cmd(sb: &Sandbox) -> Option<PathBuf> {
    if sb.has_command("host-cmd") {
        let p = sb.chroot_d().join("host-cmd");
        std::fs::canonicalize(&p)
            .ok()
            .filter(|c| c.starts_with(&sb.dir))
    } else {
        None
    }
}
