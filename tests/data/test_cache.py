"""BarCache: coverage metadata, many-symbol reads, atomic writes that survive a failed write."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from hybrid_core.data import cache as cache_module
from hybrid_core.data.cache import BarCache
from hybrid_core.data.normalise import normalise_bars


@pytest.fixture
def bars(raw_bars) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    return normalise_bars(raw_bars, source="fixture")


def test_write_read_and_meta(tmp_path: Path, bars: pd.DataFrame) -> None:
    cache = BarCache(tmp_path)
    btc = bars[bars["symbol"] == "BTC/USD"].reset_index(drop=True)
    cache.write("BTC/USD", btc, pd.Timestamp("2020-05-01"), pd.Timestamp("2020-11-29"), "test")
    assert cache.path_for("BTC/USD").name == "BTC_USD.parquet"
    meta = cache.meta("BTC/USD")
    assert (meta.covered_from, meta.complete_to) == (pd.Timestamp("2020-05-01"), pd.Timestamp("2020-11-29"))
    pd.testing.assert_frame_equal(cache.read("BTC/USD"), btc, check_dtype=False)
    assert cache.meta("ETH/USD") is None and cache.read("ETH/USD").empty


def test_read_many_filters_dates(tmp_path: Path, bars: pd.DataFrame) -> None:
    cache = BarCache(tmp_path)
    for symbol, rows in bars.groupby("symbol"):
        cache.write(str(symbol), rows, rows["date"].min(), rows["date"].max())
    got = cache.read_many(["MSFT", "ETH/USD", "NOPE"], pd.Timestamp("2020-07-01"), pd.Timestamp("2020-07-31"))
    want = bars[bars["symbol"].isin(["MSFT", "ETH/USD"]) & bars["date"].between("2020-07-01", "2020-07-31")]
    pd.testing.assert_frame_equal(got, want.reset_index(drop=True), check_dtype=False)
    status = cache.status()
    assert status["symbol"].tolist() == sorted(bars["symbol"].unique())
    msft = status.set_index("symbol").loc["MSFT"]
    n_msft = int((bars["symbol"] == "MSFT").sum())
    assert (msft["first"], msft["rows"]) == (pd.Timestamp("2020-06-01").date(), n_msft)


def test_a_write_that_fails_midway_leaves_the_old_file(tmp_path: Path, bars: pd.DataFrame,
                                                      monkeypatch) -> None:  # type: ignore[no-untyped-def]
    cache = BarCache(tmp_path)
    aapl = bars[bars["symbol"] == "AAPL"].reset_index(drop=True)
    cache.write("AAPL", aapl.iloc[:50], aapl["date"].min(), aapl["date"].iloc[49])
    real_write = pq.write_table

    def crash_midway(table, where, **kwargs):  # type: ignore[no-untyped-def]
        real_write(table, where, **kwargs)  # bytes reach the temporary file...
        where.truncate(where.tell() // 2)   # ...half of them survive
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cache_module.pq, "write_table", crash_midway)
    with pytest.raises(OSError, match="No space left"):
        cache.write("AAPL", aapl, aapl["date"].min(), aapl["date"].max())
    monkeypatch.setattr(cache_module.pq, "write_table", real_write)
    assert len(cache.read("AAPL")) == 50  # the previous version, intact
    assert cache.meta("AAPL").complete_to == aapl["date"].iloc[49]
    assert list(tmp_path.glob("*.tmp")) == [] and list(tmp_path.glob(".*.tmp")) == []


def test_killed_writer_leftovers_are_ignored_then_swept(tmp_path: Path, bars: pd.DataFrame) -> None:
    cache = BarCache(tmp_path)
    msft = bars[bars["symbol"] == "MSFT"]
    cache.write("MSFT", msft, msft["date"].min(), msft["date"].max())
    stray = tmp_path / ".MSFT.parquet.abc123.tmp"
    stray.write_bytes(b"PAR1 torn")
    assert cache.symbols() == ["MSFT"]
    with cache.locked():
        pass
    assert not stray.exists()


def test_an_unreadable_cache_file_says_how_to_recover(tmp_path: Path) -> None:
    cache = BarCache(tmp_path)
    cache.path_for("XOM").write_bytes(b"not parquet")
    with pytest.raises(Exception, match="delete it and run `hybrid data update`"):
        cache.read("XOM")
