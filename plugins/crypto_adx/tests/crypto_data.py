"""Data helpers for crypto_adx tests: the shared crypto parquet, raw and as panels.

The shared data: ``hybrid_core.testing.shared_data_dir()`` (``$HYBRID_SHARED_DATA`` or ``../shared/data``).
Panels are built the canonical way (core ``LocalBars``); expected values in the tests come
from the RAW parquet rows with TA-Lib and pandas called directly.
"""

from __future__ import annotations

import pandas as pd
import pytest

from hybrid_core.builtin.local_data import LocalBars
from hybrid_core.contracts import Panel
from hybrid_core.testing import shared_data_dir

CRYPTO = shared_data_dir() / "crypto_daily.parquet"
PAIRS = ["BTC/USD", "ETH/USD"]
HYBRID_REFERENCE_TRADES = shared_data_dir().parent / "reference" / "hybrid_2016_trades.csv"


def _require_data() -> None:
    if not CRYPTO.exists():
        pytest.fail(f"shared data missing: {CRYPTO} (the tests need ../shared/data next to the repo)")


def load_panel(start: str | None = None, end: str | None = None, symbols: list[str] = PAIRS) -> Panel:
    """Panel of the crypto pairs between two dates, via the core local data source."""
    _require_data()
    source = LocalBars(LocalBars.Params(path=str(CRYPTO)))
    bars = source.fetch(symbols, pd.Timestamp(start) if start else None, pd.Timestamp(end) if end else None)
    return Panel.from_long(bars)


def raw_rows(symbol: str, start: str | None = None, end: str | None = None) -> pd.DataFrame:
    """The parquet rows of one pair, date-indexed, INCLUDING the rows without prices."""
    _require_data()
    raw = pd.read_parquet(CRYPTO)
    raw = raw[raw["symbol"] == symbol].set_index("date").sort_index()
    return raw.loc[start:end]
