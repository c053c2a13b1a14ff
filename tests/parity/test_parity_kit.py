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


class ParityPlugin:
    HYBRID_CONTRACT = CONTRACT_VERSION

    @hookimpl
    def hybrid_register_strategies(self, register):  # type: ignore[no-untyped-def]
        register(WindowLengthDependent)


def write_profile(tmp_path: Path, strategies: list[dict]) -> Path:
    profile = {"name": "kit", "data": {"source": "local", "params": {"path": str(SAMPLE)}},
               "strategies": strategies, "risk": [{"name": "stop_loss"}, {"name": "time_stop"}],
               "broker": {"name": "paper"}}
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


def test_a_window_dependent_strategy_is_caught_with_both_sides(tmp_path):
    path = write_profile(tmp_path, [{"name": "window_parity", "allocation": 0.5, "universe": ["AAPL", "KO"]}])
    kwargs = {"workdir": tmp_path / "run", "extra_plugins": [("parity_kit_test", ParityPlugin())]}
    report = check_replay_matches_backtest(path, "2021-02-01", "2021-03-31", **kwargs)
    assert not report.ok
    assert report.difference is not None and report.difference.symbol in {"AAPL", "KO"}
    with pytest.raises(AssertionError, match=r"first difference: (AAPL|KO) entered 2021-0\d-\d\d") as caught:
        assert_replay_matches_backtest(path, "2021-02-01", "2021-03-31",
                                       workdir=tmp_path / "again", extra_plugins=kwargs["extra_plugins"])
    assert "replay" in str(caught.value) and "backtest" in str(caught.value)
