"""hybrid plugin ``crypto_adx``: ADX-gated mean reversion on crypto pairs.

Buys a pair whose close sits more than 2 standard deviations under its 20-bar mean while
ADX(14) says the market is ranging (ADX < 25), and sells it once the close is back at or
above the mean (STRATEGIES.md, "CryptoReversal").
"""

from .strategy import CryptoAdxReversion

__version__ = "0.1.0"

__all__ = ["CryptoAdxReversion", "__version__"]
