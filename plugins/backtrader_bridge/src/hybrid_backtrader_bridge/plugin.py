"""Entry point of the ``backtrader`` plugin (group ``hybrid``): registers the backtest engine.

Importing this module does not import Backtrader (the plugin host loads it for every command).
"""

from __future__ import annotations

from hybrid_core import hookimpl

from .engine import BacktraderEngine

HYBRID_CONTRACT = "1.1"
"""The hybrid contract version this plugin is built for: 1.1 added backtest engines."""


@hookimpl
def hybrid_register_backtest_engines(register):  # type: ignore[no-untyped-def]
    """Register :class:`BacktraderEngine` as backtest engine ``backtrader``."""
    register(BacktraderEngine)
