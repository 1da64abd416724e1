//! Embedding chroot-tool: open the sandbox given on the command line, turn
//! it on with a guard, run `uname -a` and `id` inside with options, print
//! what they wrote and their status, and drop the guard (which turns the
//! sandbox off again if it was off before).
//!
//! ```text
//! cargo run --example embed -- DIR [USER]
//! ```
use std::process::ExitCode;

use chroot_tool::{Command, RunOptions, Sandbox};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("embed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let mut args = std::env::args_os().skip(1);
    let Some(dir) = args.next() else {
        anyhow::bail!("usage: embed DIR [USER]");
    };
    let user = args.next().map(|u| u.to_string_lossy().into_owned());

    let sb = Sandbox::open(&dir)?;
    let guard = sb.on()?;
    println!(
        "{} was {}",
        sb.dir().display(),
        if guard.turned_on() {
            "off: turned on"
        } else {
            "on already"
        }
    );

    let uname = sb.run(Command::argv(["uname", "-a"]), &RunOptions::default())?;
    print!("uname -a: {}", String::from_utf8_lossy(&uname.stdout));
    println!("uname -a: status {}", uname.code);

    let mut opts = RunOptions::default()
        .workdir("/tmp")
        .env("GREETING", "hello from the host");
    if let Some(user) = &user {
        opts = opts.user(user.as_str());
    }
    let id = sb.run(
        Command::line("id; echo \"$GREETING in $(pwd)\"; echo to stderr >&2"),
        &opts,
    )?;
    print!("id: {}", String::from_utf8_lossy(&id.stdout));
    print!("id: stderr: {}", String::from_utf8_lossy(&id.stderr));
    println!("id: status {}", id.code);

    for w in sb.take_warnings() {
        eprintln!("embed: warning: {w}");
    }
    let turned_on = guard.turned_on();
    drop(guard);
    println!(
        "{}",
        if turned_on {
            "turned off again"
        } else {
            "left on"
        }
    );
    Ok(())
}
