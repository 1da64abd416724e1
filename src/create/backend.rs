//! Which program builds the rootfs, and its command line: debootstrap (a
//! shell script, root only) or mmdebstrap (apt on the host, about twice as
//! fast; as a normal user the only choice, in its unshare mode run as root
//! of a user namespace that `idmap` maps). `auto` takes mmdebstrap when it
//! is installed, else debootstrap.
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::{CreateError, Options};

/// What the user asked for (`--backend`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Choice {
    #[default]
    Auto,
    Debootstrap,
    Mmdebstrap,
}

impl std::str::FromStr for Choice {
    type Err = String;
    fn from_str(s: &str) -> Result<Choice, String> {
        match s {
            "auto" => Ok(Choice::Auto),
            "debootstrap" => Ok(Choice::Debootstrap),
            "mmdebstrap" => Ok(Choice::Mmdebstrap),
            _ => Err(format!(
                "unknown backend {}: auto, debootstrap or mmdebstrap",
                crate::show::quote(s)
            )),
        }
    }
}

/// The program that builds the rootfs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Debootstrap,
    Mmdebstrap,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Debootstrap => "debootstrap",
            Backend::Mmdebstrap => "mmdebstrap",
        }
    }
}

/// A backend and where it is installed.
#[derive(Debug, Clone)]
pub struct Found {
    pub backend: Backend,
    pub path: PathBuf,
}

fn locate(name: &str) -> Option<PathBuf> {
    which::which(name)
        .or_else(|_| which::which_in(name, Some("/usr/sbin:/sbin:/usr/bin:/bin"), "/"))
        .ok()
}

/// The backend for `choice`, for root (`privileged`) or a normal user.
pub fn find(choice: Choice, privileged: bool) -> Result<Found, CreateError> {
    let mm = || {
        locate("mmdebstrap").map(|path| Found {
            backend: Backend::Mmdebstrap,
            path,
        })
    };
    let deb = || {
        locate("debootstrap").map(|path| Found {
            backend: Backend::Debootstrap,
            path,
        })
    };
    if !privileged {
        return match choice {
            Choice::Debootstrap => Err(CreateError::DebootstrapAsUser),
            Choice::Auto | Choice::Mmdebstrap => mm().ok_or(CreateError::NoMmdebstrap),
        };
    }
    match choice {
        Choice::Debootstrap => deb().ok_or(CreateError::NoDebootstrap),
        Choice::Mmdebstrap => mm().ok_or(CreateError::NoMmdebstrap),
        Choice::Auto => mm().or_else(deb).ok_or(CreateError::NoBackend),
    }
}

/// mmdebstrap's arguments: verbose (its steps and apt's lines are the
/// progress), a directory (`--format=directory`, DIR already holds
/// `chroot.d/`: `--skip=check/empty`), `--mode=root` for root, `unshare`
/// as root of a user namespace (mmdebstrap then only unshares its mount
/// and pid namespaces, and the ids are ours), then the options create
/// shares with debootstrap, the host's apt proxy settings (its apt reads
/// no host configuration: without them it would not get through a proxy
/// apt on the host is set to use), the extra arguments, suite, DIR and mirror.
pub fn mmdebstrap_args(
    opts: &Options,
    dir: &Path,
    userns: bool,
    proxy: &[super::trust::Setting],
) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![
        "--verbose".into(),
        "--format=directory".into(),
        "--skip=check/empty".into(),
        format!("--mode={}", if userns { "unshare" } else { "root" }).into(),
        format!("--variant={}", opts.variant).into(),
    ];
    if !opts.include.is_empty() {
        args.push(format!("--include={}", opts.include.join(",")).into());
    }
    if let Some(a) = &opts.arch {
        args.push(format!("--architectures={a}").into());
    }
    if !opts.components.is_empty() {
        args.push(format!("--components={}", opts.components.join(",")).into());
    }
    // A setting with a password is never on the command line, which every
    // user of the host can read (`ps`), nor in mmdebstrap's apt file it
    // leaves in the rootfs (0644): the caller passes it in the environment.
    for s in proxy
        .iter()
        .filter(|s| !super::trust::has_password(&s.value))
    {
        args.push(format!("--aptopt={}", s.line()).into());
    }
    args.extend(opts.extra.iter().map(Into::into));
    args.push(opts.suite.clone().into());
    args.push(dir.as_os_str().to_owned());
    args.push(opts.mirror.clone().into());
    args
}

/// mmdebstrap's version, read from its script (`our $VERSION = '1.3.5';`
/// near its top) rather than asked: starting perl on the whole script costs
/// a quarter of a second, a create's cost should be the backend's own.
pub fn mmdebstrap_version(path: &Path) -> Option<String> {
    use std::io::Read;
    let mut head = vec![];
    std::fs::File::open(path)
        .ok()?
        .take(8192)
        .read_to_end(&mut head)
        .ok()?;
    version_in(&String::from_utf8_lossy(&head))
}

fn version_in(script: &str) -> Option<String> {
    script.lines().find_map(|l| {
        let v = l
            .trim()
            .strip_prefix("our $VERSION = '")?
            .strip_suffix("';")?;
        (!v.is_empty()
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || ".+~-".contains(c)))
        .then(|| v.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_from_the_script() {
        let head = "#!/usr/bin/perl\n#\nuse strict;\nour $VERSION = '1.3.5';\n";
        assert_eq!(version_in(head).as_deref(), Some("1.3.5"));
        assert_eq!(version_in("our $VERSION = 'x; rm';\n"), None);
        assert_eq!(version_in("#!/bin/sh\n"), None);
    }

    #[test]
    fn choices() {
        assert_eq!("auto".parse(), Ok(Choice::Auto));
        assert_eq!("mmdebstrap".parse(), Ok(Choice::Mmdebstrap));
        assert!("cdebootstrap".parse::<Choice>().is_err());
        assert!(matches!(
            find(Choice::Debootstrap, false),
            Err(CreateError::DebootstrapAsUser)
        ));
    }

    #[test]
    fn mmdebstrap_command_line() {
        let opts = Options {
            suite: "bookworm".into(),
            mirror: "http://deb.debian.org/debian".into(),
            variant: "minbase".into(),
            include: vec!["ca-certificates".into(), "less".into()],
            arch: Some("arm64".into()),
            components: vec!["main".into(), "contrib".into()],
            extra: vec!["--aptopt=Acquire::Retries 3".into()],
            quiet: true,
            backend: Choice::Mmdebstrap,
            cache: crate::create::cache::Mode::Use,
            from: None,
            trust: false,
        };
        let proxy = [super::super::trust::Setting {
            key: "Acquire::http::Proxy".into(),
            value: "http://proxy:3128/".into(),
        }];
        let a = mmdebstrap_args(&opts, Path::new("/srv/sb"), true, &proxy);
        let a: Vec<&str> = a.iter().map(|s| s.to_str().unwrap()).collect();
        assert_eq!(
            a,
            [
                "--verbose",
                "--format=directory",
                "--skip=check/empty",
                "--mode=unshare",
                "--variant=minbase",
                "--include=ca-certificates,less",
                "--architectures=arm64",
                "--components=main,contrib",
                "--aptopt=Acquire::http::Proxy \"http://proxy:3128/\";",
                "--aptopt=Acquire::Retries 3",
                "bookworm",
                "/srv/sb",
                "http://deb.debian.org/debian"
            ]
        );
        let a = mmdebstrap_args(&opts, Path::new("/srv/sb"), false, &[]);
        assert!(a.iter().any(|s| s == "--mode=root"));
        // A password is never on the command line (`ps` shows it to all).
        let secret = [super::super::trust::Setting {
            key: "Acquire::https::Proxy".into(),
            value: "http://alice:S3cret@proxy:3128/".into(),
        }];
        let a = mmdebstrap_args(&opts, Path::new("/srv/sb"), false, &secret);
        assert!(
            !a.iter().any(|s| s.to_string_lossy().contains("S3cret")),
            "{a:?}"
        );
    }
}
