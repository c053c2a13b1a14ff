"""The data layer shared by the live cycle and the backtester.

- :func:`normalise_bars` (any source's frame -> canonical long bars) and
  :func:`align_for_valuation` (one date axis for NYSE and 24/7 crypto closes, valuation only);
- :func:`read_bars_file` (local Parquet/CSV long files, API-error files named);
- :class:`BarCache` (Parquet cache, atomic writes) and :class:`CacheUpdater` (fetch only missing
  days, refetch on re-adjustment);
- :func:`check_quality` (stale data, gaps, bad prices; ``halt_entries`` on a stale universe).
"""

from .cache import BarCache
from .files import read_bars_file
from .normalise import align_for_valuation, empty_bars, normalise_bars
from .quality import QualityIssue, QualityReport, check_quality
from .updater import CacheUpdater, UpdateReport

__all__ = ["BarCache", "CacheUpdater", "QualityIssue", "QualityReport", "UpdateReport",
           "align_for_valuation", "check_quality", "empty_bars", "normalise_bars", "read_bars_file"]
