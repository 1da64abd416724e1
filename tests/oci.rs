//! `export --oci`, `export --bundle` and `import`, checked by the tools
//! that consume them: runc runs the bundles (in the test's own mount
//! namespace, its state under the test's temp dir, a container id of its
//! own), skopeo and umoci read the layouts and make images of their own
//! (with whiteout and opaque layers) that `import` lays out.
mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use common::{code, d, ok, stderr, stdout, Ns, Within};

/// A tool the tests need, or a failure that says what to install.
fn need(tool: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    assert!(
        found || Path::new("/usr/sbin").join(tool).is_file(),
        "{tool} is needed for this test: apt-get install {package}"
    );
}

/// A container of this test: runc's state under the test's temp dir, a
/// unique id, deleted on drop.
struct Runc<'a> {
    ns: &'a Ns,
    state: PathBuf,
    id: String,
}

impl<'a> Runc<'a> {
    fn new(ns: &'a Ns, name: &str) -> Runc<'a> {
        need("runc", "runc");
        let state = ns.tmp.path().join("runc-state");
        fs::create_dir_all(&state).unwrap();
        Runc {
            ns,
            state,
            id: format!("ct-oci-{}-{name}", std::process::id()),
        }
    }

    /// `runc run` of `bundle` with `args` as the process.
    fn run(&self, bundle: &Path, args: &[&str]) -> Output {
        let config = bundle.join("config.json");
        let mut v: serde_json::Value = serde_json::from_slice(&fs::read(&config).unwrap()).unwrap();
        v["process"]["args"] = serde_json::json!(args);
        fs::write(&config, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
        self.ns
            .cmd("runc")
            .arg("--root")
            .arg(&self.state)
            .args(["run", "-b"])
            .arg(bundle)
            .arg(&self.id)
            .stdin(std::process::Stdio::null())
            .output_within()
    }
}

impl Drop for Runc<'_> {
    fn drop(&mut self) {
        let _ = self
            .ns
            .cmd("runc")
            .arg("--root")
            .arg(&self.state)
            .args(["delete", "-f", &self.id])
            .output_within();
    }
}

/// chroot-tool with `args`, given longer than one command usually gets:
/// a whole Debian sandbox exported or imported on a busy machine.
fn slow(ns: &Ns, args: &[&str]) -> Output {
    common::output_within(ns.tool().args(args), Duration::from_secs(600))
}

fn config(bundle: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(bundle.join("config.json")).unwrap()).unwrap()
}

/// Every file of a directory tree with its bytes, by relative path.
fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(p) = todo.pop() {
        for e in fs::read_dir(&p).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                todo.push(e.path());
            } else {
                let rel = e.path().strip_prefix(dir).unwrap().to_path_buf();
                out.push((rel, fs::read(e.path()).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn bundle_of_a_busybox_sandbox_runs_under_runc_with_its_binds_and_limits() {
    let ns = Ns::new();
    let root = ns.busybox_root("sb");
    let host = ns.tmp.path().join("hostdata");
    fs::create_dir(&host).unwrap();
    fs::write(host.join("f"), "from the host\n").unwrap();
    fs::write(
        root.join("chroot.d/tool.conf"),
        format!(
            "[bind]\nsrc:{} tgt:/data fs:bind-ro\nsrc:/sys/fs/cgroup tgt:/hostcg fs:bind-ro opt:rbind\n\
             [limits]\nnofile:512 pids:64 memory:256M\n",
            d(&host)
        ),
    )
    .unwrap();
    // Turned on, with something in its /tmp tmpfs: not exported.
    ok(&ns.run(&["on", "-d", d(&root)]));
    ok(&ns.sh(&format!("echo mounted > {}/tmp/only-mounted", d(&root))));
    let bundle = ns.tmp.path().join("bundle");
    let out = ns.run(&["export", "-d", d(&root), "--bundle", d(&bundle)]);
    ok(&out);
    ok(&ns.run(&["off", "-d", d(&root)]));
    assert!(bundle.join("rootfs/bin/busybox").is_file());
    assert!(
        !bundle.join("rootfs/tmp/only-mounted").exists(),
        "mounted content was exported"
    );
    let c = config(&bundle);
    assert_eq!(c["linux"]["resources"]["pids"]["limit"], 64);
    assert_eq!(c["linux"]["resources"]["memory"]["limit"], 256 << 20);

    let runc = Runc::new(&ns, "busybox");
    let out = runc.run(
        &bundle,
        &[
            "/bin/sh",
            "-c",
            "echo hello from the bundle; cat /data/f; \
             touch /data/x 2>/dev/null || echo data is read-only; \
             grep 'open files' /proc/self/limits; ls /proc/1/ >/dev/null && echo proc; \
             ls /dev/null /dev/pts/ptmx >/dev/null && echo dev; \
             p=$(grep -m1 -E '^[0-9]+:(pids)?:' /proc/self/cgroup | cut -d: -f3); \
             cat /hostcg/pids$p/pids.max /hostcg$p/pids.max 2>/dev/null; \
             m=$(grep -m1 -E '^[0-9]+:(memory)?:' /proc/self/cgroup | cut -d: -f3); \
             cat /hostcg/memory$m/memory.limit_in_bytes /hostcg$m/memory.max 2>/dev/null; true",
        ],
    );
    let text = ok(&out);
    assert!(
        text.starts_with("hello from the bundle\nfrom the host\ndata is read-only\n"),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("Max open files")
            && l.split_whitespace().filter(|w| *w == "512").count() == 2),
        "{text}"
    );
    // The runtime's cgroup of the container, seen through the host's
    // cgroup tree bound in (v1 controllers or v2).
    assert!(text.ends_with("proc\ndev\n64\n268435456\n"), "{text}");
    assert!(!host.join("x").exists());
}

#[test]
fn bundle_of_the_debian_sandbox_runs_apt_under_runc() {
    let ns = Ns::new();
    let root = ns.debian_root("deb");
    let bundle = ns.tmp.path().join("bundle");
    ok(&slow(
        &ns,
        &["export", "-q", "-d", d(&root), "--bundle", d(&bundle)],
    ));
    let runc = Runc::new(&ns, "debian");
    let out = runc.run(
        &bundle,
        &["/bin/sh", "-c", "apt-get --version | head -n1; id -un; pwd"],
    );
    let text = ok(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("apt "), "{text}");
    assert_eq!(&lines[1..], ["root", "/"], "{text}");
}

#[test]
fn layout_is_read_by_skopeo_and_umoci_and_leaves_out_excludes_and_mounts() {
    need("skopeo", "skopeo");
    need("umoci", "umoci");
    let ns = Ns::new();
    let root = ns.busybox_root("sb");
    fs::create_dir_all(root.join("var/cache/big")).unwrap();
    fs::write(root.join("var/cache/big/blob"), "excluded").unwrap();
    fs::write(root.join("kept"), "kept\n").unwrap();
    fs::write(
        root.join("chroot.d/tool.conf"),
        "[exclude]\n/var/cache/big\n[run]\nworkdir:/root\n",
    )
    .unwrap();
    common::script(
        &root.join("chroot.d/chroot-cmd"),
        "#!/bin/sh\nexec \"$@\"\n",
    );
    ok(&ns.run(&["on", "-d", d(&root)]));
    ok(&ns.sh(&format!("echo mounted > {}/tmp/only-mounted", d(&root))));
    let oci = ns.tmp.path().join("sb.oci");
    let out = ns.run(&[
        "export",
        "-d",
        d(&root),
        "--oci",
        d(&oci),
        "--tag",
        "sandbox:1.0",
    ]);
    ok(&out);
    ok(&ns.run(&["off", "-d", d(&root)]));

    let image = format!("oci:{}:1.0", d(&oci));
    let inspect = ok(&ns.cmd("skopeo").args(["inspect", &image]).output_within());
    let v: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(v["Os"], "linux");
    assert_eq!(v["Layers"].as_array().unwrap().len(), 1);
    let config = ok(&ns
        .cmd("skopeo")
        .args(["inspect", "--config", &image])
        .output_within());
    let c: serde_json::Value = serde_json::from_str(&config).unwrap();
    assert_eq!(
        c["config"]["Entrypoint"],
        serde_json::json!(["/chroot.d/chroot-cmd"])
    );
    assert_eq!(c["config"]["WorkingDir"], "/root");
    assert!(c["config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e.as_str().unwrap().starts_with("PATH=/usr/local/sbin:")));

    let other = ns.tmp.path().join("other.oci");
    ok(&ns
        .cmd("skopeo")
        .args(["copy", &image, &format!("oci:{}:copy", d(&other))])
        .output_within());
    let unpacked = ns.tmp.path().join("umoci-bundle");
    ok(&ns
        .cmd("umoci")
        .args([
            "unpack",
            "--image",
            &format!("{}:1.0", d(&oci)),
            d(&unpacked),
        ])
        .output_within());
    let rootfs = unpacked.join("rootfs");
    assert_eq!(fs::read_to_string(rootfs.join("kept")).unwrap(), "kept\n");
    assert!(rootfs.join("bin/busybox").is_file());
    assert!(rootfs.join("var/cache").is_dir());
    assert!(
        !rootfs.join("var/cache/big").exists(),
        "[exclude] was exported"
    );
    assert!(
        !rootfs.join("tmp/only-mounted").exists(),
        "mounted content was exported"
    );
}

#[test]
fn two_exports_of_one_tree_are_byte_identical() {
    let ns = Ns::new();
    let root = ns.busybox_root("sb");
    fs::write(root.join("chroot.d/tool.conf"), "[run]\nuser:root\n").unwrap();
    for (how, extra) in [("gzip", vec![]), ("zstd", vec!["--mtime", "1700000000"])] {
        let a = ns.tmp.path().join(format!("a-{how}"));
        let b = ns.tmp.path().join(format!("b-{how}"));
        for out in [&a, &b] {
            let mut args = vec![
                "export",
                "-q",
                "-d",
                d(&root),
                "--oci",
                d(out),
                "--compression",
                how,
            ];
            args.extend(&extra);
            ok(&ns.run(&args));
        }
        let (ta, tb) = (tree(&a), tree(&b));
        assert_eq!(ta.len(), 5, "oci-layout, index.json and three blobs");
        assert!(ta == tb, "{how}: two exports differ");
    }
    // SOURCE_DATE_EPOCH fixes the mtimes and the date as --mtime does.
    let e = ns.tmp.path().join("epoch");
    ok(&ns
        .tool()
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .args([
            "export",
            "-q",
            "-d",
            d(&root),
            "--oci",
            d(&e),
            "--compression",
            "zstd",
        ])
        .output_within());
    assert!(tree(&e) == tree(&ns.tmp.path().join("a-zstd")));
}

#[test]
fn debian_sandbox_exported_then_imported_runs_apt() {
    let ns = Ns::new();
    let root = ns.debian_root("deb");
    let oci = ns.tmp.path().join("deb.oci");
    ok(&slow(
        &ns,
        &["export", "-q", "-d", d(&root), "--oci", d(&oci)],
    ));
    let new = ns.tmp.path().join("deb2");
    let out = slow(&ns, &["import", d(&oci), "-d", d(&new)]);
    ok(&out);
    let out = ns.run_in(&new, &["--", "apt-get", "--version"]);
    assert!(ok(&out).starts_with("apt "), "{}", stdout(&out));
    ok(&ns.run(&["off", "-d", d(&new)]));
}

/// An image made by umoci: a base layer, a layer that deletes a
/// directory (a whiteout) and one that replaces a directory (opaque).
fn umoci_image(ns: &Ns) -> PathBuf {
    need("umoci", "umoci");
    let base = ns.busybox_root("base");
    for (p, text) in [
        ("old/a", "a"),
        ("keep/x", "x"),
        ("opq/one", "1"),
        ("opq/two", "2"),
    ] {
        fs::create_dir_all(base.join(p).parent().unwrap()).unwrap();
        fs::write(base.join(p), text).unwrap();
    }
    let newopq = ns.tmp.path().join("newopq");
    fs::create_dir(&newopq).unwrap();
    // 512 bytes: umoci 0.4.7 ends a layer without the padding of its last
    // file (GNU tar, Go's and Rust's tar readers all stop there).
    fs::write(newopq.join("three"), format!("{:<511}\n", "3")).unwrap();
    let layout = ns.tmp.path().join("made-by-umoci");
    let image = format!("{}:t", d(&layout));
    let umoci = |args: &[&str]| ok(&ns.cmd("umoci").args(args).output_within());
    umoci(&["init", "--layout", d(&layout)]);
    umoci(&["new", "--image", &image]);
    umoci(&["insert", "--image", &image, d(&base), "/"]);
    umoci(&["insert", "--image", &image, "--whiteout", "/old"]);
    umoci(&["insert", "--image", &image, "--opaque", d(&newopq), "/opq"]);
    umoci(&["config", "--image", &image, "--config.workingdir", "/keep"]);
    layout
}

fn check_umoci_import(ns: &Ns, new: &Path) {
    assert!(!new.join("old").exists(), "the whiteout was not applied");
    assert_eq!(fs::read_to_string(new.join("keep/x")).unwrap(), "x");
    let mut opq: Vec<String> = fs::read_dir(new.join("opq"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    opq.sort();
    assert_eq!(
        opq,
        ["three"],
        "the opaque directory kept what lay below it"
    );
    let conf = fs::read_to_string(new.join("chroot.d/tool.conf")).unwrap();
    assert!(conf.lines().any(|l| l == "workdir:/keep"), "{conf}");
    let out = ns.run_in(new, &["--", "/bin/sh", "-c", "pwd; head -c1 /opq/three"]);
    assert_eq!(ok(&out), "/keep\n3");
    ok(&ns.run(&["off", "-d", d(new)]));
}

#[test]
fn import_of_an_image_made_by_umoci_applies_whiteouts_and_opaque_dirs() {
    let ns = Ns::new();
    let layout = umoci_image(&ns);
    let new = ns.tmp.path().join("from-umoci");
    let out = ns.run(&["import", d(&layout), "--tag", "t", "-d", d(&new)]);
    ok(&out);
    assert!(stderr(&out).contains("(3 layers,"), "{}", stderr(&out));
    check_umoci_import(&ns, &new);
}

#[test]
fn import_of_a_docker_archive_made_by_skopeo() {
    need("skopeo", "skopeo");
    let ns = Ns::new();
    let layout = umoci_image(&ns);
    let archive = ns.tmp.path().join("docker.tar");
    ok(&ns
        .cmd("skopeo")
        .args([
            "copy",
            &format!("oci:{}:t", d(&layout)),
            &format!("docker-archive:{}:made/elsewhere:t", d(&archive)),
        ])
        .output_within());
    let new = ns.tmp.path().join("from-docker");
    let out = ns.run(&["import", d(&archive), "-d", d(&new)]);
    ok(&out);
    assert!(stderr(&out).contains("docker archive"), "{}", stderr(&out));
    check_umoci_import(&ns, &new);
}

/// A tar header whose name is written as is (the tar crate refuses `..`).
fn raw_entry(
    t: &mut tar::Builder<Vec<u8>>,
    name: &str,
    kind: tar::EntryType,
    link: &str,
    data: &[u8],
) {
    let mut h = tar::Header::new_ustar();
    h.as_ustar_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
    h.set_entry_type(kind);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(data.len() as u64);
    if !link.is_empty() {
        h.set_link_name(link).unwrap();
    }
    h.set_cksum();
    t.append(&h, data).unwrap();
}

/// A docker archive whose one layer holds `layer` (a tar built by `make`).
fn docker_archive(path: &Path, make: impl FnOnce(&mut tar::Builder<Vec<u8>>)) {
    let mut layer = tar::Builder::new(Vec::new());
    raw_entry(&mut layer, "bin/", tar::EntryType::Directory, "", b"");
    make(&mut layer);
    let layer = layer.into_inner().unwrap();
    let mut outer = tar::Builder::new(fs::File::create(path).unwrap());
    let add = |o: &mut tar::Builder<fs::File>, name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        o.append_data(&mut h, name, data).unwrap();
    };
    add(
        &mut outer,
        "manifest.json",
        br#"[{"Config":"c.json","RepoTags":["evil:1"],"Layers":["l/layer.tar"]}]"#,
    );
    add(
        &mut outer,
        "c.json",
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#,
    );
    add(&mut outer, "l/layer.tar", &layer);
    outer.finish().unwrap();
}

#[test]
fn import_refuses_layer_members_that_land_outside_dir() {
    let ns = Ns::new();
    let outside = ns.tmp.path().join("escaped");
    for (case, make) in [
        (
            "dotdot",
            Box::new(|t: &mut tar::Builder<Vec<u8>>| {
                raw_entry(t, "../escaped", tar::EntryType::Regular, "", b"out");
            }) as Box<dyn FnOnce(&mut tar::Builder<Vec<u8>>)>,
        ),
        (
            "symlink",
            Box::new(|t: &mut tar::Builder<Vec<u8>>| {
                raw_entry(t, "up", tar::EntryType::Symlink, "..", b"");
                raw_entry(t, "up/escaped", tar::EntryType::Regular, "", b"out");
            }),
        ),
    ] {
        let archive = ns.tmp.path().join(format!("{case}.tar"));
        docker_archive(&archive, make);
        let new = ns.tmp.path().join(case);
        let out = ns.run(&["import", d(&archive), "-d", d(&new)]);
        assert_eq!(code(&out), 1, "{case}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("escaped"),
            "{case}: the member is not named: {err}"
        );
        assert!(err.contains("refusing"), "{case}: {err}");
        assert!(
            !outside.exists(),
            "{case}: a member was written outside DIR"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}

#[test]
fn import_sets_aside_what_would_act_on_the_host() {
    let ns = Ns::new();
    let root = ns.busybox_root("sb");
    fs::write(
        root.join("chroot.d/tool.conf"),
        "[bind]\nsrc:/etc tgt:/hostetc\n",
    )
    .unwrap();
    common::script(
        &root.join("chroot.d/host-cmd"),
        "#!/bin/sh\ntouch /tmp/host-cmd-ran\n",
    );
    let oci = ns.tmp.path().join("sb.oci");
    ok(&ns.run(&["export", "-q", "-d", d(&root), "--oci", d(&oci)]));
    let new = ns.tmp.path().join("new");
    let out = ns.run(&["import", d(&oci), "-d", d(&new)]);
    ok(&out);
    assert!(stderr(&out).contains("set aside"), "{}", stderr(&out));
    assert!(new.join("chroot.d/tool.conf.untrusted").is_file());
    assert!(new.join("chroot.d/host-cmd.untrusted").is_file());
    assert!(!new.join("chroot.d/tool.conf").exists());
    let trusted = ns.tmp.path().join("trusted");
    ok(&ns.run(&["import", "--trust", d(&oci), "-d", d(&trusted)]));
    assert!(trusted.join("chroot.d/tool.conf").is_file());
    assert!(trusted.join("chroot.d/host-cmd").is_file());
}

#[test]
fn export_and_import_refuse_what_they_cannot_do() {
    let ns = Ns::new();
    let root = ns.busybox_root("sb");
    let out = ns.run(&["export", "-d", d(&root), "--oci", d(&root.join("inside"))]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("inside the sandbox"),
        "{}",
        stderr(&out)
    );
    let full = ns.tmp.path().join("full");
    fs::create_dir(&full).unwrap();
    fs::write(full.join("x"), "").unwrap();
    let out = ns.run(&["export", "-d", d(&root), "--bundle", d(&full)]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("not empty"), "{}", stderr(&out));
    let out = ns.run(&["export", "-d", d(&root)]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not provided: <--oci <OUT>|--bundle <OUT>>"),
        "{}",
        stderr(&out)
    );
    let out = ns.run(&["import", d(&root), "-d", d(&ns.tmp.path().join("n"))]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("neither an OCI image layout"),
        "{}",
        stderr(&out)
    );
    let oci = ns.tmp.path().join("sb.oci");
    ok(&ns.run(&["export", "-q", "-d", d(&root), "--oci", d(&oci)]));
    let out = ns.run(&["import", d(&oci), "-d", d(&full)]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("not empty"), "{}", stderr(&out));
    let out = ns.run(&[
        "import",
        d(&oci),
        "--tag",
        "nope",
        "-d",
        d(&ns.tmp.path().join("m")),
    ]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("no image named \"nope\" (it has: latest)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn import_refuses_a_layer_whose_digest_is_not_the_manifests() {
    let ns = Ns::new();
    let (a, b) = (ns.busybox_root("a"), ns.busybox_root("b"));
    fs::write(b.join("other"), "other content").unwrap();
    let (oa, ob) = (ns.tmp.path().join("a.oci"), ns.tmp.path().join("b.oci"));
    ok(&ns.run(&["export", "-q", "-d", d(&a), "--oci", d(&oa)]));
    ok(&ns.run(&["export", "-q", "-d", d(&b), "--oci", d(&ob)]));
    // b's layer (a valid gzip tar) under the name of a's.
    let biggest = |o: &Path| {
        fs::read_dir(o.join("blobs/sha256"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .max_by_key(|p| fs::metadata(p).unwrap().len())
            .unwrap()
    };
    fs::copy(biggest(&ob), biggest(&oa)).unwrap();
    let new = ns.tmp.path().join("new");
    let out = ns.run(&["import", d(&oa), "-d", d(&new)]);
    assert_eq!(code(&out), 1);
    let err = stderr(&out);
    assert!(err.contains("layer 1 of 1"), "{err}");
    assert!(err.contains("not sha256:"), "{err}");
}

/// What a killed `pack` or `export` left beside its output (its temporary
/// file, its staging directory) is removed by the next one to the same
/// output once it is stale (untouched for 6 hours): never a fresh one (a
/// writer at work), another user's, one for another output, or a name of
/// the user's own.
#[test]
fn a_killed_pack_or_export_leaves_nothing_for_long() {
    let ns = Ns::new();
    let root = ns.busybox_root("sb");
    let t = ns.tmp.path().join("out");
    fs::create_dir(&t).unwrap();
    let old = |p: &Path| ok(&ns.sh(&format!("touch -h -d '7 hours ago' '{}'", d(p))));
    let stale_file = t.join(".sb.tar.partial-123-00000000000000aa");
    let stale_dir = t.join(".img.partial-123-00000000000000bb");
    let fresh = t.join(".sb.tar.partial-124-00000000000000cc");
    let theirs = t.join(".sb.tar.partial-125-00000000000000dd");
    let other = t.join(".other.tar.partial-126-00000000000000ee");
    let own = t.join(".sb.tar.notes");
    for f in [&stale_file, &fresh, &theirs, &other, &own] {
        fs::write(f, "x").unwrap();
    }
    fs::create_dir_all(stale_dir.join("blobs/sha256")).unwrap();
    fs::write(stale_dir.join("blobs/sha256/half"), "x").unwrap();
    std::os::unix::fs::chown(&theirs, Some(65534), None).unwrap();
    for p in [
        &stale_file,
        &theirs,
        &other,
        &own,
        &stale_dir.join("blobs/sha256/half"),
        &stale_dir.join("blobs/sha256"),
        &stale_dir.join("blobs"),
        &stale_dir,
    ] {
        old(p);
    }
    ok(&ns.run(&["pack", "-q", "-d", d(&root), "-o", d(&t.join("sb.tar"))]));
    assert!(!stale_file.exists());
    assert!(stale_dir.exists(), "another output's");
    for kept in [&fresh, &theirs, &other, &own] {
        assert!(kept.exists(), "{}", kept.display());
    }
    ok(&ns.run(&["export", "-q", "-d", d(&root), "--oci", d(&t.join("img"))]));
    assert!(!stale_dir.exists());
    for kept in [&fresh, &theirs, &other, &own] {
        assert!(kept.exists(), "{}", kept.display());
    }
    let mut left: Vec<_> = fs::read_dir(&t)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        [
            ".other.tar.partial-126-00000000000000ee",
            ".sb.tar.notes",
            ".sb.tar.partial-124-00000000000000cc",
            ".sb.tar.partial-125-00000000000000dd",
            "img",
            "sb.tar"
        ]
    );
}
