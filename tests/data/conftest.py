"""Fixtures of the data tests: the small real-bar fixture, a fake Yahoo, a loguru capture."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest
from loguru import logger

sys.path.insert(0, str(Path(__file__).resolve().parent))

from yahoo_fake import FIXTURE, FakeYahoo  # noqa: E402


@pytest.fixture
def raw_bars() -> pd.DataFrame:
    """Raw bars (symbol, date, OHLC, adj_close, volume) of 5 equities and 2 cryptos, Jun-Nov 2020."""
    return pd.read_parquet(FIXTURE)


@pytest.fixture
def fake_yahoo(monkeypatch, tmp_path, raw_bars) -> FakeYahoo:  # type: ignore[no-untyped-def]
    """Yahoo's chart API replaced by recorded-shape JSON from the fixture bars."""
    import yfinance as yf

    yf.set_tz_cache_location(str(tmp_path / "yf-tz"))
    return FakeYahoo(raw_bars).install(monkeypatch)


@pytest.fixture
def log_lines():  # type: ignore[no-untyped-def]
    """Messages logged through loguru at WARNING or above during the test."""
    from hybrid_core.data.quality import forget_logged_issues

    forget_logged_issues()
    lines: list[str] = []
    handler = logger.add(lambda m: lines.append(m.record["message"]), level="WARNING")
    yield lines
    logger.remove(handler)
