//! One module per verb. Each returns `anyhow::Result`; this module maps a
//! failure to its exit status (DESIGN.md: 125 for run/shell, else 1; 2 for usage).
pub mod completions;
pub mod config;
pub mod create;
pub mod destroy;
pub mod export;
pub mod import;
pub mod link;
pub mod list;
pub mod log;
pub mod off;
pub mod on;
pub mod pack;
pub mod run;
pub mod share;
pub mod shell;
pub mod status;
pub mod unpack;

use crate::cli::{Cli, Command};

/// A failure to report once, with the exit code it maps to.
pub struct Failure {
    pub error: anyhow::Error,
    pub code: u8,
}

impl Failure {
    pub fn is_broken_pipe(&self) -> bool {
        self.error.chain().any(|c| {
            c.downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
        })
    }
}

pub use crate::cli::Usage;

fn code_for(e: &anyhow::Error, default: u8) -> u8 {
    if e.downcast_ref::<Usage>().is_some()
        || e.downcast_ref::<crate::launch::build::BadOption>()
            .is_some()
    {
        2
    } else {
        default
    }
}

pub fn run(cli: Cli) -> Result<u8, Failure> {
    let started = (std::time::SystemTime::now(), std::time::Instant::now());
    let history = log::Pending::new(&cli);
    let record = recorded(&cli.command, cli.global.dir.as_deref(), history.as_ref());
    let dir = cli.global.dir.as_deref();
    let (res, fail_code) = match cli.command {
        Command::Run(a) => (run::run(dir, &a), 125),
        Command::Shell(a) => (shell::run(dir, &a), 125),
        Command::On(a) => (on::run(dir, &a).map(|()| 0), 1),
        Command::Off(a) => (off::run(dir, &a).map(|()| 0), 1),
        Command::Status(a) => (status::run(dir, &a).map(|()| 0), 1),
        Command::Completions(a) => (completions::run(&a).map(|()| 0), 1),
        Command::Create(a) => (create_in(dir, &a).map(|()| 0), 1),
        Command::Destroy(a) => (destroy::run(dir, &a).map(|()| 0), 1),
        Command::Log(a) => (log::run(dir, &a).map(|()| 0), 1),
        Command::Pack(a) => (pack::run(dir, &a).map(|()| 0), 1),
        Command::Unpack(a) => (unpack::run(dir, &a).map(|()| 0), 1),
        Command::Export(a) => (export::run(dir, &a).map(|()| 0), 1),
        Command::Import(a) => (import::run(dir, &a).map(|()| 0), 1),
        Command::List(a) => (list::run(&a).map(|()| 0), 1),
        Command::Link(a) => (link::run(dir, &a).map(|()| 0), 1),
    };
    if let (Some(record), Ok(_)) = (record, &res) {
        record();
    }
    let res = res.map_err(|error| Failure {
        code: code_for(&error, fail_code),
        error,
    });
    if let Some(h) = history {
        h.finish(res.as_ref().map_or_else(|f| f.code, |c| *c), started);
    }
    res
}

/// What to do once the command succeeded for the list of sandboxes: record
/// the sandbox that `create`, `on`, `run` or `shell` used (one `symlink`
/// when it is recorded already), forget the one `destroy` deleted.
fn recorded(
    cmd: &Command,
    dir: Option<&std::path::Path>,
    history: Option<&log::Pending>,
) -> Option<Box<dyn FnOnce()>> {
    let warn_on = |e: crate::audit::AuditError| {
        warn(format!(
            "the list of sandboxes was not updated: {}",
            crate::show::error_chain(&e)
        ))
    };
    match cmd {
        // The history, written to the same state directory, says once
        // when it cannot be written.
        Command::On(_) | Command::Run(_) | Command::Shell(_) => {
            let dir = history?.dir().to_path_buf();
            Some(Box::new(move || {
                let _ = crate::registry::record(&dir);
            }))
        }
        // A sandbox made from an archive or an image is the user's too.
        Command::Create(_) | Command::Unpack(_) | Command::Import(_) => {
            let given = dir?.to_path_buf();
            Some(Box::new(move || {
                if let Ok(dir) = crate::sys::canonicalize(given) {
                    crate::registry::record(&dir).unwrap_or_else(warn_on)
                }
            }))
        }
        Command::Destroy(_) => {
            let dir = crate::sys::canonicalize(dir?).ok()?;
            Some(Box::new(move || {
                crate::registry::forget(&dir).unwrap_or_else(warn_on)
            }))
        }
        _ => None,
    }
}

fn create_in(dir: Option<&std::path::Path>, args: &crate::cli::CreateArgs) -> anyhow::Result<()> {
    let Some(dir) = dir else {
        return Err(Usage(crate::cli::NO_DIR.into()).into());
    };
    create::run(dir, args)
}

/// Writes a command's output to stdout (a closed pipe is reported as such,
/// and `main` treats it as no error).
pub fn out(text: impl AsRef<str>) -> anyhow::Result<()> {
    use std::io::Write;
    let mut so = std::io::stdout().lock();
    so.write_all(text.as_ref().as_bytes())?;
    so.flush()?;
    Ok(())
}

/// A warning of the library, on stderr.
/// The sandbox's tool.conf, its warnings and notes said on stderr.
pub fn conf_of(sb: &crate::sandbox::Sandbox) -> anyhow::Result<crate::conf::Conf> {
    sb.conf_with(&mut warn, &mut note)
}

pub fn warn(msg: String) {
    eprintln!("chroot-tool: warning: {msg}");
}

/// Prints what the library says it is doing (`chroot-tool: MSG`).
pub fn note(msg: String) {
    eprintln!("chroot-tool: {msg}");
}

/// The options of `run` and `shell` as the library takes them.
pub fn launch_options(a: &crate::cli::LaunchArgs) -> anyhow::Result<crate::launch::build::Options> {
    use crate::launch::build::{Options, Workdir};
    let workdir = match (&a.workdir, a.here) {
        (Some(w), _) => Some(Workdir::Inside(w.clone())),
        (None, true) => Some(Workdir::Here(std::env::current_dir().map_err(|e| {
            anyhow::anyhow!("--here: cannot tell the current directory: {e}")
        })?)),
        (None, false) => None,
    };
    let mut limits = crate::cgroup::Limits {
        memory: a.memory,
        cpu_quota: a.cpus,
        pids: a.pids,
        rlimits: Vec::new(),
    };
    for &(r, v) in &a.rlimit {
        limits.set_rlimit(r, v);
    }
    Ok(Options {
        user: a.user.clone(),
        workdir,
        env: a.env.clone(),
        limits,
        mounts: a.mount.clone(),
        net_none: a.net.as_deref().map(|n| n == "none"),
        pid: a.pid,
        ephemeral: a.ephemeral,
    })
}

/// Says what went wrong with an entry (once) and returns its exit status.
pub fn report(entered: &crate::launch::enter::Entered) -> u8 {
    use crate::launch::enter::Entered;
    match entered {
        Entered::Ran(Err(e)) => eprintln!("chroot-tool: {}", crate::show::error_chain(e)),
        Entered::HostCmdFailed { name, .. } => eprintln!(
            "chroot-tool: {name} failed (status {}); command not run",
            entered.code()
        ),
        Entered::NoTerminal(why) => eprintln!(
            "chroot-tool: the command was not run: no terminal of the sandbox's own: {why}"
        ),
        Entered::Ran(Ok(_)) => {}
    }
    entered.code()
}

/// The longest `--timeout` (a day): any longer would overflow a clock.
pub const MAX_TIMEOUT: f64 = 86_400.0;

/// `--timeout SECONDS` of `off` and `destroy`.
pub fn grace(secs: f64) -> anyhow::Result<std::time::Duration> {
    if !(0.0..=MAX_TIMEOUT).contains(&secs) {
        return Err(Usage(format!(
            "--timeout: {secs} is not a number of seconds from 0 to {MAX_TIMEOUT}"
        ))
        .into());
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}
