//! chroot-tool: parse the command line, run the command, map errors to exit codes.
//!
//! The program starts at the C `main`: std's own start-up would read
//! `/proc/self/maps` on every run for a stack guard, a cost `run` pays each
//! time; what of it we need is in `sys::process::runtime_start`.
#![no_main]
use std::ffi::OsString;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory, FromArgMatches};

use chroot_tool::cli::Cli;

chroot_tool::c_main!(run);

/// Size classes that keep freed memory for the next allocation, instead of
/// musl's allocator handing it to the kernel and asking again
/// (`sys::alloc`).
#[global_allocator]
static ALLOC: chroot_tool::sys::alloc::Classes = chroot_tool::sys::alloc::Classes;

/// The exit status.
fn run() -> u8 {
    let args = chroot_tool::sys::process::args();
    if let Some(cli) = chroot_tool::cli::parse_lean(&args).or_else(|| parse_quick(&args)) {
        return execute(cli);
    }
    let cmd = match with_config(&args) {
        Ok(cmd) => cmd,
        Err(e) => {
            let parts = e.chain().map(|c| c.to_string());
            eprintln!("chroot-tool: {}", chroot_tool::show::error_line(parts));
            return 1;
        }
    };
    let cli = match parse(cmd, &args) {
        Ok(cli) => cli,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            // --help / --version: print as clap does (stdout), success.
            let _ = e.print();
            return 0;
        }
        Err(e) => {
            let line = chroot_tool::show::error_line([usage_line(&e, &args)]);
            eprintln!("chroot-tool: {line}");
            return 2;
        }
    };
    execute(cli)
}

/// Runs the parsed command; its exit status.
fn execute(cli: Cli) -> u8 {
    match chroot_tool::commands::run(cli) {
        Ok(code) => code,
        // A closed pipe (`chroot-tool status | head -1`) is not an error.
        Err(fail) if fail.is_broken_pipe() => 0,
        Err(fail) => {
            let parts = fail.error.chain().map(|c| c.to_string());
            eprintln!("chroot-tool: {}", chroot_tool::show::error_line(parts));
            fail.code
        }
    }
}

/// Parses the command line. `CHROOT_TOOL_DIR=` (set but empty) counts as
/// unset, so that the tool's own "no sandbox given" message comes.
fn parse(cmd: clap::Command, args: &[OsString]) -> Result<Cli, clap::Error> {
    let mut cmd = without_empty_dir(cmd);
    let mut matches = cmd.try_get_matches_from_mut(args)?;
    Cli::from_arg_matches_mut(&mut matches).map_err(|e| e.format(&mut cmd))
}

/// The line parsed with the definition of its subcommand alone
/// (`cli::command_for`), when that parses it; `None` sends it to the whole
/// definition, whose messages (help, version, errors) are the ones shown.
fn parse_quick(args: &[OsString]) -> Option<Cli> {
    let name = first_word(args)?;
    if name == "create" {
        // Its defaults come from config.toml (`with_config`).
        return None;
    }
    let cmd = without_empty_dir(chroot_tool::cli::command_for(name)?);
    let mut matches = cmd.try_get_matches_from(args).ok()?;
    Cli::from_arg_matches_mut(&mut matches).ok()
}

/// `CHROOT_TOOL_DIR=` (set but empty) counts as unset.
fn without_empty_dir(cmd: clap::Command) -> clap::Command {
    if std::env::var_os("CHROOT_TOOL_DIR").is_some_and(|v| v.is_empty()) {
        cmd.mut_arg("dir", |a| a.env(None::<&'static str>))
    } else {
        cmd
    }
}

/// The command line's definition; for `create`, with config.toml's
/// defaults as its options' defaults (config.toml is read here for
/// `create` only; `run` and `shell` read its `[run]` themselves).
fn with_config(args: &[OsString]) -> anyhow::Result<clap::Command> {
    let cmd = Cli::command();
    // The word first: no second look at the definition on other commands' path.
    if args.iter().any(|a| a == "create") && subcommand(args).as_deref() == Some("create") {
        return chroot_tool::commands::config::create_defaults(cmd);
    }
    Ok(cmd)
}

/// A clap error as one line: its message without `error: `, tips and usage,
/// then where to read more (the subcommand's help when one was named).
fn usage_line(e: &clap::Error, args: &[OsString]) -> String {
    let msg = if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        "no command given".to_string()
    } else {
        let rendered = e.render().to_string();
        let first = rendered
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        let first = first.strip_prefix("error: ").unwrap_or(first).trim_end();
        // "the following required arguments were not provided:" names
        // them on the indented lines that follow.
        let listed: Vec<&str> = rendered
            .lines()
            .skip_while(|l| !l.trim_end().ends_with(':'))
            .skip(1)
            .take_while(|l| l.starts_with("  "))
            .map(str::trim)
            .collect();
        let first = if first.ends_with(':') && !listed.is_empty() {
            format!("{first} {}", listed.join(" "))
        } else {
            first.to_string()
        };
        match suggestion(e) {
            Some(s) => format!("{first} (did you mean '{s}'?)"),
            None if e.kind() == ErrorKind::UnknownArgument
                && subcommand(args).as_deref() == Some("run") =>
            {
                format!(
                    "{first} (a command's own options go after --: chroot-tool run -d DIR -- PROG ARGS...)"
                )
            }
            None => first.to_string(),
        }
    };
    match subcommand(args) {
        Some(sub) => format!("{msg}; see chroot-tool {sub} --help"),
        None => format!("{msg}; see chroot-tool --help"),
    }
}

/// clap's "a similar subcommand/argument exists" suggestion, if it has one.
fn suggestion(e: &clap::Error) -> Option<String> {
    [ContextKind::SuggestedSubcommand, ContextKind::SuggestedArg]
        .into_iter()
        .find_map(|kind| match e.get(kind)? {
            ContextValue::String(s) => Some(s.clone()),
            ContextValue::Strings(v) => v.first().cloned(),
            _ => None,
        })
}

/// The subcommand named on the line, if it is a known one: the first word
/// that is neither an option nor the value of `-d`/`--dir`.
fn subcommand(args: &[OsString]) -> Option<String> {
    let w = first_word(args)?;
    Cli::command()
        .get_subcommands()
        .find(|s| s.get_name() == w || s.get_all_aliases().any(|a| a == w))
        .map(|s| s.get_name().to_string())
}

/// The first word that is neither an option nor the value of `-d`/`--dir`
/// (before a `--`).
fn first_word(args: &[OsString]) -> Option<&str> {
    // The value of `-d` is skipped whatever its bytes; other words that
    // are not UTF-8 are no subcommand.
    let mut words = args.iter().skip(1);
    while let Some(word) = words.next() {
        let Some(word) = word.to_str() else { continue };
        match word {
            "--" => return None,
            "-d" | "--dir" => {
                words.next();
            }
            w if w.starts_with('-') => {}
            w => return Some(w),
        }
    }
    None
}
