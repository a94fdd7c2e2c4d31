"""The operator process's malloc setting: large blocks stay memory maps, returned when freed.

glibc raises its mmap threshold each time a mapped block is freed, up to 32 MiB, so after
the first Gaussian-process asks torch's and numpy's working buffers come from the heap
instead, where freed blocks between live ones are not given back. Measured with
bench/operator_overhead.py's scale part (50 sweeps, 10 trials each at once, the default
algorithm): steady 488-523 MB and peaks of 594-628 MB with glibc's default, steady 431-435
MB and peaks of 536-553 MB with the threshold fixed at 128 KiB, at the same CPU per trial
(the rest of the peak was two GP fits at once: engine/samplers.py runs one at a time).
`MALLOC_ARENA_MAX=2` made no difference there (594 MB peak), so the arenas are left alone.
"""

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

# mallopt's parameter number for M_MMAP_THRESHOLD (malloc.h); setting it also turns off
# the dynamic threshold.
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 128 * 1024  # glibc's own starting value


def fix_mmap_threshold() -> bool:
    """Fix glibc's mmap threshold for this process; False where there is no glibc (musl,
    macOS), which keeps its own allocator's behaviour."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    if mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) != 1:
        log.warning("mallopt(M_MMAP_THRESHOLD) was refused; the operator keeps glibc's default")
        return False
    return True
