//! `export -d DIR --oci OUT | --bundle OUT`: the sandbox as an OCI image
//! layout or runtime bundle (`crate::archive::oci`).
use std::path::Path;

use anyhow::{Context, Result};

use crate::archive::oci::{self, layout};
use crate::archive::Compression;
use crate::cli::ExportArgs;
use crate::sandbox::{Need, Sandbox};
use crate::show;

pub fn run(dir: Option<&Path>, args: &ExportArgs) -> Result<()> {
    let sb = Sandbox::open(dir, Need::Rootfs)?;
    crate::overlay::enter_for_reading(&sb.dir)?;
    let conf = super::conf_of(&sb)?;
    if let Some(out) = &args.oci {
        let opts = layout::Options {
            compression: match args.compression.as_str() {
                "zstd" => Compression::Zstd,
                _ => Compression::Gz,
            },
            mtime: args.mtime,
            tag: args.tag.clone(),
        };
        let mut bar = super::pack::Bar::new(args.quiet, "exporting");
        let res = oci::export_layout(&sb, &conf, out, &opts, &mut bar);
        bar.done();
        let (exported, packed) = res
            .with_context(|| format!("exporting {} to {}", show::path(&sb.dir), show::path(out)))?;
        super::pack::left_out(&packed, "exported", "export");
        if !args.quiet {
            super::note(format!(
                "exported {} to {} ({} entries, layer {} {}); try: skopeo inspect oci:{}:{}",
                show::path(&sb.dir),
                show::path(out),
                packed.entries,
                indicatif::HumanBytes(exported.layer.size),
                exported.layer.digest,
                show::path(out),
                exported.ref_name
            ));
        }
    }
    if let Some(out) = &args.bundle {
        let mut bar = super::pack::Bar::new(args.quiet, "exporting");
        let res = oci::export_bundle(&sb, &conf, out, &mut bar);
        bar.done();
        let (_, packed) = res
            .with_context(|| format!("exporting {} to {}", show::path(&sb.dir), show::path(out)))?;
        super::pack::left_out(&packed, "exported", "export");
        if !args.quiet {
            super::note(format!(
                "exported {} to the bundle {} ({} entries); try: runc run -b {} NAME",
                show::path(&sb.dir),
                show::path(out),
                packed.entries,
                show::path(out)
            ));
        }
    }
    Ok(())
}
