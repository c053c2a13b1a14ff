"""``hybrid backtest --engine backtrader`` trades like the native engine, trade for trade.

On the bundled demo bars (40 equities on NYSE sessions + BTC/ETH every day, 2020-01..2021-04):
every exit reason, fractional crypto quantities, a week-long mixed calendar, costs, and an
all-in equity sleeve whose cash goes negative between the sells and buys of one open.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from bridge_support import assert_same_trades, assert_same_values, backtest, demo_profile


@pytest.mark.parametrize(("case", "settings", "args"), [
    ("both sleeves", {}, []),
    ("costs", {"slippage_bps": 5, "commission": 0.001}, []),
    ("all-in equities", {"equity": 1.0, "crypto": None}, []),
])
def test_the_demo_trades_the_same_in_both_engines(tmp_path: Path, case: str, settings: dict, args: list) -> None:
    allocations = {k: settings.pop(k) for k in ("equity", "crypto") if k in settings}
    profile = demo_profile(tmp_path, **allocations, **settings)
    native, native_equity = backtest(profile, tmp_path / "native", "native", *args)
    ours, our_equity = backtest(profile, tmp_path / "backtrader", "backtrader", *args)
    assert_same_trades(ours, native)
    assert_same_values(our_equity, native_equity)
    assert (ours["strategy"] == native["strategy"]).all()
    assert np.allclose(ours["pnl"], native["pnl"], rtol=1e-9, atol=1e-6)
    if case == "both sleeves":  # the demo exercises every rule of the contract
        assert set(ours["exit_reason"]) == {"signal", "rebalance", "stop_loss", "time_stop", "end_of_data"}
        crypto = ours[ours["symbol"].str.contains("/")]
        assert len(crypto) and (crypto["qty"] != crypto["qty"].round()).all()  # fractional units
    if case == "all-in equities":  # no order is refused for cash
        assert (native_equity["cash"] < 0).any() and (our_equity["cash"] < 0).any()
    if case == "costs":
        assert (ours["pnl"] < (ours["exit_price"] - ours["entry_price"]) * ours["qty"]).all()


def test_the_summary_names_the_engine_and_its_timings(tmp_path: Path) -> None:
    import json

    profile = demo_profile(tmp_path)
    backtest(profile, tmp_path / "out", "backtrader", "--start", "2021-01-04")
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["engine"] == "backtrader" and summary["start"] == "2021-01-04"
    assert {"feeds", "signals", "loop", "engine", "total"} <= set(summary["timings"])
    assert {p.name for p in (tmp_path / "out").iterdir()} == {"trades.csv", "equity.csv", "summary.json",
                                                              "report.html"}
