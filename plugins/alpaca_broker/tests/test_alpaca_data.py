"""The alpaca data source against the local server: pagination, dates, missing symbols."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from hybrid_alpaca_broker.data_source import AlpacaDataParams, AlpacaDataSource
from hybrid_alpaca_broker.testing import rate_limit_burst

from hybrid_core.errors import DataError

STOCKS = "/v2/stocks/bars"
CRYPTO = "/v1beta3/crypto/us/bars"


def synthetic_bars(symbols: list[str], dates: pd.DatetimeIndex, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i, symbol in enumerate(symbols):
        close = 100 * (i + 1) + rng.normal(0, 1, len(dates)).cumsum()
        rows.append(pd.DataFrame({"symbol": symbol, "date": dates, "open": close + 0.5, "high": close + 2,
                                  "low": close - 2, "close": close, "volume": 1000.0 + i}))
    return pd.concat(rows, ignore_index=True)


@pytest.fixture
def source(server, keys) -> AlpacaDataSource:
    return AlpacaDataSource(AlpacaDataParams(base_url=server.url, timeout=0.5, backoff=0.01, retry_budget=1.0))


def test_stock_bars_follow_pages_and_match_the_server(source, server, exchange):
    sessions = pd.bdate_range("2024-03-04", "2024-03-15")  # spans the US DST switch (2024-03-10)
    expected = synthetic_bars(["AAPL", "MSFT"], sessions)
    exchange.load_bars(expected)
    exchange.page_size = 3
    got = source.fetch(["MSFT", "AAPL"], pd.Timestamp("2024-03-01"), pd.Timestamp("2024-03-31"))
    assert server.count("GET", STOCKS) == int(np.ceil(len(expected) / 3))
    pd.testing.assert_frame_equal(got, expected.sort_values(["symbol", "date"], ignore_index=True),
                                  check_dtype=False)
    assert got["date"].dt.tz is None and (got["date"] == got["date"].dt.normalize()).all()
    _, _, query = next(r for r in server.exchange.requests if r[1] == STOCKS)
    assert (query["adjustment"], query["feed"], query["timeframe"]) == ("all", "iex", "1Day")


def test_start_and_end_are_inclusive(source, exchange):
    exchange.load_bars(synthetic_bars(["AAPL"], pd.bdate_range("2024-01-01", "2024-01-31")))
    got = source.fetch(["AAPL"], pd.Timestamp("2024-01-10"), pd.Timestamp("2024-01-12"))
    assert list(got["date"].dt.strftime("%Y-%m-%d")) == ["2024-01-10", "2024-01-11", "2024-01-12"]


def test_crypto_bars_need_no_keys_and_keep_pair_symbols(server, exchange, monkeypatch):
    monkeypatch.delenv("ALPACA_API_KEY", raising=False)
    monkeypatch.delenv("ALPACA_SECRET_KEY", raising=False)
    days = pd.date_range("2024-01-01", periods=10, freq="D")
    exchange.load_bars(synthetic_bars(["BTC/USD", "ETH/USD"], days))
    exchange.page_size = 4
    source = AlpacaDataSource(AlpacaDataParams(base_url=server.url))
    got = source.fetch(["BTC/USD", "ETH/USD"], None, pd.Timestamp("2024-01-10"))
    assert sorted(got["symbol"].unique()) == ["BTC/USD", "ETH/USD"] and len(got) == 20
    assert list(got.loc[got.symbol == "BTC/USD", "date"]) == list(days)
    assert server.count("GET", CRYPTO) == 5


def test_stock_bars_without_keys_raise_a_clear_data_error(server, monkeypatch):
    monkeypatch.delenv("ALPACA_API_KEY", raising=False)
    source = AlpacaDataSource(AlpacaDataParams(base_url=server.url))
    with pytest.raises(DataError, match="alpaca stock bars need keys: .*ALPACA_API_KEY"):
        source.fetch(["AAPL"], pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-31"))


def test_missing_symbols_are_skipped_with_a_log_or_refused(source, server, exchange, keys, logs):
    exchange.load_bars(synthetic_bars(["AAPL"], pd.bdate_range("2024-01-01", "2024-01-10")))
    got = source.fetch(["AAPL", "NOPE", "GONE"], pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-10"))
    assert set(got["symbol"]) == {"AAPL"}
    assert any("no bars for NOPE, GONE" in line and "skipped" in line for line in logs)
    strict = AlpacaDataSource(AlpacaDataParams(base_url=server.url, missing="error"))
    with pytest.raises(DataError, match="no bars for NOPE .*missing=error"):
        strict.fetch(["AAPL", "NOPE"], pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-10"))
    with pytest.raises(DataError, match="no bars for NOPE, GONE in 2024-01-01..2024-01-10"):
        source.fetch(["NOPE", "GONE"], pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-10"))


def test_rate_limited_bars_are_retried(source, server, exchange):
    exchange.load_bars(synthetic_bars(["AAPL"], pd.bdate_range("2024-01-01", "2024-01-10")))
    server.faults.add(rate_limit_burst(2, method="GET", path=STOCKS))
    assert len(source.fetch(["AAPL"], pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-10"))) == 8
    assert server.count("GET", STOCKS) == 3


def test_persistent_data_failure_is_one_data_error_within_the_retry_budget(source, server, exchange):
    server.faults.add(rate_limit_burst(100, method="GET", path=STOCKS))
    started = time.monotonic()
    with pytest.raises(DataError, match="alpaca bars for AAPL failed: HTTP 429"):
        source.fetch(["AAPL"], pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-10"))
    assert time.monotonic() - started < 3  # the fetch's retry budget is 1 s
    assert 3 <= server.count("GET", STOCKS) < 100


@pytest.mark.parametrize("now_utc, last_equity, last_crypto", [
    ("2024-03-15 19:00", "2024-03-14", "2024-03-14"),  # 15:00 New York: today's session still open
    ("2024-03-15 20:10", "2024-03-15", "2024-03-14"),  # 16:10 New York: equities done, UTC day not
    ("2024-03-16 00:05", "2024-03-15", "2024-03-15"),  # the UTC day has ended
])
def test_bars_still_in_progress_are_dropped(source, exchange, now_utc, last_equity, last_crypto):
    exchange.load_bars(synthetic_bars(["AAPL"], pd.bdate_range("2024-03-11", "2024-03-15")))
    exchange.load_bars(synthetic_bars(["BTC/USD"], pd.date_range("2024-03-11", "2024-03-16")))
    source.clock = lambda: pd.Timestamp(now_utc, tz="UTC")
    got = source.fetch(["AAPL", "BTC/USD"], pd.Timestamp("2024-03-11"), pd.Timestamp("2024-03-16"))
    last = got.groupby("symbol")["date"].max().dt.strftime("%Y-%m-%d").to_dict()
    assert last == {"AAPL": last_equity, "BTC/USD": last_crypto}
