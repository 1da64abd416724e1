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
    shorten(escape(b), MAX)
}

/// `s` itself when it has at most `max` characters, else its start and
/// end around `...`, `max` characters in all.
pub fn shorten(s: String, max: usize) -> String {
    let n = s.chars().count();
    if n <= max {
        return s;
    }
    let keep = max.saturating_sub(3) / 2;
    let head: String = s.chars().take(keep).collect();
    let tail: String = s.chars().skip(n - keep).collect();
    format!("{head}...{tail}")
}

/// Longest text shown for one part of an error's chain of causes.
pub const PART_MAX: usize = 400;
/// Longest error line (without the `chroot-tool: ` prefix).
pub const LINE_MAX: usize = 900;

/// An error and its causes (outermost first, as `anyhow::Error::chain`
/// gives them) as one line: `message: cause: cause`. Control characters
/// are escaped (a newline never splits the line), each part is bounded to
/// [`PART_MAX`] characters and the whole to [`LINE_MAX`], and a cause whose
/// text the message already holds (an errno text that a message includes
/// and that is also its source) is left out.
pub fn error_line<I>(parts: I) -> String
where
    I: IntoIterator,
    I::Item: AsRef<str>,
{
    let mut said = String::new();
    let mut shown: Vec<String> = vec![];
    for part in parts {
        let part = controls(part.as_ref());
        let part = part.trim();
        if part.is_empty() || said.contains(part) {
            continue;
        }
        said.push_str(part);
        said.push('\n');
        shown.push(shorten(part.to_string(), PART_MAX));
    }
    shorten(shown.join(": "), LINE_MAX)
}

/// An error and its `source()` chain as one line (see [`error_line`]).
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    error_line(std::iter::successors(Some(e), |e| e.source()).map(|e| e.to_string()))
}

/// Control characters escaped as in [`escape`]; everything else, `\`
/// included, kept (the text may hold names that are already escaped).
fn controls(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        push_escaped(&mut out, c, false);
    }
    out
}

/// `c` as shown: control characters as `\n`, `\t`, `\r` or `\xNN`, and
/// `\` doubled when `backslash` (so that the result can be read back).
fn push_escaped(out: &mut String, c: char, backslash: bool) {
    match c {
        '\\' if backslash => out.push_str("\\\\"),
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

/// Untrusted text in quotes, escaped and bounded: `"..."` (a value
/// quoted in a message, such as a word of tool.conf).
pub fn quote(s: &str) -> String {
    format!("\"{}\"", bytes(s.as_bytes()))
}

/// Escapes without bounding (JSON and other machine-read output keep the
/// whole name, still on one line and still reversible).
pub fn escape(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len());
    for chunk in b.utf8_chunks() {
        for c in chunk.valid().chars() {
            push_escaped(&mut out, c, true);
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

    #[test]
    fn error_line_is_one_bounded_line() {
        let long = "a".repeat(100_000);
        let line = error_line([format!("bind source /{long}"), "No such file".into()]);
        assert!(line.chars().count() <= LINE_MAX, "{}", line.len());
        assert!(line.starts_with("bind source /aaa"), "{line}");
        assert!(line.ends_with(": No such file"), "{line}");
        // Each part is bounded: a long first part leaves room for the cause.
        let parts: Vec<String> = (0..5).map(|i| format!("{i}{long}")).collect();
        let many = error_line(&parts);
        assert!(many.chars().count() <= LINE_MAX, "{}", many.len());
        assert!(many.starts_with("0aaa") && many.ends_with("aaa"), "{many}");
        let line = error_line(["x\ny\x1b[0m", "a\tb"]);
        assert_eq!(line, "x\\ny\\x1b[0m: a\\tb");
        // An already escaped name keeps its one backslash.
        assert_eq!(error_line([path(OsStr::from_bytes(b"/x\xff"))]), "/x\\xff");
    }

    #[test]
    fn error_line_says_a_cause_once() {
        let errno = "No such file or directory (os error 2)";
        assert_eq!(
            error_line([format!("/x: {errno}"), errno.to_string()]),
            format!("/x: {errno}")
        );
        assert_eq!(
            error_line(["opening /x", errno, errno]),
            format!("opening /x: {errno}")
        );
        // A cause that is not said yet stays, in order.
        assert_eq!(error_line(["a", "b", "", "c"]), "a: b: c");
    }

    #[test]
    fn os_strings_are_escaped_and_bounded() {
        assert_eq!(os(OsStr::new("my sandbox")), "my sandbox");
        assert_eq!(os(OsStr::from_bytes(b"a\nb\xff\\")), "a\\nb\\xff\\\\");
        let long = os(OsStr::from_bytes(&[b'x'; 10_000]));
        assert!(
            long.chars().count() <= MAX && long.contains("..."),
            "{long}"
        );
    }

    /// An error with an optional cause, as library errors nest.
    #[derive(Debug)]
    struct Nested(String, Option<std::io::Error>);

    impl std::fmt::Display for Nested {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(&self.0)
        }
    }

    impl std::error::Error for Nested {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_ref().map(|e| e as _)
        }
    }

    #[test]
    fn error_chain_follows_sources() {
        let enoent = || std::io::Error::from_raw_os_error(libc::ENOENT);
        let errno = enoent().to_string();
        assert_eq!(
            error_chain(&Nested("opening /x".into(), Some(enoent()))),
            format!("opening /x: {errno}")
        );
        assert_eq!(error_chain(&Nested("no cause".into(), None)), "no cause");
        // A cause the message already says is said once; newlines escaped.
        assert_eq!(
            error_chain(&Nested(format!("/a\nb: {errno}"), Some(enoent()))),
            format!("/a\\nb: {errno}")
        );
    }
}
