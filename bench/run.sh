#!/usr/bin/env bash
# Speed and memory of `chroot-tool run` on a sandbox that is on, against
# plain chroot(8) and the alternatives installed (bwrap, systemd-nspawn,
# arch-chroot, unshare). Prints mean times and ratios to plain chroot.
#
#   bench/run.sh [ROOTFS]     (as root; default: a busybox rootfs made here)
#
#   BASE=/path/to/other/chroot-tool   also measures that build, side by side
#                                      (before/after a change to run's path)
#   MOUNTS=1500                        first adds that many unrelated tmpfs
#                                      mounts to the (private) namespace, as a
#                                      host with containers or snaps has
#   RUNS=300                           runs per command
#
# Runs in its own mount namespace: nothing it mounts reaches the machine.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${CT_BENCH_INNER:-}" != 1 ]; then
    cargo build --release -q
    exec env CT_BENCH_INNER=1 unshare -m --propagation private "$0" "$@"
fi

tool=$PWD/target/release/chroot-tool
work=$(mktemp -d /var/tmp/ct-bench.XXXXXX)
trap '"$tool" off -d "$root" >/dev/null 2>&1 || true; umount -R "$work/m" 2>/dev/null || true; rm -rf "$work"' EXIT
if [ $# -ge 1 ]; then
    root=$(realpath "$1")
else
    root=$work/root
    mkdir -p "$root/bin" "$root/etc"
    cp "$(command -v busybox)" "$root/bin/busybox"
    for a in sh true; do ln -s busybox "$root/bin/$a"; done
    echo 'root:x:0:0:root:/root:/bin/sh' > "$root/etc/passwd"
fi
if [ -n "${MOUNTS:-}" ]; then
    mkdir -p "$work/m"
    mount -t tmpfs ct-bench "$work/m"
    for i in $(seq "$MOUNTS"); do
        mkdir "$work/m/$i" && mount -t tmpfs -o size=4k "m$i" "$work/m/$i"
    done
fi
# The history and the self-bind records of this run stay in its own work
# dir (history on, as users have it), never the machine's.
export CHROOT_TOOL_STATE_DIR=$work/state CHROOT_TOOL_RUN_DIR=$work/run
"$tool" on -d "$root" >/dev/null

runs=${RUNS:-300}
declare -a names cmds
add() { names+=("$1"); cmds+=("$2"); }
add "chroot DIR /bin/true" "chroot $root /bin/true"
add "chroot-tool run -- /bin/true" "$tool run -d $root -- /bin/true"
add "chroot-tool run 'true' (shell line)" "$tool run -d $root true"
[ -n "${BASE:-}" ] && add "BASE run -- /bin/true" "$BASE run -d $root -- /bin/true"
command -v bwrap >/dev/null && add "bwrap --bind DIR / /bin/true" "bwrap --bind $root / --dev /dev --proc /proc /bin/true"
command -v systemd-nspawn >/dev/null && add "systemd-nspawn -D DIR /bin/true" "systemd-nspawn -q -D $root /bin/true"
command -v arch-chroot >/dev/null && add "arch-chroot DIR /bin/true" "arch-chroot $root /bin/true"
add "unshare -m chroot DIR /bin/true" "unshare -m chroot $root /bin/true"

# Mean wall time of one command over $runs runs, in microseconds.
measure() {
    if command -v hyperfine >/dev/null; then
        hyperfine -N -w 20 -r "$runs" --export-json "$work/h.json" "$1" >/dev/null 2>&1
        python3 -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["results"][0]["mean"]*1e6))' "$work/h.json"
    else
        local s e
        s=$(date +%s%N)
        for _ in $(seq "$runs"); do $1 >/dev/null; done
        e=$(date +%s%N)
        echo $(( (e - s) / runs / 1000 ))
    fi
}

# Peak resident memory of one run, in KiB (GNU time, Debian package `time`).
rss() {
    if [ -x /usr/bin/time ]; then /usr/bin/time -f %M $1 2>&1 >/dev/null | tail -1; else echo "-"; fi
}

base=""
printf '%-40s %10s %8s %10s\n' "command" "mean µs" "ratio" "max RSS KiB"
for i in "${!names[@]}"; do
    t=$(measure "${cmds[$i]}")
    [ -n "$base" ] || base=$t
    printf '%-40s %10s %8s %10s\n' "${names[$i]}" "$t" "$(python3 -c "print(f'{$t/$base:.2f}x')")" "$(rss "${cmds[$i]}")"
done
echo "(rootfs: $root, $runs runs each, $(wc -l < /proc/self/mountinfo) mounts in the table; target: run within 1.2x of plain chroot, 1.3x with 1500 host mounts)"
