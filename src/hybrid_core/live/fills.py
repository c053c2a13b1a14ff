"""Fill handling of the live cycle: what the broker filled since the last cycle, recorded once.

:class:`FillRecorder` gathers the fills the broker reports plus those of any open order of
ours it has filled or closed meanwhile (asked by id, which catches what a crashed run never
recorded), then moves positions in the state database and writes one ``filled`` event each.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from ..account.boundary import call
from ..contracts import Broker, OrderStatus, Panel
from ..ops.state import StateStore, StoredPosition
from .events import AuditTrail, OrderEvent

CLOSED_AT_BROKER = frozenset({"canceled", "rejected", "expired"})


class FillRecorder:
    """Collects and records the fills of one run's orders."""

    def __init__(self, broker: Broker, state: StateStore, audit: AuditTrail) -> None:
        self.broker = broker
        self.state = state
        self.audit = audit

    def sync(self, panel: Panel, as_of: pd.Timestamp, log: Any) -> list[OrderStatus]:
        """Let the broker catch up to ``as_of``, then record every new fill; returns the fills."""
        fills = self.collect(call(self.broker, "sync", panel, as_of), log)
        self.record(fills, log)
        return fills

    def collect(self, reported: Sequence[OrderStatus], log: Any) -> list[OrderStatus]:
        """Fills the broker reported, plus any open order of ours it has filled or closed meanwhile."""
        fills = list(reported)
        seen = {f.client_order_id for f in fills}
        for order in self.state.orders(open_only=True):
            if order.client_order_id in seen or order.status == "submitting":
                continue
            status = call(self.broker, "get_order", order.client_order_id)
            if status is None:
                continue
            if status.status == "filled":
                fills.append(status)
            elif status.status in CLOSED_AT_BROKER:
                self.state.update_order(order.client_order_id, status=status.status)
                log.warning("Order {cid} ({symbol} {side}) is {status} at the broker", cid=order.client_order_id,
                            symbol=order.symbol, side=order.side, status=status.status)
                if order.order_type != "market":
                    self.state.set_stop(order.symbol, None, None)
        fills.sort(key=lambda f: (str(f.filled_at or ""), 0 if f.side == "sell" else 1))
        return fills

    def record(self, fills: Sequence[OrderStatus], log: Any) -> None:
        """Open or close the position of each new fill and write its ``filled`` event."""
        for fill in fills:
            stored = self.state.get_order(fill.client_order_id)
            if stored is None:
                log.warning("Broker reports a fill for an order this run did not send: {cid} {symbol}",
                            cid=fill.client_order_id, symbol=fill.symbol)
                continue
            if stored.status == "filled":
                continue
            price = float(fill.filled_avg_price or 0.0)
            when = fill.filled_at or ""
            commission = float(getattr(fill, "commission", 0.0) or 0.0)
            self.state.update_order(fill.client_order_id, status="filled", filled_qty=fill.filled_qty,
                                    filled_avg_price=price, filled_at=when, commission=commission)
            if fill.side == "buy":
                self.state.open_position(StoredPosition(
                    symbol=fill.symbol, qty=float(fill.filled_qty), entry_price=price,
                    entry_date=pd.Timestamp(when).strftime("%Y-%m-%d"), strategy=stored.strategy or "",
                    opened_by=fill.client_order_id))
            else:
                self.state.close_position(fill.symbol)
            reason = fill_reason(stored.side, stored.order_type, stored.reason)
            log.info("Fill: {side} {qty} {symbol} at {price}", side=fill.side, qty=fill.filled_qty,
                     symbol=fill.symbol, price=price, client_order_id=fill.client_order_id, reason=reason)
            self.audit.record(OrderEvent.filled(stored, fill.filled_qty, price, when, reason,
                                                order_id=fill.broker_order_id, commission=commission))


def fill_reason(side: str, order_type: str, reason: str | None) -> str:
    """The reason a fill carries into the round trip: ``stop_loss`` for a stop order's fill."""
    if side == "buy":
        return reason or "entry"
    return "stop_loss" if order_type != "market" else (reason or "signal")
