//! What a new sandbox takes from the host so that HTTPS and apt work inside
//! as they do outside, behind a proxy that may intercept TLS: the locally
//! added CA certificates and apt's proxy setting.
//!
//! Certificates: the certificate blocks of every `*.crt` under
//! `/usr/local/share/ca-certificates` (a regular file, read up to 1 MiB)
//! are copied to the same place in the rootfs, and, when the rootfs already has
//! the `ca-certificates` bundle (`/etc/ssl/certs/ca-certificates.crt`), appended
//! to it. That is what `update-ca-certificates` does with them, done by file
//! writes: nothing runs inside, so it is the same for root and for a normal
//! user's create and for both backends, and costs nothing. A minbase rootfs
//! has no bundle; installing `ca-certificates` inside later runs
//! `update-ca-certificates`, which takes the copied files in.
//!
//! Proxy: `Acquire::http::Proxy` and `Acquire::https::Proxy` (with their
//! per-host entries) from the host's `apt-config dump`, else from
//! `http_proxy`/`https_proxy` in the environment, written to
//! `/etc/apt/apt.conf.d/80chroot-tool-proxy`; the backend gets them too
//! (`host_proxy`, read once before it runs).
use std::path::{Path, PathBuf};

use super::setup::{Root, SetupError};

/// The host's locally added certificates.
pub const HOST_CERTS: &str = "/usr/local/share/ca-certificates";
/// Where they go inside, and the bundle they join.
pub const CERTS: &str = "usr/local/share/ca-certificates";
pub const BUNDLE: &str = "etc/ssl/certs/ca-certificates.crt";
/// apt's proxy setting inside.
pub const PROXY_CONF: &str = "etc/apt/apt.conf.d/80chroot-tool-proxy";

/// Largest certificate file carried.
const CERT_CAP: u64 = 1 << 20;

/// What was carried, for the log.
#[derive(Debug, Default)]
pub struct Carried {
    /// Certificates copied (paths below `/usr/local/share/ca-certificates`).
    pub certs: Vec<PathBuf>,
    /// They were appended to the rootfs' bundle.
    pub bundled: bool,
    /// apt proxy lines written.
    pub proxy: Vec<String>,
    /// What was left out, and why.
    pub notes: Vec<String>,
}

impl Carried {
    /// One line for the log.
    pub fn summary(&self) -> String {
        let certs = if self.certs.is_empty() {
            "no local CA certificates on the host".to_string()
        } else {
            format!(
                "{} local CA certificate(s) copied to /{CERTS}{}",
                self.certs.len(),
                if self.bundled {
                    format!(" and appended to /{BUNDLE}")
                } else {
                    " (no bundle yet: installing ca-certificates inside takes them in)".into()
                }
            )
        };
        let proxy = if self.proxy.is_empty() {
            "no apt proxy on the host".to_string()
        } else {
            format!(
                "apt proxy written to /{PROXY_CONF}: {}",
                self.proxy
                    .iter()
                    .map(|l| hide_password(l))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        };
        format!("{certs}; {proxy}")
    }
}

/// The `*.crt` names below `dir` (as `update-ca-certificates` finds
/// them: in subdirectories too, a symlinked directory never entered),
/// sorted, relative to `dir`. What each is is decided when it is read
/// (`read_cert`).
pub fn host_certs(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    let mut todo = vec![(PathBuf::new(), 0)];
    while let Some((rel, depth)) = todo.pop() {
        let Ok(rd) = std::fs::read_dir(dir.join(&rel)) else {
            continue;
        };
        for e in rd.flatten() {
            let r = rel.join(e.file_name());
            let Ok(kind) = e.file_type() else {
                continue;
            };
            if kind.is_dir() && depth < 4 {
                todo.push((r, depth + 1));
            } else if !kind.is_dir() && r.extension().is_some_and(|x| x == "crt") {
                out.push(r);
            }
        }
    }
    out.sort();
    out
}

/// The certificates in the host file `path`: its `CERTIFICATE` blocks
/// only, so that nothing else of a file (a private key kept beside a
/// certificate, or whatever a symlink leads to: `/etc/shadow`, a process's
/// environment) ever reaches a sandbox. The file is opened without
/// waiting (a FIFO), must be a regular file, and is read no further than
/// the cap. `None` when there is no certificate in it.
fn read_cert(path: &Path) -> Option<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .ok()?;
    if !f.metadata().ok()?.is_file() {
        return None;
    }
    let mut bytes = vec![];
    f.take(CERT_CAP + 1).read_to_end(&mut bytes).ok()?;
    if bytes.len() as u64 > CERT_CAP {
        return None;
    }
    let text = String::from_utf8(bytes).ok()?;
    let certs = pem_certificates(&text);
    (!certs.is_empty()).then_some(certs)
}

/// The `-----BEGIN CERTIFICATE-----` ... `-----END CERTIFICATE-----`
/// blocks of `text`, each on lines of its own, one after the other.
pub fn pem_certificates(text: &str) -> String {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let mut out = String::new();
    let mut block: Option<String> = None;
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        match &mut block {
            None if line == BEGIN => block = Some(format!("{line}\n")),
            None => {}
            Some(b) if line == END => {
                b.push_str(line);
                b.push('\n');
                out.push_str(b);
                block = None;
            }
            Some(b) if line == BEGIN => *b = format!("{line}\n"),
            Some(b) => {
                if line
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"+/=".contains(&c))
                {
                    b.push_str(line);
                    b.push('\n');
                } else {
                    block = None;
                }
            }
        }
    }
    out
}

/// Whether `value` holds a URL with a password.
pub fn has_password(value: &str) -> bool {
    hide_password(value) != value
}

/// `line` with the password of a URL in it (`scheme://user:password@`)
/// shown as `***`.
pub fn hide_password(line: &str) -> String {
    let Some(at) = line.find("://").map(|i| i + 3) else {
        return line.to_string();
    };
    let rest = &line[at..];
    let end = rest.find(['/', '"', ' ']).unwrap_or(rest.len());
    let Some(sign) = rest[..end].rfind('@') else {
        return line.to_string();
    };
    match rest[..sign].find(':') {
        Some(colon) => format!("{}{}:***{}", &line[..at], &rest[..colon], &rest[sign..]),
        None => line.to_string(),
    }
}

/// One setting of apt's configuration as `apt-config dump` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub key: String,
    pub value: String,
}

impl Setting {
    /// The line for an apt.conf file.
    pub fn line(&self) -> String {
        format!("{} \"{}\";", self.key, self.value)
    }
}

/// A value we are willing to write between apt's quotes.
fn fit_value(v: &str) -> bool {
    !v.is_empty() && v.len() <= 2048 && !v.chars().any(|c| c.is_control() || c == '"')
}

/// The proxy settings of `dump` (`apt-config dump`'s output): the keys
/// `Acquire::http::Proxy`, `Acquire::https::Proxy` and their per-host
/// children, then, for a scheme without one, `http_proxy`/`https_proxy`
/// from `env` (lower case first, as apt and curl read them). Values that
/// could not be written back safely are left out.
pub fn proxy_settings(dump: &str, env: impl Fn(&str) -> Option<String>) -> Vec<Setting> {
    let mut out: Vec<Setting> = vec![];
    for line in dump.lines() {
        let Some((key, rest)) = line.split_once(' ') else {
            continue;
        };
        let ours = ["Acquire::http::Proxy", "Acquire::https::Proxy"]
            .iter()
            .any(|k| key == *k || key.strip_prefix(k).is_some_and(|r| r.starts_with("::")));
        if !ours || !key.chars().all(|c| c.is_ascii_graphic() && c != '"') {
            continue;
        }
        let Some(value) = rest
            .trim()
            .strip_suffix(';')
            .and_then(|v| v.strip_prefix('"'))
            .and_then(|v| v.strip_suffix('"'))
        else {
            continue;
        };
        if fit_value(value) {
            out.push(Setting {
                key: key.to_string(),
                value: value.to_string(),
            });
        }
    }
    for (scheme, vars) in [
        ("http", ["http_proxy", "HTTP_PROXY"]),
        ("https", ["https_proxy", "HTTPS_PROXY"]),
    ] {
        let key = format!("Acquire::{scheme}::Proxy");
        if out.iter().any(|s| s.key == key) {
            continue;
        }
        if let Some(v) = vars.iter().find_map(|v| env(v)).filter(|v| fit_value(v)) {
            out.push(Setting { key, value: v });
        }
    }
    out
}

/// The host's `apt-config dump`, or nothing when apt is not there.
fn apt_config_dump() -> String {
    std::process::Command::new("apt-config")
        .arg("dump")
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// The host's proxy settings for apt (see [`proxy_settings`]), read once
/// before the backend runs: the backend gets them too (mmdebstrap's apt
/// reads no host configuration of its own; debootstrap's wget reads the
/// environment), so that a create works behind the proxy as apt does.
pub fn host_proxy() -> Vec<Setting> {
    proxy_settings(&apt_config_dump(), |v| std::env::var(v).ok())
}

/// The proxy a download by URL of `scheme` goes through, from the
/// settings, when there is one (`DIRECT` is none).
pub fn proxy_for(settings: &[Setting], scheme: &str) -> Option<String> {
    let key = format!("Acquire::{scheme}::Proxy");
    settings
        .iter()
        .find(|s| s.key == key)
        .map(|s| s.value.clone())
        .filter(|v| !v.eq_ignore_ascii_case("DIRECT"))
}

/// Carries the host's certificates (from `host_dir`) and the proxy
/// settings `proxy` (see [`host_proxy`]) into `root`.
pub fn carry(root: &Root, host_dir: &Path, proxy: &[Setting]) -> Result<Carried, SetupError> {
    let mut done = Carried::default();
    let mut pem = String::new();
    for rel in host_certs(host_dir) {
        let Some(text) = read_cert(&host_dir.join(&rel)) else {
            done.notes.push(format!(
                "{}: not carried (unreadable, not a regular file, over 1 MiB, or no PEM certificate in it)",
                crate::show::path(host_dir.join(&rel))
            ));
            continue;
        };
        root.write_file(&Path::new(CERTS).join(&rel), &text)?;
        pem.push_str(&text);
        if !text.ends_with('\n') {
            pem.push('\n');
        }
        done.certs.push(rel);
    }
    if !pem.is_empty() {
        done.bundled = root.append_if_file(Path::new(BUNDLE), &pem)?;
    }
    if !proxy.is_empty() {
        let mut text =
            String::from("// The host's proxy for apt, carried by chroot-tool create.\n");
        for s in proxy {
            text.push_str(&s.line());
            text.push('\n');
        }
        // A password in a proxy's URL is for root's apt alone.
        let secret = proxy.iter().any(|s| has_password(&s.value));
        root.write_file_mode(
            Path::new(PROXY_CONF),
            &text,
            if secret { 0o600 } else { 0o644 },
        )?;
        done.proxy = proxy.iter().map(Setting::line).collect();
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DUMP: &str = r#"APT "";
APT::Architecture "amd64";
Acquire::http::Proxy "http://proxy.corp:3128/";
Acquire::http::Proxy::deb.local "DIRECT";
Acquire::https::Proxy "http://proxy.corp:3128/";
Acquire::http::Proxy-Auto-Detect "/usr/bin/detect";
Acquire::ftp::Proxy "ftp://x/";
Acquire::https::Proxy::evil "a"; Dir "/";
Acquire::https::Proxy::evil2 "a"b";
"#;

    #[test]
    fn only_certificate_blocks_are_carried() {
        let cert = "-----BEGIN CERTIFICATE-----\nMIIB+/=\nabc\n-----END CERTIFICATE-----\n";
        let key = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n";
        assert_eq!(
            pem_certificates(&format!("{key}{cert}junk\n{cert}")),
            cert.repeat(2)
        );
        assert_eq!(pem_certificates("root:$6$x:19000:0:99999:7:::\n"), "");
        assert_eq!(pem_certificates("PATH=/bin\0SECRET=x\0"), "");
        // A block that is interrupted by anything but base64 is dropped.
        let broken = "-----BEGIN CERTIFICATE-----\nMIIB\nroot:x:0:0\n-----END CERTIFICATE-----\n";
        assert_eq!(pem_certificates(broken), "");
        assert_eq!(pem_certificates(&cert.replace('\n', "\r\n")), cert);
    }

    #[test]
    fn passwords_in_proxy_urls_are_hidden() {
        assert_eq!(
            hide_password("Acquire::http::Proxy \"http://alice:S3cret@proxy:3128/\";"),
            "Acquire::http::Proxy \"http://alice:***@proxy:3128/\";"
        );
        assert_eq!(hide_password("http://a:b:c@p/"), "http://a:***@p/");
        assert_eq!(
            hide_password("http://alice@proxy:3128/"),
            "http://alice@proxy:3128/"
        );
        assert_eq!(hide_password("http://proxy:3128/"), "http://proxy:3128/");
        assert_eq!(hide_password("DIRECT"), "DIRECT");
    }

    #[test]
    fn proxy_from_apt_config() {
        let s = proxy_settings(DUMP, |_| Some("http://env:1/".into()));
        let lines: Vec<String> = s.iter().map(Setting::line).collect();
        assert_eq!(
            lines,
            [
                "Acquire::http::Proxy \"http://proxy.corp:3128/\";",
                "Acquire::http::Proxy::deb.local \"DIRECT\";",
                "Acquire::https::Proxy \"http://proxy.corp:3128/\";",
            ]
        );
    }

    #[test]
    fn proxy_from_the_environment() {
        let env = |v: &str| match v {
            "HTTP_PROXY" => Some("http://upper:8080".to_string()),
            "https_proxy" => Some("http://lower:8080".to_string()),
            _ => None,
        };
        let s = proxy_settings("APT \"\";\n", env);
        assert_eq!(
            s,
            [
                Setting {
                    key: "Acquire::http::Proxy".into(),
                    value: "http://upper:8080".into()
                },
                Setting {
                    key: "Acquire::https::Proxy".into(),
                    value: "http://lower:8080".into()
                }
            ]
        );
        // A value that would break out of apt's quotes is never written.
        assert!(proxy_settings("", |_| Some("http://x\";\nDir \"/".into())).is_empty());
        assert!(proxy_settings("", |_| None).is_empty());
        let s = proxy_settings(DUMP, |_| None);
        assert_eq!(
            proxy_for(&s, "http").as_deref(),
            Some("http://proxy.corp:3128/")
        );
        let direct = proxy_settings("Acquire::https::Proxy \"DIRECT\";\n", |_| None);
        assert_eq!(proxy_for(&direct, "https"), None);
        assert_eq!(proxy_for(&direct, "http"), None);
    }

    #[test]
    fn certs_copied_and_bundled() {
        let t = tempfile::tempdir().unwrap();
        let host = t.path().join("host");
        std::fs::create_dir_all(host.join("corp")).unwrap();
        let pem =
            |b: &str| format!("-----BEGIN CERTIFICATE-----\n{b}\n-----END CERTIFICATE-----\n");
        let (a, b) = (pem("AAAA"), pem("BBBB"));
        std::fs::write(host.join("a.crt"), &a).unwrap();
        // Kept beside the certificate: a private key, never carried.
        let key = "-----BEGIN PRIVATE KEY-----\nKKKK\n-----END PRIVATE KEY-----\n";
        std::fs::write(host.join("corp/b.crt"), format!("{key}{b}")).unwrap();
        std::fs::write(host.join("notes.txt"), "no").unwrap();
        // Host secrets behind symlinks, a FIFO, a huge file: none carried,
        // none read whole, nothing waits.
        let secret = t.path().join("shadow");
        std::fs::write(&secret, "root:$6$secret:19000:0:99999:7:::\n").unwrap();
        std::os::unix::fs::symlink(&secret, host.join("shadow.crt")).unwrap();
        std::os::unix::fs::symlink("/proc/self/environ", host.join("env.crt")).unwrap();
        nix::unistd::mkfifo(
            &host.join("fifo.crt"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        std::fs::File::create(host.join("huge.crt"))
            .unwrap()
            .set_len(CERT_CAP * 1024)
            .unwrap();
        std::os::unix::fs::symlink(t.path(), host.join("loop")).unwrap();
        assert_eq!(
            host_certs(&host),
            [
                "a.crt",
                "corp/b.crt",
                "env.crt",
                "fifo.crt",
                "huge.crt",
                "shadow.crt"
            ]
            .map(PathBuf::from)
        );
        let rootfs = t.path().join("root");
        std::fs::create_dir_all(rootfs.join("etc/ssl/certs")).unwrap();
        std::fs::write(rootfs.join(BUNDLE), "-----DEBIAN-----\n").unwrap();
        let root = Root::open(&rootfs).unwrap();
        let done = carry(&root, &host, &[]).unwrap();
        assert_eq!(
            done.certs,
            [PathBuf::from("a.crt"), PathBuf::from("corp/b.crt")]
        );
        assert_eq!(done.notes.len(), 4, "{:?}", done.notes);
        assert!(done.bundled);
        assert_eq!(
            std::fs::read_to_string(rootfs.join(CERTS).join("corp/b.crt")).unwrap(),
            b
        );
        assert!(!rootfs.join(CERTS).join("shadow.crt").exists());
        assert_eq!(
            std::fs::read_to_string(rootfs.join(BUNDLE)).unwrap(),
            format!("-----DEBIAN-----\n{a}{b}")
        );
        // No bundle (minbase): the files only.
        let bare = t.path().join("bare");
        std::fs::create_dir_all(&bare).unwrap();
        let done = carry(&Root::open(&bare).unwrap(), &host, &[]).unwrap();
        assert!(!done.bundled);
        assert!(bare.join(CERTS).join("a.crt").is_file());
        assert!(!bare.join(BUNDLE).exists());
        // A bundle that is a symlink is never written through.
        let linked = t.path().join("linked");
        std::fs::create_dir_all(linked.join("etc/ssl/certs")).unwrap();
        std::fs::write(t.path().join("outside"), "x\n").unwrap();
        std::os::unix::fs::symlink(t.path().join("outside"), linked.join(BUNDLE)).unwrap();
        let done = carry(&Root::open(&linked).unwrap(), &host, &[]).unwrap();
        assert!(!done.bundled);
        assert_eq!(
            std::fs::read_to_string(t.path().join("outside")).unwrap(),
            "x\n"
        );
    }
}
