"""The hybrid internals the bridge uses, imported in one place (one seam to adapt when they move).

Decisions become orders in hybrid's planner and trades are hybrid's round trips, so a
Backtrader run and a native run differ only in what Backtrader does: fills, stops, cash,
portfolio value and the calendar of mixed feeds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from hybrid_core.contracts import Position, RiskRule
from hybrid_core.engine.backtest import (
    BacktestResult,
    DecisionTable,
    compute_signals,
    load_window,
    trades_frame,
)
from hybrid_core.engine.book import PortfolioBook, Trade
from hybrid_core.engine.planner import plan_orders

__all__ = ["BacktestResult", "DecisionTable", "Trade", "compute_signals", "load_window", "plan_orders",
           "stop_pricer", "trades_frame"]


def stop_pricer(rules: Sequence[RiskRule]) -> Callable[[Position], float | None]:
    """The stop price the risk rules give a freshly opened position, exactly as the native book sets it."""
    return PortfolioBook(0.0, risk_rules=rules).stop_for
