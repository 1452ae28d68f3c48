"""glibc malloc told to keep freed memory: the environment the service's images set.

One SynNet forward allocates and frees dozens of 10-60 MB activations. By default glibc serves
blocks above its mmap threshold with fresh ``mmap`` calls and trims the top of the heap back to
the kernel, so every forward pass page-faults its activations in again and the kernel zeroes each
page: on this project's 2-core CPU that cost a third to a half of SynNet's throughput
(docs/benchmarks.md). No mmap, no trimming, and one arena (a worker thread's own arenas are
mmap'd heaps of at most 64 MB that come and go, which brought the faults back for the larger
activations). Resident memory then stays near its peak between requests.

glibc reads ``GLIBC_TUNABLES`` once, at process start, so this is set where processes are started
(``ENV`` in docker/Dockerfile*, ``bench/serve_speed.py``), never changed from inside a running app.
Other C libraries ignore it. Standard library only: the benchmark imports it without the service's
dependencies.
"""

from __future__ import annotations

import os

MALLOC_TUNABLES = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=2147483647:glibc.malloc.arena_max=1"


def keeps_freed_memory(environ: dict[str, str] | None = None) -> bool:
    """Whether a process started with ``environ`` (default: this one's) has glibc keep freed memory."""
    environ = os.environ if environ is None else environ
    return MALLOC_TUNABLES in environ.get("GLIBC_TUNABLES", "")
