"""The summary statistics match empyrical-reloaded on real equity curves (the reference values)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hybrid_core.engine import stats

REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "reference"


@pytest.fixture(scope="module")
def empyrical():
    import empyrical  # empyrical-reloaded, from the test extras: the reference these statistics must match

    return empyrical


@pytest.mark.parametrize(("case", "ppy"), [("eq50_2015", 252), ("hybrid_2016", 365)])
def test_return_statistics_match_empyrical(empyrical, case: str, ppy: int) -> None:
    values = pd.read_csv(REFERENCE / f"{case}_values.csv", parse_dates=["date"], index_col="date")["value"]
    assert stats.periods_per_year(values.index) == ppy
    returns = stats.daily_returns(values, 1_000_000.0)
    r = returns.to_numpy()
    ours = stats.return_stats(values, 1_000_000.0, ppy)
    assert ours["cagr"] == pytest.approx(empyrical.annual_return(returns, annualization=ppy), rel=1e-12)
    assert ours["annual_volatility"] == pytest.approx(empyrical.annual_volatility(r, annualization=ppy),
                                                      rel=1e-12)
    assert ours["sharpe"] == pytest.approx(empyrical.sharpe_ratio(r, annualization=ppy), rel=1e-12)
    assert ours["sortino"] == pytest.approx(empyrical.sortino_ratio(r, annualization=ppy), rel=1e-12)
    assert ours["max_drawdown"] == pytest.approx(empyrical.max_drawdown(r), rel=1e-12)
    assert ours["final_value"] == values.iloc[-1]


def test_drawdown_dates_on_a_small_curve() -> None:
    days = pd.date_range("2021-01-04", periods=7, freq="B")
    values = pd.Series([100.0, 110.0, 99.0, 88.0, 105.0, 111.0, 80.0], index=days)
    dd = stats.max_drawdown(values, 100.0)
    assert dd["max_drawdown"] == pytest.approx(80.0 / 111.0 - 1.0)
    assert (dd["peak_date"], dd["trough_date"], dd["recovery_date"]) == ("2021-01-11", "2021-01-12", None)
    first = stats.max_drawdown(values.iloc[:6], 100.0)
    assert first["max_drawdown"] == pytest.approx(88.0 / 110.0 - 1.0)
    assert (first["peak_date"], first["trough_date"], first["recovery_date"]) == (
        "2021-01-05", "2021-01-07", "2021-01-11")
    below_start = stats.max_drawdown(pd.Series([95.0, 90.0, 101.0], index=days[:3]), 100.0)
    assert below_start["max_drawdown"] == pytest.approx(-0.10)  # the start value is the first peak


def test_trade_statistics() -> None:
    trades = pd.DataFrame({
        "entry_date": pd.to_datetime(["2021-01-04", "2021-01-04", "2021-01-11"]),
        "exit_date": pd.to_datetime(["2021-01-11", "2021-01-06", "2021-01-12"]),
        "pnl": [30.0, -10.0, -5.0],
        "exit_reason": ["rebalance", "stop_loss", "stop_loss"],
    })
    out = stats.trade_stats(trades)
    assert out["trades"] == 3 and out["win_rate"] == pytest.approx(1 / 3)
    assert out["profit_factor"] == pytest.approx(2.0)
    assert out["average_holding_days"] == pytest.approx((7 + 2 + 1) / 3)
    assert out["trades_by_exit_reason"]["stop_loss"] == 2 and out["trades_by_exit_reason"]["time_stop"] == 0


def test_json_ready_replaces_non_finite_numbers() -> None:
    assert stats.json_ready({"a": np.float64("nan"), "b": [np.inf, np.int64(3)], "c": True}) == {
        "a": None, "b": [None, 3], "c": True}


@pytest.fixture(scope="module")
def two_curves() -> tuple[pd.Series, pd.Series]:
    """Two real equity curves on the same sessions: eq50 (the strategy) and eq504 (the benchmark)."""
    def values(case: str) -> pd.Series:
        return pd.read_csv(REFERENCE / f"{case}_values.csv", parse_dates=["date"], index_col="date")["value"]

    strategy, benchmark = values("eq50_2015"), values("eq504_2015")
    assert strategy.index.equals(benchmark.index)
    return strategy, benchmark


def test_relative_statistics_match_empyrical(empyrical, two_curves: tuple[pd.Series, pd.Series]) -> None:
    strategy, benchmark = two_curves
    r = stats.daily_returns(strategy, 1_000_000.0).to_numpy()
    b = stats.daily_returns(benchmark, 1_000_000.0).to_numpy()
    ours = stats.relative_stats(r, b, 252)
    assert ours["beta"] == pytest.approx(empyrical.beta(r, b), rel=1e-12)
    assert ours["alpha"] == pytest.approx(empyrical.alpha(r, b, annualization=252), rel=1e-12)
    assert ours["tracking_error"] == pytest.approx(empyrical.annual_volatility(r - b, annualization=252), rel=1e-12)
    assert ours["information_ratio"] == pytest.approx(empyrical.excess_sharpe(r, b) * np.sqrt(252), rel=1e-12)
    assert ours["excess_return"] == pytest.approx(
        empyrical.cum_returns_final(r) - empyrical.cum_returns_final(b), rel=1e-12)
    assert ours["excess_return"] == pytest.approx((strategy.iloc[-1] - benchmark.iloc[-1]) / 1e6, rel=1e-9)


def test_rolling_six_month_sharpe_matches_empyrical(empyrical, two_curves: tuple[pd.Series, pd.Series]) -> None:
    returns = stats.daily_returns(two_curves[0], 1_000_000.0)
    window = stats.rolling_window(252)
    assert window == 126 and stats.rolling_window(365) == 182
    ours = stats.rolling_sharpe(returns, window, 252)
    theirs = empyrical.roll_sharpe_ratio(returns.to_numpy(), window=window, annualization=252)
    assert ours.iloc[: window - 1].isna().all()
    np.testing.assert_allclose(ours.to_numpy()[window - 1:], theirs, rtol=1e-10)


def test_summary_carries_the_benchmark_block(two_curves: tuple[pd.Series, pd.Series]) -> None:
    strategy, benchmark = two_curves
    equity = pd.DataFrame({"value": strategy, "cash": strategy * 0.0, "exposure": strategy})
    trades = pd.DataFrame(columns=["entry_date", "exit_date", "pnl", "exit_reason"])
    summary = stats.summarize(equity, trades, [], 1_000_000.0, benchmark=("eq504", benchmark))
    assert summary["benchmark"]["name"] == "eq504"
    assert summary["benchmark"]["cagr"] == pytest.approx(
        stats.return_stats(benchmark, 1_000_000.0, 252)["cagr"], rel=1e-12)
    total = summary["total"]
    assert {"excess_return", "beta", "alpha", "tracking_error", "information_ratio", "rolling_sharpe_6m"} <= set(total)
    last_window = stats.daily_returns(strategy, 1_000_000.0).to_numpy()[-126:]
    assert total["rolling_sharpe_6m"] == pytest.approx(
        last_window.mean() / last_window.std(ddof=1) * np.sqrt(252), rel=1e-12)


def test_latest_closes_are_the_closes_filled_forward_on_the_dates() -> None:
    days = pd.bdate_range("2021-01-04", periods=8)
    closes = pd.DataFrame({"A": [np.nan, 1.0, np.nan, np.nan, 2.0, 3.0, np.nan, 4.0],
                           "B": [5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0],
                           "C": [np.nan] * 6 + [1.5, np.nan]}, index=days)
    dates = pd.DatetimeIndex([days[2], days[3], pd.Timestamp("2021-01-09"), days[5], days[6], days[7]])
    marks = stats.latest_closes(closes, dates)
    expected = closes.reindex(index=dates).ffill().to_numpy()  # A's close of days[1] is not among the dates
    np.testing.assert_array_equal(marks, expected)
    assert np.isnan(marks[0, 0]) and marks[2, 1] == 8.0 and marks[5, 2] == 1.5


def test_held_value_block_by_block_is_the_whole_table_sum() -> None:
    """Holdings accumulated a few dates at a time give the same bits as the whole dates x symbols table."""
    rng = np.random.default_rng(7)
    dates, width, trips = 37, 11, 60
    entry = rng.integers(0, dates, trips)
    exit_ = np.minimum(entry + rng.integers(1, 9, trips), dates)  # some held to the end
    cols = rng.integers(0, width, trips)
    qty = rng.integers(1, 500, trips) / 7.0
    marks = rng.lognormal(3.0, 0.5, (dates, width))
    diff = np.zeros((dates + 1, width))
    np.add.at(diff, (entry, cols), qty)
    np.add.at(diff, (exit_, cols), -qty)
    rows, all_cols, changes = np.concatenate([entry, exit_]), np.concatenate([cols, cols]), np.concatenate([qty, -qty])
    days = pd.bdate_range("2021-01-04", periods=dates)
    marks[3:9, 2] = np.nan  # a gap in a symbol's closes: marked at its latest close
    marks[:5, 4] = np.nan  # no close yet: marked at 0
    latest = stats.LatestCloses(pd.DataFrame(marks, index=days), days)
    expected = (np.cumsum(diff[:-1], axis=0) * np.nan_to_num(pd.DataFrame(marks).ffill().to_numpy())).sum(axis=1)
    for block in (1, 4, 16, 37, 128):
        np.testing.assert_array_equal(stats._held_value(rows, all_cols, changes, latest, block=block), expected)
