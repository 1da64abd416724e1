//! `create --from DIR|FILE`: a new sandbox as a copy of another one (on or
//! off: the copy is made from what lies on its own filesystem, never from
//! what is mounted in it) or of an archive. The copy keeps the source's
//! `chroot.d/` (its `create.toml` updated); the host name and the rest of
//! the sandbox's own files are made for the new DIR as by any create. An
//! archive is someone else's data: its host binds and host-cmd are set
//! aside unless `trust` (as `unpack` does).
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Instant;

use super::{
    finish, host_arch, io_err, make_chroot_d, prepare_dir, record, CreateError, Created, Log,
    Options,
};
use crate::archive::{self, trust, PackOptions, Quiet, UnpackOptions};
use crate::create::run::Signals;
use crate::create::ui::Ui;
use crate::show;

pub(super) fn create_from(dir: &Path, src: &Path, opts: &Options) -> Result<Created, CreateError> {
    let started = Instant::now();
    if !nix::unistd::geteuid().is_root() {
        return Err(CreateError::FromNeedsRoot);
    }
    // Absolute before DIR is prepared: cleaning a failed create may unmount
    // below DIR, which changes this process's working directory.
    let src = &std::path::absolute(src).map_err(io_err(src))?;
    let md = match fs::metadata(src) {
        Ok(md) => md,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(CreateError::FromRefused {
                from: src.to_path_buf(),
                why: "no such file or directory; --from takes a sandbox's directory or an \
                      archive (`pack`'s, or a tar of a root filesystem)"
                    .into(),
            })
        }
        Err(e) => return Err(io_err(src)(e)),
    };
    if md.is_dir() {
        // A tree that is no sandbox is never copied into one: the host's
        // `/`, `/dev`, `/proc`, a home, any directory that is not a root
        // filesystem.
        if let Some(why) = crate::sandbox::refusal(src) {
            return Err(CreateError::FromRefused {
                from: src.to_path_buf(),
                why,
            });
        }
        // Copied, it would lead where the copy's record and log are
        // written and where anyone may write (see `extract`'s `keep_dir`,
        // which refuses one in an archive).
        if fs::symlink_metadata(src.join("chroot.d")).is_ok_and(|m| m.is_symlink()) {
            return Err(CreateError::FromRefused {
                from: src.to_path_buf(),
                why: "its chroot.d is a symlink; chroot-tool copies only a chroot.d that is a directory (replace the symlink by the directory it leads to)".into(),
            });
        }
    } else if !md.is_file() {
        return Err(CreateError::FromRefused {
            from: src.to_path_buf(),
            why: "neither a directory nor a regular file (an archive)".into(),
        });
    }
    let sigs = Signals::block().map_err(io_err(Path::new("signalfd")))?;
    let ui = Ui::new(opts.quiet);
    let (dir, _lock) = prepare_dir(dir, &ui, None, false)?;
    let dmd = fs::metadata(&dir).map_err(io_err(&dir))?;
    if (md.dev(), md.ino()) == (dmd.dev(), dmd.ino()) {
        return Err(CreateError::NotEmpty(dir));
    }
    let chroot_d = make_chroot_d(&dir)?;
    let keep_dir = fs::symlink_metadata(&chroot_d)
        .map(|m| (m.dev(), m.ino()))
        .map_err(io_err(&chroot_d))?;
    let log_path = chroot_d.join(super::LOG);
    // There from the start, so an interrupted clone is known as a failed
    // create (and cleaned by the next one).
    let mut first_log = Log::create(&log_path)?;
    // A failure from here on is said in the log too, which DIR keeps.
    let mut clone = |why: String| {
        first_log.note(&format!("create --from {} failed: {why}", show::path(src)));
        CreateError::Clone {
            from: src.to_path_buf(),
            why,
            dir: dir.clone(),
            log: log_path.clone(),
        }
    };
    // DIR stays 0700 until the end (`trust::settle_root`): no other user
    // reaches a set-id file of the source meanwhile.
    let unpack = UnpackOptions {
        require_empty: false,
        private_root: true,
        // Ours stays (the mark of a create in progress): a source whose
        // `chroot.d` is a symlink is refused, never written through.
        keep_dir: Some(keep_dir),
        ..UnpackOptions::default()
    };
    ui.say(&format!("create: copying {}", show::path(src)));
    let mut warnings = vec![];
    let copied = if md.is_dir() {
        PackOptions::for_sandbox(src).and_then(|mut pack| {
            // DIR is never packed into itself, wherever it lies.
            pack.skip_inode = Some((dmd.dev(), dmd.ino()));
            // The source's log of how it was made is not the copy's.
            pack.excludes.push(format!("/chroot.d/{}", super::LOG));
            archive::copy_tree(src, &dir, &pack, &unpack, &mut Quiet).map(|(_, done)| done)
        })
    } else {
        archive::unpack_file(src, &dir, &unpack, &mut Quiet)
    };
    let done = copied.map_err(|e| clone(e.to_string()))?;
    // What holds no root filesystem is never a sandbox (an archive of
    // something else, or of nothing).
    if !crate::sandbox::holds_a_shell(&dir) {
        return Err(clone(
            "it holds no root filesystem (no /bin/sh inside)".to_string(),
        ));
    }
    // What another user could have written acts on the host only once
    // accepted: an archive, or a tree whose root or chroot.d was not
    // root's alone. Judged on the copy as it came (owners and modes kept,
    // DIR held private meanwhile), so that a source swapped after a look
    // at it is judged as what was copied.
    let trusted = opts.trust || (md.is_dir() && root_alone(&dir, done.root_mode));
    trust::own_chroot_d(&dir).map_err(io_err(&chroot_d))?;
    let held =
        trust::settle_root(&dir, done.privileged, done.root_mode, trusted).map_err(io_err(&dir))?;
    if held {
        warnings.push(format!(
            "{} holds {} set-id file(s), file(s) with capabilities or device node(s) outside /dev: {} stays mode 0700 (only root reaches inside from the host) until accepted: chroot-tool unpack --accept -d {}",
            show::path(src),
            done.privileged,
            show::path(&dir),
            show::path(&dir)
        ));
    }
    ui.finish();
    // An archive's own create.log (if any) replaced ours: start it again.
    drop(first_log);
    match fs::remove_file(&log_path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(&log_path)(e)),
    }
    let mut log = Log::create(&log_path)?;
    log.note(&format!(
        "create (chroot-tool {}): a copy of {}",
        env!("CARGO_PKG_VERSION"),
        show::path(src)
    ));
    if !trusted {
        let what = if md.is_dir() {
            "the copy"
        } else {
            "the archive"
        };
        warnings.extend(set_aside_host_acting(&dir, what)?);
    }
    let record = match record::load(&dir) {
        Some(r) => r,
        None => record::CreateRecord {
            suite: "unknown".into(),
            codename: None,
            mirror: String::new(),
            variant: String::new(),
            arch: host_arch(),
            components: vec![],
            include: vec![],
            debootstrap_args: vec![],
            date: String::new(),
            seconds: None,
            tool_version: String::new(),
            backend: "unknown".into(),
            debootstrap_version: None,
            mmdebstrap_version: None,
            user: None,
        },
    };
    let record = record::CreateRecord {
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        ..record
    };
    finish(true, dir, record, started, &sigs, log, log_path, warnings)
}

/// Sets aside what in the unpacked `dir`'s `chroot.d` would act on the
/// host ([`trust::review`], [`trust::set_aside`]); the warning to give,
/// naming it `what` ("the archive"), when there was any.
pub(super) fn set_aside_host_acting(dir: &Path, what: &str) -> Result<Option<String>, CreateError> {
    let chroot_d = dir.join("chroot.d");
    let review = trust::review(dir).map_err(io_err(&chroot_d))?;
    if review.is_clean() {
        return Ok(None);
    }
    let set = trust::set_aside(dir, &review).map_err(io_err(&chroot_d))?;
    let mut lines: Vec<String> = review
        .binds
        .iter()
        .map(|b| format!("bind of a host path: {b}"))
        .collect();
    if let Some(e) = &review.conf_error {
        lines.push(format!("tool.conf does not parse: {e}"));
    }
    if review.host_cmd {
        lines.push("host-cmd: a program run on the host before each command".into());
    }
    if review.overlay {
        lines.push("overlay.toml: a host directory mounted as the sandbox's lower layer".into());
    }
    Ok(Some(format!(
        "{what}'s chroot.d would act on the host; set aside as {} ({}); to accept: chroot-tool unpack --accept -d {}",
        set.iter().map(show::path).collect::<Vec<_>>().join(", "),
        lines.join("; "),
        show::path(dir)
    )))
}

/// Whether only root can have written what of the copy at `dir` acts on
/// the host: the source's root directory (its `root_mode`) writable by no
/// one else, and the copy's own `chroot.d` and what it holds owned by root
/// and writable by no one else, as the source had them.
fn root_alone(dir: &Path, root_mode: Option<u32>) -> bool {
    use std::os::unix::fs::MetadataExt;
    let alone = |m: &fs::Metadata| m.uid() == 0 && (m.is_symlink() || m.mode() & 0o022 == 0);
    if root_mode.is_some_and(|m| m & 0o022 != 0) {
        return false;
    }
    let cd = dir.join("chroot.d");
    match fs::symlink_metadata(&cd) {
        Err(e) => e.kind() == io::ErrorKind::NotFound,
        Ok(m) if !m.is_dir() => false,
        Ok(m) => {
            alone(&m)
                && fs::read_dir(&cd)
                    .is_ok_and(|rd| rd.flatten().all(|e| e.metadata().is_ok_and(|m| alone(&m))))
        }
    }
}
