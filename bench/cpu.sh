#!/usr/bin/env bash
# CPU time (perf's task-clock: user + system, children included) of
# `chroot-tool run -- /bin/true` against plain chroot(8), side by side in
# one run. Unlike wall time, it hardly moves when the machine is busy.
#
#   bench/cpu.sh                 (as root; needs perf: apt-get install linux-perf)
#   BASE=/path/to/other/chroot-tool   also measures that build
#   MOUNTS=1500                        adds that many unrelated tmpfs mounts first
#   RUNS=300                           runs per command
#
# Runs in its own mount namespace: nothing it mounts reaches the machine.
set -euo pipefail
self=$(realpath "$0")
cd "$(dirname "$self")/.."

. bench/lib.sh

enter_namespace "-m --propagation private" "$self" "$@"

tool=$CT_BENCH_TOOL
work=$(mktemp -d /var/tmp/ct-cpu.XXXXXX)
root=$work/root
export CHROOT_TOOL_STATE_DIR=$work/state CHROOT_TOOL_RUN_DIR=$work/run
trap '"$tool" off -d "$root" >/dev/null 2>&1 || true; umount -R "$work/m" 2>/dev/null || true; remove_work "$work"' EXIT
busybox_root "$root"
if [ -n "${MOUNTS:-}" ]; then
    mkdir -p "$work/m"
    mount -t tmpfs ct-bench "$work/m"
    for i in $(seq "$MOUNTS"); do
        mkdir "$work/m/$i" && mount -t tmpfs -o size=4k "m$i" "$work/m/$i"
    done
fi
"$tool" on -d "$root" >/dev/null
runs=${RUNS:-300}
cpu() { perf stat -x, -r "$runs" -e task-clock "$@" 2>&1 >/dev/null | awk -F, '/task-clock/ {print $1}'; }
base=$(cpu chroot "$root" /bin/true)
printf '%-36s %10s %8s\n' "command" "CPU ms" "ratio"
row() { printf '%-36s %10s %8s\n' "$1" "$2" "$(python3 -c "print(f'{$2/$base:.2f}x')")"; }
row "chroot DIR /bin/true" "$base"
row "chroot-tool run -- /bin/true" "$(cpu "$tool" run -d "$root" -- /bin/true)"
[ -n "${BASE:-}" ] && row "BASE run -- /bin/true" "$(cpu "$BASE" run -d "$root" -- /bin/true)"
echo "($runs runs each, $(wc -l < /proc/self/mountinfo) mounts in the table)"
