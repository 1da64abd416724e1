//! `/proc/self/mountinfo`: the kernel's mount table, the only record of
//! whether a sandbox is on. Pure parser plus a reader, and the part of the
//! table that decides one sandbox asked of `statmount`/`listmount`
//! ([`read_at`]), whose cost is the sandbox's, not the host's.
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

/// One line of mountinfo (see proc(5)). Paths and the source are bytes, as
/// the kernel keeps them: a mount point whose name is not UTF-8 is an
/// ordinary mount point, never a reason to fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub id: u64,
    pub parent: u64,
    /// `major:minor` of the filesystem.
    pub dev: String,
    /// Path of the mount's root within its filesystem.
    pub root: PathBuf,
    /// Where it is mounted.
    pub point: PathBuf,
    /// Per-mount options (`rw,nosuid,...`).
    pub options: String,
    /// Optional fields: `shared:N`, `master:N`, ... (empty: private).
    pub tags: Vec<String>,
    pub fstype: String,
    /// What was mounted (a device, a host path, or any word a filesystem accepts).
    pub source: OsString,
    pub super_options: String,
    /// The 64-bit id the kernel never reuses, when the mount was asked
    /// about by it ([`read_at`]); mountinfo has none.
    pub unique: Option<u64>,
}

impl Mount {
    /// `shared`, `slave`, `shared,slave` or `private`.
    pub fn propagation(&self) -> &'static str {
        let shared = self.tags.iter().any(|t| t.starts_with("shared:"));
        let slave = self.tags.iter().any(|t| t.starts_with("master:"));
        match (shared, slave) {
            (true, true) => "shared,slave",
            (true, false) => "shared",
            (false, true) => "slave",
            (false, false) => "private",
        }
    }

    pub fn has_option(&self, opt: &str) -> bool {
        self.options.split(',').any(|o| o == opt)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("malformed mountinfo line {line}: {text}")]
pub struct ParseError {
    pub line: usize,
    /// The line, escaped and bounded (see [`crate::show::bytes`]).
    pub text: String,
}

/// Parses mountinfo into mounts, in the kernel's order (parents before
/// children). Bytes in, bytes kept: names are never decoded as UTF-8.
pub fn parse(text: &[u8]) -> Result<Vec<Mount>, ParseError> {
    text.split(|&b| b == b'\n')
        .enumerate()
        .filter(|(_, l)| !l.is_empty())
        .map(|(i, l)| {
            parse_line(l).ok_or_else(|| ParseError {
                line: i + 1,
                text: crate::show::bytes(l),
            })
        })
        .collect()
}

/// A kernel word (number, option list, fs type): ASCII in practice; any
/// stray byte is replaced, never a failure.
fn word(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn number(b: &[u8]) -> Option<u64> {
    std::str::from_utf8(b).ok()?.parse().ok()
}

fn path(b: &[u8]) -> PathBuf {
    PathBuf::from(OsString::from_vec(unescape(b)))
}

fn parse_line(line: &[u8]) -> Option<Mount> {
    let mut f = line.split(|&b| b == b' ');
    let id = number(f.next()?)?;
    let parent = number(f.next()?)?;
    let dev = word(f.next()?);
    let root = path(f.next()?);
    let point = path(f.next()?);
    let options = word(f.next()?);
    let mut tags = vec![];
    loop {
        match f.next()? {
            b"-" => break,
            t => tags.push(word(t)),
        }
    }
    let fstype = word(f.next()?);
    let source = OsString::from_vec(unescape(f.next()?));
    let super_options = f.next().map(word).unwrap_or_default();
    Some(Mount {
        id,
        parent,
        dev,
        root,
        point,
        options,
        tags,
        fstype,
        source,
        super_options,
        unique: None,
    })
}

/// Undoes the kernel's octal escapes (`\040` space, `\011` tab, `\012`
/// newline, `\134` backslash, or any byte); other bytes are kept as they are.
pub fn unescape(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && b.len() >= i + 4 {
            let oct = &b[i + 1..i + 4];
            if oct.iter().all(|c| (b'0'..=b'7').contains(c)) {
                let v = (oct[0] - b'0') as u32 * 64
                    + (oct[1] - b'0') as u32 * 8
                    + (oct[2] - b'0') as u32;
                if v <= 255 {
                    out.push(v as u8);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// Reads and parses this process's mount table (as bytes).
pub fn read() -> std::io::Result<Vec<Mount>> {
    let text = crate::sys::read_proc(Path::new("/proc/self/mountinfo"))?;
    parse(&text).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// The mount statmount describes, as mountinfo would show it; its source
/// and superblock options are not asked for (empty).
pub fn from_stat(s: &crate::sys::mounts::MountStat) -> Mount {
    use crate::sys::Attrs;
    let attr = Attrs(s.attr);
    let mut options = vec![if attr.has(Attrs::RDONLY) { "ro" } else { "rw" }];
    for (bit, name) in [
        (Attrs::NOSUID, "nosuid"),
        (Attrs::NODEV, "nodev"),
        (Attrs::NOEXEC, "noexec"),
        (Attrs::NOATIME, "noatime"),
        (Attrs::NODIRATIME, "nodiratime"),
    ] {
        if attr.has(bit) {
            options.push(name);
        }
    }
    if s.attr & Attrs::ATIME == Attrs::RELATIME {
        options.push("relatime");
    }
    if attr.has(Attrs::NOSYMFOLLOW) {
        options.push("nosymfollow");
    }
    const MS_SHARED: u64 = 1 << 20;
    const MS_SLAVE: u64 = 1 << 19;
    const MS_UNBINDABLE: u64 = 1 << 17;
    let mut tags = vec![];
    if s.propagation & MS_SHARED != 0 {
        tags.push(format!("shared:{}", s.peer_group));
    }
    if s.propagation & MS_SLAVE != 0 {
        tags.push(format!("master:{}", s.master));
        if s.propagate_from != 0 && s.propagate_from != s.master {
            tags.push(format!("propagate_from:{}", s.propagate_from));
        }
    }
    if s.propagation & MS_UNBINDABLE != 0 {
        tags.push("unbindable".into());
    }
    Mount {
        id: s.id,
        parent: s.parent,
        dev: format!("{}:{}", s.dev.0, s.dev.1),
        root: PathBuf::from(&s.root),
        point: PathBuf::from(&s.point),
        options: options.join(","),
        tags,
        fstype: s.fstype.clone(),
        source: OsString::new(),
        super_options: String::new(),
        unique: Some(s.unique),
    }
}

/// The part of the mount table that decides the sandbox at `dir`, asked
/// of the kernel mount by mount (`statmount`, `listmount`: Linux 6.8), so
/// that its cost is the sandbox's and not the host's: the mounts stacked
/// at `dir`, the one `dir` lies on, and every mount made on the lowest one
/// at `dir`, in the order they were made. Only the mount `dir` lies on
/// when nothing is mounted at `dir`. A mount below `dir` that the lowest
/// one covers (mounted before it) is not in it. `None` when the kernel
/// cannot be asked: the whole table ([`read`]) serves.
pub fn read_at(dir: &Path) -> std::io::Result<Option<Vec<Mount>>> {
    let Some(mut found) = stack_at(dir)? else {
        return Ok(None);
    };
    if found[0].point != dir.as_os_str() {
        return Ok(Some(vec![from_stat(&found[0])]));
    }
    let lowest = found
        .iter()
        .rev()
        .find(|m| m.point == dir.as_os_str())
        .map(|m| m.unique);
    if let Some(lowest) = lowest {
        if stat_below(lowest, &mut found).is_none() {
            return Ok(None);
        }
    }
    found.sort_by_key(|m| m.unique);
    Ok(Some(found.iter().map(from_stat).collect()))
}

/// Every mount made on the mount `fd` lies on (directly or not), asked of
/// the kernel by that mount's 64-bit id: what the descriptor shows,
/// whatever DIR's path leads to now. `None` when the kernel cannot be
/// asked: the whole table ([`read`]) serves.
pub fn read_on(fd: std::os::fd::BorrowedFd) -> Option<Vec<Mount>> {
    let unique = crate::sys::unique_mount_id(fd)?;
    let mut found = vec![];
    stat_below(unique, &mut found)?;
    Some(found.iter().map(from_stat).collect())
}

/// Adds to `found` each mount made on the mount `below` (its 64-bit id)
/// that is not in it yet; `None` when the kernel cannot say.
fn stat_below(below: u64, found: &mut Vec<crate::sys::mounts::MountStat>) -> Option<()> {
    use crate::sys::mounts;
    for id in mounts::list(below).ok()? {
        if found.iter().any(|m| m.unique == id) {
            continue;
        }
        match mounts::stat(id) {
            Ok(m) => found.push(m),
            // Unmounted since it was listed.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(_) => return None,
        }
    }
    Some(())
}

/// The mounts DIR's path leads through, as the kernel says (`statmount`):
/// the one on top at `dir`, then each one it is mounted on while that is
/// at `dir` too, and last the mount `dir` lies on (the first, alone, when
/// nothing is mounted at `dir`). Only what DIR's path reaches: a mount at
/// `dir` hidden by one over a directory above it is none of them. `None`
/// when the kernel cannot be asked (before Linux 6.8).
pub fn stack_at(dir: &Path) -> std::io::Result<Option<Vec<crate::sys::mounts::MountStat>>> {
    use crate::sys::mounts;
    let fd = crate::sys::open_path(dir)?;
    let Ok(top) = mounts::stat_of(std::os::fd::AsFd::as_fd(&fd)) else {
        return Ok(None);
    };
    drop(fd);
    let mut found = vec![top];
    loop {
        let cur = &found[found.len() - 1];
        if cur.point != dir.as_os_str() || cur.parent_unique == cur.unique {
            break;
        }
        // Mounts moved while this walks could make a loop: no stack is
        // that deep.
        if found.len() > 256 {
            return Ok(None);
        }
        match mounts::stat(cur.parent_unique) {
            Ok(p) => found.push(p),
            // The namespace's root: its parent lies outside it.
            Err(_) => break,
        }
    }
    Ok(Some(found))
}

/// The mount the file `fd` names lies on, asked of `statmount` (Linux
/// 6.8); `None` where the kernel cannot say.
pub fn of_fd(fd: std::os::fd::BorrowedFd) -> Option<Mount> {
    crate::sys::mounts::stat_of(fd).ok().map(|m| from_stat(&m))
}

/// Whether anything is mounted on `m` (by its 64-bit id when known, else
/// as the whole table says).
pub fn has_mounts_on(m: &Mount) -> std::io::Result<bool> {
    if let Some(u) = m.unique {
        if let Ok(ids) = crate::sys::mounts::list(u) {
            return Ok(!ids.is_empty());
        }
    }
    Ok(read()?.iter().any(|c| c.parent == m.id))
}

/// True when `p` is `dir` or lies below it (by whole components: `/srv/ch2` is not below `/srv/ch`).
pub fn is_at_or_below(p: &Path, dir: &Path) -> bool {
    p.starts_with(dir)
}

/// Whether `m` shows its filesystem whole (its root is the filesystem's
/// root) and is that filesystem's only mount here: a filesystem the user
/// mounted at a directory, not a bind of some other directory (or of `/`).
pub fn is_whole_and_alone(m: &Mount, mounts: &[Mount]) -> bool {
    m.root == Path::new("/") && !mounts.iter().any(|o| o.id != m.id && o.dev == m.dev)
}

/// The mounts at or below `dir`, in mount order.
pub fn under<'a>(mounts: &'a [Mount], dir: &Path) -> Vec<&'a Mount> {
    mounts
        .iter()
        .filter(|m| is_at_or_below(&m.point, dir))
        .collect()
}

/// The mount visible at `point`, if any: of those at `point`, the one
/// nothing else there is mounted on (a mount moved there with `mount
/// --move` is older than what it covers: the table's order is not the
/// stack's), the last in the table when several are (mounts at `point`
/// in different parents).
pub fn top_at<'a>(mounts: &'a [Mount], point: &Path) -> Option<&'a Mount> {
    let at = || mounts.iter().rev().filter(|m| m.point == point);
    at().find(|m| !at().any(|o| o.parent == m.id && o.id != m.id))
        .or_else(|| at().next())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;

    const SAMPLE: &[u8] = include_bytes!("../tests/fixtures/mountinfo/sandbox-on.txt");

    /// statmount's numbers as mountinfo's words.
    #[test]
    fn from_stat_writes_options_and_tags_as_mountinfo_does() {
        let s = crate::sys::mounts::MountStat {
            unique: 1 << 31 | 70,
            parent_unique: 1 << 31 | 2,
            id: 68,
            parent: 1,
            dev: (0, 41),
            attr: 0x1 | 0x2 | 0x8 | 0x10 | 0x80 | 0x0020_0000,
            propagation: (1 << 20) | (1 << 19),
            peer_group: 3,
            master: 1,
            propagate_from: 0,
            root: "/a b".into(),
            point: std::ffi::OsString::from_vec(b"/srv/\xff\n".to_vec()),
            fstype: "tmpfs".into(),
        };
        let m = from_stat(&s);
        assert_eq!(m.options, "ro,nosuid,noexec,noatime,nodiratime,nosymfollow");
        assert_eq!(m.tags, ["shared:3", "master:1"]);
        assert_eq!(m.propagation(), "shared,slave");
        assert_eq!((m.id, m.parent, m.dev.as_str()), (68, 1, "0:41"));
        assert_eq!(m.point.as_os_str().as_bytes(), b"/srv/\xff\n");
        assert_eq!(m.root, Path::new("/a b"));
        assert_eq!(m.unique, Some(1 << 31 | 70));
        let plain = from_stat(&crate::sys::mounts::MountStat {
            attr: 0,
            propagation: 1 << 18,
            ..s.clone()
        });
        assert_eq!(plain.options, "rw,relatime");
        assert!(plain.tags.is_empty());
        let unbindable = from_stat(&crate::sys::mounts::MountStat {
            attr: 0x20,
            propagation: 1 << 17,
            ..s
        });
        assert_eq!(unbindable.options, "rw");
        assert_eq!(unbindable.tags, ["unbindable"]);
    }

    /// At `/`, the part is the whole: statmount's mounts are mountinfo's,
    /// field by field (but the source and superblock options, not asked).
    #[test]
    fn read_at_the_root_is_the_whole_table() {
        let before = read().unwrap();
        let Some(part) = read_at(Path::new("/")).unwrap() else {
            // Only a kernel without statmount may say nothing.
            let release = nix::sys::utsname::uname().unwrap();
            let v: Vec<u32> = release
                .release()
                .to_string_lossy()
                .split(|c: char| !c.is_ascii_digit())
                .take(2)
                .map(|n| n.parse().unwrap_or(0))
                .collect();
            assert!(v < vec![6, 8], "statmount unanswered on {release:?}");
            return;
        };
        let after = read().unwrap();
        let strip = |m: &Mount| Mount {
            source: OsString::new(),
            super_options: String::new(),
            unique: None,
            ..m.clone()
        };
        let part: Vec<Mount> = part.iter().map(strip).collect();
        let whole: Vec<Mount> = before.iter().map(strip).collect();
        // Unless something was mounted or unmounted meanwhile.
        if before == after {
            assert_eq!(part, whole);
        }
        assert!(part.len() > 1);
    }

    #[test]
    fn parses_fixture() {
        let m = parse(SAMPLE).unwrap();
        assert_eq!(m[0].point, Path::new("/"));
        assert_eq!(m[0].propagation(), "shared");
        let sp = m
            .iter()
            .find(|m| m.point.ends_with("with space/proc"))
            .unwrap();
        assert_eq!(sp.point, Path::new("/srv/with space/proc"));
        assert_eq!(sp.fstype, "proc");
        assert_eq!(sp.propagation(), "private");
        let slave = m
            .iter()
            .find(|m| m.tags.iter().any(|t| t.starts_with("master:")))
            .unwrap();
        assert_eq!(slave.propagation(), "slave");
    }

    #[test]
    fn under_respects_component_boundaries() {
        let m = parse(SAMPLE).unwrap();
        let u = under(&m, Path::new("/srv/ch"));
        assert!(!u.is_empty());
        assert!(u.iter().all(|m| m.point.starts_with("/srv/ch")));
        assert!(!u.iter().any(|m| m.point.starts_with("/srv/ch2")));
        assert!(m.iter().any(|m| m.point.starts_with("/srv/ch2")));
    }

    #[test]
    fn top_is_last_mounted() {
        let m = parse(SAMPLE).unwrap();
        let t = top_at(&m, Path::new("/srv/ch/tmp")).unwrap();
        assert_eq!(t.fstype, "tmpfs");
        assert!(t.has_option("nosuid"));
    }

    /// A mount moved over a point comes before what it covers in the
    /// table (its id is older): the top is the one nothing at the point is
    /// mounted on. Mounts at one point in two parents: the table's last.
    #[test]
    fn top_is_what_nothing_at_the_point_is_mounted_on() {
        // 30, made before 40 and then moved onto it, at 40's own point.
        let moved = b"22 1 254:1 / / rw - ext4 /dev/vda1 rw
30 40 0:40 / /srv/ch rw - tmpfs moved rw
40 22 254:1 /srv/ch /srv/ch rw - ext4 /dev/vda1 rw
41 40 0:50 / /srv/ch/proc rw - proc proc rw
";
        let m = parse(moved).unwrap();
        assert_eq!(top_at(&m, Path::new("/srv/ch")).unwrap().source, "moved");
        let two = b"22 1 254:1 / / rw - ext4 /dev/vda1 rw
40 22 0:40 / /srv/x rw - tmpfs a rw
41 40 0:41 / /srv/x/y rw - tmpfs old rw
42 22 0:42 / /srv/x rw - tmpfs b rw
43 42 0:43 / /srv/x/y rw - tmpfs new rw
";
        let m = parse(two).unwrap();
        assert_eq!(top_at(&m, Path::new("/srv/x/y")).unwrap().source, "new");
        assert_eq!(top_at(&m, Path::new("/srv/x")).unwrap().source, "b");
    }

    #[test]
    fn unescapes_octal() {
        assert_eq!(unescape(br"/a\040b\011c\134d\012"), b"/a b\tc\\d\n");
        assert_eq!(unescape(br"\04"), br"\04");
        assert_eq!(unescape(br"\999"), br"\999");
        assert_eq!(unescape(br"x\377\012"), b"x\xff\n");
    }

    #[test]
    fn rejects_garbage() {
        let e = parse(b"1 2 3\n").unwrap_err();
        assert_eq!(e.line, 1);
        assert!(parse(b"x 1 0:1 / / rw - ext4 /dev/x rw\n").is_err());
        // A long garbage line is named bounded, on one line.
        let long = [b"x\x1b ".as_slice(), &[b'a'; 100_000]].concat();
        let e = parse(&long).unwrap_err().to_string();
        assert!(e.len() < 400 && !e.contains(['\n', '\x1b']), "{e}");
    }

    #[test]
    fn names_are_bytes() {
        use std::ffi::OsStr;
        use std::os::unix::ffi::OsStrExt;
        let m = parse(include_bytes!("../tests/fixtures/mountinfo/non-utf8.txt")).unwrap();
        assert_eq!(m.len(), 6);
        let dir = Path::new(OsStr::from_bytes(b"/srv/x\xff"));
        assert_eq!(m[1].point, dir);
        assert_eq!(m[1].root, dir);
        let u = under(&m, dir);
        assert_eq!(u.len(), 3);
        assert_eq!(u[1].point, dir.join("proc"));
        assert_eq!(u[2].point.as_os_str().as_bytes(), b"/srv/x\xff/x\xfe\ny");
        assert_eq!(m[4].point, Path::new("/mnt/with\ttab\\and space"));
        assert_eq!(m[4].root.as_os_str().as_bytes(), b"/home/h \xff");
        assert_eq!(m[4].source.as_bytes(), b"/dev/vda\xff");
        assert_eq!(m[5].point, Path::new("/mnt/caf\u{e9}"));
        assert_eq!(m[5].source.as_bytes(), b"my src\xfe");
        assert_eq!(top_at(&m, &dir.join("proc")).unwrap().fstype, "proc");
        // Shown to the user escaped, never raw.
        assert_eq!(crate::show::path(&u[2].point), "/srv/x\\xff/x\\xfe\\ny");
    }

    #[test]
    fn has_option_matches_whole_words() {
        let m = parse(
            b"36 35 98:0 / /mnt rw,nosuid,noatime shared:1 - ext3 /dev/r rw,errors=continue\n",
        )
        .unwrap()
        .pop()
        .unwrap();
        assert!(m.has_option("rw"));
        assert!(m.has_option("nosuid"));
        assert!(m.has_option("noatime"));
        assert!(!m.has_option("ro"));
        assert!(!m.has_option("nodev"));
        assert!(!m.has_option("nosu"));
        assert!(!m.has_option("rw,nosuid"));
        assert!(!m.has_option("errors=continue"));
    }

    #[test]
    fn unescape_boundaries() {
        // An escape ending the name, one cut short, backslashes that escape
        // nothing, an octal value above 255.
        assert_eq!(unescape(br"a\040"), b"a ");
        assert_eq!(unescape(br"a\04b"), br"a\04b");
        assert_eq!(unescape(br"\\"), br"\\");
        assert_eq!(unescape(br"\134040"), br"\040");
        assert_eq!(unescape(br"\000\1"), b"\0\\1");
        assert_eq!(unescape(br"\400"), br"\400");
        assert_eq!(unescape(b""), b"");
    }

    #[test]
    fn reads_this_process_mount_table() {
        let m = read().unwrap();
        // /proc is mounted here, or the file could not have been read.
        assert!(m.iter().any(|m| m.fstype == "proc"), "{m:?}");
        assert!(m.iter().all(|m| m.point.is_absolute()), "{m:?}");
    }
}
