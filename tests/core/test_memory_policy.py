"""hybrid's process memory policy (ops/memory.py): big blocks go back to the system when freed."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = ("from hybrid_core.ops.memory import return_freed_memory; tuned = return_freed_memory(); "
         "import pyarrow as pa; print(tuned, pa.default_memory_pool().backend_name)")


def probe(env: dict[str, str]) -> list[str]:
    """``return_freed_memory()``'s answer and pyarrow's pool afterwards, in a fresh interpreter."""
    clean = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    out = subprocess.run([sys.executable, "-c", PROBE], env={**clean, **env}, capture_output=True, text=True,
                         check=True)
    return out.stdout.split()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt exists on Linux only")
def test_the_policy_sets_glibcs_threshold_and_pyarrows_pool() -> None:
    assert probe({}) == ["True", "system"]


def test_a_users_own_arrow_pool_wins() -> None:
    assert probe({"ARROW_DEFAULT_MEMORY_POOL": "jemalloc"})[1] == "jemalloc"
