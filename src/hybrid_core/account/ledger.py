"""The round-trip ledger: fills in, round trips and open lots out (FIFO per symbol).

Every path builds its round trips here: the backtest book and the paper simulator feed it
their fills, ``hybrid replay`` feeds it the state database's filled orders and
``hybrid report`` / the dashboard feed it the filled rows of the order-events audit log.
So a round trip, its PnL (after commissions) and the open lots are computed once.

- A *round trip* is one closing fill matched FIFO against the lots it closes (a sell against
  long lots, a buy against short lots); its entry price is quantity-weighted over those lots,
  its commission is the lots' share of their entry commission plus the closing fill's.
- An *open lot* is what is left of a symbol's lots; it is marked at market data (a close),
  never at the last fill. Its unrealised PnL counts its entry commission, as the backtest's
  ``end_of_data`` rows do.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import attrs
import numpy as np
import pandas as pd

ROUND_TRIP_COLUMNS = ["symbol", "entry_date", "entry_price", "exit_date", "exit_price", "qty", "exit_reason",
                      "pnl", "return", "strategy"]
"""Columns of a round-trip table (``round_trips.csv`` of a backtest or a replay)."""
END_OF_DATA = "end_of_data"
_EPS = 1e-9


@attrs.define(slots=True)
class RoundTrip:
    """One round trip: entry fill(s) to exit fill, or to the mark for ``end_of_data``."""

    symbol: str
    strategy: str
    qty: float
    entry_date: pd.Timestamp
    entry_price: float
    exit_date: pd.Timestamp
    exit_price: float
    exit_reason: str
    commission: float = 0.0
    """Commissions of the entry and exit fills (the entry's share for a partial close)."""
    entry_commission: float = 0.0
    """The entry fill's part of ``commission``."""
    side: int = 1
    """+1 for a long round trip, -1 for a short one."""

    @property
    def pnl(self) -> float:
        """Profit in account currency, after commissions."""
        return self.side * (self.exit_price - self.entry_price) * self.qty - self.commission

    @property
    def ret(self) -> float:
        """Return on the entry value."""
        cost = self.entry_price * self.qty
        return self.pnl / cost if cost else 0.0

    @property
    def is_open(self) -> bool:
        """True for a position still open (marked, not sold)."""
        return self.exit_reason == END_OF_DATA


@attrs.define(slots=True)
class Lot:
    """Part of a position, opened by one fill."""

    qty: float
    """Signed: > 0 long, < 0 short."""
    price: float
    date: pd.Timestamp
    strategy: str
    commission: float = 0.0
    """Entry commission still attributed to this lot."""


@attrs.frozen
class OpenLot:
    """What is left of a symbol's lots, with its mark (None when no market data marked it)."""

    symbol: str
    qty: float
    entry_price: float
    entry_date: pd.Timestamp
    strategy: str
    entry_commission: float = 0.0
    mark: float | None = None
    mark_date: pd.Timestamp | None = None

    @property
    def market_value(self) -> float | None:
        """Value at the mark, or None without a mark."""
        return None if self.mark is None else self.qty * self.mark

    @property
    def unrealised_pnl(self) -> float | None:
        """(mark - entry) * qty - entry commission, or None without a mark."""
        return None if self.mark is None else (self.mark - self.entry_price) * self.qty - self.entry_commission

    def as_round_trip(self) -> RoundTrip:
        """The open lot as an ``end_of_data`` round trip marked at its mark (not sold)."""
        mark = self.entry_price if self.mark is None else self.mark
        return RoundTrip(symbol=self.symbol, strategy=self.strategy, qty=abs(self.qty),
                         entry_date=self.entry_date, entry_price=self.entry_price,
                         exit_date=self.mark_date if self.mark_date is not None else self.entry_date,
                         exit_price=mark, exit_reason=END_OF_DATA, commission=self.entry_commission,
                         entry_commission=self.entry_commission, side=1 if self.qty > 0 else -1)


class Ledger:
    """FIFO lots per symbol and the round trips closed so far."""

    def __init__(self) -> None:
        self.lots: dict[str, list[Lot]] = {}
        """Open lots per symbol, oldest first (a short list: usually one lot)."""
        self.closed: list[RoundTrip] = []

    def fill(self, symbol: str, side: str, qty: float, price: float, date: pd.Timestamp,
             strategy: str = "", reason: str = "", commission: float = 0.0) -> list[RoundTrip]:
        """Record one fill; returns the round trips it closes (usually none or one)."""
        lots = self.lots.get(symbol)
        if lots is None:  # fast path: a new position
            self.lots[symbol] = [Lot(qty if side == "buy" else -qty, price, date, strategy, commission)]
            return []
        if len(lots) == 1 and lots[0].qty == (qty if side == "sell" else -qty):  # fast path: all of one lot
            lot = lots[0]
            del self.lots[symbol]
            trip = RoundTrip(symbol, lot.strategy or strategy, qty, lot.date, lot.price, date, price, reason,
                             lot.commission + commission, lot.commission, 1 if lot.qty > 0 else -1)
            self.closed.append(trip)
            return [trip]
        remaining = qty if side == "buy" else -qty
        if lots and (lots[0].qty > 0) == (remaining > 0):  # adds to the position: no matching
            lots.append(Lot(remaining, price, date, strategy, commission))
            return []
        trips: list[RoundTrip] = []
        matched = cost = entry_fee = 0.0
        strategies: list[str] = []
        entry_date = None
        direction = 0.0
        prices: set[float] = set()
        while lots and abs(remaining) > _EPS and (lots[0].qty > 0) != (remaining > 0):
            lot = lots[0]
            direction = 1.0 if lot.qty > 0 else -1.0
            take = min(abs(remaining), abs(lot.qty))
            share = take / abs(lot.qty)
            fee = lot.commission * share
            matched += take
            cost += take * lot.price
            prices.add(lot.price)
            entry_fee += fee
            entry_date = lot.date if entry_date is None else entry_date
            if lot.strategy and lot.strategy not in strategies:
                strategies.append(lot.strategy)
            lot.commission -= fee
            lot.qty -= direction * take
            remaining += direction * take
            if abs(lot.qty) <= _EPS * max(1.0, take):
                del lots[0]
        exit_fee = commission * (matched / qty) if qty else 0.0
        if matched > 0:
            trip = RoundTrip(symbol=symbol, strategy="+".join(strategies) or strategy, qty=matched,
                             entry_date=entry_date,  # type: ignore[arg-type]
                             entry_price=prices.pop() if len(prices) == 1 else cost / matched,
                             exit_date=date, exit_price=price,
                             exit_reason=reason, commission=entry_fee + exit_fee, entry_commission=entry_fee,
                             side=int(direction))
            self.closed.append(trip)
            trips.append(trip)
        if abs(remaining) > _EPS * max(1.0, qty):
            lots.append(Lot(remaining, price, date, strategy, commission - exit_fee))
        if not lots:
            del self.lots[symbol]
        return trips

    def open_lots(self, marks: Mapping[str, float] | None = None,
                  mark_dates: Mapping[str, pd.Timestamp] | None = None) -> list[OpenLot]:
        """Open positions by symbol (sorted), marked at ``marks`` where a mark is known."""
        out = []
        marks = marks or {}
        mark_dates = mark_dates or {}
        for symbol in sorted(self.lots):
            lots = self.lots[symbol]
            qty = sum(lot.qty for lot in lots)
            if abs(qty) <= _EPS:
                continue
            mark = marks.get(symbol)
            cost = sum(lot.qty * lot.price for lot in lots)
            price = lots[0].price if len(lots) == 1 else cost / qty
            out.append(OpenLot(symbol=symbol, qty=qty, entry_price=price,
                               entry_date=lots[0].date,
                               strategy="+".join(dict.fromkeys(lot.strategy for lot in lots if lot.strategy)),
                               entry_commission=sum(lot.commission for lot in lots),
                               mark=None if mark is None or mark != mark else float(mark),
                               mark_date=mark_dates.get(symbol)))
        return out


def round_trips_frame(trips: Sequence[RoundTrip]) -> pd.DataFrame:
    """Round trips as a table: :data:`ROUND_TRIP_COLUMNS` plus the ``commission`` paid (of which
    ``entry_commission`` at entry), sorted by entry date, symbol and exit date."""
    entry = np.array([t.entry_price for t in trips], dtype="float64")
    exit_ = np.array([t.exit_price for t in trips], dtype="float64")
    qty = np.array([t.qty for t in trips], dtype="float64")
    fees = np.array([t.commission for t in trips], dtype="float64")
    sides = np.array([t.side for t in trips], dtype="float64")
    pnl = sides * (exit_ - entry) * qty - fees
    cost = entry * qty
    with np.errstate(divide="ignore", invalid="ignore"):
        ret = np.where(cost != 0, pnl / cost, 0.0)
    frame = pd.DataFrame({
        "symbol": [t.symbol for t in trips],
        "entry_date": pd.DatetimeIndex([t.entry_date for t in trips]),
        "entry_price": entry,
        "exit_date": pd.DatetimeIndex([t.exit_date for t in trips]),
        "exit_price": exit_,
        "qty": qty,
        "exit_reason": [t.exit_reason for t in trips],
        "pnl": pnl,
        "return": ret,
        "strategy": [t.strategy for t in trips],
        "commission": fees,
        "entry_commission": np.array([t.entry_commission for t in trips], dtype="float64"),
    }, columns=[*ROUND_TRIP_COLUMNS, "commission", "entry_commission"])
    return frame.sort_values(["entry_date", "symbol", "exit_date"], kind="stable", ignore_index=True)


def describe_round_trips(table: pd.DataFrame) -> str:
    """One line about a round-trip table, as ``hybrid replay`` and ``hybrid backtest`` print it:
    ``12 round trip(s) {"rebalance": 9, ...}, realised PnL 1,234.56; 3 open, unrealised -12.30``."""
    still = table["exit_reason"] == END_OF_DATA
    closed, held = table[~still], table[still]
    counts = closed["exit_reason"].value_counts().to_dict() if len(closed) else {}
    return (f"{len(closed)} round trip(s) {json.dumps(counts)}, realised PnL {closed['pnl'].sum():,.2f}; "
            f"{len(held)} open, unrealised {held['pnl'].sum():,.2f}")
