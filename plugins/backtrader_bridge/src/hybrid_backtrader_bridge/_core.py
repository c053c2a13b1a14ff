"""The hybrid internals the bridge uses, imported in one place (one seam to adapt when they move).

The account at each close (positions, pending orders, time-stop counts, marks, the plan, the
vetting of every risk rule and guard, the round trips) is hybrid's own
:class:`~hybrid_core.account.state.Account`, the one under the native backtest, the paper
simulator and the live cycle. So a Backtrader run and a native run differ only in what
Backtrader does: fills, stops, cash, portfolio value and the calendar of mixed feeds.
"""

from __future__ import annotations

from hybrid_core.account.decisions import DecisionTable
from hybrid_core.account.ledger import round_trips_frame
from hybrid_core.account.state import Account
from hybrid_core.data.loading import policy_for
from hybrid_core.engine.backtest import BacktestResult, compute_signals, load_window

__all__ = ["Account", "BacktestResult", "DecisionTable", "compute_signals", "load_window", "policy_for",
           "round_trips_frame"]
