//! `status`: on or off, each mount, the processes inside.
use std::path::{Path, PathBuf};

use std::fmt::Write;

use anyhow::Result;
use serde::Serialize;

use crate::cli::StatusArgs;
use crate::sandbox::{Need, Sandbox};
use crate::{engine, mountinfo, procs};

#[derive(Serialize)]
struct Status {
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
    target: PathBuf,
    fstype: String,
    source: String,
    options: String,
    propagation: &'static str,
}

pub fn run(dir: Option<&Path>, args: &StatusArgs) -> Result<()> {
    let sb = Sandbox::open(dir, Need::Dir)?;
    let mounts = mountinfo::read()?;
    let rows: Vec<MountRow> = mountinfo::under(&mounts, &sb.dir)
        .into_iter()
        .filter(|m| m.point != sb.dir)
        .map(|m| MountRow {
            target: Path::new("/").join(m.point.strip_prefix(&sb.dir).unwrap_or(&m.point)),
            fstype: m.fstype.clone(),
            source: if m.fstype == m.source {
                String::new()
            } else {
                m.source.clone()
            },
            options: m.options.clone(),
            propagation: m.propagation(),
        })
        .collect();
    // "on" means every mount of the plan is there; a plan that cannot be
    // built (a broken tool.conf) is not held against the mounts.
    let complete = sb
        .plan()
        .map_or(true, |plan| engine::looks_on(&sb.dir, &plan, &mounts));
    let state = if engine::is_on(&sb.dir, &mounts) && complete {
        "on"
    } else if engine::is_on(&sb.dir, &mounts) {
        "partly on"
    } else if rows.is_empty() {
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
    let _ = writeln!(o, "{}: {}", st.dir.display(), st.state);
    let _ = writeln!(o, "mode: {}", st.mode);
    if let Some(c) = &st.created {
        let codename = c
            .codename
            .as_deref()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default();
        let _ = writeln!(
            o,
            "debian: {}{codename} {} {}, from {}, made {} by chroot-tool {}",
            c.suite, c.variant, c.arch, c.mirror, c.date, c.tool_version
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
                m.target.display(),
                m.fstype,
                m.options
            );
        }
    }
    if !st.processes.is_empty() {
        let _ = writeln!(o, "processes inside:");
        for p in &st.processes {
            let _ = writeln!(o, "  {:>7} {}", p.pid, p.comm);
        }
    }
    super::out(o)
}
