"""hybrid's process memory policy (ops/memory.py): freed blocks are reused, then given back."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = ("import sys; from hybrid_core.ops import memory; tuned = memory.return_freed_memory() "
         "if sys.argv[1] == 'cli' else None; print(tuned, memory.arrow_pool())")
HUGE_PAGES = ("import sys\n"
              "if sys.argv[1] == 'numpy-first': import numpy\n"
              "from hybrid_core.ops import memory\n"
              "memory.return_freed_memory()\n"
              "import numpy as np\n"
              "print(np._core.multiarray._set_madvise_hugepage(True))")
REUSE = ("from hybrid_core.ops import memory\n"
         "memory.return_freed_memory()\n"
         "import numpy as np\n"
         "def rss(): return int(open('/proc/self/statm').read().split()[1]) * 4096 >> 20\n"
         "low = np.ones(6_000_000); high = np.ones(6_000_000); base = rss()\n"  # 46 MiB each, under the threshold:
         "del low; kept = rss()\n"                             # both from the heap's top; low, freed below high: kept
         "released = memory.release_freed_memory(); back = rss()\n"
         "print(base - kept < 8, released, kept - back > 30)")


def probe(env: dict[str, str], how: str = "cli", code: str = PROBE) -> list[str]:
    """What the probe prints in a fresh interpreter (the policy's answer and pyarrow's pool afterwards)."""
    clean = {k: v for k, v in os.environ.items() if k not in ("ARROW_DEFAULT_MEMORY_POOL", "NUMPY_MADVISE_HUGEPAGE")}
    out = subprocess.run([sys.executable, "-c", code, how], env={**clean, **env}, capture_output=True,
                         text=True, check=True)
    return out.stdout.split()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt exists on Linux only")
def test_the_hybrid_process_sets_glibcs_threshold_and_pyarrows_pool() -> None:
    assert probe({}) == ["True", "jemalloc"]


def test_a_users_own_arrow_pool_wins_and_a_library_user_keeps_pyarrows() -> None:
    assert probe({"ARROW_DEFAULT_MEMORY_POOL": "system"}) == ["True", "system"]
    assert probe({}, how="library") == ["None", "mimalloc"]


@pytest.mark.skipif(not sys.platform.startswith("linux"),
                    reason="the memory policy applies on Linux only (glibc); elsewhere hybrid changes nothing")
def test_numpy_stops_advising_huge_pages_whether_imported_before_or_after() -> None:
    # _set_madvise_hugepage returns the setting it replaces: False once the policy turned it off
    assert probe({}, how="numpy-first", code=HUGE_PAGES) == ["False"]
    assert probe({}, how="numpy-later", code=HUGE_PAGES) == ["False"]
    assert probe({"NUMPY_MADVISE_HUGEPAGE": "1"}, how="numpy-later", code=HUGE_PAGES)[0] == "True"  # the user's wins


@pytest.mark.skipif(not sys.platform.startswith("linux"),
                    reason="glibc's malloc_trim exists on Linux only; elsewhere hybrid gives nothing back")
def test_a_freed_big_array_stays_for_reuse_until_given_back() -> None:
    assert probe({}, code=REUSE) == ["True", "True", "True"]
