"""to_feeds: one PandasData per symbol, on the symbol's own sessions, rows without prices left out."""

from __future__ import annotations

import backtrader as bt
import numpy as np
import pandas as pd
import pytest
from hybrid_backtrader_bridge import to_feeds
from hybrid_backtrader_bridge.feeds import HybridBars, session_numbers
from loguru import logger

from hybrid_core.contracts import Panel
from hybrid_core.errors import DataError


def long_bars() -> pd.DataFrame:
    """An equity on NYSE sessions (Mon-Fri, 2021-01-04..15) and BTC/USD every day, canonical long form."""
    rows = []
    for i, day in enumerate(pd.date_range("2021-01-04", "2021-01-15", freq="D")):
        rows.append(("BTC/USD", day, 30000.0 + i, 30500.0 + i, 29500.0 + i, 30100.0 + i, 10.5))
        if day.day_of_week < 5:
            rows.append(("AAPL", day, 130.0 + i, 131.0 + i, 129.0 + i, 130.5 + i, 1e6))
    return pd.DataFrame(rows, columns=["symbol", "date", "open", "high", "low", "close", "volume"])


def lines(feed: bt.feeds.PandasData) -> dict[str, list[float]]:
    feed.setenvironment(bt.Cerebro())
    feed._start()
    feed.preload()
    return {name: list(getattr(feed.lines, name).array) for name in
            ("datetime", "open", "high", "low", "close", "volume")}


def test_one_named_daily_feed_per_symbol_on_its_own_sessions() -> None:
    bars = long_bars()
    feeds = to_feeds(bars)
    assert [f._name for f in feeds] == ["AAPL", "BTC/USD"]
    assert all(isinstance(f, bt.feeds.PandasData) and f.p.timeframe == bt.TimeFrame.Days for f in feeds)
    aapl, btc = (lines(f) for f in feeds)
    assert len(aapl["close"]) == 10 and len(btc["close"]) == 12  # no weekend bars for the equity
    assert [bt.num2date(d).date() for d in aapl["datetime"]][4:6] == [pd.Timestamp("2021-01-08").date(),
                                                                     pd.Timestamp("2021-01-11").date()]
    expected = bars[bars["symbol"] == "AAPL"]
    for col in ("open", "high", "low", "close", "volume"):
        assert aapl[col] == expected[col].tolist()


def test_a_panel_and_its_long_frame_give_the_same_feeds_and_symbols_pick_them() -> None:
    bars = long_bars()
    panel = Panel.from_long(bars)
    assert [lines(f) for f in to_feeds(panel)] == [lines(f) for f in to_feeds(bars)]
    assert [f._name for f in to_feeds(panel, symbols=["BTC/USD"])] == ["BTC/USD"]
    with pytest.raises(DataError, match="no bars for MSFT"):
        to_feeds(panel, symbols=["BTC/USD", "MSFT"])
    with pytest.raises(DataError, match="lack column"):
        to_feeds(bars.drop(columns=["low"]))


def test_rows_without_all_prices_are_not_bars_and_are_logged_once() -> None:
    bars = long_bars()
    bad = (bars["symbol"] == "AAPL") & bars["date"].isin(pd.to_datetime(["2021-01-06", "2021-01-12"]))
    bars.loc[bad & (bars["date"] == "2021-01-06"), "open"] = np.nan
    bars.loc[bad & (bars["date"] == "2021-01-12"), "low"] = 0.0
    log_lines: list[str] = []
    sink = logger.add(lambda message: log_lines.append(str(message.record["message"])), level="DEBUG")
    try:
        (aapl, btc) = to_feeds(bars)
    finally:
        logger.remove(sink)
    dates = [bt.num2date(d).date().isoformat() for d in lines(aapl)["datetime"]]
    assert len(dates) == 8 and "2021-01-06" not in dates and "2021-01-12" not in dates
    assert len(lines(btc)["close"]) == 12
    warnings = [line for line in log_lines if "skipped" in line]
    assert warnings == ["to_feeds: AAPL: skipped 2 row(s) without a positive open, high, low and close "
                        "(first 2021-01-06); those days have no bar"]


def test_the_fast_loader_gives_the_lines_of_a_plain_pandasdata() -> None:
    for feed in to_feeds(long_bars()):
        assert isinstance(feed, HybridBars)
        plain = bt.feeds.PandasData(dataname=feed.p.dataname, openinterest=None)
        assert lines(feed) == lines(plain)


def test_session_numbers_are_backtraders_date2num() -> None:
    dates = pd.date_range("1999-11-01", "2021-04-21", freq="D")
    assert session_numbers(dates) == [bt.date2num(d.to_pydatetime()) for d in dates]
    noon = pd.DatetimeIndex(["2021-01-04 12:00"])
    assert session_numbers(noon) == [bt.date2num(noon[0].to_pydatetime())]
