"""The kit's replay-versus-backtest check: silent on a sound strategy, precise on a mismatch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from hybrid_core import hookimpl
from hybrid_core.contracts import CONTRACT_VERSION, Panel, Signals, Strategy
from hybrid_core.testing import assert_replay_matches_backtest, check_replay_matches_backtest, sample_bars_path

SAMPLE = sample_bars_path()


class WindowLengthDependent(Strategy):
    """Buys on days when the panel it is shown has an even number of dates: a live/backtest mismatch.

    Over the whole history (backtest) the flag is the same on every row; one session at a
    time (live) it alternates, so the two runs trade differently although neither peeks ahead."""

    name = "window_parity"

    def signals(self, panel: Panel) -> Signals:
        close = panel.close[self.universe]
        flag = len(panel.dates) % 2 == 0
        has_bar = close.notna()
        entry = has_bar & flag
        false = pd.DataFrame(False, index=close.index, columns=close.columns)
        return Signals(entry=entry, exit=false, keep=false,
                       weight=pd.DataFrame(np.where(entry, self.allocation / len(self.universe), np.nan),
                                           index=close.index, columns=close.columns),
                       decided=has_bar.any(axis=1), exit_reason="signal")


class ShortSightedMean(Strategy):
    """Buys a close under its 60-session mean and sells above it, but says it needs 5 sessions.

    A backtest gives it every bar; a live cycle loads only its lookback window (the profile's
    lookback_days, or more if lookback() asks), where the 60-session mean never exists."""

    name = "short_sighted"

    def lookback(self) -> int:
        return 5

    def signals(self, panel: Panel) -> Signals:
        close = panel.close[self.universe]
        mean = close.rolling(60).mean()
        entry, exit_ = close < mean, close > mean
        return Signals(entry=entry, exit=exit_, keep=entry & False,
                       weight=pd.DataFrame(self.allocation / len(self.universe), index=close.index,
                                           columns=close.columns),
                       decided=close.notna().any(axis=1), exit_reason="signal")


class ParityPlugin:
    HYBRID_CONTRACT = CONTRACT_VERSION

    @hookimpl
    def hybrid_register_strategies(self, register):  # type: ignore[no-untyped-def]
        register(WindowLengthDependent)
        register(ShortSightedMean)


def write_profile(tmp_path: Path, strategies: list[dict], lookback_days: int | None = None,
                  warmup: int | None = None) -> Path:
    profile = {"name": "kit", "data": {"source": "local", "params": {"path": str(SAMPLE)}},
               "strategies": strategies, "risk": [{"name": "stop_loss"}, {"name": "time_stop"}],
               "broker": {"name": "paper"}}
    if lookback_days is not None:
        profile["data"]["lookback_days"] = lookback_days
    if warmup is not None:
        profile["backtest"] = {"warmup": warmup}
    path = tmp_path / "kit.yaml"
    path.write_text(yaml.safe_dump(profile))
    return path


def test_the_bundled_strategies_pass_the_parity_check(tmp_path):
    path = write_profile(tmp_path, [
        {"name": "equity_reversal", "allocation": 0.7, "universe": ["AAPL", "BAC", "F", "GE", "INTC", "KO",
                                                                     "PFE", "T", "WFC", "XOM"]},
        {"name": "crypto_adx", "allocation": 0.3, "universe": ["BTC/USD", "ETH/USD"]}])
    report = assert_replay_matches_backtest(path, "2020-09-01", "2020-12-31", workdir=tmp_path / "run")
    assert report.ok and len(report.backtest_trades) >= 10
    assert len(report.replay_trades) == len(report.backtest_trades)


@pytest.mark.parametrize("lookback_days", [None, 30])
def test_a_window_dependent_strategy_is_caught_with_both_sides(tmp_path, lookback_days):
    """Whether each cycle sees the whole replay so far (the window is shorter than lookback_days)
    or a sliding 30-day window (a live run's own), the mismatch is found."""
    path = write_profile(tmp_path, [{"name": "window_parity", "allocation": 0.5, "universe": ["AAPL", "KO"]}],
                         lookback_days)
    kwargs = {"workdir": tmp_path / "run", "extra_plugins": [("parity_kit_test", ParityPlugin())]}
    report = check_replay_matches_backtest(path, "2021-02-01", "2021-03-31", **kwargs)
    assert not report.ok
    assert report.difference is not None and report.difference.symbol in {"AAPL", "KO"}
    with pytest.raises(AssertionError, match=r"first difference: (AAPL|KO) entered 2021-0\d-\d\d") as caught:
        assert_replay_matches_backtest(path, "2021-02-01", "2021-03-31",
                                       workdir=tmp_path / "again", extra_plugins=kwargs["extra_plugins"])
    assert "replay" in str(caught.value) and "backtest" in str(caught.value)


def test_a_strategy_whose_lookback_is_too_short_is_caught(tmp_path):
    """A replay's cycle sees what a live cycle loads, not the whole history the backtest sees:
    a strategy needing more bars than its lookback() says fails the check (and would fail live).
    Both start 60 sessions warm, so the backtest has its 60-session mean from the first day."""
    universe = ["AAPL", "BAC", "F", "GE", "INTC", "KO", "PFE", "T", "WFC", "XOM"]
    path = write_profile(tmp_path, [{"name": "short_sighted", "allocation": 0.9, "universe": universe}],
                         lookback_days=30, warmup=60)
    kwargs = {"extra_plugins": [("parity_kit_test", ParityPlugin())]}
    report = check_replay_matches_backtest(path, "2020-09-01", "2020-10-30", workdir=tmp_path / "run", **kwargs)
    assert not report.ok and len(report.backtest_trades) > 0 and len(report.replay_trades) == 0
    sound = write_profile(tmp_path, [{"name": "short_sighted", "allocation": 0.9, "universe": universe}],
                          lookback_days=120, warmup=60)
    assert check_replay_matches_backtest(sound, "2020-09-01", "2020-10-30", workdir=tmp_path / "wide",
                                         **kwargs).ok


class PanelRecorder(Strategy):
    """Keeps the panel of every decision (no orders): what a cycle showed the strategy."""

    name = "panel_recorder"
    seen: list[Panel] = []

    def lookback(self) -> int:
        return 20

    def signals(self, panel: Panel) -> Signals:
        PanelRecorder.seen.append(panel)
        close = panel.close[self.universe]
        false = pd.DataFrame(False, index=close.index, columns=close.columns)
        return Signals(entry=false, exit=false, keep=false, weight=close * np.nan,
                       decided=pd.Series(False, index=close.index), exit_reason="signal")


class RecorderPlugin:
    HYBRID_CONTRACT = CONTRACT_VERSION

    @hookimpl
    def hybrid_register_strategies(self, register):  # type: ignore[no-untyped-def]
        register(PanelRecorder)


@pytest.mark.parametrize("lookback_days", [30, 90])
def test_a_replays_cycle_sees_the_bars_a_live_cycle_loads(tmp_path, lookback_days):
    """At the same close, the cycle handed a replay's whole window decides on exactly the panel a
    live cycle loads from the data source (data.lookback_days, raised by lookback(): 20 sessions
    need 42 days), whatever the window holds before it."""
    from hybrid_core.engine.backtest import load_window
    from hybrid_core.live.runner import RunOptions, RunSession
    from hybrid_core.plugins import build_plugin_host
    from hybrid_core.profile import load_profile

    universe = ["AAPL", "KO", "XOM", "BTC/USD"]
    path = write_profile(tmp_path, [{"name": "panel_recorder", "allocation": 0.5, "universe": universe}],
                         lookback_days=lookback_days)
    registry = build_plugin_host(extra_plugins=[("parity_kit_test", RecorderPlugin())]).registry
    profile = load_profile(path)
    as_of = pd.Timestamp("2021-03-17")
    seen = {}
    for kind in ("live", "replay"):
        PanelRecorder.seen = []
        options = RunOptions(dry_run=True, durable=False, state_db=str(tmp_path / kind / "state.sqlite"),
                             trade_log=str(tmp_path / kind / "events.csv"),
                             health_file=str(tmp_path / kind / "hybrid.health"))
        with RunSession(profile, registry, options) as session:
            if kind == "live":
                session.cycle.run(as_of)
            else:
                window = load_window(session.components.data_source, session.components.strategies,
                                     pd.Timestamp("2020-06-01"), pd.Timestamp("2021-04-30"), warmup=0)
                session.cycle.run(as_of, window.panel.until(as_of))
        (seen[kind],) = PanelRecorder.seen
    live, replay = seen["live"], seen["replay"]
    assert live.dates[-1] == as_of and live.dates[0] >= as_of - pd.Timedelta(days=max(lookback_days, 42))
    assert len(replay.dates) < 200  # not the replay's window since June
    for name in ("open", "high", "low", "close", "volume"):
        pd.testing.assert_frame_equal(getattr(replay, name), getattr(live, name), check_freq=False)
