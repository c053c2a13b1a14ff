"""Portfolio guards: circuit breakers, a position cap and a kill switch (every engine).

Registered as the built-in plugin ``guards``; the default run profile enables all four.
Each guard only *refuses* orders (``vet``); it never resizes them nor sends orders itself.

============================  =====================================  ==========================
guard                         refuses                                parameters (default)
============================  =====================================  ==========================
``max_daily_loss``            buys, once value is down ``pct`` from  ``pct`` (0.05)
                              the day's starting value
``max_drawdown``              buys, once value is down ``pct`` from  ``pct`` (0.25)
                              its peak
``max_open_positions``        buys of new symbols once ``limit``     ``limit`` (60)
                              positions are held
``kill_switch``               every new order, buys *and* sells,     ``path`` ("": the env var
                              while the file exists                  HYBRID_KILL_SWITCH, else
                                                                     ``KILL_SWITCH`` in the
                                                                     working directory)
============================  =====================================  ==========================

The guards run in backtests and replays too, at the same point of the decision and with the same
context as in a live cycle (peak and day-start values from the closes), so a backtest shows
what they would have refused. Exits never reach the circuit breakers or the position cap:
cutting risk is always allowed (see ``RiskRule.sees_exits``). The kill
switch is different on purpose: it is the operator's "hands off the account now" (a bug, a
broker incident), so it stops sells too; protective stop orders already at the broker stay in
place because they are not new orders. Put a reason in the file; it is quoted in the refusal::

    echo "broker incident, investigating" > KILL_SWITCH     # stop
    rm KILL_SWITCH                                          # resume at the next cycle
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import attrs

from ..contracts import CycleContext, OrderIntent, RiskRule
from ..hookspecs import hookimpl

LIMIT_TOLERANCE = 1e-9
"""A loss within this of the limit counts as reaching it (5% exactly stops entries)."""
KILL_SWITCH_ENV = "HYBRID_KILL_SWITCH"
DEFAULT_KILL_SWITCH = "KILL_SWITCH"


def _fraction(instance: object, attribute: attrs.Attribute, value: float) -> None:
    if not 0 < value < 1:
        raise ValueError(f"{attribute.name} must be between 0 and 1 (exclusive), got {value}")


def _at_least_one(instance: object, attribute: attrs.Attribute, value: int) -> None:
    if value < 1:
        raise ValueError(f"{attribute.name} must be at least 1, got {value}")


def _loss(value: float, reference: float) -> float | None:
    """Fractional loss of ``value`` below ``reference``; None when there is no reference."""
    if not reference > 0:
        return None
    return 1.0 - value / reference


class MaxDailyLoss(RiskRule):
    """Daily loss circuit breaker: no new entries once the portfolio is down `pct` on the day."""

    name = "max_daily_loss"

    @attrs.define(kw_only=True)
    class Params:
        pct: float = attrs.field(default=0.05, validator=_fraction)
        """Loss from the day's starting portfolio value that stops new entries (0.05 = 5%)."""

    def vet(self, order: OrderIntent, context: CycleContext) -> str | None:
        if order.side != "buy":
            return None
        loss = _loss(context.portfolio_value, context.day_start_value)
        if loss is None or loss < self.params.pct - LIMIT_TOLERANCE:
            return None
        return (f"portfolio {context.portfolio_value:,.2f} is down {loss:.2%} from the day start "
                f"{context.day_start_value:,.2f} (limit {self.params.pct:.2%}); new entries stopped "
                f"for the day, exits still allowed")


class MaxDrawdown(RiskRule):
    """Drawdown circuit breaker: no new entries while the portfolio is down `pct` from its peak."""

    name = "max_drawdown"

    @attrs.define(kw_only=True)
    class Params:
        pct: float = attrs.field(default=0.25, validator=_fraction)
        """Loss from the highest portfolio value seen that stops new entries (0.25 = 25%)."""

    def vet(self, order: OrderIntent, context: CycleContext) -> str | None:
        if order.side != "buy":
            return None
        loss = _loss(context.portfolio_value, context.peak_value)
        if loss is None or loss < self.params.pct - LIMIT_TOLERANCE:
            return None
        return (f"portfolio {context.portfolio_value:,.2f} is {loss:.2%} below its peak "
                f"{context.peak_value:,.2f} (limit {self.params.pct:.2%}); new entries stopped until "
                f"it recovers, exits still allowed")


class MaxOpenPositions(RiskRule):
    """Position cap: no buy of a new symbol once `limit` positions are held or being bought.

    Counts the cycle's open positions plus the new symbols this guard already let through
    in the same cycle (same ``context.now``), so one cycle cannot overshoot the cap.
    """

    name = "max_open_positions"

    @attrs.define(kw_only=True)
    class Params:
        limit: int = attrs.field(default=60, validator=_at_least_one)
        """Most symbols held at once (adding to a held symbol does not count)."""

    def __init__(self, params: Any = None) -> None:
        super().__init__(params)
        self._cycle: Any = None
        self._admitted: set[str] = set()

    def vet(self, order: OrderIntent, context: CycleContext) -> str | None:
        if order.side != "buy" or order.symbol in context.positions:
            return None
        if self._cycle != context.now:
            self._cycle, self._admitted = context.now, set()
        if order.symbol in self._admitted:
            return None
        held = len(context.positions) + len(self._admitted)
        if held >= self.params.limit:
            return (f"{held} positions held or being bought, limit {self.params.limit}; "
                    f"no new symbol until one is sold")
        self._admitted.add(order.symbol)
        return None


class KillSwitch(RiskRule):
    """Kill switch: while its file exists, every new order (buy or sell) is refused.

    It sees exits (``sees_exits``) on purpose. A backtest ignores it: the file is an operator's
    action on a running account, not part of a strategy's history.
    """

    name = "kill_switch"
    sees_exits = True

    @attrs.define(kw_only=True)
    class Params:
        path: str = ""
        """The switch file; "" means $HYBRID_KILL_SWITCH, else ``KILL_SWITCH`` in the working dir."""

    def switch_path(self) -> Path:
        """The file whose presence stops orders (resolved at each check)."""
        return Path(self.params.path or os.environ.get(KILL_SWITCH_ENV) or DEFAULT_KILL_SWITCH)

    def vet(self, order: OrderIntent, context: CycleContext) -> str | None:
        if context.mode == "backtest":
            return None
        path = self.switch_path()
        if not path.exists():
            return None
        try:
            with open(path, encoding="utf-8", errors="replace") as fh:
                note = fh.read(200).strip().splitlines()
        except OSError:
            note = []
        why = f" ({note[0]})" if note else ""
        return f"kill switch {path.resolve()} is present{why}; remove the file to resume orders"


GUARDS = (MaxDailyLoss, MaxDrawdown, MaxOpenPositions, KillSwitch)
GUARD_NAMES = frozenset(guard.name for guard in GUARDS)
"""Rules whose refusal means a portfolio guard tripped (notifications and metrics say so)."""


@hookimpl
def hybrid_register_risk_rules(register):  # type: ignore[no-untyped-def]
    """Register the portfolio guards."""
    for guard in GUARDS:
        register(guard)
