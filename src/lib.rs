//! chroot-tool keeps lightweight Debian sandboxes on disk.
//!
//! Layout: `cli` (parsed arguments) and `commands` (one module per verb) are
//! the edge; `conf`, `plan` and `dispatch` decide *what* happens (pure
//! policy); `engine`, `procs`, `launch` and `sys` make it happen (mechanism).
pub mod archive;
pub mod audit;
pub mod cgroup;
pub mod cli;
pub mod commands;
pub mod conf;
pub mod create;
pub mod dispatch;
pub mod engine;
pub mod holder;
pub mod idmap;
pub mod launch;
pub mod link;
pub mod lock;
pub mod mountinfo;
pub mod overlay;
pub mod owned;
pub mod plan;
pub mod procs;
pub mod registry;
pub mod remove;
pub mod sandbox;
pub mod show;
pub mod sys;
pub mod usage;
