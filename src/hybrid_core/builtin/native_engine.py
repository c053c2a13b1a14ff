"""The ``native`` backtest engine: hybrid's own backtester, the default of ``hybrid backtest``.

Registered as the built-in plugin ``native_engine`` through the same hook as engines from
other packages (the Backtrader bridge registers ``backtrader`` there).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..contracts import BacktestEngine, BacktestRequest
from ..hookspecs import hookimpl

if TYPE_CHECKING:
    from ..engine.backtest import BacktestResult


class NativeEngine(BacktestEngine):
    """hybrid's own backtester: one portfolio book over numpy arrays (the default engine)."""

    name = "native"

    def run(self, request: BacktestRequest) -> BacktestResult:
        from ..engine.backtest import run_backtest

        return run_backtest(request.panel, request.strategies, request.risk_rules, cash=request.cash,
                            slippage_bps=request.slippage_bps, commission=request.commission,
                            start=request.start, profile_name=request.profile_name, progress=request.progress,
                            signals=request.signals)


@hookimpl
def hybrid_register_backtest_engines(register):  # type: ignore[no-untyped-def]
    """Register the native engine."""
    register(NativeEngine)
