"""The ``backtrader`` engine as a plugin: listed without importing Backtrader, refusing what it cannot map."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from bridge_support import demo_profile
from hybrid_backtrader_bridge import BACKTRADER_VERSION, HybridStrategy, cerebro

from hybrid_core.builtin.risk_rules import StopLoss, TimeStop
from hybrid_core.cli import main
from hybrid_core.engine.backtest import load_window, run_backtest
from hybrid_core.plugins import build_plugin_host
from hybrid_core.profile import build_components, load_profile


def test_the_plugin_registers_the_engine(capfd: pytest.CaptureFixture[str]) -> None:
    spec = build_plugin_host().registry.get("backtest_engine", "backtrader")
    assert (spec.plugin, spec.package) == ("backtrader", "hybrid-backtrader-bridge")
    main(["plugins", "--json"])
    plugins = {p["name"]: p for p in json.loads(capfd.readouterr().out)["plugins"]}
    assert [c["name"] for c in plugins["backtrader"]["components"]] == ["backtrader"]


def test_backtrader_is_pinned_to_its_last_release() -> None:
    from importlib.metadata import requires

    import backtrader as bt

    assert bt.__version__ == BACKTRADER_VERSION == "1.9.78.123"
    assert "backtrader==1.9.78.123" in requires("hybrid-backtrader-bridge")


def test_neither_the_core_nor_the_plugin_host_imports_backtrader(tmp_path: Path) -> None:
    """Listing plugins and a native backtest leave Backtrader unimported (the CLI stays fast)."""
    profile = demo_profile(tmp_path)
    code = f"""
import sys
from hybrid_core.cli import main
for args in (["plugins"], ["backtest", {str(profile)!r}, "--out", {str(tmp_path / "out")!r}, "--no-progress"]):
    try:
        main(args)
    except SystemExit as exc:
        assert exc.code in (0, None), exc.code
assert "backtrader" not in sys.modules, "backtrader was imported"
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-2000:]


def test_hybrid_strategy_runs_in_a_users_own_cerebro(tmp_path: Path) -> None:
    """HybridStrategy on the feeds of cerebro(profile): the panel is rebuilt from the feeds and the
    trades are the native engine's."""
    profile = demo_profile(tmp_path)
    components = build_components(load_profile(profile), build_plugin_host().registry)
    rules = [StopLoss(), TimeStop()]
    run = cerebro(profile, "2020-06-01", "2021-04-21")
    run.addstrategy(HybridStrategy, strategies=components.strategies, risk_rules=rules)
    strategy = run.run()[0]
    window = load_window(components.data_source, components.strategies, pd.Timestamp("2020-06-01"),
                         pd.Timestamp("2021-04-21"))
    native = run_backtest(window.panel, components.strategies, rules)
    assert len(native.trades) > 100
    assert strategy.round_trips().equals(native.trades)


def test_hybrid_strategy_trades_the_signals_it_is_given(tmp_path: Path) -> None:
    """signals= (BacktestRequest.signals, e.g. the lookahead check's) stand for the strategies' runs:
    the same trades, and the strategies do not run again."""
    from hybrid_core.engine.backtest import compute_signals

    profile = demo_profile(tmp_path)
    components = build_components(load_profile(profile), build_plugin_host().registry)
    strategies, rules = components.strategies, [StopLoss(), TimeStop()]
    window = load_window(components.data_source, strategies, pd.Timestamp("2020-06-01"), pd.Timestamp("2021-04-21"))
    given = {s.name: compute_signals(s, window.panel, with_info=False) for s in strategies}
    for strategy in strategies:  # a run now would fail the test
        strategy.signals = None  # type: ignore[method-assign, assignment]
    run = cerebro(profile, "2020-06-01", "2021-04-21")
    run.addstrategy(HybridStrategy, strategies=strategies, risk_rules=rules, signals=given)
    ours = run.run()[0]
    assert len(ours.round_trips()) > 100
    assert ours.round_trips().equals(run_backtest(window.panel, strategies, rules, signals=given).trades)


def test_hybrid_strategy_needs_the_contract_broker(tmp_path: Path) -> None:
    """Backtrader's stock broker would refuse buys for cash and fill stops on other symbols' days."""
    import backtrader as bt
    from hybrid_backtrader_bridge.strategy import BridgeError

    components = build_components(load_profile(demo_profile(tmp_path)), build_plugin_host().registry)
    run = cerebro(demo_profile(tmp_path), "2021-03-01", "2021-04-21")
    run.broker = bt.brokers.BackBroker(cash=1_000_000)
    run.addstrategy(HybridStrategy, strategies=components.strategies, risk_rules=[StopLoss(), TimeStop()])
    with pytest.raises(BridgeError, match="contract_broker"):
        run.run()


def test_a_warm_start_feeds_the_signals_and_decides_nothing_before_start(tmp_path: Path) -> None:
    """With start=, Cerebro steps through the warm-up bars without trading; the round trips are the
    native engine's warm start (the same as its run given full-history signals) and differ from a
    cold start's."""
    import backtrader as bt
    from hybrid_backtrader_bridge import contract_broker, to_feeds

    from hybrid_core.engine.backtest import compute_signals

    components = build_components(load_profile(demo_profile(tmp_path)), build_plugin_host().registry)
    strategies, rules = components.strategies, [StopLoss(), TimeStop()]
    panel = load_window(components.data_source, strategies, None, pd.Timestamp("2021-04-21")).panel
    start = pd.Timestamp("2020-09-01")
    signals = {s.name: compute_signals(s, panel) for s in strategies}
    warm = run_backtest(panel, strategies, rules, start=start)
    assert run_backtest(panel.select(start=start), strategies, rules, signals=signals).trades.equals(warm.trades)
    cold = run_backtest(panel.select(start=start), strategies, rules)
    run = bt.Cerebro(stdstats=False)
    run.broker = contract_broker(1_000_000.0)
    for feed in to_feeds(panel):
        run.adddata(feed)
    run.addstrategy(HybridStrategy, strategies=strategies, risk_rules=rules, panel=panel, start=start)
    strategy = run.run()[0]

    def rows(trades: pd.DataFrame) -> list[tuple]:
        return sorted(zip(trades["symbol"], trades["entry_date"], trades["exit_date"], trades["exit_reason"],
                          trades["qty"], trades["entry_price"], trades["exit_price"], strict=True))

    ours = rows(strategy.round_trips())
    assert ours == rows(warm.trades) != rows(cold.trades)
    assert min(t[1] for t in ours) > start
    equity = strategy.equity()
    assert equity.index[0] == pd.Timestamp("2020-09-01") and equity.index.equals(warm.equity.index)
    assert (equity["value"] / warm.equity["value"] - 1).abs().max() < 1e-12

