# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_chroot_tool_global_optspecs
    string join \n d/dir= h/help V/version
end

function __fish_chroot_tool_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_chroot_tool_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_chroot_tool_using_subcommand
    set -l cmd (__fish_chroot_tool_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c chroot-tool -n "__fish_chroot_tool_needs_command" -s d -l dir -d 'The sandbox directory (may stand anywhere on the line)' -r -f -a "(__fish_complete_directories)"
complete -c chroot-tool -n "__fish_chroot_tool_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c chroot-tool -n "__fish_chroot_tool_needs_command" -s V -l version -d 'Print version'
complete -c chroot-tool -n "__fish_chroot_tool_needs_command" -f -a "create" -d 'Build a Debian root filesystem in DIR with debootstrap'
complete -c chroot-tool -n "__fish_chroot_tool_needs_command" -f -a "on" -d 'Mount what programs need, and the [bind] mounts of chroot.d/tool.conf (a holder\'s namespaces as a normal user, with -N or --ns)'
complete -c chroot-tool -n "__fish_chroot_tool_needs_command" -f -a "run" -d 'Turn on, then run a command inside ("LINE" through the dispatch rules, or [--] PROG ARGS...)'
complete -c chroot-tool -n "__fish_chroot_tool_needs_command" -f -a "shell" -d 'An interactive login shell inside (root\'s, or -u USER\'s in USER\'s home)'
complete -c chroot-tool -n "__fish_chroot_tool_needs_command" -f -a "off" -d 'Stop, end every process inside, unmount everything at or below DIR'
complete -c chroot-tool -n "__fish_chroot_tool_needs_command" -f -a "status" -d 'Whether the sandbox is on, its mounts and the processes inside'
complete -c chroot-tool -n "__fish_chroot_tool_needs_command" -f -a "destroy" -d 'Turn off, then delete DIR without ever crossing a mount point'
complete -c chroot-tool -n "__fish_chroot_tool_needs_command" -f -a "log" -d 'The history of DIR: every on, run, shell and off, who ran it and its exit status'
complete -c chroot-tool -n "__fish_chroot_tool_needs_command" -f -a "completions" -d 'Print a shell completion script'
complete -c chroot-tool -n "__fish_chroot_tool_needs_command" -f -a "pack" -d 'Pack the sandbox into one archive (zstd, or xz/gz/plain tar by the file name), leaving out [exclude] and everything mounted'
complete -c chroot-tool -n "__fish_chroot_tool_needs_command" -f -a "unpack" -d 'Unpack an archive (of pack, or of the original tool\'s tar.xz) into a new sandbox DIR'
complete -c chroot-tool -n "__fish_chroot_tool_needs_command" -f -a "export" -d 'Write the sandbox as an OCI image layout (--oci) or an OCI runtime bundle (--bundle), for podman, runc, Kubernetes'
complete -c chroot-tool -n "__fish_chroot_tool_needs_command" -f -a "import" -d 'Make a new sandbox DIR from an OCI image layout, an oci-archive or a docker archive (docker save, podman save)'
complete -c chroot-tool -n "__fish_chroot_tool_needs_command" -f -a "list" -d 'Every sandbox this user has created or used: on or off, suite, processes inside'
complete -c chroot-tool -n "__fish_chroot_tool_needs_command" -f -a "link" -d 'Host commands that run NAME inside the sandbox, in the current directory (--here)'
complete -c chroot-tool -n "__fish_chroot_tool_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand create" -l suite -d 'Debian suite (codename or stable/testing/unstable)' -r
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand create" -l mirror -d 'Debian mirror' -r
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand create" -l variant -d 'debootstrap variant' -r
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand create" -l include -d 'Extra packages, comma-separated' -r
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand create" -l arch -d 'Architecture (default: the host\'s)' -r
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand create" -l components -d 'Archive components, comma-separated (default: main)' -r
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand create" -l backend -d 'What builds the rootfs: mmdebstrap when installed (auto), else debootstrap; a normal user needs mmdebstrap' -r -f -a "auto\t''
debootstrap\t''
mmdebstrap\t''"
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand create" -l from -d 'Clone a sandbox directory (on or off; never its mounts) or an archive instead of running debootstrap' -r -F
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand create" -l overlay -d 'A thin sandbox: an overlay whose writes go to DIR, over the sandbox BASE, which stays read-only (no copy, no backend)' -r -F
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand create" -s d -l dir -d 'The sandbox directory (may stand anywhere on the line)' -r -f -a "(__fish_complete_directories)"
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand create" -s q -l quiet -d 'No progress output'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand create" -l no-cache -d 'Neither use nor fill the cache of finished root filesystems'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand create" -l refresh -d 'Run the backend even when the cache has this rootfs, and cache the result'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand create" -l trust -d 'With --from FILE: enable the archive\'s host binds and host-cmd at once'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand create" -s h -l help -d 'Print help'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand create" -s V -l version -d 'Print version'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand on" -l ns -d 'The holder also owns these namespaces: a light VM (own process tree, hostname, IPC, only loopback); over [run] namespaces' -r
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand on" -s d -l dir -d 'The sandbox directory (may stand anywhere on the line)' -r -f -a "(__fish_complete_directories)"
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand on" -s N -l userns -d 'A holder process keeps the sandbox in user and mount namespaces of its own (a normal user\'s `on` always does)'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand on" -s h -l help -d 'Print help'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand on" -s V -l version -d 'Print version'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand run" -s u -l user -d 'Run as USER (and GROUP): names or numbers of the sandbox\'s own /etc/passwd and /etc/group' -r
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand run" -s w -l workdir -d 'Working directory inside the sandbox (absolute)' -r -F
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand run" -s e -l env -d 'Set a variable in the command\'s environment (repeatable)' -r
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand run" -l memory -d 'Memory limit of the run (a cgroup of its own), e.g. 512M, 1G; over [limits] memory' -r
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand run" -l cpus -d 'CPU limit of the run, in CPUs (e.g. 1.5, 0.5); over [limits] cpus' -r
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand run" -l pids -d 'Most processes (and threads) the run may have at once; over [limits] pids' -r
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand run" -l rlimit -d 'setrlimit NAME (nofile, nproc, fsize, cpu, as, core) to N, soft and hard (repeatable)' -r
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand run" -s m -l mount -d 'A mount for this run only, in its own mount namespace (repeatable): OPTS is bind (default), ro, or a filesystem type and its options (tmpfs,size=10m)' -r
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand run" -l net -d 'host: the host\'s network (default); none: a network of its own with only loopback up' -r -f -a "host\t''
none\t''"
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand run" -s d -l dir -d 'The sandbox directory (may stand anywhere on the line)' -r -f -a "(__fish_complete_directories)"
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand run" -l here -d 'Start in the current directory, as seen inside through the [bind] records of tool.conf'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand run" -l pid -d 'A pid namespace of its own: a minimal init reaps orphans, /proc shows only the command\'s processes'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand run" -l ephemeral -d 'The run\'s writes go to a throw-away overlay over the sandbox\'s root, gone when the run ends'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand run" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand run" -s V -l version -d 'Print version'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand shell" -s u -l user -d 'Run as USER (and GROUP): names or numbers of the sandbox\'s own /etc/passwd and /etc/group' -r
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand shell" -s w -l workdir -d 'Working directory inside the sandbox (absolute)' -r -F
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand shell" -s e -l env -d 'Set a variable in the command\'s environment (repeatable)' -r
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand shell" -l memory -d 'Memory limit of the run (a cgroup of its own), e.g. 512M, 1G; over [limits] memory' -r
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand shell" -l cpus -d 'CPU limit of the run, in CPUs (e.g. 1.5, 0.5); over [limits] cpus' -r
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand shell" -l pids -d 'Most processes (and threads) the run may have at once; over [limits] pids' -r
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand shell" -l rlimit -d 'setrlimit NAME (nofile, nproc, fsize, cpu, as, core) to N, soft and hard (repeatable)' -r
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand shell" -s m -l mount -d 'A mount for this run only, in its own mount namespace (repeatable): OPTS is bind (default), ro, or a filesystem type and its options (tmpfs,size=10m)' -r
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand shell" -l net -d 'host: the host\'s network (default); none: a network of its own with only loopback up' -r -f -a "host\t''
none\t''"
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand shell" -s d -l dir -d 'The sandbox directory (may stand anywhere on the line)' -r -f -a "(__fish_complete_directories)"
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand shell" -l here -d 'Start in the current directory, as seen inside through the [bind] records of tool.conf'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand shell" -l pid -d 'A pid namespace of its own: a minimal init reaps orphans, /proc shows only the command\'s processes'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand shell" -l ephemeral -d 'The run\'s writes go to a throw-away overlay over the sandbox\'s root, gone when the run ends'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand shell" -s h -l help -d 'Print help'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand shell" -s V -l version -d 'Print version'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand off" -l timeout -d 'Seconds between TERM and KILL for processes still inside' -r
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand off" -s d -l dir -d 'The sandbox directory (may stand anywhere on the line)' -r -f -a "(__fish_complete_directories)"
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand off" -s h -l help -d 'Print help'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand off" -s V -l version -d 'Print version'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand status" -s d -l dir -d 'The sandbox directory (may stand anywhere on the line)' -r -f -a "(__fish_complete_directories)"
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand status" -l json -d 'Machine-readable output'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand status" -l size -d 'Also the disk use of DIR (its own mount only; hard links counted once)'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand status" -s h -l help -d 'Print help'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand status" -s V -l version -d 'Print version'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand destroy" -l timeout -d 'Seconds between TERM and KILL for processes still inside' -r
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand destroy" -s d -l dir -d 'The sandbox directory (may stand anywhere on the line)' -r -f -a "(__fish_complete_directories)"
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand destroy" -s y -l yes -d 'Do not ask for confirmation'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand destroy" -s h -l help -d 'Print help'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand destroy" -s V -l version -d 'Print version'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand log" -s n -l lines -d 'Only the last N entries' -r
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand log" -s d -l dir -d 'The sandbox directory (may stand anywhere on the line)' -r -f -a "(__fish_complete_directories)"
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand log" -l json -d 'One JSON object a line, as stored'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand log" -s h -l help -d 'Print help'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand log" -s V -l version -d 'Print version'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand completions" -s d -l dir -d 'The sandbox directory (may stand anywhere on the line)' -r -f -a "(__fish_complete_directories)"
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand completions" -s h -l help -d 'Print help'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand completions" -s V -l version -d 'Print version'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand pack" -s o -l output -d 'The archive to write: .tar.zst (default), .tar.xz, .tar.gz or .tar' -r -F
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand pack" -s d -l dir -d 'The sandbox directory (may stand anywhere on the line)' -r -f -a "(__fish_complete_directories)"
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand pack" -s q -l quiet -d 'No progress output'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand pack" -s h -l help -d 'Print help'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand pack" -s V -l version -d 'Print version'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand unpack" -s d -l dir -d 'The sandbox directory (may stand anywhere on the line)' -r -f -a "(__fish_complete_directories)"
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand unpack" -l trust -d 'Enable the archive\'s [bind] records of host paths and its host-cmd at once (otherwise they are set aside as *.untrusted)'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand unpack" -l accept -d 'Enable what an earlier unpack set aside in DIR (chroot.d/tool.conf.untrusted, host-cmd.untrusted)'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand unpack" -s q -l quiet -d 'No progress output'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand unpack" -s h -l help -d 'Print help'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand unpack" -s V -l version -d 'Print version'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand export" -l oci -d 'Write an OCI image layout (oci-layout, index.json, blobs/) to OUT, a new or empty directory' -r -F
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand export" -l bundle -d 'Write an OCI runtime bundle (config.json, rootfs/) to OUT, a new or empty directory' -r -F
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand export" -l tag -d 'The image\'s name in the layout: NAME:TAG, or TAG (default: latest)' -r
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand export" -l compression -d 'How the layer is compressed' -r -f -a "gzip\t''
zstd\t''"
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand export" -l mtime -d 'Every file\'s mtime and the image\'s date, in seconds since 1970 (reproducible images); also read from SOURCE_DATE_EPOCH' -r
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand export" -s d -l dir -d 'The sandbox directory (may stand anywhere on the line)' -r -f -a "(__fish_complete_directories)"
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand export" -s q -l quiet -d 'No progress output'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand export" -s h -l help -d 'Print help'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand export" -s V -l version -d 'Print version'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand import" -l tag -d 'Which image, when IMAGE holds several: its tag or NAME:TAG' -r
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand import" -s d -l dir -d 'The sandbox directory (may stand anywhere on the line)' -r -f -a "(__fish_complete_directories)"
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand import" -l trust -d 'Enable the image\'s [bind] records of host paths and its host-cmd at once (otherwise they are set aside as *.untrusted)'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand import" -s q -l quiet -d 'No progress output'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand import" -s h -l help -d 'Print help'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand import" -s V -l version -d 'Print version'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand list" -s d -l dir -d 'The sandbox directory (may stand anywhere on the line)' -r -f -a "(__fish_complete_directories)"
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand list" -l json -d 'Machine-readable output (a JSON array; see docs/json.md)'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand list" -l size -d 'Also the disk use of each sandbox (slower: every file is looked at)'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand list" -s h -l help -d 'Print help'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand list" -s V -l version -d 'Print version'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand link" -l to -d 'Where the wrappers go (default: ~/.local/bin; /usr/local/bin for root)' -r -f -a "(__fish_complete_directories)"
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand link" -s d -l dir -d 'The sandbox directory (may stand anywhere on the line)' -r -f -a "(__fish_complete_directories)"
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand link" -l remove -d 'Remove the wrappers instead (only files chroot-tool link made)'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand link" -s h -l help -d 'Print help'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand link" -s V -l version -d 'Print version'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand help; and not __fish_seen_subcommand_from create on run shell off status destroy log completions pack unpack export import list link help" -f -a "create" -d 'Build a Debian root filesystem in DIR with debootstrap'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand help; and not __fish_seen_subcommand_from create on run shell off status destroy log completions pack unpack export import list link help" -f -a "on" -d 'Mount what programs need, and the [bind] mounts of chroot.d/tool.conf (a holder\'s namespaces as a normal user, with -N or --ns)'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand help; and not __fish_seen_subcommand_from create on run shell off status destroy log completions pack unpack export import list link help" -f -a "run" -d 'Turn on, then run a command inside ("LINE" through the dispatch rules, or [--] PROG ARGS...)'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand help; and not __fish_seen_subcommand_from create on run shell off status destroy log completions pack unpack export import list link help" -f -a "shell" -d 'An interactive login shell inside (root\'s, or -u USER\'s in USER\'s home)'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand help; and not __fish_seen_subcommand_from create on run shell off status destroy log completions pack unpack export import list link help" -f -a "off" -d 'Stop, end every process inside, unmount everything at or below DIR'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand help; and not __fish_seen_subcommand_from create on run shell off status destroy log completions pack unpack export import list link help" -f -a "status" -d 'Whether the sandbox is on, its mounts and the processes inside'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand help; and not __fish_seen_subcommand_from create on run shell off status destroy log completions pack unpack export import list link help" -f -a "destroy" -d 'Turn off, then delete DIR without ever crossing a mount point'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand help; and not __fish_seen_subcommand_from create on run shell off status destroy log completions pack unpack export import list link help" -f -a "log" -d 'The history of DIR: every on, run, shell and off, who ran it and its exit status'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand help; and not __fish_seen_subcommand_from create on run shell off status destroy log completions pack unpack export import list link help" -f -a "completions" -d 'Print a shell completion script'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand help; and not __fish_seen_subcommand_from create on run shell off status destroy log completions pack unpack export import list link help" -f -a "pack" -d 'Pack the sandbox into one archive (zstd, or xz/gz/plain tar by the file name), leaving out [exclude] and everything mounted'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand help; and not __fish_seen_subcommand_from create on run shell off status destroy log completions pack unpack export import list link help" -f -a "unpack" -d 'Unpack an archive (of pack, or of the original tool\'s tar.xz) into a new sandbox DIR'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand help; and not __fish_seen_subcommand_from create on run shell off status destroy log completions pack unpack export import list link help" -f -a "export" -d 'Write the sandbox as an OCI image layout (--oci) or an OCI runtime bundle (--bundle), for podman, runc, Kubernetes'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand help; and not __fish_seen_subcommand_from create on run shell off status destroy log completions pack unpack export import list link help" -f -a "import" -d 'Make a new sandbox DIR from an OCI image layout, an oci-archive or a docker archive (docker save, podman save)'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand help; and not __fish_seen_subcommand_from create on run shell off status destroy log completions pack unpack export import list link help" -f -a "list" -d 'Every sandbox this user has created or used: on or off, suite, processes inside'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand help; and not __fish_seen_subcommand_from create on run shell off status destroy log completions pack unpack export import list link help" -f -a "link" -d 'Host commands that run NAME inside the sandbox, in the current directory (--here)'
complete -c chroot-tool -n "__fish_chroot_tool_using_subcommand help; and not __fish_seen_subcommand_from create on run shell off status destroy log completions pack unpack export import list link help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
