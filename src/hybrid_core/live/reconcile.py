"""Reconciliation of the live cycle: the state database's positions against the broker's.

The broker is the truth for what is held: a position the state database has but the broker
does not is forgotten, a quantity that differs takes the broker's; a position only the broker
holds is reported and left alone (never sold on our own).
"""

from __future__ import annotations

import math
from typing import Any

import attrs

from ..account.boundary import call
from ..contracts import Broker
from ..ops.state import StateStore


class Reconciler:
    """Brings the state database's positions in line with the broker's."""

    def __init__(self, broker: Broker, state: StateStore) -> None:
        self.broker = broker
        self.state = state

    def run(self, log: Any) -> list[str]:
        """Compare and correct; returns one line per difference found."""
        broker_positions = {p.symbol: p for p in call(self.broker, "positions")}
        stored = self.state.positions()
        found = []
        for sym, held in broker_positions.items():
            if sym not in stored:
                found.append(f"broker holds {held.qty} {sym} unknown to the state database (left alone)")
                log.warning("Broker holds {qty} {symbol} that the state database does not know; "
                            "left alone (not sold)", qty=held.qty, symbol=sym)
        for sym, known in stored.items():
            if sym not in broker_positions:
                found.append(f"state database holds {sym}, the broker does not (forgotten)")
                log.warning("State database holds {symbol} but the broker does not; forgetting it",
                            symbol=sym)
                self.state.close_position(sym)
            elif not math.isclose(broker_positions[sym].qty, known.qty, rel_tol=1e-9, abs_tol=1e-9):
                found.append(f"{sym}: broker quantity {broker_positions[sym].qty} differs from state {known.qty}")
                log.warning("{symbol}: broker quantity {b} differs from state {s}; using the broker's",
                            symbol=sym, b=broker_positions[sym].qty, s=known.qty)
                self.state.open_position(attrs.evolve(known, qty=broker_positions[sym].qty))
        return found
