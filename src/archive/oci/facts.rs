//! What an image config and a runtime bundle say about a sandbox: the
//! environment, user, working directory and entry point a `run` would
//! use, and the architecture. Read through the sandbox's own files
//! (`/etc/passwd`, `chroot.d/`), the same way `run` reads them.
use std::os::fd::AsFd;

use anyhow::{Context, Result};

use crate::conf::Conf;
use crate::launch::user::{self, User};
use crate::sandbox::Sandbox;
use crate::show;

/// The process an image or a bundle starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// `K=V`: PATH and the user's HOME, USER, LOGNAME, SHELL.
    pub env: Vec<String>,
    /// `[run] user` as written (`USER[:GROUP]`), for the image config.
    pub user_spec: Option<String>,
    /// That user resolved in the sandbox's own /etc/passwd and /etc/group.
    pub user: User,
    /// `[run] workdir`, else `/`.
    pub workdir: String,
    /// `/chroot.d/chroot-cmd` when the sandbox has one: every command goes
    /// through it, as rule 3 of `run`'s dispatch.
    pub entrypoint: Option<Vec<String>>,
    /// The default command: the user's login shell.
    pub cmd: Vec<String>,
    /// OCI architecture name and variant.
    pub arch: (String, Option<String>),
}

impl Facts {
    /// The argv a bundle's process starts with.
    pub fn args(&self) -> Vec<String> {
        let mut a = self.entrypoint.clone().unwrap_or_default();
        a.extend(self.cmd.iter().cloned());
        a
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The facts of `sb` given its tool.conf.
pub fn of(sb: &Sandbox, conf: &Conf) -> Result<Facts> {
    let root = crate::sys::open_root(&sb.dir)
        .with_context(|| format!("opening {}", show::path(&sb.dir)))?;
    let passwd = user::read_etc(root.as_fd(), &sb.dir, "passwd")?;
    let user_spec = conf.run.user.as_ref().map(|s| s.value.clone());
    let user = match &user_spec {
        Some(spec) => {
            let group = user::read_etc(root.as_fd(), &sb.dir, "group")?;
            user::resolve(spec, &passwd, &group).with_context(|| {
                format!(
                    "{}:{}: [run] user",
                    show::path(&conf.path),
                    conf.run.user.as_ref().map_or(0, |s| s.line)
                )
            })?
        }
        None => user::root_of(&passwd),
    };
    let mut env = vec![format!("PATH={}", crate::launch::build::PATH)];
    for (k, v) in user.env() {
        env.push(format!("{}={}", k.to_string_lossy(), v.to_string_lossy()));
    }
    let workdir = conf.run.workdir.as_ref().map_or_else(
        || "/".to_string(),
        |w| w.value.to_string_lossy().into_owned(),
    );
    let entrypoint = sb
        .has_command("chroot-cmd")
        .then(|| vec!["/chroot.d/chroot-cmd".to_string()]);
    let shell = text(&user.shell);
    let shell = if shell.starts_with('/') && sb.chroot_file(&shell).is_some() {
        shell
    } else {
        "/bin/sh".to_string()
    };
    let debian = crate::create::record::load(&sb.dir).map(|r| r.arch);
    let arch = debian
        .as_deref()
        .and_then(from_debian)
        .unwrap_or_else(host_arch);
    Ok(Facts {
        env,
        user_spec,
        user,
        workdir,
        entrypoint,
        cmd: vec![shell],
        arch,
    })
}

fn pair(a: &str, v: Option<&str>) -> (String, Option<String>) {
    (a.to_string(), v.map(str::to_string))
}

/// A Debian architecture as OCI names it (GOARCH and variant).
pub fn from_debian(arch: &str) -> Option<(String, Option<String>)> {
    Some(match arch {
        "amd64" => pair("amd64", None),
        "arm64" => pair("arm64", Some("v8")),
        "armhf" => pair("arm", Some("v7")),
        "armel" => pair("arm", Some("v5")),
        "i386" => pair("386", None),
        "ppc64el" => pair("ppc64le", None),
        "s390x" => pair("s390x", None),
        "riscv64" => pair("riscv64", None),
        "mips64el" => pair("mips64le", None),
        "loong64" => pair("loong64", None),
        _ => return None,
    })
}

/// The architecture this program was built for, as OCI names it.
pub fn host_arch() -> (String, Option<String>) {
    match std::env::consts::ARCH {
        "x86_64" => pair("amd64", None),
        "aarch64" => pair("arm64", Some("v8")),
        "x86" => pair("386", None),
        "arm" => pair("arm", None),
        "powerpc64" => pair("ppc64le", None),
        "s390x" => pair("s390x", None),
        "riscv64" => pair("riscv64", None),
        "loongarch64" => pair("loong64", None),
        other => pair(other, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_names() {
        assert_eq!(from_debian("amd64"), Some(pair("amd64", None)));
        assert_eq!(from_debian("armhf"), Some(pair("arm", Some("v7"))));
        assert_eq!(from_debian("ppc64el"), Some(pair("ppc64le", None)));
        assert_eq!(from_debian("hurd-i386"), None);
    }

    #[test]
    fn args_are_entrypoint_then_cmd() {
        let f = Facts {
            env: vec![],
            user_spec: None,
            user: user::root_of(b""),
            workdir: "/".into(),
            entrypoint: Some(vec!["/chroot.d/chroot-cmd".into()]),
            cmd: vec!["/bin/sh".into()],
            arch: host_arch(),
        };
        assert_eq!(f.args(), ["/chroot.d/chroot-cmd", "/bin/sh"]);
    }
}
