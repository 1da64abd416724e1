//! A sandbox as one tar archive, and back (mechanism for `pack`, `unpack`,
//! `create`'s cache and `--from`, and the OCI layers of `export`/`import`).
//!
//! - [`write_tar`] walks a sandbox's tree by descriptors and writes a tar
//!   stream to any writer: ownership, permissions, extended attributes (file
//!   capabilities) as PAX `SCHILY.xattr.*` records, hard links, symlinks,
//!   device nodes and FIFOs. It never packs what is mounted: as root it walks
//!   a non-recursive clone of DIR's own mount (what is on disk, as if the
//!   sandbox were off), otherwise it stops at every mount point. `[exclude]`
//!   paths are left out ([`PackOptions::for_sandbox`]). With
//!   [`PackOptions::mtime`] the output is reproducible (entries sorted by
//!   name, which they always are, and one fixed mtime).
//! - [`unpack_tar`] extracts a tar stream into a directory by descriptors
//!   only (`openat` relative to DIR, `O_NOFOLLOW`, one component at a time):
//!   a member that would land outside DIR (an absolute name, `..`, a path
//!   through a symlink the archive planted, a hard link to such a place) is
//!   refused with an error naming it. OCI whiteouts are applied on request.
//! - [`pack_file`] and [`unpack_file`] add compression: chosen by the file
//!   name when writing ([`Compression::for_name`]), found by magic bytes
//!   when reading.
//!
//! Library code: progress goes to a [`Progress`] the caller gives; nothing
//! here prints.
mod compress;
mod extract;
pub mod oci;
pub mod trust;
mod walk;

use std::io;
use std::path::{Path, PathBuf};

use crate::show;

pub use compress::{decoder, Compression, Encoder};
pub use extract::{unpack_tar, UnpackOptions, Unpacked};
pub use walk::{write_tar, PackOptions, Packed};

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// A file or directory on the host side (DIR, the archive file).
    #[error("{}: {source}", show::path(path))]
    Io { path: PathBuf, source: io::Error },
    /// A member of the archive that would land outside DIR, or that is
    /// otherwise unsafe to create; nothing of it was written.
    #[error("archive member {}: {why}; refusing to unpack it", show::bytes(member))]
    Refused { member: Vec<u8>, why: String },
    /// A member that could not be created.
    #[error("archive member {}: {source}", show::bytes(member))]
    Member { member: Vec<u8>, source: io::Error },
    /// Reading the archive itself failed (corrupt, truncated, not a tar).
    #[error("{}: not a readable tar archive: {source}", show::path(path))]
    Format { path: PathBuf, source: io::Error },
    #[error("{} is not empty: unpack into a new or empty directory", show::path(.0))]
    NotEmpty(PathBuf),
    #[error(transparent)]
    Conf(#[from] crate::conf::ConfError),
}

pub(crate) fn io_at(path: &Path) -> impl FnOnce(io::Error) -> ArchiveError + '_ {
    move |source| ArchiveError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Where packing or unpacking is; the caller draws it (a bar, a log line).
/// Every method has a default that does nothing.
pub trait Progress {
    /// The amount of work, in bytes, when it is known in advance.
    fn total(&mut self, _bytes: u64) {}
    /// `bytes` more were done (file data packed; archive bytes read).
    fn advance(&mut self, _bytes: u64) {}
}

/// A [`Progress`] that shows nothing.
pub struct Quiet;
impl Progress for Quiet {}

/// Packs the sandbox `dir` into `file`, compressed as its name says
/// ([`Compression::for_name`]). The archive is written to a temporary file
/// beside `file` and renamed into place when complete, so `file` is never
/// left half-written; the temporary file is never packed into itself.
pub fn pack_file(
    dir: &Path,
    file: &Path,
    opts: &PackOptions,
    progress: &mut dyn Progress,
) -> Result<Packed, ArchiveError> {
    pack_file_as(dir, file, Compression::for_name(file), opts, progress)
}

/// As [`pack_file`], with the compression given.
pub fn pack_file_as(
    dir: &Path,
    file: &Path,
    compression: Compression,
    opts: &PackOptions,
    progress: &mut dyn Progress,
) -> Result<Packed, ArchiveError> {
    // What an earlier pack to the same file left when it was killed.
    if let Some(parent) = file.parent() {
        let parent = if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        };
        remove_stale(parent, file.file_name(), false);
    }
    // Named as the user wrote it: the temporary name means nothing to them.
    let (out, tmp) = create_temp_beside(file, 0o666).map_err(io_at(file))?;
    let remove_tmp = scopeguard(&tmp);
    let mut opts = opts.clone();
    {
        use std::os::unix::fs::MetadataExt;
        let st = out.metadata().map_err(io_at(&tmp))?;
        opts.skip_inode = Some((st.dev(), st.ino()));
    }
    let enc = Encoder::new(io::BufWriter::with_capacity(1 << 20, out), compression)
        .map_err(io_at(&tmp))?;
    let (enc, packed) = write_tar(dir, enc, &opts, progress)?;
    let buf = enc.finish().map_err(io_at(&tmp))?;
    let out = buf.into_inner().map_err(|e| io_at(&tmp)(e.into_error()))?;
    out.sync_all().map_err(io_at(&tmp))?;
    std::fs::rename(&tmp, file).map_err(io_at(file))?;
    remove_tmp.disarm();
    Ok(packed)
}

/// Unpacks the archive `file` (zstd, xz, gzip or plain tar, found by its
/// first bytes) into `dir`, which is created when missing.
pub fn unpack_file(
    file: &Path,
    dir: &Path,
    opts: &UnpackOptions,
    progress: &mut dyn Progress,
) -> Result<Unpacked, ArchiveError> {
    let f = std::fs::File::open(file).map_err(io_at(file))?;
    unpack_open(f, file, dir, opts, progress)
}

/// As [`unpack_file`], from the archive already open as `f` (`file` names
/// it in messages).
pub fn unpack_open(
    f: std::fs::File,
    file: &Path,
    dir: &Path,
    opts: &UnpackOptions,
    progress: &mut dyn Progress,
) -> Result<Unpacked, ArchiveError> {
    let len = f.metadata().map_err(io_at(file))?.len();
    progress.total(len);
    let counted = Counted {
        inner: f,
        progress: &mut *progress,
    };
    let input = decoder(io::BufReader::with_capacity(1 << 20, counted)).map_err(io_at(file))?;
    unpack_tar(input, dir, opts, &mut Quiet).map_err(|e| match e {
        ArchiveError::Format { source, .. } => ArchiveError::Format {
            path: file.to_path_buf(),
            source,
        },
        e => e,
    })
}

/// Copies the tree `src` into `dir` as a tar stream through a pipe: packed
/// by a thread of its own, unpacked by the caller's, so the copy has
/// exactly what an archive would (owners, modes, extended attributes, hard
/// links, devices) and nothing mounted, and no copy of the tree is held on
/// disk or in memory. `progress` follows the unpacking.
pub fn copy_tree(
    src: &Path,
    dir: &Path,
    pack: &PackOptions,
    unpack: &UnpackOptions,
    progress: &mut dyn Progress,
) -> Result<(Packed, Unpacked), ArchiveError> {
    let (r, w) = nix::unistd::pipe().map_err(|e| io_at(src)(e.into()))?;
    let (reader, writer) = (std::fs::File::from(r), std::fs::File::from(w));
    std::thread::scope(|s| {
        let packer = s.spawn(move || {
            let out = io::BufWriter::with_capacity(1 << 20, writer);
            let (out, packed) = write_tar(src, out, pack, &mut Quiet)?;
            // Flushed and closed here: the unpacker sees the end.
            out.into_inner().map_err(|e| io_at(src)(e.into_error()))?;
            Ok::<_, ArchiveError>(packed)
        });
        let mut input = io::BufReader::with_capacity(1 << 20, reader);
        let unpacked = unpack_tar(&mut input, dir, unpack, progress);
        if unpacked.is_ok() {
            // The end-of-archive padding, so the packer never writes into
            // a closed pipe; after a failure the closed pipe stops it.
            let _ = io::copy(&mut input, &mut io::sink());
        }
        drop(input);
        let packed = packer.join().expect("the packing thread does not panic");
        // The packer's error is the cause when both failed, unless it only
        // stopped because the unpacker did (a closed pipe).
        match (packed, unpacked) {
            (Ok(p), Ok(u)) => Ok((p, u)),
            (Err(e), _) if !is_broken_pipe(&e) => Err(e),
            (_, Err(e)) | (Err(e), Ok(_)) => Err(e),
        }
    })
}

/// Whether an error is a write into a pipe whose reader went away.
fn is_broken_pipe(e: &ArchiveError) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cur {
        if c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
        {
            return true;
        }
        cur = c.source();
    }
    false
}

/// A reader that reports how much of it was read.
pub(crate) struct Counted<'a, R> {
    inner: R,
    progress: &'a mut dyn Progress,
}

impl<R: io::Read> io::Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advance(n as u64);
        Ok(n)
    }
}

/// A reader of an entry's data that reports how much was read.
pub(crate) fn counted<'a, R: io::Read>(inner: R, progress: &'a mut dyn Progress) -> Counted<'a, R> {
    Counted { inner, progress }
}

/// Creates `.NAME.partial-PID-RANDOM` in the directory of `file` (new,
/// `O_NOFOLLOW`, mode `mode` less the umask): the random part means a
/// leftover of a killed process with the same pid (pid namespaces reuse
/// them) is never in the way. Returns the file and its path.
pub(crate) fn create_temp_beside(file: &Path, mode: u32) -> io::Result<(std::fs::File, PathBuf)> {
    use std::os::unix::fs::OpenOptionsExt;
    let name = file.file_name().unwrap_or_default().to_string_lossy();
    let mut tries = 0;
    loop {
        let tmp = file.with_file_name(format!(
            ".{name}{PARTIAL}{}-{:016x}",
            std::process::id(),
            crate::sys::random_u64()?
        ));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)
        {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && tries < 8 => tries += 1,
            r => return r.map(|f| (f, tmp)),
        }
    }
}

/// What the name of a temporary file of [`create_temp_beside`] holds.
pub(crate) const PARTIAL: &str = ".partial-";

/// How long a temporary file or staging directory is left alone: a
/// writer still at work changes it far more often.
pub(crate) const STALE: std::time::Duration = std::time::Duration::from_secs(6 * 3600);

/// Removes what killed writers left in `dir`: temporary files of
/// [`create_temp_beside`]'s naming ([`is_partial`]), only those for the
/// output `name` when given, and with `staging` the directories of
/// [`oci::layout::Staging`] too; only this user's, not changed for
/// [`STALE`]. Best effort: what cannot be removed stays.
pub(crate) fn remove_stale(dir: &Path, name: Option<&std::ffi::OsStr>, staging: bool) {
    use nix::fcntl::AtFlags;
    use std::os::unix::ffi::OsStrExt;
    let Ok(fd) = crate::sys::open_dir(dir) else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(crate::sys::fd_path(std::os::fd::AsFd::as_fd(&fd))) else {
        return;
    };
    let mine = name.map(|n| [b".", n.as_bytes(), PARTIAL.as_bytes()].concat());
    let me = nix::unistd::geteuid().as_raw();
    let now = std::time::SystemTime::now();
    for e in entries.flatten() {
        let entry = e.file_name();
        let b = entry.as_bytes();
        if !is_partial(b) || mine.as_ref().is_some_and(|m| !b.starts_with(m)) {
            continue;
        }
        let Ok(st) = nix::sys::stat::fstatat(&fd, entry.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW)
        else {
            continue;
        };
        let changed =
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(st.st_mtime.max(0) as u64);
        if st.st_uid != me || now.duration_since(changed).map_or(true, |a| a <= STALE) {
            continue;
        }
        match st.st_mode & libc::S_IFMT {
            libc::S_IFREG => {
                let _ = nix::unistd::unlinkat(
                    &fd,
                    entry.as_os_str(),
                    nix::unistd::UnlinkatFlags::NoRemoveDir,
                );
            }
            libc::S_IFDIR if staging => {
                let _ = crate::remove::remove_tree(&dir.join(&entry));
            }
            _ => {}
        }
    }
}

/// Whether `name` is one of [`create_temp_beside`]'s temporary files
/// (or an older version's `.NAME.partial-PID`).
pub(crate) fn is_partial(name: &[u8]) -> bool {
    name.first() == Some(&b'.') && name.windows(PARTIAL.len()).any(|w| w == PARTIAL.as_bytes())
}

/// Removes a temporary file when dropped, unless disarmed.
pub(crate) struct TempFile<'a>(Option<&'a Path>);

pub(crate) fn scopeguard(p: &Path) -> TempFile<'_> {
    TempFile(Some(p))
}

impl TempFile<'_> {
    pub(crate) fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for TempFile<'_> {
    fn drop(&mut self) {
        if let Some(p) = self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}
