"""Order planning at one close: the single place where decisions become orders.

:func:`plan_orders` is pure (it never mutates its arguments) and is shared by the backtest
book and the live cycle, so both apply the contract of STRATEGIES.md in the same order:

1. each strategy decides first, for its own positions and pending buys only:
   exits (labelled with the strategy's reason), entries sized on ``close_t`` (skipping a
   quantity of 0 and symbols held or already being bought), restarts of the time-stop count
   for re-selected (kept) held symbols, and, on a decided date, cancellation of its pending
   buys that were not entered again;
2. then the risk rules' time stops, for positions not already exiting.

Positions passed in must already count today's bar in ``bars_held``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import attrs
import pandas as pd

from ..contracts import Decision, OrderIntent, Position, RiskRule, lot_quantity
from .boundary import component_error

PendingOrders = Mapping[str, "OrderIntent | Sequence[OrderIntent]"]


@attrs.define
class Plan:
    """What to do after one close.

    - ``orders``: new market orders for each symbol's next open, sells first, then buys.
    - ``cancel``: symbols whose pending buy is cancelled (not re-selected on a decided date).
    - ``restart``: held symbols whose time-stop count is set to 0 at this close.
    """

    orders: list[OrderIntent] = attrs.field(factory=list)
    cancel: list[str] = attrs.field(factory=list)
    restart: list[str] = attrs.field(factory=list)


def pending_list(value: OrderIntent | Sequence[OrderIntent] | None) -> Sequence[OrderIntent]:
    """Pending orders of one symbol as a sequence (a mapping may hold one intent or a list)."""
    if value is None:
        return ()
    if isinstance(value, OrderIntent):
        return (value,)
    return value


def _has_pending(pending: PendingOrders, symbol: str, side: str) -> bool:
    return any(o.side == side for o in pending_list(pending.get(symbol)))


def _price(closes: Mapping[str, float], symbol: str) -> float:
    value = closes.get(symbol)
    return math.nan if value is None else value


def plan_orders(date: pd.Timestamp, decisions: Sequence[Decision], positions: Mapping[str, Position],
                pending: PendingOrders, closes: Mapping[str, float], portfolio_value: float,
                risk_rules: Sequence[RiskRule]) -> Plan:
    """Turn the strategies' decisions at the close of ``date`` into a :class:`Plan`.

    ``closes`` gives each symbol's latest close (``close_t`` for symbols with a bar today),
    ``portfolio_value`` the account value at this close (cash + positions at their latest close),
    ``pending`` the orders not yet filled (per symbol: one intent or a list of intents).
    """
    sells: list[OrderIntent] = []
    buys: list[OrderIntent] = []
    cancel: list[str] = []
    restart: list[str] = []
    exiting: set[str] = {s for s, v in pending.items()
                         if s in positions and any(o.side == "sell" for o in pending_list(v))}
    restarted: set[str] = set()
    buying: set[str] = set()

    for decision in decisions:
        name = decision.strategy
        for sym in decision.exits:
            pos = positions.get(sym)
            if pos is None or pos.strategy != name or sym in exiting:
                continue
            exiting.add(sym)
            sells.append(_intent(sym, "sell", pos.qty, name, decision.exit_reason, date,
                                 _price(closes, sym), decision.info.get(sym)))
        for sym in decision.keeps:
            pos = positions.get(sym)
            if pos is None or pos.strategy != name or sym in exiting or sym in restarted:
                continue
            restarted.add(sym)
            restart.append(sym)
        if decision.decided:
            cancel.extend(_stale_buys(pending, name, decision.entries, date))
        for sym, weight in decision.entries.items():
            if sym in positions or sym in buying or (sym in pending and _has_pending(pending, sym, "buy")):
                continue
            price = _price(closes, sym)
            qty = lot_quantity(sym, weight * portfolio_value, price)
            if qty <= 0:
                continue
            buying.add(sym)
            buys.append(_intent(sym, "buy", qty, name, "entry", date, price, decision.info.get(sym)))

    timers = [rule for rule in risk_rules if type(rule).time_exit is not RiskRule.time_exit]
    rule = None
    try:  # free until a rule raises; then the failure names the rule
        for sym, pos in _time_stop_candidates(positions, timers):
            if sym in exiting:
                continue
            view = attrs.evolve(pos, bars_held=0) if restarted and sym in restarted else pos
            for rule in timers:
                reason = rule.time_exit(view)
                if reason is not None:
                    break
            if reason is not None:
                exiting.add(sym)
                sells.append(_intent(sym, "sell", pos.qty, pos.strategy, reason, date, _price(closes, sym),
                                     {"bars_held": pos.bars_held}))
    except Exception as exc:
        raise component_error(rule, "time_exit", exc) from exc
    return Plan(orders=sells + buys, cancel=cancel, restart=restart)


def _time_stop_candidates(positions: Mapping[str, Position], timers: Sequence[RiskRule]
                          ) -> Iterable[tuple[str, Position]]:
    """The held positions a time stop can exit at this close, in holding order: those held at
    least as many bars as the lowest :meth:`~RiskRule.time_exit_bars` of ``timers`` (every
    position when a timer gives none), so most of ~300 positions are not asked every day."""
    floors = []
    for rule in timers:
        try:
            bars = rule.time_exit_bars()
        except Exception as exc:
            raise component_error(rule, "time_exit_bars", exc) from exc
        if bars is None:
            return positions.items()
        floors.append(bars)
    if not floors:
        return ()
    floor = min(floors)
    return [(sym, pos) for sym, pos in positions.items() if pos.bars_held >= floor]


def _stale_buys(pending: PendingOrders, strategy: str, entries: Mapping[str, float],
                date: pd.Timestamp) -> Iterable[str]:
    """Symbols with a pending buy of ``strategy`` from an earlier close that is not entered again."""
    for sym, value in pending.items():
        if sym in entries:
            continue
        for order in pending_list(value):
            if order.side == "buy" and order.strategy == strategy and order.decision_date < date:
                yield sym
                break


def _intent(symbol: str, side: str, qty: float, strategy: str, reason: str, date: pd.Timestamp,
            ref_price: float, signal: Mapping[str, object] | None) -> OrderIntent:
    return OrderIntent(symbol, side, qty, strategy, reason, date, ref_price,  # type: ignore[arg-type]
                       dict(signal) if signal else {})
