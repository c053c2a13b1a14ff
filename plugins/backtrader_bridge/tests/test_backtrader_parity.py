"""``hybrid backtest --engine backtrader`` trades like the native engine, round trip for round trip.

On the bundled demo bars (40 equities on NYSE sessions + BTC/ETH every day, 2020-01..2021-04):
the shipped demo profile (a warm start, every risk rule and guard, orders refused by the daily
loss breaker), costs, and an all-in equity sleeve whose cash goes negative between the sells
and buys of one open. Every exit reason and fractional crypto quantities occur.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from bridge_support import DEMO, assert_same_trades, assert_same_values, backtest, demo_profile


def both(profile: Path, folder: Path, *args: str) -> tuple:
    native, native_equity = backtest(profile, folder / "native", "native", *args)
    ours, our_equity = backtest(profile, folder / "backtrader", "backtrader", *args)
    assert_same_trades(ours, native)
    assert_same_values(our_equity, native_equity)
    assert (ours["strategy"] == native["strategy"]).all()
    assert np.allclose(ours["pnl"], native["pnl"], rtol=1e-9, atol=1e-6)
    summaries = [json.loads((folder / e / "summary.json").read_text()) for e in ("native", "backtrader")]
    return ours, our_equity, native_equity, summaries


def test_the_shipped_demo_trades_the_same_in_both_engines(tmp_path: Path) -> None:
    """profiles/demo.yaml as it is: warm start, max_order_value and the four guards vetting."""
    ours, _, _, (native, mine) = both(DEMO, tmp_path)
    assert mine["engine"] == "backtrader" and mine["warmup"] == native["warmup"] > 0
    assert mine["refused_orders"] == native["refused_orders"] > 0  # the daily loss breaker of March 2020
    refusals = [n for n in mine["notes"] if n.startswith("risk rules refused")]
    assert refusals == [n for n in native["notes"] if n.startswith("risk rules refused")]
    assert set(ours["exit_reason"]) == {"signal", "rebalance", "stop_loss", "time_stop", "end_of_data"}
    crypto = ours[ours["symbol"].str.contains("/")]
    assert len(crypto) and (crypto["qty"] != crypto["qty"].round()).all()  # fractional units


@pytest.mark.parametrize(("case", "settings"), [
    ("costs", {"slippage_bps": 5, "commission": 0.001}),
    ("all-in equities", {"equity": 1.0, "crypto": None}),
])
def test_cold_starts_trade_the_same_in_both_engines(tmp_path: Path, case: str, settings: dict) -> None:
    allocations = {k: settings.pop(k) for k in ("equity", "crypto") if k in settings}
    profile = demo_profile(tmp_path, **allocations, warmup=0, **settings)
    ours, our_equity, native_equity, _ = both(profile, tmp_path)
    if case == "all-in equities":  # no order is refused for cash
        assert (native_equity["cash"] < 0).any() and (our_equity["cash"] < 0).any()
    if case == "costs":
        assert (ours["pnl"] < (ours["exit_price"] - ours["entry_price"]) * ours["qty"]).all()


def test_the_outputs_are_the_native_engines_files(tmp_path: Path) -> None:
    backtest(demo_profile(tmp_path), tmp_path / "out", "backtrader", "--start", "2021-01-04")
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["engine"] == "backtrader" and summary["start"] == "2021-01-04"
    assert {"feeds", "signals", "loop", "engine", "total"} <= set(summary["timings"])
    assert {p.name for p in (tmp_path / "out").iterdir()} == {"round_trips.csv", "equity.csv", "summary.json",
                                                              "report.html"}
