"""hybrid's process memory policy (ops/memory.py): big blocks go back to the system when freed."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = ("import sys; from hybrid_core.ops import memory; tuned = memory.return_freed_memory() "
         "if sys.argv[1] == 'cli' else None; print(tuned, memory.arrow_pool())")


def probe(env: dict[str, str], how: str = "cli") -> list[str]:
    """The policy's answer and pyarrow's pool afterwards, in a fresh interpreter."""
    clean = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    out = subprocess.run([sys.executable, "-c", PROBE, how], env={**clean, **env}, capture_output=True,
                         text=True, check=True)
    return out.stdout.split()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt exists on Linux only")
def test_the_hybrid_process_sets_glibcs_threshold_and_pyarrows_pool() -> None:
    assert probe({}) == ["True", "jemalloc"]


def test_a_users_own_arrow_pool_wins_and_a_library_user_keeps_pyarrows() -> None:
    assert probe({"ARROW_DEFAULT_MEMORY_POOL": "system"}) == ["True", "system"]
    assert probe({}, how="library") == ["None", "mimalloc"]
