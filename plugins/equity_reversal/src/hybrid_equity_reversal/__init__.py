"""hybrid plugin ``equity_reversal``: weekly bottom-decile short-term reversal on NYSE equities.

At the last NYSE session of each ISO week the strategy buys the ``decile`` of its universe
with the lowest return over the previous 5 sessions, and sells, at the next weekly
rebalance, the names that are no longer selected (STRATEGIES.md, "EquityReversal").
"""

from .strategy import EquityReversal

__version__ = "0.1.0"

__all__ = ["EquityReversal", "__version__"]
