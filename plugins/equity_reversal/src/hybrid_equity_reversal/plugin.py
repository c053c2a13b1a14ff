"""Entry point of the ``equity_reversal`` plugin (group ``hybrid``): registers the strategy."""

from __future__ import annotations

from hybrid_core import hookimpl

from .strategy import EquityReversal


@hookimpl
def hybrid_register_strategies(register):  # type: ignore[no-untyped-def]
    """Register :class:`EquityReversal` as strategy ``equity_reversal``."""
    register(EquityReversal)
