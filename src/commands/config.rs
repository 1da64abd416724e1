//! config.toml's defaults applied (`conf::config`): under tool.conf's
//! `[run]` for `run` and `shell`, and as the defaults of `create`'s options.
use anyhow::Result;

use crate::conf::{Conf, Config};

/// tool.conf with config.toml's `[run]` settings where it has none of its own.
pub fn under(conf: Conf) -> Result<Conf> {
    Ok(crate::conf::config::under(conf)?)
}

/// `create`'s options with config.toml's values as their defaults: the
/// command line wins over them, and `create --help` shows them.
pub fn create_defaults(cmd: clap::Command) -> Result<clap::Command> {
    let c = Config::load()?.create;
    let set = [
        ("suite", c.suite),
        ("mirror", c.mirror),
        ("variant", c.variant),
        ("arch", c.arch),
        ("include", c.include.map(|v| v.join(","))),
        ("components", c.components.map(|v| v.join(","))),
    ];
    Ok(cmd.mut_subcommand("create", |mut sc| {
        for (arg, v) in set {
            if let Some(v) = v {
                // Once per process: clap keeps &'static defaults.
                let v: &'static str = Box::leak(v.into_boxed_str());
                sc = sc.mut_arg(arg, |a| a.default_value(v));
            }
        }
        sc
    }))
}
