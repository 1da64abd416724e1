//! Placeholder until the supervisor lands.
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;

pub enum Terminal {
    Inherit,
    Pty { ptmx: PathBuf },
}
pub struct Spec {
    pub root: PathBuf,
    pub argv: Vec<String>,
    pub arg0: Option<String>,
    pub cwd: PathBuf,
    pub env: Vec<(String, String)>,
    pub terminal: Terminal,
}
pub enum Outcome {
    Exited(i32),
    Signaled(i32),
}
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("{prog}: command not found")]
    NotFound { prog: String },
    #[error("{prog}: not executable: {source}")]
    NotExecutable {
        prog: String,
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Setup {
        what: String,
        source: std::io::Error,
    },
}
pub fn use_pty() -> bool {
    false
}
pub fn run(spec: &Spec, started: impl FnOnce()) -> Result<Outcome, ExecError> {
    let mut c = std::process::Command::new(&spec.argv[0]);
    c.args(&spec.argv[1..])
        .env_clear()
        .envs(spec.env.iter().cloned());
    if let Some(a) = &spec.arg0 {
        c.arg0(a);
    }
    let root = spec.root.clone();
    let cwd = spec.cwd.clone();
    unsafe {
        c.pre_exec(move || {
            nix::unistd::chroot(&root)?;
            nix::unistd::chdir(&cwd)?;
            Ok(())
        });
    }
    let mut child = c.spawn().map_err(|e| match e.raw_os_error() {
        Some(libc::ENOENT) => ExecError::NotFound {
            prog: spec.argv[0].clone(),
        },
        Some(libc::EACCES) | Some(libc::ENOEXEC) => ExecError::NotExecutable {
            prog: spec.argv[0].clone(),
            source: e,
        },
        _ => ExecError::Setup {
            what: "spawn".into(),
            source: e,
        },
    })?;
    started();
    let st = child.wait().map_err(|e| ExecError::Setup {
        what: "wait".into(),
        source: e,
    })?;
    Ok(match st.code() {
        Some(c) => Outcome::Exited(c),
        None => Outcome::Signaled(st.signal().unwrap_or(0)),
    })
}
pub fn exit_code(r: &Result<Outcome, ExecError>) -> u8 {
    match r {
        Ok(Outcome::Exited(n)) => *n as u8,
        Ok(Outcome::Signaled(n)) => 128 + *n as u8,
        Err(ExecError::NotFound { .. }) => 127,
        Err(ExecError::NotExecutable { .. }) => 126,
        Err(ExecError::Setup { .. }) => 125,
    }
}
