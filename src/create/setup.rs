//! The files `create` writes into a fresh rootfs, written without ever
//! following a symlink of the rootfs: every directory on the way is opened
//! with `O_NOFOLLOW`, files are written to a temporary name and renamed over
//! the target (a rename replaces a symlink, it never writes through it).
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, renameat, AtFlags, OFlag};
use nix::sys::stat::{fstatat, mkdirat, Mode};
use nix::unistd::{symlinkat, unlinkat, UnlinkatFlags};

/// An error about one path inside the root.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct SetupError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

/// At most this much of a file is read by [`Root::read_file`].
pub const READ_CAP: u64 = 64 << 10;

/// A root directory, opened once; paths below it are relative to it.
pub struct Root {
    fd: OwnedFd,
    path: PathBuf,
}

impl Root {
    pub fn open(path: &Path) -> Result<Root, SetupError> {
        let fd = nix::fcntl::openat(
            nix::fcntl::AT_FDCWD,
            path,
            OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| SetupError {
            path: path.to_path_buf(),
            source: e.into(),
        })?;
        Ok(Root {
            fd,
            path: path.to_path_buf(),
        })
    }

    fn err(&self, rel: &Path, e: impl Into<io::Error>) -> SetupError {
        let e: io::Error = e.into();
        let source =
            if e.raw_os_error() == Some(libc::ELOOP) || e.raw_os_error() == Some(libc::ENOTDIR) {
                io::Error::new(
                    e.kind(),
                    format!("{e} (a symlink or file is in the way; refusing to follow it)"),
                )
            } else {
                e
            };
        SetupError {
            path: self.path.join(rel),
            source,
        }
    }

    /// Opens directory `rel`, never following a symlink; makes what is missing when `create`.
    fn dir(&self, rel: &Path, create: bool) -> Result<OwnedFd, SetupError> {
        let flags = OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_RDONLY | OFlag::O_CLOEXEC;
        let mut cur = nix::unistd::dup(self.fd.as_fd()).map_err(|e| self.err(rel, e))?;
        for c in rel.components() {
            let Component::Normal(name) = c else {
                return Err(self.err(
                    rel,
                    io::Error::new(io::ErrorKind::InvalidInput, "not a plain relative path"),
                ));
            };
            let next = match openat(&cur, name, flags, Mode::empty()) {
                Err(Errno::ENOENT) if create => {
                    match mkdirat(&cur, name, Mode::from_bits_truncate(0o755)) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(e) => return Err(self.err(rel, e)),
                    }
                    openat(&cur, name, flags, Mode::empty())
                }
                r => r,
            }
            .map_err(|e| self.err(rel, e))?;
            cur = next;
        }
        Ok(cur)
    }

    fn split<'a>(&self, rel: &'a Path) -> Result<(&'a Path, &'a std::ffi::OsStr), SetupError> {
        match (rel.parent(), rel.file_name()) {
            (Some(p), Some(n)) => Ok((p, n)),
            _ => Err(self.err(
                rel,
                io::Error::new(io::ErrorKind::InvalidInput, "no file name"),
            )),
        }
    }

    /// Writes `rel` with `contents` (mode 0644), replacing what was there.
    pub fn write_file(&self, rel: &Path, contents: &str) -> Result<(), SetupError> {
        self.write_file_mode(rel, contents, 0o644)
    }

    /// [`Root::write_file`] with the file's `mode`.
    pub fn write_file_mode(&self, rel: &Path, contents: &str, mode: u32) -> Result<(), SetupError> {
        let (parent, name) = self.split(rel)?;
        let dir = self.dir(parent, true)?;
        self.write_at(&dir, rel, name, contents, mode)
    }

    /// Writes `name` in the directory `dir` (`rel` inside the root, for
    /// errors) with `contents` and `mode`, replacing what was there.
    fn write_at(
        &self,
        dir: &OwnedFd,
        rel: &Path,
        name: &std::ffi::OsStr,
        contents: &str,
        mode: u32,
    ) -> Result<(), SetupError> {
        let mut tmp = std::ffi::OsString::from(".");
        tmp.push(name);
        tmp.push(".chroot-tool-new");
        let _ = unlinkat(dir, tmp.as_os_str(), UnlinkatFlags::NoRemoveDir);
        let fd = openat(
            dir,
            tmp.as_os_str(),
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(mode),
        )
        .map_err(|e| self.err(rel, e))?;
        let mut f = File::from(fd);
        f.write_all(contents.as_bytes())
            .map_err(|e| self.err(rel, e))?;
        drop(f);
        renameat(dir, tmp.as_os_str(), dir, name).map_err(|e| {
            let _ = unlinkat(dir, tmp.as_os_str(), UnlinkatFlags::NoRemoveDir);
            self.err(rel, e)
        })
    }

    /// Appends `text` to `rel` when it is a regular file (never through a
    /// symlink: a symlink, a missing file or anything else is left alone).
    /// Returns whether it appended.
    pub fn append_if_file(&self, rel: &Path, text: &str) -> Result<bool, SetupError> {
        let (parent, name) = self.split(rel)?;
        let dir = match self.dir(parent, false) {
            Ok(d) => d,
            Err(e) if e.source.raw_os_error() == Some(libc::ENOENT) => return Ok(false),
            Err(e) => return Err(e),
        };
        let fd = match openat(
            &dir,
            name,
            OFlag::O_WRONLY
                | OFlag::O_APPEND
                | OFlag::O_NOFOLLOW
                | OFlag::O_NONBLOCK
                | OFlag::O_NOCTTY
                | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::ENOENT | Errno::ELOOP | Errno::ENXIO | Errno::EISDIR) => return Ok(false),
            Err(e) => return Err(self.err(rel, e)),
        };
        let mut f = File::from(fd);
        if !f.metadata().map_err(|e| self.err(rel, e))?.is_file() {
            return Ok(false);
        }
        f.write_all(text.as_bytes()).map_err(|e| self.err(rel, e))?;
        Ok(true)
    }

    /// Makes `rel` a symlink to `target`, replacing a file or symlink there.
    pub fn symlink(&self, rel: &Path, target: &str) -> Result<(), SetupError> {
        let (parent, name) = self.split(rel)?;
        let dir = self.dir(parent, true)?;
        match unlinkat(&dir, name, UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(self.err(rel, e)),
        }
        symlinkat(target, &dir, name).map_err(|e| self.err(rel, e))
    }

    /// Whether `rel` exists (its last component may be a symlink; none before it).
    pub fn exists(&self, rel: &Path) -> bool {
        let Ok((parent, name)) = self.split(rel) else {
            return false;
        };
        let Ok(dir) = self.dir(parent, false) else {
            return false;
        };
        fstatat(&dir, name, AtFlags::AT_SYMLINK_NOFOLLOW).is_ok()
    }

    /// Reads a small file `rel` of the new rootfs (a regular file of at
    /// most 64 KiB) through the one door for a sandbox's files: resolved
    /// inside the root, and nothing but a regular file is ever opened (a
    /// FIFO or a device node of the rootfs is refused before any open).
    pub fn read_file(&self, rel: &Path) -> Option<String> {
        let bytes = crate::sys::read_in_root(self.fd.as_fd(), rel, READ_CAP as usize).ok()??;
        String::from_utf8(bytes).ok()
    }
}

/// A hostname made from DIR's base name: lower case letters, digits and
/// dashes, at most 63 characters; `sandbox` when nothing is left.
pub fn hostname_for(dir: &Path) -> String {
    let base = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut out = String::new();
    for c in base.chars().flat_map(char::to_lowercase) {
        let c = if c.is_ascii_alphanumeric() { c } else { '-' };
        if c == '-' && (out.is_empty() || out.ends_with('-')) {
            continue;
        }
        out.push(c);
    }
    out.truncate(63);
    let out = out.trim_end_matches('-').to_string();
    if out.is_empty() {
        "sandbox".to_string()
    } else {
        out
    }
}

/// `/etc/hosts` for a sandbox named `name`.
pub fn hosts_for(name: &str) -> String {
    format!(
        "127.0.0.1\tlocalhost\n\
         127.0.1.1\t{name}\n\
         \n\
         ::1\tlocalhost ip6-localhost ip6-loopback\n\
         ff02::1\tip6-allnodes\n\
         ff02::2\tip6-allrouters\n"
    )
}

/// What `on` appends to `/etc/hosts` after the host's name.
pub const HOSTS_NOTE: &str = "# added by chroot-tool on: the host's name, which the sandbox shares";

/// A host name we are willing to write into a file: letters, digits, `-`
/// and `.`, at most 253 characters.
fn valid_hostname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && !name.starts_with(['-', '.'])
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// Whether a hosts file's text resolves `name` (any name field of a line,
/// comments left out, case ignored).
pub fn hosts_resolve(text: &str, name: &str) -> bool {
    text.lines().any(|l| {
        let l = l.split('#').next().unwrap_or("");
        l.split_whitespace()
            .skip(1)
            .any(|n| n.eq_ignore_ascii_case(name))
    })
}

/// Makes the rootfs' `/etc/hosts` resolve `name`, the host's name, which
/// the sandbox runs under while it shares the host's UTS namespace (else
/// `sudo` inside says "unable to resolve host"): one line is appended when
/// none resolves it. Only a regular file on the root's own filesystem is
/// changed, through the writers above (never through a symlink of the
/// rootfs); a missing file, a symlink (kept as it is), an `/etc` or a
/// hosts file that another mount puts there (a host directory bound on
/// `/etc`), a file too large to read whole or a name unfit for the file
/// is left alone. Returns whether a line was added.
pub fn add_host_name(root: &Root, name: &str) -> Result<bool, SetupError> {
    let rel = Path::new("etc/hosts");
    if !valid_hostname(name) {
        return Ok(false);
    }
    // `/etc` opened without following a symlink, and only on the root's
    // own filesystem: a host directory bound on `/etc` is never written.
    let etc = match root.dir(Path::new("etc"), false) {
        Ok(fd) => fd,
        Err(e) if e.source.raw_os_error() == Some(libc::ENOENT) => return Ok(false),
        Err(e) => return Err(e),
    };
    let on_root = |fd: std::os::fd::BorrowedFd| crate::sys::mount_of(fd).map(|(id, _)| id);
    let root_mnt = on_root(root.fd.as_fd()).map_err(|e| root.err(Path::new(""), e))?;
    if on_root(etc.as_fd()).map_err(|e| root.err(rel, e))? != root_mnt {
        return Ok(false);
    }
    // `/etc/hosts` itself: a regular file of the same filesystem (not a
    // symlink, which is left as it is, nor a file bound onto it).
    let hosts = std::ffi::OsStr::new("hosts");
    match crate::sys::entry_at(etc.as_fd(), hosts) {
        Ok(e) if e.kind == libc::S_IFREG && e.mount_id == root_mnt && !e.mount_root => {}
        _ => return Ok(false),
    }
    let Ok(Some(text)) =
        crate::sys::read_in_root(etc.as_fd(), Path::new("/hosts"), READ_CAP as usize)
    else {
        return Ok(false);
    };
    let Ok(text) = String::from_utf8(text) else {
        return Ok(false);
    };
    if text.len() as u64 >= READ_CAP || hosts_resolve(&text, name) {
        return Ok(false);
    }
    let sep = if text.is_empty() || text.ends_with('\n') {
        ""
    } else {
        "\n"
    };
    root.write_at(
        &etc,
        rel,
        hosts,
        &format!("{text}{sep}127.0.1.1\t{name}\t{HOSTS_NOTE}\n"),
        0o644,
    )?;
    Ok(true)
}

/// A time zone name we are willing to put in a path: `Area/City` words only.
pub fn valid_zone(zone: &str) -> bool {
    !zone.is_empty()
        && !zone.starts_with('/')
        && zone.split('/').all(|w| {
            !w.is_empty()
                && w != "."
                && w != ".."
                && w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_+-".contains(c))
        })
}

/// The host's time zone: `/etc/timezone`, else the target of `/etc/localtime`.
pub fn host_timezone() -> Option<String> {
    let from_file = std::fs::read_to_string("/etc/timezone")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|z| valid_zone(z));
    from_file.or_else(|| {
        let link = std::fs::read_link("/etc/localtime").ok()?;
        let link = link.to_str()?;
        let zone = &link[link.find("zoneinfo/")? + "zoneinfo/".len()..];
        valid_zone(zone).then(|| zone.to_string())
    })
}

/// What setting up the rootfs did, for the log.
#[derive(Debug, Default)]
pub struct Done {
    pub hostname: String,
    pub timezone: Option<String>,
    pub notes: Vec<String>,
}

/// Writes `/etc/hostname`, `/etc/hosts`, `/etc/default/locale`, the host's time zone.
pub fn configure(root: &Root, dir: &Path) -> Result<Done, SetupError> {
    let mut done = Done {
        hostname: hostname_for(dir),
        ..Done::default()
    };
    root.write_file(Path::new("etc/hostname"), &format!("{}\n", done.hostname))?;
    root.write_file(Path::new("etc/hosts"), &hosts_for(&done.hostname))?;
    // C.UTF-8 is built into glibc (>= 2.35) and shipped by libc-bin before: no locales package needed.
    root.write_file(Path::new("etc/default/locale"), "LANG=C.UTF-8\n")?;
    match host_timezone() {
        None => done
            .notes
            .push("the host's time zone is unknown; keeping the rootfs' own".into()),
        Some(zone) => {
            root.write_file(Path::new("etc/timezone"), &format!("{zone}\n"))?;
            let zonefile = Path::new("usr/share/zoneinfo").join(&zone);
            if root.exists(&zonefile) {
                root.symlink(
                    Path::new("etc/localtime"),
                    &format!("../usr/share/zoneinfo/{zone}"),
                )?;
            } else {
                done.notes.push(format!(
                    "time zone {zone} is not in the rootfs (no tzdata there); /etc/localtime left as it was"
                ));
            }
            done.timezone = Some(zone);
        }
    }
    Ok(done)
}

/// What a copy (`create --from`) changes: `/etc/hostname` to its own
/// name, and that name in `/etc/hosts` ([`hosts_renamed`]); the locale,
/// the time zone and the rest of `/etc/hosts` stay the source's. A hosts
/// file that is not text within [`READ_CAP`] is left as it is (`on` adds
/// the host's name to it where it can).
pub fn configure_copy(root: &Root, dir: &Path) -> Result<Done, SetupError> {
    let done = Done {
        hostname: hostname_for(dir),
        ..Done::default()
    };
    let old = root
        .read_file(Path::new("etc/hostname"))
        .map(|t| t.trim().to_string())
        .unwrap_or_default();
    root.write_file(Path::new("etc/hostname"), &format!("{}\n", done.hostname))?;
    let rel = Path::new("etc/hosts");
    match root.read_file(rel) {
        Some(text) => {
            let renamed = hosts_renamed(&text, &old, &done.hostname);
            if renamed != text {
                root.write_file(rel, &renamed)?;
            }
        }
        None if !root.exists(rel) => root.write_file(rel, &hosts_for(&done.hostname))?,
        None => {}
    }
    Ok(done)
}

/// The hosts file `text` of a sandbox named `old`, for its copy named
/// `new`: each name field equal to `old` (as host names compare, without
/// case) becomes `new`, every other line and field as it was; a line for
/// `new` is added when none resolves it then. The loopback names are never
/// renamed: a source named `localhost` (as many images are) keeps
/// resolving it in the copy.
pub fn hosts_renamed(text: &str, old: &str, new: &str) -> String {
    let loopback = ["localhost", "ip6-localhost", "ip6-loopback"];
    let old = if loopback.iter().any(|l| old.eq_ignore_ascii_case(l))
        || old.to_ascii_lowercase().starts_with("localhost.")
    {
        ""
    } else {
        old
    };
    let mut out = String::with_capacity(text.len() + new.len());
    for line in text.split_inclusive('\n') {
        let (body, comment) = line.split_once('#').unwrap_or((line, ""));
        let mut fields = body.split_whitespace();
        let addr = fields.next();
        let names: Vec<&str> = fields.collect();
        let hit = |n: &&str| !old.is_empty() && n.eq_ignore_ascii_case(old);
        match addr {
            Some(addr) if names.iter().any(hit) => {
                let names: Vec<&str> = names.iter().map(|n| if hit(n) { new } else { n }).collect();
                out.push_str(addr);
                out.push('\t');
                out.push_str(&names.join(" "));
                if !comment.is_empty() {
                    out.push_str(" #");
                    out.push_str(comment.trim_end_matches('\n'));
                }
                out.push('\n');
            }
            _ => out.push_str(line),
        }
    }
    if !hosts_resolve(&out, new) {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&format!("127.0.1.1\t{new}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames() {
        assert_eq!(hostname_for(Path::new("/srv/My_Project.2")), "my-project-2");
        assert_eq!(hostname_for(Path::new("/x/--a--b--")), "a-b");
        assert_eq!(hostname_for(Path::new("/x/___")), "sandbox");
        assert_eq!(hostname_for(Path::new("/")), "sandbox");
        assert_eq!(hostname_for(Path::new(&"a".repeat(80))).len(), 63);
    }

    #[test]
    fn a_copy_renames_its_own_name_in_hosts_and_keeps_the_rest() {
        let src =
            "127.0.0.1\tlocalhost\n127.0.1.1\tdev dev.lan # mine\n10.1.1.1 myhost\n# DEV here\n";
        assert_eq!(
            hosts_renamed(src, "dev", "dev-copy"),
            "127.0.0.1\tlocalhost\n127.0.1.1\tdev-copy dev.lan # mine\n10.1.1.1 myhost\n# DEV here\n"
        );
        // Case does not matter in a host name; a comment is not a name.
        assert_eq!(hosts_renamed("::1 DEV\n", "dev", "x"), "::1\tx\n");
        // No line named the source: one is added for the copy, once.
        let added = hosts_renamed("10.1.1.1 myhost", "dev", "x");
        assert_eq!(added, "10.1.1.1 myhost\n127.0.1.1\tx\n");
        assert_eq!(hosts_renamed(&added, "dev", "x"), added);
        // An unknown source name renames nothing.
        assert_eq!(hosts_renamed("127.0.1.1 x\n", "", "x"), "127.0.1.1 x\n");
        assert_eq!(hosts_renamed("", "dev", "x"), "127.0.1.1\tx\n");
        // A source named after the loopback keeps it.
        for old in [
            "localhost",
            "LocalHost",
            "localhost.localdomain",
            "ip6-localhost",
        ] {
            assert_eq!(
                hosts_renamed(
                    "127.0.0.1 localhost localhost.localdomain\n::1 ip6-localhost\n",
                    old,
                    "x"
                ),
                "127.0.0.1 localhost localhost.localdomain\n::1 ip6-localhost\n127.0.1.1\tx\n",
                "{old}"
            );
        }
    }

    #[test]
    fn host_name_in_hosts() {
        let hosts = hosts_for("my-sb");
        assert!(hosts_resolve(&hosts, "my-sb"));
        assert!(hosts_resolve(&hosts, "LOCALHOST"));
        assert!(!hosts_resolve(&hosts, "build7"));
        assert!(!hosts_resolve("# 127.0.0.1 build7\n", "build7"));
        assert!(!hosts_resolve("build7 127.0.0.1\n", "build7"));
        let t = std::env::temp_dir().join(format!("ct-hosts-{}", std::process::id()));
        std::fs::create_dir_all(t.join("etc")).unwrap();
        let r = Root::open(&t).unwrap();
        // No /etc/hosts: left alone.
        assert!(!add_host_name(&r, "build7").unwrap());
        assert!(!t.join("etc/hosts").exists());
        std::fs::write(t.join("etc/hosts"), "127.0.0.1 localhost").unwrap();
        assert!(add_host_name(&r, "build7").unwrap());
        let text = std::fs::read_to_string(t.join("etc/hosts")).unwrap();
        assert_eq!(
            text,
            format!("127.0.0.1 localhost\n127.0.1.1\tbuild7\t{HOSTS_NOTE}\n")
        );
        // Once only; a name unfit for the file is never written.
        assert!(!add_host_name(&r, "build7").unwrap());
        assert!(!add_host_name(&r, "a b\n1.2.3.4 evil").unwrap());
        assert_eq!(std::fs::read_to_string(t.join("etc/hosts")).unwrap(), text);
        // A symlink is never written through, nor replaced.
        std::fs::write(t.join("outside"), "127.0.0.1 localhost\n").unwrap();
        std::fs::remove_file(t.join("etc/hosts")).unwrap();
        std::os::unix::fs::symlink(t.join("outside"), t.join("etc/hosts")).unwrap();
        assert!(!add_host_name(&r, "build7").unwrap());
        assert_eq!(
            std::fs::read_to_string(t.join("outside")).unwrap(),
            "127.0.0.1 localhost\n"
        );
        assert!(t.join("etc/hosts").is_symlink());
        std::fs::remove_dir_all(&t).unwrap();
    }

    #[test]
    fn zones() {
        assert!(valid_zone("Europe/Berlin"));
        assert!(valid_zone("Etc/GMT+5"));
        assert!(!valid_zone("../../etc/passwd"));
        assert!(!valid_zone("/etc/passwd"));
        assert!(!valid_zone(""));
    }

    #[test]
    fn never_writes_through_symlinks() {
        let t = std::env::temp_dir().join(format!("ct-setup-{}", std::process::id()));
        let outside = t.join("outside");
        let root = t.join("root");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::create_dir_all(&root).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("etc")).unwrap();
        let r = Root::open(&root).unwrap();
        assert!(r.write_file(Path::new("etc/hostname"), "x\n").is_err());
        assert!(!outside.join("hostname").exists());
        // A symlink as the file itself is replaced, not written through.
        std::fs::remove_file(root.join("etc")).unwrap();
        std::fs::create_dir(root.join("etc")).unwrap();
        std::os::unix::fs::symlink(outside.join("hosts"), root.join("etc/hosts")).unwrap();
        r.write_file(Path::new("etc/hosts"), "h\n").unwrap();
        assert!(!outside.join("hosts").exists());
        assert_eq!(
            std::fs::read_to_string(root.join("etc/hosts")).unwrap(),
            "h\n"
        );
        std::fs::remove_dir_all(&t).unwrap();
    }
}
