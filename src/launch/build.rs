//! The options of `run` and `shell` into a [`Launch`]: who (`-u`, `[run]
//! user`), where (`-w`, `--here`, `[run] workdir`), with what environment
//! (a clean one, `-e`). The command line wins over tool.conf's `[run]`.
use std::ffi::OsString;
use std::os::fd::AsFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::user::{self, User};
use super::{Launch, Reach};
use crate::conf::{BindSpec, Conf, FsKind};
use crate::sandbox::Sandbox;
use crate::show;

/// The search path of every command inside.
pub const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Bad options (exit status 2): the library's own, mapped by `commands`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadOption(pub String);

/// Where the command starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Workdir {
    /// A directory inside the sandbox (`-w`).
    Inside(PathBuf),
    /// The host's directory (`--here`: our current one), seen through the
    /// `[bind]` records.
    Here(PathBuf),
}

/// What the command line asked of a run or a shell.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `USER[:GROUP]`.
    pub user: Option<String>,
    pub workdir: Option<Workdir>,
    /// `K=V` each (bytes).
    pub env: Vec<OsString>,
    /// `--memory`, `--cpus`, `--pids`, `--rlimit` (over tool.conf's `[limits]`).
    pub limits: crate::cgroup::Limits,
    /// `-m SRC:TGT[:OPTS]` each.
    pub mounts: Vec<String>,
    /// `--net`: `Some(true)` for none, `Some(false)` for host.
    pub net_none: Option<bool>,
    /// `--pid`.
    pub pid: bool,
    /// `--ephemeral`.
    pub ephemeral: bool,
}

/// The caller's variables a command inside keeps: the terminal, the
/// language and the time zone; nothing else is passed in.
fn kept(name: &[u8]) -> bool {
    matches!(name, b"TERM" | b"LANG" | b"TZ") || name.starts_with(b"LC_")
}

/// A launch prepared from the options, before the program is known: the
/// root, who, the environment and the working directory asked for (if any).
struct Base {
    reach: Reach,
    user: User,
    explicit: bool,
    env: Vec<(OsString, OsString)>,
    cwd: Option<PathBuf>,
    limits: crate::cgroup::Limits,
    isolation: super::isolate::Isolation,
}

fn base(sb: &Sandbox, conf: &Conf, opts: &Options, warn: &mut dyn FnMut(String)) -> Result<Base> {
    let reach =
        Reach::chroot(&sb.dir).with_context(|| format!("opening {}", show::path(&sb.dir)))?;
    let root = reach.root();
    // config.toml's [run] settings name their own file.
    let conf_at = |line: usize, file: &Option<PathBuf>| {
        let path = file.as_deref().unwrap_or(&conf.path);
        format!("{}:{line}: [run]", show::path(path))
    };
    let spec = match (&opts.user, &conf.run.user) {
        (Some(u), _) => Some((u.clone(), "-u".to_string())),
        (None, Some(s)) => Some((
            s.value.clone(),
            format!("{} user", conf_at(s.line, &s.file)),
        )),
        (None, None) => None,
    };
    let (user, explicit) = match spec {
        Some((spec, from)) => {
            if !crate::conf::is_user_spec(&spec) {
                return Err(BadOption(format!(
                    "-u {}: expected USER or USER:GROUP (names or numbers)",
                    show::quote(&spec)
                ))
                .into());
            }
            let passwd = user::read_etc(root.as_fd(), &sb.dir, "passwd")?;
            let group = user::read_etc(root.as_fd(), &sb.dir, "group")?;
            let u = user::resolve(&spec, &passwd, &group)
                .map_err(|e| anyhow::anyhow!("{from}: {e}"))?;
            (u, true)
        }
        None => {
            let passwd = user::read_etc(root.as_fd(), &sb.dir, "passwd").unwrap_or_else(|e| {
                warn(format!("{e}; using /root and /bin/sh for root"));
                Vec::new()
            });
            (user::root_of(&passwd), false)
        }
    };
    let cwd = match &opts.workdir {
        Some(Workdir::Inside(p)) => {
            if !p.is_absolute() {
                return Err(BadOption(format!(
                    "-w {}: give an absolute path inside the sandbox",
                    show::path(p)
                ))
                .into());
            }
            Some(p.clone())
        }
        Some(Workdir::Here(host)) => Some(here(host, sb, conf)?),
        None => conf.run.workdir.as_ref().map(|w| w.value.clone()),
    };
    let mut env: Vec<(OsString, OsString)> = vec![("PATH".into(), PATH.into())];
    env.extend(std::env::vars_os().filter(|(k, _)| kept(k.as_bytes())));
    env.extend(user.env());
    for kv in &opts.env {
        let b = kv.as_bytes();
        let Some(eq) = b.iter().position(|&c| c == b'=').filter(|&i| i > 0) else {
            return Err(BadOption(format!("-e {}: expected NAME=VALUE", show::bytes(b))).into());
        };
        let (k, v) = (
            OsString::from_vec(b[..eq].to_vec()),
            OsString::from_vec(b[eq + 1..].to_vec()),
        );
        env.retain(|(name, _)| *name != k);
        env.push((k, v));
    }
    let isolation = isolation(conf, opts)?;
    Ok(Base {
        reach,
        user,
        explicit,
        env,
        cwd,
        limits: opts.limits.over(&conf.limits),
        isolation,
    })
}

impl Base {
    fn into_launch(self, argv: Vec<OsString>, cwd: PathBuf) -> Launch {
        let mut l = Launch::new(self.reach, argv);
        l.identity = self.explicit.then_some(self.user.identity);
        l.env = self.env;
        l.cwd = self.cwd.unwrap_or(cwd);
        l.limits = self.limits;
        l.isolation = self.isolation;
        l
    }
}

/// `-m`, `--net` and `--pid`, over `[run]`'s `net` and `pid`.
fn isolation(conf: &Conf, opts: &Options) -> Result<super::isolate::Isolation> {
    let mut mounts = Vec::new();
    for m in &opts.mounts {
        mounts.push(super::isolate::MountSpec::parse(m).map_err(BadOption)?);
    }
    let net_none = opts
        .net_none
        .or(conf.run.net_none.as_ref().map(|s| s.value))
        .unwrap_or(false);
    let pid = opts.pid || conf.run.pid.as_ref().is_some_and(|s| s.value);
    Ok(super::isolate::Isolation {
        mounts,
        net_none,
        pid,
        ephemeral: opts.ephemeral,
        ..Default::default()
    })
}

/// `run`: the dispatched invocation `inv`, in its working directory unless
/// a working directory was asked for.
pub fn for_command(
    sb: &Sandbox,
    conf: &Conf,
    inv: crate::dispatch::Invocation,
    opts: &Options,
    warn: &mut dyn FnMut(String),
) -> Result<Launch> {
    let argv = inv.argv.into_iter().map(OsString::from).collect();
    let mut launch = base(sb, conf, opts, warn)?.into_launch(argv, inv.cwd);
    launch.chroot_d_program = inv.program.map(OsString::from);
    Ok(launch)
}

/// `shell`: the user's login shell (`/bin/sh` when it is not in the
/// sandbox), in the user's home (`/` when it is not there) unless a working
/// directory was asked for.
pub fn for_shell(
    sb: &Sandbox,
    conf: &Conf,
    opts: &Options,
    warn: &mut dyn FnMut(String),
) -> Result<Launch> {
    let mut b = base(sb, conf, opts, warn)?;
    let mut shell = b.user.shell.clone();
    let as_path = |v: &[u8]| PathBuf::from(OsString::from_vec(v.to_vec()));
    if !shell.starts_with(b"/") || sb.chroot_file(as_path(&shell)).is_none() {
        warn(format!(
            "the shell {} of {} is not in the sandbox (see its /etc/passwd); using /bin/sh",
            show::bytes(&shell),
            show::bytes(&b.user.name)
        ));
        shell = b"/bin/sh".to_vec();
        b.env.retain(|(k, _)| k != "SHELL");
        b.env.push(("SHELL".into(), "/bin/sh".into()));
    }
    let home = as_path(&b.user.home);
    let cwd = if home.is_absolute() && sb.chroot_file(&home).is_some_and(|m| m.is_dir()) {
        home
    } else {
        PathBuf::from("/")
    };
    let name = Path::new(OsString::from_vec(shell.clone()).as_os_str())
        .file_name()
        .map_or_else(|| OsString::from("sh"), |n| n.to_owned());
    let mut arg0 = OsString::from("-");
    arg0.push(name);
    let mut l = b.into_launch(vec![OsString::from_vec(shell)], cwd);
    l.arg0 = Some(arg0);
    Ok(l)
}

/// The launch of `on`'s start and `off`'s stop: `inv` as root, the clean
/// environment.
pub fn for_stop(sb: &Sandbox, inv: crate::dispatch::Invocation) -> Result<Launch> {
    let conf = Conf::default();
    for_command(sb, &conf, inv, &Options::default(), &mut |_| {})
}

/// `--here`: the host directory `host` as seen inside the sandbox `sb`:
/// through the `[bind]` record with the longest source that holds it, or
/// directly when it lies inside the sandbox itself.
fn here(host: &Path, sb: &Sandbox, conf: &Conf) -> Result<PathBuf> {
    match map_here(host, &sb.dir, &conf.binds) {
        Some(p) => Ok(p),
        None => bail!(
            "--here: the current directory {} is not under the source of any [bind] record of {} (nor inside the sandbox); use -w DIR",
            show::path(host),
            show::path(sb.chroot_d().join("tool.conf"))
        ),
    }
}

/// Pure part of `here`: sources are compared as the kernel bound them
/// (canonical paths), component by component.
pub fn map_here(host: &Path, dir: &Path, binds: &[BindSpec]) -> Option<PathBuf> {
    let mut best: Option<(usize, PathBuf)> = None;
    let mut consider = |src: &Path, tgt: &Path| {
        if let Ok(rel) = host.strip_prefix(src) {
            let len = src.components().count();
            if !matches!(best, Some((l, _)) if l >= len) {
                best = Some((len, tgt.join(rel)));
            }
        }
    };
    consider(dir, Path::new("/"));
    for b in binds {
        if b.ignore || !matches!(b.fs, FsKind::Bind | FsKind::BindRo) {
            continue;
        }
        let src = crate::sys::canonicalize(&b.src).unwrap_or_else(|_| PathBuf::from(&b.src));
        consider(&src, &b.tgt);
    }
    best.map(|(_, p)| p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bind(src: &str, tgt: &str, fs: FsKind) -> BindSpec {
        BindSpec {
            line: 1,
            tgt: tgt.into(),
            src: src.into(),
            fs,
            opt: String::new(),
            ignore: false,
        }
    }

    #[test]
    fn here_takes_the_longest_source() {
        let binds = [
            bind("/nonexistent-ct/a", "/a", FsKind::Bind),
            bind("/nonexistent-ct/a/b", "/deep", FsKind::BindRo),
            bind("/nonexistent-ct/t", "/t", FsKind::Tmpfs),
        ];
        let dir = Path::new("/nonexistent-ct/sb");
        let m = |h: &str| map_here(Path::new(h), dir, &binds);
        assert_eq!(m("/nonexistent-ct/a/x"), Some("/a/x".into()));
        assert_eq!(m("/nonexistent-ct/a"), Some("/a".into()));
        assert_eq!(m("/nonexistent-ct/a/b/c"), Some("/deep/c".into()));
        assert_eq!(m("/nonexistent-ct/ab"), None, "components, not text");
        assert_eq!(m("/nonexistent-ct/t/x"), None, "a tmpfs has no host source");
        assert_eq!(m("/nonexistent-ct/sb/etc"), Some("/etc".into()));
        assert_eq!(m("/elsewhere"), None);
    }

    #[test]
    fn kept_variables() {
        for k in ["TERM", "LANG", "LC_ALL", "LC_CTYPE", "TZ"] {
            assert!(kept(k.as_bytes()), "{k}");
        }
        for k in ["FOO", "PATH", "HOME", "LD_PRELOAD", "TERMINFO", "XLC_X"] {
            assert!(!kept(k.as_bytes()), "{k}");
        }
    }
}
