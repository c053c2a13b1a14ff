"""Live/backtest parity for a plugin's own tests: the live cycle replayed over history must
give the backtest's trades.

A strategy that behaves differently when it sees a growing window one session at a time (as
the live cycle does) than when it sees the whole history at once (as the backtest does) has
a live/backtest mismatch; :func:`assert_replay_matches_backtest` finds the first differing
trade and reports both sides with the signal numbers behind the decision.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pandas as pd

from ..engine.backtest import default_warmup, run_backtest
from ..engine.replay import TradeDifference, compare_trades, replay, signal_numbers
from ..errors import ProfileError
from ..live.runner import RunOptions, RunSession
from ..plugins import PluginHost, build_plugin_host
from ..profile import load_profile


@attrs.define
class ParityReport:
    """Trades of both sides and the first difference (None when they match)."""

    replay_trades: pd.DataFrame
    backtest_trades: pd.DataFrame
    difference: TradeDifference | None
    signal: dict[str, Any]

    @property
    def ok(self) -> bool:
        """True when replay and backtest agree trade for trade."""
        return self.difference is None


@contextlib.contextmanager
def _naming_failed_plugins(host: PluginHost) -> Iterator[None]:
    """A profile error (``unknown strategy 'x'``) also names the plugins that failed to load, if any."""
    try:
        yield
    except ProfileError as exc:
        if not host.errors:
            raise
        failed = "; ".join(f"{e.name} ({e.package}): {e.error}" for e in host.errors)
        raise ProfileError(f"{exc} (plugins that failed to load: {failed})") from exc


def check_replay_matches_backtest(profile_path: str | Path, start: Any, end: Any, *,
                                  workdir: str | Path | None = None, extra_plugins: Any = None) -> ParityReport:
    """Replay ``profile_path``'s live cycle over [start, end] through the paper simulator, backtest
    the same window, and compare (prices to 1e-9 relative). ``workdir`` holds the run's files."""
    first, last = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
    profile = load_profile(profile_path)
    profile.broker.name = "paper"
    host = build_plugin_host(extra_plugins=extra_plugins)
    with _naming_failed_plugins(host), tempfile.TemporaryDirectory(prefix="hybrid-parity-") as tmp:
        out = Path(workdir) if workdir else Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        profile.broker.params = {**profile.broker.params, "account_file": str(out / "paper.sqlite")}
        options = RunOptions(durable=False, simulated_clock=True,
                             trade_log=str(out / "order_events.csv"), state_db=str(out / "state.sqlite"),
                             health_file=str(out / "hybrid.health"))
        with RunSession(profile, host.registry, options) as session:
            warmup = profile.backtest.warmup
            if warmup is None:
                warmup = default_warmup(session.components.strategies)
            result = replay(session, first, last, warmup=warmup, progress=False)
            cash = float(getattr(session.components.broker.params, "initial_cash", profile.backtest.cash))
            backtest = run_backtest(result.panel, session.components.strategies, session.components.risk_rules,
                                    cash=cash, start=result.start, profile_name=profile.name, progress=False)
            difference = compare_trades(result.trades, backtest.trades)
            numbers: dict[str, Any] = {}
            if difference is not None:
                before = result.panel.dates[result.panel.dates < difference.date]
                if len(before):
                    numbers = signal_numbers(session.components.strategies, result.panel, difference.symbol,
                                             before[-1], session.cycle.window_start(before[-1]))
    return ParityReport(result.trades, backtest.trades, difference, numbers)


def assert_replay_matches_backtest(profile_path: str | Path, start: Any, end: Any, **kwargs: Any) -> ParityReport:
    """:func:`check_replay_matches_backtest`, raising ``AssertionError`` with the first difference."""
    report = check_replay_matches_backtest(profile_path, start, end, **kwargs)
    if report.ok and not len(report.backtest_trades):
        raise AssertionError("replay and backtest both made 0 trades: nothing was compared; "
                             "widen the window so the strategy trades")
    if report.difference is not None:
        raise AssertionError(f"{report.difference.describe()}\n  signal at the close before: {report.signal}")
    return report
