"""check_quality: stale data against the NYSE and UTC calendars, gaps, bad rows, halt flag."""

from __future__ import annotations

import pandas as pd
import pytest

from hybrid_core.contracts import Panel
from hybrid_core.data.normalise import normalise_bars
from hybrid_core.data.quality import check_quality


@pytest.fixture
def bars(raw_bars) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    """Canonical bars to 2020-11-30 (a Monday): equities and crypto, with crypto's real gaps."""
    return normalise_bars(raw_bars, source="fixture")


def kinds(report) -> set[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return {(i.kind, i.symbol) for i in report.issues}


def test_fresh_data_passes_except_real_gaps(bars: pd.DataFrame) -> None:
    report = check_quality(bars, "2020-11-30 21:45")  # 16:45 New York: Monday's bar is due
    assert not report.halt_entries and report.reason == ""
    assert report.expected == {"equity": pd.Timestamp("2020-11-30"), "crypto": pd.Timestamp("2020-11-29")}
    assert kinds(report) == {("gap", "BTC/USD"), ("gap", "ETH/USD")}
    gap = next(i for i in report.issues if i.symbol == "BTC/USD")
    assert gap.date == pd.Timestamp("2020-10-09") and gap.detail.startswith("3 day(s)")


def test_before_the_close_yesterdays_session_is_enough(bars: pd.DataFrame) -> None:
    cut = bars[bars["date"] < "2020-11-30"]
    report = check_quality(cut, "2020-11-30 18:00", check_gaps=False)  # 13:00 New York
    assert report.expected["equity"] == pd.Timestamp("2020-11-27")  # Friday, after Thanksgiving
    assert report.ok


def test_stale_universe_halts_entries_with_a_reason(bars: pd.DataFrame, log_lines) -> None:  # type: ignore[no-untyped-def]
    stale = bars[bars["date"] <= "2020-11-24"]
    report = check_quality(stale, "2020-11-30 21:45", check_gaps=False)
    assert report.halt_entries
    assert "stale equity data: 5 of 5" in report.reason and "2020-11-30" in report.reason
    assert "stale crypto data: 2 of 2" in report.reason
    assert report.stale == sorted(bars["symbol"].unique())
    stale_lines = [line for line in log_lines if line.startswith("data quality: stale:")]
    assert stale_lines == ["data quality: stale: 7 symbol(s) (AAPL, BRK.B, BTC/USD and 4 more); "
                           "e.g. AAPL: last bar 2020-11-24, expected 2020-11-30"]  # one line, not seven


def test_one_stale_name_is_reported_without_halting(bars: pd.DataFrame) -> None:
    one_behind = bars[~((bars["symbol"] == "XOM") & (bars["date"] > "2020-11-20"))]
    report = check_quality(one_behind, "2020-11-30 21:45", check_gaps=False, universe=[
        "AAPL", "MSFT", "BRK.B", "JPM", "XOM", "BTC/USD", "ETH/USD"])
    assert report.stale == ["XOM"] and not report.halt_entries
    report = check_quality(one_behind, "2020-11-30 21:45", check_gaps=False, max_lag_sessions=6)
    assert report.ok  # XOM's 2020-11-20 is 6 sessions before 11-30


def test_symbol_without_bars_counts_as_stale(bars: pd.DataFrame) -> None:
    report = check_quality(bars[bars["symbol"] == "BTC/USD"], "2020-11-30 21:45",
                           universe=["BTC/USD", "ETH/USD"], check_gaps=False)
    assert ("no_bars", "ETH/USD") in kinds(report)
    assert report.halt_entries  # half of the crypto universe has nothing


def test_bad_rows_each_logged_once(bars: pd.DataFrame, log_lines) -> None:  # type: ignore[no-untyped-def]
    bad = bars.copy()
    msft = bad.index[bad["symbol"] == "MSFT"]
    bad.loc[msft[3], "high"] = bad.loc[msft[3], "low"] * 0.9
    bad.loc[msft[4], "high"] = bad.loc[msft[4], "low"] * 0.9
    bad.loc[msft[5], "open"] = float("nan")
    bad.loc[msft[6], "close"] = 0.0
    conflicting = bad.loc[[msft[7]]].assign(close=bad.loc[msft[7], "close"] * 1.01)
    bad = pd.concat([bad, conflicting])
    report = check_quality(bad, "2020-11-30 21:45", check_gaps=False)
    found = {(i.kind, i.symbol, i.date) for i in report.issues}
    dates = bars.loc[msft, "date"].tolist()
    assert found == {("high_below_low", "MSFT", dates[3]), ("outside_range", "MSFT", dates[3]),
                     ("missing_price", "MSFT", dates[5]), ("non_positive_price", "MSFT", dates[6]),
                     ("conflicting_duplicate", "MSFT", dates[7])}
    assert next(i for i in report.issues if i.kind == "high_below_low").detail == "2 row(s)"
    assert sum(line.startswith("data quality: high_below_low: 1 symbol(s) (MSFT)") for line in log_lines) == 1
    assert not report.halt_entries


def test_equity_gap_uses_the_nyse_calendar_and_panels_work(bars: pd.DataFrame) -> None:
    holes = pd.to_datetime(["2020-07-02", "2020-07-06"])
    holed = bars[~((bars["symbol"] == "JPM") & bars["date"].isin(holes))]
    report = check_quality(Panel.from_long(holed), "2020-11-30 21:45")
    gaps = {i.symbol: i for i in report.issues if i.kind == "gap"}
    assert gaps["JPM"].date == pd.Timestamp("2020-07-02")
    assert gaps["JPM"].detail == "2 NYSE session(s) without a bar"  # 07-03 was a holiday, not a gap
    assert "AAPL" not in gaps


def test_a_panel_column_without_bars_is_reported(bars: pd.DataFrame) -> None:
    panel = Panel.from_long(bars).select(["AAPL", "MSFT", "BRK.B", "JPM", "XOM", "NEWCO"])
    report = check_quality(panel, "2020-11-30 21:45", check_gaps=False)
    assert report.stale == ["NEWCO"] and not report.halt_entries


def test_a_problem_seen_again_next_cycle_is_not_warned_twice(bars: pd.DataFrame, log_lines) -> None:  # type: ignore[no-untyped-def]
    first = check_quality(bars, "2020-11-30 21:45")
    second = check_quality(bars, "2020-11-30 21:50")
    assert first.issues == second.issues and len(first.issues) == 2  # still reported each time
    assert sum(line.startswith("data quality: gap: 2 symbol(s) (BTC/USD, ETH/USD)") for line in log_lines) == 1
