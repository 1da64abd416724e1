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
//! may read.
//!
//! Parallel creates never corrupt it: an entry is written to a temporary
//! file and renamed into place (a reader has either the old file or the
//! new one, whole), under an exclusive lock of `NAME.lock` so two writers
//! take turns; a reader takes no lock.
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

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
    dir: PathBuf,
    key: Key,
}

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("{}: {source}", crate::show::path(path))]
    Io { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Archive(#[from] ArchiveError),
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> CacheError + '_ {
    move |source| CacheError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl Entry {
    /// The entry for `key` in the cache directory `base`.
    pub fn new(base: &Path, key: Key) -> Entry {
        Entry {
            dir: base.join("rootfs"),
            key,
        }
    }

    pub fn archive(&self) -> PathBuf {
        self.dir.join(format!("{}.tar.zst", self.key.name()))
    }

    fn key_file(&self) -> PathBuf {
        self.dir.join(format!("{}.key", self.key.name()))
    }

    fn lock_file(&self) -> PathBuf {
        self.dir.join(format!("{}.lock", self.key.name()))
    }

    /// The archive, when there is one for exactly these settings, made
    /// less than `max_age` ago; with its age.
    pub fn fresh(&self, max_age: Duration) -> Option<(PathBuf, Duration)> {
        let key = std::fs::read_to_string(self.key_file()).ok()?;
        if key != self.key.text {
            return None;
        }
        let file = self.archive();
        let made = std::fs::metadata(&file).ok()?.modified().ok()?;
        let age = SystemTime::now().duration_since(made).unwrap_or_default();
        (age < max_age).then_some((file, age))
    }

    /// Unpacks the cached archive `file` into `dir` (which may already
    /// hold `chroot.d/`).
    pub fn unpack(
        file: &Path,
        dir: &Path,
        progress: &mut dyn Progress,
    ) -> Result<Unpacked, ArchiveError> {
        let opts = UnpackOptions {
            require_empty: false,
            ..UnpackOptions::default()
        };
        archive::unpack_file(file, dir, &opts, progress)
    }

    /// Stores the rootfs `dir` (without its `chroot.d/`, which is the
    /// sandbox's own) as this entry. Returns the archive's path.
    pub fn store(&self, dir: &Path, progress: &mut dyn Progress) -> Result<PathBuf, CacheError> {
        // 0700: a rootfs holds files only its root may read (/etc/shadow).
        std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
            .create(&self.dir)
            .map_err(io_at(&self.dir))?;
        let lock_path = self.lock_file();
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .mode(0o644)
            .open(&lock_path)
            .map_err(io_at(&lock_path))?;
        let _lock = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| io_at(&lock_path)(e.into()))?;
        let opts = PackOptions {
            excludes: vec!["/chroot.d".into()],
            ..PackOptions::default()
        };
        let file = self.archive();
        // The key first: a reader that sees it with the old archive gets
        // the old archive whole, which was made with the same settings.
        let key_path = self.key_file();
        let tmp = archive::temp_beside(&key_path);
        let guard = archive::scopeguard(&tmp);
        {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o644)
                .open(&tmp)
                .map_err(io_at(&tmp))?;
            f.write_all(self.key.text.as_bytes()).map_err(io_at(&tmp))?;
        }
        std::fs::rename(&tmp, &key_path).map_err(io_at(&key_path))?;
        guard.disarm();
        archive::pack_file(dir, &file, &opts, progress)?;
        Ok(file)
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
