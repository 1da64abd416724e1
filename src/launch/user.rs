//! Who a command runs as: `USER[:GROUP]` (names or numbers) resolved in the
//! sandbox's own `/etc/passwd` and `/etc/group`, read through the one door
//! (`sys::read_in_root`), never the host's. Parsing is pure and works on
//! bytes: the files are the sandbox's data.
use std::ffi::OsString;
use std::os::fd::BorrowedFd;
use std::os::unix::ffi::OsStringExt;
use std::path::Path;

use super::Identity;
use crate::show;

/// At most this much of the sandbox's `/etc/passwd` or `/etc/group` is read.
pub const FILE_CAP: usize = 4 << 20;

/// One entry of a passwd file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passwd {
    pub name: Vec<u8>,
    pub uid: u32,
    pub gid: u32,
    pub home: Vec<u8>,
    pub shell: Vec<u8>,
}

/// One entry of a group file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub name: Vec<u8>,
    pub gid: u32,
    pub members: Vec<Vec<u8>>,
}

fn number(field: &[u8]) -> Option<u32> {
    if field.is_empty() || !field.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(field).ok()?.parse().ok()
}

fn lines(text: &[u8]) -> impl Iterator<Item = Vec<&[u8]>> {
    text.split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.is_empty() && !l.starts_with(b"#"))
        .map(|l| l.split(|&b| b == b':').collect::<Vec<_>>())
}

/// The well-formed entries of a passwd text (others are skipped, as libc does).
pub fn parse_passwd(text: &[u8]) -> Vec<Passwd> {
    lines(text)
        .filter(|f| f.len() >= 7)
        .filter_map(|f| {
            Some(Passwd {
                name: f[0].to_vec(),
                uid: number(f[2])?,
                gid: number(f[3])?,
                home: f[5].to_vec(),
                shell: f[6].to_vec(),
            })
        })
        .collect()
}

/// The well-formed entries of a group text.
pub fn parse_group(text: &[u8]) -> Vec<Group> {
    lines(text)
        .filter(|f| f.len() >= 4)
        .filter_map(|f| {
            Some(Group {
                name: f[0].to_vec(),
                gid: number(f[2])?,
                members: f[3]
                    .split(|&b| b == b',')
                    .filter(|m| !m.is_empty())
                    .map(<[u8]>::to_vec)
                    .collect(),
            })
        })
        .collect()
}

/// A resolved user: ids for the child steps, and the variables a login sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub identity: Identity,
    /// The name (or the number, for a uid with no entry).
    pub name: Vec<u8>,
    pub home: Vec<u8>,
    pub shell: Vec<u8>,
}

impl User {
    /// HOME, USER, LOGNAME and SHELL.
    pub fn env(&self) -> Vec<(OsString, OsString)> {
        let v = |b: &[u8]| OsString::from_vec(b.to_vec());
        vec![
            ("HOME".into(), v(&self.home)),
            ("USER".into(), v(&self.name)),
            ("LOGNAME".into(), v(&self.name)),
            ("SHELL".into(), v(&self.shell)),
        ]
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UserError {
    #[error("no user {} in the sandbox's /etc/passwd", show::bytes(.0))]
    NoUser(Vec<u8>),
    #[error("no group {} in the sandbox's /etc/group", show::bytes(.0))]
    NoGroup(Vec<u8>),
    #[error("{}: expected USER or USER:GROUP (names or numbers)", show::bytes(.0))]
    Malformed(Vec<u8>),
}

/// Resolves `spec` (`USER`, `USER:GROUP`, names or numbers) against the
/// texts of a passwd and a group file. A number with no entry is taken as
/// it is (home `/`, shell `/bin/sh`, its primary group the same number);
/// a name must exist. Supplementary groups: the primary group and every
/// group of the group file that lists the user's name.
pub fn resolve(spec: &str, passwd: &[u8], group: &[u8]) -> Result<User, UserError> {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if u.is_empty() || g.is_some_and(|g| g.is_empty() || g.contains(':')) {
        return Err(UserError::Malformed(spec.as_bytes().to_vec()));
    }
    let entries = parse_passwd(passwd);
    let entry = match number(u.as_bytes()) {
        Some(uid) => entries
            .iter()
            .find(|e| e.uid == uid)
            .cloned()
            .or(Some(Passwd {
                name: u.as_bytes().to_vec(),
                uid,
                gid: uid,
                home: b"/".to_vec(),
                shell: b"/bin/sh".to_vec(),
            })),
        None => entries.iter().find(|e| e.name == u.as_bytes()).cloned(),
    }
    .ok_or_else(|| UserError::NoUser(u.as_bytes().to_vec()))?;
    let groups = parse_group(group);
    let gid = match g {
        None => entry.gid,
        Some(g) => match number(g.as_bytes()) {
            Some(n) => n,
            None => {
                groups
                    .iter()
                    .find(|e| e.name == g.as_bytes())
                    .ok_or_else(|| UserError::NoGroup(g.as_bytes().to_vec()))?
                    .gid
            }
        },
    };
    let mut all = vec![gid];
    for e in &groups {
        if e.members.contains(&entry.name) && !all.contains(&e.gid) {
            all.push(e.gid);
        }
    }
    let or = |v: Vec<u8>, d: &[u8]| if v.is_empty() { d.to_vec() } else { v };
    Ok(User {
        identity: Identity {
            uid: entry.uid,
            gid,
            groups: all,
        },
        name: entry.name,
        home: or(entry.home, b"/"),
        shell: or(entry.shell, b"/bin/sh"),
    })
}

/// Reads `/etc/NAME` of the root `root` (an absent file reads as empty;
/// one that is not a regular file or too large is an error naming it).
pub fn read_etc(root: BorrowedFd, dir: &Path, name: &str) -> anyhow::Result<Vec<u8>> {
    let inside = Path::new("/etc").join(name);
    crate::sys::read_in_root(root, &inside, FILE_CAP)
        .map(Option::unwrap_or_default)
        .map_err(|e| {
            anyhow::anyhow!(
                "{}: {e}",
                show::path(dir.join(inside.strip_prefix("/").unwrap_or(&inside)))
            )
        })
}

/// root's entry (or the defaults `/root` and `/bin/sh`): the user of a
/// command run with no `-u`. Only `/etc/passwd` is read.
pub fn root_of(passwd: &[u8]) -> User {
    let e = parse_passwd(passwd).into_iter().find(|e| e.name == b"root");
    let or = |v: Option<Vec<u8>>, d: &[u8]| v.filter(|v| !v.is_empty()).unwrap_or(d.to_vec());
    User {
        identity: Identity {
            uid: 0,
            gid: 0,
            groups: vec![0],
        },
        name: b"root".to_vec(),
        home: or(e.as_ref().map(|e| e.home.clone()), b"/root"),
        shell: or(e.map(|e| e.shell), b"/bin/sh"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &[u8] = b"root:x:0:0:root:/root:/bin/bash\n\
        # a comment\n\
        dev:x:1000:1000:Dev,,,:/home/dev:/bin/sh\n\
        broken:x:notanumber:1:::\n\
        nohome:x:1001:1001:::\n";
    const GROUP: &[u8] = b"root:x:0:\nwheel:x:10:dev,other\ndev:x:1000:\n\
        audio:x:29:other,dev\nstaff:x:50:\n";

    #[test]
    fn by_name_with_supplementary_groups() {
        let u = resolve("dev", PASSWD, GROUP).unwrap();
        assert_eq!(u.identity.uid, 1000);
        assert_eq!(u.identity.gid, 1000);
        assert_eq!(u.identity.groups, [1000, 10, 29]);
        assert_eq!(u.home, b"/home/dev");
        assert_eq!(u.shell, b"/bin/sh");
        assert_eq!(u.name, b"dev");
    }

    #[test]
    fn group_by_name_or_number() {
        let u = resolve("dev:staff", PASSWD, GROUP).unwrap();
        assert_eq!((u.identity.gid, u.identity.groups[0]), (50, 50));
        assert_eq!(u.identity.groups, [50, 10, 29]);
        let u = resolve("1000:777", PASSWD, GROUP).unwrap();
        assert_eq!((u.identity.uid, u.identity.gid), (1000, 777));
        assert_eq!(u.name, b"dev");
    }

    #[test]
    fn number_without_entry() {
        let u = resolve("4242", PASSWD, GROUP).unwrap();
        assert_eq!(
            u.identity,
            Identity {
                uid: 4242,
                gid: 4242,
                groups: vec![4242]
            }
        );
        assert_eq!(
            (u.home.as_slice(), u.name.as_slice()),
            (&b"/"[..], &b"4242"[..])
        );
    }

    #[test]
    fn empty_home_and_shell_get_defaults() {
        let u = resolve("nohome", PASSWD, GROUP).unwrap();
        assert_eq!(
            (u.home.as_slice(), u.shell.as_slice()),
            (&b"/"[..], &b"/bin/sh"[..])
        );
    }

    #[test]
    fn unknown_and_malformed() {
        assert_eq!(
            resolve("nobody", PASSWD, GROUP),
            Err(UserError::NoUser(b"nobody".to_vec()))
        );
        assert_eq!(
            resolve("broken", PASSWD, GROUP),
            Err(UserError::NoUser(b"broken".to_vec()))
        );
        assert_eq!(
            resolve("dev:nogroup", PASSWD, GROUP),
            Err(UserError::NoGroup(b"nogroup".to_vec()))
        );
        for bad in ["", ":x", "dev:", "a:b:c"] {
            assert!(
                matches!(resolve(bad, PASSWD, GROUP), Err(UserError::Malformed(_))),
                "{bad}"
            );
        }
        let e = resolve("nobody", PASSWD, GROUP).unwrap_err().to_string();
        assert!(e.contains("nobody") && e.contains("/etc/passwd"), "{e}");
    }

    #[test]
    fn root_defaults() {
        assert_eq!(root_of(PASSWD).home, b"/root");
        assert_eq!(root_of(PASSWD).shell, b"/bin/bash");
        assert_eq!(root_of(b"").shell, b"/bin/sh");
    }
}
