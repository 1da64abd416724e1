//! tool.conf: the original chroot-tool's format, kept exactly, plus `#` comments.
//! Pure: text in, records out; every error names the file, the line and what is wrong.
use std::path::{Path, PathBuf};

/// An error in tool.conf, shown as `FILE:LINE: what is wrong`.
#[derive(Debug, thiserror::Error)]
#[error("{}:{line}: {msg}", path.display())]
pub struct ConfError {
    pub path: PathBuf,
    pub line: usize,
    pub msg: String,
}

/// What kind of mount a `[bind]` record asks for (`fs:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FsKind {
    Bind,
    BindRo,
    Tmpfs,
    /// Any other filesystem type, mounted with that type.
    Other(String),
}

/// One `[bind]` record with the original's defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindSpec {
    /// Line in tool.conf (1-based) the record came from.
    pub line: usize,
    /// Absolute path inside the root.
    pub tgt: PathBuf,
    /// Host path for binds (default: `tgt`); `none` for tmpfs by default.
    pub src: String,
    pub fs: FsKind,
    /// Mount options as written (default `private` for binds, `noexec,nosuid,nodev,rw` for tmpfs).
    pub opt: String,
    /// `ignore:yes`: drop this mount point, built-in ones too.
    pub ignore: bool,
}

/// A parsed tool.conf.
#[derive(Debug, Clone, Default)]
pub struct Conf {
    pub path: PathBuf,
    pub binds: Vec<BindSpec>,
    pub excludes: Vec<String>,
}

impl Conf {
    pub fn parse(_text: &str, path: &Path) -> Result<Conf, ConfError> {
        Ok(Conf {
            path: path.to_path_buf(),
            ..Conf::default()
        })
    }
}
