//! Reading an image made elsewhere: an OCI image layout (a directory, or
//! an `oci-archive` tar of one) or a docker archive (`docker save`,
//! `podman save`: `manifest.json` and layer tars, in a tar or unpacked).
//! Which image, which layers in which order, and the digests to check
//! them against; the files are read where they are, a tar's members by
//! their offset, never copied out first.
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};
use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest, MediaType};

use crate::show;

/// At most this much of a JSON document of an image is read.
pub const JSON_CAP: u64 = 4 << 20;

/// Where an image's files are.
pub enum Store {
    Dir {
        path: PathBuf,
        fd: OwnedFd,
    },
    /// A tar file: its regular members by name (offset of the data, size),
    /// and its links (name to the name they point to).
    Tar {
        path: PathBuf,
        members: HashMap<String, (u64, u64)>,
        links: HashMap<String, String>,
    },
}

/// A member name as a relative path without `.` parts; `None` when it
/// climbs (`..`) or is empty.
fn clean(name: &str) -> Option<String> {
    let mut out: Vec<&str> = Vec::new();
    for c in Path::new(name).components() {
        match c {
            Component::Normal(s) => out.push(s.to_str()?),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir => {
                out.pop()?;
            }
            Component::Prefix(_) => return None,
        }
    }
    (!out.is_empty()).then(|| out.join("/"))
}

impl Store {
    /// A directory (an OCI layout, or an unpacked docker archive) or a tar file.
    pub fn open(path: &Path) -> Result<Store> {
        let meta = std::fs::metadata(path).with_context(|| show::path(path))?;
        if meta.is_dir() {
            let fd = crate::sys::open_root(path)
                .with_context(|| format!("opening {}", show::path(path)))?;
            return Ok(Store::Dir {
                path: path.to_path_buf(),
                fd,
            });
        }
        let f = File::open(path).with_context(|| format!("opening {}", show::path(path)))?;
        let mut members = HashMap::new();
        let mut links = HashMap::new();
        let bad = |e: io::Error| {
            anyhow::anyhow!(
                "{}: not an image directory nor a readable tar archive (an OCI layout, an oci-archive or a docker archive): {e}",
                show::path(path)
            )
        };
        let mut ar = tar::Archive::new(io::BufReader::new(f));
        for entry in ar.entries().map_err(bad)? {
            let entry = entry.map_err(bad)?;
            let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let Some(name) = clean(&raw) else { continue };
            let kind = entry.header().entry_type();
            if kind.is_file() {
                members.insert(name, (entry.raw_file_position(), entry.size()));
            } else if kind.is_symlink() || kind.is_hard_link() {
                let Some(to) = entry.link_name_bytes() else {
                    continue;
                };
                let to = String::from_utf8_lossy(&to).into_owned();
                // A symlink is relative to its directory; a hard link names
                // a member from the top.
                let target = if kind.is_symlink() && !to.starts_with('/') {
                    let dir = Path::new(&name).parent().unwrap_or(Path::new(""));
                    dir.join(&to).to_string_lossy().into_owned()
                } else {
                    to
                };
                if let Some(t) = clean(&target) {
                    links.insert(name, t);
                }
            }
        }
        Ok(Store::Tar {
            path: path.to_path_buf(),
            members,
            links,
        })
    }

    pub fn path(&self) -> &Path {
        match self {
            Store::Dir { path, .. } | Store::Tar { path, .. } => path,
        }
    }

    fn member(&self, name: &str) -> Option<(u64, u64)> {
        let Store::Tar { members, links, .. } = self else {
            return None;
        };
        let mut name = name.to_string();
        for _ in 0..16 {
            if let Some(m) = members.get(&name) {
                return Some(*m);
            }
            name = links.get(&name)?.clone();
        }
        None
    }

    /// Whether the image has a file `name`.
    pub fn has(&self, name: &str) -> bool {
        match self {
            Store::Dir { fd, .. } => clean(name).is_some_and(|n| {
                crate::sys::resolve_in_root(fd.as_fd(), Path::new(&n))
                    .ok()
                    .and_then(|f| std::fs::metadata(crate::sys::fd_path(f.as_fd())).ok())
                    .is_some_and(|m| m.is_file())
            }),
            Store::Tar { .. } => clean(name).is_some_and(|n| self.member(&n).is_some()),
        }
    }

    /// The file `name` of the image, and its size; in a directory,
    /// resolved inside it (a symlink never leads out).
    pub fn open_file(&self, name: &str) -> Result<(Box<dyn Read>, u64)> {
        let what = || format!("{} in {}", show::quote(name), show::path(self.path()));
        let n = clean(name).with_context(|| format!("{}: not a path inside the image", what()))?;
        match self {
            Store::Dir { fd, .. } => {
                let f = crate::sys::resolve_in_root(fd.as_fd(), Path::new(&n))
                    .and_then(|f| File::open(crate::sys::fd_path(f.as_fd())))
                    .with_context(|| format!("opening {}", what()))?;
                let meta = f.metadata().with_context(what)?;
                if !meta.is_file() {
                    bail!("{}: not a regular file", what());
                }
                Ok((Box::new(f), meta.len()))
            }
            Store::Tar { path, .. } => {
                let (offset, size) = self
                    .member(&n)
                    .with_context(|| format!("{}: no such member", what()))?;
                let mut f =
                    File::open(path).with_context(|| format!("opening {}", show::path(path)))?;
                f.seek(SeekFrom::Start(offset))
                    .with_context(|| format!("reading {}", what()))?;
                Ok((Box::new(f.take(size)), size))
            }
        }
    }

    /// A JSON document of the image (at most [`JSON_CAP`] bytes).
    pub fn json<T: serde::de::DeserializeOwned>(&self, name: &str) -> Result<T> {
        self.json_checked(name, None)
    }

    /// A JSON blob of the image, checked against its descriptor's digest
    /// and size.
    pub fn blob_json<T: serde::de::DeserializeOwned>(&self, d: &Descriptor) -> Result<T> {
        let name = blob_path(d.digest().as_ref())?;
        self.json_checked(&name, Some((d.digest().as_ref(), d.size())))
    }

    fn json_checked<T: serde::de::DeserializeOwned>(
        &self,
        name: &str,
        want: Option<(&str, u64)>,
    ) -> Result<T> {
        let (r, size) = self.open_file(name)?;
        let what = || format!("{} in {}", show::quote(name), show::path(self.path()));
        if size > JSON_CAP {
            bail!(
                "{}: {size} bytes, more than a JSON document of an image may be",
                what()
            );
        }
        let mut buf = Vec::new();
        r.take(JSON_CAP)
            .read_to_end(&mut buf)
            .with_context(|| format!("reading {}", what()))?;
        if let Some((digest, size)) = want {
            let mut tally = super::blob::Tally::default();
            io::copy(
                &mut super::blob::Tallied::new(&buf[..], &mut tally),
                &mut io::sink(),
            )?;
            tally.check(digest, Some(size)).with_context(what)?;
        }
        serde_json::from_slice(&buf).with_context(|| format!("{}: not the JSON expected", what()))
    }
}

/// One layer to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// Its file in the store.
    pub file: String,
    /// The digest and size of the file as stored (OCI: the blob's).
    pub digest: Option<(String, u64)>,
    /// The digest of the uncompressed tar (the config's `rootfs.diff_ids`).
    pub diff_id: Option<String>,
}

/// The image chosen in a store.
#[derive(Debug, Clone)]
pub struct Image {
    /// What kind of image it was, for messages.
    pub kind: &'static str,
    /// Its name or tag, when the image has one.
    pub name: Option<String>,
    pub config: ImageConfiguration,
    pub layers: Vec<Layer>,
}

impl Image {
    /// The bytes of compressed layers, as stored (when known).
    pub fn size(&self) -> u64 {
        self.layers
            .iter()
            .filter_map(|l| l.digest.as_ref().map(|d| d.1))
            .sum()
    }
}

/// `blobs/ALG/HEX` of a digest (sha256 or sha512, lowercase hex).
pub fn blob_path(digest: &str) -> Result<String> {
    let ok = |alg: &str, hex: &str, len: usize| {
        hex.len() == len
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            && matches!(alg, "sha256" | "sha512")
    };
    match digest.split_once(':') {
        Some((alg @ "sha256", hex)) if ok(alg, hex, 64) => Ok(format!("blobs/{alg}/{hex}")),
        Some((alg @ "sha512", hex)) if ok(alg, hex, 128) => Ok(format!("blobs/{alg}/{hex}")),
        _ => bail!("{} is not a sha256 or sha512 digest", show::quote(digest)),
    }
}

const REF_NAME: &str = "org.opencontainers.image.ref.name";
const CONTAINERD_NAME: &str = "io.containerd.image.name";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

fn names_of(d: &Descriptor) -> Vec<String> {
    let Some(a) = d.annotations() else {
        return vec![];
    };
    [CONTAINERD_NAME, REF_NAME]
        .iter()
        .filter_map(|k| a.get(*k).cloned())
        .collect()
}

/// Whether a name given with `--tag` names this image: the whole name,
/// or its tag.
fn tag_matches(names: &[String], want: &str) -> bool {
    names.iter().any(|n| {
        n == want
            || n.rsplit_once(':')
                .is_some_and(|(_, t)| t == want && !t.contains('/'))
    })
}

fn is_index(mt: &MediaType) -> bool {
    matches!(mt, MediaType::ImageIndex) || mt.to_string() == DOCKER_LIST
}

fn is_manifest(mt: &MediaType) -> bool {
    matches!(mt, MediaType::ImageManifest) || mt.to_string() == DOCKER_MANIFEST
}

/// Whether a descriptor's platform (when it says one) is this machine's
/// (`linux` and its architecture).
fn runs_here(d: &Descriptor) -> bool {
    d.platform().as_ref().is_none_or(|p| {
        p.os().to_string() == "linux" && p.architecture().to_string() == super::facts::host_arch().0
    })
}

/// Chooses the image in `store`: by `tag` when given, else the only one
/// (of this machine's platform, in a multi-platform index).
pub fn choose(store: &Store, tag: Option<&str>) -> Result<Image> {
    if store.has("oci-layout") && store.has("index.json") {
        let index: ImageIndex = store.json("index.json")?;
        let (desc, name) = pick_manifest(store, index.manifests(), tag, 0)?;
        return oci_image(store, &desc, name);
    }
    if store.has("manifest.json") {
        return docker_image(store, tag);
    }
    bail!(
        "{}: neither an OCI image layout (oci-layout, index.json) nor a docker archive (manifest.json)",
        show::path(store.path())
    )
}

fn pick_manifest(
    store: &Store,
    list: &[Descriptor],
    tag: Option<&str>,
    depth: usize,
) -> Result<(Descriptor, Option<String>)> {
    if depth > 4 {
        bail!("{}: image indexes nest too deep", show::path(store.path()));
    }
    let mut found: Vec<(&Descriptor, Vec<String>)> = list
        .iter()
        .filter(|d| is_index(d.media_type()) || is_manifest(d.media_type()))
        .map(|d| (d, names_of(d)))
        .collect();
    // A tag chooses among the top entries; a nested index then by platform.
    if let Some(t) = tag.filter(|_| depth == 0) {
        found.retain(|(_, n)| tag_matches(n, t));
        if found.is_empty() {
            let all: Vec<String> = list.iter().flat_map(names_of).collect();
            bail!(
                "{}: no image named {} (it has: {})",
                show::path(store.path()),
                show::quote(t),
                if all.is_empty() {
                    "no names".into()
                } else {
                    all.join(", ")
                }
            );
        }
    }
    if found.len() > 1 {
        found.retain(|(d, _)| runs_here(d));
    }
    match found.as_slice() {
        [] => bail!(
            "{}: no image {}in it",
            show::path(store.path()),
            if depth > 0 {
                "for this machine's platform "
            } else {
                ""
            }
        ),
        [(d, names)] => {
            let d = (*d).clone();
            let name = names.first().cloned();
            if is_index(d.media_type()) {
                let inner: ImageIndex = store.blob_json(&d)?;
                let (m, inner_name) = pick_manifest(store, inner.manifests(), tag, depth + 1)?;
                return Ok((m, name.or(inner_name)));
            }
            Ok((d, name))
        }
        many => {
            let names: Vec<String> = many
                .iter()
                .map(|(d, n)| n.first().cloned().unwrap_or_else(|| d.digest().to_string()))
                .collect();
            bail!(
                "{}: it holds {} images ({}); choose one with --tag",
                show::path(store.path()),
                many.len(),
                names.join(", ")
            )
        }
    }
}

fn oci_image(store: &Store, desc: &Descriptor, name: Option<String>) -> Result<Image> {
    let manifest: ImageManifest = store.blob_json(desc)?;
    let config: ImageConfiguration = store.blob_json(manifest.config())?;
    let diff_ids = config.rootfs().diff_ids();
    let mut layers = Vec::new();
    for (i, l) in manifest.layers().iter().enumerate() {
        let digest = l.digest().to_string();
        layers.push(Layer {
            file: blob_path(&digest)?,
            digest: Some((digest, l.size())),
            diff_id: (diff_ids.len() == manifest.layers().len()).then(|| diff_ids[i].clone()),
        });
    }
    Ok(Image {
        kind: "OCI image",
        name,
        config,
        layers,
    })
}

/// One image of a docker archive's `manifest.json`.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

fn docker_image(store: &Store, tag: Option<&str>) -> Result<Image> {
    let entries: Vec<DockerEntry> = store.json("manifest.json")?;
    let mut found: Vec<&DockerEntry> = entries.iter().collect();
    if let Some(t) = tag {
        found.retain(|e| tag_matches(e.repo_tags.as_deref().unwrap_or_default(), t));
    }
    let entry = match found.as_slice() {
        [e] => *e,
        [] => bail!(
            "{}: no image {}in its manifest.json",
            show::path(store.path()),
            tag.map_or(String::new(), |t| format!("named {} ", show::quote(t)))
        ),
        many => bail!(
            "{}: it holds {} images ({}); choose one with --tag",
            show::path(store.path()),
            many.len(),
            many.iter()
                .map(|e| e.repo_tags.as_deref().unwrap_or_default().join(" "))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let config: ImageConfiguration = store.json(&entry.config)?;
    let diff_ids = config.rootfs().diff_ids();
    let layers = entry
        .layers
        .iter()
        .enumerate()
        .map(|(i, f)| Layer {
            file: f.clone(),
            digest: None,
            diff_id: (diff_ids.len() == entry.layers.len()).then(|| diff_ids[i].clone()),
        })
        .collect();
    Ok(Image {
        kind: "docker archive",
        name: entry.repo_tags.as_ref().and_then(|t| t.first().cloned()),
        config,
        layers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_names() {
        assert_eq!(
            clean("./blobs/sha256/ab").as_deref(),
            Some("blobs/sha256/ab")
        );
        assert_eq!(clean("/index.json").as_deref(), Some("index.json"));
        assert_eq!(clean("a/../b").as_deref(), Some("b"));
        assert_eq!(clean("../x"), None);
        assert_eq!(clean("."), None);
    }

    #[test]
    fn blob_paths() {
        let h = "a".repeat(64);
        assert_eq!(
            blob_path(&format!("sha256:{h}")).unwrap(),
            format!("blobs/sha256/{h}")
        );
        assert!(blob_path("sha256:../../etc/passwd").is_err());
        assert!(blob_path(&format!("md5:{h}")).is_err());
        assert!(blob_path(&format!("sha256:{}", "A".repeat(64))).is_err());
    }

    #[test]
    fn tags() {
        let n = vec!["reg.example:5000/sb:1.0".to_string()];
        assert!(tag_matches(&n, "1.0"));
        assert!(tag_matches(&n, "reg.example:5000/sb:1.0"));
        assert!(!tag_matches(&n, "5000/sb"));
        assert!(tag_matches(&["latest".to_string()], "latest"));
    }
}
