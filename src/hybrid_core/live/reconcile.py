"""Reconciliation of the live cycle: the state database's positions and orders against the broker's.

The broker is the truth for what is held, and every difference is corrected with one log line:

- a position the state database has but the broker does not is forgotten; a quantity that
  differs takes the broker's;
- a position below the exchange's smallest order (``BrokerPosition.min_order_qty``; crypto fees
  taken in the asset leave some after a sell) is *dust*: it cannot be sold, so it is tracked in
  the state database (``meta`` key ``dust``, shown by ``hybrid report``), never a discrepancy;
- a position only the broker holds (above dust) is reported and left alone (never sold on our own);
- an open order at the broker whose client_order_id is one of ours (``hy-``) but that the state
  database has closed or never recorded is reported, left alone.

Orders of ours that are not finished are settled by the order desk
(:meth:`~hybrid_core.live.orders.OrderDesk.reconcile`), by client_order_id.
"""

from __future__ import annotations

import math
from typing import Any

import attrs

from ..account.boundary import call
from ..contracts import Broker, BrokerPosition
from ..ops.state import StateStore
from .lifecycle import normalise

DUST_META = "dust"
"""State database ``meta`` key: ``{symbol: {"qty": ..., "min_order_qty": ...}}``."""
OUR_PREFIX = "hy-"


def is_dust(position: BrokerPosition) -> bool:
    """True for a position smaller than the smallest order the exchange accepts for its symbol."""
    floor = position.min_order_qty
    return floor is not None and 0 < position.qty < floor


class Reconciler:
    """Brings the state database's positions in line with the broker's; reports stray orders."""

    def __init__(self, broker: Broker, state: StateStore) -> None:
        self.broker = broker
        self.state = state

    def run(self, log: Any) -> list[str]:
        """Compare and correct; returns one line per correction (dust is not one)."""
        held = {p.symbol: p for p in call(self.broker, "positions")}
        dust = {s: p for s, p in held.items() if is_dust(p)}
        self._track_dust(dust, log)
        stored = self.state.positions(copy=False)
        found = []
        for sym, pos in held.items():
            if sym not in stored and sym not in dust:
                found.append(f"broker holds {pos.qty} {sym} unknown to the state database (left alone)")
                log.warning("Broker holds {qty} {symbol} that the state database does not know; "
                            "left alone (not sold)", qty=pos.qty, symbol=sym)
        for sym, known in stored.items():
            if sym not in held or sym in dust:
                what = f"only {held[sym].qty:g} (dust, below the smallest order)" if sym in dust else "none"
                found.append(f"state database holds {sym}, the broker {what} (forgotten)")
                log.warning("State database holds {qty} {symbol} but the broker holds {what}; forgetting it",
                            qty=known.qty, symbol=sym, what=what)
                self.state.close_position(sym)
            elif not math.isclose(held[sym].qty, known.qty, rel_tol=1e-9, abs_tol=1e-9):
                found.append(f"{sym}: broker quantity {held[sym].qty} differs from state {known.qty}")
                log.warning("{symbol}: broker quantity {b} differs from state {s}; using the broker's",
                            symbol=sym, b=held[sym].qty, s=known.qty)
                self.state.open_position(attrs.evolve(known, qty=held[sym].qty))
        found += self._stray_orders(log)
        return found

    def _track_dust(self, dust: dict[str, BrokerPosition], log: Any) -> None:
        before = self.state.get_meta(DUST_META, {}) or {}
        now = {s: {"qty": p.qty, "min_order_qty": p.min_order_qty} for s, p in sorted(dust.items())}
        if now == before:
            return
        for sym, item in now.items():
            if before.get(sym) != item:
                log.info("{symbol}: {qty:g} held is dust (below the smallest order, {floor:g}); tracked, not "
                         "traded", symbol=sym, qty=item["qty"], floor=item["min_order_qty"])
        self.state.set_meta({DUST_META: now})

    def _stray_orders(self, log: Any) -> list[str]:
        found = []
        for order in call(self.broker, "open_orders"):
            cid = order.client_order_id
            if not cid.startswith(OUR_PREFIX):
                continue
            known = self.state.get_order(cid)
            if known is not None and known.is_open:
                continue
            what = "never recorded" if known is None else f"recorded {normalise(known.status)}"
            found.append(f"broker holds open order {cid} ({order.symbol} {order.side}), {what} (left alone)")
            log.error("Broker holds open order {cid} ({symbol} {side} {qty}) that the state database has {what}; "
                      "left alone: check it at the broker", cid=cid, symbol=order.symbol, side=order.side,
                      qty=order.qty, what=what)
        return found
