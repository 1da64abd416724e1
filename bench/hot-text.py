#!/usr/bin/env python3
"""Write link/hot-text.ld: the functions a cold cycle runs, placed together.

    bench/hot-text.py [BINARY]        as root; BINARY defaults to `make -s bin`

Every command starts by faulting in the pages of the binary's code it runs.
The kernel maps 64 KiB around each fault, but the code of `on`, `run` and
`off` lies scattered over the 4 MiB of the binary's text: about 35 faults a
command. The linker script this writes gathers those functions in one
output section at the text's start (GNU ld and lld both read it;
build.rs passes it), where they take about ten.

It single-steps (ptrace) `on`, `run -- /bin/true` and `off` of the bench
rootfs, bound in a mount namespace of its own, after one cycle untraced;
maps each instruction run to its function (`nm`); and writes one
input-section pattern per function, the ones all three commands run
first, each command's own after. The
symbols' hashes and crates' disambiguators, which change with the compiler
and the dependencies, are left to wildcards; a function renamed or gone
since matches nothing and costs nothing but its place. Run it again after a
change to the commands' path (it takes a minute or two) and compare with
bench/ab.py.

    ROOTFS=DIR            the rootfs (default: bench.sh's)
"""
import bisect
import ctypes
import os
import re
import subprocess
import sys
import tempfile

import benchlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "link", "hot-text.ld")

PTRACE_TRACEME, PTRACE_PEEKUSER, PTRACE_SINGLESTEP = 0, 3, 9
PTRACE_SETOPTIONS, PTRACE_DETACH = 0x4200, 17
OPTIONS = 0x02 | 0x04 | 0x08 | 0x10 | 0x100000  # fork, vfork, clone, exec, exitkill
EVENT_EXEC = 4
RIP = 16 * 8  # offset of rip in struct user_regs_struct
WALL = 0x40000000

libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.restype = ctypes.c_long
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]


def trace(argv, env):
    """Offsets in argv[0]'s mapping of every instruction argv ran (its
    clones too, until they exec something else)."""
    pid = os.fork()
    if pid == 0:
        try:
            libc.ptrace(PTRACE_TRACEME, 0, None, None)
            os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
            os.execve(argv[0], argv, env)
        finally:
            os._exit(127)
    os.waitpid(pid, 0)  # stopped at the exec
    base = None
    end = 0
    real = os.path.realpath(argv[0])
    with open(f"/proc/{pid}/maps") as maps:
        for line in maps:
            fields = line.split()
            if len(fields) >= 6 and fields[5] == real:
                lo, hi = (int(x, 16) for x in fields[0].split("-"))
                base = lo if base is None else base
                end = max(end, hi)
    libc.ptrace(PTRACE_SETOPTIONS, pid, None, OPTIONS)
    libc.ptrace(PTRACE_SINGLESTEP, pid, None, None)
    seen = set()
    while True:
        try:
            tid, status = os.waitpid(-1, WALL)
        except ChildProcessError:
            break
        if not os.WIFSTOPPED(status):
            if tid == pid and os.waitstatus_to_exitcode(status) != 0:
                sys.exit(f"{' '.join(argv)} failed")
            continue
        sig, event = os.WSTOPSIG(status), status >> 16
        if event == EVENT_EXEC:
            libc.ptrace(PTRACE_DETACH, tid, None, None)
            continue
        if event or sig in (5, 19):  # an event, SIGTRAP (the step), SIGSTOP (a new clone)
            if not event and sig == 5:
                ctypes.set_errno(0)
                rip = libc.ptrace(PTRACE_PEEKUSER, tid, ctypes.c_void_p(RIP), None) & (2**64 - 1)
                if base <= rip < end:
                    seen.add(rip - base)
            sig = 0
        libc.ptrace(PTRACE_SINGLESTEP, tid, None, ctypes.c_void_p(sig))
    return seen


def functions(binary):
    """(start, size, names) of every function, by address: aliases (musl's
    `sigaction` and `__sigaction`) together, since only one of them names
    its section."""
    out = subprocess.run(["nm", "-n", "-S", "--defined-only", binary],
                         check=True, capture_output=True, text=True).stdout
    syms = []
    for line in out.splitlines():
        f = line.split()
        if len(f) == 4 and f[2] in "tTwW":
            start, size = int(f[0], 16), int(f[1], 16)
            if syms and syms[-1][0] == start:
                syms[-1][2].append(f[3])
            else:
                syms.append((start, size, [f[3]]))
    return syms


def named(offsets, syms):
    """The names of the functions the offsets fall in, by address."""
    starts = [s[0] for s in syms]
    names = {}
    for off in sorted(offsets):
        i = bisect.bisect_right(starts, off) - 1
        if i >= 0 and off < syms[i][0] + syms[i][1]:
            for n in syms[i][2]:
                names.setdefault(n, off)
    return sorted(names, key=names.get)


def pattern(name):
    name = re.sub(r"17h[0-9a-f]{16}E$", "17h*E", name)  # legacy mangling's hash
    name = re.sub(r"Cs[0-9A-Za-z]+_", "Cs*_", name)     # v0's crate disambiguators
    return re.sub(r"(\.llvm)?\.[0-9]+$", ".*", name)    # LLVM's local copies


def main():
    if os.environ.get("CT_HOT_INNER") != "1":
        if os.geteuid() != 0:
            sys.exit("bench/hot-text.py: run as root")
        binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
            ROOT, subprocess.run(["make", "-s", "-C", ROOT, "bin"], check=True,
                                 capture_output=True, text=True).stdout.strip())
        os.environ["CT_HOT_INNER"] = "1"
        os.execvp("unshare", ["unshare", "-m", "--propagation", "private", sys.executable,
                              os.path.abspath(__file__), os.path.abspath(binary)])
    binary = sys.argv[1]
    rootfs = os.environ.get("ROOTFS", "/var/tmp/chroot-tool-bench/rootfs")
    work = tempfile.mkdtemp(dir="/var/tmp", prefix="ct-hot.")
    env = dict(os.environ, CHROOT_TOOL_STATE_DIR=work + "/state", CHROOT_TOOL_RUN_DIR=work + "/run")
    sb = work + "/sandbox"
    os.mkdir(sb)
    subprocess.run(["mount", "--bind", rootfs, sb], check=True)
    try:
        syms = functions(binary)
        cycle = (["on", "-d", sb], ["run", "-d", sb, "--", "/bin/true"], ["off", "-d", sb])
        # Once untraced first: the cycles that count find the run and
        # state directories as earlier ones left them (the overlay index).
        for args in cycle:
            subprocess.run([binary] + args, env=env, check=True, capture_output=True)
        runs = []
        for args in cycle:
            runs.append(named(trace([binary] + args, env), syms))
            print(f"{args[0]}: {len(runs[-1])} functions", file=sys.stderr)
    finally:
        subprocess.run([binary, "off", "-d", sb], env=env, capture_output=True)
        subprocess.run(["umount", sb])
        benchlib.remove_work(work)
    first = {}
    for i, names in enumerate(runs):
        for n in names:
            first.setdefault(n, (i, len(first)))
    count = {n: sum(n in r for r in runs) for n in first}
    pats = []
    for n in sorted(first, key=lambda n: (-count[n], first[n])):
        p = pattern(n)
        if p not in pats:
            pats.append(p)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as out:
        out.write("/* The code a cold cycle runs, gathered at the start of the text so that\n"
                  "   each command faults in a few pages of it rather than thirty-odd\n"
                  "   scattered ones (docs/performance.md). Written by bench/hot-text.py;\n"
                  "   passed to the linker by build.rs. */\n")
        out.write("SECTIONS\n{\n  .text.hot : {\n")
        # musl's routines written in assembly (memcpy, memset, ...) and
        # the start files have a plain .text of their own (musl's C
        # functions have one section each).
        out.write("    *libc.a:*.lo(.text)\n")
        out.write("    *crt1.o(.text)\n")
        # A function LLVM takes for cold (`#[cold]`, such as std's
        # `OnceLock::initialize`) is in a `.text.unlikely.` section.
        for p in pats:
            out.write(f"    *(.text.{p} .text.unlikely.{p})\n")
        out.write("  }\n}\nINSERT BEFORE .text;\n")
    print(f"wrote {OUT}: {len(pats)} patterns", file=sys.stderr)


main()
