"""The account at a close: cash, positions, pending orders, time-stop counts, stops and marks.

One :class:`Account` serves every engine. The backtest book and the paper simulator drive it
bar by bar (they add the execution model: :class:`~hybrid_core.engine.book.PortfolioBook`);
the live cycle rebuilds it at each close from the state database's positions with
:meth:`Account.rebuild`, which runs the very same :meth:`Account.mark` over the bars since
each entry. So a time-stop count, a mark, a latest close and the portfolio value are computed
here once, and :meth:`Account.decide` turns decisions into vetted orders for all of them.

Price mappings (``closes``) hold the symbols that have a bar on the date; a missing key,
``None`` or NaN means "no bar".
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pandas as pd

from ..contracts import CycleContext, Decision, OrderIntent, Panel, Position, RiskRule
from .decisions import RowPrices
from .ledger import Ledger, OpenLot, RoundTrip
from .planner import Plan, plan_orders
from .risk import Refusal, Watermarks, overrides, protective_stop, vet


class LatestCloses(Mapping[str, float]):
    """Today's closes, falling back to each symbol's last known close (its mark).

    ``held`` symbols read ``last`` directly: :meth:`Account.mark` has just set it.
    """

    def __init__(self, today: Mapping[str, float], last: Mapping[str, float],
                 held: Mapping[str, Any]) -> None:
        self._today = today
        self._last = last
        self._held = held

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        if key in self._held:
            return self._last.get(key, default)
        value = self._today.get(key)
        if value is None or value != value:
            return self._last.get(key, default)
        return value

    def __getitem__(self, key: str) -> float:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self._last)

    def __len__(self) -> int:
        return len(self._last)


class Account:
    """Cash, positions, pending market orders, marks and the round-trip ledger of one account.

    ``risk_rules`` give stops and time stops (in the plan) and vet orders (``vet``) with a
    :class:`CycleContext` built from the account at the close; ``context`` fills in the rest
    of it (mode, profile name, state).
    """

    def __init__(self, cash: float, risk_rules: Sequence[RiskRule] = (), *,
                 context: Mapping[str, Any] | None = None) -> None:
        self.cash = float(cash)
        self.risk_rules = tuple(risk_rules)
        self.positions: dict[str, Position] = {}
        self.pending: dict[str, list[OrderIntent]] = {}
        self.last_close: dict[str, float] = {}
        self.last_bar_date: dict[str, pd.Timestamp] = {}
        self.ledger = Ledger()
        self.last_value: float = self.cash
        self.watermarks = Watermarks()
        self.context = dict(context or {"mode": "backtest"})
        self._stop_rules = [r for r in self.risk_rules if overrides(r, "stop_price")]
        self._vet_rules = [r for r in self.risk_rules if overrides(r, "vet")]

    # ------------------------------------------------------------------ orders
    def submit(self, intent: OrderIntent) -> None:
        """Queue a market order for the symbol's next open."""
        self.pending.setdefault(intent.symbol, []).append(intent)

    def set_stop(self, symbol: str, price: float | None) -> None:
        """Set (or clear with None) the protective stop of a held position."""
        self.positions[symbol].stop_price = None if price is None else float(price)

    def stop_for(self, position: Position) -> float | None:
        """The tightest stop the risk rules give a freshly opened position (None: no stop)."""
        return protective_stop(position, self._stop_rules)

    # ------------------------------------------------------------------- fills
    def open(self, symbol: str, qty: float, price: float, date: pd.Timestamp, strategy: str, reason: str,
             commission: float = 0.0) -> Position:
        """A buy filled: the position opens with its protective stop; cash pays price and commission."""
        self.cash -= qty * price + commission
        pos = Position(symbol, qty, price, date, strategy, 0)
        if self._stop_rules:
            pos.stop_price = protective_stop(pos, self._stop_rules)
        self.positions[symbol] = pos
        self.ledger.fill(symbol, "buy", qty, price, date, strategy, reason, commission)
        return pos

    def close(self, symbol: str, price: float, date: pd.Timestamp, reason: str,
              commission: float = 0.0) -> Position:
        """A sell filled: the whole position closes into a round trip; cash receives the proceeds."""
        pos = self.positions.pop(symbol)
        self.cash += pos.qty * price - commission
        self.ledger.fill(symbol, "sell", pos.qty, price, date, pos.strategy, reason, commission)
        return pos

    # ------------------------------------------------------------------- close
    def mark(self, date: pd.Timestamp, closes: Mapping[str, float]) -> float:
        """Count today's bar for held symbols that have one, record their close; returns the value."""
        value = self.cash
        last_close = self.last_close
        last_bar_date = self.last_bar_date
        close_of = closes.get
        for sym, pos in self.positions.items():
            close = close_of(sym)
            if close is not None and close == close:
                pos.bars_held += 1
                last_close[sym] = close = float(close)
                last_bar_date[sym] = date
                value += pos.qty * close
            else:
                value += pos.qty * last_close.get(sym, pos.entry_price)
        self.last_value = value
        return value

    def decide(self, date: pd.Timestamp, closes: Mapping[str, float], decisions: Sequence[Decision], *,
               halt_reason: str | None = None, context: Mapping[str, Any] | None = None
               ) -> tuple[Plan, list[tuple[OrderIntent, Refusal]]]:
        """Plan at the close of ``date`` (already marked), then vet every new order.

        Returns the plan with only the accepted orders, and the refused orders with their reason.
        """
        plan = plan_orders(date, decisions, self.positions, self.pending,
                           LatestCloses(closes, self.last_close, self.positions), self.last_value,
                           self.risk_rules)
        refused: list[tuple[OrderIntent, Refusal]] = []
        if plan.orders and (self._vet_rules or halt_reason):
            ctx = self.cycle_context(date, **(context or {}))
            accepted = []
            for order in plan.orders:
                why = vet(order, self._vet_rules, ctx, halt_reason)
                if why is None:
                    accepted.append(order)
                else:
                    refused.append((order, why))
            plan.orders = accepted
        return plan, refused

    def cycle_context(self, date: pd.Timestamp, **extra: Any) -> CycleContext:
        """What risk rules see at the close of ``date``."""
        values = {**self.context, **extra}
        marks = self.watermarks
        return CycleContext(now=date, mode=values.get("mode", "backtest"), dry_run=values.get("dry_run", False),
                            profile_name=values.get("profile_name", "default"),
                            portfolio_value=self.last_value, positions=self.positions,
                            peak_value=marks.peak if marks.peak is not None else self.last_value,
                            day_start_value=marks.day_start if marks.day_start is not None else self.last_value,
                            state=values.get("state"))

    def on_close(self, date: pd.Timestamp, closes: Mapping[str, float],
                 decisions: Sequence[Decision] = (), refused: list[str] | None = None) -> list[OrderIntent]:
        """Mark the close of ``date``, plan, vet and queue new orders (the backtest's close).

        Returns the orders queued for the next open; refusals are appended to ``refused`` as
        one line each.
        """
        self.mark(date, closes)
        if self._vet_rules:
            self.watermarks.update(date.strftime("%Y-%m-%d"), self.last_value)
        if not decisions and not self.positions:
            return []
        plan, refusals = self.decide(date, closes, decisions)
        if refused is not None:
            refused.extend(f"{date.date()} {o.symbol} {o.side} {o.qty:g}: {why}" for o, why in refusals)
        self.apply(plan, date)
        return plan.orders

    def apply(self, plan: Plan, date: pd.Timestamp) -> None:
        """Apply a plan made at the close of ``date``: restarts, cancellations, new orders."""
        for sym in plan.restart:
            self.positions[sym].bars_held = 0
        for sym in plan.cancel:
            orders = self.pending.get(sym, [])
            kept = [o for o in orders if not (o.side == "buy" and o.decision_date < date)]
            if kept:
                self.pending[sym] = kept
            else:
                self.pending.pop(sym, None)
        for order in plan.orders:
            self.submit(order)

    # --------------------------------------------------------------- valuation
    def value(self) -> float:
        """Cash plus every position at its latest close."""
        marks = self.last_close
        return self.cash + sum(p.qty * marks.get(s, p.entry_price) for s, p in self.positions.items())

    def open_lots(self) -> list[OpenLot]:
        """Open positions as ledger lots marked at each symbol's own last close and bar date."""
        return self.ledger.open_lots(self.last_close, self.last_bar_date)

    def round_trips(self) -> list[RoundTrip]:
        """Closed round trips, then open positions as ``end_of_data`` round trips (marked, not sold)."""
        return [*self.ledger.closed, *(lot.as_round_trip() for lot in self.open_lots())]

    # ------------------------------------------------------------ live rebuild
    @classmethod
    def rebuild(cls, cash: float, positions: Sequence[Position], restarts: Mapping[str, pd.Timestamp | None],
                panel: Panel, as_of: pd.Timestamp, risk_rules: Sequence[RiskRule] = (), *,
                pending: Mapping[str, list[OrderIntent]] | None = None,
                context: Mapping[str, Any] | None = None) -> Account:
        """The account at the close of ``as_of`` from stored positions (the live cycle's view).

        Each position joins at its entry date and :meth:`mark` runs over the panel's bars up to
        ``as_of``, so time-stop counts and marks are those a backtest would have; a restart at
        the close of a date sets the count to 0 after that date's bar. ``cash`` is the broker's.
        """
        account = cls(cash, risk_rules, context=context)
        account.pending = {s: list(v) for s, v in (pending or {}).items()}
        if positions:
            dates = panel.close.index
            columns = {str(s): j for j, s in enumerate(panel.close.columns)}
            closes = panel.close.to_numpy(dtype="float64", na_value=float("nan"))
            waiting = sorted(positions, key=lambda p: p.entry_date)
            first = dates.searchsorted(min(pd.Timestamp(p.entry_date) for p in positions))
            last = dates.searchsorted(as_of, side="right")
            for i in range(first, last):
                day = dates[i]
                while waiting and pd.Timestamp(waiting[0].entry_date) <= day:
                    pos = waiting.pop(0)
                    account.positions[pos.symbol] = Position(
                        symbol=pos.symbol, qty=pos.qty, entry_price=pos.entry_price,
                        entry_date=pd.Timestamp(pos.entry_date), strategy=pos.strategy, bars_held=0,
                        stop_price=pos.stop_price)
                account.mark(day, RowPrices(closes[i], columns))
                for sym in account.positions:
                    if restarts.get(sym) is not None and pd.Timestamp(restarts[sym]) == day:
                        account.positions[sym].bars_held = 0
            for pos in waiting:  # entered after the panel's last bar: no bar counted yet
                account.positions[pos.symbol] = Position(
                    symbol=pos.symbol, qty=pos.qty, entry_price=pos.entry_price,
                    entry_date=pd.Timestamp(pos.entry_date), strategy=pos.strategy, bars_held=0,
                    stop_price=pos.stop_price)
        account.mark_value()
        return account

    def mark_value(self) -> float:
        """Recompute :attr:`last_value` from cash and the marks (no bar counted)."""
        self.last_value = self.value()
        return self.last_value
