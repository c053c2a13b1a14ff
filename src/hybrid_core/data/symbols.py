"""Symbol spelling at Yahoo Finance versus the rest of hybrid.

hybrid writes crypto pairs ``BTC/USD`` and share classes ``BRK.B`` (Alpaca's form); Yahoo
writes ``BTC-USD`` and ``BRK-B``. Convert at the yfinance boundary only.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..contracts import is_crypto


def to_yahoo(symbol: str) -> str:
    """Yahoo ticker of a hybrid symbol: ``BTC/USD`` -> ``BTC-USD``, ``BRK.B`` -> ``BRK-B``."""
    symbol = symbol.strip().upper()
    if is_crypto(symbol):
        return symbol.replace("/", "-")
    return symbol.replace(".", "-")


def from_yahoo(ticker: str, crypto_quotes: Iterable[str] = ("USD", "USDT", "EUR")) -> str:
    """hybrid symbol of a Yahoo ticker: ``BTC-USD`` -> ``BTC/USD``, ``BRK-B`` -> ``BRK.B``.

    A ``BASE-QUOTE`` ticker whose quote is a known crypto quote currency is a pair; any
    other dash is a share class.
    """
    ticker = ticker.strip().upper()
    base, sep, quote = ticker.rpartition("-")
    if sep and quote in set(crypto_quotes) and len(base) >= 2:
        return f"{base}/{quote}"
    return ticker.replace("-", ".")


def yahoo_map(symbols: Iterable[str]) -> dict[str, str]:
    """``{yahoo_ticker: hybrid_symbol}`` for ``symbols`` (the inverse is exact for these)."""
    return {to_yahoo(s): s.strip().upper() for s in symbols}
