"""The order state machine, shared by every broker, and the one place an order changes state.

::

    intended -> submitted -> accepted -> partially_filled -> filled | canceled | rejected | expired
        \\___________\\____________\\______________\\___ unknown ___/ (outcome not confirmed)

- ``intended``: decided and written to the state database, not sent yet (a run killed here
  asks the broker by client_order_id before sending anything);
- ``submitted``: the broker acknowledged the order; ``accepted``: it is working there;
- ``partially_filled``, then exactly one terminal state: ``filled``, ``canceled`` (the broker
  confirmed the cancel), ``rejected`` (the broker's explicit refusal, or an order breaking the
  exchange's rules that was not sent) or ``expired`` (the broker expired it, or the broker
  answered that it never had an order whose decision has since lapsed);
- ``unknown``: a submission or a cancel whose outcome the broker did not confirm. It is looked
  up by client_order_id at the start of every cycle (and during the cycle) until the broker
  answers. It is never taken for ``rejected``.

An order closed after a partial fill is recorded ``filled`` with the quantity that filled (its
fill is what the account and the audit log need). States only move forward: an answer that
would move an order back (a stale read saying ``submitted`` after ``accepted``) changes nothing,
and a terminal state is final, so the audit log never shows two terminal states for one order.
:class:`OrderStates` is the only code that changes an order's state: it checks the move, writes
the state database, writes one audit event (which the run's observer hears) and logs one line.
"""

from __future__ import annotations

from typing import Any

from ..contracts import OrderStatus
from ..ops.state import LEGACY_STATUSES, StateStore, StoredOrder, replaced
from .events import AuditTrail, OrderEvent

STATES: tuple[str, ...] = ("intended", "submitted", "accepted", "partially_filled", "filled", "canceled",
                           "rejected", "expired", "unknown")
"""Every state of an order, in the order of its life (``unknown`` aside)."""
TERMINAL: frozenset[str] = frozenset({"filled", "canceled", "rejected", "expired"})
"""States an order never leaves."""
_RANK = {"intended": 0, "submitted": 1, "accepted": 2, "partially_filled": 3,
         "filled": 4, "canceled": 4, "rejected": 4, "expired": 4}
BROKER_STATES = {"pending": "submitted", "new": "accepted", "accepted": "accepted",
                 "partially_filled": "partially_filled", "filled": "filled", "canceled": "canceled",
                 "rejected": "rejected", "expired": "expired"}
"""The state a broker's :data:`~hybrid_core.contracts.OrderState` confirms."""


def normalise(state: str) -> str:
    """An order's state, with the names of older state databases read as today's."""
    return LEGACY_STATUSES.get(state, state)


def broker_state(status: OrderStatus) -> str:
    """The order state a broker's answer confirms (an unrecognised status confirms nothing: ``unknown``)."""
    return BROKER_STATES.get(str(status.status), "unknown")


def allowed(current: str, new: str) -> bool:
    """True when an order in state ``current`` may move to ``new``.

    Forward moves, possibly skipping states (``intended`` -> ``filled`` for an order a killed
    run sent and the broker filled); into ``unknown`` from any open state; out of ``unknown`` to
    any state the broker confirms. A terminal state never moves; nothing moves back to ``intended``.
    """
    current, new = normalise(current), normalise(new)
    if current in TERMINAL or new == current or new == "intended" or new not in STATES:
        return False
    if new == "unknown" or current == "unknown":
        return True
    return _RANK[new] > _RANK[current]


def is_terminal(state: str) -> bool:
    """True for ``filled``, ``canceled``, ``rejected`` and ``expired``."""
    return normalise(state) in TERMINAL


class OrderStates:
    """Moves orders through the state machine: state database, one audit event and one log line per move."""

    def __init__(self, state: StateStore, audit: AuditTrail) -> None:
        self.state = state
        self.audit = audit

    def move(self, order: StoredOrder, new: str, log: Any, *, why: str = "", event: OrderEvent | None = None,
             timestamp: str = "", **fields: Any) -> StoredOrder:
        """Move ``order`` to ``new`` and return it as stored; a move the machine forbids changes nothing.

        ``fields`` are columns updated with the move (``broker_order_id``, ``stop_price``...);
        ``event`` replaces the default audit event (fills carry their price and time);
        ``timestamp`` is the broker's time of the transition (UTC), when it gave one.
        """
        current = normalise(order.status)
        if not allowed(current, new):
            if current in TERMINAL and normalise(new) != current:
                log.error("Order {cid} ({symbol} {side}) is already {current}; the broker now says {new}: "
                          "kept {current} (an order has one terminal state)", cid=order.client_order_id,
                          symbol=order.symbol, side=order.side, current=current, new=new)
                return order
            # the broker confirms what is known (every open stop, every cycle): write what differs only
            changed = {k: v for k, v in fields.items() if getattr(order, k) != v}
            if changed:
                self.state.update_order(order.client_order_id, **changed)
                order = replaced(order, **changed)
            return order
        self.state.update_order(order.client_order_id, status=new, **fields)
        moved = replaced(order, status=new, **fields)
        self.audit.record(event or OrderEvent.moved(moved, new, why=why, timestamp=timestamp))  # type: ignore[arg-type]
        line = "Order {cid} {symbol} {side} {qty} ({kind}): {current} -> {new}" + (": {why}" if why else "")
        level = "WARNING" if new in ("unknown", "rejected", "expired") else "INFO"
        log.log(level, line, cid=order.client_order_id, symbol=order.symbol, side=order.side, qty=order.qty,
                kind=order_kind(order), current=current, new=new, why=why, client_order_id=order.client_order_id)
        return moved

    def advance(self, order: StoredOrder, status: OrderStatus, log: Any, *, why: str = "") -> StoredOrder:
        """Move ``order`` to the state the broker's answer confirms, one transition at a time.

        An order still ``intended`` that the broker holds passes through ``submitted`` (stamped
        with the broker's receipt time). A fill is left to the fill path, which moves the position
        with it: here a filled answer only confirms ``accepted``.
        """
        target = broker_state(status)
        if target == "filled":
            target = "accepted"
        fields: dict[str, Any] = {"broker_order_id": status.broker_order_id or order.broker_order_id}
        if status.qty > 0:
            fields["qty"] = status.qty  # as the broker holds it, after its rounding
        if order.order_type != "market" and status.stop_price is not None:
            fields["stop_price"] = status.stop_price
        received = status.submitted_at or ""
        if normalise(order.status) == "intended" and target not in ("submitted", "unknown"):
            order = self.move(order, "submitted", log, timestamp=received, **fields)
        return self.move(order, target, log, why=why, timestamp=received if target in ("submitted", "accepted")
                         else "", **fields)


def order_kind(order: StoredOrder) -> str:
    """``entry``, ``exit`` or ``stop``: what an order is for."""
    if order.order_type != "market":
        return "stop"
    return "entry" if order.side == "buy" else "exit"
