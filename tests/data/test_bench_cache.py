"""Benchmark-sized case (slow): the whole S&P 500 set through the yfinance source and cache.

Run with ``pytest tests/data/test_bench_cache.py -m slow -s`` to see the figures.
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pytest
from yahoo_fake import FakeYahoo

from hybrid_core.builtin.yfinance_data import YFinanceBars
from hybrid_core.data.cache import BarCache

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


@pytest.mark.slow
def test_504_symbols_first_and_second_run(monkeypatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import yfinance as yf

    raw = pd.read_parquet(SHARED / "sp500_daily.parquet",
                          columns=["symbol", "date", "open", "high", "low", "close", "adj_close", "volume"],
                          filters=[("date", ">=", pd.Timestamp("2019-11-01"))])
    raw["symbol"] = raw["symbol"].astype(str)
    symbols = sorted(raw["symbol"].unique())
    yf.set_tz_cache_location(str(tmp_path / "yf-tz"))
    fake = FakeYahoo(raw).install(monkeypatch)
    now = {"t": pd.Timestamp("2021-04-14 22:00", tz="UTC")}
    source = YFinanceBars(YFinanceBars.Params(cache_dir=str(tmp_path / "bars"), lookback_days=400,
                                              progress=False), clock=lambda: now["t"])

    started = time.perf_counter()
    first = source.fetch(symbols, None, None)
    first_s = time.perf_counter() - started
    first_requests = len(fake.history_requests)

    fake.requests.clear()
    started = time.perf_counter()
    second = source.fetch(symbols, None, None)
    second_s = time.perf_counter() - started
    second_requests = len(fake.requests)

    fake.requests.clear()
    now["t"] = pd.Timestamp("2021-04-21 22:00", tz="UTC")
    started = time.perf_counter()
    third = source.fetch(symbols, None, None)
    third_s = time.perf_counter() - started
    third_requests = len(fake.history_requests)

    started = time.perf_counter()
    cached = BarCache(tmp_path / "bars").read_many(symbols)
    read_s = time.perf_counter() - started

    print(f"\n504 symbols, 400-day lookback: first run {first_requests} chart requests "
          f"{first_s:.1f}s ({len(first)} bars); same evening {second_requests} requests {second_s:.2f}s; "
          f"a week later {third_requests} requests {third_s:.1f}s; cache read {read_s:.3f}s "
          f"({len(cached)} bars)")
    assert first_requests == len(symbols) == 504
    assert second_requests == 0
    assert third_requests == len(symbols)
    pd.testing.assert_frame_equal(second, first)
    assert third["date"].max() == pd.Timestamp("2021-04-21")
