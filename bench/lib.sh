# Shared by bench/bench.sh, bench/cpu.sh and bench/off-processes.sh
# (sourced, from the repository's top directory).

# Builds the release binary as `make install` does (static); prints its path.
build_tool() {
    local host
    host=$(rustc -vV | sed -n 's/^host: //p')
    RUSTFLAGS="-C target-feature=+crt-static" cargo build --release -q --target "$host"
    echo "$PWD/target/$host/release/chroot-tool"
}

# A busybox root filesystem at $1 (a shell, true, root in /etc/passwd).
busybox_root() {
    mkdir -p "$1/bin" "$1/etc"
    cp "$(command -v busybox)" "$1/bin/busybox"
    for a in sh true; do ln -s busybox "$1/bin/$a"; done
    echo 'root:x:0:0:root:/root:/bin/sh' > "$1/etc/passwd"
}

# Builds the binary and runs the calling script again (its absolute path
# and arguments after the flags) inside `unshare FLAGS`, with the binary
# in $CT_BENCH_TOOL; returns at once in that second run.
enter_namespace() {
    local flags=$1
    shift
    if [ "${CT_BENCH_INNER:-}" != 1 ]; then
        CT_BENCH_TOOL=$(build_tool)
        export CT_BENCH_TOOL
        # shellcheck disable=SC2086 # the flags are words
        exec env CT_BENCH_INNER=1 unshare $flags "$@"
    fi
}

# Removes the work directory $1 unless something is still mounted at or
# below it: `rm -rf` would go down into a mount left there (a bind of the
# shared bench rootfs is on the same filesystem, so not even
# `--one-file-system` stops it). Then it is left, and said.
remove_work() {
    if awk -v d="$1" '$5 == d || index($5, d "/") == 1 { found = 1 } END { exit !found }' \
        /proc/self/mountinfo; then
        echo "left $1: something is still mounted below it" >&2
    else
        rm -rf "$1"
    fi
}
