//! chroot-tool keeps lightweight Debian sandboxes on disk: a directory
//! holding a root filesystem, turned on by mounting what programs need,
//! used by running commands inside with chroot, turned off by unmounting
//! everything again.
//!
//! This crate is the `chroot-tool` command and a library for programs that
//! embed it: [`Sandbox`] (open, [`Sandbox::on`] with its [`OnGuard`],
//! [`Sandbox::run`] with [`RunOptions`] into an [`Output`], [`Sandbox::off`]),
//! documented in [`api`], with an example in `examples/embed.rs`. The other
//! modules are the tool's own and not a stable interface.
//!
//! Layout (docs/architecture.md): `cli` (parsed arguments) and `commands`
//! (one module per verb) are the edge; `conf`, `plan` and `dispatch` decide
//! *what* happens (pure policy); `engine`, `procs`, `launch` and `sys` make
//! it happen (mechanism).
pub mod api;
#[doc(hidden)]
pub mod archive;
#[doc(hidden)]
pub mod audit;
#[doc(hidden)]
pub mod cgroup;
#[doc(hidden)]
pub mod cli;
#[doc(hidden)]
pub mod commands;
#[doc(hidden)]
pub mod conf;
#[doc(hidden)]
pub mod create;
#[doc(hidden)]
pub mod dispatch;
#[doc(hidden)]
pub mod engine;
#[doc(hidden)]
pub mod holder;
#[doc(hidden)]
pub mod idmap;
#[doc(hidden)]
pub mod launch;
#[doc(hidden)]
pub mod link;
#[doc(hidden)]
pub mod lock;
#[doc(hidden)]
pub mod mountinfo;
#[doc(hidden)]
pub mod overlay;
#[doc(hidden)]
pub mod owned;
#[doc(hidden)]
pub mod plan;
#[doc(hidden)]
pub mod procs;
#[doc(hidden)]
pub mod registry;
#[doc(hidden)]
pub mod remove;
#[doc(hidden)]
pub mod sandbox;
#[doc(hidden)]
pub mod show;
#[doc(hidden)]
pub mod sys;
#[doc(hidden)]
pub mod usage;

pub use api::{Command, OnGuard, Output, RunError, RunOptions, Sandbox};
