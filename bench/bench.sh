#!/usr/bin/env bash
# chroot-tool's performance targets, measured side by side in one run with
# hyperfine against plain chroot and the peer tools installed here, printed
# as a table of medians and ratios (docs/performance.md keeps the latest).
#
#   bench/bench.sh                   as root; builds the release binary first
#   ROOTFS=DIR bench/bench.sh        a minbase Debian rootfs to measure in
#                                    (default: made once with `chroot-tool
#                                    create` under /var/tmp/chroot-tool-bench)
#   MOUNTS=1500  RUNS=300            the many-mounts case; runs per command
#   PROCS=1000                       more processes on the host in that case
#                                    (sleeping ones the script starts and ends)
#   ROUNDS=3                         each group in that many rounds, the
#                                    commands' order reversed each round
#   NO_INSTALL=1                     do not apt-get install missing peers
#   COLD=1                           also a cold create against mmdebstrap alone
#
# Everything runs in a mount namespace of the script's own (the 1500 mounts,
# schroot's configuration, every sandbox mount): nothing reaches the machine.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${CT_BENCH_INNER:-}" != 1 ]; then
    [ "$(id -u)" = 0 ] || { echo "bench/bench.sh: run as root" >&2; exit 2; }
    peers=(hyperfine:hyperfine bwrap:bubblewrap proot:proot schroot:schroot
           systemd-nspawn:systemd-container arch-chroot:arch-install-scripts
           mmdebstrap:mmdebstrap musl-gcc:musl-tools)
    missing=()
    for p in "${peers[@]}"; do
        command -v "${p%%:*}" >/dev/null || missing+=("${p#*:}")
    done
    if [ "${#missing[@]}" -gt 0 ] && [ -z "${NO_INSTALL:-}" ]; then
        echo "installing ${missing[*]}" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    # The release binary as `make install` builds it: static, so that no
    # dynamic loading is paid on each start, with musl when it can (the
    # Makefile says why).
    if [ -z "${NO_INSTALL:-}" ] && command -v rustup >/dev/null; then
        rustup target add "$(rustc -vV | sed -n 's/^host: //p' | sed 's/-gnu/-musl/')" >/dev/null 2>&1 || true
    fi
    make -s build >&2
    # Measured as `make install` puts it on disk (`install` copies it): the
    # page cache holds a copy in larger pieces than the file the linker
    # wrote, and a copy starts about 0.2 ms sooner each time
    # (docs/performance.md has both).
    bin_dir=$(mktemp -d /var/tmp/ct-bench-bin.XXXXXX)
    # Removed here if anything fails before the measuring half takes it over.
    trap 'rm -rf "$bin_dir"' EXIT
    install -m0755 "$(make -s bin)" "$bin_dir/chroot-tool"
    export CT_BENCH_TOOL=$bin_dir/chroot-tool CT_BENCH_BIN_DIR=$bin_dir
    export CT_BENCH_LINKED=$PWD/$(make -s bin)
    echo "measuring $CT_BENCH_TOOL (installed from $(make -s bin))" >&2
    # A binary just written is still being written back to disk: not
    # while the first group runs.
    sync
    trap - EXIT
    exec env CT_BENCH_INNER=1 unshare -m --propagation private "$0" "$@"
fi

. bench/lib.sh
tool=$CT_BENCH_TOOL
runs=${RUNS:-300}
mounts=${MOUNTS:-1500}
procs=${PROCS:-1000}
work=$(mktemp -d /var/tmp/ct-bench.XXXXXX)
export CHROOT_TOOL_STATE_DIR=$work/state CHROOT_TOOL_RUN_DIR=$work/run
sb=$work/sandbox
sleepers=()
cleanup() {
    [ "${#sleepers[@]}" -gt 0 ] && kill "${sleepers[@]}" 2>/dev/null
    "$tool" off -d "$sb" >/dev/null 2>&1 || true
    [ -n "${session:-}" ] && schroot -e -c "$session" >/dev/null 2>&1 || true
    umount -R "$work/m" 2>/dev/null || true
    umount "$sb" 2>/dev/null || true
    remove_work "$work"
    case "${CT_BENCH_BIN_DIR:-}" in /var/tmp/ct-bench-bin.*) rm -rf "$CT_BENCH_BIN_DIR" ;; esac
}
trap cleanup EXIT

rootfs=${ROOTFS:-/var/tmp/chroot-tool-bench/rootfs}
if [ ! -x "$rootfs/bin/sh" ]; then
    echo "making the minbase rootfs once: $rootfs" >&2
    mkdir -p "$(dirname "$rootfs")"
    "$tool" create -q --variant minbase -d "$rootfs"
fi
# chroot-tool works on a bind of the rootfs: its mounts stay on the bind,
# and the peers see the rootfs as they would on their own.
mkdir -p "$sb"
mount --bind "$rootfs" "$sb"
mount --make-private "$sb"

have() { command -v "$1" >/dev/null; }
results=$work/results
mkdir -p "$results"
# hf NAME CMD...: hyperfine one group, shell-less (HF_SHELL=1: each command
# line run by sh, whose own start hyperfine measures and takes off), JSON
# kept for the table.
# In ROUNDS rounds (3 by default) of RUNS/ROUNDS runs each, the commands in
# turn forwards and backwards: hyperfine runs all runs of one command before
# the next, and a machine whose speed drifts over minutes (a VM) would
# otherwise weigh on the commands unevenly. The table takes the median of
# all of a command's runs.
hf() {
    local name=$1 rounds=${ROUNDS:-3} i j warm=20
    shift
    local order=("$@") per=$(( (runs + rounds - 1) / rounds )) mode=-N
    [ -n "${HF_SHELL:-}" ] && mode=--shell=sh
    for i in $(seq "$rounds"); do
        if ! hyperfine "$mode" --style basic --warmup "$warm" --runs "$per" \
            --export-json "$results/$name.r$i.json" "${order[@]}" >/dev/null 2>&1; then
            echo "hyperfine failed for $name" >&2
            hyperfine -N --runs 3 "$@" >&2 || true
            return 0
        fi
        warm=5
        local back=()
        for ((j = ${#order[@]} - 1; j >= 0; j--)); do back+=("${order[j]}"); done
        order=("${back[@]}")
    done
}

"$tool" on -d "$sb" >/dev/null
echo "1. run -- /bin/true on a sandbox that is on ($(wc -l < /proc/self/mountinfo) mounts)" >&2
peers=("chroot $rootfs /bin/true" "$tool run -d $sb -- /bin/true" "unshare -m chroot $rootfs /bin/true")
have bwrap && peers+=("bwrap --bind $rootfs / --proc /proc --dev /dev /bin/true")
have proot && peers+=("proot -r $rootfs /bin/true")
if have schroot; then
    # schroot reads its configuration from /etc: a tmpfs over it, in this
    # namespace only.
    mount -t tmpfs ct-bench /etc/schroot/chroot.d
    mount -t tmpfs ct-bench /var/lib/schroot
    mkdir -p /var/lib/schroot/session /var/lib/schroot/mount /var/lib/schroot/union/underlay
    printf '[ctbench]\ntype=directory\ndirectory=%s\nusers=root\nroot-users=root\nprofile=minimal\n' \
        "$rootfs" > /etc/schroot/chroot.d/ctbench
    session=$(schroot -b -c ctbench -n ctbench-session 2>/dev/null || true)
    [ -n "$session" ] && peers+=("schroot -r -c $session --directory / -- /bin/true")
fi
hf few "${peers[@]}"

echo "2. the same with $mounts unrelated mounts and $procs more processes on the host" >&2
mkdir -p "$work/m"
mount -t tmpfs ct-bench "$work/m"
for i in $(seq "$mounts"); do
    mkdir "$work/m/$i" && mount -t tmpfs -o size=4k "m$i" "$work/m/$i"
done
# Processes too: `off` must not pay for each process of the host. Ours,
# ended by their pids below (and by the trap if anything fails first).
sleepers=()
for i in $(seq "$procs"); do
    sleep 100000 </dev/null >/dev/null 2>&1 &
    sleepers+=($!)
done
hf many "chroot $rootfs /bin/true" "$tool run -d $sb -- /bin/true"
rss_many=$( { /usr/bin/time -f %M "$tool" run -d "$sb" -- /bin/true; } 2>&1 | tail -1)
# The cold cycle (3. below) with them too: `on` and `off` must not pay
# for the host's mounts either.
"$tool" off -d "$sb" >/dev/null
cycle=("$tool on -d $sb" "$tool run -d $sb -- /bin/true" "$tool off -d $sb")
printf '#!/bin/sh\nset -e\n%s >/dev/null\n%s\n%s >/dev/null\n' "${cycle[@]}" > "$work/cycle"
chmod +x "$work/cycle"
slow=$(( runs / 10 > 10 ? runs / 10 : 10 ))
cold=("$work/cycle")
have arch-chroot && cold+=("arch-chroot $rootfs /bin/true")
hf many-cold "${cold[@]}"
kill "${sleepers[@]}" 2>/dev/null || true
wait "${sleepers[@]}" 2>/dev/null || true
sleepers=()
umount -R "$work/m"
# The kernel frees 1500 filesystems after the unmount returns (RCU, a
# work queue): not while the next group runs.
sync
sleep 2
"$tool" on -d "$sb" >/dev/null
rss_few=$( { /usr/bin/time -f %M "$tool" run -d "$sb" -- /bin/true; } 2>&1 | tail -1)

echo "3. a cold cycle: on, run, off" >&2
"$tool" off -d "$sb" >/dev/null
# The same cycle with the binary as the linker wrote it, for comparison.
linked=${CT_BENCH_LINKED:-$tool}
printf '#!/bin/sh\nset -e\n%s >/dev/null\n%s\n%s >/dev/null\n' \
    "$linked on -d $sb" "$linked run -d $sb -- /bin/true" "$linked off -d $sb" > "$work/as-linked"
chmod +x "$work/as-linked"
hf cold "${cold[@]}" "$work/as-linked"
# The same cycle as one command line of sh (as `hyperfine 'a; b; c'` runs
# it): the script's own start (dash, about 0.9 ms here) is not counted,
# only its three forks; arch-chroot likewise run by sh.
if have arch-chroot; then
    HF_SHELL=1 hf cold-shell "$tool on -d $sb >/dev/null; $tool run -d $sb -- /bin/true; $tool off -d $sb >/dev/null" \
        "arch-chroot $rootfs /bin/true"
fi
# The slower peers, with fewer runs, against arch-chroot again.
cold=("${cold[@]:1}")
if have systemd-nspawn; then
    # Without systemd as init: no machined to register with, no unit to
    # make, and its runtime files on a tmpfs of this namespace.
    mkdir -p /run/systemd && mount -t tmpfs ct-bench /run/systemd
    cold+=("systemd-nspawn -q --register=no --keep-unit -D $rootfs /bin/true")
fi
have schroot && cold+=("schroot -c ctbench --directory / -- /bin/true")
[ "${#cold[@]}" -gt 0 ] && runs=$slow hf cold-peers "${cold[@]}"

# 4. Unprivileged: a normal user's run with the holder against bwrap, as that user.
user=${BENCH_USER:-ct-user}
if id "$user" >/dev/null 2>&1 && have bwrap; then
    echo "4. as $user: run with the holder against bwrap" >&2
    ubase=/var/tmp/chroot-tool-bench/user
    uroot=$ubase/rootfs
    uhome=$work/user
    mkdir -p "$ubase" "$uhome"
    chown "$user" "$ubase" "$uhome"
    chmod 0755 "$work"
    install -m 0755 "$tool" "$uhome/chroot-tool"
    as_user() {
        runuser -u "$user" -- env XDG_RUNTIME_DIR="$uhome/run" XDG_STATE_HOME="$uhome/state" \
            XDG_CACHE_HOME="$uhome/cache" CHROOT_TOOL_RUN_DIR= CHROOT_TOOL_STATE_DIR= "$@"
    }
    as_user mkdir -p "$uhome/run"
    if [ ! -x "$uroot/bin/sh" ]; then
        echo "making $user's rootfs once (mmdebstrap in a user namespace): $uroot" >&2
        as_user "$uhome/chroot-tool" create -q --variant minbase -d "$uroot"
    fi
    as_user "$uhome/chroot-tool" on -d "$uroot" >/dev/null
    as_user hyperfine -N --style basic --warmup 20 --runs "$runs" \
        --export-json "$uhome/user.json" \
        "bwrap --bind $uroot / --proc /proc --dev /dev /bin/true" \
        "$uhome/chroot-tool run -d $uroot -- /bin/true" >/dev/null 2>&1 &&
        cp "$uhome/user.json" "$results/user.json"
    as_user "$uhome/chroot-tool" off -d "$uroot" >/dev/null
fi

# alternate NAME RUNS CMD-A CMD-B: the two commands one after the other,
# RUNS times, each into a directory of its own that nothing was deleted
# from just before (ext4 slows the creation of files where many were just
# deleted, which would weigh on whichever command runs second); medians
# kept as hyperfine's JSON. CMD-A and CMD-B end with the target directory.
alternate() {
    local name=$1 n=$2 a=$3 b=$4 i t0 t1
    : > "$work/$name.a"
    : > "$work/$name.b"
    for i in $(seq "$n"); do
        for which in a b; do
            local cmd=$a
            [ "$which" = b ] && cmd=$b
            t0=$(date +%s%N)
            if ! $cmd "$work/$name-$which-$i" >/dev/null 2>"$work/$name.err"; then
                echo "$name failed: $cmd: $(tail -1 "$work/$name.err")" >&2
                return 0
            fi
            t1=$(date +%s%N)
            echo $(( (t1 - t0) / 1000 )) >> "$work/$name.$which"
        done
    done
    python3 - "$work" "$name" "$a" "$b" > "$results/$name.json" <<'PY'
import json, statistics, sys
work, name, a, b = sys.argv[1:]
res = []
for which, cmd in (("a", a), ("b", b)):
    us = [int(x) for x in open(f"{work}/{name}.{which}").read().split()]
    res.append({"command": cmd, "median": statistics.median(us) / 1e6})
print(json.dumps({"results": res}))
PY
    rm -rf "$work/$name"-[ab]-*
}

# 5. create with a warm cache against cp -a of the same rootfs.
echo "5. create from a warm cache" >&2
export CHROOT_TOOL_CACHE_DIR=/var/tmp/chroot-tool-bench/cache
"$tool" create -q --variant minbase -d "$work/warm" >/dev/null 2>&1 || true
rm -rf "$work/warm"
alternate create "${CREATE_RUNS:-5}" "cp -a $rootfs" "$tool create -q --variant minbase -d"

# 5b. With COLD=1: a cold create against its backend alone (minutes each).
if [ -n "${COLD:-}" ] && have mmdebstrap; then
    echo "5b. a cold create against mmdebstrap alone" >&2
    # With the mirror create passes (mmdebstrap alone would add -updates and
    # -security, whose Release files a stale mirror may have let expire).
    printf '#!/bin/sh\nexec mmdebstrap --variant=minbase stable "$1" http://deb.debian.org/debian\n' > "$work/mm"
    chmod +x "$work/mm"
    alternate cold-create "${COLD_RUNS:-2}" "$work/mm" \
        "$tool create -q --no-cache --backend mmdebstrap --variant minbase -d"
fi

# 6. Overlay sandboxes and ephemeral runs.
if "$tool" create --help | grep -q -- --overlay; then
    echo "6. create --overlay, run --ephemeral" >&2
    printf '#!/bin/sh\n"%s" destroy --yes -d "%s" >/dev/null 2>&1 || true\n' "$tool" "$work/ov" > "$work/rm-overlay"
    chmod +x "$work/rm-overlay"
    hyperfine -N --style basic --runs 20 --export-json "$results/overlay.json" \
        --prepare "$work/rm-overlay" "$tool create -q --overlay $sb -d $work/ov" >/dev/null 2>&1 ||
        echo "hyperfine failed for overlay" >&2
    "$tool" on -d "$sb" >/dev/null
    hf ephemeral "$tool run -d $sb -- /bin/true" "$tool run -d $sb --ephemeral -- /bin/true"
    "$tool" off -d "$sb" >/dev/null
fi

python3 - "$results" "$rss_few" "$rss_many" <<'EOF'
import json, os, statistics, sys
res, rss_few, rss_many = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def load(name):
    """[(command, median ms)]: from NAME.json, or pooled over the rounds
    of `hf` (NAME.rN.json), in the first round's order."""
    p = os.path.join(res, name + ".json")
    try:
        if os.path.exists(p):
            return [(r["command"], r["median"] * 1000) for r in json.load(open(p))["results"]]
        rounds = sorted(f for f in os.listdir(res)
                        if f.startswith(name + ".r") and f[len(name) + 2:-5].isdigit()
                        and f.endswith(".json"))
        times = {}
        for f in rounds:
            for r in json.load(open(os.path.join(res, f)))["results"]:
                times.setdefault(r["command"], []).extend(r["times"])
        return [(c, statistics.median(t) * 1000) for c, t in times.items()]
    except (OSError, ValueError, KeyError):
        return []
def short(cmd):
    words = cmd.split()
    tool = os.path.basename(words[0])
    if tool == "chroot-tool" and ";" in cmd:
        return "chroot-tool on; run; off (one line of sh)"
    if tool == "chroot-tool":
        return "chroot-tool " + " ".join(w for w in words[1:] if not w.startswith("/") and w != "-d")
    if tool == "cycle":
        return "chroot-tool on; run; off"
    if tool == "as-linked":
        return "the same, the binary as linked (not installed)"
    if tool == "mm":
        return "mmdebstrap --variant=minbase stable DIR MIRROR"
    return " ".join(os.path.basename(w) if w.startswith("/var/tmp") else w for w in words)
rows = []
def group(title, name, base_of, targets):
    r = load(name)
    if not r:
        return
    base = dict(r).get(base_of) or r[0][1]
    print(f"\n{title}")
    print(f"  {'command':<58} {'median ms':>10} {'ratio':>8}  target")
    for cmd, ms in r:
        t = next((v for k, v in targets.items() if k in cmd), "")
        print(f"  {short(cmd):<58} {ms:>10.2f} {ms / base:>7.2f}x  {t}")
# Each group's ratios are against its first command unless one is named.
group("run -- /bin/true, sandbox on, history on (vs chroot DIR /bin/true)", "few",
      None, {" run -d": "<= 1.2x"})
group("the same with many unrelated mounts and processes on the host", "many",
      None, {" run -d": "<= 1.3x"})
cold = load("cold")
arch = next((c for c, _ in cold if "arch-chroot" in c), None)
group("cold cycle (vs arch-chroot DIR /bin/true, which mounts and unmounts per command)",
      "cold", arch, {"cycle": "<= 0.2x"})
group("the same cycle as one line of sh, sh's own start not counted (vs arch-chroot, likewise)",
      "cold-shell", next((c for c, _ in load("cold-shell") if "arch-chroot" in c), None),
      {"on -d": "<= 0.2x"})
group("the same with many unrelated mounts and processes on the host", "many-cold",
      next((c for c, _ in load("many-cold") if "arch-chroot" in c), None), {"cycle": "<= 0.2x"})
group("the slower peers of the cold cycle (fewer runs)", "cold-peers", None, {})
group("unprivileged run -- /bin/true with the holder (vs bwrap, as the same user)", "user",
      None, {"chroot-tool": "<= 1.0x"})
group("create with a warm cache (vs cp -a of the same rootfs)", "create",
      None, {"create": "<= 2x"})
group("cold create (vs the backend alone; COLD=1)", "cold-create",
      None, {"create": "<= 1.05x"})
group("create --overlay (ms; target < 50 ms)", "overlay", None, {})
group("run --ephemeral (vs a plain run)", "ephemeral", None, {})
print(f"\npeak RSS of chroot-tool run: {rss_few / 1024:.1f} MiB, "
      f"with many mounts {rss_many / 1024:.1f} MiB (target <= 4 MiB)")
EOF
echo
echo "($runs runs per command, $(nproc) CPUs, $(uname -r), rootfs $rootfs, binary ${tool#"$PWD"/})"
