//! `/proc/self/mountinfo`: the kernel's mount table, the only record of
//! whether a sandbox is on. Pure parser plus a reader.
use std::path::{Path, PathBuf};

/// One line of mountinfo (see proc(5)).
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
    pub source: String,
    pub super_options: String,
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
#[error("malformed mountinfo line {line}: {text:?}")]
pub struct ParseError {
    pub line: usize,
    pub text: String,
}

/// Parses mountinfo text into mounts, in the kernel's order (parents before children).
pub fn parse(text: &str) -> Result<Vec<Mount>, ParseError> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.is_empty())
        .map(|(i, l)| {
            parse_line(l).ok_or_else(|| ParseError {
                line: i + 1,
                text: l.to_string(),
            })
        })
        .collect()
}

fn parse_line(line: &str) -> Option<Mount> {
    let mut f = line.split(' ');
    let id = f.next()?.parse().ok()?;
    let parent = f.next()?.parse().ok()?;
    let dev = f.next()?.to_string();
    let root = PathBuf::from(unescape(f.next()?));
    let point = PathBuf::from(unescape(f.next()?));
    let options = f.next()?.to_string();
    let mut tags = vec![];
    loop {
        match f.next()? {
            "-" => break,
            t => tags.push(t.to_string()),
        }
    }
    let fstype = f.next()?.to_string();
    let source = unescape(f.next()?);
    let super_options = f.next().unwrap_or("").to_string();
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
    })
}

/// Undoes the kernel's octal escapes (`\040` space, `\011` tab, `\012` newline, `\134` backslash).
pub fn unescape(s: &str) -> String {
    use std::os::unix::ffi::OsStringExt;
    let b = s.as_bytes();
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
    std::ffi::OsString::from_vec(out)
        .into_string()
        .unwrap_or_else(|o| o.to_string_lossy().into_owned())
}

/// Reads and parses this process's mount table.
pub fn read() -> std::io::Result<Vec<Mount>> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")?;
    parse(&text).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// True when `p` is `dir` or lies below it (by whole components: `/srv/ch2` is not below `/srv/ch`).
pub fn is_at_or_below(p: &Path, dir: &Path) -> bool {
    p.starts_with(dir)
}

/// The mounts at or below `dir`, in mount order.
pub fn under<'a>(mounts: &'a [Mount], dir: &Path) -> Vec<&'a Mount> {
    mounts
        .iter()
        .filter(|m| is_at_or_below(&m.point, dir))
        .collect()
}

/// The mount visible at `point` (the last one mounted there), if any.
pub fn top_at<'a>(mounts: &'a [Mount], point: &Path) -> Option<&'a Mount> {
    mounts.iter().rev().find(|m| m.point == point)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = include_str!("../tests/fixtures/mountinfo/sandbox-on.txt");

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

    #[test]
    fn unescapes_octal() {
        assert_eq!(unescape(r"/a\040b\011c\134d\012"), "/a b\tc\\d\n");
        assert_eq!(unescape(r"\04"), r"\04");
        assert_eq!(unescape(r"\999"), r"\999");
    }

    #[test]
    fn rejects_garbage() {
        let e = parse("1 2 3\n").unwrap_err();
        assert_eq!(e.line, 1);
        assert!(parse("x 1 0:1 / / rw - ext4 /dev/x rw\n").is_err());
    }
}
