//! `chroot.d/create.toml`: how a sandbox was made. Written last by `create`
//! (its presence marks a create that succeeded); read by `status`.
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// The file name inside `chroot.d/`.
pub const FILE: &str = "create.toml";

/// How a sandbox was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateRecord {
    /// The suite asked for (`stable`, `bookworm`…).
    pub suite: String,
    /// The codename it turned out to be (from the rootfs' os-release), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codename: Option<String>,
    pub mirror: String,
    pub variant: String,
    pub arch: String,
    #[serde(default)]
    pub components: Vec<String>,
    #[serde(default)]
    pub include: Vec<String>,
    /// Arguments given to the backend after `--`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub debootstrap_args: Vec<String>,
    /// When it was made, UTC, RFC 3339 (`2025-01-31T12:00:00Z`).
    pub date: String,
    /// How long debootstrap and the setup took, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<u64>,
    /// chroot-tool's version.
    pub tool_version: String,
    /// The program that built the rootfs: `debootstrap` or `mmdebstrap`
    /// (records made before there was a choice name none: debootstrap).
    #[serde(default = "debootstrap")]
    pub backend: String,
    /// `debootstrap --version`, when it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debootstrap_version: Option<String>,
    /// `mmdebstrap --version`, when it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mmdebstrap_version: Option<String>,
    /// The normal user who created it (root inside is that user on disk;
    /// the other ids are the user's subordinate range); none for root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

fn debootstrap() -> String {
    "debootstrap".into()
}

impl CreateRecord {
    pub fn to_toml(&self) -> String {
        let body = toml::to_string(self).expect("a CreateRecord always serializes");
        format!("# How this sandbox was made (written by chroot-tool create).\n{body}")
    }
}

/// At most this much of a `create.toml` is read.
pub const CAP: usize = 64 << 10;

/// The record of the sandbox `dir` (its `chroot.d/create.toml`, resolved
/// inside the root: a regular file of at most [`CAP`] bytes, never a FIFO,
/// a device or a host file), if there is a readable one.
pub fn load(dir: &Path) -> Option<CreateRecord> {
    use std::os::fd::AsFd;
    let root = crate::sys::open_root(dir).ok()?;
    let bytes =
        crate::sys::read_in_root(root.as_fd(), &Path::new("/chroot.d").join(FILE), CAP).ok()??;
    toml::from_str(std::str::from_utf8(&bytes).ok()?).ok()
}

/// `t` as an RFC 3339 UTC timestamp, to the second.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86400, secs % 86400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day) (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_709_210_096);
        assert_eq!(rfc3339(t), "2024-02-29T12:34:56Z");
    }

    #[test]
    fn round_trip() {
        let r = CreateRecord {
            suite: "stable".into(),
            codename: Some("trixie".into()),
            mirror: "http://deb.debian.org/debian".into(),
            variant: "minbase".into(),
            arch: "amd64".into(),
            components: vec!["main".into()],
            include: vec![],
            debootstrap_args: vec![],
            date: "2024-02-29T12:34:56Z".into(),
            seconds: Some(40),
            tool_version: "0.1.0".into(),
            backend: "mmdebstrap".into(),
            debootstrap_version: None,
            mmdebstrap_version: Some("1.3.5".into()),
            user: Some("ct-user".into()),
        };
        let dir = std::env::temp_dir().join(format!("ct-record-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("chroot.d")).unwrap();
        std::fs::write(dir.join("chroot.d").join(FILE), r.to_toml()).unwrap();
        assert_eq!(load(&dir), Some(r));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
