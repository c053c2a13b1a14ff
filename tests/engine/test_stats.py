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
