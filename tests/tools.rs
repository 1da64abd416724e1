//! Living with many sandboxes: the list of those a user created or used
//! (`list`, `status --json`), and host wrappers (`link`). Each test's list
//! is in its own state dir (`CHROOT_TOOL_STATE_DIR`, set by the harness).
mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;

use common::{code, d, ok, stderr, stdout, Ns};
use serde_json::Value;

const CREATE_TOML: &str = "suite = \"stable\"\ncodename = \"trixie\"\nmirror = \"http://deb.debian.org/debian\"\nvariant = \"minbase\"\narch = \"amd64\"\ndate = \"2026-01-01T00:00:00Z\"\ntool_version = \"0.1.0\"\n";

fn json(ns: &Ns, args: &[&str]) -> Value {
    let out = ok(&ns.run(args));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn canon(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap()
}

/// The fields `list --json` and `status --json` have in common, checked
/// one by one (docs/json.md).
#[track_caller]
fn check_summary(v: &Value, dir: &Path, state: &str, suite: Option<&str>, codename: Option<&str>) {
    assert_eq!(v["dir"], d(&canon(dir)), "{v}");
    assert_eq!(v["state"], state, "{v}");
    let mode = if state == "off" { "off" } else { "chroot" };
    assert_eq!(v["mode"], mode, "{v}");
    assert_eq!(v["suite"].as_str(), suite, "{v}");
    assert_eq!(v["codename"].as_str(), codename, "{v}");
    let procs = v["processes"].as_array().expect("processes is an array");
    for p in procs {
        assert!(p["pid"].as_i64().unwrap() > 0, "{p}");
        assert!(p["comm"].is_string(), "{p}");
    }
}

#[test]
fn list_and_status_say_every_field_and_forget_what_is_gone() {
    let ns = Ns::new();
    let a = ns.busybox_root("a");
    let b = ns.busybox_root("b with space");
    std::fs::write(a.join("chroot.d/create.toml"), CREATE_TOML).unwrap();
    std::fs::write(
        b.join("etc/os-release"),
        "ID=debian\nVERSION_CODENAME=bookworm\n",
    )
    .unwrap();
    std::fs::write(a.join("big"), vec![7u8; 1 << 20]).unwrap();
    std::fs::hard_link(a.join("big"), a.join("big-again")).unwrap();

    // Nothing recorded yet: an empty array, and a word on stderr for people.
    assert_eq!(json(&ns, &["list", "--json"]), serde_json::json!([]));
    let o = ns.run(&["list"]);
    assert_eq!((code(&o), stdout(&o).as_str()), (0, ""), "{}", stderr(&o));
    assert!(stderr(&o).contains("no sandboxes yet"), "{}", stderr(&o));

    ok(&ns.run(&["on", "-d", d(&a)]));
    ok(&ns.run_in(&b, &["--", "true"]));
    // run left b on: it is recorded, and stays so when off.
    ok(&ns.run(&["off", "-d", d(&b)]));
    // A process inside a, until off ends it.
    let sleeper = ns
        .tool()
        .args(["run", "-d", d(&a), "--", "sleep", "1000"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    common::wait_until("the sleep is inside a", || {
        json(&ns, &["list", "--json"])[0]["processes"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p["comm"] == "sleep"))
    });

    let list = json(&ns, &["list", "--json", "--size"]);
    let all = list.as_array().unwrap();
    assert_eq!(all.len(), 2, "{list}");
    check_summary(&all[0], &a, "on", Some("stable"), Some("trixie"));
    check_summary(&all[1], &b, "off", None, Some("bookworm"));
    assert!(all[1]["processes"].as_array().unwrap().is_empty());
    // Disk use: the 1 MiB file once (hard link counted once), and nothing
    // of what is mounted in a (its /proc, /dev, /sys...).
    let use_a = all[0]["disk_use"]["bytes"].as_u64().unwrap();
    assert!((1 << 20..3 << 20).contains(&use_a), "{list}");
    assert_eq!(all[0]["disk_use"]["unreadable"], 0, "{list}");
    assert!(all[1]["disk_use"]["bytes"].as_u64().unwrap() > 0, "{list}");
    // Without --size there is no disk use.
    assert!(json(&ns, &["list", "--json"])[0]["disk_use"].is_null());

    let st = json(&ns, &["status", "-d", d(&a), "--json", "--size"]);
    check_summary(&st, &a, "on", Some("stable"), Some("trixie"));
    assert_eq!(st["disk_use"], all[0]["disk_use"]);
    let mounts = st["mounts"].as_array().unwrap();
    assert!(
        mounts
            .iter()
            .any(|m| m["target"] == "/proc" && m["fstype"] == "proc"),
        "{st}"
    );
    for m in mounts {
        for k in ["target", "fstype", "source", "options", "propagation"] {
            assert!(m[k].is_string(), "{k} of {m}");
        }
    }

    // The text table, one line per sandbox after the header.
    let text = ok(&ns.run(&["list", "--size"]));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[0].starts_with("DIR") && lines[0].ends_with("SIZE"),
        "{text}"
    );
    assert!(
        lines[1].contains(" on ") && lines[1].contains("trixie"),
        "{text}"
    );
    assert!(
        lines[2].contains(" off ") && lines[2].contains("bookworm"),
        "{text}"
    );

    ok(&ns.run(&["off", "-d", d(&a), "--timeout", "2"]));
    common::finish_within(sleeper, common::DEADLINE);
    check_summary(
        &json(&ns, &["list", "--json"])[0],
        &a,
        "off",
        Some("stable"),
        Some("trixie"),
    );

    // A sandbox deleted by hand leaves the list (and its record goes);
    // one destroyed leaves it too.
    std::fs::remove_dir_all(&b).unwrap();
    let list = json(&ns, &["list", "--json"]);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    let reg = ns.state_dir().join("sandboxes");
    assert_eq!(std::fs::read_dir(&reg).unwrap().count(), 1);
    ok(&ns.run(&["destroy", "-d", d(&a), "--yes"]));
    assert_eq!(json(&ns, &["list", "--json"]), serde_json::json!([]));
    assert_eq!(std::fs::read_dir(&reg).unwrap().count(), 0);
}

#[test]
fn parallel_runs_record_a_sandbox_once() {
    let ns = Ns::new();
    let root = ns.busybox_root("sb");
    ok(&ns.run(&["on", "-d", d(&root)]));
    let reg = ns.state_dir().join("sandboxes");
    std::fs::remove_dir_all(&reg).unwrap();
    let children: Vec<_> = (0..10)
        .map(|_| {
            ns.tool()
                .args(["run", "-d", d(&root), "--", "true"])
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let o = common::finish_within(c, common::DEADLINE);
        assert_eq!((code(&o), stderr(&o).as_str()), (0, ""));
    }
    let links: Vec<_> = std::fs::read_dir(&reg).unwrap().flatten().collect();
    assert_eq!(links.len(), 1);
    assert_eq!(std::fs::read_link(links[0].path()).unwrap(), canon(&root));
    ok(&ns.run(&["off", "-d", d(&root)]));
}

#[test]
fn a_linked_command_runs_inside_in_the_mapped_directory_with_exact_arguments() {
    let ns = Ns::new();
    let root = ns.busybox_root("sb");
    let project = ns.tmp.path().join("project");
    let here = project.join("sub dir");
    std::fs::create_dir_all(&here).unwrap();
    std::fs::write(
        root.join("chroot.d/tool.conf"),
        format!("[bind]\nsrc:\"{}\" tgt:/work\n", d(&project)),
    )
    .unwrap();
    common::script(
        &root.join("bin/showargs"),
        "#!/bin/sh\npwd\nfor a in \"$@\"; do printf '[%s]\\n' \"$a\"; done\n",
    );
    let bin = ns.tmp.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let o = ns.run(&["link", "-d", d(&root), "showargs", "--to", d(&bin)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).starts_with("made "), "{}", stdout(&o));
    let wrapper = bin.join("showargs");
    let text = std::fs::read_to_string(&wrapper).unwrap();
    assert_eq!(text.lines().nth(1), Some(chroot_tool::link::MARK), "{text}");

    // From the host, in a directory of the [bind]: runs inside, there.
    let run = |args: &[&str]| {
        let mut c = ns.cmd("sh");
        c.args(["-c", "cd \"$1\" || exit 99; shift; exec \"$@\"", "sh"])
            .arg(&here)
            .arg(&wrapper)
            .args(args)
            .stdin(Stdio::null());
        common::output_within(&mut c, common::DEADLINE)
    };
    let o = run(&["a b", "", "c'd", "$HOME", "*"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "/work/sub dir\n[a b]\n[]\n[c'd]\n[$HOME]\n[*]\n"
    );

    // Its exit status is the command's.
    common::script(&root.join("bin/fails"), "#!/bin/sh\nexit 7\n");
    ok(&ns.run(&["link", "-d", d(&root), "fails", "--to", d(&bin)]));
    assert_eq!(code(&run_wrapper(&ns, &here, &bin.join("fails"))), 7);

    // A file that is not a wrapper is never replaced nor removed.
    std::fs::write(bin.join("mine"), "#!/bin/sh\necho mine\n").unwrap();
    let o = ns.run(&["link", "-d", d(&root), "mine", "--to", d(&bin)]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("is not a wrapper made by chroot-tool link"),
        "{}",
        stderr(&o)
    );
    let o = ns.run(&["link", "--remove", "-d", d(&root), "mine", "--to", d(&bin)]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(bin.join("mine")).unwrap(),
        "#!/bin/sh\necho mine\n"
    );

    // Names are plain words: usage error, nothing written.
    for bad in ["../x", "a/b", "-x", "a b", ""] {
        let o = ns.run(&["link", "-d", d(&root), "--to", d(&bin), "--", bad]);
        assert_eq!(code(&o), 2, "{bad:?}: {}", stderr(&o));
    }

    ok(&ns.run(&[
        "link",
        "--remove",
        "-d",
        d(&root),
        "showargs",
        "fails",
        "--to",
        d(&bin),
    ]));
    let mut left: Vec<_> = std::fs::read_dir(&bin)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(left, ["mine"]);
    ok(&ns.run(&["off", "-d", d(&root)]));
}

fn run_wrapper(ns: &Ns, cwd: &Path, wrapper: &Path) -> std::process::Output {
    let mut c = ns.cmd("sh");
    c.args(["-c", "cd \"$1\" && exec \"$2\"", "sh"])
        .arg(cwd)
        .arg(wrapper)
        .stdin(Stdio::null());
    common::output_within(&mut c, common::DEADLINE)
}

/// A normal user (ct-user): `list` reads the user's own list under
/// `$XDG_STATE_HOME`, `link` puts wrappers in `~/.local/bin` (made when
/// missing), and the user's `$XDG_CONFIG_HOME/chroot-tool/config.toml`
/// gives `create`'s defaults. None of it needs root.
#[test]
fn a_user_lists_links_and_configures_without_root() {
    use std::os::unix::fs::PermissionsExt;
    common::require_root();
    let place = tempfile::Builder::new()
        .prefix("ct-user-")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::set_permissions(place.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = place.path().join("chroot-tool");
    common::install_exec(Path::new(common::BIN), &bin);
    let home = place.path().join("home");
    let (state, config) = (home.join("state"), home.join("config"));
    std::fs::create_dir_all(config.join("chroot-tool")).unwrap();
    std::fs::write(
        config.join("chroot-tool/config.toml"),
        "[create]\nsuite = \"bookworm\"\n",
    )
    .unwrap();
    common::make_busybox_root(&home.join("sb"));
    // A recorded sandbox of the user's (as `create` would leave it).
    let canon = canon(&home.join("sb"));
    let reg = state.join("chroot-tool/sandboxes");
    std::fs::create_dir_all(&reg).unwrap();
    std::os::unix::fs::symlink(&canon, reg.join(chroot_tool::registry::entry_name(&canon)))
        .unwrap();
    let st = std::process::Command::new("chown")
        .args(["-R", "ct-user:"])
        .arg(&home)
        .status()
        .expect("chown");
    assert!(st.success());
    let user = |args: &[&str]| {
        let mut c = std::process::Command::new("runuser");
        c.args(["-u", "ct-user", "--", "env"])
            .args(["-u", chroot_tool::audit::STATE_ENV])
            .args(["-u", chroot_tool::conf::config::CONFIG_ENV])
            .arg(format!("HOME={}", d(&home)))
            .arg(format!("XDG_STATE_HOME={}", d(&state)))
            .arg(format!("XDG_CONFIG_HOME={}", d(&config)))
            .arg(&bin)
            .args(args)
            .stdin(Stdio::null());
        common::output_within(&mut c, common::DEADLINE)
    };
    let o = user(&["list", "--json"]);
    let v: Value = serde_json::from_str(&ok(&o)).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1, "{v}");
    check_summary(&v[0], &canon, "off", None, None);
    let o = user(&["link", "-d", d(&canon), "sh"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let wrapper = home.join(".local/bin/sh");
    let text = std::fs::read_to_string(&wrapper).unwrap();
    assert!(
        text.contains(&format!("# sandbox: {}", d(&canon))),
        "{text}"
    );
    use std::os::unix::fs::MetadataExt;
    let uid = nix::unistd::User::from_name("ct-user")
        .unwrap()
        .unwrap()
        .uid
        .as_raw();
    assert_eq!(std::fs::metadata(&wrapper).unwrap().uid(), uid);
    ok(&user(&["link", "--remove", "-d", d(&canon), "sh"]));
    assert!(!wrapper.exists());
    let help = ok(&user(&["create", "--help"]));
    let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(help.contains("[default: bookworm]"), "{help}");
}
