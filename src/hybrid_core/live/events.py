"""The audit trail of the live cycle: one typed :class:`OrderEvent` per order transition.

Every row of the order-events audit log (``order_events.csv``) is an :class:`OrderEvent` built
by one of its constructors here and written by :class:`AuditTrail`: a decision that never became
an order (refused, dry run), an order's move through the state machine
(:mod:`~hybrid_core.live.lifecycle`), or a fill. The trail hands each written row to the run's
observer (notifications, metrics), so they hear of every transition.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, Literal

import attrs
import pandas as pd

from ..contracts import OrderIntent
from ..ops.observer import RunObserver
from ..ops.state import StoredOrder

EventStatus = Literal["submitted", "accepted", "partially_filled", "filled", "canceled", "rejected", "expired",
                      "unknown", "refused", "dry_run"]
"""An order's move to a state of :mod:`~hybrid_core.live.lifecycle`, or a decision that was
never an order (``refused`` by a risk rule, ``dry_run``)."""
SIMULATED_CLOSE = pd.Timedelta(hours=21)
"""Time of day (UTC) a replayed decision is stamped with: after the NYSE close, before midnight."""


@attrs.frozen
class OrderEvent:
    """One order transition, as the audit log records it."""

    status: EventStatus
    symbol: str
    side: str
    qty: float
    price: float | None
    """Reference close (decisions), stop price (stop orders) or fill price (fills)."""
    client_order_id: str
    strategy: str = ""
    reason: str = ""
    order_id: str = ""
    signal: Mapping[str, Any] = attrs.field(factory=dict)
    timestamp: str = ""
    """ISO time of the fill; empty: stamped when written (wall clock, or the simulated close)."""
    commission: float | None = None

    @classmethod
    def decided(cls, intent: OrderIntent, cid: str, status: EventStatus, note: Mapping[str, Any] | None = None
                ) -> OrderEvent:
        """An order of the plan that was refused or only shown (dry run)."""
        return cls(status=status, symbol=intent.symbol, side=intent.side, qty=intent.qty, price=intent.ref_price,
                   client_order_id=cid, strategy=intent.strategy, reason=intent.reason,
                   signal={**intent.signal, **(note or {})})

    @classmethod
    def moved(cls, order: StoredOrder, status: EventStatus, *, why: str = "", timestamp: str = "") -> OrderEvent:
        """An order's move to ``status`` (a fill has :meth:`filled`): the order's reference close,
        or its stop price as the broker holds it; ``why`` goes into the signal (``error`` for a
        refusal or an unknown outcome, else ``note``)."""
        market = order.order_type == "market"
        note = ({"error" if status in ("rejected", "unknown") else "note": why} if why else {})
        return cls(status=status, symbol=order.symbol, side=order.side, qty=order.qty,
                   price=order.ref_price if market else order.stop_price, client_order_id=order.client_order_id,
                   strategy=order.strategy or "", reason=(order.reason or "") if market else "stop_loss",
                   order_id=order.broker_order_id or "", signal={**order.signal, **note},
                   timestamp=utc_stamp(timestamp))

    @classmethod
    def filled(cls, order: StoredOrder, qty: float, price: float, when: str, reason: str, *,
               order_id: str, commission: float = 0.0) -> OrderEvent:
        """A fill (of a market order or a triggered stop)."""
        return cls(status="filled", symbol=order.symbol, side=order.side, qty=qty, price=price,
                   client_order_id=order.client_order_id, strategy=order.strategy or "", reason=reason,
                   order_id=order_id, signal=order.signal, timestamp=utc_stamp(when), commission=commission)

    def row(self) -> dict[str, Any]:
        """The audit log row."""
        return {"timestamp": self.timestamp, "symbol": self.symbol, "side": self.side, "qty": self.qty,
                "price": self.price, "order_id": self.order_id, "status": self.status,
                "client_order_id": self.client_order_id, "strategy": self.strategy, "reason": self.reason,
                "signal": dict(self.signal), "commission": self.commission}


class AuditTrail:
    """Writes order events to the audit log (if any), then tells the run's observer."""

    def __init__(self, log: Any, *, simulated_clock: bool = False, observer: RunObserver | None = None) -> None:
        self.log = log
        self.simulated_clock = simulated_clock
        self.observer = observer or RunObserver()
        self.as_of: pd.Timestamp | None = None
        self._stamped: tuple[pd.Timestamp, str] | None = None

    def _simulated_stamp(self, as_of: pd.Timestamp) -> str:
        """The simulated close of ``as_of`` as the log writes it (made once a session)."""
        if self._stamped is None or (self._stamped[0] is not as_of and self._stamped[0] != as_of):
            self._stamped = (as_of, utc_stamp(str(as_of + SIMULATED_CLOSE)))
        return self._stamped[1]

    def record(self, event: OrderEvent) -> None:
        """Stamp and write one event."""
        row = event.row()
        if not event.timestamp and self.simulated_clock and self.as_of is not None:
            row["timestamp"] = self._simulated_stamp(self.as_of)
        if self.log is not None:
            self.log.append(row)
        self.observer.order_event(row)


@functools.lru_cache(maxsize=4096)
def utc_stamp(when: str) -> str:
    """An ISO time as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in UTC (a naive time is taken as UTC).

    Remembered: a replay stamps every event of a session with the same simulated close."""
    if not when:
        return ""
    stamp = pd.Timestamp(when)
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return stamp.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%S.%fZ")
