"""Fill handling of the live cycle: what the broker filled, recorded once with its position.

:class:`FillRecorder` moves the position in the state database (an entry opens it, a sell
closes it) and the order to ``filled`` through :class:`~hybrid_core.live.lifecycle.OrderStates`,
with one ``filled`` event carrying the broker's price, time (UTC) and commission. Which fills
there are is the order desk's question (:meth:`~hybrid_core.live.orders.OrderDesk.reconcile`):
the broker's ``sync`` report plus every open order of ours looked up by id.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..contracts import OrderStatus
from ..ops.state import StateStore, StoredPosition, iso_date
from .events import OrderEvent
from .lifecycle import OrderStates, is_terminal


class FillRecorder:
    """Records the fills of one run's orders: position, order state and audit event together."""

    def __init__(self, state: StateStore, states: OrderStates) -> None:
        self.state = state
        self.states = states

    def record(self, fills: Sequence[OrderStatus], log: Any) -> list[OrderStatus]:
        """Open or close the position of each new fill, in time order (sells first at one time);
        returns the fills recorded now."""
        recorded = []
        for fill in sorted(fills, key=lambda f: (str(f.filled_at or ""), 0 if f.side == "sell" else 1)):
            stored = self.state.get_order(fill.client_order_id)
            if stored is None:
                log.warning("Broker reports a fill for an order this run did not send: {cid} {symbol}",
                            cid=fill.client_order_id, symbol=fill.symbol)
                continue
            if is_terminal(stored.status):
                if stored.status != "filled":
                    self.states.move(stored, "filled", log)  # logs the conflict, keeps the first
                continue
            price = float(fill.filled_avg_price or 0.0)
            when = fill.filled_at or ""
            commission = float(getattr(fill, "commission", 0.0) or 0.0)
            if fill.side == "buy":
                self.state.open_position(StoredPosition(
                    symbol=fill.symbol, qty=float(fill.filled_qty), entry_price=price,
                    entry_date=iso_date(when) or "", strategy=stored.strategy or "",
                    opened_by=fill.client_order_id))
            else:
                self.state.close_position(fill.symbol)
            reason = fill_reason(stored.side, stored.order_type, stored.reason)
            self.states.move(stored, "filled", log, event=OrderEvent.filled(
                stored, fill.filled_qty, price, when, reason, order_id=fill.broker_order_id, commission=commission),
                broker_order_id=fill.broker_order_id or stored.broker_order_id, filled_qty=fill.filled_qty,
                filled_avg_price=price, filled_at=when, commission=commission)
            log.info("Fill: {side} {qty} {symbol} at {price}", side=fill.side, qty=fill.filled_qty,
                     symbol=fill.symbol, price=price, client_order_id=fill.client_order_id, reason=reason)
            recorded.append(fill)
        return recorded


def fill_reason(side: str, order_type: str, reason: str | None) -> str:
    """The reason a fill carries into the round trip: ``stop_loss`` for a stop order's fill."""
    if side == "buy":
        return reason or "entry"
    return "stop_loss" if order_type != "market" else (reason or "signal")
