//! The completion scripts and man pages under share/ are generated from the
//! command-line definition (`commands::share::write_all`); this checks the
//! committed ones are up to date, and writes them again when
//! `CHROOT_TOOL_BLESS=1` is set (`make share`).
use std::path::Path;
use std::process::Command;

use clap::CommandFactory;

const REGENERATE: &str = "regenerate with `make share` (CHROOT_TOOL_BLESS=1 cargo test --test completions share_is_up_to_date) and commit share/";

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = ["completions", "man/man1"]
        .iter()
        .flat_map(|sub| {
            std::fs::read_dir(dir.join(sub))
                .into_iter()
                .flatten()
                .map(move |e| format!("{sub}/{}", e.unwrap().file_name().to_string_lossy()))
        })
        .collect();
    v.sort();
    v
}

#[test]
fn share_is_up_to_date() {
    let share = Path::new(env!("CARGO_MANIFEST_DIR")).join("share");
    if std::env::var_os("CHROOT_TOOL_BLESS").is_some_and(|v| v == "1") {
        for sub in ["completions", "man/man1"] {
            let _ = std::fs::remove_dir_all(share.join(sub));
        }
        chroot_tool::commands::share::write_all(&share).unwrap();
    }
    let tmp = tempfile::tempdir().unwrap();
    chroot_tool::commands::share::write_all(tmp.path()).unwrap();
    let (fresh, committed) = (files(tmp.path()), files(&share));
    assert_eq!(
        fresh, committed,
        "share/ has other files than generated: {REGENERATE}"
    );
    for f in &fresh {
        let want = std::fs::read(tmp.path().join(f)).unwrap();
        let have = std::fs::read(share.join(f)).unwrap();
        assert!(want == have, "share/{f} is out of date: {REGENERATE}");
    }
    // One page for the tool and one for each subcommand.
    for sub in chroot_tool::cli::Cli::command().get_subcommands() {
        let page = format!("man/man1/chroot-tool-{}.1", sub.get_name());
        assert!(fresh.contains(&page), "no {page}");
    }
    assert!(fresh.contains(&"man/man1/chroot-tool.1".to_string()));
}

#[test]
fn completions_subcommand_prints_the_committed_scripts() {
    for (shell, file) in [
        ("bash", "chroot-tool.bash"),
        ("zsh", "_chroot-tool"),
        ("fish", "chroot-tool.fish"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_chroot-tool"))
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success());
        let path = format!("{}/share/completions/{file}", env!("CARGO_MANIFEST_DIR"));
        let committed = std::fs::read(&path).unwrap();
        assert!(committed == out.stdout, "{path} is stale: {REGENERATE}");
        let text = String::from_utf8(out.stdout).unwrap();
        for verb in ["status", "list", "link"] {
            assert!(text.contains(verb), "{shell}: no {verb}");
        }
    }
}

/// bash completes the subcommands and each one's own options.
#[test]
fn bash_completes_subcommands_and_their_options() {
    let script = format!(
        "{}/share/completions/chroot-tool.bash",
        env!("CARGO_MANIFEST_DIR")
    );
    let complete = |words: &[&str]| {
        let line = words.join(" ");
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "source \"$1\"; COMP_WORDS=({line}); COMP_CWORD={}; \
                 _chroot__tool chroot-tool \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"; \
                 printf '%s\\n' \"${{COMPREPLY[@]}}\"",
                words.len() - 1
            ))
            .arg("bash")
            .arg(&script)
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(complete(&["chroot-tool", "li"]), "list\nlink\n");
    assert_eq!(complete(&["chroot-tool", "list", "--s"]), "--size\n");
    assert_eq!(complete(&["chroot-tool", "link", "--r"]), "--remove\n");
    assert!(complete(&["chroot-tool", "run", "--ne"]).contains("--net"));
}

/// Every command's --help ends with an example.
#[test]
fn every_help_ends_with_an_example() {
    let mut cmd = chroot_tool::cli::Cli::command();
    cmd.build();
    let mut names = vec![vec![]];
    names.extend(
        cmd.get_subcommands()
            .filter(|s| s.get_name() != "help")
            .map(|s| vec![s.get_name().to_string()]),
    );
    for words in names {
        for flag in ["-h", "--help"] {
            let out = Command::new(env!("CARGO_BIN_EXE_chroot-tool"))
                .args(&words)
                .arg(flag)
                .output()
                .unwrap();
            assert!(out.status.success(), "{words:?} {flag}");
            let text = String::from_utf8(out.stdout).unwrap();
            let tail: Vec<&str> = text
                .trim_end()
                .lines()
                .rev()
                .take_while(|l| !l.is_empty())
                .collect();
            let para = tail.last().copied().unwrap_or("");
            assert!(
                para == "Example:" || para == "Examples:",
                "{words:?} {flag}: the help does not end with an example:\n{text}"
            );
            assert!(tail.len() >= 2 && tail.iter().all(|l| *l == para || l.starts_with("  ")));
            assert!(tail[..tail.len() - 1]
                .iter()
                .any(|l| l.contains("chroot-tool")));
        }
    }
}
