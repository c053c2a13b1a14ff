"""alpaca-py models -> hybrid value types (symbols in hybrid's ``BTC/USD`` form)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hybrid_core.contracts import AccountSnapshot, BrokerPosition, OrderStatus

from .order_rules import OrderPlan
from .symbols import to_pair

STATUS_MAP = {
    "pending_new": "pending", "accepted_for_bidding": "accepted", "held": "new",
    "pending_cancel": "new", "pending_replace": "new", "replaced": "canceled",
    "done_for_day": "accepted", "stopped": "accepted", "calculated": "accepted",
    "suspended": "rejected",
}
OPEN_STATES = frozenset({"pending", "new", "accepted", "partially_filled"})


def _value(enum_or_str: Any) -> str:
    return str(getattr(enum_or_str, "value", enum_or_str) or "")


def _num(value: Any) -> float | None:
    return None if value in (None, "") else float(value)


def is_crypto_class(asset_class: Any) -> bool:
    """True for Alpaca's ``crypto`` asset class."""
    return _value(asset_class) == "crypto"


def utc_iso(moment: datetime | None) -> str | None:
    """A broker timestamp as ISO 8601 in UTC with a ``Z`` (a naive one is taken as UTC)."""
    if moment is None:
        return None
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.isoformat().replace("+00:00", "Z")


def order_status(order: Any) -> OrderStatus:
    """An alpaca-py ``Order`` as hybrid's :class:`OrderStatus`: quantities, prices and times as
    Alpaca holds them (stop price after its rounding, times in UTC)."""
    raw = _value(order.status)
    return OrderStatus(
        client_order_id=order.client_order_id,
        broker_order_id=str(order.id),
        symbol=to_pair(order.symbol or "", crypto=is_crypto_class(order.asset_class)),
        side=_value(order.side) or "buy",  # type: ignore[arg-type]
        qty=_num(order.qty) or 0.0,
        status=STATUS_MAP.get(raw, raw),  # type: ignore[arg-type]
        filled_qty=_num(order.filled_qty) or 0.0,
        filled_avg_price=_num(order.filled_avg_price),
        filled_at=utc_iso(order.filled_at),
        order_type=_value(order.order_type or order.type) or "market",
        stop_price=_num(order.stop_price),
        submitted_at=utc_iso(order.submitted_at or order.created_at),
    )


def position_symbol(position: Any) -> str:
    """An alpaca-py ``Position``'s symbol in hybrid's form (``BTCUSD`` -> ``BTC/USD``)."""
    return to_pair(position.symbol, crypto=is_crypto_class(position.asset_class))


def broker_position(position: Any, min_order_qty: float | None = None) -> BrokerPosition:
    """An alpaca-py ``Position`` as hybrid's :class:`BrokerPosition`."""
    return BrokerPosition(
        symbol=position_symbol(position),
        qty=float(position.qty),
        avg_entry_price=float(position.avg_entry_price),
        min_order_qty=min_order_qty,
    )


def account_snapshot(account: Any) -> AccountSnapshot:
    """An alpaca-py ``TradeAccount`` as hybrid's :class:`AccountSnapshot`."""
    return AccountSnapshot(
        cash=_num(account.cash) or 0.0,
        equity=_num(account.equity) or _num(account.portfolio_value) or 0.0,
        buying_power=_num(account.buying_power) or 0.0,
        status=_value(account.status),
        trading_blocked=bool(account.trading_blocked or account.account_blocked),
    )


def sdk_order_request(plan: OrderPlan) -> Any:
    """The alpaca-py request object that sends ``plan``."""
    from alpaca.trading.enums import OrderSide, TimeInForce
    from alpaca.trading.requests import (
        LimitOrderRequest,
        MarketOrderRequest,
        StopLimitOrderRequest,
        StopOrderRequest,
    )

    common = dict(symbol=plan.symbol, qty=plan.qty, side=OrderSide(plan.side),
                  time_in_force=TimeInForce(plan.time_in_force), client_order_id=plan.client_order_id)
    if plan.order_type == "stop":
        return StopOrderRequest(stop_price=plan.stop_price, **common)
    if plan.order_type == "stop_limit":
        return StopLimitOrderRequest(stop_price=plan.stop_price, limit_price=plan.limit_price, **common)
    if plan.order_type == "limit":
        return LimitOrderRequest(limit_price=plan.limit_price, **common)
    return MarketOrderRequest(**common)
