//! Who is who inside a user namespace, and whether the host lets a normal
//! user make one.
//!
//! Policy first: [`parse`] reads `/etc/subuid` or `/etc/subgid` text and
//! [`IdMap`] is the mapping plan built from it: root inside is the invoking
//! user outside; with a subordinate range, ids `1..=N` inside are the range
//! (several ranges follow one another). Without a range the plan is a single
//! mapping and [`IdMap::warning`] says what will not work and how to add one.
//!
//! Mechanism: [`IdMap::write_for`] writes a child's `uid_map`/`gid_map` after
//! it unshared its user namespace (the child waits, e.g. on a pipe, until
//! this returns): through the setuid `newuidmap`/`newgidmap`, executed by a
//! descriptor checked to be a root-owned file nobody else can write, when
//! there is a range; directly into `/proc/PID/` otherwise (`setgroups` denied
//! first, as the kernel requires of an unprivileged writer).
//!
//! [`check_userns`] says, before anything is attempted, when the host
//! disables or restricts unprivileged user namespaces, and what to do.
//!
//! ```text
//! let map = idmap::for_user(uid, gid, &name)?;      // reads /etc/subuid, /etc/subgid
//! if let Some(w) = map.warning() { eprintln!("chroot-tool: {w}") }  // commands print
//! idmap::check_userns()?;                           // before unshare(CLONE_NEWUSER)
//! map.write_for(child_pid)?;                        // after the child unshared
//! ```
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use crate::show;

/// Where the subordinate ranges are kept.
pub const SUBUID: &str = "/etc/subuid";
pub const SUBGID: &str = "/etc/subgid";

/// The kernel takes at most 340 lines in a map; more ranges than this for
/// one user are ignored (nobody has that many).
const MAX_RANGES: usize = 64;
/// Largest subuid/subgid file read.
const FILE_CAP: u64 = 4 << 20;

/// One line of a map: `count` ids from `inside` are `outside..` on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    pub inside: u32,
    pub outside: u32,
    pub count: u32,
}

/// A subordinate range: `count` ids from `start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub start: u32,
    pub count: u32,
}

/// The ranges of `/etc/subuid`-format `text` that belong to the user
/// `name` or to the uid `id` (shadow accepts either in the first field), in
/// file order. Comments, blank lines and malformed lines (wrong number of
/// fields, non-numbers, a zero count, a range past the last id) are skipped.
pub fn parse(text: &str, name: &str, id: u32) -> Vec<Range> {
    let id = id.to_string();
    let mut out = vec![];
    for line in text.lines() {
        let mut f = line.split(':');
        let (Some(owner), Some(start), Some(count), None) =
            (f.next(), f.next(), f.next(), f.next())
        else {
            continue;
        };
        if owner.is_empty() || (owner != name && owner != id) {
            continue;
        }
        let (Ok(start), Ok(count)) = (start.parse::<u32>(), count.parse::<u32>()) else {
            continue;
        };
        if count == 0 || start.checked_add(count - 1).is_none() {
            continue;
        }
        out.push(Range { start, count });
        if out.len() == MAX_RANGES {
            break;
        }
    }
    out
}

/// One side (uids or gids) of the plan: root inside is `own`, then the
/// ranges one after another from id 1.
fn extents(own: u32, ranges: &[Range]) -> Vec<Extent> {
    let mut out = vec![Extent {
        inside: 0,
        outside: own,
        count: 1,
    }];
    let mut next: u32 = 1;
    for r in ranges {
        let room = u32::MAX - next;
        if room == 0 {
            break;
        }
        let count = r.count.min(room);
        out.push(Extent {
            inside: next,
            outside: r.start,
            count,
        });
        next += count;
    }
    out
}

/// The mapping plan for one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdMap {
    pub user: String,
    pub uid: u32,
    pub gid: u32,
    /// Lines of `uid_map` and `gid_map`, in order.
    pub uids: Vec<Extent>,
    pub gids: Vec<Extent>,
    kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Root outside: every id is itself inside.
    Identity,
    /// Root inside is the user; the subordinate ranges follow.
    Ranges,
    /// Only root inside is mapped (no range in /etc/subuid or /etc/subgid).
    Single,
}

#[derive(Debug, thiserror::Error)]
pub enum IdMapError {
    #[error("reading {}: {source}", show::path(path))]
    Read { path: PathBuf, source: io::Error },
    #[error("{name} is not installed (it maps the subordinate ids of /etc/subuid and /etc/subgid): apt-get install uidmap")]
    NoHelper { name: &'static str },
    #[error("refusing to run {}: {why}", show::path(path))]
    UnsafeHelper { path: PathBuf, why: &'static str },
    #[error("{name} failed ({status}): {}", show::bytes(.stderr.trim_ascii()))]
    Helper {
        name: &'static str,
        status: String,
        stderr: Vec<u8>,
    },
    #[error("writing {}: {source}", show::path(path))]
    Write { path: PathBuf, source: io::Error },
    #[error("entering a user namespace: {source}")]
    Enter { source: io::Error },
    #[error("as root of a user namespace with the user's id mapping: {}", show::bytes(.message.as_bytes()))]
    Mapping { message: String },
}

/// The plan for the user `name` (uid `uid`, primary group `gid`), from the
/// host's `/etc/subuid` and `/etc/subgid`. A missing file counts as no
/// range. Root gets the identity mapping (every id is itself).
pub fn for_user(uid: u32, gid: u32, name: &str) -> Result<IdMap, IdMapError> {
    if uid == 0 {
        return Ok(IdMap::identity(name));
    }
    let subuid = read_ids(Path::new(SUBUID))?;
    let subgid = read_ids(Path::new(SUBGID))?;
    Ok(IdMap::plan(
        name,
        uid,
        gid,
        &parse(&subuid, name, uid),
        &parse(&subgid, name, uid),
    ))
}

fn read_ids(path: &Path) -> Result<String, IdMapError> {
    let err = |source| IdMapError::Read {
        path: path.to_path_buf(),
        source,
    };
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(String::new()),
        Err(e) => return Err(err(e)),
    };
    let mut b = vec![];
    f.take(FILE_CAP).read_to_end(&mut b).map_err(err)?;
    Ok(String::from_utf8_lossy(&b).into_owned())
}

impl IdMap {
    /// The plan from ranges already parsed. Subordinate ids are mapped only
    /// when the user has both a uid and a gid range (apt needs both);
    /// otherwise the plan is the single mapping.
    pub fn plan(name: &str, uid: u32, gid: u32, subuids: &[Range], subgids: &[Range]) -> IdMap {
        let ranged = !subuids.is_empty() && !subgids.is_empty();
        let (su, sg): (&[Range], &[Range]) = if ranged {
            (subuids, subgids)
        } else {
            (&[], &[])
        };
        IdMap {
            user: name.to_string(),
            uid,
            gid,
            uids: extents(uid, su),
            gids: extents(gid, sg),
            kind: if ranged { Kind::Ranges } else { Kind::Single },
        }
    }

    fn identity(name: &str) -> IdMap {
        let all = vec![Extent {
            inside: 0,
            outside: 0,
            count: u32::MAX,
        }];
        IdMap {
            user: name.to_string(),
            uid: 0,
            gid: 0,
            uids: all.clone(),
            gids: all,
            kind: Kind::Identity,
        }
    }

    /// Whether ids other than root are mapped (a subordinate range, or root).
    pub fn has_range(&self) -> bool {
        self.kind != Kind::Single
    }

    /// The host uid of `inside`, when it is mapped.
    pub fn outside_uid(&self, inside: u32) -> Option<u32> {
        outside(&self.uids, inside)
    }

    /// The host gid of `inside`, when it is mapped.
    pub fn outside_gid(&self, inside: u32) -> Option<u32> {
        outside(&self.gids, inside)
    }

    /// One line for the user when only root is mapped: what will not work
    /// and how to add a range. The library returns it; commands print it.
    pub fn warning(&self) -> Option<String> {
        (self.kind == Kind::Single).then(|| {
            let u = show::os(&self.user);
            format!(
                "{u} has no range in /etc/subuid and /etc/subgid, so only root inside is mapped (to {u}): \
                 apt's _apt user and files owned by any other id will not work; \
                 to add a range, as root: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {u}"
            )
        })
    }

    /// Writes the plan into the user namespace of the process `pid` (a
    /// child that unshared `CLONE_NEWUSER` and waits, unreaped, so its pid
    /// cannot be reused). With ranges: `newuidmap`/`newgidmap`; without:
    /// `setgroups` = deny, then the single lines, written directly.
    pub fn write_for(&self, pid: i32) -> Result<(), IdMapError> {
        match self.kind {
            Kind::Ranges => {
                run_helper("newuidmap", pid, &self.uids)?;
                run_helper("newgidmap", pid, &self.gids)
            }
            Kind::Single => {
                let dir = PathBuf::from(format!("/proc/{pid}"));
                write_proc(&dir.join("setgroups"), "deny")?;
                write_proc(&dir.join("uid_map"), &map_text(&self.uids))?;
                write_proc(&dir.join("gid_map"), &map_text(&self.gids))
            }
            Kind::Identity => {
                let dir = PathBuf::from(format!("/proc/{pid}"));
                write_proc(&dir.join("uid_map"), &map_text(&self.uids))?;
                write_proc(&dir.join("gid_map"), &map_text(&self.gids))
            }
        }
    }
}

impl IdMap {
    /// Moves this (single-threaded) process into a new user namespace with
    /// this mapping: it is then root there, with power over every file
    /// whose owner is mapped (`destroy` removes a normal user's sandbox,
    /// files of the subordinate ids included, this way).
    pub fn enter(&self) -> Result<(), IdMapError> {
        let r = crate::sys::userns::unshare_mapped(|pid| {
            self.write_for(pid).map_err(|e| e.to_string())
        })
        .map_err(|source| IdMapError::Enter { source })?;
        r.map_err(|message| IdMapError::Mapping { message })
    }
}

impl IdMap {
    /// Runs `work` in a child process that is root of a new user namespace
    /// with this mapping; this process stays as it is. For a
    /// single-threaded caller only.
    pub fn run_as_root(&self, work: impl FnOnce() -> Result<(), String>) -> Result<(), IdMapError> {
        let r = crate::sys::userns::in_child_mapped(
            |pid| self.write_for(pid).map_err(|e| e.to_string()),
            work,
        )
        .map_err(|source| IdMapError::Enter { source })?;
        r.map_err(|message| IdMapError::Mapping { message })
    }
}

fn outside(map: &[Extent], inside: u32) -> Option<u32> {
    map.iter()
        .find(|e| inside >= e.inside && inside - e.inside < e.count)
        .map(|e| e.outside + (inside - e.inside))
}

/// The text of a `uid_map`/`gid_map` (one `inside outside count` line each).
pub fn map_text(map: &[Extent]) -> String {
    map.iter()
        .map(|e| format!("{} {} {}\n", e.inside, e.outside, e.count))
        .collect()
}

fn write_proc(path: &Path, text: &str) -> Result<(), IdMapError> {
    // One write(2): the kernel takes a map in a single write only.
    std::fs::write(path, text.as_bytes()).map_err(|source| IdMapError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Opens the setuid helper `name` as a descriptor and checks it: a regular
/// file owned by root that neither its group nor others can write (a copy
/// planted earlier in `$PATH` is refused, not run).
fn open_helper(name: &'static str) -> Result<(OwnedFd, PathBuf), IdMapError> {
    let path = which::which(name)
        .or_else(|_| which::which_in(name, Some("/usr/bin:/bin:/usr/sbin:/sbin"), "/"))
        .map_err(|_| IdMapError::NoHelper { name })?;
    let fd = crate::sys::open_path(&path).map_err(|_| IdMapError::NoHelper { name })?;
    let meta = File::from(fd.try_clone().map_err(|source| IdMapError::Read {
        path: path.clone(),
        source,
    })?)
    .metadata()
    .map_err(|source| IdMapError::Read {
        path: path.clone(),
        source,
    })?;
    let why = if !meta.file_type().is_file() {
        Some("not a regular file")
    } else if meta.uid() != 0 {
        Some("not owned by root")
    } else if meta.mode() & 0o022 != 0 {
        Some("writable by others than root")
    } else {
        None
    };
    match why {
        Some(why) => Err(IdMapError::UnsafeHelper { path, why }),
        None => Ok((fd, path)),
    }
}

fn run_helper(name: &'static str, pid: i32, map: &[Extent]) -> Result<(), IdMapError> {
    let (fd, _path) = open_helper(name)?;
    let mut cmd = crate::sys::process::command_of_fd(fd.as_fd());
    cmd.arg0(name).arg(pid.to_string());
    for e in map {
        cmd.args([
            e.inside.to_string(),
            e.outside.to_string(),
            e.count.to_string(),
        ]);
    }
    let out = cmd
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|_| IdMapError::NoHelper { name })?;
    if out.status.success() {
        return Ok(());
    }
    Err(IdMapError::Helper {
        name,
        status: crate::sys::process::Ended::from(out.status).to_string(),
        stderr: out.stderr,
    })
}

// ---------------------------------------------------------------------------
// Whether the host lets a normal user make a user namespace.

/// The kernel settings that decide whether unprivileged user namespaces
/// work; `None` where the setting does not exist on this kernel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sysctls {
    /// `user.max_user_namespaces` (0: nobody, not even root, may make one).
    pub max_user_namespaces: Option<u64>,
    /// `kernel.unprivileged_userns_clone` (Debian and older Ubuntu kernels).
    pub unprivileged_userns_clone: Option<u64>,
    /// `kernel.apparmor_restrict_unprivileged_userns` (Ubuntu 23.10 and later).
    pub apparmor_restrict: Option<u64>,
    /// This process's AppArmor label (`unconfined`, or a profile's name).
    pub apparmor_label: Option<String>,
}

impl Sysctls {
    /// Reads the settings under `proc` (normally `/proc`).
    pub fn read_from(proc: &Path) -> Sysctls {
        let num = |p: &str| {
            std::fs::read_to_string(proc.join(p))
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
        };
        let label = ["self/attr/apparmor/current", "self/attr/current"]
            .iter()
            .find_map(|p| std::fs::read_to_string(proc.join(p)).ok())
            .map(|s| s.trim_end_matches(['\0', '\n']).to_string());
        Sysctls {
            max_user_namespaces: num("sys/user/max_user_namespaces"),
            unprivileged_userns_clone: num("sys/kernel/unprivileged_userns_clone"),
            apparmor_restrict: num("sys/kernel/apparmor_restrict_unprivileged_userns"),
            apparmor_label: label,
        }
    }
}

/// Why a user namespace cannot be made, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsernsError {
    #[error("user namespaces are disabled on this host (user.max_user_namespaces = 0): as root, run `sysctl -w user.max_user_namespaces=15000` (and put the line in /etc/sysctl.d/ to keep it), or use chroot-tool as root")]
    Disabled,
    #[error("unprivileged user namespaces are disabled on this host (kernel.unprivileged_userns_clone = 0): as root, run `sysctl -w kernel.unprivileged_userns_clone=1` (and put the line in /etc/sysctl.d/ to keep it), or use chroot-tool as root")]
    CloneOff,
    #[error("AppArmor restricts unprivileged user namespaces on this host (kernel.apparmor_restrict_unprivileged_userns = 1) and chroot-tool has no profile allowing them: as root, install share/apparmor/chroot-tool from chroot-tool's source into /etc/apparmor.d/ and load it with `apparmor_parser -r /etc/apparmor.d/chroot-tool` (see docs/usage.md), or use chroot-tool as root")]
    AppArmor,
}

/// The verdict on `s` for a caller that is root (`privileged`) or not.
/// Root is held back only by `max_user_namespaces = 0`; a normal user also
/// by the Debian switch and by Ubuntu's AppArmor restriction, unless this
/// process runs under a profile (its label is not `unconfined`), which is
/// what the shipped profile gives.
pub fn judge(s: &Sysctls, privileged: bool) -> Result<(), UsernsError> {
    if s.max_user_namespaces == Some(0) {
        return Err(UsernsError::Disabled);
    }
    if privileged {
        return Ok(());
    }
    if s.unprivileged_userns_clone == Some(0) {
        return Err(UsernsError::CloneOff);
    }
    if s.apparmor_restrict.is_some_and(|v| v != 0) {
        let confined = s
            .apparmor_label
            .as_deref()
            .is_some_and(|l| !l.is_empty() && l != "unconfined");
        if !confined {
            return Err(UsernsError::AppArmor);
        }
    }
    Ok(())
}

/// Whether this process may make a user namespace (see [`judge`]).
pub fn check_userns() -> Result<(), UsernsError> {
    judge(
        &Sysctls::read_from(Path::new("/proc")),
        nix::unistd::geteuid().is_root(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUBUID: &str = "\
# comment line
ct-user:100000:65536
other:165536:65536
1003:231072:1000
broken
ct-user:abc:10
ct-user:5:0
ct-user:4294967295:2
ct-user:1:2:3
:300000:10
ct-user:300000:100
";

    #[test]
    fn ranges_by_name_and_by_uid() {
        assert_eq!(
            parse(SUBUID, "ct-user", 1001),
            vec![
                Range {
                    start: 100000,
                    count: 65536
                },
                Range {
                    start: 300000,
                    count: 100
                }
            ]
        );
        assert_eq!(
            parse(SUBUID, "nobody-named-so", 1003),
            vec![Range {
                start: 231072,
                count: 1000
            }]
        );
        assert!(parse(SUBUID, "ct-nosub", 1002).is_empty());
        assert!(parse("", "ct-user", 1001).is_empty());
    }

    #[test]
    fn malformed_lines_are_skipped() {
        let text = "ct-user\nct-user:\nct-user::\nct-user:-1:5\nct-user:1:-5\n\
                    ct-user: 1:5\nct-user:4294967295:1\n\u{0}:\u{0}\n";
        assert_eq!(
            parse(text, "ct-user", 1001),
            vec![Range {
                start: u32::MAX,
                count: 1
            }]
        );
    }

    #[test]
    fn plan_with_a_range() {
        let r = parse(SUBUID, "ct-user", 1001);
        let m = IdMap::plan("ct-user", 1001, 1001, &r[..1], &r[..1]);
        assert!(m.has_range());
        assert!(m.warning().is_none());
        assert_eq!(map_text(&m.uids), "0 1001 1\n1 100000 65536\n");
        assert_eq!(m.outside_uid(0), Some(1001));
        // _apt is uid 42 in Debian: 100000 + 42 - 1 on the host.
        assert_eq!(m.outside_uid(42), Some(100041));
        assert_eq!(m.outside_uid(65536), Some(165535));
        assert_eq!(m.outside_uid(65537), None);
        assert_eq!(m.outside_gid(65534), Some(165533));
    }

    #[test]
    fn several_ranges_follow_one_another() {
        let r = parse(SUBUID, "ct-user", 1001);
        let m = IdMap::plan("ct-user", 1001, 1001, &r, &r);
        assert_eq!(
            map_text(&m.gids),
            "0 1001 1\n1 100000 65536\n65537 300000 100\n"
        );
        assert_eq!(m.outside_gid(65537), Some(300000));
    }

    #[test]
    fn plan_without_a_range_is_single_and_warns() {
        let m = IdMap::plan("ct-nosub", 1002, 1002, &[], &[]);
        assert!(!m.has_range());
        assert_eq!(map_text(&m.uids), "0 1002 1\n");
        assert_eq!(map_text(&m.gids), "0 1002 1\n");
        let w = m.warning().unwrap();
        assert!(!w.contains('\n'));
        assert!(w.contains("_apt"));
        assert!(
            w.contains("usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ct-nosub")
        );
        // A uid range without a gid range is not enough for apt: single.
        let r = [Range {
            start: 100000,
            count: 65536,
        }];
        assert!(!IdMap::plan("u", 1, 1, &r, &[]).has_range());
    }

    #[test]
    fn root_is_identity() {
        let m = for_user(0, 0, "root").unwrap();
        assert!(m.has_range());
        assert!(m.warning().is_none());
        assert_eq!(m.outside_uid(100041), Some(100041));
        assert_eq!(map_text(&m.uids), "0 0 4294967295\n");
    }

    fn sysctls(dir: &Path, files: &[(&str, &str)]) -> Sysctls {
        for (p, v) in files {
            let p = dir.join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, v).unwrap();
        }
        Sysctls::read_from(dir)
    }

    #[test]
    fn userns_detection() {
        let t = tempfile::tempdir().unwrap();
        // Debian 12 default: only max_user_namespaces, non-zero.
        let d = t.path().join("debian");
        let s = sysctls(&d, &[("sys/user/max_user_namespaces", "96365\n")]);
        assert_eq!(s.max_user_namespaces, Some(96365));
        assert_eq!(judge(&s, false), Ok(()));

        let d = t.path().join("disabled");
        let s = sysctls(&d, &[("sys/user/max_user_namespaces", "0\n")]);
        assert_eq!(judge(&s, false), Err(UsernsError::Disabled));
        assert_eq!(judge(&s, true), Err(UsernsError::Disabled));

        let d = t.path().join("clone");
        let s = sysctls(
            &d,
            &[
                ("sys/user/max_user_namespaces", "15000\n"),
                ("sys/kernel/unprivileged_userns_clone", "0\n"),
            ],
        );
        assert_eq!(judge(&s, false), Err(UsernsError::CloneOff));
        assert_eq!(judge(&s, true), Ok(()));

        // Ubuntu 24.04: restricted, the process unconfined.
        let d = t.path().join("ubuntu");
        let s = sysctls(
            &d,
            &[
                ("sys/user/max_user_namespaces", "15000\n"),
                ("sys/kernel/unprivileged_userns_clone", "1\n"),
                ("sys/kernel/apparmor_restrict_unprivileged_userns", "1\n"),
                ("self/attr/apparmor/current", "unconfined\n"),
            ],
        );
        assert_eq!(judge(&s, false), Err(UsernsError::AppArmor));
        assert_eq!(judge(&s, true), Ok(()));
        // ... and under the shipped profile.
        let d = t.path().join("profiled");
        let s = sysctls(
            &d,
            &[
                ("sys/kernel/apparmor_restrict_unprivileged_userns", "1\n"),
                ("self/attr/current", "chroot-tool (unconfined)\n"),
            ],
        );
        assert_eq!(judge(&s, false), Ok(()));
        // Restriction off.
        let d = t.path().join("ubuntu-off");
        let s = sysctls(
            &d,
            &[("sys/kernel/apparmor_restrict_unprivileged_userns", "0\n")],
        );
        assert_eq!(judge(&s, false), Ok(()));
        for e in [
            UsernsError::Disabled,
            UsernsError::CloneOff,
            UsernsError::AppArmor,
        ] {
            assert!(!e.to_string().contains('\n'));
        }
    }
}
