"""Risk at one close, for every engine alike: the protective stop, order vetting and watermarks.

The backtest book and the live cycle call these same functions at the same point of a
decision (after the plan, before any order is queued or sent) with the same
:class:`~hybrid_core.contracts.CycleContext`, so a rule that refuses an order refuses it in a
backtest, a replay, a paper and a live run alike.

Orders that reduce exposure (exits; stop placements and cancels are never vetted at all) pass
every rule unless the rule sets ``sees_exits = True`` (the kill switch does: it is the
operator's "hands off the account", sells included).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from ..contracts import CycleContext, OrderIntent, Position, RiskRule
from .boundary import component_error


def overrides(rule: RiskRule, method: str) -> bool:
    """True when ``rule``'s class implements ``method`` itself (not RiskRule's default)."""
    return getattr(type(rule), method) is not getattr(RiskRule, method)


def protective_stop(position: Position, rules: Sequence[RiskRule]) -> float | None:
    """The tightest stop the rules give a freshly opened position (None: no stop)."""
    best = None
    for rule in rules:
        try:
            stop = rule.stop_price(position)
        except Exception as exc:
            raise component_error(rule, "stop_price", exc) from exc
        if stop is not None and (best is None or stop > best):
            best = float(stop)
    return best


def reduces_exposure(order: OrderIntent, positions: Mapping[str, Position]) -> bool:
    """True for an order that only shrinks a held position (an exit)."""
    pos = positions.get(order.symbol)
    if pos is None:
        return False
    if order.side == "sell":
        return pos.qty > 0 and order.qty <= pos.qty * (1 + 1e-9)
    return pos.qty < 0 and order.qty <= -pos.qty * (1 + 1e-9)


@attrs.frozen
class Refusal:
    """Why an order was refused: the rule (a risk rule's name, ``data_quality`` or
    ``reference_price``) and one line that names it."""

    rule: str
    reason: str

    def __str__(self) -> str:
        return self.reason


def vet(order: OrderIntent, rules: Sequence[RiskRule], context: CycleContext,
        halt_reason: str | None = None) -> Refusal | None:
    """Why ``order`` is refused at this close, or None to let it through.

    Entries are refused while the data quality gate halts them (``halt_reason``) and without a
    valid reference close; an exit is shown only to rules with ``sees_exits``.
    """
    exit_ = reduces_exposure(order, context.positions)
    if not exit_:
        if halt_reason:
            return Refusal("data_quality", f"new entries halted: {halt_reason}")
        if not (order.ref_price > 0) or not math.isfinite(order.ref_price):
            return Refusal("reference_price", f"no valid reference price for {order.symbol} (got {order.ref_price})")
    for rule in rules:
        if exit_ and not getattr(rule, "sees_exits", False):
            continue
        try:
            reason = rule.vet(order, context)
        except Exception as exc:
            raise component_error(rule, "vet", exc) from exc
        if reason is not None:
            name = getattr(rule, "name", type(rule).__name__)
            return Refusal(name, f"{name}: {reason}")
    return None


@attrs.define
class Watermarks:
    """The portfolio's peak value and the value the current day started from (for the guards).

    The day starts from the value at the previous close (the first close: its own value).
    Kept in memory by the backtest and in the state database's meta by the live cycle.
    """

    peak: float | None = None
    day: str | None = None
    day_start: float | None = None
    last_value: float | None = None

    def update(self, day: str, value: float) -> None:
        """Account for the value at the close of ``day`` (YYYY-MM-DD)."""
        self.peak = value if self.peak is None else max(self.peak, value)
        if self.day != day:
            self.day = day
            self.day_start = value if self.last_value is None else self.last_value
        self.last_value = value

    def to_meta(self) -> dict[str, Any]:
        """The state database's meta values."""
        return {"peak_value": self.peak, "day_start": {"date": self.day, "value": self.day_start},
                "last_value": self.last_value}

    @classmethod
    def from_meta(cls, get: Any) -> Watermarks:
        """From the state database's meta (``get(key, default)``)."""
        day_start = get("day_start", {}) or {}
        peak, last = get("peak_value", None), get("last_value", None)
        return cls(peak=None if peak is None else float(peak), day=day_start.get("date"),
                   day_start=None if day_start.get("value") is None else float(day_start["value"]),
                   last_value=None if last is None else float(last))
