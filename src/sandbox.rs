//! A sandbox directory: validation of DIR, its chroot.d files and its plan.
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::conf::Conf;
use crate::plan::{self, Op};
use crate::{engine, mountinfo, show, sys};

/// Host directories that are never a sandbox, whatever they hold.
const SYSTEM: [&str; 22] = [
    "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/libx32", "/media",
    "/mnt", "/opt", "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/var",
];

/// Why `dir` (absolute and canonical) may not be treated as a sandbox, or
/// `None` when it may. Refused: the host's system directories and the same
/// directories reached another way (a bind of `/`, of `/etc`), the user's
/// home and what holds it, and a directory that is neither a root
/// filesystem (`/bin/sh` inside) nor empty, unless it bears chroot-tool's
/// own marks (`chroot.d/`, where a failed create leaves its log, or `on`'s
/// self-bind at DIR), so that a broken sandbox can always be turned off.
pub fn refusal(dir: &Path) -> Option<String> {
    // A directory `on` accepted and turned on (its self-bind, recorded by
    // `on`, is on top at DIR) was checked then: the lean path of `run`.
    if engine::recorded_on(dir) {
        return None;
    }
    refusal_or_shell(dir).err()
}

/// [`refusal`] for a directory that `on` did not turn on: `Err` with the
/// reason it is refused, else whether it holds a shell (`/bin/sh` inside),
/// found on the way (a sandbox is marked by it, or by being empty, or by
/// `chroot.d/`).
fn refusal_or_shell(dir: &Path) -> Result<bool, String> {
    let id = |p: &Path| std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()));
    let mine = id(dir);
    for s in SYSTEM {
        if dir == Path::new(s) {
            return Err("a system directory of the host, not a sandbox".into());
        }
        if mine.is_some() && id(Path::new(s)) == mine {
            return Err(format!(
                "the same directory as the host's {s} (a bind of it), not a sandbox"
            ));
        }
    }
    for h in homes() {
        if h.starts_with(dir) || (mine.is_some() && h.ancestors().any(|a| id(a) == mine)) {
            return Err(format!(
                "it is or holds the home directory {}, not a sandbox; pass the sandbox's own directory",
                show::path(&h)
            ));
        }
    }
    let sb = Sandbox {
        dir: dir.to_path_buf(),
    };
    if sb.has_shell() {
        return Ok(true);
    }
    let empty = || std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_none());
    let marked = || {
        sb.chroot_file("/chroot.d").is_some_and(|m| m.is_dir())
            || engine::table_at(dir).is_ok_and(|m| !engine::self_binds(dir, &m).is_empty())
    };
    if empty() || marked() {
        return Ok(false);
    }
    Err("not a root filesystem (no /bin/sh, no chroot.d/) and not empty, so not a sandbox".into())
}

/// Why what `on` and `run` read or run from DIR's `chroot.d` as the
/// invoking user (root, as a rule: tool.conf's host binds, host-cmd on the
/// host, start and stop inside) could have been written by someone else,
/// naming it; `None` when it is that user's or root's alone. Looked at:
/// DIR, every directory a name is looked up in on the way to `chroot.d`
/// and to each of its entries (symlinks followed inside the root, as the
/// kernel would), and the entries themselves.
pub fn control_refusal(dir: &Path) -> Option<String> {
    // What cannot be opened refuses nothing here: `on` fails right after,
    // on the same open.
    let root = sys::open_root(dir).ok()?;
    control_refusal_at(root.as_fd(), dir)
}

/// [`control_refusal`] of the root already open as `root` (named `dir`):
/// what is looked at is what was opened, whatever DIR's path leads to now.
pub fn control_refusal_at(root: std::os::fd::BorrowedFd, dir: &Path) -> Option<String> {
    chroot_d_refusal(root, dir, None, &mut Looked::default())
}

/// Where the check of a program of chroot.d finds DIR's root: the one the
/// program will be chrooted into.
#[derive(Debug, Clone, Copy)]
pub enum Root<'a> {
    /// Already open (never DIR's path again, which whoever may rename a
    /// directory above it could lead elsewhere meanwhile).
    Held(std::os::fd::BorrowedFd<'a>),
    /// In the view of the holder with this pid (`/proc/PID/root/DIR`):
    /// its mounts are not ours.
    Holder(i32),
    /// By DIR's path, in this mount namespace.
    Path,
}

/// What a check of chroot.d looked up inside the root (paths inside it,
/// no symlink on the way): a mount of a run's own over one of them, or at
/// or below a place it found nothing, would show the program something
/// else than was looked at.
#[derive(Debug, Default)]
pub struct Looked {
    /// Found there: chroot.d, its entries, each name where a symlink led.
    pub paths: Vec<PathBuf>,
    /// Where anything that appears counts: a name found missing, and
    /// chroot.d itself (a new entry is a neighbour too).
    pub open: Vec<PathBuf>,
    /// The root the check walked (mount id, device, inode).
    pub root: Option<(u64, u64, u64)>,
}

impl Looked {
    /// Whether `root` is the very root the check walked (or no check was
    /// made): the command must run in what was looked at.
    pub fn walked(&self, root: std::os::fd::BorrowedFd) -> bool {
        self.root.is_none() || root_identity(root) == self.root
    }

    /// Whether a mount at `target` (inside the root) would change what
    /// was looked at.
    pub fn covered_by(&self, target: &Path) -> Option<&Path> {
        self.paths
            .iter()
            .find(|p| p.starts_with(target))
            .or_else(|| self.open.iter().find(|o| target.starts_with(o)))
            .map(PathBuf::as_path)
    }
}

/// [`control_refusal`] right before `program`, an entry of chroot.d,
/// runs, in the root it runs in (`root`). Strict about chroot.d and
/// `program`: leading nowhere now (renamed away for a moment?) is refused
/// too. The other entries are looked at as `on` does (the program may read
/// or run them); one that leads nowhere holds nothing to read. When
/// nothing is refused, what was looked up on the way ([`Looked`]).
pub fn program_check(dir: &Path, root: Root, program: &std::ffi::OsStr) -> Result<Looked, String> {
    let open = |view: &Path| sys::open_root(view).map_err(|e| format!("{}: {e}", show::path(dir)));
    let opened;
    let root = match root {
        Root::Held(root) => root,
        Root::Holder(pid) => {
            let view = Path::new("/proc")
                .join(pid.to_string())
                .join("root")
                .join(dir.strip_prefix("/").unwrap_or(dir));
            opened = open(&view)?;
            opened.as_fd()
        }
        Root::Path => {
            opened = open(dir)?;
            opened.as_fd()
        }
    };
    let Some(id) = root_identity(root) else {
        return Err(format!("{}: cannot be looked at", show::path(dir)));
    };
    let mut seen = Looked {
        root: Some(id),
        ..Default::default()
    };
    match chroot_d_refusal(root, dir, Some(program), &mut seen) {
        Some(why) => Err(why),
        None => Ok(seen),
    }
}

/// [`control_refusal`] of DIR's root, open as `root`, named `dir`;
/// `program`: [`program_check`]. What is looked up goes to `seen`.
fn chroot_d_refusal(
    root: std::os::fd::BorrowedFd,
    dir: &Path,
    program: Option<&std::ffi::OsStr>,
    seen: &mut Looked,
) -> Option<String> {
    use nix::fcntl::{AtFlags, OFlag};
    use nix::sys::stat::{fstatat, Mode};
    let strict = program.is_some();
    let cd = Path::new("/chroot.d");
    seen.paths.push(cd.to_path_buf());
    let top = match fstatat(root.as_fd(), "chroot.d", AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(e) if strict => return Some(format!("{}: {e}", show::path(dir.join("chroot.d")))),
        Err(_) => return None,
    };
    // The common shape, at one `fstatat` an entry: chroot.d a directory
    // of DIR's own, its entries no symlinks. A symlink is walked where it
    // leads.
    if top.st_mode & libc::S_IFMT != libc::S_IFDIR {
        if let Some(why) = walk_refusal(root.as_fd(), dir, cd, strict, seen) {
            return Some(why);
        }
        // Then what it holds, where it leads: its entries are walked from
        // there, as a program in it reaches them (`./NAME`).
        let at = match sys::resolve_in_root(root.as_fd(), cd) {
            Ok(at) => at,
            Err(e) if strict => return Some(format!("{}: {e}", show::path(dir.join("chroot.d")))),
            Err(_) => return None,
        };
        let base = match sys::resolve::in_root_path(root.as_fd(), at.as_fd()) {
            Ok(p) => p,
            Err(e) => {
                return Some(format!(
                    "{}: cannot be located inside {} ({e})",
                    show::path(dir.join("chroot.d")),
                    show::path(dir)
                ))
            }
        };
        seen.paths.push(base.clone());
        seen.open.push(base.clone());
        let shown = dir.join(base.strip_prefix("/").unwrap_or(&base));
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        return match nix::fcntl::openat(at.as_fd(), ".", flags, Mode::empty()) {
            Ok(listing) => Entries {
                root: root.as_fd(),
                dir,
                base: &base,
                shown: &shown,
            }
            .refusal(listing, program, seen),
            Err(e) => Some(format!(
                "{}: cannot be listed ({})",
                show::path(&shown),
                std::io::Error::from(e)
            )),
        };
    }
    let said = |at: &Path, why: String| Some(format!("{}: {why}", show::path(at)));
    if let Some(why) = nix::sys::stat::fstat(root.as_fd())
        .ok()
        .and_then(|st| not_alone(&st))
    {
        return said(dir, why);
    }
    if let Some(why) = not_alone(&top) {
        return said(&dir.join("chroot.d"), why);
    }
    seen.open.push(cd.to_path_buf());
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    // Found a directory a moment ago: one that cannot be listed now is
    // refused, never taken for empty.
    let listing = match nix::fcntl::openat(root.as_fd(), "chroot.d", flags, Mode::empty()) {
        Ok(l) => l,
        Err(e) => {
            return said(
                &dir.join("chroot.d"),
                format!("cannot be listed ({})", std::io::Error::from(e)),
            )
        }
    };
    Entries {
        root: root.as_fd(),
        dir,
        base: cd,
        shown: &dir.join("chroot.d"),
    }
    .refusal(listing, program, seen)
}

/// The entries of chroot.d: in the root `root` of `dir`, at `base` inside
/// it (no symlink on the way), on the host at `shown`.
struct Entries<'a> {
    root: std::os::fd::BorrowedFd<'a>,
    dir: &'a Path,
    base: &'a Path,
    shown: &'a Path,
}

impl Entries<'_> {
    /// [`control_refusal`] of the entries, open as `listing`: each not a
    /// symlink must be the user's or root's alone; a symlink is walked
    /// where it leads, strictly for `program` (the entry about to run,
    /// which must be there).
    fn refusal(
        &self,
        listing: std::os::fd::OwnedFd,
        program: Option<&std::ffi::OsStr>,
        seen: &mut Looked,
    ) -> Option<String> {
        use nix::fcntl::AtFlags;
        use nix::sys::stat::fstatat;
        let fd = listing.as_fd();
        let names = match sys::names_in(fd) {
            Ok(names) => names,
            Err(e) => {
                return Some(format!(
                    "{}: cannot be listed ({e})",
                    show::path(self.shown)
                ))
            }
        };
        names.iter().find_map(|n| {
            let name = <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(n.as_bytes());
            let strict = program == Some(name);
            seen.paths.push(self.base.join(name));
            let st = match fstatat(fd, n.as_c_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(st) => st,
                Err(e) if strict => {
                    return Some(format!("{}: {e}", show::path(self.shown.join(name))))
                }
                Err(_) => return None,
            };
            if st.st_mode & libc::S_IFMT == libc::S_IFLNK {
                return walk_refusal(self.root, self.dir, &self.base.join(name), strict, seen);
            }
            found_not_alone(&st).map(|why| format!("{}: {why}", show::path(self.shown.join(name))))
        })
    }
}

/// Why `inside` (a path inside the root `root` of `dir`, resolved as the
/// tool reads it) could have been written by someone other than the
/// invoking user or root (see [`control_refusal`]): each directory a name
/// is looked up in on the way, the file itself. `None` also when it is
/// not there.
pub fn path_refusal(root: std::os::fd::BorrowedFd, dir: &Path, inside: &Path) -> Option<String> {
    walk_refusal(root, dir, inside, false, &mut Looked::default())
}

/// [`path_refusal`]; `strict`: what is not found, or lies beyond 40
/// symlinks (a loop), is refused too. Otherwise nothing can be read there:
/// the kernel would find nothing either (the 40 counted from `inside`, the
/// way with the fewest). What is looked up goes to `seen`.
fn walk_refusal(
    root: std::os::fd::BorrowedFd,
    dir: &Path,
    inside: &Path,
    strict: bool,
    seen: &mut Looked,
) -> Option<String> {
    use nix::errno::Errno;
    use nix::fcntl::{openat, readlinkat, OFlag};
    use nix::sys::stat::{fstat, FileStat, Mode};
    use std::ffi::OsString;
    use std::os::fd::OwnedFd;
    use std::os::unix::ffi::OsStrExt;
    let said = |at: &Path, why: String| {
        let shown = match at.strip_prefix("/") {
            Ok(rel) if rel.as_os_str().is_empty() => dir.to_path_buf(),
            Ok(rel) => dir.join(rel),
            Err(_) => dir.join(at),
        };
        Some(format!("{}: {why}", show::path(shown)))
    };
    let push = |todo: &mut Vec<OsString>, path: &Path| {
        let names: Vec<OsString> = path
            .as_os_str()
            .as_bytes()
            .split(|&b| b == b'/')
            .filter(|n| !n.is_empty() && *n != b".")
            .map(|n| std::ffi::OsStr::from_bytes(n).to_os_string())
            .collect();
        todo.extend(names.into_iter().rev());
    };
    let root_st = match fstat(root) {
        Ok(st) => st,
        Err(e) => return said(Path::new("/"), e.to_string()),
    };
    // Name by name, as the kernel would look them up inside the root:
    // every directory a name is looked up in (one holding a symlink on the
    // way too) must be checked, or whoever may write it could swap that
    // name between this look and the use. One only passed through with
    // `..` is not looked up in. Each directory entered is kept open, so a
    // name costs one lookup whatever the depth, and `..` goes back to the
    // one before (never above the root).
    struct Entered {
        fd: OwnedFd,
        st: FileStat,
        checked: bool,
    }
    let mut todo: Vec<OsString> = vec![];
    push(&mut todo, inside);
    let mut open: Vec<Entered> = vec![];
    let mut root_checked = false;
    let mut at = PathBuf::from("/");
    let mut links = 0;
    let flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    while let Some(name) = todo.pop() {
        if name == ".." {
            if open.pop().is_some() {
                at.pop();
            }
            continue;
        }
        // The directory the name is looked up in: root's alone.
        let (parent, parent_st) = match open.last_mut() {
            Some(e) => {
                if !std::mem::replace(&mut e.checked, true) {
                    if let Some(why) = not_alone(&e.st) {
                        return said(&at, why);
                    }
                }
                (e.fd.as_fd(), e.st)
            }
            None => {
                if !std::mem::replace(&mut root_checked, true) {
                    if let Some(why) = not_alone(&root_st) {
                        return said(&at, why);
                    }
                }
                (root, root_st)
            }
        };
        let next = at.join(&name);
        seen.paths.push(next.clone());
        let found = openat(parent, name.as_os_str(), flags, Mode::empty())
            .and_then(|fd| Ok((fstat(&fd)?, fd)));
        // Only a name that is not there (nothing to read or run) passes
        // outside `strict`; any other failure to look is refused, never
        // taken for nothing.
        let (st, fd) = match found {
            Ok(found) => found,
            Err(e) if matches!(e, Errno::ENOENT | Errno::ENOTDIR) && strict => {
                return said(&next, format!("not found where it leads ({e})"))
            }
            Err(e) if !matches!(e, Errno::ENOENT | Errno::ENOTDIR) => {
                return said(
                    &next,
                    format!("cannot be looked up to check who may write it ({e})"),
                )
            }
            Err(_) => {
                seen.open.push(next);
                return None;
            }
        };
        if st.st_mode & libc::S_IFMT == libc::S_IFLNK {
            // A link of /proc below its root (a process's root, cwd, fd,
            // exe) leads where the process's own does, whatever its text
            // says: not followed, refused. (/proc/self and the like, in
            // /proc itself, are plain links.)
            if is_proc(&fd) && !is_proc_root(parent, &parent_st) {
                // But a descriptor of this process's own (/dev/stderr:
                // /proc/self/fd/2): the program's own, as it inherits them.
                if !strict && todo.is_empty() && is_own_descriptor(&next) {
                    return None;
                }
                return said(
                    &next,
                    "a link of /proc, which leads where its text does not say; not followed".into(),
                );
            }
            links += 1;
            let target = match readlinkat(&fd, "") {
                Ok(t) if links <= 40 => t,
                Ok(_) if strict => return said(&next, "too many symlinks on the way".into()),
                Ok(_) => return None,
                // /proc/self of a pid namespace this process is not in
                // leads nowhere for it, and to the program's own process
                // for the program: only its own descriptor passes
                // (/dev/stderr), nothing reached through it.
                Err(Errno::ENOENT)
                    if !strict
                        && is_proc(&fd)
                        && todo.len() == 2
                        && todo[1] == "fd"
                        && todo[0].as_bytes().iter().all(u8::is_ascii_digit) =>
                {
                    return None;
                }
                Err(e) => return said(&next, e.to_string()),
            };
            if target.as_bytes().starts_with(b"/") {
                open.clear();
                at = PathBuf::from("/");
            }
            push(&mut todo, Path::new(&target));
            continue;
        }
        if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
            if let Some(why) = found_not_alone(&st) {
                return said(&next, why);
            }
            if todo.is_empty() {
                return None;
            }
            // More names to look up in what is no directory: nothing there.
            return match strict {
                true => said(&next, "not found where it leads (not a directory)".into()),
                false => None,
            };
        }
        open.push(Entered {
            fd,
            st,
            checked: false,
        });
        at = next;
    }
    // What the path names, a directory: whoever may write it could put
    // anything in it (and a mount of a run's own below it would).
    seen.open.push(at.clone());
    let (st, checked) = match open.last() {
        Some(e) => (e.st, e.checked),
        None => (root_st, root_checked),
    };
    match checked {
        true => None,
        false => not_alone(&st).and_then(|why| said(&at, why)),
    }
}

/// What tells a root directory apart: its mount id, device and inode.
fn root_identity(root: std::os::fd::BorrowedFd) -> Option<(u64, u64, u64)> {
    let (id, _) = sys::mount_of(root).ok()?;
    let st = nix::sys::stat::fstat(root).ok()?;
    Some((id, st.st_dev, st.st_ino))
}

/// Whether `link` (a path inside the root, found on procfs) names a
/// descriptor of this very process (`/proc/PID/fd/N`, or its thread's),
/// as `/proc/self/fd/N` leads.
fn is_own_descriptor(link: &Path) -> bool {
    let me = std::process::id().to_string();
    let tid = nix::unistd::gettid().to_string();
    let names: Vec<&std::ffi::OsStr> = link.iter().collect();
    match names.as_slice() {
        [.., pid, fd, _] if *fd == "fd" => *pid == me.as_str(),
        [.., pid, task, t, fd, _] if *fd == "fd" && *task == "task" => {
            *pid == me.as_str() && *t == tid.as_str()
        }
        _ => false,
    }
}

/// Whether `dir` (its status `st`) is the root of a proc mount: the
/// root directory's inode, and a mount's root (the inode of a process's
/// directory could wrap around to it).
fn is_proc_root(dir: std::os::fd::BorrowedFd, st: &nix::sys::stat::FileStat) -> bool {
    const PROC_ROOT_INO: u64 = 1;
    st.st_ino == PROC_ROOT_INO && sys::mount_of(dir).is_ok_and(|(_, root)| root)
}

/// Why what a check of chroot.d found (not a symlink, not a directory
/// to go on through) could be written by someone else: [`not_alone`],
/// but for the memory devices (`/dev/null`, `/dev/zero`, `/dev/urandom`:
/// major 1), writable by all and never carrying what is written.
fn found_not_alone(st: &nix::sys::stat::FileStat) -> Option<String> {
    let memory_device = st.st_mode & libc::S_IFMT == libc::S_IFCHR && libc::major(st.st_rdev) == 1;
    match memory_device {
        true => None,
        false => not_alone(st),
    }
}

/// Whether `fd` lies on a proc filesystem.
fn is_proc(fd: &impl AsFd) -> bool {
    nix::sys::statfs::fstatfs(fd)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC)
}

/// Why, for root, DIR (absolute, no symlink in it) could lead elsewhere
/// between the steps of one command: a directory above it, or DIR's own
/// name, that a user other than root (and the one who ran sudo,
/// `SUDO_UID`) may rename. `on` reads tool.conf, checks chroot.d and
/// mounts, each by DIR's path: swapped in between, root would mount what
/// one tree asks into another. `None` for anyone else, whose own
/// sandboxes these are.
pub fn ancestry_refusal(dir: &Path) -> Option<String> {
    ancestry(dir, false)
}

/// [`ancestry_refusal`] for a directory root is about to make in `parent`
/// (an existing directory, canonical): `parent`'s path, and then a new
/// entry of root's in it.
pub fn ancestry_refusal_of_new(parent: &Path) -> Option<String> {
    ancestry(parent, true)
}

/// Root and the user who ran sudo (`SUDO_UID`): whose directories root
/// may trust with the names of its sandboxes.
fn trusted(uid: u32) -> bool {
    uid == 0
        || std::env::var("SUDO_UID")
            .ok()
            .and_then(|v| v.parse::<u32>().ok())
            == Some(uid)
}

/// Who may rename an entry (owned by `child`) of the directory `st`: its
/// owner, or anyone who may write it (`u32::MAX`), unless it is sticky
/// (then only the entry's owner); `None` when only those trusted may.
fn renamable(st: &nix::sys::stat::FileStat, child: &nix::sys::stat::FileStat) -> Option<u32> {
    if !trusted(st.st_uid) {
        return Some(st.st_uid);
    }
    // Group write counts, root's group too: an ACL granting a user write
    // shows there (as its mask).
    let others_write = st.st_mode & 0o022 != 0;
    let sticky = st.st_mode & libc::S_ISVTX != 0;
    match (others_write, sticky) {
        (false, _) => None,
        (true, true) if trusted(child.st_uid) => None,
        (true, true) => Some(child.st_uid),
        (true, false) => Some(u32::MAX),
    }
}

fn who(uid: u32) -> String {
    match uid {
        u32::MAX => "anyone in its group or all".to_string(),
        uid => format!("uid {uid}"),
    }
}

/// Why [`resolve_trusted`] gave no path.
#[derive(Debug)]
pub enum Unresolved {
    /// This name (the path so far) is not there.
    Missing(PathBuf),
    /// Why the path may not be used by root.
    Refused(String),
    /// This name could not be looked at (too long, not a directory...).
    Io(PathBuf, std::io::Error),
}

/// `path` (absolute, as given) resolved as root may use it: one name at a
/// time from `/`, never by the kernel's walk, so that each symbolic link
/// met on the way (and each that a link leads through) is looked at before
/// it is followed: it must be root's or the sudo user's (`SUDO_UID`), in a
/// directory where no one else may replace it, for it decides where the
/// command goes. Returns the real path of the part that exists, and with
/// `missing_ok` the rest of the path, still to be made, as written.
/// Ask [`ancestry_refusal`] of the result: together, nothing on the way
/// can then lead elsewhere.
pub fn resolve_trusted(path: &Path, missing_ok: bool) -> Result<(PathBuf, PathBuf), Unresolved> {
    use nix::sys::stat::{lstat, stat};
    use std::collections::VecDeque;
    use std::ffi::OsString;
    use std::path::Component;
    let names = |p: &Path| -> VecDeque<OsString> {
        p.components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n.to_owned()),
                Component::ParentDir => Some(OsString::from("..")),
                _ => None,
            })
            .collect()
    };
    let mut todo = names(path);
    let mut at = PathBuf::from("/");
    let mut links = 0;
    while let Some(name) = todo.pop_front() {
        if name == ".." {
            at.pop();
            continue;
        }
        let p = at.join(&name);
        let st = match lstat(&p) {
            Ok(st) => st,
            Err(nix::errno::Errno::ENOENT) if missing_ok => {
                let rest: PathBuf = std::iter::once(name).chain(todo).collect();
                return Ok((at, rest));
            }
            Err(nix::errno::Errno::ENOENT) => return Err(Unresolved::Missing(p)),
            Err(e) => return Err(Unresolved::Io(p, e.into())),
        };
        if st.st_mode & libc::S_IFMT != libc::S_IFLNK {
            at = p;
            continue;
        }
        links += 1;
        if links > 40 {
            return Err(Unresolved::Refused(format!(
                "{}: too many symbolic links",
                show::path(path)
            )));
        }
        if !trusted(st.st_uid) {
            return Err(Unresolved::Refused(format!(
                "{} is a symbolic link of uid {}, which would decide where this command goes; give the real path",
                show::path(&p),
                st.st_uid
            )));
        }
        let parent = stat(&at).map_err(|e| Unresolved::Io(at.clone(), e.into()))?;
        if let Some(uid) = renamable(&parent, &st) {
            return Err(Unresolved::Refused(format!(
                "{} is a symbolic link where {} may replace it (and so decide where this command goes); give the real path",
                show::path(&p),
                who(uid)
            )));
        }
        let to = std::fs::read_link(&p).map_err(|e| Unresolved::Io(p.clone(), e))?;
        if to.is_absolute() {
            at = PathBuf::from("/");
        }
        let mut next = names(&to);
        next.extend(todo);
        todo = next;
    }
    Ok((at, PathBuf::new()))
}

fn ancestry(dir: &Path, new_below: bool) -> Option<String> {
    use nix::sys::stat::lstat;
    if !crate::audit::invoked_as_root() {
        return None;
    }
    // Whatever cannot be looked at is refused: a name renamed away for a
    // moment would otherwise pass, and be back for the steps after.
    let look =
        |p: &Path| lstat(p).map_err(|e| format!("{}: cannot be looked at ({e})", show::path(p)));
    let mut at = PathBuf::from("/");
    let mut st = match look(&at) {
        Ok(st) => st,
        Err(why) => return Some(why),
    };
    for name in dir.iter().skip(1) {
        let next = at.join(name);
        let child = match look(&next) {
            Ok(st) => st,
            Err(why) => return Some(why),
        };
        if let Some(uid) = renamable(&st, &child) {
            return Some(format!(
                "{} lies in {}, where {} may rename it or what leads to it (and so swap the tree this command acts on, between its steps); keep sandboxes below directories only root may write",
                show::path(&next),
                show::path(&at),
                who(uid)
            ));
        }
        at = next;
        st = child;
    }
    // What root makes is root's: only who may write `dir` may rename it.
    let mut made = st;
    made.st_uid = 0;
    let uid = new_below.then(|| renamable(&st, &made)).flatten()?;
    Some(format!(
        "{} is a directory where {} may rename what root makes in it (and so swap the tree this command acts on, between its steps); keep sandboxes below directories only root may write",
        show::path(dir),
        who(uid)
    ))
}

/// Whether `dir` holds a root filesystem: `/bin/sh` resolved inside it.
pub fn holds_a_shell(dir: &Path) -> bool {
    sys::open_root(dir)
        .and_then(|r| sys::resolve_in_root(r.as_fd(), Path::new("/bin/sh")))
        .is_ok()
}

/// Why a file or directory others than the invoking user (or root) may
/// have written is not to be read or run as that user: its owner, or its
/// write bits.
pub fn not_alone(st: &nix::sys::stat::FileStat) -> Option<String> {
    let me = nix::unistd::geteuid().as_raw();
    if st.st_uid != 0 && st.st_uid != me {
        return Some(format!("owned by uid {}", st.st_uid));
    }
    (st.st_mode & 0o022 != 0).then(|| "writable by group or others".to_string())
}

/// The error of a refused directory.
fn refused(dir: &Path, why: &str) -> anyhow::Error {
    anyhow::anyhow!("refusing {}: {why}", show::path(dir))
}

/// The password entry of the real user id, looked up once per process
/// (the sandbox check and the history both need it): in the host's
/// /etc/passwd first (one read, which `run` pays on every call), then
/// through NSS (nscd, LDAP...) for a user it does not list.
pub fn real_user() -> Option<&'static nix::unistd::User> {
    static USER: std::sync::OnceLock<Option<nix::unistd::User>> = std::sync::OnceLock::new();
    USER.get_or_init(|| {
        let uid = crate::audit::invoking_uid();
        local_user(uid).or_else(|| {
            nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
                .ok()
                .flatten()
        })
    })
    .as_ref()
}

/// `uid`'s entry in the host's /etc/passwd.
fn local_user(uid: u32) -> Option<nix::unistd::User> {
    use std::ffi::{CString, OsStr};
    use std::os::unix::ffi::OsStrExt;
    let mut text = Vec::new();
    sys::open_file(Path::new("/etc/passwd"), nix::fcntl::OFlag::O_RDONLY, 0)
        .and_then(|mut f| std::io::Read::read_to_end(&mut f, &mut text))
        .ok()?;
    let p = crate::launch::user::parse_passwd(&text)
        .into_iter()
        .find(|p| p.uid == uid)?;
    Some(nix::unistd::User {
        name: String::from_utf8(p.name).ok()?,
        passwd: CString::default(),
        uid: nix::unistd::Uid::from_raw(p.uid),
        gid: nix::unistd::Gid::from_raw(p.gid),
        gecos: CString::default(),
        dir: PathBuf::from(OsStr::from_bytes(&p.home)),
        shell: PathBuf::from(OsStr::from_bytes(&p.shell)),
    })
}

/// The homes of the invoking user: `$HOME`, the home of `$SUDO_USER`, and
/// the password entry of the real user id.
fn homes() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = vec![];
    if let Some(h) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        out.push(h.into());
    }
    if let Some(name) = std::env::var_os("SUDO_USER") {
        if let Some(Ok(Some(u))) = name.to_str().map(nix::unistd::User::from_name) {
            out.push(u.dir);
        }
    }
    if let Some(u) = real_user() {
        out.push(u.dir.clone());
    }
    out.into_iter()
        .map(|h| crate::sys::canonicalize(&h).unwrap_or(h))
        .collect()
}

/// What [`Sandbox::ensure_on`] found or did.
pub enum Ensured {
    /// It was on: DIR as opened and checked, the root to enter.
    On(std::os::fd::OwnedFd),
    /// It was turned on now.
    TurnedOn(engine::OnReport),
}

#[derive(Debug, Clone)]
pub struct Sandbox {
    /// Absolute, canonical host path of the root filesystem.
    pub dir: PathBuf,
}

/// How much of a root filesystem a command needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// on/run/shell: a root filesystem with /bin/sh.
    Rootfs,
    /// pack/destroy: any existing directory.
    Dir,
    /// off/status: any existing directory (a broken rootfs can still be
    /// turned off), and one that is on wherever it lies.
    Teardown,
}

impl Sandbox {
    /// DIR from `-d` or `$CHROOT_TOOL_DIR` (already merged by the CLI); never guessed.
    pub fn open(dir: Option<&Path>, need: Need) -> Result<Sandbox> {
        let Some(given) = dir else {
            return Err(crate::cli::Usage(crate::cli::NO_DIR.into()).into());
        };
        if given.as_os_str().is_empty() {
            bail!("empty sandbox path: pass -d DIR");
        }
        // Root resolves DIR itself, a name at a time: a symlink on the way
        // chooses the directory, so each must be one only root (or the
        // sudo user) may have made and may change.
        let resolved = if crate::audit::invoked_as_root() {
            match std::path::absolute(given).map(|a| resolve_trusted(&a, false)) {
                Ok(Ok((d, _))) => Ok(d),
                Ok(Err(Unresolved::Refused(why))) => return Err(refused(given, &why)),
                Ok(Err(Unresolved::Missing(_))) => {
                    Err(std::io::Error::from(std::io::ErrorKind::NotFound))
                }
                Ok(Err(Unresolved::Io(_, e))) | Err(e) => Err(e),
            }
        } else {
            crate::sys::canonicalize(given)
        };
        let dir = match resolved {
            Ok(d) => d,
            // The reason is said once, in words of our own.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
                "{}: no such directory (make one with `chroot-tool create -d DIR`)",
                crate::show::path(given)
            ),
            Err(e) => {
                return Err(e).with_context(|| {
                    format!(
                        "{}: no such directory (make one with `chroot-tool create -d DIR`)",
                        crate::show::path(given)
                    )
                })
            }
        };
        if !dir.is_dir() {
            bail!("{}: not a directory", crate::show::path(&dir));
        }
        if dir == Path::new("/") {
            bail!(
                "refusing to use / as a sandbox: pass the directory that holds the root filesystem"
            );
        }
        let sb = Sandbox { dir };
        // Root asks who may rename a name on DIR's path first, even of a
        // sandbox that is on: else a user could swap their own tree and a
        // link to a sandbox that is on, between the look at DIR's links and
        // the look at the record, and root would act on their tree. Only
        // `off` and `status` of a sandbox that is on skip it: turning off
        // must always be possible.
        let teardown = need == Need::Teardown;
        if !teardown {
            if let Some(why) = ancestry_refusal(&sb.dir) {
                return Err(refused(&sb.dir, &why));
            }
        }
        // Turned on by `on` (its recorded self-bind on top at DIR): checked
        // then, root filesystem and all (the lean path of `run`; what DIR
        // leads to is then checked against that record before use).
        if engine::recorded_on(&sb.dir) {
            return Ok(sb);
        }
        if teardown {
            if let Some(why) = ancestry_refusal(&sb.dir) {
                return Err(refused(&sb.dir, &why));
            }
        }
        let shell = refusal_or_shell(&sb.dir).map_err(|why| refused(&sb.dir, &why))?;
        if need == Need::Rootfs && !shell && !crate::overlay::is_overlay(&sb.dir) {
            engine::refuse_cover_now(&sb.dir)?;
            bail!(
                "{}: not a root filesystem (no /bin/sh inside); make one with `chroot-tool create -d DIR`",
                crate::show::path(&sb.dir)
            );
        }
        Ok(sb)
    }

    /// Refuses a directory that may not be treated as a sandbox (see
    /// [`refusal`]): every verb checks it before it acts.
    pub fn check(&self) -> Result<()> {
        match refusal(&self.dir) {
            Some(why) => Err(refused(&self.dir, &why)),
            None => Ok(()),
        }
    }

    /// What `destroy` checks before it ends or deletes anything: nothing is
    /// mounted at or below DIR that `off` would leave (a mount the user
    /// made), and DIR, or a part of it, is not mounted anywhere else (a
    /// bind of it, perhaps a sandbox turned on there).
    pub fn check_delete(&self) -> Result<()> {
        let holder = crate::holder::state(&self.dir).map(|h| h.mount_namespace());
        if let Some(pid) = crate::owned::on_elsewhere(&self.dir, holder) {
            let whose = match pid {
                0 => "one this pid namespace cannot see into".to_string(),
                pid => format!("that of pid {pid}"),
            };
            bail!(
                "{}: it is on in another mount namespace ({whose}); nothing was stopped and nothing was deleted: turn it off there first",
                show::path(&self.dir)
            );
        }
        let mounts = mountinfo::read().context("reading /proc/self/mountinfo")?;
        let own = engine::own_mounts(&self.dir, &mounts);
        let foreign: Vec<String> = mountinfo::under(&mounts, &self.dir)
            .into_iter()
            .filter(|m| !own.contains(&m.id))
            // DIR itself a filesystem the user mounted there: destroy
            // empties it and leaves it (remove::remove_tree), so it is no
            // reason to refuse; a bind of another directory on DIR is.
            .filter(|m| !(m.point == self.dir && mountinfo::is_whole_and_alone(m, &mounts)))
            .filter(|m| !own.is_empty() || m.point == self.dir)
            .map(|m| show::path(&m.point))
            .collect();
        if !foreign.is_empty() {
            bail!(
                "{}: mounted at or below it, not by `on`: {}; nothing was stopped and nothing was deleted: {}unmount them, then run destroy again",
                show::path(&self.dir),
                foreign.join(" "),
                if own.is_empty() { "" } else { "turn the sandbox off (`off` keeps them), " }
            );
        }
        let fd = sys::open_path(&self.dir)
            .with_context(|| format!("opening {}", show::path(&self.dir)))?;
        let (id, _) = sys::mount_of(fd.as_fd())
            .with_context(|| format!("finding the mount of {}", show::path(&self.dir)))?;
        let here = mounts.iter().find(|m| m.id == id);
        let Some((here, rel)) = here.and_then(|m| Some((m, self.dir.strip_prefix(&m.point).ok()?)))
        else {
            bail!(
                "{}: cannot tell which mount it lies on; nothing was deleted",
                show::path(&self.dir)
            );
        };
        let object = here.root.join(rel);
        let elsewhere: Vec<String> = mounts
            .iter()
            .filter(|m| m.dev == here.dev && m.root.starts_with(&object))
            .filter(|m| !mountinfo::is_at_or_below(&m.point, &self.dir))
            .map(|m| show::path(&m.point))
            .collect();
        if !elsewhere.is_empty() {
            bail!(
                "{}: it or a part of it is also mounted at {}; nothing was stopped and nothing was deleted: turn it off and unmount it there, then run destroy again",
                show::path(&self.dir),
                elsewhere.join(" ")
            );
        }
        Ok(())
    }

    /// Does `/bin/sh` resolve inside the root?
    pub fn has_shell(&self) -> bool {
        holds_a_shell(&self.dir)
    }

    pub fn chroot_d(&self) -> PathBuf {
        self.dir.join("chroot.d")
    }

    /// tool.conf, or an empty one when the sandbox has none. What it says
    /// is wrong but not fatal goes to `warn`; a `conf.sh` of the original
    /// tool, which is not executed, is noted to `note`.
    pub fn conf_with(
        &self,
        warn: &mut dyn FnMut(String),
        note: &mut dyn FnMut(String),
    ) -> Result<Conf> {
        let cd = self.chroot_d();
        if let Ok(root) = sys::open_root(&self.dir) {
            if let Some(msg) = crate::conf::conf_sh_notice(root.as_fd(), &cd) {
                note(msg);
            }
        }
        let conf = Conf::load_in_root(&self.dir)?.unwrap_or_default();
        for w in &conf.warnings {
            warn(w.clone());
        }
        for r in conf.section("run") {
            for (k, _) in r
                .pairs
                .iter()
                .filter(|(k, _)| !crate::conf::RUN_APPLIED.contains(&k.as_str()))
            {
                warn(format!(
                    "{}:{}: [run] key {} is not applied by this version; ignored (applied: {})",
                    crate::show::path(cd.join("tool.conf")),
                    r.line,
                    crate::show::quote(k),
                    crate::conf::RUN_APPLIED.join(", ")
                ));
            }
        }
        Ok(conf)
    }

    /// What `on` mounts for this sandbox; what tool.conf says that is wrong
    /// but not fatal goes to `warn`.
    pub fn plan(&self, warn: &mut dyn FnMut(String)) -> Result<Vec<Op>> {
        let mut said = vec![];
        let mut notes = vec![];
        let conf = self.conf_with(&mut |w| said.push(w), &mut |n| notes.push(n));
        said.into_iter().chain(notes).for_each(&mut *warn);
        self.plan_of(&conf?)
    }

    /// Turns the sandbox on (the caller holds its lock); `on_now`: whether
    /// it is on, when the caller has just found out.
    pub fn turn_on(&self, plan: &[Op], on_now: Option<bool>) -> Result<engine::OnReport> {
        // Asked under the lock: an `on` of DIR attaches a copy of DIR on
        // its self-bind for a moment (`engine::self_bind`), which a look
        // from outside the lock would take for a cover.
        engine::refuse_cover_now(&self.dir)?;
        if let Some(why) = control_refusal(&self.dir) {
            bail!(
                "{why}: chroot.d says what is mounted from the host and run as {}, so no one else may be able to write it (or DIR, or a directory on the way); nothing was mounted",
                if crate::audit::invoked_as_root() { "root" } else { "you" }
            );
        }
        if !crate::holder::in_setup() {
            self.refuse_base_in_use()?;
        }
        let mut report = engine::turn_on(&self.dir, plan, on_now)?;
        if let Err(e) = self.host_name_resolves() {
            report.warnings.push(format!(
                "{}; `sudo` inside may say \"unable to resolve host\"",
                show::error_line([e.to_string()])
            ));
        }
        Ok(report)
    }

    /// Refuses to turn on a sandbox that is the BASE of overlay sandboxes
    /// that are on.
    fn refuse_base_in_use(&self) -> Result<()> {
        let users = crate::overlay::users_on(&self.dir);
        if !users.is_empty() {
            let list: Vec<String> = users.iter().map(show::path).collect();
            bail!(
                "{}: it is the base of overlay sandboxes that are on ({}), and must not change under them: turn them off first; nothing was mounted",
                show::path(&self.dir),
                list.join(" ")
            );
        }
        Ok(())
    }

    /// What a holder's `on` cannot ask from inside its namespaces, asked
    /// before it starts: this sandbox is no BASE of overlays that are on;
    /// as an overlay, its BASE is not on (checked as `on` opens it), and
    /// BASE's lock, held until the holder is ready, is given back.
    pub fn overlay_guards(&self) -> Result<Option<crate::lock::Lock>> {
        self.refuse_base_in_use()?;
        let Some(rec) = crate::overlay::read(&self.dir)? else {
            return Ok(None);
        };
        let lock = crate::lock::exclusive_of((rec.dev, rec.ino), &rec.base)?;
        crate::overlay::open_base(&rec)?;
        Ok(Some(lock))
    }

    /// The sandbox shares the host's hostname: its /etc/hosts must resolve
    /// it (`create` wrote one for a name made from DIR's; the host's may
    /// change). A line is added when none does (see `setup::add_host_name`).
    fn host_name_resolves(&self) -> Result<()> {
        use crate::create::setup::{add_host_name, Root};
        let name = nix::unistd::gethostname()?;
        let Some(name) = name.to_str() else {
            return Ok(());
        };
        let root = Root::open(&self.dir)?;
        add_host_name(&root, name)?;
        Ok(())
    }

    /// What `run` and `shell` do first (the caller holds the lock): nothing
    /// when the sandbox already looks on (the lean path: its root, as
    /// checked, is given back), else the full `on` (its report).
    pub fn ensure_on(&self, plan: &[Op]) -> Result<Ensured> {
        if let Some(root) = engine::lean_root(&self.dir, plan) {
            return Ok(Ensured::On(root));
        }
        self.turn_on(plan, None).map(Ensured::TurnedOn)
    }

    /// What `on` mounts for this sandbox, given its tool.conf.
    pub fn plan_of(&self, conf: &Conf) -> Result<Vec<Op>> {
        // The kernel's list checks `fs:` types other than bind and tmpfs
        // only: not read for a tool.conf without them (every `run`'s case).
        let other_fs = conf
            .binds
            .iter()
            .any(|b| matches!(b.fs, crate::conf::FsKind::Other(_)));
        let filesystems = if other_fs {
            std::fs::read_to_string("/proc/filesystems").context("reading /proc/filesystems")?
        } else {
            String::new()
        };
        let resolv = crate::sys::canonicalize("/etc/resolv.conf")
            .ok()
            .filter(|p| p.is_file());
        let conf_path = self.chroot_d().join("tool.conf");
        plan::build(&conf.binds, resolv.as_deref(), &filesystems)
            .with_context(|| format!("{}: nothing was mounted", crate::show::path(&conf_path)))
    }

    /// Is `chroot.d/NAME` an executable file (looked up inside the root)?
    pub fn has_command(&self, name: &str) -> bool {
        self.chroot_d_file(name)
            .is_some_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }

    /// Metadata of `chroot.d/NAME`, the path resolved inside the root.
    pub fn chroot_d_file(&self, name: &str) -> Option<std::fs::Metadata> {
        self.chroot_file(Path::new("/chroot.d").join(name))
    }

    /// Metadata of a path inside the root, resolved inside it.
    pub fn chroot_file(&self, path: impl AsRef<Path>) -> Option<std::fs::Metadata> {
        let root = sys::open_root(&self.dir).ok()?;
        let fd = sys::resolve_in_root(root.as_fd(), path.as_ref()).ok()?;
        std::fs::metadata(sys::fd_path(fd.as_fd())).ok()
    }
}

/// What [`Sandbox::switch_on`] found or did.
#[derive(Debug)]
pub enum Switched {
    /// It was on already with this holder; nothing was done. `differs`:
    /// it owns other namespaces than were asked for.
    Held {
        holder: crate::holder::HolderInfo,
        differs: bool,
    },
    /// Mounted in our mount namespace: `mounted` mounts made now (the
    /// self-bind at DIR and what lies on it), `already` found as planned;
    /// `was_on`: it was on before (so `start` did not run again).
    Mounted {
        mounted: usize,
        already: usize,
        was_on: bool,
    },
    /// A holder was started now and keeps it on.
    Started(crate::holder::HolderInfo),
}

impl Switched {
    /// Whether this call turned the sandbox on (it was off before).
    pub fn turned_on(&self) -> bool {
        match self {
            Switched::Held { .. } => false,
            Switched::Mounted { was_on, .. } => !was_on,
            Switched::Started(_) => true,
        }
    }
}

impl Sandbox {
    /// `on`: mounts what the plan of `conf` says in our mount namespace,
    /// or starts a holder that keeps them in namespaces of its own (a
    /// normal user, `userns`, `ns` or `[run] namespaces`). Idempotent. The
    /// caller then runs [`Sandbox::start`] when it [`Switched::turned_on`]
    /// the sandbox. The caller
    /// holds the lock (`_guard`); warnings go to `warn`, notes to `note`.
    pub fn switch_on(
        &self,
        conf: &Conf,
        userns: bool,
        ns: Option<crate::conf::NsSet>,
        _guard: &crate::lock::Lock,
        warn: &mut dyn FnMut(String),
        note: &mut dyn FnMut(String),
    ) -> Result<Switched> {
        use crate::holder::{self, Found};
        let spec = holder::spec_for(conf, userns, ns)?;
        let found = holder::find_or_scan(&self.dir);
        match &found {
            Found::Died(Some(left)) => return Err(left.refusal(&self.dir)),
            Found::Died(None) => note(format!(
                "the holder of {} had ended (killed, or a reboot); its pid file was removed",
                show::path(&self.dir)
            )),
            _ => {}
        }
        if let Found::Alive(h) = found {
            let want = spec.as_ref().map(|s| (s.userns.is_some(), s.ns));
            let differs =
                want.is_some_and(|w| w != (h.userns, h.ns)) || (want.is_none() && ns.is_some());
            return Ok(Switched::Held { holder: h, differs });
        }
        let Some(spec) = spec else {
            // Counted as `off` counts: the sandbox's own mounts (the
            // self-bind at DIR and every mount on it), so that `on` then
            // `off` say the same number: those this call made, or, when it
            // attached whole trees, as the mount table says after and before.
            let own = || -> Result<usize> {
                Ok(engine::own_mounts(&self.dir, &engine::table_at(&self.dir)?).len())
            };
            // Off, as a rule, DIR is no mount point: no table to read.
            let table = match engine::is_mount_point(&self.dir)? {
                true => Some(engine::table_at(&self.dir)?),
                false => None,
            };
            let was_on = table.as_ref().is_some_and(|m| engine::is_on(&self.dir, m));
            let before = table.map_or(0, |m| engine::own_mounts(&self.dir, &m).len());
            let report = self.turn_on(&self.plan_of(conf)?, Some(was_on))?;
            for d in report.differs.iter().chain(&report.warnings) {
                warn(show::error_line([d]));
            }
            let mounted = match report.made {
                Some(n) => n,
                None => own()?.saturating_sub(before),
            };
            return Ok(Switched::Mounted {
                mounted,
                already: report.already,
                was_on,
            });
        };
        if engine::has_self_bind(&self.dir, &engine::table_at(&self.dir)?) {
            bail!(
                "{} is on without a holder (mounted in this mount namespace); turn it off first to turn it on with one",
                show::path(&self.dir)
            );
        }
        if let Some(w) = spec.userns.as_ref().and_then(|m| m.warning()) {
            warn(w);
        }
        let started = holder::start(self, &spec, &self.plan_of(conf)?)?;
        for w in &started.warnings {
            warn(show::error_line([w]));
        }
        Ok(Switched::Started(started.info))
    }

    /// Dispatches `start` inside (through the holder of `switched`, if
    /// any) when chroot.d/start exists; a failure is a warning.
    pub fn start(&self, switched: &Switched, warn: &mut dyn FnMut(String)) {
        use crate::launch::{enter, exit_code};
        let h = match switched {
            Switched::Held { holder, .. } | Switched::Started(holder) => Some(holder),
            Switched::Mounted { .. } => None,
        };
        let Some(res) = enter::start(self, h) else {
            return;
        };
        let code = exit_code(&res);
        match res {
            // What says why it was not run, once.
            Err(e @ crate::launch::ExecError::Setup { .. }) => warn(format!("start: {e}")),
            Err(e) => warn(format!("start: {}", show::error_chain(&e))),
            Ok(_) if code != 0 => warn(format!("start exited with status {code}")),
            Ok(_) => {}
        }
    }
}

/// What `off` did.
pub struct OffReport {
    pub mounts: usize,
    pub processes: usize,
}

impl Sandbox {
    /// Turns the sandbox off: `stop` inside (ended past `grace`), every
    /// process inside ended (TERM, `grace`, KILL), what `on` mounted
    /// unmounted and checked. The caller holds its lock (`_guard`) and may
    /// keep it for what comes next (destroy). Warnings go to `warn`.
    pub fn turn_off(
        &self,
        grace: std::time::Duration,
        _guard: &crate::lock::Lock,
        warn: &mut dyn FnMut(String),
        note: &mut dyn FnMut(String),
    ) -> Result<OffReport> {
        crate::owned::within_one_operation(|| self.turn_off_now(grace, warn, note))
    }

    fn turn_off_now(
        &self,
        grace: std::time::Duration,
        warn: &mut dyn FnMut(String),
        note: &mut dyn FnMut(String),
    ) -> Result<OffReport> {
        let mut say = |n: usize, left: std::time::Duration| {
            note(format!(
                "waiting up to {} for {} to end (TERM sent; KILL after --timeout)",
                seconds(left),
                match n {
                    1 => "1 process".to_string(),
                    n => format!("{n} processes"),
                }
            ))
        };
        // Processes a holder that was killed left behind (ended first).
        let mut orphans = 0;
        let mut ending = Ending::default();
        match crate::holder::find_or_scan(&self.dir) {
            crate::holder::Found::Alive(h) => {
                self.stop(grace, Some(&h), warn);
                let ended = crate::holder::turn_off(&self.dir, h, grace, &mut say)?;
                return Ok(OffReport {
                    mounts: ended.mounts,
                    processes: ended.processes,
                });
            }
            crate::holder::Found::Died(Some(left)) => {
                warn(format!(
                    "the holder of {} had ended (killed); ending the processes it left in the sandbox ({})",
                    show::path(&self.dir),
                    left.listed()
                ));
                let (processes, alive) = left.end(grace, &mut say);
                ending.add(vec![], alive);
                ending.refuse_alive()?;
                orphans = processes;
            }
            crate::holder::Found::Died(None) => warn(format!(
                "the holder of {} had ended (killed, or a reboot); its pid file was removed",
                show::path(&self.dir)
            )),
            crate::holder::Found::None => {}
        }
        let mut table = engine::Table::for_off(&self.dir)?;
        // What covers DIR hides the sandbox's own mounts and its `stop`,
        // and may be a bind of a host directory whose mounts propagate:
        // nothing is stopped, ended or unmounted through it.
        engine::refuse_cover(&self.dir, &table.mounts)?;
        // The plan (tool.conf) decides only for a sandbox without a self-bind.
        let plan = if engine::self_binds(&self.dir, &table.mounts).is_empty() {
            self.plan(warn).ok()
        } else {
            None
        };
        let before = engine::ours(&self.dir, plan.as_deref(), &table.mounts).len();
        // The table is read again whenever something ran inside since (a
        // `stop`, a process ended on its TERM) and could have mounted or
        // unmounted; otherwise the one above still holds.
        if engine::is_on(&self.dir, &table.mounts) && self.stop(grace, None, warn) {
            crate::owned::anything_may_have_changed();
            table = table.again(&self.dir)?;
        }
        // What was started inside is in the sandbox's cgroup; every
        // process of the host is looked at only when something was started
        // outside it, or entered by other means and keeps a mount busy.
        use crate::cgroup::track;
        let id = track::id_at(&self.dir, &engine::self_binds(&self.dir, &table.mounts));
        let tracked = track::end(id, grace, &mut say);
        ending.add(tracked.processes, tracked.alive);
        let mut look = |ending: &mut Ending, table: &engine::Table| -> Result<()> {
            let (ended, alive) = crate::procs::end_all(&self.dir, &table.mounts, grace, &mut say)
                .context("finding the processes inside")?;
            ending.add(ended, alive);
            ending.refuse_alive()
        };
        let looked = !tracked.complete;
        if looked {
            look(&mut ending, &table)?;
        }
        ending.refuse_alive()?;
        if !ending.ended.is_empty() {
            crate::owned::anything_may_have_changed();
            table = table.again(&self.dir)?;
        }
        // Without the look at every process, DIR's self-bind, when busy,
        // is left for it rather than detached: what keeps it may be a
        // process rooted there that entered by hand (`chroot DIR`).
        let mut left = engine::unmount_ours(&self.dir, plan.as_deref(), table, looked)?;
        if !left.is_empty() && !looked {
            crate::owned::anything_may_have_changed();
            let mut table = engine::Table::for_off(&self.dir)?;
            let before = ending.ended.len();
            look(&mut ending, &table)?;
            if ending.ended.len() > before {
                crate::owned::anything_may_have_changed();
                table = table.again(&self.dir)?;
            }
            left = engine::unmount_ours(&self.dir, plan.as_deref(), table, true)?;
        }
        if left.is_empty() {
            track::forget(id);
        }
        if !left.is_empty() {
            let list: Vec<String> = left.iter().map(show::path).collect();
            bail!(
                "still mounted after off: {}; something outside the sandbox uses them (see `fuser -vm PATH`); then run `chroot-tool off` again",
                list.join(" ")
            );
        }
        Ok(OffReport {
            mounts: before,
            processes: ending.ended.len() + orphans,
        })
    }

    /// Dispatches `stop` inside when the sandbox has one; past the grace
    /// period it is ended, so a hanging stop never hangs `off`. Whether
    /// it ran (something inside did).
    fn stop(
        &self,
        grace: std::time::Duration,
        h: Option<&crate::holder::HolderInfo>,
        warn: &mut dyn FnMut(String),
    ) -> bool {
        use crate::launch::{exit_code, ExecError};
        let Some(res) = crate::launch::enter::stop(self, grace, h) else {
            return false;
        };
        let code = exit_code(&res);
        match res {
            Err(e @ ExecError::TimedOut { .. }) => {
                warn(format!("stop {e} (--timeout); turning off anyway"))
            }
            Err(e @ ExecError::Setup { .. }) => warn(format!("stop: {e}; turning off anyway")),
            _ if code != 0 => warn(format!(
                "stop exited with status {code}; turning off anyway"
            )),
            _ => {}
        }
        true
    }
}

/// A duration as people say it: `5 s`, `0.5 s`.
fn seconds(d: std::time::Duration) -> String {
    let s = (d.as_secs_f64() * 10.0).round() / 10.0;
    if s.fract() == 0.0 {
        format!("{s:.0} s")
    } else {
        format!("{s:.1} s")
    }
}

/// The processes `off` has ended so far (each once, however it found
/// it), and those it could not end.
#[derive(Default)]
struct Ending {
    ended: std::collections::BTreeSet<i32>,
    alive: Vec<crate::procs::Proc>,
}

impl Ending {
    fn add(&mut self, ended: Vec<i32>, alive: Vec<crate::procs::Proc>) {
        self.ended.extend(ended);
        for p in alive {
            if self.alive.iter().all(|a| a.pid != p.pid) {
                self.alive.push(p);
            }
        }
    }

    /// A process that could not be ended (stopped in a frozen cgroup, in
    /// an uninterruptible wait) keeps the sandbox on: nothing is unmounted
    /// under it, or detached from it.
    fn refuse_alive(&self) -> Result<()> {
        if !self.alive.is_empty() {
            bail!(
                "processes that could not be ended: {}; then run `chroot-tool off` again",
                crate::procs::named(&self.alive)
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_names_what_is_not_a_sandbox() {
        for d in ["/", "/dev", "/sys", "/proc", "/etc", "/usr"] {
            assert!(refusal(Path::new(d)).is_some(), "{d}");
        }
        let t = tempfile::tempdir().unwrap();
        let dir = std::fs::canonicalize(t.path()).unwrap();
        assert_eq!(refusal(&dir), None, "an empty directory");
        std::fs::write(dir.join("notes"), "x").unwrap();
        let why = refusal(&dir).expect("a data directory");
        assert!(why.starts_with("not a root filesystem"), "{why}");
        std::fs::create_dir(dir.join("chroot.d")).unwrap();
        assert_eq!(refusal(&dir), None, "chroot.d/ marks a sandbox");
    }
}
