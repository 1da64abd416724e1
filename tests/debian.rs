//! A real Debian rootfs (made once per tool build by `chroot-tool create`,
//! copied per test): apt works inside, on/run/off cycles leave the mount
//! table as it was, and the sandbox gets a real terminal.
mod common;

use common::{d, stderr, stdout, Ns};

#[test]
fn apt_get_update_and_install_a_small_package() {
    let ns = Ns::new();
    let root = ns.debian_root("deb");
    let outside = ns.mounts_outside(&root);
    let o = ns.run(&[
        "run",
        "-d",
        d(&root),
        "apt-get update -q && apt-get install -y -q hello && hello",
    ]);
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).ends_with("Hello, world!\n"), "{}", stdout(&o));
    assert!(root.join("usr/bin/hello").exists());
    // dpkg's view of /dev/null, /tmp, /proc was fine; now turn off.
    assert!(ns.run(&["off", "-d", d(&root)]).status.success());
    assert!(ns.mounts_under(&root).is_empty());
    assert_eq!(outside, ns.mounts_outside(&root));
}

#[test]
fn on_run_off_cycles_leave_the_mount_table_as_it_was() {
    let ns = Ns::new();
    let root = ns.debian_root("deb");
    let host = ns.tmp.path().join("project");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(
        root.join("chroot.d/tool.conf"),
        format!("[bind]\nsrc:{} tgt:/project\n", d(&host)),
    )
    .unwrap();
    let before = ns.mountinfo();
    for i in 0..3 {
        let o = ns.run(&["run", "-d", d(&root), &format!("echo {i} >> /project/log && cat /etc/debian_version >/dev/null && getent hosts localhost >/dev/null")]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(ns.run(&["off", "-d", d(&root)]).status.success());
        assert!(ns.mounts_under(&root).is_empty());
    }
    assert_eq!(
        std::fs::read_to_string(host.join("log")).unwrap(),
        "0\n1\n2\n"
    );
    let strip = |s: &str| {
        s.lines()
            .map(|l| l.split(' ').skip(2).collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&before), strip(&ns.mountinfo()));
}

#[test]
fn status_shows_the_debian_it_was_made_from() {
    let ns = Ns::new();
    let root = ns.debian_root("deb");
    let o = ns.run(&["status", "-d", d(&root)]);
    assert!(o.status.success());
    assert!(stdout(&o).contains("debian: stable"), "{}", stdout(&o));
}

// ---- issue 8: what a new user hit ----

/// The sandbox runs under the host's hostname: after `on`, glibc resolves
/// it inside (what `sudo` asks; without it: "unable to resolve host"), and
/// the name `create` wrote for DIR still resolves too.
#[test]
fn the_hostname_the_sandbox_runs_under_resolves_inside() {
    let ns = Ns::new();
    let root = ns.debian_root("deb");
    let o = ns.run(&[
        "run",
        "-d",
        d(&root),
        "getent hosts \"$(hostname)\" && getent hosts \"$(cat /etc/hostname)\"",
    ]);
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    let host = nix::unistd::gethostname().unwrap().into_string().unwrap();
    assert!(stdout(&o).contains(&host), "{}", stdout(&o));
    let own = std::fs::read_to_string(root.join("etc/hostname")).unwrap();
    assert!(stdout(&o).contains(own.trim()), "{}", stdout(&o));
    assert!(ns.run(&["off", "-d", d(&root)]).status.success());
}
