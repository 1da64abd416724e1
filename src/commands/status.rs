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
    mode: &'static str,
    mounts: Vec<MountRow>,
    processes: Vec<procs::Proc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    created: Option<crate::create::CreateRecord>,
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
    let sb = Sandbox::open(dir, Need::Dir)?;
    let mounts = mountinfo::read()?;
    let plan = sb.plan().ok();
    // The sandbox's mounts: `on`'s self-bind and what is mounted on it, or
    // what an interrupted or 2020-style `on` left; never a mount the user
    // made below DIR before `on` (it lies under the self-bind).
    let ours = engine::ours(&sb.dir, plan.as_deref(), &mounts);
    let rows: Vec<MountRow> = ours
        .iter()
        .filter(|m| m.point != sb.dir)
        .map(|m| MountRow {
            target: Path::new("/").join(m.point.strip_prefix(&sb.dir).unwrap_or(&m.point)),
            fstype: m.fstype.clone(),
            source: if m.source == m.fstype.as_str() {
                OsString::new()
            } else {
                m.source.clone()
            },
            options: m.options.clone(),
            propagation: m.propagation(),
        })
        .collect();
    // "on" means the self-bind is the top mount at DIR and every mount of
    // the plan is there; a plan that cannot be built (a broken tool.conf) is
    // not held against the mounts. Anything of the sandbox's otherwise
    // there is "partly on".
    let complete = plan
        .as_deref()
        .map_or(true, |plan| engine::looks_on(&sb.dir, plan, &mounts));
    let state = if engine::is_on(&sb.dir, &mounts) && complete {
        "on"
    } else if ours.is_empty() {
        "off"
    } else {
        "partly on"
    };
    let st = Status {
        dir: sb.dir.clone(),
        state,
        mode: "privileged",
        mounts: rows,
        processes: procs::inside(&sb.dir),
        created: crate::create::load(&sb.dir),
    };
    if args.json {
        return super::out(format!("{}\n", serde_json::to_string_pretty(&st)?));
    }
    let mut o = String::new();
    let _ = writeln!(o, "{}: {}", show::path(&st.dir), st.state);
    let _ = writeln!(o, "mode: {}", st.mode);
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
    if st.state == "partly on" {
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
            let _ = writeln!(o, "  {:>7} {}", p.pid, t(&p.comm));
        }
    }
    super::out(o)
}

/// Text read from the sandbox or the kernel, on one bounded line.
fn t(s: &str) -> String {
    show::bytes(s.as_bytes())
}
