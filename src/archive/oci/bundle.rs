//! `export --bundle`: an OCI runtime bundle (`config.json` and `rootfs/`)
//! for runc or crun. Its mounts are those `on` makes (from the same plan:
//! the built-in ones and tool.conf's `[bind]` records), its limits those
//! of `[limits]`, its process the one an image of the sandbox starts.
//! Pure: the plan, the limits and the facts in, a runtime `Spec` out.
use anyhow::Result;
use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder, LinuxMemoryBuilder,
    LinuxNamespaceBuilder, LinuxNamespaceType, LinuxPidsBuilder, LinuxResourcesBuilder, Mount,
    MountBuilder, PosixRlimitBuilder, PosixRlimitType, ProcessBuilder, RootBuilder, Spec,
    SpecBuilder, UserBuilder,
};

use super::facts::Facts;
use crate::cgroup::{limits::CPU_PERIOD_US, Limits, Rlimit};
use crate::plan::{Op, What};
use crate::sys::{Attrs, Propagation};

/// The capabilities of the process: what root needs for the work done in
/// a sandbox (apt, adduser, chown, chroot), the set container engines give
/// by default; not the host-level ones (modules, raw I/O, admin).
pub const CAPABILITIES: [Capability; 14] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// The mount words of per-mount attributes.
fn attr_words(a: Attrs) -> Vec<String> {
    [
        (Attrs::RDONLY, "ro"),
        (Attrs::NOSUID, "nosuid"),
        (Attrs::NODEV, "nodev"),
        (Attrs::NOEXEC, "noexec"),
        (Attrs::NOATIME, "noatime"),
        (Attrs::STRICTATIME, "strictatime"),
        (Attrs::NODIRATIME, "nodiratime"),
    ]
    .into_iter()
    .filter(|(bit, _)| a.has(*bit))
    .map(|(_, w)| w.to_string())
    .collect()
}

/// The bundle's mount of a plan operation; `None` for what the runtime
/// makes itself in a fresh /dev (the device nodes, `ptmx` and the
/// `/proc/self/fd` links).
pub fn mount_of(op: &Op) -> Result<Option<Mount>> {
    let dest = op.target.clone();
    let m = match &op.what {
        What::Symlink { .. } | What::Node { .. } => return Ok(None),
        What::Fs {
            fstype,
            source,
            options,
        } => {
            let mut o = attr_words(op.attrs);
            o.extend(options.iter().cloned());
            MountBuilder::default()
                .destination(dest)
                .typ(fstype.clone())
                .source(source.clone())
                .options(o)
                .build()?
        }
        What::Bind { src, recursive } => {
            let mut o = vec![if *recursive { "rbind" } else { "bind" }.to_string()];
            o.extend(attr_words(op.attrs));
            o.push(
                match op.propagation {
                    Propagation::Private => "rprivate",
                    Propagation::Slave => "rslave",
                }
                .to_string(),
            );
            MountBuilder::default()
                .destination(dest)
                .typ("bind")
                .source(src.clone())
                .options(o)
                .build()?
        }
    };
    Ok(Some(m))
}

fn rlimit_type(r: Rlimit) -> PosixRlimitType {
    match r {
        Rlimit::Nofile => PosixRlimitType::RlimitNofile,
        Rlimit::Nproc => PosixRlimitType::RlimitNproc,
        Rlimit::Fsize => PosixRlimitType::RlimitFsize,
        Rlimit::Cpu => PosixRlimitType::RlimitCpu,
        Rlimit::As => PosixRlimitType::RlimitAs,
        Rlimit::Core => PosixRlimitType::RlimitCore,
    }
}

/// What the bundle says about the sandbox besides its plan.
pub struct Settings<'a> {
    pub facts: &'a Facts,
    pub limits: &'a Limits,
    /// `[run] net:none`: a network namespace of its own (only loopback).
    pub net_none: bool,
}

/// The runtime spec of a bundle whose root is `rootfs/`.
pub fn spec(plan: &[Op], s: &Settings) -> Result<Spec> {
    let caps: oci_spec::runtime::Capabilities = CAPABILITIES.into_iter().collect();
    let id = &s.facts.user.identity;
    let mut process = ProcessBuilder::default()
        .terminal(false)
        .user(
            UserBuilder::default()
                .uid(id.uid)
                .gid(id.gid)
                .additional_gids(id.groups.clone())
                .build()?,
        )
        .args(s.facts.args())
        .env(s.facts.env.clone())
        .cwd(s.facts.workdir.clone())
        .capabilities(
            LinuxCapabilitiesBuilder::default()
                .bounding(caps.clone())
                .effective(caps.clone())
                .permitted(caps)
                .build()?,
        )
        .no_new_privileges(false);
    if !s.limits.rlimits.is_empty() {
        let mut rl = Vec::new();
        for &(r, v) in &s.limits.rlimits {
            rl.push(
                PosixRlimitBuilder::default()
                    .typ(rlimit_type(r))
                    .hard(v)
                    .soft(v)
                    .build()?,
            );
        }
        process = process.rlimits(rl);
    }
    let mut mounts = Vec::new();
    for op in plan {
        if let Some(m) = mount_of(op)? {
            mounts.push(m);
        }
    }
    // A pid namespace of its own: the runtime's init and `kill`/`delete`
    // expect one. Mounts and IPC too; the network stays the host's, as in
    // `on`, unless [run] says net:none.
    let mut ns = vec![
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Mount,
    ];
    if s.net_none {
        ns.push(LinuxNamespaceType::Network);
    }
    let mut namespaces = Vec::new();
    for t in ns {
        namespaces.push(LinuxNamespaceBuilder::default().typ(t).build()?);
    }
    let mut resources = LinuxResourcesBuilder::default();
    if let Some(m) = s.limits.memory {
        let m = i64::try_from(m).unwrap_or(i64::MAX);
        resources = resources.memory(LinuxMemoryBuilder::default().limit(m).build()?);
    }
    if let Some(q) = s.limits.cpu_quota {
        resources = resources.cpu(
            LinuxCpuBuilder::default()
                .quota(i64::try_from(q).unwrap_or(i64::MAX))
                .period(CPU_PERIOD_US)
                .build()?,
        );
    }
    if let Some(p) = s.limits.pids {
        resources = resources.pids(
            LinuxPidsBuilder::default()
                .limit(i64::try_from(p).unwrap_or(i64::MAX))
                .build()?,
        );
    }
    let linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .resources(resources.build()?)
        .build()?;
    let mut spec = SpecBuilder::default()
        .version("1.0.2")
        .root(
            RootBuilder::default()
                .path("rootfs")
                .readonly(false)
                .build()?,
        )
        .process(process.build()?)
        .mounts(mounts)
        .linux(linux)
        .build()?;
    // The host's name, as in the sandbox (no UTS namespace to set one in).
    spec.set_hostname(None);
    spec.set_annotations(None);
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conf::Conf;

    fn facts() -> Facts {
        Facts {
            env: vec!["PATH=/bin".into()],
            user_spec: None,
            user: crate::launch::user::root_of(b""),
            workdir: "/work".into(),
            entrypoint: None,
            cmd: vec!["/bin/sh".into()],
            arch: ("amd64".into(), None),
        }
    }

    fn spec_of(conf: &str, net_none: bool) -> serde_json::Value {
        let conf = Conf::parse(conf, std::path::Path::new("/x/chroot.d/tool.conf")).unwrap();
        let plan = crate::plan::build(
            &conf.binds,
            Some(std::path::Path::new("/etc/resolv.conf")),
            "nodev\tproc\nnodev\ttmpfs\n\text4\n",
        )
        .unwrap();
        let f = facts();
        let s = spec(
            &plan,
            &Settings {
                facts: &f,
                limits: &conf.limits,
                net_none,
            },
        )
        .unwrap();
        serde_json::to_value(&s).unwrap()
    }

    fn mount<'a>(v: &'a serde_json::Value, dest: &str) -> Option<&'a serde_json::Value> {
        v["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == dest)
    }

    #[test]
    fn mounts_mirror_on() {
        let v = spec_of(
            "[bind]\nsrc:/srv/project tgt:/project fs:bind-ro\ntgt:/cache fs:tmpfs opt:size=1m\ntgt:/tmp ignore:yes\n",
            false,
        );
        assert_eq!(mount(&v, "/proc").unwrap()["type"], "proc");
        assert_eq!(mount(&v, "/sys").unwrap()["options"][0], "ro");
        assert_eq!(mount(&v, "/dev").unwrap()["type"], "tmpfs");
        let pts = mount(&v, "/dev/pts").unwrap();
        assert!(pts["options"]
            .as_array()
            .unwrap()
            .contains(&"newinstance".into()));
        assert!(mount(&v, "/tmp").is_none(), "ignore:yes drops it");
        assert!(
            mount(&v, "/dev/null").is_none(),
            "the runtime makes the devices"
        );
        let p = mount(&v, "/project").unwrap();
        assert_eq!(p["source"], "/srv/project");
        assert_eq!(p["type"], "bind");
        assert_eq!(p["options"], serde_json::json!(["bind", "ro", "rprivate"]));
        let c = mount(&v, "/cache").unwrap();
        assert_eq!(c["type"], "tmpfs");
        assert!(c["options"].as_array().unwrap().contains(&"size=1m".into()));
        assert_eq!(
            mount(&v, "/etc/resolv.conf").unwrap()["source"],
            "/etc/resolv.conf"
        );
        let ns: Vec<&str> = v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert_eq!(ns, ["pid", "ipc", "mount"]);
        assert_eq!(v["process"]["cwd"], "/work");
        assert_eq!(v["root"]["path"], "rootfs");
    }

    #[test]
    fn limits_mirror_limits() {
        let v = spec_of("[limits]\nmemory:64M cpus:1.5 pids:100 nofile:512\n", true);
        let r = &v["linux"]["resources"];
        assert_eq!(r["memory"]["limit"], 64 << 20);
        assert_eq!(r["cpu"]["quota"], 150_000);
        assert_eq!(r["cpu"]["period"], 100_000);
        assert_eq!(r["pids"]["limit"], 100);
        assert_eq!(
            v["process"]["rlimits"],
            serde_json::json!([{"type": "RLIMIT_NOFILE", "hard": 512, "soft": 512}])
        );
        let ns = v["linux"]["namespaces"].as_array().unwrap();
        assert!(ns.iter().any(|n| n["type"] == "network"));
    }
}
