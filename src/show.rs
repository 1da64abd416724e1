//! Naming things to the user: a path or a piece of untrusted text as one
//! line of bounded length. Bytes that are not UTF-8 and control characters
//! (a newline in a directory name) are escaped, never written raw, so a
//! message always stays on its one `chroot-tool: ` line.
use std::ffi::OsStr;
use std::fmt::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Longest text shown for one name; longer ones keep their start and end.
pub const MAX: usize = 200;

/// `p` escaped and bounded (see [`bytes`]).
pub fn path(p: impl AsRef<Path>) -> String {
    bytes(p.as_ref().as_os_str().as_bytes())
}

/// An `OsStr` escaped and bounded.
pub fn os(s: impl AsRef<OsStr>) -> String {
    bytes(s.as_ref().as_bytes())
}

/// Any bytes as one printable line of at most about [`MAX`] characters:
/// valid UTF-8 stays as it is, except control characters and `\`, which
/// are written `\n`, `\t`, `\\` or `\xNN`; invalid bytes are `\xNN`.
pub fn bytes(b: &[u8]) -> String {
    let full = escape(b);
    let n = full.chars().count();
    if n <= MAX {
        return full;
    }
    let keep = (MAX - 3) / 2;
    let head: String = full.chars().take(keep).collect();
    let tail: String = full.chars().skip(n - keep).collect();
    format!("{head}...{tail}")
}

/// Escapes without bounding (JSON and other machine-read output keep the
/// whole name, still on one line and still reversible).
pub fn escape(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len());
    for chunk in b.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                c if c.is_control() => {
                    let mut buf = [0u8; 4];
                    for byte in c.encode_utf8(&mut buf).bytes() {
                        let _ = write!(out, "\\x{byte:02x}");
                    }
                }
                c => out.push(c),
            }
        }
        for byte in chunk.invalid() {
            let _ = write!(out, "\\x{byte:02x}");
        }
    }
    out
}

/// Serializes a path as its escaped text (serde's own refuses non-UTF-8).
pub fn serialize_path<S: serde::Serializer>(p: &Path, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&escape(p.as_os_str().as_bytes()))
}

/// Serializes an `OsStr` as its escaped text.
pub fn serialize_os<S: serde::Serializer>(o: &OsStr, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&escape(o.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn plain_names_are_unchanged() {
        assert_eq!(path("/srv/my sandbox/é"), "/srv/my sandbox/é");
    }

    #[test]
    fn control_and_invalid_bytes_are_escaped() {
        assert_eq!(path(OsStr::from_bytes(b"/a\nb\xffc\\")), "/a\\nb\\xffc\\\\");
        assert_eq!(bytes(b"\x1b[31m"), "\\x1b[31m");
        assert!(!path(OsStr::from_bytes(b"x\ny\rz")).contains(['\n', '\r']));
    }

    #[test]
    fn long_names_are_bounded() {
        let long = "a".repeat(100_000);
        let s = bytes(long.as_bytes());
        assert!(s.chars().count() <= MAX, "{}", s.len());
        assert!(s.contains("..."));
        assert_eq!(escape(long.as_bytes()).len(), 100_000);
    }
}
