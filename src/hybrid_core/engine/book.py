"""The simulated execution of an account: fills from daily bars (backtest and paper simulator).

:class:`PortfolioBook` is an :class:`~hybrid_core.account.state.Account` plus the execution
model of STRATEGIES.md: orders decided at a close fill at the open of the symbol's next bar
(sells before buys), a market exit takes precedence over the stop at the same open, a new
position's stop is active from the bar after its entry, and a stop fills at the open when the
open gaps through it, else at the stop price when the low touches it. Cash is never checked.

Price mappings (``opens``, ``lows``, ``closes``) hold the symbols that have a bar on the date;
a missing key, ``None`` or NaN means "no bar". The book only looks up held and pending symbols,
so a mapping may be a cheap view over a row of a wide array.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs
import pandas as pd

from ..account.ledger import Lot, RoundTrip
from ..account.state import Account
from ..contracts import Fill, OrderIntent, Position, RiskRule


class PortfolioBook(Account):
    """An account filled bar by bar from daily bars (the backtester's and the paper broker's).

    ``slippage_bps`` moves fills against the trader (buys at ``open * (1 + s)``, sells and
    stops at ``price * (1 - s)``); ``commission`` is a fraction of each fill's value, paid
    in cash and charged to the trade's profit.
    """

    def __init__(self, cash: float, risk_rules: Sequence[RiskRule] = (), slippage_bps: float = 0.0,
                 commission: float = 0.0, *, context: Mapping[str, Any] | None = None) -> None:
        super().__init__(cash, risk_rules, context=context)
        self.slippage_bps = float(slippage_bps)
        self.commission = float(commission)
        self._slip = self.slippage_bps / 1e4

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
        pending = self.pending
        if pending:
            sells: list[tuple[OrderIntent, float]] = []
            buys: list[tuple[OrderIntent, float]] = []
            for sym in list(pending):
                price = open_of(sym)
                if price is not None and price == price:
                    price = float(price)
                    for order in pending.pop(sym):
                        if order.side == "sell":
                            sells.append((order, price))
                        elif order.side == "buy":
                            buys.append((order, price))
            for order, price in sells + buys:
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

    # ------------------------------------------------------------- internals
    def _fill_market(self, date: pd.Timestamp, order: OrderIntent, open_price: float) -> Fill | None:
        if order.side == "sell":
            if order.symbol not in self.positions:
                return None
            return self._close(date, order.symbol, open_price, order.reason)
        price = open_price * (1.0 + self._slip)
        fee = order.qty * price * self.commission
        self.open(order.symbol, order.qty, price, date, order.strategy, order.reason, fee)
        return Fill(order.symbol, "buy", order.qty, price, date, order.strategy, order.reason, fee)

    def _close(self, date: pd.Timestamp, symbol: str, raw_price: float, reason: str) -> Fill:
        price = raw_price * (1.0 - self._slip)
        qty = self.positions[symbol].qty
        fee = qty * price * self.commission
        pos = self.close(symbol, price, date, reason, fee)
        return Fill(symbol, "sell", pos.qty, price, date, pos.strategy, reason, fee)

    # ----------------------------------------------------------------- state
    def to_state(self) -> dict[str, Any]:
        """A JSON-able snapshot (cash, positions, pending orders, marks, trades, settings)."""
        return {
            "version": 2,
            "cash": self.cash,
            "slippage_bps": self.slippage_bps,
            "commission": self.commission,
            "last_value": self.last_value,
            "positions": [_position_state(p) for p in self.positions.values()],
            "pending": [_intent_state(o) for orders in self.pending.values() for o in orders],
            "last_close": dict(self.last_close),
            "last_bar_date": {s: _iso(d) for s, d in self.last_bar_date.items()},
            "lots": {s: [_lot_state(lot) for lot in lots] for s, lots in self.ledger.lots.items()},
            "closed": [_trip_state(t) for t in self.ledger.closed],
        }

    def state_json(self) -> str:
        """``json.dumps(self.to_state())``, assembled from the JSON of each position, order and lot
        (remembered by value, so only what changed since the last call is rendered again: a
        paper account is saved on every order, and rendering the whole account each time was
        most of an order's cost)."""
        head = json.dumps({"version": 2, "cash": self.cash, "slippage_bps": self.slippage_bps,
                           "commission": self.commission, "last_value": self.last_value})[:-1]
        positions = ", ".join(_rendered(_position_key(p), _position_state, p) for p in self.positions.values())
        pending = ", ".join(_rendered(_intent_key(o), _intent_state, o)
                            for orders in self.pending.values() for o in orders)
        lots = ", ".join(f"{json.dumps(s)}: {_rendered(_lots_key(q), _lots_state, q)}"
                         for s, q in self.ledger.lots.items())
        return (f'{head}, "positions": [{positions}], "pending": [{pending}], '
                f'"last_close": {json.dumps(self.last_close)}, '
                f'"last_bar_date": {json.dumps({s: _iso(d) for s, d in self.last_bar_date.items()})}, '
                f'"lots": {{{lots}}}, "closed": {json.dumps([_trip_state(t) for t in self.ledger.closed])}}}')

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
            book.submit(intent_from_state(item))
        book.last_close = {s: float(v) for s, v in state.get("last_close", {}).items()}
        book.last_bar_date = {s: pd.Timestamp(v) for s, v in state.get("last_bar_date", {}).items()}
        if "lots" in state:
            for sym, lots in state["lots"].items():
                book.ledger.lots[sym] = [Lot(qty=float(x["qty"]), price=float(x["price"]),
                                             date=pd.Timestamp(x["date"]), strategy=x["strategy"],
                                             commission=float(x["commission"])) for x in lots]
        else:  # version 1: one lot per position, its entry commission kept aside
            fees = state.get("entry_commission", {})
            for sym, pos in book.positions.items():
                book.ledger.lots[sym] = [Lot(pos.qty, pos.entry_price, pos.entry_date, pos.strategy,
                                             float(fees.get(sym, 0.0)))]
        book.ledger.closed = [RoundTrip(**{**t, "entry_date": pd.Timestamp(t["entry_date"]),
                                           "exit_date": pd.Timestamp(t["exit_date"])})
                              for t in state.get("closed", state.get("trades", []))]
        return book


@functools.lru_cache(maxsize=8192)
def _iso(date: pd.Timestamp) -> str:
    """``YYYY-MM-DD`` (cached: a paper account writes the same few dates on every order)."""
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


def intent_state(order: OrderIntent) -> dict[str, Any]:
    """A pending order as the book's state holds it (JSON-able)."""
    return _intent_state(order)


def intent_from_state(item: Mapping[str, Any]) -> OrderIntent:
    """The pending order of :func:`intent_state`."""
    return OrderIntent(symbol=item["symbol"], side=item["side"], qty=float(item["qty"]), strategy=item["strategy"],
                       reason=item["reason"], decision_date=pd.Timestamp(item["decision_date"]),
                       ref_price=float(item["ref_price"]), signal=dict(item.get("signal", {})))


def _lot_state(lot: Lot) -> dict[str, Any]:
    return {"qty": lot.qty, "price": lot.price, "date": _iso(lot.date), "strategy": lot.strategy,
            "commission": lot.commission}


def _lots_state(lots: Iterable[Lot]) -> list[dict[str, Any]]:
    return [_lot_state(lot) for lot in lots]


_RENDERED: dict[Any, str] = {}
"""JSON text of the parts of a book, by their value (see :meth:`PortfolioBook.state_json`)."""
_RENDERED_MAX = 100_000


def _rendered(key: Any, state: Any, item: Any) -> str:
    """``json.dumps(state(item))``, remembered under ``key`` (None: not remembered)."""
    if key is not None:
        text = _RENDERED.get(key)
        if text is not None:
            return text
    text = json.dumps(state(item))
    if key is not None:
        if len(_RENDERED) >= _RENDERED_MAX:
            _RENDERED.clear()
        _RENDERED[key] = text
    return text


def _position_key(pos: Position) -> Any:
    return ("position", pos.symbol, pos.qty, pos.entry_price, pos.entry_date, pos.strategy, pos.bars_held,
            pos.stop_price)


def _intent_key(order: OrderIntent) -> Any:
    try:
        signal = tuple(order.signal.items())
        hash(signal)
    except TypeError:  # a signal holding lists or dicts: rendered every time
        return None
    return ("intent", order.symbol, order.side, order.qty, order.strategy, order.reason, order.decision_date,
            order.ref_price, signal)


def _lots_key(lots: Iterable[Lot]) -> Any:
    return ("lots", *((lot.qty, lot.price, lot.date, lot.strategy, lot.commission) for lot in lots))


def _trip_state(trip: RoundTrip) -> dict[str, Any]:
    out = attrs.asdict(trip)
    out["entry_date"] = _iso(trip.entry_date)
    out["exit_date"] = _iso(trip.exit_date)
    return out
