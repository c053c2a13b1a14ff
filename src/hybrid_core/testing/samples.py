"""Bars for plugin tests: the small real sample bundled with hybrid, and a synthetic panel."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..contracts import Panel, is_crypto
from ..errors import DataError

REPO_ROOT = Path(__file__).resolve().parents[3]
"""The source checkout hybrid_core was installed from (editable installs)."""
SAMPLE_BARS_ENV = "HYBRID_SAMPLE_BARS"
SHARED_DATA_ENV = "HYBRID_SHARED_DATA"
SAMPLE_RELATIVE = Path("data") / "sample" / "bars.parquet"

DEFAULT_SYNTHETIC_SYMBOLS = ("AAA", "BBB", "CCC", "DDD", "EEE", "FFF", "GGG", "HHH", "III", "JJJ",
                             "BTC/USD", "ETH/USD")


def sample_bars_path() -> Path:
    """The bundled sample (``data/sample/bars.parquet``), or ``$HYBRID_SAMPLE_BARS``."""
    override = os.environ.get(SAMPLE_BARS_ENV, "").strip()
    path = Path(override).expanduser() if override else REPO_ROOT / SAMPLE_RELATIVE
    if not path.exists():
        raise DataError(f"sample bars not found at {path}; set {SAMPLE_BARS_ENV} to a long-format "
                        f"bar file, or use hybrid_core.testing.synthetic_panel()")
    return path


def sample_bars(symbols: Sequence[str] | None = None, start: Any = None, end: Any = None) -> pd.DataFrame:
    """The sample as a canonical long frame (adjusted prices), optionally filtered."""
    from ..builtin.local_data import adjust_and_clean, read_bar_file

    frame = read_bar_file(sample_bars_path(), list(symbols) if symbols is not None else None,
                          pd.Timestamp(start) if start is not None else None,
                          pd.Timestamp(end) if end is not None else None)
    bars = adjust_and_clean(frame, source="sample")
    bars["symbol"] = bars["symbol"].astype(str)
    return bars


def sample_panel(symbols: Sequence[str] | None = None, start: Any = None, end: Any = None) -> Panel:
    """The sample as a :class:`Panel`: 40 equities + BTC/USD, ETH/USD, 2020-01-02..2021-04-21."""
    return Panel.from_long(sample_bars(symbols, start, end))


def synthetic_panel(symbols: Sequence[str] = DEFAULT_SYNTHETIC_SYMBOLS, start: Any = "2020-01-02",
                    end: Any = "2020-12-31", seed: int = 0) -> Panel:
    """A deterministic random-walk panel: equities on NYSE sessions, crypto (``X/Y``) every day."""
    from ..calendars import nyse_sessions

    rng = np.random.default_rng(seed)
    sessions = nyse_sessions(start, end)
    days = pd.date_range(pd.Timestamp(start), pd.Timestamp(end), freq="D")
    rows = []
    for symbol in symbols:
        dates = days if is_crypto(symbol) else sessions
        returns = rng.normal(0.0, 0.02, len(dates))
        close = 100.0 * np.exp(np.cumsum(returns))
        open_ = close * np.exp(rng.normal(0.0, 0.005, len(dates)))
        spread = np.abs(rng.normal(0.0, 0.01, len(dates)))
        rows.append(pd.DataFrame({
            "symbol": symbol, "date": dates, "open": open_,
            "high": np.maximum(open_, close) * (1 + spread), "low": np.minimum(open_, close) * (1 - spread),
            "close": close, "volume": rng.integers(1_000, 1_000_000, len(dates)).astype("float64")}))
    return Panel.from_long(pd.concat(rows, ignore_index=True))
