"""The allocators' settings while an export runs: the memory freed between blocks goes back.

An export streams each data file in blocks and row groups, so its working set is small,
but memory the allocators keep after it is freed raises the process's peak RSS: :func:`lean_memory_pool` makes pyarrow allocate from jemalloc with a short
decay, :func:`return_freed_blocks` fixes glibc's mmap threshold. Measurements in
docs/benchmarks-export.md.
"""

from __future__ import annotations

import ctypes
import sys
from typing import Any

import pyarrow as pa

#: glibc's mmap threshold while exporting (see :func:`return_freed_blocks`).
MMAP_THRESHOLD = 4 << 20


def return_freed_blocks() -> None:
    """On glibc, fix the mmap threshold at :data:`MMAP_THRESHOLD` (4 MiB): an allocation
    that large (a long row's buffer, large Python objects) is its own mapping and goes
    back to the system when freed. glibc otherwise raises the threshold (up to 32 MiB)
    after such frees and serves later ones from per-thread heaps that keep their freed
    memory: peak RSS of the whole scale-1 export at 2 workers, 290 MB, against 260 MB
    with a fixed threshold. It was 128 KiB (glibc's initial value) until the row text
    got one reused buffer per worker; at 128 KiB every smaller block (zstd's
    contexts, Parquet pages, Python's copies) was also a fresh mapping whose pages
    fault in: measured at 2 workers, logstore 27.6 s of CPU and 229 MB, whole backup
    251 MB; at 4 MiB 24.5 s and 238 MB, 247 MB; without a fixed threshold 23.5 s and
    257 MB, 265 MB (docs/benchmarks-export.md). Process-wide; allocations stay correct
    either way."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(ctypes.c_int(-3), ctypes.c_int(MMAP_THRESHOLD))  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):  # not glibc (musl has no mallopt): nothing to do
        pass


#: How long jemalloc keeps freed pages (ms) before it gives them back to the system.
JEMALLOC_DECAY_MS = 1000


def lean_memory_pool() -> Any:
    """Make jemalloc, purging freed pages after :data:`JEMALLOC_DECAY_MS`, pyarrow's
    default pool while the export runs, and return the pool it replaces (None when
    jemalloc is not built in).

    With the default mimalloc pool, memory freed between blocks stays with the process:
    measured peak RSS of the logstore export at 2 workers, 318 MB, against 277 MB with
    jemalloc (docs/benchmarks-export.md). Purging at once (decay 0) made every block's
    arrays fresh pages to fault in, more so with two threads: logstore at 2 workers,
    0.86 M page faults and 2.2 s of system CPU, against 0.35-0.36 M and 1.0-1.25 s with
    a decay of 1 s, for 8-11 MB more peak RSS (242 -> 250-253 MB; whole scale-1 backup
    252 -> 264-265 MB).
    """
    try:
        lean = pa.jemalloc_memory_pool()
        pa.jemalloc_set_decay_ms(JEMALLOC_DECAY_MS)
    except (NotImplementedError, pa.ArrowNotImplementedError):
        return None
    previous = pa.default_memory_pool()
    pa.set_memory_pool(lean)
    return previous
