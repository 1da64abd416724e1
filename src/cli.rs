//! Command-line arguments as parsed (clap derive). Resolution into the
//! settings the core works with happens in `commands`.
// The doc comments below are --help text (`[bind]` is a section of
// tool.conf there), not links.
#![allow(rustdoc::broken_intra_doc_links)]
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "chroot-tool",
    version,
    about = "Lightweight Debian sandboxes on disk: create, turn on, run, turn off",
    propagate_version = true,
    after_help = "Example:\n  chroot-tool create -d ~/sb/work --include procps,less\n  chroot-tool run -d ~/sb/work \"apt-get update\"\n  chroot-tool list",
    after_long_help = "Files:\n  DIR/chroot.d/tool.conf                   the sandbox's mounts and settings\n  /etc/chroot-tool/config.toml             defaults of create and run (docs/config.md)\n  ~/.config/chroot-tool/config.toml        your own defaults, over the system's\n  /var/lib/chroot-tool/ (root), ~/.local/state/chroot-tool/ (a user)\n                                           the history (log) and the list of sandboxes (list)\n\nEnvironment:\n  CHROOT_TOOL_DIR       the sandbox when -d is not given\n  CHROOT_TOOL_CONFIG    the one config file to read instead (empty: none)\n  CHROOT_TOOL_STATE_DIR where the history and the list are kept instead\n\nExample:\n  chroot-tool create -d ~/sb/work --include procps,less\n  chroot-tool run -d ~/sb/work \"apt-get update\"\n  chroot-tool list"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,

    #[command(subcommand)]
    pub command: Command,
}

/// The options every subcommand takes.
#[derive(Debug, Args)]
pub struct Global {
    /// The sandbox directory (may stand anywhere on the line).
    #[arg(
        short = 'd',
        long = "dir",
        global = true,
        env = "CHROOT_TOOL_DIR",
        value_name = "DIR",
        value_hint = clap::ValueHint::DirPath
    )]
    pub dir: Option<PathBuf>,
}

/// The command line's definition with only the subcommand `name`, all that
/// parsing a line naming it needs: making the definitions of all of them
/// is most of the cost of parsing `run`'s line. `None` when `name` is not a
/// subcommand. Help, version and error messages come from the whole
/// definition, [`clap::CommandFactory::command`] of [`Cli`].
pub fn command_for(name: &str) -> Option<clap::Command> {
    type Augment = fn(clap::Command) -> clap::Command;
    let (name, augment): (&'static str, Augment) = match name {
        "create" => ("create", CreateArgs::augment_args),
        "on" => ("on", OnArgs::augment_args),
        "run" => ("run", RunArgs::augment_args),
        "shell" => ("shell", LaunchArgs::augment_args),
        "off" => ("off", OffArgs::augment_args),
        "status" => ("status", StatusArgs::augment_args),
        "destroy" => ("destroy", DestroyArgs::augment_args),
        "log" => ("log", LogArgs::augment_args),
        "completions" => ("completions", CompletionsArgs::augment_args),
        "pack" => ("pack", PackArgs::augment_args),
        "unpack" => ("unpack", UnpackArgs::augment_args),
        "export" => ("export", ExportArgs::augment_args),
        "import" => ("import", ImportArgs::augment_args),
        "list" => ("list", ListArgs::augment_args),
        "link" => ("link", LinkArgs::augment_args),
        _ => return None,
    };
    let sub = augment(clap::Command::new(name));
    let top = clap::Command::new("chroot-tool").version(env!("CARGO_PKG_VERSION"));
    Some(Global::augment_args(top).subcommand(sub))
}

/// The lines `on`, `run` and `off` are given most, parsed without clap:
/// `on -d DIR`, `off -d DIR` and `run -d DIR -- PROG ARGS...`, word for
/// word (DIR not empty and not like an option, PROG ARGS text). Making
/// and walking even one subcommand's definition costs clap about 0.1 ms
/// of each start, most of it its code read in page by page: a tenth of
/// `on`, paid three times in a cold cycle. The result is what clap gives
/// for the same line (test `lean_lines_parse_as_clap_parses_them`); any
/// other line is `None`, for clap.
pub fn parse_lean(args: &[std::ffi::OsString]) -> Option<Cli> {
    let [_, verb, d, dir, rest @ ..] = args else {
        return None;
    };
    if d != "-d" || dir.is_empty() || dir.as_encoded_bytes().starts_with(b"-") {
        return None;
    }
    let command = match (verb.to_str()?, rest) {
        ("on", []) => Command::On(OnArgs::default()),
        ("off", []) => Command::Off(OffArgs { timeout: 5.0 }),
        ("run", [dashes, argv @ ..]) if dashes == "--" && !argv.is_empty() => {
            Command::Run(RunArgs {
                line: vec![],
                argv: argv
                    .iter()
                    .map(|a| a.to_str().map(str::to_string))
                    .collect::<Option<_>>()?,
                launch: LaunchArgs::default(),
            })
        }
        _ => return None,
    };
    Some(Cli {
        global: Global {
            dir: Some(PathBuf::from(dir)),
        },
        command,
    })
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build a Debian root filesystem in DIR with debootstrap.
    #[command(
        after_help = "Example:\n  chroot-tool create -d ~/sb/work --suite bookworm --include build-essential,git"
    )]
    Create(CreateArgs),
    /// Mount what programs need, and the [bind] mounts of chroot.d/tool.conf (a holder's namespaces as a normal user, with -N or --ns).
    #[command(
        after_help = "Example:\n  chroot-tool on -d ~/sb/work\n  chroot-tool on -d ~/sb/vm --ns pid,uts,ipc,net"
    )]
    On(OnArgs),
    /// Turn on, then run a command inside ("LINE" through the dispatch rules, or [--] PROG ARGS...).
    #[command(
        after_help = "Example:\n  chroot-tool run -d ~/sb/work \"apt-get update && apt-get -y upgrade\"\n  chroot-tool run -d ~/sb/work --here -- make -j4"
    )]
    Run(RunArgs),
    /// An interactive login shell inside (root's, or -u USER's in USER's home).
    #[command(after_help = "Example:\n  chroot-tool shell -d ~/sb/work -u builder")]
    Shell(LaunchArgs),
    /// Stop, end every process inside, unmount everything at or below DIR.
    #[command(after_help = "Example:\n  chroot-tool off -d ~/sb/work")]
    Off(OffArgs),
    /// Whether the sandbox is on, its mounts and the processes inside.
    #[command(after_help = "Example:\n  chroot-tool status -d ~/sb/work --json")]
    Status(StatusArgs),
    /// Turn off, then delete DIR without ever crossing a mount point.
    #[command(after_help = "Example:\n  chroot-tool destroy -d ~/sb/old --yes")]
    Destroy(DestroyArgs),
    /// The history of DIR: every on, run, shell and off, who ran it and its exit status.
    #[command(after_help = "Example:\n  chroot-tool log -d ~/sb/work -n 20")]
    Log(LogArgs),
    /// Print a shell completion script.
    #[command(
        after_help = "Example:\n  chroot-tool completions bash > ~/.local/share/bash-completion/completions/chroot-tool"
    )]
    Completions(CompletionsArgs),
    /// Pack the sandbox into one archive (zstd, or xz/gz/plain tar by the file name), leaving out [exclude] and everything mounted.
    #[command(after_help = "Example:\n  chroot-tool pack -d ~/sb/dev -o dev.tar.zst")]
    Pack(PackArgs),
    /// Unpack an archive (of pack, or of the original tool's tar.xz) into a new sandbox DIR.
    #[command(after_help = "Example:\n  chroot-tool unpack dev.tar.zst -d ~/sb/dev2")]
    Unpack(UnpackArgs),
    /// Write the sandbox as an OCI image layout (--oci) or an OCI runtime bundle (--bundle), for podman, runc, Kubernetes.
    #[command(
        after_help = "Examples:\n  chroot-tool export -d ~/sb/dev --oci dev.oci --tag dev:1.0\n  \
        podman run --rm -it oci:dev.oci bash\n  chroot-tool export -d ~/sb/dev --bundle dev.bundle\n  \
        runc run -b dev.bundle dev   # see docs/oci.md"
    )]
    Export(ExportArgs),
    /// Make a new sandbox DIR from an OCI image layout, an oci-archive or a docker archive (docker save, podman save).
    #[command(
        after_help = "Examples:\n  chroot-tool import dev.oci -d ~/sb/dev2\n  \
        podman save -o img.tar debian:stable && chroot-tool import img.tar -d ~/sb/deb"
    )]
    Import(ImportArgs),
    /// Every sandbox this user has created or used: on or off, suite, processes inside.
    #[command(
        after_help = "Example:\n  chroot-tool list --size\n  chroot-tool list --json | jq -r '.[] | select(.state == \"on\") | .dir'"
    )]
    List(ListArgs),
    /// Host commands that run NAME inside the sandbox, in the current directory (--here).
    #[command(
        after_help = "Example:\n  chroot-tool link -d ~/sb/work make cargo\n  cd ~/src/project && make   # runs the sandbox's make here\n  chroot-tool link --remove -d ~/sb/work make cargo"
    )]
    Link(LinkArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Debian suite (codename or stable/testing/unstable).
    #[arg(long, default_value = "stable")]
    pub suite: String,
    /// Debian mirror.
    #[arg(long, default_value = "http://deb.debian.org/debian")]
    pub mirror: String,
    /// debootstrap variant.
    #[arg(long, default_value = "minbase")]
    pub variant: String,
    /// Extra packages, comma-separated.
    #[arg(long, value_name = "PKG,...")]
    pub include: Option<String>,
    /// Architecture (default: the host's).
    #[arg(long)]
    pub arch: Option<String>,
    /// Archive components, comma-separated (default: main).
    #[arg(long, value_name = "COMP,...")]
    pub components: Option<String>,
    /// No progress output.
    #[arg(short, long)]
    pub quiet: bool,
    /// What builds the rootfs: mmdebstrap when installed (auto), else debootstrap; a normal user needs mmdebstrap.
    #[arg(long, default_value = "auto", value_parser = ["auto", "debootstrap", "mmdebstrap"])]
    pub backend: String,
    /// Neither use nor fill the cache of finished root filesystems.
    #[arg(long, conflicts_with = "refresh")]
    pub no_cache: bool,
    /// Run the backend even when the cache has this rootfs, and cache the result.
    #[arg(long)]
    pub refresh: bool,
    /// Clone a sandbox directory (on or off; never its mounts) or an archive instead of running debootstrap.
    #[arg(long, value_name = "DIR|FILE", conflicts_with_all = ["no_cache", "refresh", "suite", "mirror", "variant", "include", "arch", "components", "backend", "extra", "overlay"])]
    pub from: Option<PathBuf>,
    /// With --from FILE: enable the archive's host binds and host-cmd at once.
    #[arg(long, requires = "from")]
    pub trust: bool,
    /// Extra arguments passed to the backend as they are.
    #[arg(last = true, value_name = "DEBOOTSTRAP-ARGS")]
    pub extra: Vec<String>,
    /// A thin sandbox: an overlay whose writes go to DIR, over the sandbox BASE, which stays read-only (no copy, no backend).
    #[arg(long, value_name = "BASE", conflicts_with_all = ["suite", "mirror", "variant", "include", "arch", "components", "backend", "extra", "no_cache", "refresh"])]
    pub overlay: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// A shell command line in one argument; several words are an exact argv, as after `--`.
    #[arg(
        value_name = "LINE",
        conflicts_with = "argv",
        long_help = "A shell command line in one argument (\"LINE\"). Several words (WORD WORD...) \
            are an exact argv, never a shell, as after `--`. The first word decides how it runs:\n\
            1. it starts with /: run as is, in the working directory /;\n\
            2. chroot.d/WORD is an executable file: run /chroot.d/WORD with the rest, in /chroot.d;\n\
            3. chroot.d/chroot-cmd exists: run /chroot.d/chroot-cmd with the words;\n\
            4. otherwise: run LINE with /bin/sh -c inside (PROG looked up in PATH)."
    )]
    pub line: Vec<String>,
    /// An exact argv after `--`, never passed through a shell (dispatched like LINE).
    #[arg(last = true, value_name = "PROG ARGS")]
    pub argv: Vec<String>,
    #[command(flatten)]
    pub launch: LaunchArgs,
}

/// Who, where and with what environment a command runs inside (`run`, `shell`).
#[derive(Debug, Args, Default)]
pub struct LaunchArgs {
    /// Run as USER (and GROUP): names or numbers of the sandbox's own /etc/passwd and /etc/group.
    #[arg(short = 'u', long = "user", value_name = "USER[:GROUP]")]
    pub user: Option<String>,
    /// Working directory inside the sandbox (absolute).
    #[arg(
        short = 'w',
        long = "workdir",
        value_name = "DIR",
        conflicts_with = "here"
    )]
    pub workdir: Option<PathBuf>,
    /// Start in the current directory, as seen inside through the [bind] records of tool.conf.
    #[arg(long)]
    pub here: bool,
    /// Set a variable in the command's environment (repeatable).
    #[arg(short = 'e', long = "env", value_name = "NAME=VALUE")]
    pub env: Vec<std::ffi::OsString>,
    /// Memory limit of the run (a cgroup of its own), e.g. 512M, 1G; over [limits] memory.
    #[arg(long, value_name = "SIZE", value_parser = |s: &str| crate::cgroup::limits::parse_size(s, false))]
    pub memory: Option<u64>,
    /// CPU limit of the run, in CPUs (e.g. 1.5, 0.5); over [limits] cpus.
    #[arg(long, value_name = "N", value_parser = crate::cgroup::limits::parse_cpus)]
    pub cpus: Option<u64>,
    /// Most processes (and threads) the run may have at once; over [limits] pids.
    #[arg(long, value_name = "N", value_parser = |s: &str| crate::cgroup::limits::parse_count(s, false))]
    pub pids: Option<u64>,
    /// setrlimit NAME (nofile, nproc, fsize, cpu, as, core) to N, soft and hard (repeatable).
    #[arg(long, value_name = "NAME=N", value_parser = crate::cgroup::limits::parse_rlimit_arg)]
    pub rlimit: Vec<(crate::cgroup::Rlimit, u64)>,
    /// A mount for this run only, in its own mount namespace (repeatable): OPTS is bind (default), ro, or a filesystem type and its options (tmpfs,size=10m).
    #[arg(short = 'm', long = "mount", value_name = "SRC:TGT[:OPTS]")]
    pub mount: Vec<String>,
    /// host: the host's network (default); none: a network of its own with only loopback up.
    #[arg(long, value_name = "MODE", value_parser = ["host", "none"])]
    pub net: Option<String>,
    /// A pid namespace of its own: a minimal init reaps orphans, /proc shows only the command's processes.
    #[arg(long)]
    pub pid: bool,
    /// The run's writes go to a throw-away overlay over the sandbox's root, gone when the run ends.
    #[arg(long)]
    pub ephemeral: bool,
}

impl RunArgs {
    /// What to run: one word is a shell line; several words, or the words
    /// after `--`, an exact argv.
    pub fn request(&self) -> Result<crate::dispatch::Request, Usage> {
        use crate::dispatch::Request;
        match (self.line.as_slice(), self.argv.is_empty()) {
            ([l], true) => Ok(Request::Line(l.clone())),
            ([], false) => Ok(Request::Argv(self.argv.clone())),
            ([_, _, ..], true) => Ok(Request::Argv(self.line.clone())),
            _ => Err(Usage(
                "nothing to run: give \"LINE\", PROG ARGS... or -- PROG ARGS...".into(),
            )),
        }
    }
}

#[derive(Debug, Args, Default)]
pub struct OnArgs {
    /// A holder process keeps the sandbox in user and mount namespaces of its own (a normal user's `on` always does).
    #[arg(short = 'N', long = "userns")]
    pub userns: bool,
    /// The holder also owns these namespaces: a light VM (own process tree, hostname, IPC, only loopback); over [run] namespaces.
    #[arg(long = "ns", value_name = "pid,uts,ipc,net", value_parser = |s: &str| crate::conf::NsSet::parse(s))]
    pub ns: Option<crate::conf::NsSet>,
}

#[derive(Debug, Args)]
pub struct OffArgs {
    /// Seconds between TERM and KILL for processes still inside.
    #[arg(long, default_value_t = 5.0, value_name = "SECONDS")]
    pub timeout: f64,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
    /// Also the disk use of DIR (its own mount only; hard links counted once).
    #[arg(long)]
    pub size: bool,
}

#[derive(Debug, Args)]
pub struct DestroyArgs {
    /// Do not ask for confirmation.
    #[arg(short, long)]
    pub yes: bool,
    /// Seconds between TERM and KILL for processes still inside.
    #[arg(long, default_value_t = 5.0, value_name = "SECONDS")]
    pub timeout: f64,
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// Only the last N entries.
    #[arg(short = 'n', long = "lines", value_name = "N")]
    pub lines: Option<usize>,
    /// One JSON object a line, as stored.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// bash, zsh, fish, elvish or powershell.
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct PackArgs {
    /// The archive to write: .tar.zst (default), .tar.xz, .tar.gz or .tar.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: PathBuf,
    /// No progress output.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct UnpackArgs {
    /// The archive (zstd, xz, gzip or plain tar, told by its content).
    #[arg(value_name = "FILE", required_unless_present = "accept")]
    pub file: Option<PathBuf>,
    /// Enable the archive's [bind] records of host paths and its host-cmd at once (otherwise they are set aside as *.untrusted).
    #[arg(long)]
    pub trust: bool,
    /// Enable what an earlier unpack set aside in DIR (chroot.d/tool.conf.untrusted, host-cmd.untrusted).
    #[arg(long, conflicts_with_all = ["file", "trust"])]
    pub accept: bool,
    /// No progress output.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("out").required(true).args(["oci", "bundle"])))]
pub struct ExportArgs {
    /// Write an OCI image layout (oci-layout, index.json, blobs/) to OUT, a new or empty directory.
    #[arg(long, value_name = "OUT")]
    pub oci: Option<PathBuf>,
    /// Write an OCI runtime bundle (config.json, rootfs/) to OUT, a new or empty directory.
    #[arg(long, value_name = "OUT")]
    pub bundle: Option<PathBuf>,
    /// The image's name in the layout: NAME:TAG, or TAG (default: latest).
    #[arg(long, value_name = "NAME:TAG", requires = "oci")]
    pub tag: Option<String>,
    /// How the layer is compressed.
    #[arg(long, value_name = "HOW", default_value = "gzip", value_parser = ["gzip", "zstd"], requires = "oci")]
    pub compression: String,
    /// Every file's mtime and the image's date, in seconds since 1970 (reproducible images); also read from SOURCE_DATE_EPOCH.
    #[arg(long, value_name = "SECONDS", env = "SOURCE_DATE_EPOCH")]
    pub mtime: Option<u64>,
    /// No progress output.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// An OCI image layout (a directory), an oci-archive, or a docker archive (docker save, podman save).
    #[arg(value_name = "IMAGE")]
    pub image: PathBuf,
    /// Which image, when IMAGE holds several: its tag or NAME:TAG.
    #[arg(long, value_name = "TAG")]
    pub tag: Option<String>,
    /// Enable the image's [bind] records of host paths and its host-cmd at once (otherwise they are set aside as *.untrusted).
    #[arg(long)]
    pub trust: bool,
    /// No progress output.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Machine-readable output (a JSON array; see docs/json.md).
    #[arg(long)]
    pub json: bool,
    /// Also the disk use of each sandbox (slower: every file is looked at).
    #[arg(long)]
    pub size: bool,
}

#[derive(Debug, Args)]
pub struct LinkArgs {
    /// Commands of the sandbox to make host wrappers for (plain names, no /).
    #[arg(value_name = "NAME", required = true)]
    pub names: Vec<std::ffi::OsString>,
    /// Where the wrappers go (default: ~/.local/bin; /usr/local/bin for root).
    #[arg(long, value_name = "BINDIR", value_hint = clap::ValueHint::DirPath)]
    pub to: Option<PathBuf>,
    /// Remove the wrappers instead (only files chroot-tool link made).
    #[arg(long)]
    pub remove: bool,
}

/// Bad usage the parser could not see (exit status 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

/// The message for a command given no sandbox directory.
pub const NO_DIR: &str = "no sandbox given: pass -d DIR or set CHROOT_TOOL_DIR";

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, FromArgMatches};

    /// The lines [`parse_lean`] takes parse as clap parses them, and the
    /// ones it leaves (an option more, an empty or option-like DIR, no
    /// PROG, an argument that is not text) are left to clap.
    #[test]
    fn lean_lines_parse_as_clap_parses_them() {
        use std::ffi::OsString;
        use std::os::unix::ffi::OsStringExt;
        let os = |v: &[&str]| -> Vec<OsString> { v.iter().map(OsString::from).collect() };
        let mut taken = vec![
            os(&["chroot-tool", "on", "-d", "/s"]),
            os(&["chroot-tool", "off", "-d", "relative/dir"]),
            os(&["chroot-tool", "run", "-d", "/s", "--", "/bin/true"]),
            os(&[
                "chroot-tool",
                "run",
                "-d",
                "/s p",
                "--",
                "ls",
                "-l",
                "--",
                "--help",
                "-d",
            ]),
            os(&["chroot-tool", "run", "-d", "/s", "--", ""]),
        ];
        let mut odd = os(&["chroot-tool", "on", "-d"]);
        odd.push(OsString::from_vec(b"/s\xff".to_vec()));
        taken.push(odd);
        for line in &taken {
            let lean = parse_lean(line).unwrap_or_else(|| panic!("{line:?} not taken"));
            let clap = Cli::try_parse_from(line).unwrap();
            assert_eq!(format!("{lean:?}"), format!("{clap:?}"), "{line:?}");
        }
        let mut left = vec![
            os(&["chroot-tool", "on", "-d", "/s", "-N"]),
            os(&["chroot-tool", "on", "--dir", "/s"]),
            os(&["chroot-tool", "on", "-d", ""]),
            os(&["chroot-tool", "on", "-d", "-N"]),
            os(&["chroot-tool", "off", "-d", "/s", "--timeout", "1"]),
            os(&["chroot-tool", "run", "-d", "/s", "--"]),
            os(&["chroot-tool", "run", "-d", "/s", "true"]),
            os(&["chroot-tool", "run", "-d", "/s", "-u", "me", "--", "id"]),
            os(&["chroot-tool", "-d", "/s", "on"]),
            os(&["chroot-tool", "status", "-d", "/s"]),
            os(&["chroot-tool", "on"]),
        ];
        let mut bytes = os(&["chroot-tool", "run", "-d", "/s", "--"]);
        bytes.push(OsString::from_vec(b"\xff".to_vec()));
        left.push(bytes);
        for line in &left {
            assert!(parse_lean(line).is_none(), "{line:?} taken");
        }
    }

    /// Each subcommand's quick definition is the whole one's, argument for
    /// argument, so that a line parses the same through either.
    #[test]
    fn command_for_each_subcommand_matches_the_whole_definition() {
        let whole = Cli::command();
        let mut names = 0;
        for sub in whole.get_subcommands() {
            let name = sub.get_name();
            let quick = command_for(name).unwrap_or_else(|| panic!("{name}: no quick definition"));
            let one = quick.find_subcommand(name).unwrap();
            let ids = |c: &clap::Command| {
                let mut v: Vec<String> = c.get_arguments().map(|a| format!("{a:?}")).collect();
                v.sort();
                v
            };
            assert_eq!(ids(one), ids(sub), "{name}");
            names += 1;
        }
        assert_eq!(names, whole.get_subcommands().count());
        assert!(names >= 15, "{names}");
        assert!(command_for("nope").is_none());
    }

    /// `--from` copies and `--overlay` layers: what only the backend or
    /// the cache would use is bad usage with them, never silently dropped,
    /// and so is one with the other.
    #[test]
    fn create_refuses_options_its_from_and_overlay_would_drop() {
        let with = |extra: &[&str]| {
            let mut line = vec!["chroot-tool", "create", "-d", "/n"];
            line.extend_from_slice(extra);
            Cli::try_parse_from(line).map(|_| ())
        };
        for base in [&["--from", "/s"][..], &["--overlay", "/b"]] {
            with(base).unwrap();
            for bad in [
                &["--suite", "bookworm"][..],
                &["--mirror", "http://m/"],
                &["--variant", "buildd"],
                &["--include", "less"],
                &["--arch", "i386"],
                &["--components", "main"],
                &["--backend", "debootstrap"],
                &["--no-cache"],
                &["--refresh"],
                &["--", "--keyring=/k"],
            ] {
                let e = with(&[base, bad].concat()).unwrap_err();
                assert_eq!(
                    e.kind(),
                    clap::error::ErrorKind::ArgumentConflict,
                    "{base:?} {bad:?}"
                );
            }
        }
        let e = with(&["--from", "/s", "--overlay", "/b"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::ArgumentConflict);
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn a_run_line_parses_the_same_through_the_quick_definition() {
        let line = [
            "chroot-tool",
            "run",
            "-d",
            "/s",
            "-u",
            "me",
            "-e",
            "A=1",
            "-m",
            "/a:/b:ro",
            "--",
            "ls",
            "--help",
        ];
        let whole = Cli::try_parse_from(line).unwrap();
        let m = command_for("run")
            .unwrap()
            .try_get_matches_from(line)
            .unwrap();
        let quick = Cli::from_arg_matches(&m).unwrap();
        assert_eq!(format!("{whole:?}"), format!("{quick:?}"));
        // What only the whole definition answers is not parsed quickly.
        for only_whole in [
            &["chroot-tool", "run", "--help"][..],
            &["chroot-tool", "--version", "run"],
        ] {
            assert!(command_for("run")
                .unwrap()
                .try_get_matches_from(only_whole)
                .is_err());
        }
    }
}
