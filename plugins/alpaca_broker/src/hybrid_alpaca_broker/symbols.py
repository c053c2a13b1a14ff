"""Crypto symbol forms: hybrid and Alpaca orders/data use ``BTC/USD``, Alpaca positions ``BTCUSD``."""

from __future__ import annotations

CRYPTO_QUOTES = ("USDT", "USDC", "USD", "BTC")
"""Quote currencies recognised when splitting a position symbol such as ``ETHBTC``."""


def to_pair(symbol: str, *, crypto: bool) -> str:
    """Hybrid's form of a symbol the broker reported: ``BTCUSD`` -> ``BTC/USD`` when ``crypto``."""
    if not crypto or "/" in symbol:
        return symbol
    for quote in CRYPTO_QUOTES:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return f"{symbol[:-len(quote)]}/{quote}"
    return symbol


def to_position_symbol(symbol: str) -> str:
    """Alpaca's position form of a symbol: ``BTC/USD`` -> ``BTCUSD``; equities unchanged."""
    return symbol.replace("/", "")
