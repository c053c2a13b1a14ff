"""Data helpers for equity_reversal tests: slices of the shared S&P 500 parquet, raw and as panels.

The shared data: ``hybrid_core.testing.shared_data_dir()`` (``$HYBRID_SHARED_DATA`` or ``../shared/data``).
Panels are built the canonical way (``LocalBars`` adjusts OHLC by adj_close / close); expected
values in the tests are computed from the RAW parquet columns, independently of that code.
"""

from __future__ import annotations

import pandas as pd
import pytest

from hybrid_core.builtin.local_data import LocalBars
from hybrid_core.contracts import Panel
from hybrid_core.testing import shared_data_dir

SP500 = shared_data_dir() / "sp500_daily.parquet"


def _require_data() -> None:
    if not SP500.exists():
        pytest.fail(f"shared data missing: {SP500} (the tests need ../shared/data next to the repo)")


def load_panel(symbols: list[str] | None, start: str, end: str) -> Panel:
    """Adjusted panel of ``symbols`` (None: all) between two dates, via the core local data source."""
    _require_data()
    names = symbols if symbols is not None else all_symbols()
    bars = LocalBars(LocalBars.Params(path=str(SP500))).fetch(names, pd.Timestamp(start), pd.Timestamp(end))
    return Panel.from_long(bars)


def raw_adj_close(symbols: list[str] | None, start: str, end: str) -> pd.DataFrame:
    """``adj_close`` straight from the parquet, wide (dates x symbols), no cleaning at all."""
    _require_data()
    filters = [("date", ">=", pd.Timestamp(start)), ("date", "<=", pd.Timestamp(end))]
    if symbols is not None:
        filters.append(("symbol", "in", list(symbols)))
    raw = pd.read_parquet(SP500, columns=["symbol", "date", "adj_close"], filters=filters)
    return raw.pivot(index="date", columns="symbol", values="adj_close").sort_index()


def all_symbols() -> list[str]:
    """Every symbol of the shared S&P 500 file, sorted."""
    _require_data()
    return sorted(pd.read_parquet(SP500, columns=["symbol"])["symbol"].unique())
