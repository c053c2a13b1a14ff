"""Helpers shared by the parity tests (a module of its own: ``from conftest import`` would
depend on which folder's conftest.py pytest imported last)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO.parent / "shared" / "data"


def equity_symbols(n: int) -> list[str]:
    """The first ``n`` symbols of the shared S&P 500 file, alphabetically (as the reference does)."""
    symbols = pd.read_parquet(SHARED_DATA / "sp500_daily.parquet", columns=["symbol"])["symbol"].unique()
    return sorted(str(s) for s in symbols)[:n]
