"""Alpaca's order rules, applied before an order is sent (pure functions, no I/O).

- Crypto: market, limit and stop_limit only (a ``stop`` becomes a ``stop_limit`` whose limit
  is ``crypto_stop_limit_offset`` beyond the stop); time_in_force gtc or ioc; quantity rounded
  down to ``min_trade_increment``, refused below ``min_order_size``; no shorting, a sell is
  capped at the quantity available.
- Equities: whole shares unless the asset is fractionable; fractional orders use tif ``day``;
  a sell is capped at the position; market orders while the market is closed are queued as
  ``day`` orders (Alpaca routes them to the next open) or skipped (``equity_when_closed``).
  ``opg`` is kept only when asked for, as Alpaca rejects it between 9:28 and 19:00 ET.
- Stop prices are rounded to the asset's price increment (a cent, or 1e-4 under $1).
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal
from typing import Any

import attrs

from hybrid_core.contracts import OrderRequest
from hybrid_core.errors import OrderRejected


class OrderRefused(OrderRejected):
    """An order that breaks Alpaca's rules (not sent) or that Alpaca refused; the message says why."""


@attrs.frozen
class AssetRules:
    """The parts of ``GET /v2/assets/{symbol}`` that shape an order."""

    symbol: str
    crypto: bool
    tradable: bool = True
    fractionable: bool = False
    min_order_size: float | None = None
    min_trade_increment: float | None = None
    price_increment: float | None = None

    @classmethod
    def from_asset(cls, symbol: str, asset: Any) -> AssetRules:
        """Build from an alpaca-py ``Asset`` model."""
        asset_class = getattr(asset.asset_class, "value", asset.asset_class)
        return cls(symbol=symbol, crypto=asset_class == "crypto", tradable=bool(asset.tradable),
                   fractionable=bool(asset.fractionable), min_order_size=asset.min_order_size,
                   min_trade_increment=asset.min_trade_increment,
                   price_increment=asset.price_increment)

    @property
    def min_order_qty(self) -> float | None:
        """The smallest quantity an order may carry: crypto's ``min_order_size`` (or increment),
        one share for an equity that is not fractionable, None when Alpaca sets no quantity floor."""
        if self.crypto:
            sizes = [x for x in (self.min_order_size, self.min_trade_increment) if x]
            return max(sizes) if sizes else None
        return None if self.fractionable else 1.0


@attrs.frozen
class OrderPlan:
    """An order as it will be sent to Alpaca."""

    symbol: str
    side: str
    qty: float
    order_type: str
    time_in_force: str
    stop_price: float | None = None
    limit_price: float | None = None
    client_order_id: str = ""


@attrs.frozen
class OrderPolicy:
    """Profile choices that shape orders (from the broker's params)."""

    equity_when_closed: str = "queue"
    stop_time_in_force: str = "gtc"
    crypto_stop_limit_offset: float = 0.01


def round_down(qty: float, increment: float | None) -> float:
    """``qty`` rounded down to a multiple of ``increment`` (exact decimal arithmetic)."""
    if not increment or increment <= 0:
        return qty
    step = Decimal(repr(increment))
    return float((Decimal(repr(qty)) / step).to_integral_value(rounding=ROUND_DOWN) * step)


def round_price(price: float, increment: float | None) -> float:
    """A price on the asset's tick: its ``price_increment``, else a cent (1e-4 under $1)."""
    tick = increment if increment and increment > 0 else (0.01 if price >= 1 else 0.0001)
    step = Decimal(repr(tick))
    return float((Decimal(repr(price)) / step).quantize(Decimal(1)) * step)


def plan_order(request: OrderRequest, rules: AssetRules, *, held_qty: float, market_open: bool,
               policy: OrderPolicy) -> OrderPlan:
    """Fit ``request`` to Alpaca's rules, or raise :class:`OrderRefused` naming the reason.

    ``held_qty`` is the quantity a sell may use (the position's available quantity).
    """
    symbol = request.symbol
    if not rules.tradable:
        raise OrderRefused(f"{symbol} is not tradable at Alpaca (asset endpoint says tradable=false)")
    if not request.qty > 0:
        raise OrderRefused(f"{symbol}: quantity {request.qty} is not positive")
    qty = request.qty
    if request.side == "sell":
        if held_qty <= 0:
            kind = "crypto shorting" if rules.crypto else "shorting"
            raise OrderRefused(f"{symbol}: sell refused, nothing held ({kind} is not allowed)")
        qty = min(qty, held_qty)
    if rules.crypto:
        return _plan_crypto(request, rules, qty, policy)
    return _plan_equity(request, rules, qty, market_open, policy)


def _plan_crypto(request: OrderRequest, rules: AssetRules, qty: float, policy: OrderPolicy) -> OrderPlan:
    symbol = request.symbol
    qty = round_down(qty, rules.min_trade_increment)
    minimum = rules.min_order_size or 0.0
    if qty <= 0 or qty < minimum:
        raise OrderRefused(
            f"{symbol}: quantity {request.qty:g} rounds down to {qty:g}, below Alpaca's "
            f"min_order_size {minimum:g} (increment {rules.min_trade_increment or 0:g})")
    tif = request.time_in_force if request.time_in_force in ("gtc", "ioc") else "gtc"
    order_type, stop, limit = request.order_type, request.stop_price, request.limit_price
    if order_type in ("stop", "stop_limit"):
        if stop is None:
            raise OrderRefused(f"{symbol}: a {order_type} order needs a stop_price")
        if limit is None:
            offset = policy.crypto_stop_limit_offset
            limit = stop * (1 - offset) if request.side == "sell" else stop * (1 + offset)
        order_type = "stop_limit"
        stop = round_price(stop, rules.price_increment)
        limit = round_price(limit, rules.price_increment)
    return OrderPlan(symbol, request.side, qty, order_type, tif, stop, limit, request.client_order_id)


def _plan_equity(request: OrderRequest, rules: AssetRules, qty: float, market_open: bool,
                 policy: OrderPolicy) -> OrderPlan:
    symbol = request.symbol
    whole = float(int(qty))
    if not rules.fractionable or request.time_in_force == "opg":
        qty = whole
    else:
        qty = round_down(qty, 1e-9)
    if qty <= 0:
        raise OrderRefused(f"{symbol}: quantity {request.qty:g} is under one share and "
                           f"{symbol} is not fractionable at Alpaca")
    fractional = qty != int(qty)
    order_type, stop, limit = request.order_type, request.stop_price, request.limit_price
    if order_type in ("stop", "stop_limit"):
        if stop is None:
            raise OrderRefused(f"{symbol}: a {order_type} order needs a stop_price")
        stop = round_price(stop, rules.price_increment)
        limit = round_price(limit, rules.price_increment) if limit is not None else None
        tif = "day" if fractional else policy.stop_time_in_force
        return OrderPlan(symbol, request.side, qty, order_type, tif, stop, limit, request.client_order_id)
    tif = request.time_in_force
    if not market_open:
        if policy.equity_when_closed == "skip":
            raise OrderRefused(f"{symbol}: market closed and equity_when_closed=skip; order not sent")
        if tif not in ("day", "opg"):
            tif = "day"
    if fractional:
        tif = "day"
    return OrderPlan(symbol, request.side, qty, order_type, tif, stop, limit, request.client_order_id)
