//! `create`: a Debian rootfs from a backend (`backend`: mmdebstrap when it
//! is installed, else debootstrap), then `chroot.d/` and the few files that
//! make it a sandbox. The steps, in order:
//!
//! 1. DIR made, then locked for the whole create (a create or another
//!    command in progress on it is refused), then found empty (a previous
//!    failed create of ours is cleaned: unmounted, then deleted without
//!    crossing a mount; DIR itself stays when it is a mount point);
//! 2. the backend run by a guard (`run`), in its own process group and
//!    mount namespace, ended with chroot-tool even by SIGKILL, its progress
//!    read (debootstrap: `--debian-installer` on fd 3, `progress`;
//!    mmdebstrap: its `--verbose` lines, `mmprogress`), its full output
//!    kept in `chroot.d/create.log`; on failure or any fatal signal its
//!    group is ended and everything below DIR unmounted. As a normal user
//!    the guard first enters a user namespace with the user's mapping
//!    (`idmap`: root inside is the user, the other ids the user's
//!    subordinate range) and mmdebstrap runs as its root;
//! 3. `chroot.d/tool.conf`, `/etc/hostname`, `/etc/hosts`, the locale, the
//!    host's time zone, its local CA certificates and apt proxy (`trust`)
//!    written, never through a symlink of the rootfs: file writes only, so
//!    the same for root and for a normal user (whose files are root's inside);
//! 4. `chroot.d/create.toml` written last: its presence means success.
use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Instant, SystemTime};

pub mod backend;
pub mod cache;
mod from;
pub mod mmprogress;
pub mod progress;
pub mod record;
pub mod run;
pub mod setup;
pub mod trust;
mod ui;

pub use record::{load, CreateRecord};

use backend::Backend;
use progress::{Event, Level, Parser};
use run::{Outcome, Signals, Stream};
use setup::Root;
use ui::Ui;

use crate::show;

/// The commented tool.conf template every new sandbox gets.
pub const TOOL_CONF: &str = include_str!("../share/tool.conf");

/// The log of a create in `chroot.d/`: there while a create works (and
/// after one that failed), gone once it finished.
pub const LOG: &str = "create.log";

/// Lines of the log shown when debootstrap fails.
const TAIL: usize = 15;

/// What to create, resolved from the command line.
#[derive(Debug, Clone)]
pub struct Options {
    pub suite: String,
    pub mirror: String,
    pub variant: String,
    pub include: Vec<String>,
    pub arch: Option<String>,
    pub components: Vec<String>,
    /// Passed to the backend as they are, before the suite.
    pub extra: Vec<String>,
    pub quiet: bool,
    pub backend: backend::Choice,
    /// How the cache of finished root filesystems is used.
    pub cache: cache::Mode,
    /// Clone this sandbox directory (on or off: never its mounts) or
    /// archive instead of running a backend.
    pub from: Option<PathBuf>,
    /// With `from` an archive: enable its host binds and host-cmd at once.
    pub trust: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("debootstrap is not installed: apt-get install debootstrap")]
    NoDebootstrap,
    #[error("mmdebstrap is not installed: apt-get install mmdebstrap")]
    NoMmdebstrap,
    #[error("neither mmdebstrap nor debootstrap is installed: apt-get install mmdebstrap (or debootstrap)")]
    NoBackend,
    #[error("debootstrap needs root (it makes device nodes and chroots): as a normal user create uses mmdebstrap (--backend mmdebstrap or auto), or run it as root")]
    DebootstrapAsUser,
    #[error("create as a normal user needs a subordinate id range for {user} in /etc/subuid and /etc/subgid (Debian's packages own files as other users, such as apt's _apt): as root, run usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {user}; or run create as root")]
    NoRange { user: String },
    #[error("create as a normal user needs newuidmap and newgidmap (they map the subordinate ids): apt-get install uidmap")]
    NoUidmap,
    #[error("{0}")]
    Userns(#[from] crate::idmap::UsernsError),
    #[error("finding who you are: {0}")]
    WhoAmI(String),
    #[error("refusing to create a sandbox in /: give -d a directory of its own")]
    RootDir,
    #[error("refusing to create the sandbox: {0}")]
    Ancestry(String),
    #[error("{0}")]
    Busy(String),
    #[error("cleaning up the previous failed create: {0}")]
    Clean(#[from] crate::remove::RemoveError),
    #[error("cleaning up the previous failed create: {0}")]
    Cleanup(String),
    #[error("{}: not a directory", show::path(.0))]
    NotADir(PathBuf),
    #[error("{} is not empty: create only fills an empty or missing directory; choose another -d", show::path(.0))]
    NotEmpty(PathBuf),
    #[error("{} holds a previous failed create, but these are still mounted below it: {}; unmount them first", show::path(dir), list(left))]
    StillMounted { dir: PathBuf, left: Vec<PathBuf> },
    #[error("invalid suite name {}: expected a Debian codename such as bookworm, or stable/testing/unstable", show::quote(.0))]
    BadSuite(String),
    #[error("refusing to create a sandbox in {}: its path holds {what}, which debootstrap cannot take safely (it splits the path there and writes outside DIR, or hands it to the shell); choose a directory whose whole path has none; nothing was made", show::path(path))]
    UnsafeDir { path: PathBuf, what: String },
    #[error("refusing the mirror {}: it holds {what}, which debootstrap cannot take safely (it splits the URL there); nothing was made", show::quote(.mirror))]
    UnsafeMirror { mirror: String, what: String },
    #[error("{}: {source}", show::path(path))]
    Io { path: PathBuf, source: io::Error },
    #[error("writing the sandbox's files: {0}")]
    Setup(#[from] setup::SetupError),
    #[error("starting {}: {source}", show::path(path))]
    Spawn { path: PathBuf, source: io::Error },
    #[error("suite '{suite}' is unknown to the mirror {mirror} (it has no dists/{suite}/Release); nothing is mounted below {}; see {}", show::path(dir), show::path(log))]
    UnknownSuite {
        suite: String,
        mirror: String,
        dir: PathBuf,
        log: PathBuf,
    },
    #[error("the mirror {mirror} could not be reached (getting {} failed); check --mirror and the network; nothing is mounted below {}; see {}", show::os(url), show::path(dir), show::path(log))]
    Unreachable {
        mirror: String,
        url: String,
        dir: PathBuf,
        log: PathBuf,
    },
    #[error(
        "{backend} failed ({status}): {}; nothing is mounted below {}; see {}",
        show::os(reason),
        show::path(dir),
        show::path(log)
    )]
    Failed {
        backend: &'static str,
        status: String,
        reason: String,
        dir: PathBuf,
        log: PathBuf,
    },
    #[error(
        "create interrupted; nothing is mounted below {}; see {}",
        show::path(dir),
        show::path(log)
    )]
    Interrupted { dir: PathBuf, log: PathBuf },
    #[error(
        "unpacking the cached rootfs {} into {}: {source}; nothing is mounted below it, and a create there again cleans it; see {}",
        show::path(file),
        show::path(dir),
        show::path(log)
    )]
    Cache {
        file: PathBuf,
        source: Box<crate::archive::ArchiveError>,
        dir: PathBuf,
        log: PathBuf,
    },
    #[error("create --from needs root (the clone keeps every owner of the tree); a normal user can `unpack` an archive of their own")]
    FromNeedsRoot,
    #[error("refusing to copy {}: {why}", show::path(from))]
    FromRefused { from: PathBuf, why: String },
    #[error(
        "cloning {}: {why}; nothing is mounted below {}, and a create there again cleans it; see {}",
        show::path(from),
        show::path(dir),
        show::path(log)
    )]
    Clone {
        from: PathBuf,
        why: String,
        dir: PathBuf,
        log: PathBuf,
    },
    #[error(
        "create {what}, and these are still mounted below {}: {}; unmount them by hand; see {}",
        show::path(dir),
        list(left),
        show::path(log)
    )]
    LeftMounted {
        what: &'static str,
        dir: PathBuf,
        left: Vec<PathBuf>,
        log: PathBuf,
    },
}

fn list(paths: &[PathBuf]) -> String {
    paths.iter().map(show::path).collect::<Vec<_>>().join(", ")
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> CreateError + '_ {
    move |source| CreateError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What a successful create made.
#[derive(Debug)]
pub struct Created {
    pub dir: PathBuf,
    pub record: CreateRecord,
    pub log: PathBuf,
    /// What the user should know (a cache entry that could not be
    /// stored, an archive's host binds set aside), one line each.
    pub warnings: Vec<String>,
}

/// Builds the sandbox in `dir`.
pub fn create(dir: &Path, opts: &Options) -> Result<Created, CreateError> {
    if let Some(from) = &opts.from {
        return from::create_from(dir, from, opts);
    }
    let started = Instant::now();
    let privileged = nix::unistd::geteuid().is_root();
    let found = backend::find(opts.backend, privileged)?;
    let map = if privileged { None } else { Some(user_map()?) };
    if !valid_suite(&opts.suite) {
        return Err(CreateError::BadSuite(opts.suite.clone()));
    }
    if let Some(what) = unsafe_for_debootstrap(opts.mirror.as_bytes()) {
        return Err(CreateError::UnsafeMirror {
            mirror: opts.mirror.clone(),
            what,
        });
    }
    // Before any thread (the progress bar's) starts, so all have them blocked.
    let sigs = Signals::block().map_err(io_err(Path::new("signalfd")))?;
    // DIR stays locked until create returns; the backend inherits the lock.
    // Still single-threaded: a user's cleanup runs in a forked child.
    let (dir, lock) = prepare_dir(dir, &Ui::plain(opts.quiet), map.as_ref(), true)?;
    let mut ui = Ui::new(opts.quiet);
    let chroot_d = make_chroot_d(&dir)?;
    let log_path = chroot_d.join(LOG);
    let mut log = Log::create(&log_path)?;

    let arch = opts.arch.clone().unwrap_or_else(host_arch);
    let components = if opts.components.is_empty() {
        vec!["main".to_string()]
    } else {
        opts.components.clone()
    };
    // The cache holds root's creates only (a user's rootfs is owned by
    // the user's subordinate ids, which another user's would not be).
    let mut cached = if privileged {
        cache_entry(opts, found.backend.name(), &arch, &components)
    } else {
        None
    };
    // A cache another user could have written is neither read nor written.
    let mut warnings = vec![];
    let hit = match cached.as_ref().map(|c| c.lookup(cache::MAX_AGE)) {
        Some(Ok(Some(cache::Lookup::Fresh(hit)))) => Some(hit),
        Some(Ok(Some(cache::Lookup::Old(age)))) => {
            if opts.cache == cache::Mode::Use {
                let msg = format!(
                    "the cached rootfs is {} days old, over the {}-day limit (security updates): built again",
                    age.as_secs() / 86400,
                    cache::MAX_AGE.as_secs() / 86400
                );
                ui.say(&format!("create: {msg}"));
                log.note(&msg);
            }
            None
        }
        Some(Ok(None)) => None,
        Some(Err(e)) => {
            let msg = format!("the cache is not used: {e}");
            log.note(&msg);
            warnings.push(msg);
            cached = None;
            None
        }
        None => None,
    };
    if let Some(hit) = hit.filter(|_| opts.cache == cache::Mode::Use) {
        let from = format!(
            "the cache {} ({} h old)",
            show::path(&hit.path),
            hit.age.as_secs() / 3600
        );
        ui.say(&format!("create: rootfs from {from}"));
        log.note(&format!("rootfs from {from}"));
        let file = hit.path.clone();
        let id = {
            use std::os::unix::fs::MetadataExt;
            let md = hit.file.metadata().map_err(io_err(&file))?;
            (md.dev(), md.ino())
        };
        // An entry that does not read as an archive, or holds no root
        // filesystem (an empty file, a truncated one), is never a sandbox:
        // it is removed, and the rootfs built again below (and stored
        // anew). What failed on DIR's side (a full disk) fails the create
        // and leaves the entry.
        use crate::archive::ArchiveError;
        // A member's data that does not decode fails with no error of the
        // system's; writing it (ENOSPC, EIO) with one.
        let of_archive = |e: &ArchiveError| match e {
            ArchiveError::Format { .. } | ArchiveError::Refused { .. } => true,
            ArchiveError::Member { source, .. } => source.raw_os_error().is_none(),
            _ => false,
        };
        let unusable = match cache::Entry::unpack(hit, &dir, &mut crate::archive::Quiet) {
            Err(e) if of_archive(&e) => Some(e.to_string()),
            Err(source) => {
                log.note(&format!("unpacking the cached rootfs failed: {source}"));
                return Err(CreateError::Cache {
                    file,
                    source: Box::new(source),
                    dir,
                    log: log_path,
                });
            }
            Ok(_) if !crate::sandbox::holds_a_shell(&dir) => {
                Some("it holds no root filesystem (no /bin/sh)".to_string())
            }
            Ok(_) => None,
        };
        match unusable {
            None => {
                ui.finish();
                // The cache never stores chroot.d: whatever of it an
                // archive brought is reviewed as an unpacked archive's is.
                warnings.extend(from::set_aside_host_acting(&dir, "the cached archive")?);
                let mut record = record_of(opts, arch, components, opts.mirror.clone());
                record.backend = found.backend.name().to_string();
                return finish(false, dir, record, started, &sigs, log, log_path, warnings);
            }
            Some(why) => {
                let msg = format!(
                    "the cached rootfs {} is unusable ({why}): removed, and the rootfs is built again",
                    show::path(&file)
                );
                if let Some(c) = &cached {
                    c.discard(id);
                }
                // DIR as it was before the unpack: only a new chroot.d.
                crate::remove::empty_tree(&dir).map_err(|e| CreateError::Io {
                    path: dir.clone(),
                    source: io::Error::other(format!(
                        "emptying it after the unusable cached rootfs: {e}"
                    )),
                })?;
                make_chroot_d(&dir)?;
                log = Log::create(&log_path)?;
                log.note(&msg);
                // Said once: now (the build that follows takes a while), or
                // with the warnings at the end under `-q`.
                if ui.shows() {
                    ui.say(&format!("create: warning: {msg}"));
                } else {
                    warnings.push(msg);
                }
            }
        }
    }
    let path = found.path.clone();
    let proxy = trust::host_proxy();
    // Arguments are OsStrings: DIR's name is bytes, passed on as it is.
    let (args, version) = match found.backend {
        Backend::Debootstrap => {
            let mut args: Vec<std::ffi::OsString> = vec![
                "--debian-installer".into(),
                format!("--variant={}", opts.variant).into(),
            ];
            if !opts.include.is_empty() {
                args.push(format!("--include={}", opts.include.join(",")).into());
            }
            if let Some(a) = &opts.arch {
                args.push(format!("--arch={a}").into());
            }
            if !opts.components.is_empty() {
                args.push(format!("--components={}", components.join(",")).into());
            }
            args.extend(opts.extra.iter().map(Into::into));
            args.push(opts.suite.clone().into());
            args.push(dir.as_os_str().to_owned());
            args.push(opts.mirror.clone().into());
            if let Some(script) = fallback_script(&path, &opts.suite) {
                log.note(&format!(
                    "debootstrap has no script for '{}'; using {} (as for any Debian suite newer than it knows)",
                    opts.suite,
                    script.display()
                ));
                args.push(script.into_os_string());
            }
            (args, debootstrap_version(&path))
        }
        Backend::Mmdebstrap => (
            backend::mmdebstrap_args(opts, &dir, map.is_some(), &proxy),
            backend::mmdebstrap_version(&path),
        ),
    };
    log.note(&format!(
        "create (chroot-tool {}) at {}: {} {}",
        env!("CARGO_PKG_VERSION"),
        record::rfc3339(SystemTime::now()),
        path.display(),
        args.iter()
            .map(|a| trust::hide_password(&crate::show::os(a)))
            .collect::<Vec<_>>()
            .join(" ")
    ));
    if let Some(m) = &map {
        log.note(&format!(
            "as {} in a user namespace: uid_map {}, gid_map {}",
            show::os(&m.user),
            crate::idmap::map_text(&m.uids).trim().replace('\n', ", "),
            crate::idmap::map_text(&m.gids).trim().replace('\n', ", ")
        ));
    }

    let mut cmd = Command::new(&path);
    cmd.args(&args)
        .env("LC_ALL", "C")
        .env_remove("LANGUAGE")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .env("DEBCONF_NONINTERACTIVE_SEEN", "true")
        .env("PATH", sbin_path());
    // debootstrap downloads with wget, which reads only the environment;
    // mmdebstrap gets a proxy with a password there too, never on its
    // command line (`backend::mmdebstrap_args`); apt reads both.
    for (scheme, var) in [("http", "http_proxy"), ("https", "https_proxy")] {
        if let (None, Some(p)) = (std::env::var_os(var), trust::proxy_for(&proxy, scheme)) {
            if found.backend == Backend::Debootstrap || trust::has_password(&p) {
                cmd.env(var, p);
            }
        }
    }
    let mut parsers = [Parser::new(), Parser::new()];
    let mut mm = mmprogress::Parser::new();
    let mut seen = Seen {
        backend: Some(found.backend),
        ..Seen::default()
    };
    let outcome = {
        let mut on_line = |stream: Stream, line: &str| {
            if stream == Stream::Output {
                log.line(line);
            }
            let events = match found.backend {
                Backend::Debootstrap => parsers[stream as usize].line(line),
                Backend::Mmdebstrap => mm.line(line),
            };
            for ev in events {
                seen.observe(&ev, stream, &mut log, &mut ui);
            }
        };
        let r = run::run(cmd, &sigs, lock.file().as_fd(), map.as_ref(), &mut on_line);
        for (i, p) in parsers.iter_mut().enumerate() {
            let stream = if i == 0 { Stream::Output } else { Stream::Fd3 };
            for ev in p.finish() {
                seen.observe(&ev, stream, &mut log, &mut ui);
            }
        }
        r
    };
    let outcome = match outcome {
        Ok(o) => o,
        Err(source) => {
            ui.finish();
            let _ = crate::engine::unmount_below(&dir);
            return Err(CreateError::Spawn { path, source });
        }
    };
    ui.finish();

    // Whatever happened, nothing the backend mounted (proc, sys…) stays.
    let left =
        crate::engine::unmount_below(&dir).map_err(io_err(Path::new("/proc/self/mountinfo")))?;
    let name = found.backend.name();
    let what = match &outcome {
        Outcome::Interrupted(sig) => {
            log.note(&format!("interrupted by {sig}; {name} ended"));
            "interrupted"
        }
        Outcome::Exited(st) if !st.success() => {
            log.note(&format!("{name} failed: {st}"));
            "failed"
        }
        Outcome::Exited(_) => "failed after the backend",
    };
    if !left.is_empty() {
        log.note(&format!("still mounted: {}", list(&left)));
        return Err(CreateError::LeftMounted {
            what,
            dir,
            left,
            log: log_path,
        });
    }
    match outcome {
        Outcome::Interrupted(_) => {
            return Err(CreateError::Interrupted { dir, log: log_path });
        }
        Outcome::Exited(st) if !st.success() => {
            log.show_tail(&log_path);
            let status = crate::sys::process::Ended::from(st).to_string();
            return Err(match found.backend {
                Backend::Debootstrap => classify(seen.last_error, status, opts, dir, log_path),
                Backend::Mmdebstrap => classify_mm(seen.cause, status, opts, dir, log_path),
            });
        }
        Outcome::Exited(_) => {}
    }

    // What the backend made, for the next create with these settings.
    if let Some(c) = &cached {
        ui.say("create: storing the rootfs in the cache");
        match c.store(&dir, &mut crate::archive::Quiet) {
            Ok(file) => log.note(&format!("stored in the cache as {}", show::path(file))),
            Err(e) => {
                let msg = format!("the rootfs was not stored in the cache: {e}");
                log.note(&msg);
                warnings.push(msg);
            }
        }
    }
    let deb = found.backend == Backend::Debootstrap;
    let mut record = record_of(
        opts,
        arch,
        components,
        seen.mirror.unwrap_or_else(|| opts.mirror.clone()),
    );
    record.backend = name.to_string();
    record.debootstrap_version = if deb { version.clone() } else { None };
    record.mmdebstrap_version = if deb { None } else { version };
    record.user = map.as_ref().map(|m| m.user.clone());
    finish(false, dir, record, started, &sigs, log, log_path, warnings)
}

/// The cache entry for these settings; `None` with `--no-cache` or when
/// there is no cache directory.
fn cache_entry(
    opts: &Options,
    backend: &str,
    arch: &str,
    components: &[String],
) -> Option<cache::Entry> {
    if opts.cache == cache::Mode::Off {
        return None;
    }
    let key = cache::Key::new(&[
        ("suite", opts.suite.clone()),
        ("variant", opts.variant.clone()),
        ("arch", arch.to_string()),
        ("include", cache::includes(&opts.include)),
        ("mirror", opts.mirror.clone()),
        ("components", components.join(",")),
        ("backend-args", opts.extra.join("\n")),
        ("backend", backend.to_string()),
    ]);
    Some(cache::Entry::new(&cache::base_dir()?, key))
}

/// The record of a create from these settings (`finish` completes it).
fn record_of(
    opts: &Options,
    arch: String,
    components: Vec<String>,
    mirror: String,
) -> CreateRecord {
    CreateRecord {
        suite: opts.suite.clone(),
        codename: None,
        mirror,
        variant: opts.variant.clone(),
        arch,
        components,
        include: opts.include.clone(),
        debootstrap_args: opts.extra.clone(),
        date: String::new(),
        seconds: None,
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        backend: "debootstrap".to_string(),
        debootstrap_version: None,
        mmdebstrap_version: None,
        user: None,
    }
}

/// The sandbox's own files in the rootfs at `dir` (tool.conf, hostname,
/// locale, time zone, the host's CA certificates and apt proxy; of a
/// `copy`, only its host name of those first four), then `create.toml`
/// from `record` (its codename, date and duration filled in) last.
#[allow(clippy::too_many_arguments)]
fn finish(
    copy: bool,
    dir: PathBuf,
    mut record: CreateRecord,
    started: Instant,
    sigs: &Signals,
    mut log: Log,
    log_path: PathBuf,
    warnings: Vec<String>,
) -> Result<Created, CreateError> {
    let root = Root::open(&dir)?;
    if !root.exists(Path::new("chroot.d/tool.conf")) {
        root.write_file(Path::new("chroot.d/tool.conf"), TOOL_CONF)?;
    }
    let done = if copy {
        setup::configure_copy(&root, &dir)?
    } else {
        setup::configure(&root, &dir)?
    };
    log.note(&if copy {
        format!(
            "hostname {}; the locale, the time zone and the rest of /etc/hosts kept",
            done.hostname
        )
    } else {
        format!(
            "hostname {}; LANG=C.UTF-8; time zone {}",
            done.hostname,
            done.timezone.as_deref().unwrap_or("unchanged")
        )
    });
    for n in &done.notes {
        log.note(n);
    }
    let carried = trust::carry(&root, Path::new(trust::HOST_CERTS), &trust::host_proxy())?;
    log.note(&carried.summary());
    for n in &carried.notes {
        log.note(n);
    }
    if sigs.pending().is_some() {
        log.note("interrupted before the end; create.toml not written");
        return Err(CreateError::Interrupted { dir, log: log_path });
    }
    if record.codename.is_none() {
        record.codename = ["etc/os-release", "usr/lib/os-release"]
            .iter()
            .find_map(|p| root.read_file(Path::new(p)))
            .and_then(|t| os_release_codename(&t));
    }
    record.date = record::rfc3339(SystemTime::now());
    record.seconds = Some(started.elapsed().as_secs());
    log.note(&format!("done in {} s", started.elapsed().as_secs()));
    root.write_file(&Path::new("chroot.d").join(record::FILE), &record.to_toml())?;
    Ok(Created {
        dir,
        record,
        log: log_path,
        warnings,
    })
}

/// A normal user's mapping for create: user namespaces allowed, the user
/// named, a subordinate range (dpkg gives files to other ids, such as
/// apt's `_apt`), newuidmap and newgidmap installed.
fn user_map() -> Result<crate::idmap::IdMap, CreateError> {
    crate::idmap::check_userns()?;
    let uid = nix::unistd::getuid();
    let gid = nix::unistd::getgid();
    let name = crate::sandbox::real_user()
        .map(|u| u.name.clone())
        .ok_or_else(|| {
            CreateError::WhoAmI(format!("uid {uid} has no entry in the password database"))
        })?;
    let map = crate::idmap::for_user(uid.as_raw(), gid.as_raw(), &name)
        .map_err(|e| CreateError::WhoAmI(e.to_string()))?;
    if !map.has_range() {
        return Err(CreateError::NoRange { user: name });
    }
    for helper in ["newuidmap", "newgidmap"] {
        if which::which(helper)
            .or_else(|_| which::which_in(helper, Some("/usr/bin:/bin"), "/"))
            .is_err()
        {
            return Err(CreateError::NoUidmap);
        }
    }
    Ok(map)
}

/// What create keeps from the backend's events: the phase it is in, its
/// last error (debootstrap's says what failed), its first error that is
/// not a wrap-up (mmdebstrap's) and the mirror it really used.
#[derive(Default)]
struct Seen {
    backend: Option<Backend>,
    phase: String,
    last_error: Option<(String, Vec<String>, String)>,
    cause: Option<(String, Vec<String>, String)>,
    mirror: Option<String>,
}

impl Seen {
    /// One event: to the log (fd 3's, formatted), to the screen, and kept.
    fn observe(&mut self, ev: &Event, stream: Stream, log: &mut Log, ui: &mut Ui) {
        if self.mirror.is_none() {
            self.mirror = mirror_used(ev).map(String::from);
        }
        if let Event::Message {
            level: Level::Error,
            name,
            args,
            text,
        } = ev
        {
            self.last_error = Some((name.clone(), args.clone(), text.clone()));
            if self.cause.is_none() && !mmprogress::is_wrap_up(text) {
                self.cause = self.last_error.clone();
            }
        }
        if self.backend == Some(Backend::Mmdebstrap) {
            // Its lines are its log already; every event is for the screen.
            ui.event(ev);
            return;
        }
        if stream == Stream::Output {
            // Raw lines are logged already; only early errors come structured here.
            return;
        }
        match ev {
            Event::Phase { name, text, .. } if *name != self.phase => {
                log.line(&format!("P: {text}"));
                self.phase = name.clone();
            }
            Event::Message { level, text, .. } => log.line(&format!("{}: {text}", level.tag())),
            Event::Text(t) => log.line(t),
            _ => {}
        }
        ui.event(ev);
    }
}

/// The mirror debootstrap really downloads from, when `ev` names it: its
/// `CHECKINGSIZES` message ("Checking component %s on %s...") gives the
/// mirror it took (the default when none was given, without a trailing `/`).
fn mirror_used(ev: &Event) -> Option<&str> {
    match ev {
        Event::Message {
            level: Level::Info,
            name,
            args,
            ..
        } if name == "CHECKINGSIZES" => args.get(1).map(String::as_str).filter(|m| !m.is_empty()),
        _ => None,
    }
}

/// The error for a failed debootstrap, from the last `E:` it wrote.
fn classify(
    last_error: Option<(String, Vec<String>, String)>,
    status: String,
    opts: &Options,
    dir: PathBuf,
    log: PathBuf,
) -> CreateError {
    let Some((name, args, text)) = last_error else {
        return CreateError::Failed {
            backend: "debootstrap",
            status,
            reason: "it gave no reason".into(),
            dir,
            log,
        };
    };
    match name.as_str() {
        "NOGETREL" | "NOGETRELSIG" => {
            let url = args.first().cloned().unwrap_or_default();
            // debootstrap does not say why; ask once more, with wget's exit
            // status: 8 is an error answer from the server (404: no such suite).
            let answered_no = Command::new("wget")
                .args(["-q", "--tries=1", "--timeout=15", "-O", "/dev/null", &url])
                .stdin(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.code() == Some(8));
            if answered_no {
                CreateError::UnknownSuite {
                    suite: opts.suite.clone(),
                    mirror: opts.mirror.clone(),
                    dir,
                    log,
                }
            } else {
                CreateError::Unreachable {
                    mirror: opts.mirror.clone(),
                    url,
                    dir,
                    log,
                }
            }
        }
        "NOSCRIPT" => CreateError::Failed {
            backend: "debootstrap",
            status,
            reason: format!("suite '{}' is unknown to debootstrap ({text})", opts.suite),
            dir,
            log,
        },
        _ => CreateError::Failed {
            backend: "debootstrap",
            status,
            reason: text,
            dir,
            log,
        },
    }
}

/// The error for a failed mmdebstrap, from its first error that says
/// what failed: apt's `Failed to fetch` (the mirror unreachable) or `does
/// not have a Release file` (no such suite there), else its text.
fn classify_mm(
    cause: Option<(String, Vec<String>, String)>,
    status: String,
    opts: &Options,
    dir: PathBuf,
    log: PathBuf,
) -> CreateError {
    let Some((name, args, text)) = cause else {
        return CreateError::Failed {
            backend: "mmdebstrap",
            status,
            reason: "it gave no reason".into(),
            dir,
            log,
        };
    };
    match name.as_str() {
        mmprogress::NORELEASE => CreateError::UnknownSuite {
            suite: opts.suite.clone(),
            mirror: opts.mirror.clone(),
            dir,
            log,
        },
        // An answer from the server (404) is about the file, not the network.
        mmprogress::FETCH if !args.get(1).is_some_and(|r| r.starts_with("404")) => {
            CreateError::Unreachable {
                mirror: opts.mirror.clone(),
                url: args.first().cloned().unwrap_or_default(),
                dir,
                log,
            }
        }
        _ => CreateError::Failed {
            backend: "mmdebstrap",
            status,
            reason: text,
            dir,
            log,
        },
    }
}

/// The directory `abs` (absolute) as root may fill it, made when missing:
/// its canonical path, and whether this made it. The part that exists is
/// resolved once (`check` is asked about the whole path then); nothing on
/// that path may be another user's to rename
/// ([`crate::sandbox::ancestry_refusal`]), or the tree written by DIR's
/// path would go where they lead it; the missing parts are made from a
/// descriptor of that resolved directory, never by the path again (a
/// symlink on it flipped meanwhile leads nowhere else), mode 0755 whatever
/// the umask. Refused before anything is made.
pub(crate) fn make_dir(
    abs: &Path,
    check: &dyn Fn(&Path) -> Result<(), CreateError>,
) -> Result<(PathBuf, bool), CreateError> {
    use nix::fcntl::{openat, OFlag};
    use nix::sys::stat::Mode;
    // Root resolves the path a name at a time: a symlink on it decides
    // where the create goes, and must be root's own, where no one else
    // may replace it (`resolve_trusted`).
    let (real, rest) = if crate::audit::invoked_as_root() {
        use crate::sandbox::Unresolved;
        crate::sandbox::resolve_trusted(abs, true).map_err(|e| match e {
            Unresolved::Refused(why) => CreateError::Ancestry(format!("{why}; nothing was made")),
            Unresolved::Missing(p) => io_err(&p)(io::Error::from(io::ErrorKind::NotFound)),
            Unresolved::Io(p, e) => io_err(&p)(e),
        })?
    } else {
        let mut existing = abs;
        while fs::symlink_metadata(existing).is_err() {
            existing = existing.parent().unwrap_or(Path::new("/"));
        }
        let real = crate::sys::canonicalize(existing).map_err(io_err(existing))?;
        let rest = abs.strip_prefix(existing).unwrap_or(Path::new(""));
        (real, rest.to_path_buf())
    };
    let rest = rest.as_path();
    let mut parts = vec![];
    for c in rest.components() {
        match c {
            std::path::Component::Normal(n) => parts.push(n),
            _ => {
                return Err(CreateError::Io {
                    path: abs.to_path_buf(),
                    source: io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "`..` in the part of DIR still to be made; give DIR without it",
                    ),
                })
            }
        }
    }
    let dir = real.join(rest);
    check(&dir)?;
    // An existing DIR is made root's before it is filled (`own_dir`);
    // what this create makes is root's.
    let why = if parts.is_empty() {
        crate::sandbox::ancestry_refusal(&real)
    } else {
        crate::sandbox::ancestry_refusal_of_new(&real)
    };
    if let Some(why) = why {
        return Err(CreateError::Ancestry(format!("{why}; nothing was made")));
    }
    if parts.is_empty() {
        return match fs::metadata(&real) {
            Ok(md) if md.is_dir() => Ok((real, false)),
            Ok(_) => Err(CreateError::NotADir(real)),
            Err(e) => Err(io_err(&real)(e)),
        };
    }
    let mut at = crate::sys::open_dir(&real).map_err(io_err(&real))?;
    let mut made = false;
    let mut here = real;
    for name in parts {
        here.push(name);
        made = match nix::sys::stat::mkdirat(&at, name, Mode::from_bits_truncate(0o755)) {
            Ok(()) => true,
            Err(nix::errno::Errno::EEXIST) => false,
            Err(e) => return Err(io_err(&here)(e.into())),
        };
        let next = openat(
            &at,
            name,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| match e {
            nix::errno::Errno::ENOTDIR | nix::errno::Errno::ELOOP => {
                CreateError::NotADir(here.clone())
            }
            e => io_err(&here)(e.into()),
        })?;
        if made {
            nix::sys::stat::fchmod(&next, Mode::from_bits_truncate(0o755))
                .map_err(|e| io_err(&here)(e.into()))?;
        }
        at = next;
    }
    // A part found there (`EEXIST`) may be one another user made after the
    // look above: the whole path is asked again now that it exists, and it
    // must still lead to the directory made or found from the descriptor.
    // From here on no one else may rename anything on it.
    if let Some(why) = crate::sandbox::ancestry_refusal(&dir) {
        return Err(CreateError::Ancestry(why));
    }
    let same = |a: &nix::sys::stat::FileStat, b: &nix::sys::stat::FileStat| {
        (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
    };
    match (nix::sys::stat::lstat(&dir), nix::sys::stat::fstat(&at)) {
        (Ok(a), Ok(b)) if same(&a, &b) => Ok((dir, made)),
        _ => Err(CreateError::Ancestry(format!(
            "{} no longer leads to the directory made (renamed meanwhile?)",
            show::path(&dir)
        ))),
    }
}

/// DIR as an absolute, existing, empty directory (made when missing),
/// locked: a create (or another command) in progress on it is refused, and
/// DIR's content is looked at only once the lock is held, so that another
/// create's tree in progress is never taken for a failed one.
fn prepare_dir(
    dir: &Path,
    ui: &Ui,
    map: Option<&crate::idmap::IdMap>,
    backend: bool,
) -> Result<(PathBuf, crate::lock::Lock), CreateError> {
    let abs = std::path::absolute(dir).map_err(io_err(dir))?;
    if abs.parent().is_none() {
        return Err(CreateError::RootDir);
    }
    // With a `backend` to run: the path debootstrap will get, checked
    // before anything is made, as given and with the symlinks of its
    // existing part resolved (a copy runs no backend).
    let safe_dir = |p: &Path| if backend { safe_dir(p) } else { Ok(()) };
    safe_dir(&abs)?;
    let (dir, _) = make_dir(&abs, &safe_dir)?;
    if dir.parent().is_none() {
        return Err(CreateError::RootDir);
    }
    safe_dir(&dir)?;
    let file = crate::lock::open(&dir).map_err(io_err(&dir))?;
    let lock = match crate::lock::try_exclusive(file) {
        Ok(l) => l,
        Err(crate::lock::Busy::Held(_)) => {
            return Err(CreateError::Busy(crate::lock::in_progress(&dir)))
        }
        Err(crate::lock::Busy::Error(e)) => return Err(io_err(&dir)(e)),
    };
    // A DIR that is refused is left as it was (never made root's).
    if fs::read_dir(&dir).map_err(io_err(&dir))?.next().is_some() && !is_failed_create(&dir) {
        return Err(CreateError::NotEmpty(dir));
    }
    // Root's before its content is looked at: nothing another user makes
    // in it afterwards, and nothing made before is missed.
    crate::archive::trust::own_dir(&dir).map_err(io_err(&dir))?;
    let empty = fs::read_dir(&dir).map_err(io_err(&dir))?.next().is_none();
    if !empty {
        if !is_failed_create(&dir) {
            return Err(CreateError::NotEmpty(dir));
        }
        ui.say(&format!(
            "create: cleaning up a previous failed create in {}",
            show::path(&dir)
        ));
        let left = crate::engine::unmount_below(&dir)
            .map_err(io_err(Path::new("/proc/self/mountinfo")))?;
        if !left.is_empty() {
            return Err(CreateError::StillMounted { dir, left });
        }
        // Looked at again on the descriptor emptied: never a directory
        // swapped in since (a finished sandbox) by whoever may rename
        // DIR's name.
        let emptied = match map {
            None => crate::remove::empty_tree_if(&dir, is_failed_create_at)?.is_some(),
            // A user's failed create holds files of the subordinate ids:
            // removed as root of a user namespace with the same mapping.
            Some(m) => m
                .run_as_root(|| {
                    crate::remove::empty_tree_if(&dir, is_failed_create_at)
                        .map_err(|e| e.to_string())?
                        .map(|_| ())
                        .ok_or_else(|| "not a create that did not finish".to_string())
                })
                .map(|()| true)
                .map_err(|e| CreateError::Cleanup(e.to_string()))?,
        };
        if !emptied {
            return Err(CreateError::NotEmpty(dir));
        }
    }
    Ok((dir, lock))
}

/// Makes DIR's `chroot.d`, where the log of a create in progress marks it:
/// mode 0755 whatever the umask ([`is_failed_create`] knows no other).
fn make_chroot_d(dir: &Path) -> Result<PathBuf, CreateError> {
    use std::os::unix::fs::PermissionsExt;
    let chroot_d = dir.join("chroot.d");
    fs::create_dir(&chroot_d)
        .and_then(|()| fs::set_permissions(&chroot_d, fs::Permissions::from_mode(0o755)))
        .map_err(io_err(&chroot_d))?;
    Ok(chroot_d)
}

/// A directory left by a create of ours that did not finish: its log is
/// there, its record is not (`create --overlay` copies BASE's record
/// last, after its own), in a `chroot.d` such as create makes: a directory
/// (never a symlink followed to where anyone may write), this user's or
/// root's and writable by no one else. What such a DIR holds is emptied by
/// the next create, so no one else may make one look failed.
pub fn is_failed_create(dir: &Path) -> bool {
    crate::sys::open_path(dir).is_ok_and(|d| is_failed_create_at(d.as_fd()))
}

/// [`is_failed_create`] of the directory open as `dir`.
pub fn is_failed_create_at(dir: std::os::fd::BorrowedFd) -> bool {
    use nix::fcntl::AtFlags;
    use nix::sys::stat::fstatat;
    let (me, my_group) = (
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
    );
    let kind = |m: &nix::sys::stat::FileStat| m.st_mode & libc::S_IFMT;
    // An earlier version made it under the umask: writable by its group
    // only when that group is root's or the user's own.
    let shut = |m: &nix::sys::stat::FileStat| {
        m.st_mode & 0o002 == 0 && (m.st_mode & 0o020 == 0 || m.st_gid == 0 || m.st_gid == my_group)
    };
    let at =
        |d: std::os::fd::BorrowedFd, name: &str| fstatat(d, name, AtFlags::AT_SYMLINK_NOFOLLOW);
    let cd_ok = at(dir, "chroot.d")
        .is_ok_and(|m| kind(&m) == libc::S_IFDIR && (m.st_uid == 0 || m.st_uid == me) && shut(&m));
    if !cd_ok {
        return false;
    }
    let Ok(cd) = crate::sys::resolve_beneath(dir, Path::new("chroot.d")) else {
        return false;
    };
    at(cd.as_fd(), LOG).is_ok_and(|m| kind(&m) == libc::S_IFREG)
        && at(cd.as_fd(), record::FILE) == Err(nix::errno::Errno::ENOENT)
}

/// What `on` and `run` say of a DIR whose create did not finish.
pub fn unfinished(dir: &Path) -> String {
    format!(
        "{}: its create did not finish (chroot.d/create.log is there, its record is not); run create again, or destroy it",
        show::path(dir)
    )
}

fn safe_dir(path: &Path) -> Result<(), CreateError> {
    use std::os::unix::ffi::OsStrExt;
    match unsafe_for_debootstrap(path.as_os_str().as_bytes()) {
        Some(what) => Err(CreateError::UnsafeDir {
            path: path.to_path_buf(),
            what,
        }),
        None => Ok(()),
    }
}

/// What in a path or URL debootstrap cannot take safely, if anything.
/// debootstrap (1.0.x, a shell script) passes the target's download paths
/// to `wget $@` unquoted when it reports progress (`--debian-installer`),
/// so a space, tab or newline splits the path and wget writes the Release
/// file to the part before it, a host path (`/srv/a b` writes `/srv/a`),
/// and `*`, `?` or `[` glob there; it runs `eval "chroot \"$TARGET\" ..."`,
/// so `"`, `$`, `` ` `` and `\` reach the shell. A control character
/// (and any escape sequence) is refused as well. Bytes that are not UTF-8
/// are kept: debootstrap passes them on as they are.
fn unsafe_for_debootstrap(b: &[u8]) -> Option<String> {
    for chunk in b.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() {
                return Some(format!(
                    "a control character ({})",
                    show::escape(c.to_string().as_bytes())
                ));
            }
            if c == ' ' {
                return Some("a space".to_string());
            }
            if "\"$`\\*?[".contains(c) {
                return Some(format!("the character {c}"));
            }
        }
    }
    None
}

/// Longest suite name taken (Debian's are short: `bookworm-backports`).
const SUITE_MAX: usize = 64;

/// A suite name debootstrap can take: a codename or an alias, nothing path-like.
fn valid_suite(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= SUITE_MAX
        && !s.starts_with(['-', '.'])
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// debootstrap's script for the suite when it has one; else its `sid`
/// script (every Debian suite since buster bootstraps the same way), so
/// that a suite newer than the installed debootstrap still works and an
/// unknown one is judged by the mirror.
fn fallback_script(debootstrap: &Path, suite: &str) -> Option<PathBuf> {
    let mut dirs = vec![];
    if let Some(prefix) = debootstrap.parent().and_then(Path::parent) {
        dirs.push(prefix.join("share/debootstrap/scripts"));
    }
    dirs.push(PathBuf::from("/usr/share/debootstrap/scripts"));
    let dir = dirs.into_iter().find(|d| d.is_dir())?;
    if dir.join(suite).exists() {
        return None;
    }
    let sid = dir.join("sid");
    sid.exists().then_some(sid)
}

fn debootstrap_version(debootstrap: &Path) -> Option<String> {
    let out = Command::new(debootstrap).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let v = text.trim().trim_start_matches("debootstrap").trim();
    (!v.is_empty()).then(|| v.to_string())
}

/// The host's Debian architecture name.
fn host_arch() -> String {
    if let Ok(out) = Command::new("dpkg").arg("--print-architecture").output() {
        let a = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.status.success() && !a.is_empty() {
            return a;
        }
    }
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "i386",
        "aarch64" => "arm64",
        "arm" => "armhf",
        "powerpc64" => "ppc64el",
        "riscv64" => "riscv64",
        "s390x" => "s390x",
        other => other,
    }
    .to_string()
}

/// PATH with the sbin directories debootstrap needs (it runs chroot, ldconfig…).
fn sbin_path() -> String {
    let path = std::env::var("PATH").unwrap_or_default();
    let mut parts: Vec<&str> = path.split(':').filter(|p| !p.is_empty()).collect();
    for d in [
        "/usr/local/sbin",
        "/usr/local/bin",
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
    ] {
        if !parts.contains(&d) {
            parts.push(d);
        }
    }
    parts.join(":")
}

fn os_release_codename(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
        .map(|v| v.trim().trim_matches('"').to_string())
        .filter(|v| !v.is_empty())
}

/// `chroot.d/create.log`, and its last lines for the failure message.
struct Log {
    file: File,
    tail: VecDeque<String>,
}

impl Log {
    fn create(path: &Path) -> Result<Log, CreateError> {
        let file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
            .map_err(io_err(path))?;
        // 0644 whatever the umask: `on` refuses a chroot.d others may write.
        file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .map_err(io_err(path))?;
        Ok(Log {
            file,
            tail: VecDeque::with_capacity(TAIL + 1),
        })
    }

    /// A line of debootstrap's.
    fn line(&mut self, line: &str) {
        let _ = writeln!(self.file, "{line}");
        if self.tail.len() == TAIL {
            self.tail.pop_front();
        }
        self.tail.push_back(line.to_string());
    }

    /// A line of ours.
    fn note(&mut self, line: &str) {
        let _ = writeln!(self.file, "chroot-tool: {line}");
    }

    fn show_tail(&self, path: &Path) {
        let mut err = io::stderr().lock();
        let _ = writeln!(err, "--- last lines of {} ---", show::path(path));
        // debootstrap's lines are data: escaped and bounded.
        for l in &self.tail {
            let _ = writeln!(err, "  {}", show::bytes(l.as_bytes()));
        }
        let _ = writeln!(err, "---");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suites() {
        assert!(valid_suite("bookworm"));
        assert!(valid_suite("stable"));
        assert!(valid_suite("bookworm-backports"));
        assert!(!valid_suite("../etc"));
        assert!(!valid_suite("a/b"));
        assert!(!valid_suite("--help"));
        assert!(!valid_suite(""));
        assert!(valid_suite(&"a".repeat(SUITE_MAX)));
        assert!(!valid_suite(&"a".repeat(SUITE_MAX + 1)));
    }

    #[test]
    fn paths_debootstrap_cannot_take() {
        let bad = |s: &[u8]| unsafe_for_debootstrap(s);
        for ok in [
            &b"/srv/sb"[..],
            b"/srv/caf\xc3\xa9",
            b"/srv/\xff",
            b"/srv/a-b_c.d,e+f@g:h=i~j%k",
        ] {
            assert_eq!(bad(ok), None, "{ok:?}");
        }
        for no in [
            &b"/srv/a\nb"[..],
            b"/srv/a\tb",
            b"/srv/a\rb",
            b"/srv/\x1b[2J",
            b"/srv/a\x7f",
            b"/srv/\xc2\x9b1m",
            b"/srv/a b",
            b"/srv/$(id)",
            b"/srv/`id`",
            b"/srv/a\"b",
            b"/srv/a\\b",
            b"/srv/a*",
            b"/srv/a?",
            b"/srv/[a]",
        ] {
            assert!(bad(no).is_some(), "{no:?}");
        }
    }

    #[test]
    fn mirror_is_the_one_debootstrap_used() {
        let fd3 = include_str!("../tests/fixtures/debootstrap/trixie-minbase.fd3");
        let used: Vec<String> = progress::parse(fd3)
            .iter()
            .filter_map(mirror_used)
            .map(String::from)
            .collect();
        assert!(!used.is_empty());
        assert!(
            used.iter().all(|m| m == "http://deb.debian.org/debian"),
            "{used:?}"
        );
        // A mirror given with a trailing slash (or none given: debootstrap's
        // default) is recorded as debootstrap wrote it.
        let other = "P: 78 78 SIZEDEBS\nPF: Finding package sizes\nI: CHECKINGSIZES\nIA: main\nIA: http://ftp.example.org/debian\nIF: Checking component %s on %s...\n";
        let used: Vec<String> = progress::parse(other)
            .iter()
            .filter_map(mirror_used)
            .map(String::from)
            .collect();
        assert_eq!(used, vec!["http://ftp.example.org/debian".to_string()]);
        assert!(
            progress::parse("I: CHECKINGSIZES\nIA: main\nIF: Checking component %s...\n")
                .iter()
                .all(|e| mirror_used(e).is_none())
        );
    }

    #[test]
    fn codename() {
        let t = "PRETTY_NAME=\"Debian GNU/Linux 13 (trixie)\"\nVERSION_CODENAME=trixie\n";
        assert_eq!(os_release_codename(t).as_deref(), Some("trixie"));
        assert_eq!(os_release_codename("ID=debian\n"), None);
    }

    #[test]
    fn template_explains_every_section() {
        for s in [
            "[bind]",
            "[exclude]",
            "[limits]",
            "[run]",
            "bind-ro",
            "tmpfs",
            "ignore:yes",
        ] {
            assert!(TOOL_CONF.contains(s), "tool.conf template lacks {s}");
        }
        // Every line in a section is a comment or a section header: nothing is mounted by default.
        for l in TOOL_CONF.lines() {
            assert!(
                l.is_empty() || l.starts_with('#') || l.starts_with('['),
                "{l}"
            );
        }
    }
}
