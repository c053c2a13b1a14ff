"""The Parquet reader reads only what a run needs, and gives exactly what reading everything would.

Row groups whose statistics exclude the wanted symbols and dates are never decoded; the rows
kept from the others are the rows a full read filtered afterwards would keep, for every kind
of date and symbol column a bar file may have.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hybrid_core.data.files import read_bars_file

SYMBOLS = ["AAPL", "BRK.B", "KO", "MSFT", "XOM", "ZTS"]


def long_bars(seed: int = 3) -> pd.DataFrame:
    """A year of raw bars for SYMBOLS on business days, one row a symbol and day."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2020-01-01", "2020-12-31")
    frame = pd.DataFrame([(s, d) for s in SYMBOLS for d in dates], columns=["symbol", "date"])
    close = 50 + rng.random(len(frame)) * 50
    frame["open"], frame["high"], frame["low"], frame["close"] = close * 1.01, close * 1.03, close * 0.97, close
    frame["adj_close"] = close * 0.9
    frame["volume"] = rng.integers(1_000, 9_000, len(frame))
    return frame


def write(frame: pd.DataFrame, path: Path, *, sort: list[str], group_rows: int, date: str = "us",
          symbol: str = "string") -> Path:
    """``frame`` as Parquet, sorted by ``sort``, row groups of ``group_rows`` rows, the date column
    as ``date`` (``us``, ``utc``, ``date32`` or ``text``) and the symbol column as ``symbol``."""
    frame = frame.sort_values(sort, kind="stable").reset_index(drop=True)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    dates = {"us": lambda v: pa.array(v, type=pa.timestamp("us")),
             "utc": lambda v: pa.array(pd.DatetimeIndex(v).tz_localize("America/New_York") + pd.Timedelta(hours=16),
                                       type=pa.timestamp("us", tz="America/New_York")),
             "date32": lambda v: pa.array(pd.DatetimeIndex(v).date, type=pa.date32()),
             "text": lambda v: pa.array(pd.DatetimeIndex(v).strftime("%Y-%m-%d"), type=pa.string())}[date]
    symbols = {"string": pa.string(), "large_string": pa.large_string(),
               "dictionary": pa.dictionary(pa.int32(), pa.string())}[symbol]
    table = table.set_column(table.schema.get_field_index("date"), "date", dates(frame["date"]))
    table = table.set_column(0, "symbol", pa.array(frame["symbol"], type=pa.string()).cast(symbols))
    pq.write_table(table, path, row_group_size=group_rows)
    return path


def filtered(everything: pd.DataFrame, symbols: list[str] | None, start: str | None, end: str | None) -> pd.DataFrame:
    """What a run asks for, cut out of a whole read."""
    keep = np.ones(len(everything), dtype=bool)
    if symbols is not None:
        keep &= everything["symbol"].astype(str).isin([*symbols, ""]).to_numpy()
    if start is not None:
        keep &= (everything["date"] >= pd.Timestamp(start)).to_numpy()
    if end is not None:
        keep &= (everything["date"] <= pd.Timestamp(end)).to_numpy()
    return everything.loc[keep]


def same_bars(got: pd.DataFrame, want: pd.DataFrame) -> None:
    def plain(frame: pd.DataFrame) -> pd.DataFrame:
        out = frame.assign(symbol=frame["symbol"].astype(str))
        return out.sort_values(["symbol", "date"]).reset_index(drop=True)

    pd.testing.assert_frame_equal(plain(got), plain(want), check_dtype=False, check_categorical=False)


@pytest.mark.parametrize("date", ["us", "utc", "date32", "text"])
@pytest.mark.parametrize("symbol", ["string", "large_string", "dictionary"])
@pytest.mark.parametrize("sort", [["date", "symbol"], ["symbol", "date"]])
def test_a_filtered_read_is_a_whole_read_filtered(tmp_path: Path, date: str, symbol: str, sort: list[str]) -> None:
    path = write(long_bars(), tmp_path / "bars.parquet", sort=sort, group_rows=97, date=date, symbol=symbol)
    everything = read_bars_file(path)
    assert len(everything) == len(SYMBOLS) * len(pd.bdate_range("2020-01-01", "2020-12-31"))
    for symbols, start, end in [(["KO", "ZTS", "NEWCO"], "2020-03-02", "2020-03-31"),
                                (None, "2020-12-15", None), (["AAPL"], None, "2020-01-10"),
                                (SYMBOLS, "2020-06-06", "2020-06-07"),  # a weekend: nothing
                                (["BRK.B", "MSFT"], "2020-02-01", "2020-11-30")]:
        got = read_bars_file(path, symbols, start, end)
        same_bars(got, filtered(everything, symbols, start, end))


def test_row_groups_outside_the_request_are_never_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file sorted by date, 6 weeks a row group: a month of bars reads two or three groups of nine."""
    path = write(long_bars(), tmp_path / "bars.parquet", sort=["date", "symbol"], group_rows=6 * 30)
    groups = pq.ParquetFile(path).metadata.num_row_groups
    assert groups >= 9
    read: list[int] = []
    real = pq.ParquetFile.read_row_group

    def counting(self, i, *args, **kwargs):  # type: ignore[no-untyped-def]
        read.append(i)
        return real(self, i, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "read_row_group", counting)
    bars = read_bars_file(path, ["KO", "XOM"], "2020-05-01", "2020-05-29")
    assert set(bars["symbol"].astype(str)) == {"KO", "XOM"} and bars["date"].dt.month.unique().tolist() == [5]
    assert 1 <= len(set(read)) <= 3
    read.clear()
    by_symbol = write(long_bars(), tmp_path / "by_symbol.parquet", sort=["symbol", "date"], group_rows=262)
    read_bars_file(by_symbol, ["AAPL"], None, None)  # AAPL's rows lie in the first group only
    assert set(read) == {0}


def test_nulls_blank_symbols_and_future_bars_reach_the_gate(tmp_path: Path) -> None:
    """What the gate must see is kept by the pushdown: a missing volume (NaN), a row without a
    symbol (it could be anyone's), a bar dated after today (the file's dates are wrong)."""
    frame = long_bars().iloc[:40].copy()
    frame["volume"] = frame["volume"].astype("float64")
    frame.loc[3, "volume"] = np.nan
    frame.loc[5, "symbol"] = None
    future = pd.Timestamp.now().normalize() + pd.Timedelta(days=30)
    frame.loc[7, "date"] = future
    path = tmp_path / "odd.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=8)
    bars = read_bars_file(path, ["AAPL"], "2020-01-01", "2020-01-31")
    assert np.isnan(bars["volume"]).sum() == 1
    assert "" in set(bars["symbol"].astype(str))
    assert future in set(bars["date"])


@pytest.mark.parametrize("date", ["us", "utc", "date32"])
def test_a_date_sorted_file_reads_row_for_row_as_its_csv(tmp_path: Path, date: str) -> None:
    """The reader puts a date-sorted file's rows in (symbol, session) order itself: the same frame,
    row for row, as the CSV path's sort gives, repeated bars of one session in file order."""
    frame = long_bars().iloc[::7].reset_index(drop=True)  # a few symbols' bars, shuffled order of symbols
    again = frame.iloc[[2, 5]].copy()
    again["close"] = again["close"] + 1.0  # the same symbol and session twice, as in a bad file
    frame = pd.concat([frame, again], ignore_index=True)
    path = write(frame, tmp_path / "bars.parquet", sort=["date"], group_rows=13, date=date)
    as_written = pq.read_table(path).to_pandas()
    csv = tmp_path / "bars.csv"
    as_written.assign(date=pd.to_datetime(frame.sort_values(["date"], kind="stable")["date"]).dt.strftime(
        "%Y-%m-%d").to_numpy()).to_csv(csv, index=False)
    for symbols, start, end in [(None, None, None), (["KO", "ZTS", "AAPL"], "2020-02-01", "2020-10-31")]:
        got = read_bars_file(path, symbols, start, end)
        want = read_bars_file(csv, symbols, start, end)
        assert len(got) > 10
        pd.testing.assert_frame_equal(got.assign(symbol=got["symbol"].astype(str)),
                                      want.assign(symbol=want["symbol"].astype(str)), check_dtype=False)


def test_row_groups_inside_the_window_keep_every_dated_row_and_no_undated_one(tmp_path: Path) -> None:
    """A row group whose date statistics lie inside the window is taken without a per-row date
    test, but only when it has no row without a date: such a row is not kept when dates are cut."""
    frame = long_bars().iloc[:60].copy()  # AAPL's first 60 sessions of 2020, 12 a row group
    frame.loc[20, "date"] = pd.NaT
    path = tmp_path / "bars.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=12)
    dated = frame.dropna(subset=["date"])
    for start, end in [("2020-01-01", "2020-12-31"), ("2020-01-20", "2020-03-05")]:
        got = read_bars_file(path, ["AAPL"], start, end)
        want = dated[(dated["date"] >= start) & (dated["date"] <= end)]
        assert got["date"].notna().all()
        assert got["date"].tolist() == want["date"].tolist()


@pytest.mark.parametrize("layout", ["by_date", "by_symbol", "shuffled", "integers"])
@pytest.mark.parametrize("window", [(None, None, None), (["KO", "ZTS", "AAPL"], "2020-02-01", "2020-10-31")])
def test_prices_are_adjusted_bit_for_bit_as_whole_columns(
        tmp_path: Path, layout: str, window: tuple[list[str] | None, str | None, str | None]) -> None:
    """The reader adjusts each row group's prices as it places them: the same bits as the rule of
    STRATEGIES.md applied to whole columns (open/high/low * adj_close / close, close = adj_close),
    for rows put in order, rows kept in file order and integer prices, with a missing adj_close
    and a zero close among them."""
    frame = long_bars()
    frame.loc[10, "adj_close"] = np.nan
    frame.loc[11, "close"] = 0.0
    if layout == "integers":
        for column in ("open", "high", "low", "close", "adj_close"):
            frame[column] = (frame[column] * 100).round().astype("Int64")  # adj_close's NaN: a null
    if layout == "shuffled":
        frame = frame.sample(frac=1.0, random_state=5).reset_index(drop=True)
        path = tmp_path / "bars.parquet"
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=101)
    else:
        path = write(frame, tmp_path / "bars.parquet", sort=["symbol", "date"] if layout == "by_symbol" else ["date"],
                     group_rows=101)
    symbols, start, end = window
    raw = filtered(pq.read_table(path).to_pandas(), symbols, start, end)
    raw = raw.sort_values(["symbol", "date"], kind="stable").reset_index(drop=True)
    def floats(column: str) -> np.ndarray:
        return raw[column].to_numpy(dtype="float64", na_value=np.nan)

    with np.errstate(divide="ignore", invalid="ignore"):
        factor = floats("adj_close") / floats("close")
    want = {c: floats(c) * factor for c in ("open", "high", "low")}
    want["close"] = floats("adj_close")
    got = read_bars_file(path, symbols, start, end)
    assert "adj_close" not in got.columns and len(got) == len(raw) > 100
    assert got["symbol"].astype(str).tolist() == raw["symbol"].tolist()
    for column, values in want.items():
        np.testing.assert_array_equal(got[column].to_numpy().view(np.int64), values.view(np.int64))  # the bits
