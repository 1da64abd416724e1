//! `make install` (Makefile): the binary, the completions where Debian's
//! shells look for them, one man page per command, the example config;
//! PREFIX and DESTDIR honoured. Runs the real install target into a temp
//! DESTDIR with the binary this build made (CARGO=true: no release build).
use std::path::Path;
use std::process::Command;

fn make_install(dest: &Path, extra: &[&str]) {
    let out = Command::new("make")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("install")
        .arg(format!("DESTDIR={}", dest.display()))
        .args([
            "CARGO=true",
            &format!("BIN={}", env!("CARGO_BIN_EXE_chroot-tool")),
        ])
        .args(extra)
        .output()
        .expect("make is needed (apt-get install make)");
    assert!(
        out.status.success(),
        "make install: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn make_install_puts_every_file_in_its_place() {
    use std::os::unix::fs::PermissionsExt;
    let t = tempfile::tempdir().unwrap();
    let dest = t.path();
    make_install(dest, &[]);
    let mode = |p: &str| {
        let m = std::fs::metadata(dest.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
        assert!(m.is_file(), "{p}");
        m.permissions().mode() & 0o777
    };
    assert_eq!(mode("usr/local/bin/chroot-tool"), 0o755);
    for f in [
        "usr/share/bash-completion/completions/chroot-tool",
        "usr/share/zsh/vendor-completions/_chroot-tool",
        "usr/share/fish/vendor_completions.d/chroot-tool.fish",
        "usr/local/share/man/man1/chroot-tool.1",
        "usr/local/share/doc/chroot-tool/config.toml",
    ] {
        assert_eq!(mode(f), 0o644, "{f}");
    }
    let share = Path::new(env!("CARGO_MANIFEST_DIR")).join("share/man/man1");
    for page in std::fs::read_dir(&share).unwrap() {
        let name = page.unwrap().file_name();
        let installed = dest.join("usr/local/share/man/man1").join(&name);
        assert_eq!(
            std::fs::read(&installed).unwrap(),
            std::fs::read(share.join(&name)).unwrap()
        );
    }
    assert!(dest
        .join("usr/local/share/man/man1/chroot-tool-run.1")
        .is_file());
    // The installed binary runs, and bash loads the completion.
    let v = Command::new(dest.join("usr/local/bin/chroot-tool"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&v.stdout).starts_with("chroot-tool "));
    let b = Command::new("bash")
        .arg("-c")
        .arg("source \"$1\" && complete -p chroot-tool")
        .arg("bash")
        .arg(dest.join("usr/share/bash-completion/completions/chroot-tool"))
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&b.stdout).contains("chroot-tool"),
        "{b:?}"
    );

    // PREFIX moves the binary, the pages and the doc; uninstall removes them.
    let t2 = tempfile::tempdir().unwrap();
    make_install(t2.path(), &["PREFIX=/usr"]);
    assert!(t2.path().join("usr/bin/chroot-tool").is_file());
    assert!(t2
        .path()
        .join("usr/share/man/man1/chroot-tool-list.1")
        .is_file());
    let out = Command::new("make")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["uninstall", "PREFIX=/usr"])
        .arg(format!("DESTDIR={}", t2.path().display()))
        .output()
        .unwrap();
    assert!(out.status.success());
    let left: Vec<_> = walk(t2.path());
    assert!(left.is_empty(), "left after uninstall: {left:?}");
}

/// Every file below `dir`.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
