"""Bars for plugin tests: the small real sample bundled with hybrid, a synthetic panel, and where the
large shared reference data is."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import sample
from ..contracts import Panel, is_crypto
from ..errors import DataError

SHARED_DATA_ENV = "HYBRID_SHARED_DATA"

DEFAULT_SYNTHETIC_SYMBOLS = ("AAA", "BBB", "CCC", "DDD", "EEE", "FFF", "GGG", "HHH", "III", "JJJ",
                             "BTC/USD", "ETH/USD")


def sample_bars_path() -> Path:
    """The bundled sample's bar file (package data of hybrid-core, found wherever it is installed)."""
    return sample.bars_path()


def source_checkout() -> Path | None:
    """The source checkout hybrid-core runs from (an editable install), or None (a wheel install)."""
    package = Path(sample.__file__).resolve().parents[1]
    root = package.parents[1]
    if package.parent.name == "src" and (root / "pyproject.toml").is_file():
        return root
    return None


def shared_data_dir() -> Path:
    """The large reference data: ``$HYBRID_SHARED_DATA``, else ``../shared/data`` beside a source checkout.

    Only hybrid's own reference and slow tests need it (S&P 500 and crypto history, reference
    trades); nothing else in the kit does. Raises :class:`DataError` when hybrid-core is
    installed from a wheel and the variable is not set.
    """
    override = os.environ.get(SHARED_DATA_ENV, "").strip()
    if override:
        return Path(override).expanduser()
    checkout = source_checkout()
    if checkout is None:
        raise DataError(f"the shared reference data (../shared/data) is only found beside a hybrid source "
                        f"checkout; set {SHARED_DATA_ENV} to its folder (sample_panel() and sample_bars() "
                        f"need no shared data)")
    return checkout.parent / "shared" / "data"


def sample_bars(symbols: Sequence[str] | None = None, start: Any = None, end: Any = None) -> pd.DataFrame:
    """The sample as a canonical long frame (adjusted prices), optionally filtered."""
    from ..data.files import read_bars_file
    from ..data.quality import gate_bars

    frame = read_bars_file(sample_bars_path(), list(symbols) if symbols is not None else None,
                           pd.Timestamp(start) if start is not None else None,
                           pd.Timestamp(end) if end is not None else None)
    bars = gate_bars(frame, policy="drop", origin=str(sample_bars_path())).bars
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
