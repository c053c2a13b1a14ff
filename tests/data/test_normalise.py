"""normalise_bars on yfinance, Alpaca and long frames; align_for_valuation; symbol mapping."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hybrid_core.contracts import Panel
from hybrid_core.data.normalise import align_for_valuation, normalise_bars
from hybrid_core.data.symbols import from_yahoo, to_yahoo, yahoo_map
from hybrid_core.errors import DataError

CANONICAL = ["symbol", "date", "open", "high", "low", "close", "volume"]


def expected_adjusted(raw: pd.DataFrame) -> pd.DataFrame:
    """STRATEGIES.md adjustment computed here, independently of the code under test."""
    raw = raw.dropna(subset=["open", "high", "low", "close", "adj_close"])
    factor = raw["adj_close"] / raw["close"]
    out = pd.DataFrame({"symbol": raw["symbol"].astype(str), "date": raw["date"],
                        "open": raw["open"] * factor, "high": raw["high"] * factor,
                        "low": raw["low"] * factor, "close": raw["adj_close"],
                        "volume": raw["volume"]})
    return out.sort_values(["symbol", "date"], ignore_index=True)


def assert_canonical(bars: pd.DataFrame) -> None:
    assert list(bars.columns) == CANONICAL
    for col in CANONICAL[2:]:
        assert bars[col].dtype == np.float64, col
    assert bars["date"].dt.tz is None
    assert (bars["date"] == bars["date"].dt.normalize()).all()
    assert not bars.duplicated(["symbol", "date"]).any()
    assert bars.equals(bars.sort_values(["symbol", "date"], ignore_index=True))


@pytest.mark.parametrize(("hybrid", "yahoo"), [("BTC/USD", "BTC-USD"), ("ETH/USD", "ETH-USD"),
                                               ("BRK.B", "BRK-B"), ("BF.B", "BF-B"), ("AAPL", "AAPL")])
def test_symbols_map_both_ways(hybrid: str, yahoo: str) -> None:
    assert to_yahoo(hybrid) == yahoo
    assert from_yahoo(yahoo) == hybrid


def test_yfinance_frame_is_adjusted_like_the_contract(fake_yahoo, raw_bars) -> None:  # type: ignore[no-untyped-def]
    import yfinance as yf

    symbols = ["AAPL", "BRK.B", "BTC/USD"]
    mapping = yahoo_map(symbols)
    frame = yf.download(list(mapping), start="2020-08-03", end="2020-09-30", auto_adjust=False,
                        progress=False, threads=False)
    assert list(frame.columns.names) == ["Price", "Ticker"]
    bars = normalise_bars(frame, symbol_map=mapping, source="yfinance")
    assert_canonical(bars)
    window = raw_bars[(raw_bars["symbol"].isin(symbols)) & (raw_bars["date"] >= "2020-08-03")
                      & (raw_bars["date"] < "2020-09-30")]
    expected = expected_adjusted(window)
    pd.testing.assert_frame_equal(bars.reset_index(drop=True), expected, check_dtype=False,
                                  check_exact=False, rtol=1e-9)
    # the AAPL 4:1 split of 2020-08-31 does not show as a jump in adjusted prices
    aapl = bars[bars["symbol"] == "AAPL"].set_index("date")["close"]
    assert abs(aapl["2020-08-31"] / aapl["2020-08-28"] - 1) < 0.1


def test_yfinance_auto_adjust_and_group_by_give_the_same_bars(fake_yahoo) -> None:  # type: ignore[no-untyped-def]
    import yfinance as yf

    mapping = yahoo_map(["AAPL", "MSFT"])
    ours = normalise_bars(yf.download(list(mapping), start="2020-08-03", end="2020-09-30",
                                      auto_adjust=False, progress=False), symbol_map=mapping)
    theirs = normalise_bars(yf.download(list(mapping), start="2020-08-03", end="2020-09-30",
                                        auto_adjust=True, progress=False), symbol_map=mapping)
    pd.testing.assert_frame_equal(ours, theirs, check_exact=False, rtol=1e-9)
    by_ticker = yf.download(list(mapping), start="2020-08-03", end="2020-09-30", auto_adjust=False,
                            progress=False, group_by="ticker")
    assert list(by_ticker.columns.names) == ["Ticker", "Price"]
    pd.testing.assert_frame_equal(normalise_bars(by_ticker, symbol_map=mapping), ours)


def test_alpaca_frame_uses_utc_session_dates(raw_bars) -> None:  # type: ignore[no-untyped-def]
    raw = raw_bars[raw_bars["symbol"].isin(["MSFT", "ETH/USD"])].dropna().head(40)
    # alpaca-py BarSet.df: (symbol, timestamp UTC) index; equity day bars stamped 04:00 UTC,
    # crypto 05:00 UTC; adjustment=all already applied, so prices come as they are
    hours = np.where(raw["symbol"].str.contains("/"), 5, 4)
    stamps = pd.DatetimeIndex(raw["date"]).tz_localize("UTC") + pd.to_timedelta(hours, unit="h")
    index = pd.MultiIndex.from_arrays([raw["symbol"].to_numpy(), stamps], names=["symbol", "timestamp"])
    frame = pd.DataFrame({"open": raw["open"].to_numpy(), "high": raw["high"].to_numpy(),
                          "low": raw["low"].to_numpy(), "close": raw["close"].to_numpy(),
                          "volume": raw["volume"].to_numpy(), "trade_count": 1.0, "vwap": 1.0},
                         index=index).iloc[::-1]
    bars = normalise_bars(frame, source="alpaca")
    assert_canonical(bars)
    assert sorted(bars["date"].unique()) == sorted(pd.to_datetime(raw["date"]).unique())
    first = bars.iloc[0]
    src = raw.sort_values(["symbol", "date"]).iloc[0]
    assert (first["symbol"], first["date"], first["close"]) == (src["symbol"], src["date"], src["close"])


def test_long_frame_drops_bad_rows_logged_once_per_symbol(raw_bars, log_lines) -> None:  # type: ignore[no-untyped-def]
    btc = raw_bars[raw_bars["symbol"] == "BTC/USD"].copy()
    gaps = int(btc["close"].isna().sum())
    assert gaps >= 2  # the source's real lost days
    btc.loc[btc.index[5], "low"] = -1.0
    tenth = btc.iloc[10]
    dup = btc.iloc[[10]].assign(close=tenth["close"] * 1.01, adj_close=tenth["adj_close"] * 1.01)
    frame = pd.concat([btc, dup]).rename(columns={"adj_close": "Adj Close"})
    bars = normalise_bars(frame, source="unit")
    assert_canonical(bars)
    normalise_bars(frame, source="unit")  # the next cycle reads the same rows: no second warning
    assert len(bars) == len(btc) - gaps - 1
    skip_lines = [line for line in log_lines if "skipped" in line]
    assert len(skip_lines) == 1 and "BTC/USD" in skip_lines[0] and f"{gaps + 1} row(s)" in skip_lines[0]
    row = bars[bars["date"] == btc.iloc[10]["date"]].iloc[0]
    assert row["close"] == pytest.approx(btc.iloc[10]["adj_close"] * 1.01)  # the last duplicate wins


def test_single_symbol_frame_needs_a_symbol() -> None:
    frame = pd.DataFrame({"Open": [1.0], "High": [2.0], "Low": [0.5], "Close": [1.5]},
                         index=pd.DatetimeIndex(["2021-01-04"], name="Date"))
    with pytest.raises(DataError, match="symbol="):
        normalise_bars(frame)
    assert normalise_bars(frame, symbol="SPY")["volume"].tolist() == [0.0]


def test_valuation_axis_carries_equity_closes_without_inventing_bars(raw_bars) -> None:  # type: ignore[no-untyped-def]
    bars = expected_adjusted(raw_bars[raw_bars["symbol"].isin(["AAPL", "BTC/USD"])])
    panel = Panel.from_long(bars)
    closes = align_for_valuation(panel.close)
    saturday = pd.Timestamp("2020-08-29")
    assert closes.at[saturday, "AAPL"] == panel.close.at[pd.Timestamp("2020-08-28"), "AAPL"]
    assert closes.at[saturday, "BTC/USD"] == panel.close.at[saturday, "BTC/USD"]
    assert pd.isna(panel.close.at[saturday, "AAPL"])  # the strategies' panel is untouched
    assert panel.select(["AAPL"]).close.index.day_of_week.max() <= 4
    assert closes.notna().all().all()
    early = align_for_valuation(bars, dates=pd.DatetimeIndex(["2020-05-31", "2020-06-02"]))
    assert pd.isna(early.at[pd.Timestamp("2020-05-31"), "AAPL"])
