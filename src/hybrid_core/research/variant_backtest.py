"""The sweep's one seam to the backtest engine: load a window's bars, compute a strategy's
signals, and backtest a profile variant on preloaded bars with those signals.

Everything a sweep asks of ``engine/`` goes through the functions here, so that a change of
the engine's API is one small change in this module. A variant is backtested exactly as
``hybrid backtest`` would backtest that profile over the same window, except that the bars and
the signals come from the worker's caches instead of being loaded and computed again.

Like ``hybrid backtest``, a variant starts warm: ``backtest.warmup`` sessions of bars before the
start feed the strategies (``0``: a cold start). Walk-forward folds inside the sweep's window
are warm the same way: the strategies' signals are computed once over all the loaded bars, so
the indicators at a fold's first session have seen the sessions before it; orders are decided
only from the fold's first session on, from a flat account holding the profile's cash.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import numpy as np
import pandas as pd

from ..contracts import Panel, Signals, Strategy
from ..data.loading import policy_for
from ..engine import stats
from ..engine.backtest import (
    BacktestResult,
    Window,
    compute_signals,
    default_warmup,
    load_window,
    lookahead_check,
    run_backtest,
)
from ..engine.benchmark import benchmark_curve
from ..errors import DataError
from ..profile import Components, RunProfile

METRIC_COLUMNS = ("total_return", "cagr", "sharpe", "sortino", "max_drawdown", "trades", "win_rate", "exposure",
                  "excess_return", "alpha", "beta", "information_ratio", "tracking_error", "refused_orders")
"""The statistics of one set in a sweep's results table (from the one statistics module)."""


@attrs.frozen
class DateSpan:
    """A span of sessions, both ends included; None is unbounded."""

    start: pd.Timestamp | None
    end: pd.Timestamp | None

    def label(self) -> str:
        """``2015-01-02..2017-12-29``."""
        return f"{_day(self.start)}..{_day(self.end)}"


def _day(stamp: pd.Timestamp | None) -> str:
    return "open" if stamp is None else str(pd.Timestamp(stamp).date())


def load_bars(profile: RunProfile, components: Components, span: DateSpan) -> Window:
    """The bars a backtest of a variant over ``span`` needs, loaded as ``hybrid backtest`` loads them:
    ``backtest.warmup`` sessions before the start (default: the strategies' longest lookback)."""
    warmup = profile.backtest.warmup
    if warmup is None:
        warmup = default_warmup(components.strategies)
    return load_window(components.data_source, components.strategies, span.start, span.end, warmup,
                       quality=policy_for(profile.data.quality, live=False))


def trading_dates(panel: Panel, window: DateSpan) -> pd.DatetimeIndex:
    """The sessions of ``panel`` a backtest over ``window`` trades on."""
    dates = panel.dates
    keep = np.ones(len(dates), dtype=bool)
    if window.start is not None:
        keep &= dates >= window.start
    if window.end is not None:
        keep &= dates <= window.end
    return dates[keep]


def strategy_signals(strategy: Strategy, panel: Panel) -> Signals:
    """A strategy's signals over all of ``panel`` (the engine's own computation)."""
    return compute_signals(strategy, panel)


def check_lookahead(strategy: Strategy, panel: Panel, cuts: int) -> str:
    """The engine's quick no-lookahead check of one strategy (raises StrategyError when it fails)."""
    return lookahead_check([strategy], panel, n_cuts=cuts)[0]


def backtest_variant(profile: RunProfile, components: Components, panel: Panel, signals: Mapping[str, Signals],
                     span: DateSpan) -> BacktestResult:
    """Backtest a profile variant over ``span`` on preloaded ``panel`` (warm-up bars included) with
    precomputed ``signals`` (by strategy name), with the profile's cash and costs: orders are
    decided from the span's first session on, the bars before it only warm the strategies up."""
    spec = profile.backtest
    traded = trading_dates(panel, span)
    if not len(traded):
        raise DataError(f"no sessions with bars in {span.label()}")
    if panel.dates[-1] > traded[-1]:  # a walk-forward fold: nothing after its last session
        panel = panel.select(None, end=traded[-1])
    return run_backtest(panel, components.strategies, components.risk_rules, cash=float(spec.cash),
                        slippage_bps=float(spec.slippage_bps), commission=float(spec.commission),
                        signals=signals, start=traded[0], profile_name=profile.name, progress=False)


def benchmark_values(profile: RunProfile, components: Components, panel: Panel,
                     dates: pd.DatetimeIndex) -> tuple[str, pd.Series]:
    """The profile's benchmark (``backtest.benchmark``) as a value curve from its cash on ``dates``."""
    return benchmark_curve(profile.backtest.benchmark, panel, components.strategies, components.data_source,
                           dates, float(profile.backtest.cash), quality=policy_for(profile.data.quality, live=False))


def set_metrics(result: BacktestResult, benchmark: tuple[str, pd.Series] | None) -> dict[str, Any]:
    """The :data:`METRIC_COLUMNS` of one backtest, from the summary ``hybrid backtest`` writes."""
    total = stats.summarize(result.equity, result.trades, result.fills, result.initial_cash,
                            benchmark=benchmark)["total"]
    total["exposure"] = total.get("average_exposure")
    total["refused_orders"] = len(result.refused)
    return {name: total.get(name, float("nan")) for name in METRIC_COLUMNS}


def window_notes(strategies: Sequence[Strategy], window: Window) -> list[str]:
    """The engine's survivorship-bias warnings for a variant's strategies, and a short warm-up's note."""
    from ..engine.backtest import survivorship_warnings

    return [*survivorship_warnings(strategies, window.trading), *([window.note] if window.note else [])]
