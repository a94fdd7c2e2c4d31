"""The operator's malloc setting (operator/memory.py) gives freed large blocks back.

Each case runs in its own process: blocks of 1 MiB, allocated after a 4 MiB block was
freed (which raises glibc's dynamic mmap threshold past them), each followed by a 64 KiB
block that stays, the large ones touched and then freed. With glibc's default they came
from the heap and their pages stay resident; with the threshold fixed they were maps and
are returned. The default case shows the test can tell the two apart.
"""

import ctypes.util
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or ctypes.util.find_library("c") is None,
    reason="glibc's malloc only",
)

_SCRIPT = """
import ctypes, ctypes.util, os, sys
from kubetune.operator.memory import fix_mmap_threshold

if sys.argv[1] == "fixed":
    assert fix_mmap_threshold()
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]

def rss_mb():
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

big = libc.malloc(4 << 20)
ctypes.memset(big, 1, 4 << 20)
libc.free(big)
before = rss_mb()
blocks, small = [], []
for _ in range(100):
    block = libc.malloc(1 << 20)
    ctypes.memset(block, 1, 1 << 20)
    blocks.append(block)
    small.append(libc.malloc(64 << 10))  # stays, above the block: it pins the heap
for block in blocks:
    libc.free(block)
print(rss_mb() - before)
"""


def _resident_after_free(mode: str) -> float:
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, mode], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return float(done.stdout)


def test_freed_large_blocks_leave_the_process_with_the_threshold_fixed() -> None:
    assert _resident_after_free("default") > 50
    assert _resident_after_free("fixed") < 10
