"""Process memory policy: a run reuses the memory it frees, and gives it back between cycles.

A backtest or a live cycle allocates its bars in big arrays (a column of 4.7 million floats is
36 MiB) and frees most of them within a second: the file's columns once the canonical frame
exists, the quality gate's masks once it has judged, the long frame once the panel is built;
then the strategies' signals and the loop's arrays take their place. Every page the kernel
hands a process fresh is zeroed first, and on a virtual machine that is the dominant cost of a
big run: about 1 s of system time per 1.5 GB, a third of a 3,000-symbol backtest.

:func:`return_freed_memory` (called once by :func:`hybrid_core.cli.main`, before anything is
loaded) therefore:

- fixes glibc's mmap threshold at :data:`MMAP_THRESHOLD` (64 MiB): a block smaller than that
  comes from the heap, and once freed serves the next allocations without fresh pages (a
  column, a mask, a signal frame of a 3,000-symbol, six-year run all fit). Fixed, not left to
  glibc's own rule, which raises the threshold only up to 32 MiB and only after freeing, so a
  run's biggest arrays were fresh mappings each time; blocks above it are still their own
  mapping, unmapped when freed;
- turns off NumPy's transparent huge page advice for big arrays: a huge page is zeroed whole on
  first touch and split when the heap's top is trimmed, which on a reused heap doubled the
  system time;
- selects pyarrow's jemalloc pool (through ``ARROW_DEFAULT_MEMORY_POOL``: the only switch its
  C++ readers follow; pyarrow's Linux wheels include jemalloc), whose freed pages
  :func:`arrow_pool` (called by the Parquet reader before its first read, so that ``hybrid
  health`` never loads pyarrow) makes it return at once. Not the system allocator for pyarrow:
  its decode buffers are many and short-lived, and would crowd the heap.

The price is a peak a little above the largest phase's live data (freed blocks wait in the heap
for reuse: a few MiB on an eq504 backtest, ~10-20 MiB on a 3,000-symbol live cycle);
:func:`release_freed_memory` gives the heap's free pages back to the system: a backtest's load and
its signals call it when they end, the live loop after each cycle, so a process waiting for its
next cycle holds only what it keeps. A user's own
``ARROW_DEFAULT_MEMORY_POOL`` wins; on another system than Linux nothing is changed.
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys
from typing import Any

MMAP_THRESHOLD = 64 * 1024 * 1024
"""Blocks of at least this many bytes are mapped on their own; smaller ones come from the heap and are reused."""
_M_MMAP_THRESHOLD = -3
"""``mallopt`` parameter number of the mmap threshold (glibc's malloc.h)."""
_policy = {"active": False}


def return_freed_memory() -> bool:
    """Apply the policy of the module docstring; True when glibc's threshold was set."""
    if not sys.platform.startswith("linux"):
        return False
    _policy["active"] = True
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")
    mallopt = _glibc("mallopt")
    if mallopt is None:  # musl and others: nothing to tune
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    _no_huge_page_advice()
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))


def _no_huge_page_advice() -> None:
    """NumPy does not advise transparent huge pages for its big arrays: ``NUMPY_MADVISE_HUGEPAGE=0``
    for a NumPy not imported yet, else NumPy's switch; a user's own ``NUMPY_MADVISE_HUGEPAGE`` wins."""
    if "NUMPY_MADVISE_HUGEPAGE" in os.environ:
        return
    np = sys.modules.get("numpy")
    if np is None:
        os.environ["NUMPY_MADVISE_HUGEPAGE"] = "0"
        return
    for module in ("_core", "core"):  # NumPy 2, NumPy 1
        setter = getattr(getattr(getattr(np, module, None), "multiarray", None), "_set_madvise_hugepage", None)
        if setter is not None:
            setter(False)
            return


def release_freed_memory() -> bool:
    """Give the heap's free pages back to the system (``malloc_trim``); True when some were.

    Under the policy a freed block waits in the heap for the next allocation; a long-running
    process calls this when a unit of work ends (the live loop: after each cycle)."""
    trim = _glibc("malloc_trim") if _policy["active"] else None
    if trim is None:
        return False
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return bool(trim(0))


@functools.cache
def _glibc(name: str) -> Any:
    """glibc's function ``name``, or None (another C library). Looked up once: by glibc's soname
    first, since ``ctypes.util.find_library`` runs ``ldconfig -p`` (~8 ms a call)."""
    try:
        return getattr(ctypes.CDLL("libc.so.6"), name)
    except (OSError, AttributeError):
        pass
    from ctypes.util import find_library

    found = find_library("c")
    try:
        return getattr(ctypes.CDLL(found), name) if found else None
    except (OSError, AttributeError):
        return None


@functools.cache
def arrow_pool() -> str:
    """Under the policy, pyarrow's jemalloc returns freed pages at once (decay 0; once per
    process); returns the name of pyarrow's pool."""
    import pyarrow as pa

    backend = str(pa.default_memory_pool().backend_name)
    if _policy["active"] and backend == "jemalloc":
        pa.jemalloc_set_decay_ms(0)
    return backend
