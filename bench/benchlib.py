"""Shared by bench/ab.py and bench/hot-text.py."""
import os
import re
import shutil
import sys


def mounted_below(path):
    """Whether something is mounted at `path` or below it (mountinfo's
    mount points, their octal escapes undone)."""
    path = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), line.split()[4])
            if point == path or point.startswith(path + "/"):
                return True
    return False


def remove_work(path):
    """Removes the work directory `path` unless something is still mounted
    at or below it: rmtree would go down into a mount left there (a bind of
    the shared bench rootfs). Then it is left, and said."""
    if mounted_below(path):
        print(f"left {path}: something is still mounted below it", file=sys.stderr)
    else:
        shutil.rmtree(path)
