//! `list`: every sandbox this user has created or used (`registry`).
use std::fmt::Write;

use anyhow::Result;

use crate::cli::ListArgs;
use crate::registry::{self, Summary};
use crate::{mountinfo, show, usage};

pub fn run(args: &ListArgs) -> Result<()> {
    let dirs = registry::sandboxes()?;
    let mounts = mountinfo::read()?;
    let all: Vec<Summary> = dirs
        .iter()
        .map(|d| registry::summary(d, &mounts, args.size))
        .collect();
    if args.json {
        return super::out(format!("{}\n", serde_json::to_string_pretty(&all)?));
    }
    if all.is_empty() {
        super::note(format!(
            "no sandboxes yet: `create`, `on` and `run` record them (in {})",
            show::path(registry::registry_dir()?)
        ));
        return Ok(());
    }
    let rows: Vec<[String; 6]> = all
        .iter()
        .map(|s| {
            let size = match s.disk_use {
                Some(u) if u.unreadable > 0 => format!(">{}", usage::human(u.bytes)),
                Some(u) => usage::human(u.bytes),
                None => String::new(),
            };
            [
                show::path(&s.dir),
                s.state.to_string(),
                s.mode.to_string(),
                t(s.codename.as_deref().or(s.suite.as_deref()).unwrap_or("-")),
                s.processes.len().to_string(),
                size,
            ]
        })
        .collect();
    let head = ["DIR", "STATE", "MODE", "SUITE", "PROCS", "SIZE"];
    let cols = if args.size { 6 } else { 5 };
    let width = |i: usize| {
        rows.iter()
            .map(|r| r[i].chars().count())
            .chain([head[i].len()])
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..cols).map(width).collect();
    let mut o = String::new();
    let mut line = |cells: &[String]| {
        let mut l = String::new();
        for (i, c) in cells.iter().take(cols).enumerate() {
            if i + 1 == cols {
                let _ = write!(l, "{c}");
            } else {
                let _ = write!(l, "{c:<w$}  ", w = widths[i]);
            }
        }
        let _ = writeln!(o, "{}", l.trim_end());
    };
    line(&head.map(String::from));
    for r in &rows {
        line(r);
    }
    super::out(o)
}

/// Text read from a sandbox, on one bounded line.
fn t(s: &str) -> String {
    show::bytes(s.as_bytes())
}
