"""read_bars_file: Parquet and CSV long files, and files holding an API error instead of prices."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from hybrid_core.data.files import read_bars_file
from hybrid_core.errors import DataError


def test_parquet_file_filtered_and_adjusted(raw_bars, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "bars.parquet"
    raw_bars.to_parquet(path, index=False)
    bars = read_bars_file(path, symbols=["AAPL", "ETH/USD"], start="2020-09-01", end="2020-09-30")
    assert set(bars["symbol"]) == {"AAPL", "ETH/USD"}
    assert bars["date"].min() >= pd.Timestamp("2020-09-01")
    assert bars["date"].max() <= pd.Timestamp("2020-09-30")
    src = raw_bars[(raw_bars["symbol"] == "AAPL") & (raw_bars["date"] == "2020-09-15")].iloc[0]
    got = bars[(bars["symbol"] == "AAPL") & (bars["date"] == "2020-09-15")].iloc[0]
    assert got["close"] == pytest.approx(src["adj_close"])
    assert got["high"] == pytest.approx(src["high"] * src["adj_close"] / src["close"])


def test_csv_file_round_trip(raw_bars, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "bars.csv"
    raw_bars[raw_bars["symbol"] == "MSFT"].to_csv(path, index=False)
    bars = read_bars_file(path)
    assert len(bars) == int((raw_bars["symbol"] == "MSFT").sum())
    assert bars["date"].dtype.kind == "M"


@pytest.mark.parametrize("body", [
    '{\n    "Error Message": "Invalid API call. Please retry or visit the documentation '
    '(https://www.alphavantage.co/documentation/) for TIME_SERIES_DAILY_ADJUSTED."\n}\n',
    '{"Note": "Thank you for using Alpha Vantage! Our standard API call frequency is 5 calls per minute."}',
])
def test_file_with_an_api_error_names_the_file(tmp_path: Path, body: str) -> None:
    path = tmp_path / "BF.B.csv"
    path.write_text(body)
    with pytest.raises(DataError) as info:
        read_bars_file(path)
    message = str(info.value)
    assert str(path) in message
    assert "API error message instead of prices" in message
    assert body.split('"')[3][:30] in message  # the API's own words are quoted


def test_csv_without_price_columns_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "odd.csv"
    path.write_text("symbol,date,price\nAAPL,2021-01-04,1.0\n")
    with pytest.raises(DataError, match=r"odd\.csv.*lack column\(s\) open, high, low, close"):
        read_bars_file(path)


def test_missing_file_and_unknown_type(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        read_bars_file(tmp_path / "nope.parquet")
    (tmp_path / "bars.xlsx").write_text("x")
    with pytest.raises(DataError, match="unsupported"):
        read_bars_file(tmp_path / "bars.xlsx")


def test_parquet_rows_come_in_symbol_date_order_with_repeats_in_file_order(tmp_path):
    """A date-sorted Parquet file (a bar store growing a day at a time) is read in the order the
    gate judges in, (symbol, date), two rows of one symbol and date kept in file order."""
    rows = []
    for day in ("2021-01-04", "2021-01-05", "2021-01-06"):
        for sym in ("ZZZ", "AAA", "MMM"):
            rows.append({"symbol": sym, "date": pd.Timestamp(day), "open": 10.0, "high": 11.0, "low": 9.0,
                         "close": 10.5, "volume": 100.0})
    rows.append({**rows[4], "close": 10.6})  # AAA 2021-01-05 again, another close: conflicting
    frame = pd.DataFrame(rows).sort_values("date", kind="stable")
    path = tmp_path / "bars.parquet"
    frame.to_parquet(path, row_group_size=4)
    got = read_bars_file(path, ["AAA", "ZZZ"], "2021-01-05", "2021-01-06")
    assert [(s, str(d.date()), c) for s, d, c in zip(got["symbol"], got["date"], got["close"], strict=True)] == [
        ("AAA", "2021-01-05", 10.5), ("AAA", "2021-01-05", 10.6), ("AAA", "2021-01-06", 10.5),
        ("ZZZ", "2021-01-05", 10.5), ("ZZZ", "2021-01-06", 10.5)]
    assert list(got["symbol"].cat.categories) == ["AAA", "ZZZ"]


def test_parquet_integer_volumes_of_kept_rows_are_floats_with_nulls_as_nan(tmp_path):
    """Integer columns (volumes written as int64, with or without missing values) come out as
    float64 for the kept rows only, a missing volume as NaN (the gate then reads it as 0)."""
    for volumes, second in (([100, 200, 300, 400], 300.0), ([100, 200, None, 400], None)):
        frame = pd.DataFrame({"symbol": ["AAA", "BBB", "AAA", "BBB"],
                              "date": pd.to_datetime(["2021-01-04", "2021-01-04", "2021-01-05", "2021-01-05"]),
                              "open": 10.0, "high": 11.0, "low": 9.0, "close": 10.5,
                              "volume": pd.array(volumes, dtype="Int64")})
        path = tmp_path / "bars.parquet"
        frame.to_parquet(path)
        got = read_bars_file(path, ["AAA"], "2021-01-01", "2021-01-31")
        assert got["volume"].dtype == "float64"
        assert got["volume"].iloc[0] == 100.0
        assert pd.isna(got["volume"].iloc[1]) if second is None else got["volume"].iloc[1] == second
        assert list(got["symbol"]) == ["AAA", "AAA"]
