//! A sandbox as an OCI image or runtime bundle, and back: `export --oci`
//! writes an image layout (image-spec v1), `export --bundle` a runtime
//! bundle (runtime-spec) for runc or crun, `import` makes a sandbox from
//! an OCI layout, an oci-archive or a docker archive. The JSON documents
//! are the `oci-spec` crate's types; the layers are the tar streams of
//! [`super::write_tar`] and [`super::unpack_tar`].
pub mod blob;
pub mod bundle;
pub mod facts;
pub mod image;
pub mod layout;

use std::io;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::{
    copy_tree, trust, unpack_tar, write_tar, Counted, PackOptions, Packed, Progress, Quiet,
    UnpackOptions,
};
use crate::conf::Conf;
use crate::sandbox::Sandbox;
use crate::show;

/// What the walk of a sandbox packs into a layer: everything but
/// `[exclude]` and what is mounted, no entry for `./` (a layer has none).
fn pack_options(conf: &Conf, mtime: Option<u64>) -> PackOptions {
    PackOptions {
        excludes: conf.excludes.clone(),
        mtime,
        no_root_entry: true,
        ..PackOptions::default()
    }
}

/// Refuses an output directory inside the sandbox: the walk would pack
/// the export into itself.
fn outside(sb: &Sandbox, out: &Path) -> Result<()> {
    let abs = std::path::absolute(out).with_context(|| show::path(out))?;
    let parent = abs.parent().unwrap_or(Path::new("/"));
    let parent = crate::sys::canonicalize(parent)
        .with_context(|| format!("{}: its directory does not exist", show::path(out)))?;
    if parent.starts_with(&sb.dir) {
        bail!(
            "{}: inside the sandbox {}; write the export outside it",
            show::path(out),
            show::path(&sb.dir)
        );
    }
    Ok(())
}

/// `export --oci`: the image layout of `sb` at `out` (a new or empty
/// directory, filled in a staging directory beside it and renamed).
pub fn export_layout(
    sb: &Sandbox,
    conf: &Conf,
    out: &Path,
    opts: &layout::Options,
    progress: &mut dyn Progress,
) -> Result<(layout::Exported, Packed)> {
    outside(sb, out)?;
    let facts = facts::of(sb, conf)?;
    let staging = layout::Staging::new(out)?;
    let pack = pack_options(conf, opts.mtime);
    let mut packed = Packed::default();
    let exported = layout::write(&staging.dir, &facts, opts, |w| {
        packed = write_tar(&sb.dir, w, &pack, progress)?.1;
        Ok(())
    })?;
    staging.commit(out)?;
    Ok((exported, packed))
}

/// `export --bundle`: `config.json` and `rootfs/` at `out`. The rootfs is
/// the layer's tar stream unpacked on the fly ([`copy_tree`]): what a layer
/// holds, with owners, modes, extended attributes and hard links, and no
/// mounted content.
pub fn export_bundle(
    sb: &Sandbox,
    conf: &Conf,
    out: &Path,
    progress: &mut dyn Progress,
) -> Result<(PathBuf, Packed)> {
    outside(sb, out)?;
    let facts = facts::of(sb, conf)?;
    let plan = sb.plan_of(conf)?;
    let spec = bundle::spec(
        &plan,
        &bundle::Settings {
            facts: &facts,
            limits: &conf.limits,
            net_none: conf.run.net_none.as_ref().is_some_and(|s| s.value),
        },
    )?;
    let staging = layout::Staging::new(out)?;
    let config = staging.dir.join("config.json");
    let json = serde_json::to_vec_pretty(&serde_json::to_value(&spec)?)?;
    std::fs::write(&config, json).with_context(|| format!("writing {}", show::path(&config)))?;
    let rootfs = staging.dir.join("rootfs");
    let pack = pack_options(conf, None);
    let (packed, _) = copy_tree(&sb.dir, &rootfs, &pack, &UnpackOptions::default(), progress)
        .with_context(|| format!("making {}", show::path(out.join("rootfs"))))?;
    staging.commit(out)?;
    Ok((out.to_path_buf(), packed))
}

/// What `import` did.
#[derive(Debug)]
pub struct Imported {
    pub kind: &'static str,
    pub name: Option<String>,
    pub layers: usize,
    pub entries: u64,
    pub warnings: Vec<String>,
    /// Set-id files, files with capabilities, device nodes outside `/dev`.
    pub privileged: u64,
    /// The mode the image gives DIR, kept back: DIR stays 0700 until the
    /// caller settles it (`trust::settle_root`).
    pub root_mode: Option<u32>,
    /// The image's process settings (user, working directory, environment,
    /// entry point).
    pub config: Option<oci_spec::image::Config>,
}

/// `import`: lays the layers of the image in `image` (chosen by `tag`
/// when it holds several) into `dir`, an empty directory, in order, with
/// their whiteouts. Each layer's digest (as stored, and uncompressed) is
/// checked against the image's manifest and config as it streams.
pub fn import(
    image: &Path,
    tag: Option<&str>,
    dir: &Path,
    progress: &mut dyn Progress,
) -> Result<Imported> {
    let store = image::Store::open(image)?;
    let img = image::choose(&store, tag)?;
    let mut total = 0;
    for l in &img.layers {
        total += store.open_file(&l.file)?.1;
    }
    progress.total(total);
    let mut done = Imported {
        kind: img.kind,
        name: img.name.clone(),
        layers: img.layers.len(),
        entries: 0,
        warnings: Vec::new(),
        privileged: 0,
        root_mode: None,
        config: img.config.config().clone(),
    };
    for (i, layer) in img.layers.iter().enumerate() {
        let what = || {
            format!(
                "layer {} of {} ({} in {})",
                i + 1,
                img.layers.len(),
                show::quote(&layer.file),
                show::path(image)
            )
        };
        let (raw, _) = store.open_file(&layer.file)?;
        let mut stored = blob::Tally::default();
        let mut plain = blob::Tally::default();
        let counted = Counted {
            inner: blob::Tallied::new(raw, &mut stored),
            progress: &mut *progress,
        };
        let decoded = super::decoder(io::BufReader::with_capacity(1 << 20, counted))
            .with_context(|| format!("reading {}", what()))?;
        let mut tar = blob::Tallied::new(decoded, &mut plain);
        let opts = UnpackOptions {
            whiteouts: true,
            require_empty: i == 0,
            rooted_names: true,
            private_root: true,
            ..UnpackOptions::default()
        };
        let unpacked = unpack_tar(&mut tar, dir, &opts, &mut Quiet).with_context(what)?;
        // What follows the tar's end marker (padding) belongs to the digest too.
        io::copy(&mut tar, &mut io::sink()).with_context(|| format!("reading {}", what()))?;
        drop(tar);
        if let Some(d) = &layer.diff_id {
            plain.check(d, None).with_context(what)?;
        }
        if let Some((d, size)) = &layer.digest {
            stored.check(d, Some(*size)).with_context(what)?;
        }
        done.entries += unpacked.entries;
        done.warnings.extend(unpacked.warnings);
        done.privileged += unpacked.privileged;
        done.root_mode = unpacked.root_mode.or(done.root_mode);
    }
    Ok(done)
}

/// A `key:value` value of tool.conf, quoted when it has to be; `None`
/// when it cannot be written as one.
fn conf_value(v: &str) -> Option<String> {
    if v.is_empty() || v.contains(['"', '\\', '\n', '\0']) {
        return None;
    }
    if v.contains(|c: char| c.is_whitespace() || c == ';') {
        return Some(format!("\"{v}\""));
    }
    Some(v.to_string())
}

/// The tool.conf of a sandbox imported from an image made elsewhere (one
/// with no `chroot.d/tool.conf`): the commented template, and the image's
/// user and working directory as `[run]` defaults; its environment and
/// entry point as comments. Returns whether it wrote one.
pub fn mark_sandbox(dir: &Path, done: &Imported) -> Result<bool> {
    use crate::create::setup::Root;
    let root = Root::open(dir)?;
    let conf = Path::new("chroot.d/tool.conf");
    let aside = format!("chroot.d/{}{}", trust::CONF, trust::SUFFIX);
    // A `chroot.d` that is not a directory (a symlink) is the image's:
    // nothing is written through it.
    let plain = std::fs::symlink_metadata(dir.join("chroot.d")).map_or(true, |m| m.is_dir());
    if !plain || root.exists(conf) || root.exists(Path::new(&aside)) {
        return Ok(false);
    }
    let mut text = crate::create::TOOL_CONF.to_string();
    let mut run = Vec::new();
    let mut notes = Vec::new();
    if let Some(c) = &done.config {
        if let Some(u) = c.user().as_deref().filter(|u| !u.is_empty()) {
            match conf_value(u).filter(|_| crate::conf::is_user_spec(u)) {
                Some(v) => run.push(format!("user:{v}")),
                None => notes.push(format!("user {}", show::quote(u))),
            }
        }
        if let Some(w) = c
            .working_dir()
            .as_deref()
            .filter(|w| w.starts_with('/') && *w != "/")
        {
            match conf_value(w) {
                Some(v) => run.push(format!("workdir:{v}")),
                None => notes.push(format!("working directory {}", show::quote(w))),
            }
        }
        for (what, v) in [
            ("environment", c.env()),
            ("entrypoint", c.entrypoint()),
            ("cmd", c.cmd()),
        ] {
            if let Some(v) = v.as_ref().filter(|v| !v.is_empty()) {
                let words: Vec<String> = v.iter().map(|w| show::quote(w)).collect();
                notes.push(format!("{what}: {}", words.join(" ")));
            }
        }
    }
    text.push_str(&format!(
        "\n# Imported by `chroot-tool import` from the {}{}.\n",
        done.kind,
        done.name
            .as_deref()
            .map_or(String::new(), |n| format!(" {}", show::quote(n)))
    ));
    for n in &notes {
        text.push_str(&format!("# The image's {n}\n"));
    }
    if !run.is_empty() {
        text.push_str(&run.join(" "));
        text.push('\n');
    }
    root.write_file(conf, &text)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conf_values_are_quoted_or_refused() {
        assert_eq!(conf_value("/srv/app").as_deref(), Some("/srv/app"));
        assert_eq!(conf_value("/my dir").as_deref(), Some("\"/my dir\""));
        assert_eq!(conf_value("a;b").as_deref(), Some("\"a;b\""));
        assert_eq!(conf_value("say \"hi\""), None);
        assert_eq!(conf_value("a\\b"), None);
        assert_eq!(conf_value(""), None);
        // What is written reads back as it was.
        let text = format!(
            "[run]\nuser:{} workdir:{}\n",
            conf_value("1000:1000").unwrap(),
            conf_value("/my dir").unwrap()
        );
        let c = Conf::parse(&text, Path::new("tool.conf")).unwrap();
        assert_eq!(c.run.workdir.unwrap().value, Path::new("/my dir"));
        assert_eq!(c.run.user.unwrap().value, "1000:1000");
    }
}
