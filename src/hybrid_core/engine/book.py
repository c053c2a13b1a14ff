"""The portfolio book: cash, positions, pending orders and stops, filled from daily bars.

One book serves the backtester and the paper simulator broker. It applies the execution
model of STRATEGIES.md: orders decided at a close fill at the open of the symbol's next bar
(sells before buys), a market exit takes precedence over the stop at the same open, a new
position's stop is active from the bar after its entry, and a stop fills at the open when the
open gaps through it, else at the stop price when the low touches it. Cash is never checked.

Price mappings (``opens``, ``lows``, ``closes``) hold the symbols that have a bar on the date;
a missing key, ``None`` or NaN means "no bar". The book only looks up held and pending symbols,
so a mapping may be a cheap view over a row of a wide array.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import attrs
import pandas as pd

from ..contracts import Decision, Fill, OrderIntent, Position, RiskRule
from .planner import Plan, plan_orders


@attrs.define
class Trade:
    """One round trip: entry fill to exit fill (or to the last close for ``end_of_data``)."""

    symbol: str
    strategy: str
    qty: float
    entry_date: pd.Timestamp
    entry_price: float
    exit_date: pd.Timestamp
    exit_price: float
    exit_reason: str
    commission: float = 0.0
    """Commissions of the entry and exit fills."""
    entry_commission: float = 0.0
    """The entry fill's part of ``commission``."""

    @property
    def pnl(self) -> float:
        """Profit in account currency, after commissions."""
        return (self.exit_price - self.entry_price) * self.qty - self.commission

    @property
    def ret(self) -> float:
        """Return on the entry value."""
        cost = self.entry_price * self.qty
        return self.pnl / cost if cost else 0.0


def price_of(prices: Mapping[str, float], symbol: str) -> float | None:
    """The price of ``symbol`` in ``prices``, or None when absent, None or NaN (no bar)."""
    value = prices.get(symbol)
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


class _LatestCloses(Mapping[str, float]):
    """Today's closes, falling back to each symbol's last known close.

    ``held`` symbols read ``last`` directly: :meth:`PortfolioBook.mark` has just set it.
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


class PortfolioBook:
    """Cash, positions and pending market orders of one account, driven bar by bar.

    ``slippage_bps`` moves fills against the trader (buys at ``open * (1 + s)``, sells and
    stops at ``price * (1 - s)``); ``commission`` is a fraction of each fill's value, paid
    in cash and charged to the trade's profit.
    """

    def __init__(self, cash: float, risk_rules: Sequence[RiskRule] = (), slippage_bps: float = 0.0,
                 commission: float = 0.0) -> None:
        self.cash = float(cash)
        self.risk_rules = tuple(risk_rules)
        self.slippage_bps = float(slippage_bps)
        self.commission = float(commission)
        self.positions: dict[str, Position] = {}
        self.pending: dict[str, list[OrderIntent]] = {}
        self.last_close: dict[str, float] = {}
        self.last_bar_date: dict[str, pd.Timestamp] = {}
        self.trades: list[Trade] = []
        self.entry_commission: dict[str, float] = {}
        self.last_value: float = self.cash
        self._slip = self.slippage_bps / 1e4
        self._stop_rules = [r for r in self.risk_rules if type(r).stop_price is not RiskRule.stop_price]

    # ----------------------------------------------------------------- orders
    def submit(self, intent: OrderIntent) -> None:
        """Queue a market order for the symbol's next open."""
        self.pending.setdefault(intent.symbol, []).append(intent)

    def cancel(self, symbol: str, side: str = "buy") -> list[OrderIntent]:
        """Cancel the pending orders of ``side`` for ``symbol``; returns the cancelled orders."""
        orders = self.pending.get(symbol)
        if not orders:
            return []
        gone = [o for o in orders if o.side == side]
        kept = [o for o in orders if o.side != side]
        if kept:
            self.pending[symbol] = kept
        else:
            del self.pending[symbol]
        return gone

    def set_stop(self, symbol: str, price: float | None) -> None:
        """Set (or clear with None) the protective stop of a held position."""
        self.positions[symbol].stop_price = None if price is None else float(price)

    def stop_for(self, position: Position) -> float | None:
        """The tightest stop the risk rules give a freshly opened position (None: no stop)."""
        best = None
        for rule in self._stop_rules:
            stop = rule.stop_price(position)
            if stop is not None and (best is None or stop > best):
                best = stop
        return best

    # ------------------------------------------------------------------- bars
    def on_open(self, date: pd.Timestamp, opens: Mapping[str, float], lows: Mapping[str, float],
                stop_candidates: Iterable[str] | None = None) -> list[Fill]:
        """Execute at the open of ``date``: pending orders, then stops of positions held before it.

        Only symbols with a bar at ``date`` trade. ``stop_candidates`` may name the only held
        symbols whose stop can trigger today (a caller that screens stops with arrays); by
        default every position held before this bar is checked. Returns the fills in order.
        """
        fills: list[Fill] = []
        positions = self.positions
        if stop_candidates is None:
            held_before = [s for s, p in positions.items() if p.stop_price is not None]
        else:
            held_before = list(stop_candidates)
        open_of = opens.get
        if self.pending:
            due: list[tuple[float, list[OrderIntent]]] = []
            for sym in list(self.pending):
                price = open_of(sym)
                if price is not None and price == price:
                    due.append((float(price), self.pending.pop(sym)))
            for side in ("sell", "buy"):
                for price, orders in due:
                    for order in orders:
                        if order.side == side:
                            fill = self._fill_market(date, order, price)
                            if fill is not None:
                                fills.append(fill)
        for sym in held_before:
            pos = positions.get(sym)
            if pos is None or pos.stop_price is None or pos.entry_date == date:
                continue
            opened = open_of(sym)
            if opened is None or opened != opened:
                continue
            if opened <= pos.stop_price:
                fills.append(self._close(date, sym, float(opened), "stop_loss"))
                continue
            low = lows.get(sym)
            if low is not None and low <= pos.stop_price:  # NaN compares False
                fills.append(self._close(date, sym, pos.stop_price, "stop_loss"))
        return fills

    def on_close(self, date: pd.Timestamp, closes: Mapping[str, float],
                 decisions: Sequence[Decision] = ()) -> list[OrderIntent]:
        """Mark the close of ``date``, count the bar for held symbols, plan and queue new orders.

        Returns the orders queued for the next open (see :func:`~hybrid_core.engine.planner.plan_orders`).
        """
        self.mark(date, closes)
        if not decisions and not self.positions:
            return []
        plan = plan_orders(date, decisions, self.positions, self.pending,
                           _LatestCloses(closes, self.last_close, self.positions), self.last_value,
                           self.risk_rules)
        self.apply(plan, date)
        return plan.orders

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

    # ------------------------------------------------------------- valuation
    def value(self) -> float:
        """Cash plus every position at its latest close."""
        marks = self.last_close
        return self.cash + sum(p.qty * marks.get(s, p.entry_price) for s, p in self.positions.items())

    def exposure(self) -> float:
        """Gross value of the positions at their latest close."""
        return sum(abs(p.qty) * self.last_close.get(s, p.entry_price) for s, p in self.positions.items())

    def open_trades(self, reason: str = "end_of_data") -> list[Trade]:
        """Open positions as trades marked at each symbol's own last close and last bar date (not sold)."""
        out = []
        for sym, pos in self.positions.items():
            out.append(Trade(symbol=sym, strategy=pos.strategy, qty=pos.qty, entry_date=pos.entry_date,
                             entry_price=pos.entry_price,
                             exit_date=self.last_bar_date.get(sym, pos.entry_date),
                             exit_price=self.last_close.get(sym, pos.entry_price), exit_reason=reason,
                             commission=self.entry_commission.get(sym, 0.0),
                             entry_commission=self.entry_commission.get(sym, 0.0)))
        return out

    # ------------------------------------------------------------- internals
    def _fill_market(self, date: pd.Timestamp, order: OrderIntent, open_price: float) -> Fill | None:
        if order.side == "sell":
            if order.symbol not in self.positions:
                return None
            return self._close(date, order.symbol, open_price, order.reason)
        price = open_price * (1.0 + self._slip)
        fee = order.qty * price * self.commission
        self.cash -= order.qty * price + fee
        pos = Position(symbol=order.symbol, qty=order.qty, entry_price=price, entry_date=date,
                       strategy=order.strategy, bars_held=0)
        pos.stop_price = self.stop_for(pos)
        self.positions[order.symbol] = pos
        self.entry_commission[order.symbol] = fee
        return Fill(symbol=order.symbol, side="buy", qty=order.qty, price=price, date=date,
                    strategy=order.strategy, reason=order.reason, commission=fee)

    def _close(self, date: pd.Timestamp, symbol: str, raw_price: float, reason: str) -> Fill:
        pos = self.positions.pop(symbol)
        price = raw_price * (1.0 - self._slip)
        fee = pos.qty * price * self.commission
        self.cash += pos.qty * price - fee
        entry_fee = self.entry_commission.pop(symbol, 0.0)
        self.trades.append(Trade(symbol=symbol, strategy=pos.strategy, qty=pos.qty, entry_date=pos.entry_date,
                                 entry_price=pos.entry_price, exit_date=date, exit_price=price,
                                 exit_reason=reason, commission=entry_fee + fee, entry_commission=entry_fee))
        return Fill(symbol=symbol, side="sell", qty=pos.qty, price=price, date=date, strategy=pos.strategy,
                    reason=reason, commission=fee)

    # ----------------------------------------------------------------- state
    def to_state(self) -> dict[str, Any]:
        """A JSON-able snapshot (cash, positions, pending orders, marks, trades, settings)."""
        return {
            "version": 1,
            "cash": self.cash,
            "slippage_bps": self.slippage_bps,
            "commission": self.commission,
            "last_value": self.last_value,
            "positions": [_position_state(p) for p in self.positions.values()],
            "pending": [_intent_state(o) for orders in self.pending.values() for o in orders],
            "last_close": dict(self.last_close),
            "last_bar_date": {s: _iso(d) for s, d in self.last_bar_date.items()},
            "entry_commission": dict(self.entry_commission),
            "trades": [_trade_state(t) for t in self.trades],
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any], risk_rules: Sequence[RiskRule] = ()) -> PortfolioBook:
        """A new book restored from :meth:`to_state` output (risk rules are not state: pass them)."""
        book = cls(state["cash"], risk_rules=risk_rules, slippage_bps=state.get("slippage_bps", 0.0),
                   commission=state.get("commission", 0.0))
        book.last_value = float(state.get("last_value", book.cash))
        for item in state.get("positions", []):
            pos = Position(symbol=item["symbol"], qty=float(item["qty"]),
                           entry_price=float(item["entry_price"]),
                           entry_date=pd.Timestamp(item["entry_date"]), strategy=item["strategy"],
                           bars_held=int(item["bars_held"]), stop_price=item.get("stop_price"))
            book.positions[pos.symbol] = pos
        for item in state.get("pending", []):
            book.submit(OrderIntent(symbol=item["symbol"], side=item["side"], qty=float(item["qty"]),
                                    strategy=item["strategy"], reason=item["reason"],
                                    decision_date=pd.Timestamp(item["decision_date"]),
                                    ref_price=float(item["ref_price"]), signal=dict(item.get("signal", {}))))
        book.last_close = {s: float(v) for s, v in state.get("last_close", {}).items()}
        book.last_bar_date = {s: pd.Timestamp(v) for s, v in state.get("last_bar_date", {}).items()}
        book.entry_commission = {s: float(v) for s, v in state.get("entry_commission", {}).items()}
        book.trades = [Trade(**{**t, "entry_date": pd.Timestamp(t["entry_date"]),
                                "exit_date": pd.Timestamp(t["exit_date"])}) for t in state.get("trades", [])]
        return book


def _iso(date: pd.Timestamp) -> str:
    return pd.Timestamp(date).strftime("%Y-%m-%d")


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):
        return _json_value(value.item())
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


def _position_state(pos: Position) -> dict[str, Any]:
    return {"symbol": pos.symbol, "qty": pos.qty, "entry_price": pos.entry_price,
            "entry_date": _iso(pos.entry_date), "strategy": pos.strategy, "bars_held": pos.bars_held,
            "stop_price": pos.stop_price}


def _intent_state(order: OrderIntent) -> dict[str, Any]:
    return {"symbol": order.symbol, "side": order.side, "qty": order.qty, "strategy": order.strategy,
            "reason": order.reason, "decision_date": _iso(order.decision_date),
            "ref_price": _json_value(order.ref_price),
            "signal": {k: _json_value(v) for k, v in order.signal.items()}}


def _trade_state(trade: Trade) -> dict[str, Any]:
    out = attrs.asdict(trade)
    out["entry_date"] = _iso(trade.entry_date)
    out["exit_date"] = _iso(trade.exit_date)
    return out
