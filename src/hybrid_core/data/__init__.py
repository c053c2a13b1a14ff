"""The data layer shared by the live cycle and the backtester.

- :func:`normalise_bars` (any source's frame -> canonical long bars) and
  :func:`align_for_valuation` (one date axis for NYSE and 24/7 crypto closes, valuation only);
- :func:`read_bars_file` (local Parquet/CSV long files, API-error files named);
- :class:`BarCache` (Parquet cache, atomic writes) and :class:`CacheUpdater` (fetch only missing
  days, refetch on re-adjustment);
- :func:`check_quality` (stale data, gaps, bad prices; ``halt_entries`` on a stale universe).
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {"BarCache": "cache", "read_bars_file": "files", "align_for_valuation": "normalise",
          "empty_bars": "normalise", "normalise_bars": "normalise", "QualityIssue": "quality",
          "QualityReport": "quality", "check_quality": "quality", "CacheUpdater": "updater",
          "UpdateReport": "updater"}
"""The module of each name above, imported on first use: the cache alone brings pyarrow.dataset and
filelock, the updater tqdm (0.1 s of every start-up that reads a local file and needs neither)."""


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value
    return value


__all__ = ["BarCache", "CacheUpdater", "QualityIssue", "QualityReport", "UpdateReport",
           "align_for_valuation", "check_quality", "empty_bars", "normalise_bars", "read_bars_file"]
