//! The cache of finished root filesystems: a `create` whose settings
//! (suite, variant, arch, includes, mirror, components, backend arguments,
//! backend) match a cached one unpacks that archive instead of running the
//! backend again.
//!
//! Where: `$CHROOT_TOOL_CACHE_DIR`, else `/var/cache/chroot-tool` for root
//! and `$XDG_CACHE_HOME/chroot-tool` (`~/.cache/chroot-tool`) for a user;
//! entries in its `rootfs/` as `NAME.tar.zst` with `NAME.key` beside it
//! (the settings in full: a hit needs them equal, not only their hash).
//! An entry older than [`MAX_AGE`] is made again (security updates).
//! The directories are made `0700`: a rootfs holds files only its root
//! may read. The cache is used only when its directory, `rootfs/`, and
//! the entry's key and archive are owned by the user (root for root) and
//! writable by no group or other user, checked on the descriptors that
//! are then read; otherwise `create` goes without it (as `--no-cache`)
//! and says why. What a killed store left (`.NAME.partial-*`) is removed
//! when the cache is next written, once some hours old.
//!
//! Parallel creates never corrupt it: an entry is written to a temporary
//! file and renamed into place (a reader has either the old file or the
//! new one, whole), under an exclusive lock of `NAME.lock` so two writers
//! take turns; a reader takes no lock.
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag, AT_FDCWD};
use nix::sys::stat::{fstat, fstatat, Mode as Perm};

use crate::archive::{self, ArchiveError, PackOptions, Progress, UnpackOptions, Unpacked};

/// Overrides where the cache is (tests, or a disk of its own).
pub const ENV: &str = "CHROOT_TOOL_CACHE_DIR";

/// How old a cached rootfs may be before it is made again.
pub const MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

/// How `create` uses the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Unpack a fresh entry when there is one; store what the backend made.
    #[default]
    Use,
    /// Run the backend even on a hit, and store its result (`--refresh`).
    Refresh,
    /// Neither read nor write the cache (`--no-cache`).
    Off,
}

/// The cache directory of this user (see the module's text).
pub fn base_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os(ENV).filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d));
    }
    // config.toml's `[cache] dir` (main has refused a malformed one).
    if let Some(d) = crate::conf::config::Config::load()
        .ok()
        .and_then(|c| c.cache_dir)
    {
        return Some(d);
    }
    if nix::unistd::geteuid().is_root() {
        return Some(PathBuf::from("/var/cache/chroot-tool"));
    }
    let xdg = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .filter(|d| d.is_absolute());
    xdg.or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|d| d.join("chroot-tool"))
}

/// The settings a cached rootfs is made from, as `key=value` lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    text: String,
    slug: String,
}

impl Key {
    /// `fields` in a fixed order; `suite`, `variant` and `arch` also name
    /// the file. Includes are sorted: their order changes nothing.
    pub fn new(fields: &[(&str, String)]) -> Key {
        let mut text = String::from("# chroot-tool rootfs cache key, version 1\n");
        for (k, v) in fields {
            text.push_str(&format!("{k}={}\n", v.escape_default()));
        }
        let get = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| *k == name)
                .map_or("", |(_, v)| v.as_str())
        };
        let slug: String = format!("{}-{}-{}", get("suite"), get("variant"), get("arch"))
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .take(80)
            .collect();
        Key { text, slug }
    }

    /// The file name of the entry, without extension.
    pub fn name(&self) -> String {
        format!("{}-{:016x}", self.slug, fnv1a(self.text.as_bytes()))
    }

    pub fn text(&self) -> &str {
        &self.text
    }
}

/// Includes as one canonical value: sorted, without repeats.
pub fn includes(list: &[String]) -> String {
    let mut v: Vec<&str> = list.iter().map(String::as_str).collect();
    v.sort_unstable();
    v.dedup();
    v.join(",")
}

/// FNV-1a, 64 bits: stable across builds and versions (std's hasher is not).
fn fnv1a(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325, |h, &x| {
        (h ^ x as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// One entry of the cache.
#[derive(Debug, Clone)]
pub struct Entry {
    base: PathBuf,
    key: Key,
}

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("{}: {source}", crate::show::path(path))]
    Io { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Untrusted(#[from] Untrusted),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
}

/// A directory or file of the cache that another user could have written:
/// the cache is then neither read nor written.
#[derive(Debug, thiserror::Error)]
#[error("{}: {why}", crate::show::path(path))]
pub struct Untrusted {
    pub path: PathBuf,
    pub why: String,
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> CacheError + '_ {
    move |source| CacheError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What the cache holds for a key ([`Entry::lookup`]).
#[derive(Debug)]
pub enum Lookup {
    /// An entry younger than the age limit.
    Fresh(Hit),
    /// An entry this old, at or past the limit (or made in the future):
    /// made again.
    Old(Duration),
}

/// A cached archive for exactly the settings asked, fresh enough.
#[derive(Debug)]
pub struct Hit {
    /// The archive, opened and checked.
    pub file: std::fs::File,
    pub path: PathBuf,
    pub age: Duration,
}

/// Opens `name` in `at` (`path` names it in messages) without following
/// a symlink, and checks by its descriptor that it is what the cache
/// trusts: a directory (`dir`) or a regular file, owned by this user (root
/// for root), writable by no group and no other user. `None` when missing.
fn open_trusted(
    at: BorrowedFd,
    name: &Path,
    path: &Path,
    dir: bool,
) -> Result<Option<OwnedFd>, Untrusted> {
    let untrusted = |why: String| Untrusted {
        path: path.to_path_buf(),
        why,
    };
    let kind = if dir {
        OFlag::O_DIRECTORY
    } else {
        OFlag::O_NONBLOCK
    };
    let fd = match openat(
        at,
        name,
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | kind,
        Perm::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(None),
        // O_NOFOLLOW with O_DIRECTORY: ENOTDIR for a symlink.
        Err(e @ (Errno::ELOOP | Errno::ENOTDIR)) => {
            let link = fstatat(at, name, AtFlags::AT_SYMLINK_NOFOLLOW)
                .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFLNK);
            let why = if link {
                "a symbolic link".into()
            } else {
                io::Error::from(e).to_string()
            };
            return Err(untrusted(why));
        }
        Err(e) => return Err(untrusted(io::Error::from(e).to_string())),
    };
    let st = fstat(fd.as_fd()).map_err(|e| untrusted(io::Error::from(e).to_string()))?;
    let fmt = st.st_mode & libc::S_IFMT;
    if dir && fmt != libc::S_IFDIR {
        return Err(untrusted("not a directory".into()));
    }
    if !dir && fmt != libc::S_IFREG {
        return Err(untrusted("not a regular file".into()));
    }
    let me = nix::unistd::geteuid().as_raw();
    if st.st_uid != me {
        return Err(untrusted(format!("owned by uid {}", st.st_uid)));
    }
    if st.st_mode & 0o002 != 0 {
        return Err(untrusted("writable by others".into()));
    }
    if st.st_mode & 0o020 != 0 {
        return Err(untrusted("writable by its group".into()));
    }
    Ok(Some(fd))
}

impl Entry {
    /// The entry for `key` in the cache directory `base`.
    pub fn new(base: &Path, key: Key) -> Entry {
        Entry {
            base: base.to_path_buf(),
            key,
        }
    }

    fn dir(&self) -> PathBuf {
        self.base.join("rootfs")
    }

    pub fn archive(&self) -> PathBuf {
        self.dir().join(self.archive_name())
    }

    fn archive_name(&self) -> String {
        format!("{}.tar.zst", self.key.name())
    }

    fn key_name(&self) -> String {
        format!("{}.key", self.key.name())
    }

    /// The cache's `rootfs/` directory, the cache directory and it both
    /// checked ([`open_trusted`]); `None` when either is missing.
    fn open_dir(&self) -> Result<Option<OwnedFd>, Untrusted> {
        let Some(base) = open_trusted(AT_FDCWD, &self.base, &self.base, true)? else {
            return Ok(None);
        };
        open_trusted(base.as_fd(), Path::new("rootfs"), &self.dir(), true)
    }

    /// The archive, when there is one for exactly these settings, made
    /// less than `max_age` ago, else its age ([`Lookup`]). An error when a
    /// directory or file of the cache could have been written by another
    /// user: the caller then neither reads nor writes the cache.
    pub fn lookup(&self, max_age: Duration) -> Result<Option<Lookup>, Untrusted> {
        let Some(dir) = self.open_dir()? else {
            return Ok(None);
        };
        let (key_name, file_name) = (self.key_name(), self.archive_name());
        let in_dir = |name: &str| self.dir().join(name);
        let Some(key) = open_trusted(dir.as_fd(), Path::new(&key_name), &in_dir(&key_name), false)?
        else {
            return Ok(None);
        };
        let mut text = String::new();
        if std::io::Read::read_to_string(
            &mut std::io::Read::take(std::fs::File::from(key), 1 << 16),
            &mut text,
        )
        .is_err()
            || text != self.key.text
        {
            return Ok(None);
        }
        let path = in_dir(&file_name);
        let Some(file) = open_trusted(dir.as_fd(), Path::new(&file_name), &path, false)? else {
            return Ok(None);
        };
        let file = std::fs::File::from(file);
        let Ok(made) = file.metadata().and_then(|m| m.modified()) else {
            return Ok(None);
        };
        // Made in the future (a clock set back, a file touched): as old
        // as the limit, not new. A minute of skew is allowed.
        let age = match SystemTime::now().duration_since(made) {
            Ok(age) => age,
            Err(e) if e.duration() <= Duration::from_secs(60) => Duration::ZERO,
            Err(_) => max_age,
        };
        if age >= max_age {
            return Ok(Some(Lookup::Old(age)));
        }
        Ok(Some(Lookup::Fresh(Hit { file, path, age })))
    }

    /// Unpacks the cached archive of `hit` into `dir` (which may already
    /// hold `chroot.d/`).
    pub fn unpack(
        hit: Hit,
        dir: &Path,
        progress: &mut dyn Progress,
    ) -> Result<Unpacked, ArchiveError> {
        let opts = UnpackOptions {
            require_empty: false,
            ..UnpackOptions::default()
        };
        archive::unpack_open(hit.file, &hit.path, dir, &opts, progress)
    }

    /// This entry's `NAME.lock` in the cache's `rootfs/` (`dir`), taken as
    /// `how` says: one writer (a store, a discard) at a time.
    fn lock(
        &self,
        dir: BorrowedFd,
        how: nix::fcntl::FlockArg,
    ) -> io::Result<nix::fcntl::Flock<std::fs::File>> {
        let file = openat(
            dir,
            Path::new(&format!("{}.lock", self.key.name())),
            OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Perm::from_bits_truncate(0o644),
        )?;
        nix::fcntl::Flock::lock(std::fs::File::from(file), how).map_err(|(_, e)| e.into())
    }

    /// Removes the archive of this entry when it is still the file `id`
    /// (device, inode) that was found unusable: under the entry's lock, so
    /// that an archive a store is putting in its place meanwhile is never
    /// the one removed (a store at work: nothing is removed).
    pub fn discard(&self, id: (u64, u64)) {
        let Ok(Some(dir)) = self.open_dir() else {
            return;
        };
        let Ok(_lock) = self.lock(dir.as_fd(), nix::fcntl::FlockArg::LockExclusiveNonblock) else {
            return;
        };
        let name = self.archive_name();
        if fstatat(dir.as_fd(), Path::new(&name), AtFlags::AT_SYMLINK_NOFOLLOW)
            .is_ok_and(|st| (st.st_dev, st.st_ino) == id)
        {
            let _ = nix::unistd::unlinkat(
                dir.as_fd(),
                Path::new(&name),
                nix::unistd::UnlinkatFlags::NoRemoveDir,
            );
        }
    }

    /// Stores the rootfs `dir` (without its `chroot.d/`, which is the
    /// sandbox's own) as this entry. Returns the archive's path. Refused
    /// when a directory of the cache could be written by another user.
    pub fn store(&self, dir: &Path, progress: &mut dyn Progress) -> Result<PathBuf, CacheError> {
        // 0700: a rootfs holds files only its root may read (/etc/shadow).
        let rootfs = self.dir();
        std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
            .create(&rootfs)
            .map_err(io_at(&rootfs))?;
        let fd = self
            .open_dir()?
            .ok_or_else(|| io_at(&rootfs)(io::Error::from(io::ErrorKind::NotFound)))?;
        // Everything below is reached through the checked directory.
        let at = crate::sys::fd_path(fd.as_fd());
        archive::remove_stale(&at, None, false);
        let lock_path = rootfs.join(format!("{}.lock", self.key.name()));
        let _lock = self
            .lock(fd.as_fd(), nix::fcntl::FlockArg::LockExclusive)
            .map_err(io_at(&lock_path))?;
        let opts = PackOptions {
            excludes: vec!["/chroot.d".into()],
            ..PackOptions::default()
        };
        // The key first: a reader that sees it with the old archive gets
        // the old archive whole, which was made with the same settings.
        let key_path = rootfs.join(self.key_name());
        let key_at = at.join(self.key_name());
        let (mut f, tmp) = archive::create_temp_beside(&key_at, 0o644).map_err(io_at(&key_path))?;
        let guard = archive::scopeguard(&tmp);
        f.write_all(self.key.text.as_bytes())
            .map_err(io_at(&key_path))?;
        drop(f);
        std::fs::rename(&tmp, &key_at).map_err(io_at(&key_path))?;
        guard.disarm();
        archive::pack_file(dir, &at.join(self.archive_name()), &opts, progress).map_err(
            |e| match e {
                // Named by the cache's path, not the descriptor's.
                ArchiveError::Io { path, source } if path.starts_with(&at) => CacheError::Io {
                    path: rootfs.join(path.strip_prefix(&at).unwrap_or(&path)),
                    source,
                },
                e => e.into(),
            },
        )?;
        // 0644 whatever the umask: an entry others may write is not used.
        let archive = at.join(self.archive_name());
        std::fs::set_permissions(
            &archive,
            std::os::unix::fs::PermissionsExt::from_mode(0o644),
        )
        .map_err(io_at(&self.archive()))?;
        Ok(self.archive())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(include: &str, backend: &str) -> Key {
        Key::new(&[
            ("suite", "stable".into()),
            ("variant", "minbase".into()),
            ("arch", "amd64".into()),
            ("include", include.into()),
            ("backend", backend.into()),
        ])
    }

    #[test]
    fn keys() {
        let a = key("less,procps", "debootstrap");
        assert_eq!(a, key("less,procps", "debootstrap"));
        assert_ne!(a.name(), key("less", "debootstrap").name());
        assert_ne!(a.name(), key("less,procps", "mmdebstrap").name());
        assert!(
            a.name().starts_with("stable-minbase-amd64-"),
            "{}",
            a.name()
        );
        assert!(a.text().contains("include=less,procps\n"));
        assert_eq!(
            includes(&["procps".into(), "less".into(), "less".into()]),
            "less,procps"
        );
        // A value cannot forge another line of the key.
        assert!(!key("x\nbackend=y", "z").text().contains("\nbackend=y\n"));
        // Names are safe file names, whatever the settings hold.
        let odd = Key::new(&[("suite", "../../x y".into())]);
        assert!(!odd.name().contains('/') && !odd.name().contains(' '));
    }

    #[test]
    fn stable_hash() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
