"""hybrid plugin ``backtrader``: hybrid's bars as Backtrader feeds, any hybrid strategy in Backtrader.

- :func:`to_feeds`: one ``bt.feeds.PandasData`` per symbol from hybrid's canonical bars;
- :func:`cerebro`: a ``bt.Cerebro`` holding a run profile's bars, for your own ``bt.Strategy``;
- :class:`HybridStrategy`: a ``bt.Strategy`` trading hybrid strategies by STRATEGIES.md;
- ``hybrid backtest PROFILE --engine backtrader`` (:class:`BacktraderEngine`).

Backtrader is imported on first use of these names, not when the plugin host loads the plugin.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

BACKTRADER_VERSION = "1.9.78.123"
"""The Backtrader release the bridge is pinned to and checked against (its last release)."""

_LAZY = {
    "to_feeds": "feeds",
    "HybridBars": "feeds",
    "cerebro": "session",
    "HybridStrategy": "strategy",
    "ContractBroker": "broker",
    "contract_broker": "broker",
    "BacktraderEngine": "engine",
    "run_in_backtrader": "engine",
}

__all__ = ["BACKTRADER_VERSION", "__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
