"""The full reference windows: the bridge equals the native engine and ../shared/reference trade for trade.

eq50_2015 (50 equities, 2015-2021, 1,326 trades) and hybrid_2016 (504 equities + BTC/ETH,
2016-2021, 12,878 trades) are cold starts, as the reference cases were made. Slow: Backtrader
takes about 10 s and 50-100 s for them on a 2-core machine.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from bridge_support import BENCH, REFERENCE, assert_same_trades, assert_same_values, backtest

CASES = {"eq50_2015": 1326, "hybrid_2016": 12878}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_the_reference_cases_trade_the_same_in_both_engines(case: str, tmp_path: Path) -> None:
    profile = BENCH / f"{case}.yaml"
    ours, our_equity = backtest(profile, tmp_path / "backtrader", "backtrader")
    native, native_equity = backtest(profile, tmp_path / "native", "native")
    assert len(ours) == CASES[case]
    assert_same_trades(ours, native)
    assert_same_values(our_equity, native_equity, rel=1e-9)
    reference = pd.read_csv(REFERENCE / f"{case}_trades.csv", parse_dates=["entry_date", "exit_date"])
    assert_same_trades(ours, reference)
    values = pd.read_csv(REFERENCE / f"{case}_values.csv", parse_dates=["date"])
    assert_same_values(our_equity, values)
