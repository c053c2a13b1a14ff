"""The yfinance source through the real yfinance parser, with Yahoo's HTTP layer replaced.

Requests are counted at the HTTP boundary (``YfData.get``/``cache_get``).
"""

from __future__ import annotations

import threading
import time
from functools import partialmethod
from pathlib import Path

import pandas as pd
import pytest

from hybrid_core.builtin.yfinance_data import YFinanceBars
from hybrid_core.errors import DataError
from hybrid_core.plugins import build_plugin_host

SYMBOLS = ["AAPL", "MSFT", "BRK.B", "BTC/USD", "ETH/USD"]


def make_source(tmp_path: Path, now: str, **params) -> YFinanceBars:  # type: ignore[no-untyped-def]
    clock = {"now": pd.Timestamp(now, tz="UTC")}
    source = YFinanceBars(YFinanceBars.Params(cache_dir=str(tmp_path / "bars"), progress=False, **params),
                          clock=lambda: clock["now"])
    source.set_now = lambda value: clock.__setitem__("now", pd.Timestamp(value, tz="UTC"))  # type: ignore[attr-defined]
    return source


def direct(raw: pd.DataFrame, start: str, end: str) -> pd.DataFrame:
    """Expected bars computed from the fixture, independently of the source."""
    raw = raw[raw["date"].between(start, end)].dropna(subset=["close"])
    factor = raw["adj_close"] / raw["close"]
    return pd.DataFrame({"symbol": raw["symbol"].astype(str), "date": raw["date"],
                         "close": raw["adj_close"], "low": raw["low"] * factor}
                        ).sort_values(["symbol", "date"], ignore_index=True)


def test_registered_as_a_builtin_data_source() -> None:
    host = build_plugin_host(load_entry_points=False)
    assert host.registry.get("data_source", "yfinance").factory is YFinanceBars


def test_second_run_fetches_only_missing_days(fake_yahoo, tmp_path: Path, raw_bars) -> None:  # type: ignore[no-untyped-def]
    source = make_source(tmp_path, "2020-10-30 22:00", lookback_days=120)
    first = source.fetch(SYMBOLS, None, None)
    assert len(fake_yahoo.history_requests) == len(SYMBOLS)  # one chart request per ticker
    assert sorted(t for t, _ in fake_yahoo.history_requests) == sorted(
        ["AAPL", "MSFT", "BRK-B", "BTC-USD", "ETH-USD"])
    assert first["date"].min() == pd.Timestamp("2020-07-02")

    fake_yahoo.requests.clear()
    again = source.fetch(SYMBOLS, None, None)  # same evening: equities complete, crypto's day not
    assert sorted(t for t, _ in fake_yahoo.history_requests) == ["BTC-USD", "ETH-USD"]
    pd.testing.assert_frame_equal(again, first)

    fake_yahoo.requests.clear()
    source.set_now("2020-11-06 22:00")  # a week later
    later = source.fetch(SYMBOLS, None, None)
    history = fake_yahoo.history_requests
    assert len(history) == len(SYMBOLS)
    # only the days after the last complete one (crypto: 10-29), plus a 5-day overlap, were asked for
    for _ticker, params in history:
        assert pd.Timestamp(params["period1"], unit="s", tz="UTC") >= pd.Timestamp("2020-10-24", tz="UTC")
    assert sorted(source.last_report.incremental) == sorted(SYMBOLS)
    want = direct(raw_bars[raw_bars["symbol"].isin(SYMBOLS)], "2020-07-09", "2020-11-06")
    got = later[["symbol", "date", "close", "low"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want, check_dtype=False, check_exact=False, rtol=1e-9)

    fake_yahoo.requests.clear()
    source.set_now("2020-11-08 12:00")  # Sunday: crypto moved on, the NYSE did not
    source.fetch(["AAPL", "MSFT", "BRK.B"], pd.Timestamp("2020-10-01"), pd.Timestamp("2020-11-06"))
    assert fake_yahoo.requests == []


def test_a_split_readjustment_refetches_the_symbol(fake_yahoo, tmp_path: Path, raw_bars) -> None:  # type: ignore[no-untyped-def]
    # before AAPL's 4:1 split of 2020-08-31, Yahoo's adjusted history was 4x today's
    before = raw_bars[raw_bars["date"] <= "2020-08-28"].copy()
    aapl = before["symbol"] == "AAPL"
    for col in ("open", "high", "low", "close", "adj_close"):
        before.loc[aapl, col] *= 4
    fake_yahoo.bars = before
    source = make_source(tmp_path, "2020-08-28 22:00")
    source.fetch(["AAPL", "MSFT"], pd.Timestamp("2020-06-01"), None)
    assert source.cache.read("AAPL")["close"].iloc[-1] > 400

    fake_yahoo.bars = raw_bars
    fake_yahoo.requests.clear()
    source.set_now("2020-09-04 22:00")
    bars = source.fetch(["AAPL", "MSFT"], pd.Timestamp("2020-06-01"), None)
    report = source.last_report
    assert report.readjusted == ["AAPL"] and report.incremental == ["MSFT"]
    aapl_requests = [p for t, p in fake_yahoo.history_requests if t == "AAPL"]
    assert len(aapl_requests) == 2  # the overlap check, then the whole window again
    refetch_from = pd.Timestamp(aapl_requests[-1]["period1"], unit="s", tz="UTC")
    assert refetch_from < pd.Timestamp("2020-06-02", tz="UTC")
    want = direct(raw_bars[raw_bars["symbol"] == "AAPL"], "2020-06-01", "2020-09-04")
    got = bars[bars["symbol"] == "AAPL"][["symbol", "date", "close", "low"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want, check_dtype=False, check_exact=False, rtol=1e-9)


def test_unknown_ticker_raises_naming_it(fake_yahoo, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    source = make_source(tmp_path, "2020-10-30 22:00", lookback_days=30)
    # the symbol, then yfinance's own reason (it only logs it)
    with pytest.raises(DataError, match=r"no bars for 1 symbol\(s\): ZZZZ \(yfinance: \['ZZZZ'\]: "):
        source.fetch(["AAPL", "ZZZZ"], None, None)
    assert source.cache.meta("AAPL") is not None  # the good symbol was cached anyway


def test_unknown_ticker_warns_and_goes_on_when_asked(fake_yahoo, tmp_path: Path, log_lines) -> None:  # type: ignore[no-untyped-def]
    source = make_source(tmp_path, "2020-10-30 22:00", lookback_days=30, on_missing="warn")
    bars = source.fetch(["AAPL", "ZZZZ", "BTC/USD"], None, None)
    assert sorted(bars["symbol"].unique()) == ["AAPL", "BTC/USD"]
    assert any("ZZZZ" in line and "no bars" in line for line in log_lines)


def test_every_ticker_failing_raises(fake_yahoo, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    source = make_source(tmp_path, "2020-10-30 22:00", lookback_days=30)
    with pytest.raises(DataError, match="YYYY, ZZZZ"):
        source.fetch(["YYYY", "ZZZZ"], None, None)


def test_a_hanging_yahoo_is_cut_off(fake_yahoo, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    fake_yahoo.hang_s = 3.0
    source = make_source(tmp_path, "2020-10-30 22:00", lookback_days=30, call_timeout_s=0.3)
    started = time.monotonic()
    with pytest.raises(DataError, match=r"did not answer within 0\.3 s"):
        source.fetch(["AAPL"], None, None)
    assert time.monotonic() - started < 2.0
    fake_yahoo.release.set()  # let the abandoned worker finish while Yahoo is still faked
    for thread in threading.enumerate():
        if thread.name.startswith("hybrid-bounded"):
            thread.join(5)


def test_batches_and_progress_bar(fake_yahoo, tmp_path: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    source = make_source(tmp_path, "2020-10-30 22:00", lookback_days=30, batch_size=2)
    source.params.progress = True
    from hybrid_core.data import updater

    monkeypatch.setattr(updater.CacheUpdater, "__init__", partialmethod(
        updater.CacheUpdater.__init__, progress_min_symbols=1))
    report = source.update(SYMBOLS)
    assert report.requests == 3  # 5 symbols in batches of 2
    assert sorted(report.full) == sorted(SYMBOLS)
    assert "yfinance bars" in capsys.readouterr().err  # tqdm, on stderr


def test_unsettled_bars_can_be_left_out(fake_yahoo, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # 2020-10-30 20:00 UTC = 16:00 New York: neither Friday's equity bar (not settled) nor the
    # crypto day in progress is final
    source = make_source(tmp_path, "2020-10-30 20:00", lookback_days=30, include_unsettled=False)
    bars = source.fetch(["AAPL", "BTC/USD"], None, None)
    last = bars.groupby("symbol")["date"].max()
    assert last["AAPL"] == pd.Timestamp("2020-10-29") and last["BTC/USD"] == pd.Timestamp("2020-10-29")
    source.params.include_unsettled = True
    last = source.fetch(["AAPL", "BTC/USD"], None, None).groupby("symbol")["date"].max()
    assert last["AAPL"] == pd.Timestamp("2020-10-30") and last["BTC/USD"] == pd.Timestamp("2020-10-30")


def test_asking_for_older_history_refetches_the_window(fake_yahoo, tmp_path: Path, raw_bars) -> None:  # type: ignore[no-untyped-def]
    source = make_source(tmp_path, "2020-10-30 22:00", lookback_days=30)
    source.fetch(["MSFT"], None, None)
    fake_yahoo.requests.clear()
    bars = source.fetch(["MSFT"], pd.Timestamp("2020-06-01"), pd.Timestamp("2020-10-30"))
    assert source.last_report.full == ["MSFT"]
    assert pd.Timestamp(fake_yahoo.history_requests[0][1]["period1"], unit="s", tz="UTC") < pd.Timestamp(
        "2020-06-02", tz="UTC")
    want = direct(raw_bars[raw_bars["symbol"] == "MSFT"], "2020-06-01", "2020-10-30")
    pd.testing.assert_frame_equal(bars[["symbol", "date", "close", "low"]], want, check_dtype=False,
                                  check_exact=False, rtol=1e-9)
    assert source.cache.meta("MSFT").covered_from == pd.Timestamp("2020-06-01")
