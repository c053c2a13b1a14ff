"""Standard risk rules of STRATEGIES.md: stop-loss, time stop and max order value.

Registered as the built-in plugin ``risk_rules`` through the same hook as third-party rules.
"""

from __future__ import annotations

import attrs

from ..contracts import CycleContext, OrderIntent, Position, RiskRule
from ..hookspecs import hookimpl


def _fraction(instance: object, attribute: attrs.Attribute, value: float) -> None:
    if not 0 < value < 1:
        raise ValueError(f"{attribute.name} must be between 0 and 1 (exclusive), got {value}")


def _positive(instance: object, attribute: attrs.Attribute, value: float) -> None:
    if not value > 0:
        raise ValueError(f"{attribute.name} must be positive, got {value}")


class StopLoss(RiskRule):
    """Stop-loss: a sell stop at entry * (1 - pct), active from the bar after entry."""

    name = "stop_loss"

    @attrs.define(kw_only=True)
    class Params:
        pct: float = attrs.field(default=0.05, validator=_fraction)
        """Loss from the entry fill that triggers the stop (0.05 = 5%)."""

    def stop_price(self, position: Position) -> float | None:
        return position.entry_price * (1.0 - self.params.pct)


class TimeStop(RiskRule):
    """Time stop: sell at the next open once a position has been held `bars` of its own bars."""

    name = "time_stop"

    @attrs.define(kw_only=True)
    class Params:
        bars: int = attrs.field(default=5, validator=_positive)
        """Bars held (the entry bar is bar 1) after whose close the position is sold."""

    def time_exit(self, position: Position) -> str | None:
        return "time_stop" if position.bars_held >= self.params.bars else None

    def time_exit_bars(self) -> int:
        return self.params.bars


class MaxOrderValue(RiskRule):
    """Max order value: refuses (never resizes) an entry worth more than `value` (every engine).

    Exits never reach it (they reduce exposure), so a position is always sold on time."""

    name = "max_order_value"

    @attrs.define(kw_only=True)
    class Params:
        value: float = attrs.field(default=250_000.0, validator=_positive)
        """Largest order value allowed, in account currency, at the decision close."""

    def vet(self, order: OrderIntent, context: CycleContext) -> str | None:
        if order.value > self.params.value:
            return (f"order value {order.value:,.2f} exceeds max_order_value "
                    f"{self.params.value:,.2f}; order refused, not resized")
        return None


@hookimpl
def hybrid_register_risk_rules(register):  # type: ignore[no-untyped-def]
    """Register the standard risk rules."""
    register(StopLoss)
    register(TimeStop)
    register(MaxOrderValue)
