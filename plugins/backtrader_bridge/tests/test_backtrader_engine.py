"""The ``backtrader`` engine as a plugin: listed without importing Backtrader, refusing what it cannot map."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from bridge_support import REPO, demo_profile
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


def test_a_vetting_rule_is_refused_in_one_line_before_any_bar_is_loaded(tmp_path: Path,
                                                                         capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["backtest", str(REPO / "profiles" / "demo.yaml"), "--out", str(tmp_path / "out"),
              "--engine", "backtrader"])
    err = capfd.readouterr().err.strip()
    assert exc.value.code == 2 and len(err.splitlines()) == 1
    assert err == ("error: risk rule 'max_order_value' vets orders, which the backtrader engine cannot apply (it "
                   "maps only stop-loss and time-stop rules); remove it from the profile's `risk` list for this run "
                   "or use --engine native")
    assert not (tmp_path / "out").exists()


def test_hybrid_strategy_runs_in_a_users_own_cerebro(tmp_path: Path) -> None:
    """HybridStrategy on the feeds of cerebro(profile): the panel is rebuilt from the feeds and the
    trades are the native engine's."""
    profile = demo_profile(tmp_path)
    components = build_components(load_profile(profile), build_plugin_host().registry)
    rules = [StopLoss(), TimeStop()]
    run = cerebro(profile, "2020-06-01", "2021-04-21")
    run.addstrategy(HybridStrategy, strategies=components.strategies, risk_rules=rules)
    strategy = run.run()[0]
    ours = sorted((t.symbol, t.entry_date, t.exit_date, t.exit_reason, t.qty, t.exit_price)
                  for t in [*strategy.trades, *strategy.open_trades()])
    panel = load_window(components.data_source, components.strategies, pd.Timestamp("2020-06-01"),
                        pd.Timestamp("2021-04-21"))
    native = run_backtest(panel, components.strategies, rules).trades
    theirs = sorted(zip(native["symbol"], native["entry_date"], native["exit_date"], native["exit_reason"],
                        native["qty"], native["exit_price"], strict=True))
    assert len(ours) > 100 and ours == theirs


def test_hybrid_strategy_refuses_what_it_cannot_map(tmp_path: Path) -> None:
    from hybrid_core.builtin.risk_rules import MaxOrderValue
    from hybrid_core.errors import ProfileError

    components = build_components(load_profile(demo_profile(tmp_path)), build_plugin_host().registry)
    run = cerebro(demo_profile(tmp_path), "2021-03-01", "2021-04-21")
    run.addstrategy(HybridStrategy, strategies=components.strategies, risk_rules=[StopLoss(), MaxOrderValue()])
    with pytest.raises(ProfileError, match="risk rule 'max_order_value' vets orders"):
        run.run()


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
    """With start=, Cerebro steps through the warm-up bars without trading; the trades are those of
    the native engine given the same full-history signals, and differ from a cold start's."""
    import backtrader as bt
    from hybrid_backtrader_bridge import contract_broker, to_feeds

    from hybrid_core.engine.backtest import compute_signals

    components = build_components(load_profile(demo_profile(tmp_path)), build_plugin_host().registry)
    strategies, rules = components.strategies, [StopLoss(), TimeStop()]
    panel = load_window(components.data_source, strategies, None, pd.Timestamp("2021-04-21"))
    start = pd.Timestamp("2020-09-01")
    signals = {s.name: compute_signals(s, panel) for s in strategies}
    warm = run_backtest(panel.select(start=start), strategies, rules, signals=signals)
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

    ours = rows(_core_trades(strategy))
    assert ours == rows(warm.trades) != rows(cold.trades)
    assert min(t[1] for t in ours) > start
    equity = strategy.equity()
    assert equity.index[0] == pd.Timestamp("2020-09-01") and equity.index.equals(warm.equity.index)
    assert (equity["value"] / warm.equity["value"] - 1).abs().max() < 1e-12


def _core_trades(strategy: HybridStrategy) -> pd.DataFrame:
    from hybrid_core.engine.backtest import trades_frame

    return trades_frame([*strategy.trades, *strategy.open_trades()])
