#!/usr/bin/env python3
"""Interleaved A/B of the cold cycle (on; run -- /bin/true; off) of builds.

    bench/ab.py NAME=BINARY [NAME=BINARY ...]      as root

Each round runs every binary's cycle once, in turn (the order reversed
every other round), then arch-chroot once when it is installed: a machine
whose speed drifts over minutes (a VM) weighs on every binary alike, which
two hyperfine runs one after the other do not give. Prints each binary's
median cycle and the median of each of its three commands, in ms, and the
cycle's ratio to arch-chroot's.

    N=150                 rounds (after 10 not counted)
    ROOTFS=DIR            the rootfs (default: bench.sh's)
    NAME=BINARY:tmpfs     that binary's run directory on a tmpfs

Everything runs in a mount namespace of its own (the script starts itself
again inside one): nothing reaches the machine's mount table.

What it can tell: drift over minutes cancels out, but not the order within a
round (the same binary in two slots has differed by 0.35 ms a cycle here);
for smaller differences, count page faults and CPU time per command with
`perf stat` instead.
"""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import benchlib

if os.environ.get("CT_AB_INNER") != "1":
    if os.geteuid() != 0:
        sys.exit("bench/ab.py: run as root")
    os.execvpe("unshare", ["unshare", "-m", "--propagation", "private",
                           sys.executable, os.path.abspath(__file__)] + sys.argv[1:],
               dict(os.environ, CT_AB_INNER="1"))

rounds = int(os.environ.get("N", "150"))
rootfs = os.environ.get("ROOTFS", "/var/tmp/chroot-tool-bench/rootfs")
if not sys.argv[1:] or not os.path.exists(os.path.join(rootfs, "bin/sh")):
    sys.exit(__doc__)
work = tempfile.mkdtemp(dir="/var/tmp", prefix="ct-ab.")
sb = os.path.join(work, "sb")
os.mkdir(sb)
subprocess.run(["mount", "--bind", rootfs, sb], check=True)
subprocess.run(["mount", "--make-private", sb], check=True)
null = os.open("/dev/null", os.O_WRONLY)
variants = []
try:
    for i, arg in enumerate(sys.argv[1:]):
        name, spec = arg.split("=", 1)
        binary, *opts = spec.split(":")
        tool = os.path.join(work, f"ct{i}")
        shutil.copy(binary, tool)
        os.chmod(tool, 0o755)
        run = os.path.join(work, f"run{i}")
        os.mkdir(run)
        if "tmpfs" in opts:
            subprocess.run(["mount", "-t", "tmpfs", "ct-ab", run], check=True)
        env = dict(os.environ, CHROOT_TOOL_STATE_DIR=os.path.join(work, f"state{i}"),
                   CHROOT_TOOL_RUN_DIR=os.path.join(run, "r"))
        cmds = [[tool, "on", "-d", sb], [tool, "run", "-d", sb, "--", "/bin/true"],
                [tool, "off", "-d", sb]]
        variants.append((name, cmds, env))
    arch = shutil.which("arch-chroot")
    if arch:
        variants.append(("arch-chroot", [[arch, sb, "/bin/true"]], dict(os.environ)))

    def spawn(argv, env):
        pid = os.posix_spawn(argv[0], argv, env, file_actions=[(os.POSIX_SPAWN_DUP2, null, 1)])
        _, status = os.waitpid(pid, 0)
        if status != 0:
            raise SystemExit(f"{' '.join(argv)}: status {status}")

    cycles = {v[0]: [] for v in variants}
    parts = {v[0]: [[] for _ in v[1]] for v in variants}
    for r in range(rounds + 10):
        for name, cmds, env in (variants if r % 2 else variants[::-1]):
            took = []
            for c in cmds:
                t = time.perf_counter()
                spawn(c, env)
                took.append((time.perf_counter() - t) * 1e3)
            if r >= 10:
                cycles[name].append(sum(took))
                for k, ms in enumerate(took):
                    parts[name][k].append(ms)
    base = statistics.median(cycles["arch-chroot"]) if arch else None
    for name, times in cycles.items():
        m = statistics.median(times)
        each = " ".join(f"{statistics.median(p):.3f}" for p in parts[name])
        ratio = f"  {m / base:.3f}x arch-chroot" if base else ""
        print(f"{name:<12} cycle {m:.3f} ms  (each: {each}){ratio}")
finally:
    for i in range(len(sys.argv) - 1):
        subprocess.run(["umount", "-q", os.path.join(work, f"run{i}")],
                       stderr=subprocess.DEVNULL)
    subprocess.run(["umount", sb])
    benchlib.remove_work(work)
