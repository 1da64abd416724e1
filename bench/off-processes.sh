#!/usr/bin/env bash
# What `off` costs against the number of processes the host shows: it
# ends the sandbox's processes from the sandbox's cgroup, and looks at each
# process's root (one `statx` of /proc/PID/root) only when something was
# started outside it (or on a kernel before 6.8, without cgroup v2).
# Median wall time of `off`, with `on` before each run, with a few
# processes and then with COUNTS more sleeping ones.
#
#   bench/off-processes.sh          (as root; needs hyperfine and busybox)
#   COUNTS="1000 3000"              how many processes to add, one row each
#   RUNS=200                        runs per row
#
# Runs in a pid and mount namespace of its own: its processes and mounts
# are its own, and /proc shows only them.
set -euo pipefail
self=$(realpath "$0")
cd "$(dirname "$self")/.."

. bench/lib.sh

enter_namespace "-pfm --mount-proc --propagation private" "$self" "$@"

tool=$CT_BENCH_TOOL
work=$(mktemp -d /var/tmp/ct-offp.XXXXXX)
root=$work/root
export CHROOT_TOOL_STATE_DIR=$work/state CHROOT_TOOL_RUN_DIR=$work/run
sleepers=()
trap '"$tool" off -d "$root" >/dev/null 2>&1 || true; kill "${sleepers[@]}" 2>/dev/null || true; remove_work "$work"' EXIT
busybox_root "$root"
runs=${RUNS:-200}
printf '%-12s %12s\n' "processes" "off ms"
for n in 0 ${COUNTS:-1000 3000}; do
    for _ in $(seq $((n - ${#sleepers[@]}))); do
        sleep 100000 &
        sleepers+=($!)
    done
    procs=$(find /proc -maxdepth 1 -name '[0-9]*' | wc -l)
    if ! hyperfine -N -w 10 -r "$runs" --style none --prepare "$tool on -d $root" \
        "$tool off -d $root" --export-json "$work/h.json" >/dev/null 2>"$work/h.err"; then
        cat "$work/h.err" >&2
        exit 1
    fi
    "$tool" off -d "$root" >/dev/null
    python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['results'][0]; print('%-12s %12.3f' % (sys.argv[2], r['median']*1000))" "$work/h.json" "$procs"
done
