"""`hybrid backtest` on the shipped bench profiles reproduces the independent reference runs.

../shared/reference holds Backtrader's trades and daily portfolio values (cross-checked by a
second implementation). Required: the same trades (symbol, entry and exit dates, exit
reason, quantity), prices within 1e-9 relative, daily values within 1e-6 relative.
The 50-symbol case runs in the normal suite; the 504-symbol and hybrid cases are slow.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from hybrid_core.cli import build_cli

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO.parent / "shared" / "reference"
KEY = ["symbol", "entry_date"]


def run_case(case: str, out: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    start = "2016-01-01" if case.startswith("hybrid") else "2015-01-01"
    result = CliRunner().invoke(build_cli(), ["backtest", str(REPO / "bench" / "profiles" / f"{case}.yaml"),
                                      "--start", start, "--end", "2021-04-21", "--out", str(out),
                                      "--no-progress", "--lookahead-cuts", "1"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    trades = pd.read_csv(out / "round_trips.csv", parse_dates=["entry_date", "exit_date"])
    equity = pd.read_csv(out / "equity.csv", parse_dates=["date"])
    return trades, equity


def assert_matches_reference(case: str, trades: pd.DataFrame, equity: pd.DataFrame) -> None:
    ref = pd.read_csv(REFERENCE / f"{case}_trades.csv", parse_dates=["entry_date", "exit_date"])
    assert len(trades) == len(ref)
    merged = ref.merge(trades, on=KEY, how="outer", suffixes=("_ref", ""), indicator=True, validate="1:1")
    unmatched = merged[merged["_merge"] != "both"]
    assert unmatched.empty, f"trades only on one side:\n{unmatched[KEY + ['_merge']].head()}"
    for col in ("exit_date", "exit_reason", "qty"):
        bad = merged[merged[col] != merged[f"{col}_ref"]]
        assert bad.empty, f"{col} differs:\n{bad[KEY + [col, col + '_ref']].head()}"
    for col in ("entry_price", "exit_price"):
        rel = (merged[col] / merged[f"{col}_ref"] - 1.0).abs()
        where = merged.loc[rel.idxmax(), KEY].tolist()
        assert rel.max() <= 1e-9, f"{col} differs by {rel.max():.3g} on {where}"

    values = pd.read_csv(REFERENCE / f"{case}_values.csv", parse_dates=["date"])
    assert equity["date"].tolist() == values["date"].tolist()
    rel = np.abs(equity["value"].to_numpy() / values["value"].to_numpy() - 1.0)
    worst = values["date"][int(rel.argmax())].date()
    assert rel.max() <= 1e-6, f"value differs by {rel.max():.3g} on {worst}"


def test_eq50_reproduces_the_reference(tmp_path: Path) -> None:
    trades, equity = run_case("eq50_2015", tmp_path)
    assert_matches_reference("eq50_2015", trades, equity)
    assert trades["exit_reason"].value_counts().to_dict() == {"rebalance": 1020, "stop_loss": 305,
                                                             "end_of_data": 1}


@pytest.mark.slow
@pytest.mark.parametrize("case", ["eq504_2015", "hybrid_2016"])
def test_large_cases_reproduce_the_reference(case: str, tmp_path: Path) -> None:
    trades, equity = run_case(case, tmp_path)
    assert_matches_reference(case, trades, equity)


def test_a_wrong_engine_would_fail_the_comparison(tmp_path: Path) -> None:
    """The comparison is not vacuous: one shifted stop price or value is caught."""
    ref = pd.read_csv(REFERENCE / "eq50_2015_trades.csv", parse_dates=["entry_date", "exit_date"])
    values = pd.read_csv(REFERENCE / "eq50_2015_values.csv", parse_dates=["date"])
    wrong = ref.copy()
    wrong.loc[5, "exit_price"] *= 1 + 1e-8
    with pytest.raises(AssertionError, match="exit_price"):
        assert_matches_reference("eq50_2015", wrong, values)
    off = values.copy()
    off.loc[100, "value"] *= 1 + 2e-6
    with pytest.raises(AssertionError, match="value differs"):
        assert_matches_reference("eq50_2015", ref, off)
