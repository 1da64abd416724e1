//! Host wrappers (`link`): small shell scripts in a host directory of
//! commands that run NAME inside a sandbox, in the host's current directory
//! as the sandbox sees it (`run --here`), with their arguments passed as
//! they are (`"$@"` after `--`: never through a shell inside).
//!
//! A wrapper is marked by its second line, [`MARK`]; its third line names
//! the sandbox. `link` replaces only a file so marked and `link --remove`
//! removes only such a file of the same sandbox: any other file at that
//! name is refused, never touched. A new wrapper is written to a temporary
//! file and linked to its name (`link(2)` never replaces a file, so one
//! made there meanwhile is not lost); an old wrapper is replaced by
//! `rename(2)`.
use std::ffi::{OsStr, OsString};
use std::io::{self, Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::show;

/// The mark of a wrapper: its second line.
pub const MARK: &str = "# chroot-tool link wrapper: made by `chroot-tool link`, removed by `chroot-tool link --remove`";

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("{}: not a plain command name (letters, digits, and . _ + - not first; no /)", show::os(.0))]
    BadName(OsString),
    #[error("{}: exists and is not a wrapper made by chroot-tool link; left alone (remove it yourself, or choose --to BINDIR)", show::path(.0))]
    NotOurs(PathBuf),
    #[error("{}: a wrapper for another sandbox ({}); left alone (pass that sandbox's -d to remove it)", show::path(.path), .other)]
    OtherSandbox { path: PathBuf, other: String },
    #[error("{}: no such wrapper", show::path(.0))]
    Missing(PathBuf),
    #[error("{}: {source}", show::path(.path))]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> LinkError + '_ {
    move |source| LinkError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A plain command name: ASCII letters, digits, `.`, `_`, `+`, `-`, not
/// starting with `-` or `.`, at most 255 bytes.
pub fn check_name(name: &OsStr) -> Result<&str, LinkError> {
    let bad = || LinkError::BadName(name.to_os_string());
    let s = name.to_str().ok_or_else(bad)?;
    let ok = !s.is_empty()
        && s.len() <= 255
        && !s.starts_with(['-', '.'])
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b));
    if ok {
        Ok(s)
    } else {
        Err(bad())
    }
}

/// Bytes as one shell word in single quotes (`'` written `'\''`).
pub fn sh_quote(b: &[u8]) -> Vec<u8> {
    let mut out = vec![b'\''];
    for &c in b {
        if c == b'\'' {
            out.extend_from_slice(b"'\\''");
        } else {
            out.push(c);
        }
    }
    out.push(b'\'');
    out
}

/// The third line: which sandbox the wrapper runs in (escaped: one line
/// whatever bytes the path holds).
fn sandbox_line(dir: &Path) -> Vec<u8> {
    format!("# sandbox: {}", show::escape(dir.as_os_str().as_bytes())).into_bytes()
}

/// The wrapper that runs `name` in the sandbox `dir` with the tool `exe`.
pub fn script(exe: &Path, dir: &Path, name: &str) -> Vec<u8> {
    let mut s = b"#!/bin/sh\n".to_vec();
    s.extend_from_slice(MARK.as_bytes());
    s.push(b'\n');
    s.extend(sandbox_line(dir));
    s.push(b'\n');
    s.extend_from_slice(b"exec ");
    s.extend(sh_quote(exe.as_os_str().as_bytes()));
    s.extend_from_slice(b" run -d ");
    s.extend(sh_quote(dir.as_os_str().as_bytes()));
    s.extend_from_slice(b" --here -- ");
    s.extend(sh_quote(name.as_bytes()));
    s.extend_from_slice(b" \"$@\"\n");
    s
}

/// What is at a wrapper's path now.
enum Found {
    Nothing,
    /// A wrapper; its sandbox line.
    Wrapper(Vec<u8>),
    Other,
}

fn look(path: &Path) -> Result<Found, LinkError> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path);
    let f = match f {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // A dangling symlink is something, too.
            return match std::fs::symlink_metadata(path) {
                Ok(_) => Ok(Found::Other),
                Err(_) => Ok(Found::Nothing),
            };
        }
        // A symlink (ELOOP), a FIFO without a reader (ENXIO)...
        Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENXIO)) => {
            return Ok(Found::Other)
        }
        Err(e) => return Err(io_at(path)(e)),
    };
    if !f.metadata().map_err(io_at(path))?.is_file() {
        return Ok(Found::Other);
    }
    let mut head = Vec::new();
    f.take(8192).read_to_end(&mut head).map_err(io_at(path))?;
    let mut lines = head.split(|&b| b == b'\n');
    let (_, mark, sandbox) = (lines.next(), lines.next(), lines.next());
    match (mark, sandbox) {
        (Some(m), Some(s)) if m == MARK.as_bytes() && s.starts_with(b"# sandbox: ") => {
            Ok(Found::Wrapper(s.to_vec()))
        }
        _ => Ok(Found::Other),
    }
}

/// What [`install`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Installed {
    New,
    /// An earlier wrapper at that name (perhaps of another sandbox) was replaced.
    Replaced,
}

/// Writes the wrapper of `name` for the sandbox `dir` into `bindir`.
pub fn install(exe: &Path, dir: &Path, name: &str, bindir: &Path) -> Result<Installed, LinkError> {
    let path = bindir.join(name);
    let found = look(&path)?;
    if let Found::Other = found {
        return Err(LinkError::NotOurs(path));
    }
    let tmp = bindir.join(format!(".{name}.chroot-tool-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o755)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&tmp)
        .map_err(io_at(&tmp))?;
    let written = f
        .write_all(&script(exe, dir, name))
        .and_then(|()| f.set_permissions(std::fs::Permissions::from_mode(0o755)))
        .and_then(|()| f.sync_all());
    let placed = written.map_err(io_at(&tmp)).and_then(|()| match found {
        Found::Nothing => std::fs::hard_link(&tmp, &path)
            .map(|()| Installed::New)
            .map_err(|e| match e.kind() {
                io::ErrorKind::AlreadyExists => LinkError::NotOurs(path.clone()),
                _ => io_at(&path)(e),
            }),
        _ => std::fs::rename(&tmp, &path)
            .map(|()| Installed::Replaced)
            .map_err(io_at(&path)),
    });
    let _ = std::fs::remove_file(&tmp);
    placed
}

/// Removes the wrapper of `name` for the sandbox `dir` from `bindir`.
pub fn remove(dir: &Path, name: &str, bindir: &Path) -> Result<(), LinkError> {
    let path = bindir.join(name);
    match look(&path)? {
        Found::Nothing => Err(LinkError::Missing(path)),
        Found::Other => Err(LinkError::NotOurs(path)),
        Found::Wrapper(s) if s != sandbox_line(dir) => {
            let other = s.strip_prefix(b"# sandbox: ").unwrap_or(&s);
            Err(LinkError::OtherSandbox {
                path,
                other: show::bytes(other),
            })
        }
        Found::Wrapper(_) => std::fs::remove_file(&path).map_err(io_at(&path)),
    }
}

/// The default directory of wrappers: `/usr/local/bin` for root,
/// `~/.local/bin` for a user.
pub fn default_bindir(root: bool, home: Option<OsString>) -> Option<PathBuf> {
    if root {
        return Some(PathBuf::from("/usr/local/bin"));
    }
    let home = PathBuf::from(home.filter(|h| !h.is_empty())?);
    home.is_absolute().then(|| home.join(".local/bin"))
}

/// Is `dir` one of the directories of `$PATH`?
pub fn in_path(dir: &Path, path: Option<OsString>) -> bool {
    let Some(path) = path else { return false };
    let canon = |p: &Path| crate::sys::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let want = canon(dir);
    path.as_bytes()
        .split(|&b| b == b':')
        .any(|p| canon(Path::new(&OsString::from_vec(p.to_vec()))) == want)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["make", "cargo", "x86_64-linux-gnu-gcc", "g++", "python3.11"] {
            assert!(check_name(OsStr::new(ok)).is_ok(), "{ok}");
        }
        for bad in [
            "", "a/b", "/bin/ls", "..", ".hidden", "-rf", "a b", "a$b", "a\nb", "é",
        ] {
            assert!(check_name(OsStr::new(bad)).is_err(), "{bad:?}");
        }
        assert!(check_name(OsStr::from_bytes(b"a\xff")).is_err());
    }

    #[test]
    fn arguments_and_paths_survive_the_shell_exactly() {
        let t = tempfile::tempdir().unwrap();
        // The tool stands in as a script that prints its arguments.
        let exe = t.path().join("it's the \"tool\" $HOME");
        // Written by a child, so that no fork of another test thread holds
        // it open for writing when it is executed (ETXTBSY).
        let made = std::process::Command::new("sh")
            .args([
                "-c",
                "printf '#!/bin/sh\\nprintf \"%%s\\\\0\" \"$@\"\\n' >\"$1\" && chmod 755 \"$1\"",
                "sh",
            ])
            .arg(&exe)
            .status()
            .unwrap();
        assert!(made.success());
        let dir = Path::new("/tmp/it's a \"dir\" $HOME `x` \\\n");
        let s = script(&exe, dir, "make");
        let w = t.path().join("w");
        std::fs::write(&w, &s).unwrap();
        let out = std::process::Command::new("sh")
            .arg(&w)
            .args(["a b", "", "'q'", "$(id)", "*"])
            .output()
            .unwrap();
        let got: Vec<&[u8]> = out.stdout.split(|&b| b == 0).collect();
        let want: Vec<&[u8]> = vec![
            b"run",
            b"-d",
            dir.as_os_str().as_bytes(),
            b"--here",
            b"--",
            b"make",
            b"a b",
            b"",
            b"'q'",
            b"$(id)",
            b"*",
            b"",
        ];
        assert_eq!(got, want, "{}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8(s).unwrap();
        assert_eq!(text.lines().nth(1), Some(MARK), "{text}");
    }

    #[test]
    fn never_replaces_a_file_not_ours_and_removes_only_its_own() {
        let t = tempfile::tempdir().unwrap();
        let bin = t.path();
        let (a, b) = (Path::new("/srv/a"), Path::new("/srv/b"));
        let exe = Path::new("/usr/local/bin/chroot-tool");
        std::fs::write(bin.join("make"), "#!/bin/sh\necho mine\n").unwrap();
        assert!(matches!(
            install(exe, a, "make", bin),
            Err(LinkError::NotOurs(_))
        ));
        assert_eq!(
            std::fs::read(bin.join("make")).unwrap(),
            b"#!/bin/sh\necho mine\n"
        );
        std::os::unix::fs::symlink("/nonexistent", bin.join("gcc")).unwrap();
        assert!(matches!(
            install(exe, a, "gcc", bin),
            Err(LinkError::NotOurs(_))
        ));
        assert_eq!(install(exe, a, "cargo", bin).unwrap(), Installed::New);
        assert_eq!(install(exe, a, "cargo", bin).unwrap(), Installed::Replaced);
        assert!(matches!(
            remove(b, "cargo", bin),
            Err(LinkError::OtherSandbox { .. })
        ));
        assert!(matches!(remove(a, "make", bin), Err(LinkError::NotOurs(_))));
        remove(a, "cargo", bin).unwrap();
        assert!(matches!(
            remove(a, "cargo", bin),
            Err(LinkError::Missing(_))
        ));
        let left: Vec<_> = std::fs::read_dir(bin)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left.len(), 2, "{left:?}");
    }
}
