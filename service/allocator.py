"""Let the process reuse freed activation memory instead of handing it back to the kernel.

One SynNet forward allocates and frees dozens of activations of 10–60 MB. glibc's malloc serves
blocks above its mmap threshold (32 MB at most) with fresh ``mmap`` calls and gives the top of a
heap back to the kernel once enough of it is free, so every forward pass faults its activations
in again page by page and the kernel zeroes each page: on this project's 2-core CPU that cost a
third to a half of SynNet's throughput (see docs/benchmarks.md). Serving every block from the heap
and never trimming it keeps those pages mapped; the process's resident memory then stays near its
peak instead of shrinking between requests.

One arena for all threads: the forward passes run in a worker thread, and a worker's own arena
lives in mmap'd heaps of at most 64 MB that come and go, which brought the page faults back for
the larger activations (about 15 % slower than in the main thread's heap).
"""

from __future__ import annotations

import ctypes
import logging
import platform

logger = logging.getLogger(__name__)

# mallopt() parameters, from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8
_NEVER_TRIM = 2**31 - 1  # mallopt takes an int


def keep_freed_memory() -> bool:
    """Make glibc malloc keep freed memory for reuse; False (and nothing changed) on another libc."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        logger.info("not glibc: freed memory is left to the allocator's defaults")
        return False
    libc = ctypes.CDLL(None)
    settings = ((_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, _NEVER_TRIM), (_M_ARENA_MAX, 1))
    ok = all(libc.mallopt(parameter, value) == 1 for parameter, value in settings)
    if not ok:
        logger.warning("mallopt refused to keep freed memory; forward passes will page-fault their activations")
    return ok
