"""Process memory policy: memory a run frees goes back to the operating system.

A backtest or a live cycle allocates its bars in big arrays (a column of 784,000 floats is 6
MiB) and frees most of them within a second: the file's columns once the canonical frame
exists, the quality gate's masks once it has judged, the long frame once the panel is built.
Left to their defaults, both allocators in the process keep that memory: glibc's ``malloc``
raises its mmap threshold to the largest block freed so far (up to 32 MiB), so later arrays of
that size come from a heap that is only trimmed at its top, and pyarrow's mimalloc pool keeps
freed pages for reuse. Peak RSS then counts the sum of the phases instead of the largest one:
an eq504 backtest peaked near 385 MiB where its data needs about 235.

:func:`return_freed_memory` (called once by :func:`hybrid_core.cli.main`, before anything is
loaded) fixes glibc's mmap threshold at :data:`MMAP_THRESHOLD` bytes, so every block at least
that big is its own mapping, unmapped when freed, and selects pyarrow's jemalloc pool (through
``ARROW_DEFAULT_MEMORY_POOL``: the only switch its C++ readers follow; pyarrow's Linux wheels
include jemalloc), whose freed pages :func:`arrow_pool` (called by the Parquet reader before its
first read, so that ``hybrid health`` never loads pyarrow) makes it return at once. Not the
system allocator for pyarrow: its decode buffers are many and short-lived, and on glibc's fixed
threshold each would be a fresh mapping (a Parquet read took 70% longer). A user's own
``ARROW_DEFAULT_MEMORY_POOL`` wins; on another system than Linux nothing is changed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import sys

MMAP_THRESHOLD = 128 * 1024
"""Blocks of at least this many bytes are mapped on their own (glibc's default before it adapts)."""
_M_MMAP_THRESHOLD = -3
"""``mallopt`` parameter number of the mmap threshold (glibc's malloc.h)."""
_policy = {"active": False}


def return_freed_memory() -> bool:
    """Apply the policy of the module docstring; True when glibc's threshold was set."""
    if not sys.platform.startswith("linux"):
        return False
    _policy["active"] = True
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others: no mallopt, nothing to tune
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))


@functools.cache
def arrow_pool() -> str:
    """Under the policy, pyarrow's jemalloc returns freed pages at once (decay 0; once per
    process); returns the name of pyarrow's pool."""
    import pyarrow as pa

    backend = str(pa.default_memory_pool().backend_name)
    if _policy["active"] and backend == "jemalloc":
        pa.jemalloc_set_decay_ms(0)
    return backend
