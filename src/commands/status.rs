//! `status`: on or off, each mount, the processes inside.
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use std::fmt::Write;

use anyhow::Result;
use serde::Serialize;

use crate::cli::StatusArgs;
use crate::sandbox::{Need, Sandbox};
use crate::{engine, mountinfo, procs, show};

/// Names are paths of bytes: JSON gets them escaped (`show::escape`), the
/// text output escaped and bounded (`show::path`), never raw.
#[derive(Serialize)]
struct Status {
    #[serde(serialize_with = "show::serialize_path")]
    dir: PathBuf,
    state: &'static str,
    /// `chroot` (in the host's mount namespace) or `holder`.
    mode: &'static str,
    /// With a holder: the namespaces it owns (`user`, `mnt`, `pid`...).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    namespaces: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    holder_pid: Option<i32>,
    /// As `list` says them (registry::Summary).
    suite: Option<String>,
    codename: Option<String>,
    disk_use: Option<crate::usage::Usage>,
    mounts: Vec<MountRow>,
    processes: Vec<procs::Proc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    created: Option<crate::create::CreateRecord>,
    /// An overlay sandbox's BASE (`create --overlay`).
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "overlay_base"
    )]
    overlay: Option<PathBuf>,
    /// What was mounted over DIR after `on`, hiding the sandbox
    /// (`engine::covering`): `on`, `run` and `off` refuse until it is
    /// unmounted.
    #[serde(skip_serializing_if = "Option::is_none")]
    covered_by: Option<MountRow>,
    /// Processes that a holder that was killed left in the sandbox (listed
    /// in `processes`): `on` and `run` refuse until `off` has ended them.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    left_by_killed_holder: bool,
}

fn overlay_base<S: serde::Serializer>(p: &Option<PathBuf>, s: S) -> Result<S::Ok, S::Error> {
    match p {
        Some(p) => show::serialize_path(p, s),
        None => s.serialize_none(),
    }
}

#[derive(Serialize)]
struct MountRow {
    #[serde(serialize_with = "show::serialize_path")]
    target: PathBuf,
    fstype: String,
    #[serde(serialize_with = "show::serialize_os")]
    source: OsString,
    options: String,
    propagation: &'static str,
}

pub fn run(dir: Option<&Path>, args: &StatusArgs) -> Result<()> {
    let sb = Sandbox::open(dir, Need::Teardown)?;
    let found = crate::holder::find(&sb.dir);
    let mut st = match &found {
        crate::holder::Found::Alive(h) => Status {
            dir: sb.dir.clone(),
            state: "on",
            mode: "holder",
            namespaces: h.namespaces(),
            holder_pid: Some(h.pid),
            suite: None,
            codename: None,
            disk_use: None,
            mounts: h
                .mounts(&sb.dir)
                .iter()
                .filter(|m| m.point != sb.dir)
                .map(|m| row(&sb.dir, m))
                .collect(),
            processes: h.processes(),
            created: crate::create::load(&sb.dir),
            overlay: None,
            covered_by: None,
            left_by_killed_holder: false,
        },
        _ => chroot_status(&sb)?,
    };
    // What a killed holder left running there, which `on` and `run`
    // refuse for and `off` ends.
    if let crate::holder::Found::Died(Some(left)) = &found {
        for &pid in &left.pids {
            if st.processes.iter().all(|p| p.pid != pid) {
                st.processes.push(procs::named_pid(pid));
            }
        }
        st.left_by_killed_holder = !left.pids.is_empty();
    }
    (st.suite, st.codename) = crate::registry::release(&sb.dir);
    st.overlay = crate::overlay::read(&sb.dir).ok().flatten().map(|r| r.base);
    st.disk_use = args
        .size
        .then(|| crate::usage::disk_use(&sb.dir))
        .transpose()?;
    if args.json {
        return super::out(format!("{}\n", serde_json::to_string_pretty(&st)?));
    }
    let mut o = String::new();
    let _ = writeln!(o, "{}: {}", show::path(&st.dir), st.state);
    match st.holder_pid {
        Some(pid) => {
            let _ = writeln!(
                o,
                "mode: holder (pid {pid}; namespaces: {})",
                st.namespaces.join(", ")
            );
        }
        None => {
            let _ = writeln!(o, "mode: {}", st.mode);
        }
    }
    if let Some(base) = &st.overlay {
        let _ = writeln!(o, "overlay over: {}", show::path(base));
    }
    if let Some(u) = &st.disk_use {
        let partial = if u.unreadable > 0 {
            " (at least: some directories could not be read)"
        } else {
            ""
        };
        let _ = writeln!(o, "disk use: {}{partial}", crate::usage::human(u.bytes));
    }
    if let Some(c) = &st.created {
        let codename = c
            .codename
            .as_deref()
            .map(|n| format!(" ({})", t(n)))
            .unwrap_or_default();
        let _ = writeln!(
            o,
            "debian: {}{codename} {} {}, from {}, made {} by chroot-tool {} with {}",
            t(&c.suite),
            t(&c.variant),
            t(&c.arch),
            t(&c.mirror),
            t(&c.date),
            t(&c.tool_version),
            t(&c.backend)
        );
    }
    if let (None, Some(c)) = (&st.created, &st.codename) {
        let _ = writeln!(o, "debian: {} (from its /etc/os-release)", t(c));
    }
    if let Some(c) = &st.covered_by {
        let _ = writeln!(
            o,
            "(something ({}) was mounted over DIR after `on` and hides the sandbox: unmount it (`umount -R {}`), then run `chroot-tool off`)",
            t(&c.fstype),
            show::path(&st.dir)
        );
    } else if st.left_by_killed_holder {
        let _ = writeln!(
            o,
            "(the holder was killed; processes it left still run in the sandbox: run `chroot-tool off` to end them)"
        );
    } else if st.state == "partly on" {
        let _ = writeln!(
            o,
            "(some mounts are left from an interrupted on or off: run `chroot-tool off`, or `on`)"
        );
    }
    if !st.mounts.is_empty() {
        let _ = writeln!(o, "mounts:");
        for m in &st.mounts {
            let _ = writeln!(
                o,
                "  {:<24} {:<8} {}",
                show::path(&m.target),
                t(&m.fstype),
                t(&m.options)
            );
        }
    }
    if !st.processes.is_empty() {
        let _ = writeln!(o, "processes inside:");
        for p in &st.processes {
            let _ = writeln!(o, "  {:>7} {}", p.pid, show::os(&p.comm));
        }
    }
    super::out(o)
}

/// The sandbox in the host's mount namespace, as its mount table says.
fn chroot_status(sb: &Sandbox) -> Result<Status> {
    let mounts = mountinfo::read()?;
    let plan = sb.plan(&mut super::warn).ok();
    // The sandbox's mounts: `on`'s self-bind and what is mounted on it, or
    // what an interrupted or 2020-style `on` left; never a mount the user
    // made below DIR before `on` (it lies under the self-bind).
    let ours = engine::ours(&sb.dir, plan.as_deref(), &mounts);
    let rows: Vec<MountRow> = ours
        .iter()
        .filter(|m| m.point != sb.dir)
        .map(|m| row(&sb.dir, m))
        .collect();
    // "on" means the self-bind is the top mount at DIR and every mount of
    // the plan is there; a plan that cannot be built (a broken tool.conf) is
    // not held against the mounts. Anything of the sandbox's otherwise
    // there is "partly on".
    let state = crate::registry::state(&sb.dir, plan.as_deref(), &mounts);
    Ok(Status {
        dir: sb.dir.clone(),
        state,
        mode: crate::registry::mode(state),
        namespaces: vec![],
        holder_pid: None,
        suite: None,
        codename: None,
        disk_use: None,
        mounts: rows,
        processes: crate::cgroup::track::inside(&sb.dir, &engine::self_binds(&sb.dir, &mounts)),
        created: crate::create::load(&sb.dir),
        overlay: None,
        covered_by: engine::covering(&sb.dir, &mounts).map(|m| row(&sb.dir, &m)),
        left_by_killed_holder: false,
    })
}

fn row(dir: &Path, m: &mountinfo::Mount) -> MountRow {
    MountRow {
        target: Path::new("/").join(m.point.strip_prefix(dir).unwrap_or(&m.point)),
        fstype: m.fstype.clone(),
        source: if m.source == m.fstype.as_str() {
            OsString::new()
        } else {
            m.source.clone()
        },
        options: m.options.clone(),
        propagation: m.propagation(),
    }
}

/// Text read from the sandbox or the kernel, on one bounded line.
fn t(s: &str) -> String {
    show::bytes(s.as_bytes())
}
