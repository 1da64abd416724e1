//! `export --oci`: a sandbox as an OCI image layout (image-spec v1):
//! `oci-layout`, `index.json` and `blobs/sha256/`, holding one layer of
//! the rootfs, its config and its manifest. The layer streams from the
//! tar writer through the compressor and two hashers (the uncompressed
//! `diff_id` and the blob's digest) into its file: nothing of it is held
//! in memory. The same tree gives the same bytes (sorted entries, gzip
//! without a timestamp, JSON with sorted keys).
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use oci_spec::image::{
    Arch, ConfigBuilder, Descriptor, DescriptorBuilder, HistoryBuilder, ImageConfigurationBuilder,
    ImageIndexBuilder, ImageManifestBuilder, MediaType, OciLayoutBuilder, Os, PlatformBuilder,
    RootFsBuilder,
};

use super::blob::{Blob, BlobWriter, Hashing};
use super::facts::Facts;
use crate::archive::{Compression, Encoder};
use crate::show;

/// The media type of a layer compressed so (xz is not one OCI knows).
fn layer_type(c: Compression) -> Result<MediaType> {
    Ok(match c {
        Compression::Gz => MediaType::ImageLayerGzip,
        Compression::Zstd => MediaType::ImageLayerZstd,
        Compression::None => MediaType::ImageLayer,
        Compression::Xz => bail!("an OCI layer is gzip, zstd or plain tar, not xz"),
    })
}

/// What `export --oci` was asked for.
#[derive(Debug, Clone)]
pub struct Options {
    /// Gz (what every engine reads), Zstd or None.
    pub compression: Compression,
    /// Every entry's mtime, and the image's creation time (seconds since
    /// the epoch): `--mtime` or `SOURCE_DATE_EPOCH`.
    pub mtime: Option<u64>,
    /// `NAME:TAG` or `TAG` (`latest` when not given).
    pub tag: Option<String>,
}

/// What was written.
#[derive(Debug, Clone)]
pub struct Exported {
    pub manifest: Blob,
    pub layer: Blob,
    /// The uncompressed layer's digest.
    pub diff_id: String,
    pub ref_name: String,
}

/// `NAME:TAG` split into the full name (when a name was given) and the tag
/// that `index.json` names the image by (`oci:OUT:TAG` in skopeo and podman).
pub fn split_tag(tag: Option<&str>) -> Result<(Option<String>, String)> {
    let Some(t) = tag else {
        return Ok((None, "latest".into()));
    };
    // The tag is after the last `:` that is not part of a registry's port
    // (a `/` after it means it was a port).
    let (name, tag) = match t.rfind(':') {
        Some(i) if !t[i..].contains('/') => (Some(&t[..i]), &t[i + 1..]),
        _ => (Some(t), "latest"),
    };
    let ok_tag = !tag.is_empty()
        && tag.len() <= 128
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && !tag.starts_with(['.', '-']);
    if !ok_tag {
        bail!(
            "--tag {}: the tag must be 1 to 128 letters, digits, '.', '_' or '-', not starting with '.' or '-'",
            show::quote(t)
        );
    }
    let name = name.filter(|n| !n.is_empty());
    if let Some(n) = name {
        let ok = n
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-/:".contains(&b));
        if !ok {
            bail!(
                "--tag {}: an image name is lowercase letters, digits and . _ - / (e.g. registry.example/team/sandbox:1.0)",
                show::quote(t)
            );
        }
    }
    Ok((name.map(|n| format!("{n}:{tag}")), tag.to_string()))
}

/// JSON with sorted keys, so that the same image always has the same digests.
fn canonical<T: serde::Serialize>(v: &T) -> Result<Vec<u8>> {
    let value = serde_json::to_value(v).context("serializing JSON")?;
    Ok(serde_json::to_vec(&value)?)
}

fn descriptor(
    media_type: MediaType,
    blob: &Blob,
    annotations: Option<Vec<(&str, String)>>,
) -> Result<Descriptor> {
    let mut b = DescriptorBuilder::default()
        .media_type(media_type)
        .digest(oci_spec::image::Digest::try_from(blob.digest.as_str())?)
        .size(blob.size);
    if let Some(a) = annotations {
        b = b.annotations(
            a.into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect::<std::collections::HashMap<_, _>>(),
        );
    }
    Ok(b.build()?)
}

/// A directory next to `out` to build in, renamed onto `out` when done.
pub struct Staging {
    pub dir: PathBuf,
    done: bool,
}

impl Staging {
    /// Refuses an `out` that exists and is not an empty directory.
    pub fn new(out: &Path) -> Result<Staging> {
        match std::fs::symlink_metadata(out) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| show::path(out)),
            Ok(m) if m.is_dir() => {
                let mut entries = std::fs::read_dir(out)
                    .with_context(|| format!("reading {}", show::path(out)))?;
                if entries.next().is_some() {
                    bail!(
                        "{}: exists and is not empty; give a new directory",
                        show::path(out)
                    );
                }
            }
            Ok(_) => bail!(
                "{}: exists and is not a directory; give a new directory",
                show::path(out)
            ),
        }
        let name = out
            .file_name()
            .with_context(|| format!("{}: not a directory name", show::path(out)))?;
        let parent = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        // What an earlier export to the same OUT left when it was killed.
        crate::archive::remove_stale(&parent, Some(name), true);
        // A name no other export (in this pid namespace or another, or
        // one killed before it could clean up) can hold: a random part,
        // and a directory that must be new.
        let mut tries = 0;
        loop {
            let dir = parent.join(format!(
                ".{}{}{}-{:016x}",
                name.to_string_lossy(),
                crate::archive::PARTIAL,
                std::process::id(),
                crate::sys::random_u64().context("a random name")?
            ));
            match std::fs::create_dir(&dir) {
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && tries < 8 => tries += 1,
                r => {
                    r.with_context(|| format!("creating {}", show::path(&dir)))?;
                    return Ok(Staging { dir, done: false });
                }
            }
        }
    }

    /// Puts the finished directory at `out`.
    pub fn commit(mut self, out: &Path) -> Result<()> {
        std::fs::rename(&self.dir, out).with_context(|| {
            format!("renaming {} to {}", show::path(&self.dir), show::path(out))
        })?;
        self.done = true;
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.done {
            // Made by us just now, and nothing is ever mounted in it.
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Writes the layout into `dir` (an empty directory): the layer comes from
/// `tar`, which writes the rootfs as an uncompressed tar stream.
pub fn write(
    dir: &Path,
    facts: &Facts,
    opts: &Options,
    tar: impl FnOnce(&mut dyn Write) -> Result<()>,
) -> Result<Exported> {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).with_context(|| format!("creating {}", show::path(&blobs)))?;
    let (name, tag) = split_tag(opts.tag.as_deref())?;

    // The layer: tar -> diff_id hasher -> compressor -> blob file (hashed).
    let file = BlobWriter::new(&blobs, "layer")
        .with_context(|| format!("creating a blob in {}", show::path(&blobs)))?;
    let media_type = layer_type(opts.compression)?;
    let enc = Encoder::new(file, opts.compression).context("starting the compressor")?;
    let mut diff = Hashing::new(enc);
    tar(&mut diff)?;
    let (enc, diff_id, _) = diff.finish();
    let layer = enc
        .finish()
        .context("compressing the layer")?
        .finish()
        .with_context(|| format!("writing the layer in {}", show::path(&blobs)))?;
    let diff_id = format!("sha256:{diff_id}");

    let created = opts.mtime.map(|t| {
        crate::create::record::rfc3339(std::time::UNIX_EPOCH + std::time::Duration::from_secs(t))
    });
    let mut config = ConfigBuilder::default()
        .env(facts.env.clone())
        .working_dir(facts.workdir.clone())
        .cmd(facts.cmd.clone());
    if let Some(u) = &facts.user_spec {
        config = config.user(u.clone());
    }
    if let Some(e) = &facts.entrypoint {
        config = config.entrypoint(e.clone());
    }
    let mut history = HistoryBuilder::default()
        .created_by(format!("chroot-tool {} export", env!("CARGO_PKG_VERSION")));
    if let Some(c) = &created {
        history = history.created(c.clone());
    }
    let mut image = ImageConfigurationBuilder::default()
        .architecture(Arch::from(facts.arch.0.as_str()))
        .os(Os::Linux)
        .config(config.build()?)
        .rootfs(
            RootFsBuilder::default()
                .typ("layers")
                .diff_ids(vec![diff_id.clone()])
                .build()?,
        )
        .history(vec![history.build()?]);
    if let Some(v) = &facts.arch.1 {
        image = image.variant(v.clone());
    }
    if let Some(c) = &created {
        image = image.created(c.clone());
    }
    let config_blob = BlobWriter::write_all_in(&blobs, &canonical(&image.build()?)?)
        .with_context(|| format!("writing the config in {}", show::path(&blobs)))?;

    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(descriptor(MediaType::ImageConfig, &config_blob, None)?)
        .layers(vec![descriptor(media_type, &layer, None)?])
        .build()?;
    let manifest_blob = BlobWriter::write_all_in(&blobs, &canonical(&manifest)?)
        .with_context(|| format!("writing the manifest in {}", show::path(&blobs)))?;

    let mut annotations = vec![("org.opencontainers.image.ref.name", tag.clone())];
    if let Some(n) = &name {
        annotations.push(("io.containerd.image.name", n.clone()));
    }
    let mut platform = PlatformBuilder::default()
        .architecture(Arch::from(facts.arch.0.as_str()))
        .os(Os::Linux);
    if let Some(v) = &facts.arch.1 {
        platform = platform.variant(v.clone());
    }
    let mut entry = descriptor(MediaType::ImageManifest, &manifest_blob, Some(annotations))?;
    entry.set_platform(Some(platform.build()?));
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(vec![entry])
        .build()?;
    let layout = OciLayoutBuilder::default()
        .image_layout_version("1.0.0")
        .build()?;
    for (file, bytes) in [
        ("index.json", canonical(&index)?),
        ("oci-layout", canonical(&layout)?),
    ] {
        std::fs::write(dir.join(file), bytes)
            .with_context(|| format!("writing {}", show::path(dir.join(file))))?;
    }
    Ok(Exported {
        manifest: manifest_blob,
        layer,
        diff_id,
        ref_name: tag,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags() {
        assert_eq!(split_tag(None).unwrap(), (None, "latest".into()));
        assert_eq!(
            split_tag(Some("sandbox:1.0")).unwrap(),
            (Some("sandbox:1.0".into()), "1.0".into())
        );
        assert_eq!(
            split_tag(Some("reg.example:5000/team/sb")).unwrap(),
            (
                Some("reg.example:5000/team/sb:latest".into()),
                "latest".into()
            )
        );
        assert_eq!(
            split_tag(Some("reg.example:5000/sb:v2")).unwrap(),
            (Some("reg.example:5000/sb:v2".into()), "v2".into())
        );
        assert!(split_tag(Some("Sandbox:1")).is_err());
        assert!(split_tag(Some("sb:-x")).is_err());
        assert!(split_tag(Some("sb:")).is_err());
    }

    #[test]
    fn layout_of_a_small_tar_is_deterministic() {
        let facts = Facts {
            env: vec!["PATH=/bin".into()],
            user_spec: None,
            user: crate::launch::user::root_of(b""),
            workdir: "/".into(),
            entrypoint: None,
            cmd: vec!["/bin/sh".into()],
            arch: ("amd64".into(), None),
        };
        let make = |c: Compression| {
            let d = tempfile::tempdir().unwrap();
            let opts = Options {
                compression: c,
                mtime: Some(1),
                tag: Some("x:1".into()),
            };
            let e = write(d.path(), &facts, &opts, |w| {
                w.write_all(&[0u8; 1024])?;
                Ok(())
            })
            .unwrap();
            let index = std::fs::read_to_string(d.path().join("index.json")).unwrap();
            (e.manifest, index)
        };
        for c in [Compression::Gz, Compression::Zstd] {
            let (m1, i1) = make(c);
            let (m2, i2) = make(c);
            assert_eq!(m1, m2);
            assert_eq!(i1, i2);
            assert!(
                i1.contains("\"org.opencontainers.image.ref.name\":\"1\""),
                "{i1}"
            );
        }
    }
}
