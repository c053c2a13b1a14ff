"""The ``backtrader`` backtest engine: ``hybrid backtest PROFILE --engine backtrader``.

This module is what the plugin host imports to list the engine, so it must not import
Backtrader: :meth:`BacktraderEngine.run` does, when a run asks for it.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from hybrid_core.contracts import BacktestEngine, BacktestRequest

if TYPE_CHECKING:
    from hybrid_core.engine.backtest import BacktestResult


class BacktraderEngine(BacktestEngine):
    """Backtrader 1.9.78 as the engine: hybrid's signals and account, Backtrader's fills, stops and cash."""

    name = "backtrader"

    def run(self, request: BacktestRequest) -> BacktestResult:
        """Run ``request`` in a Cerebro of one feed per symbol and return hybrid's result."""
        return run_in_backtrader(request)


def run_in_backtrader(request: BacktestRequest) -> BacktestResult:
    """Backtest ``request`` in Backtrader: the same result (round trips, equity from ``start``, fills,
    refused orders) as the native engine.

    The signals see the whole panel (the warm-up included); Cerebro gets feeds from ``start`` on,
    since nothing can be held or pending before it. Timings: ``feeds`` (building them),
    ``signals`` (the strategies, once), ``loop`` (Cerebro's run, loading the feeds included) and
    ``engine`` (all of it).
    """
    import backtrader as bt
    import numpy as np

    from . import _core
    from .broker import contract_broker
    from .feeds import to_feeds
    from .strategy import HybridStrategy

    t0 = time.perf_counter()
    panel = request.panel
    trading = panel if request.start is None or panel.dates[0] >= request.start else panel.select(start=request.start)
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.broker = contract_broker(request.cash, slippage_bps=request.slippage_bps,
                                     commission=request.commission)
    for feed in to_feeds(trading):
        cerebro.adddata(feed)
    t_feeds = time.perf_counter()
    cerebro.addstrategy(HybridStrategy, strategies=list(request.strategies), risk_rules=list(request.risk_rules),
                        panel=panel, start=request.start, profile_name=request.profile_name,
                        progress=request.progress, signals=request.signals)
    strategy = cerebro.run()[0]
    t_run = time.perf_counter()
    signals = strategy.timings["signals"]
    closes = trading.close.to_numpy(dtype="float64", na_value=np.nan)
    timings = {"feeds": t_feeds - t0, "signals": signals, "loop": t_run - t_feeds - signals,
               "engine": time.perf_counter() - t0}
    return _core.BacktestResult(equity=strategy.equity(), trades=strategy.round_trips(), fills=strategy.fills,
                                strategies=[s.name for s in request.strategies], initial_cash=float(request.cash),
                                timings=timings, bars=int(np.count_nonzero(~np.isnan(closes))),
                                refused=strategy.refused)
