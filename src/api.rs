//! The library: chroot-tool's sandboxes for programs that embed it.
//!
//! Open a sandbox (a directory that holds a root filesystem, made by
//! `chroot-tool create` or by hand), turn it on, run commands inside and
//! read their status and output, turn it off. The same operations as the
//! `chroot-tool` commands, with the same rules (docs/usage.md): `tool.conf`
//! and `config.toml` apply, `run` dispatches as `chroot-tool run` does,
//! and a normal user's sandbox lives in a holder's namespaces.
//!
//! ```no_run
//! use chroot_tool::{Command, RunOptions, Sandbox};
//!
//! # fn main() -> anyhow::Result<()> {
//! let sb = Sandbox::open("/srv/sandboxes/build")?;
//! // Turned on now, and off again when `on` is dropped, unless it was on
//! // already (then it stays on).
//! let on = sb.on()?;
//! let out = sb.run(Command::argv(["uname", "-a"]), &RunOptions::default())?;
//! print!("{}", String::from_utf8_lossy(&out.stdout));
//! let opts = RunOptions::default().user("nobody").workdir("/tmp").env("LANG", "C.UTF-8");
//! let id = sb.run(Command::line("id; exit 3"), &opts)?;
//! assert_eq!(id.code, 3);
//! drop(on);
//! # Ok(())
//! # }
//! ```
//!
//! Every on, run and off goes into the sandbox's history (`chroot-tool
//! log`) and the sandbox into your list (`chroot-tool list`), as from the
//! command line. The library never prints: what the commands would say as
//! a warning is kept and handed out by [`Sandbox::take_warnings`]. Errors are
//! [`anyhow::Error`]s that name the path they are about; a command that
//! could not be run at all is a [`RunError`] inside one (downcast it).
//!
//! As a normal user the sandbox lives in user and mount namespaces held
//! by a holder process; the library joins them in a child process of its
//! own, so the calling program never changes namespaces and may have
//! threads. No thread is started by the library.
use std::io::{Read, Seek};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::launch::{build, enter, Terminal};
use crate::{dispatch, engine, holder, lock, mountinfo, sandbox, show};

pub use crate::cgroup::{Limits, Rlimit};
pub use crate::dispatch::Request as Command;
pub use crate::launch::build::{Options as RunOptions, Workdir};
pub use crate::launch::{ExecError, Outcome};
pub use crate::sandbox::OffReport;

/// How long [`Sandbox::off`] waits between TERM and KILL for the
/// processes still inside (as `chroot-tool off` without `--timeout`).
pub const OFF_GRACE: Duration = Duration::from_secs(5);

/// A sandbox opened by its directory.
#[derive(Debug)]
pub struct Sandbox {
    inner: sandbox::Sandbox,
    warnings: Mutex<Vec<String>>,
}

/// What a command run by [`Sandbox::run`] left: its exit status and what it
/// wrote to stdout and stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// The exit status as `chroot-tool run` returns it: the command's own,
    /// 128+N when it was killed by signal N.
    pub code: u8,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Output {
    /// The command exited with status 0.
    pub fn success(&self) -> bool {
        self.code == 0
    }
}

/// Why a command was not run to its end (inside an [`anyhow::Error`]
/// returned by [`Sandbox::run`] and [`Sandbox::run_inherit`]).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Not found (127), not executable (126), a step before it failed
    /// (125), or its time was up (124).
    #[error(transparent)]
    Exec(#[from] ExecError),
    /// The sandbox's `chroot.d/host-cmd` failed: the command was not run.
    #[error("{name} failed ({ended}); the command was not run")]
    HostCmd { name: String, ended: Outcome },
    /// The command needs a terminal of the sandbox's own and there is none.
    #[error("the command was not run: no terminal of the sandbox's own: {0}")]
    NoTerminal(String),
}

impl RunError {
    /// The exit status `chroot-tool run` gives for it (docs/usage.md).
    pub fn code(&self) -> u8 {
        match self {
            RunError::Exec(e) => e.code(),
            RunError::HostCmd { ended, .. } => ended.status(),
            RunError::NoTerminal(_) => 125,
        }
    }
}

impl Command {
    /// A shell command line, as `chroot-tool run -d DIR "LINE"`.
    pub fn line(line: impl Into<String>) -> Command {
        Command::Line(line.into())
    }

    /// An exact argv, never a shell, as `chroot-tool run -d DIR -- PROG ARGS…`.
    pub fn argv<I, S>(argv: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Command::Argv(argv.into_iter().map(Into::into).collect())
    }
}

/// Builders for the options of a run (the fields are public too); each is
/// the `chroot-tool run` option it names, and wins over `tool.conf`.
impl RunOptions {
    /// `-u USER[:GROUP]`: names or numbers of the sandbox's /etc/passwd and /etc/group.
    pub fn user(mut self, spec: impl Into<String>) -> Self {
        self.user = Some(spec.into());
        self
    }

    /// `-w DIR`: the working directory, an absolute path inside the sandbox.
    pub fn workdir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.workdir = Some(Workdir::Inside(dir.into()));
        self
    }

    /// `--here`: the host directory `dir`, seen inside through the `[bind]` records.
    pub fn here(mut self, dir: impl Into<PathBuf>) -> Self {
        self.workdir = Some(Workdir::Here(dir.into()));
        self
    }

    /// `-e NAME=VALUE`.
    pub fn env(
        mut self,
        name: impl AsRef<std::ffi::OsStr>,
        value: impl AsRef<std::ffi::OsStr>,
    ) -> Self {
        let mut kv = name.as_ref().to_os_string();
        kv.push("=");
        kv.push(value);
        self.env.push(kv);
        self
    }

    /// `-m SRC:TGT[:OPTS]`: an extra mount for this run only.
    pub fn mount(mut self, spec: impl Into<String>) -> Self {
        self.mounts.push(spec.into());
        self
    }

    /// `--net none` (`true`) or `--net host` (`false`).
    pub fn net_none(mut self, none: bool) -> Self {
        self.net_none = Some(none);
        self
    }

    /// `--pid`: a pid namespace of the run's own.
    pub fn pid(mut self, own: bool) -> Self {
        self.pid = own;
        self
    }

    /// `--memory`, `--cpus`, `--pids` and `--rlimit` at once.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }
}

/// Turns the sandbox off when dropped if [`Sandbox::on`] turned it on; a
/// sandbox that was on already stays on. A failure to turn it off on drop
/// is kept as a warning ([`Sandbox::take_warnings`]); call
/// [`OnGuard::off`] to see it as an error instead.
#[must_use = "the sandbox is turned off again when the guard is dropped"]
#[derive(Debug)]
pub struct OnGuard<'a> {
    sandbox: &'a Sandbox,
    turned_on: bool,
}

impl OnGuard<'_> {
    /// Whether this guard turned the sandbox on (and so turns it off).
    pub fn turned_on(&self) -> bool {
        self.turned_on
    }

    /// Turns the sandbox off now if this guard turned it on; `None` when
    /// it leaves it on.
    pub fn off(mut self) -> Result<Option<OffReport>> {
        let turned_on = std::mem::take(&mut self.turned_on);
        if !turned_on {
            return Ok(None);
        }
        self.sandbox.off().map(Some)
    }

    /// Leaves the sandbox on whatever happens to the guard.
    pub fn keep(mut self) {
        self.turned_on = false;
    }
}

impl Drop for OnGuard<'_> {
    fn drop(&mut self) {
        if self.turned_on {
            if let Err(e) = self.sandbox.off() {
                self.sandbox.warn(format!(
                    "turning {} off: {}",
                    show::path(self.sandbox.dir()),
                    show::error_chain(&*e)
                ));
            }
        }
    }
}

impl Sandbox {
    /// Opens the sandbox at `dir`: a directory that holds a root
    /// filesystem (`/bin/sh` inside). Refused: the host's system
    /// directories, a home directory, a directory that holds data but no
    /// root filesystem.
    pub fn open(dir: impl AsRef<Path>) -> Result<Sandbox> {
        let inner = sandbox::Sandbox::open(Some(dir.as_ref()), sandbox::Need::Rootfs)?;
        Ok(Sandbox {
            inner,
            warnings: Mutex::new(Vec::new()),
        })
    }

    /// The sandbox's directory (absolute, canonical).
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The warnings said since the last call (tool.conf lines that are
    /// ignored, a `conf.sh` of the original tool that is not executed,
    /// mounts found different from the plan, a `start` or `stop` that
    /// failed, a guard that could not turn the sandbox off).
    pub fn take_warnings(&self) -> Vec<String> {
        std::mem::take(&mut *self.warnings.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn warn(&self, w: String) {
        self.warnings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(w);
    }

    /// Is it on: held by a live holder, or mounted in our mount namespace.
    pub fn is_on(&self) -> Result<bool> {
        if let holder::Found::Alive(_) = holder::find(self.dir()) {
            return Ok(true);
        }
        let mounts = mountinfo::read().context("reading /proc/self/mountinfo")?;
        Ok(engine::is_on(self.dir(), &mounts))
    }

    /// tool.conf under config.toml's `[run]`, its warnings kept.
    fn conf(&self) -> Result<crate::conf::Conf> {
        let said = std::cell::RefCell::new(Vec::new());
        let conf = self
            .inner
            .conf_with(&mut |w| said.borrow_mut().push(w), &mut |n| {
                said.borrow_mut().push(n)
            })
            .and_then(|c| Ok(crate::conf::config::under(c)?));
        for w in said.into_inner() {
            self.warn(w);
        }
        conf
    }

    /// `chroot-tool on`: mounts what the sandbox needs (or starts its
    /// holder), then runs `chroot.d/start` when it was off. Returns whether
    /// it was off before (this call turned it on).
    pub fn turn_on(&self) -> Result<bool> {
        let started = Started::now();
        let r = self.switch_on();
        self.record("on", started, if r.is_ok() { 0 } else { 1 }, None);
        r
    }

    fn switch_on(&self) -> Result<bool> {
        let conf = self.conf()?;
        let guard = lock::for_use(self.dir())?;
        let mut warnings = Vec::new();
        let switched = self.inner.switch_on(
            &conf,
            false,
            None,
            &guard,
            &mut |w| warnings.push(w),
            &mut |_| {},
        )?;
        if switched.turned_on() {
            self.inner.start(&switched, &mut |w| warnings.push(w));
        }
        drop(guard);
        for w in warnings {
            self.warn(w);
        }
        Ok(switched.turned_on())
    }

    /// [`Sandbox::turn_on`], with a guard that turns the sandbox off again
    /// when dropped if this call turned it on.
    pub fn on(&self) -> Result<OnGuard<'_>> {
        let turned_on = self.turn_on()?;
        Ok(OnGuard {
            sandbox: self,
            turned_on,
        })
    }

    /// `chroot-tool off`: runs `chroot.d/stop`, ends every process inside
    /// (TERM, [`OFF_GRACE`], KILL), unmounts what `on` mounted and checks
    /// that nothing is left. Our working directory must not be inside the
    /// sandbox (it would keep a mount busy).
    pub fn off(&self) -> Result<OffReport> {
        self.off_within(OFF_GRACE)
    }

    /// [`Sandbox::off`] with `grace` between TERM and KILL.
    pub fn off_within(&self, grace: Duration) -> Result<OffReport> {
        let started = Started::now();
        let r = lock::exclusive(self.dir()).and_then(|guard| {
            let mut warnings = Vec::new();
            let r = self
                .inner
                .turn_off(grace, &guard, &mut |w| warnings.push(w), &mut |_| {});
            drop(guard);
            for w in warnings {
                self.warn(w);
            }
            r
        });
        self.record("off", started, if r.is_ok() { 0 } else { 1 }, None);
        r
    }

    /// Runs `cmd` inside with `opts`, as `chroot-tool run` does (turned on
    /// first when it is off, and left on; `host-cmd` first; dispatch by
    /// `chroot.d`), its stdin `/dev/null` and its stdout and stderr
    /// captured. A status other than 0 is an [`Output`] too; a command
    /// that could not be run is an error holding a [`RunError`].
    pub fn run(&self, cmd: Command, opts: &RunOptions) -> Result<Output> {
        let stdout = capture_file("stdout")?;
        let stderr = capture_file("stderr")?;
        let devnull = std::fs::File::open("/dev/null").context("opening /dev/null")?;
        let terminal = Terminal::Files {
            stdin: devnull.into(),
            stdout: stdout.try_clone().context("duplicating a descriptor")?,
            stderr: stderr.try_clone().context("duplicating a descriptor")?,
        };
        let code = self.launch(&cmd, opts, terminal)?;
        Ok(Output {
            code,
            stdout: read_all(stdout).context("reading the command's stdout")?,
            stderr: read_all(stderr).context("reading the command's stderr")?,
        })
    }

    /// [`Sandbox::run`] with our own stdin, stdout and stderr (nothing
    /// captured): returns the exit status.
    pub fn run_inherit(&self, cmd: Command, opts: &RunOptions) -> Result<u8> {
        self.launch(&cmd, opts, Terminal::Inherit)
    }

    /// [`Sandbox::launch_now`], recorded in the history as `chroot-tool
    /// run` records it (its status: the command's, a [`RunError`]'s, or 125).
    fn launch(&self, cmd: &Command, opts: &RunOptions, terminal: Terminal) -> Result<u8> {
        let started = Started::now();
        let r = self.launch_now(cmd, opts, terminal);
        let status = match &r {
            Ok(code) => *code,
            Err(e) => e.downcast_ref::<RunError>().map_or(125, RunError::code),
        };
        self.record("run", started, status, Some((cmd, opts)));
        r
    }

    fn launch_now(&self, cmd: &Command, opts: &RunOptions, terminal: Terminal) -> Result<u8> {
        let sb = &self.inner;
        let conf = self.conf()?;
        let inv = dispatch::dispatch(
            cmd,
            |n| sb.has_command(n),
            sb.chroot_d_file("chroot-cmd").is_some(),
        );
        let mut warnings = Vec::new();
        let mut warn = |w| warnings.push(w);
        let mut launch = build::for_command(sb, &conf, inv, opts, &mut warn)?;
        launch.terminal = terminal;
        let entered = enter::enter_apart(sb, &conf, &cmd.display(), launch, &mut warn);
        for w in warnings {
            self.warn(w);
        }
        match entered? {
            enter::Entered::Ran(Ok(ended)) => Ok(ended.status()),
            enter::Entered::Ran(Err(e)) => Err(RunError::Exec(e).into()),
            enter::Entered::HostCmdFailed { name, ended } => {
                Err(RunError::HostCmd { name, ended }.into())
            }
            enter::Entered::NoTerminal(why) => Err(RunError::NoTerminal(why).into()),
        }
    }
}

/// When an operation started: the history's time and its duration.
struct Started(std::time::SystemTime, std::time::Instant);

impl Started {
    fn now() -> Started {
        Started(std::time::SystemTime::now(), std::time::Instant::now())
    }
}

impl Sandbox {
    /// Appends the operation to the sandbox's history (`chroot-tool log`),
    /// as the command line does, and adds the sandbox to this user's list
    /// (`chroot-tool list`); a failure to write either is a warning.
    fn record(
        &self,
        verb: &str,
        started: Started,
        status: u8,
        run: Option<(&Command, &RunOptions)>,
    ) {
        let mut e =
            crate::audit::Entry::new(verb, self.dir(), started.0, started.1.elapsed(), status);
        if let Some((cmd, opts)) = run {
            e.mode = Some(match cmd {
                Command::Line(_) => "line".into(),
                Command::Argv(_) => "argv".into(),
            });
            e.command = Some(cmd.display());
            e.options = option_words(opts);
        }
        if let Err(err) = crate::audit::append(self.dir(), &e) {
            self.warn(format!("history not written: {}", show::error_chain(&err)));
        }
        if verb != "off" && status == 0 {
            if let Err(err) = crate::registry::record(self.dir()) {
                self.warn(format!(
                    "the list of sandboxes was not updated: {}",
                    show::error_chain(&err)
                ));
            }
        }
    }
}

/// `opts` as the options of `chroot-tool run` that say the same (for the history).
fn option_words(opts: &RunOptions) -> Vec<String> {
    let mut w: Vec<String> = Vec::new();
    let mut put = |k: &str, v: String| {
        w.push(k.into());
        w.push(v);
    };
    if let Some(u) = &opts.user {
        put("-u", u.clone());
    }
    match &opts.workdir {
        Some(Workdir::Inside(p)) => put("-w", p.to_string_lossy().into_owned()),
        Some(Workdir::Here(p)) => put("--here", p.to_string_lossy().into_owned()),
        None => {}
    }
    for kv in &opts.env {
        put("-e", kv.to_string_lossy().into_owned());
    }
    for m in &opts.mounts {
        put("-m", m.clone());
    }
    if let Some(none) = opts.net_none {
        put("--net", if none { "none" } else { "host" }.into());
    }
    let l = &opts.limits;
    if let Some(m) = l.memory {
        put("--memory", m.to_string());
    }
    if let Some(q) = l.cpu_quota {
        put(
            "--cpus",
            format!("{}", q as f64 / crate::cgroup::limits::CPU_PERIOD_US as f64),
        );
    }
    if let Some(p) = l.pids {
        put("--pids", p.to_string());
    }
    for (r, v) in &l.rlimits {
        put("--rlimit", format!("{}={v}", r.name()));
    }
    if opts.pid {
        w.push("--pid".into());
    }
    w
}

/// An anonymous file in memory that a command's output goes to.
fn capture_file(name: &str) -> Result<OwnedFd> {
    use nix::sys::memfd::{memfd_create, MFdFlags};
    memfd_create(name, MFdFlags::MFD_CLOEXEC)
        .map_err(std::io::Error::from)
        .with_context(|| format!("making a file for the command's {name} (memfd_create)"))
}

fn read_all(fd: OwnedFd) -> std::io::Result<Vec<u8>> {
    let mut f = std::fs::File::from(fd);
    f.rewind()?;
    let mut out = Vec::new();
    f.read_to_end(&mut out)?;
    Ok(out)
}
