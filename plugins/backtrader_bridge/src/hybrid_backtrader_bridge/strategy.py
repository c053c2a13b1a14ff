"""HybridStrategy: any hybrid :class:`~hybrid_core.contracts.Strategy` traded inside Backtrader.

What is hybrid's and what is Backtrader's:

- hybrid's: each strategy's ``signals()`` runs once over the panel; at every close, hybrid's
  account model (the :class:`~hybrid_core.account.state.Account` of the native backtest, the
  paper simulator and the live cycle) counts the bar for held symbols, plans (exits labelled
  ``rebalance`` or ``signal``, entries sized from the close: whole shares, crypto rounded down
  to 1e-6; time-stop restarts of re-selected names; a pending buy cancelled when the next
  decided date does not select it again; then the time stop), lets every ``vet()`` rule and
  guard refuse orders, and keeps the round trips.
- Backtrader's: the fills (market orders at each data's next open, sells first), the stop-loss
  as a Backtrader ``Stop`` order placed at the entry fill (active from the next bar of its own
  data, at the open on a gap, else at the stop price), cash, commission, slippage, the
  portfolio value the entries are sized from and the guards judge, and the calendar of mixed
  feeds (Cerebro steps through the union of NYSE sessions and 24/7 crypto days; a symbol moves
  on its own bars).

A market exit cancels the position's stop when it is sent, so at the next open the exit
fills and the stop cannot (the contract's precedence). Orders still pending when the data
ends are dropped; positions still open are ``end_of_data`` round trips at the symbol's own
last close and bar date.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import backtrader as bt
import numpy as np
import pandas as pd

from hybrid_core.contracts import Fill, OrderIntent, Panel, Position, RiskRule, Strategy
from hybrid_core.errors import HybridError

from . import _core
from .broker import ContractBroker
from .feeds import session_numbers


class BridgeError(HybridError):
    """Backtrader did something the bridge never asks for (a refused or partial order)."""


class _TodayCloses(Mapping[str, float]):
    """Today's close of each symbol that has a bar at the current step (others: absent)."""

    def __init__(self, data_of: Mapping[str, Any], now: float) -> None:
        self._data_of = data_of
        self._now = now

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        data = self._data_of.get(key)
        if data is None or not len(data) or data.datetime[0] != self._now:
            return default
        return data.close[0]

    def __getitem__(self, key: str) -> float:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return float(value)

    def __iter__(self) -> Iterator[str]:
        return (s for s in self._data_of if self.get(s) is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)


class BrokerAccount(_core.Account):
    """hybrid's account model kept beside Backtrader's broker.

    Positions, pending orders, time-stop counts, marks, the plan at each close, the vetting by
    every risk rule and guard, the watermarks and the round trips are hybrid's own (the
    :class:`~hybrid_core.account.state.Account` of every engine); the cash and the portfolio
    value that entries are sized from and guards judge are Backtrader's, read at each close.
    """

    def __init__(self, broker: Any, risk_rules: Sequence[RiskRule], context: Mapping[str, Any]) -> None:
        super().__init__(float(broker.getcash()), risk_rules, context=context)
        self.broker = broker

    def mark(self, date: pd.Timestamp, closes: Mapping[str, float]) -> float:
        super().mark(date, closes)  # counts the bar for held symbols, records their closes
        self.cash = float(self.broker.getcash())
        self.last_value = float(self.broker.getvalue())
        return self.last_value


def panel_from_feeds(datas: Sequence[Any]) -> Panel:
    """The panel behind Cerebro's feeds: each feed's DataFrame (``dataname``), named by ``_name``."""
    parts = []
    for data in datas:
        frame = getattr(data.p, "dataname", None)
        if not isinstance(frame, pd.DataFrame) or not data._name:
            raise BridgeError(f"feed {data._name or data!r} is not a named pandas feed; build the feeds with "
                              f"hybrid_backtrader_bridge.to_feeds or pass panel= to HybridStrategy")
        long = frame.rename(columns=str.lower)[["open", "high", "low", "close", "volume"]]
        long = long.rename_axis("date").reset_index()
        long.insert(0, "symbol", data._name)
        parts.append(long)
    return Panel.from_long(pd.concat(parts, ignore_index=True))


class HybridStrategy(bt.Strategy):
    """A ``bt.Strategy`` that trades hybrid strategies by the rules of STRATEGIES.md.

    Params: ``strategies`` (a hybrid Strategy or a sequence of them, each with its universe and
    allocation), ``risk_rules`` (the profile's rules: stop prices become Backtrader stop orders,
    time stops and every ``vet()`` rule and guard act at each close as in the native engine),
    ``panel`` (the bars behind the feeds; default: rebuilt from the feeds' DataFrames), ``start``
    (a warm start: bars before it feed the signals only, no order is decided before it; None:
    every date trades, a cold start), ``profile_name`` (what risk rules see), ``progress`` and
    ``signals`` (strategies' signals already computed, by name: those strategies do not run again).
    Feeds are found by symbol name (``data._name``). After the run, :attr:`account` holds the
    round trips (``account.round_trips()``), :attr:`fills`, :attr:`refused` and :meth:`equity`.
    """

    params = (("strategies", ()), ("risk_rules", ()), ("panel", None), ("start", None),
              ("profile_name", "default"), ("progress", False), ("signals", None))

    def __init__(self) -> None:
        given = self.p.strategies
        self.hybrid_strategies: list[Strategy] = [given] if isinstance(given, Strategy) else list(given)
        if not self.hybrid_strategies:
            raise BridgeError("HybridStrategy needs strategies=<a hybrid Strategy or a list of them>")
        names = [s.name for s in self.hybrid_strategies]
        if len(set(names)) != len(names):
            raise BridgeError(f"two strategies share a name in {names}; give each a distinct `id` in the profile")
        self.risk_rules: list[RiskRule] = list(self.p.risk_rules)
        self._data_of = {d._name: d for d in self.datas}
        # bt.Strategy keeps its own ``_orders``: the bridge's attributes have names Backtrader does not use
        self._open_orders: dict[int, tuple[OrderIntent, bt.Order]] = {}  # by id() of the account's pending intent
        self._intent_of: dict[int, OrderIntent] = {}  # by Backtrader order ref
        self._stops: dict[str, bt.Order] = {}
        self._cancelled: set[int] = set()
        self.fills: list[Fill] = []
        self.refused: list[str] = []
        self.timings: dict[str, float] = {}

    # ----------------------------------------------------------------- set-up
    def start(self) -> None:
        import time

        t0 = time.perf_counter()
        if not isinstance(self.broker, ContractBroker):
            raise BridgeError(f"HybridStrategy trades by STRATEGIES.md, which Backtrader's "
                              f"{type(self.broker).__name__} does not (it refuses buys for cash and tries stops on "
                              f"other symbols' days); set cerebro.broker = "
                              f"hybrid_backtrader_bridge.contract_broker(cash) or use cerebro(profile)")
        self.account = BrokerAccount(self.broker, self.risk_rules,
                                     {"mode": "backtest", "profile_name": self.p.profile_name})
        panel = self.p.panel if self.p.panel is not None else panel_from_feeds(self.datas)
        self.dates = panel.dates
        self._row = {num: i for i, num in enumerate(session_numbers(self.dates))}
        given = self.p.signals or {}  # already computed (BacktestRequest.signals), by strategy name
        self._tables = [_core.DecisionTable(given[s.name] if s.name in given else _core.compute_signals(s, panel),
                                            s.name, self.dates, with_info=False)
                        for s in self.hybrid_strategies]
        self._first = 0 if self.p.start is None else int(self.dates.searchsorted(pd.Timestamp(self.p.start)))
        self._values = np.full(len(self.dates), np.nan)
        self._cash = np.full(len(self.dates), np.nan)
        self._bar = _progress_bar(self.p.progress, len(self.dates) - self._first)
        self.timings["signals"] = time.perf_counter() - t0

    # ------------------------------------------------------------ each close
    def next(self) -> None:
        now = self.datetime[0]
        i = self._row.get(now)
        if i is None:
            raise BridgeError(f"Cerebro stepped to {bt.num2date(now).date()}, a date the panel does not have; "
                              f"feed HybridStrategy the feeds of its own panel (to_feeds(panel))")
        if i < self._first:  # the warm-up: its bars fed the signals, nothing is decided
            return
        account = self.account
        decisions = [d for d in (t.at(i, account.positions) for t in self._tables) if d is not None]
        new_orders = account.on_close(self.dates[i], _TodayCloses(self._data_of, now), decisions,
                                      refused=self.refused)
        self._cancel_dropped()
        for intent in new_orders:  # sells first, then buys (the plan's order)
            self._send(intent)
        self._values[i] = self.broker.getvalue()
        self._cash[i] = self.broker.getcash()
        if self._bar is not None:
            self._bar.update(1)

    prenext = next  # feeds that list later have no bar yet: trade the others anyway
    nextstart = next

    def _cancel_dropped(self) -> None:
        """Cancel the Backtrader orders of pending buys the plan cancelled (not selected again)."""
        pending = {id(intent) for orders in self.account.pending.values() for intent in orders}
        for key in [k for k in self._open_orders if k not in pending]:
            _, order = self._open_orders.pop(key)
            self._cancel(order)

    def _send(self, intent: OrderIntent) -> None:
        data = self._data_of[intent.symbol]
        if intent.side == "sell":
            stop = self._stops.pop(intent.symbol, None)
            if stop is not None:  # the market exit takes precedence over the stop
                self._cancel(stop)
            order = self.sell(data=data, size=intent.qty, exectype=bt.Order.Market)
        else:
            order = self.buy(data=data, size=intent.qty, exectype=bt.Order.Market)
        self._open_orders[id(intent)] = (intent, order)
        self._intent_of[order.ref] = intent

    def _cancel(self, order: bt.Order) -> None:
        self._cancelled.add(order.ref)
        self._intent_of.pop(order.ref, None)
        self.broker.cancel(order)

    # ------------------------------------------------------------- each fill
    def notify_order(self, order: bt.Order) -> None:
        status = order.status
        if status in (bt.Order.Submitted, bt.Order.Accepted):
            return
        if status == bt.Order.Canceled and order.ref in self._cancelled:
            self._cancelled.discard(order.ref)
            return
        sym = order.data._name
        if status != bt.Order.Completed:
            raise BridgeError(f"Backtrader reports the {'buy' if order.isbuy() else 'sell'} order of {sym} as "
                              f"{order.getstatusname()}; the ContractBroker never refuses or splits an order")
        bits = order.executed.exbits
        if len(bits) != 1:
            raise BridgeError(f"Backtrader filled the order of {sym} in {len(bits)} parts; the bridge expects one")
        # the fill's own price: ``executed.price`` is an average, (0 * 0 + size * price) / size, 1 ulp off
        date = self.dates[self._row[bits[0].dt]]
        price, qty, fee = float(bits[0].price), abs(float(bits[0].size)), float(order.executed.comm)
        account = self.account
        stop = self._stops.get(sym)
        if stop is not None and stop.ref == order.ref:
            del self._stops[sym]
            self._record(account.close(sym, price, date, "stop_loss", commission=fee), "sell", qty, price, date,
                         "stop_loss", fee)
            return
        intent = self._intent_of.pop(order.ref)
        del self._open_orders[id(intent)]
        left = [o for o in account.pending.get(sym, []) if o is not intent]
        if left:
            account.pending[sym] = left
        else:
            account.pending.pop(sym, None)
        if intent.side == "sell":
            self._record(account.close(sym, price, date, intent.reason, commission=fee), "sell", qty, price, date,
                         intent.reason, fee)
            return
        pos = account.open(sym, qty, price, date, intent.strategy, intent.reason, commission=fee)
        self._record(pos, "buy", qty, price, date, intent.reason, fee)
        if pos.stop_price is not None:  # tried from the next bar of this data on (ContractBroker)
            self._stops[sym] = self.sell(data=order.data, size=qty, exectype=bt.Order.Stop, price=pos.stop_price)

    def _record(self, pos: Position, side: str, qty: float, price: float, date: pd.Timestamp, reason: str,
                fee: float) -> None:
        if qty != pos.qty:
            raise BridgeError(f"Backtrader filled {qty} {pos.symbol} for a position of {pos.qty}")
        self.fills.append(Fill(symbol=pos.symbol, side=side, qty=qty, price=price,  # type: ignore[arg-type]
                               date=date, strategy=pos.strategy, reason=reason, commission=fee))

    # ---------------------------------------------------------------- the end
    def stop(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def round_trips(self) -> pd.DataFrame:
        """The round-trip table: closed round trips, then open positions as ``end_of_data`` at each
        symbol's own last close and bar date (hybrid's ledger, as the native engine writes it)."""
        return _core.round_trips_frame(self.account.round_trips())

    def equity(self) -> pd.DataFrame:
        """The value, cash and exposure at every close from ``start`` on (hybrid's ``equity.csv`` columns)."""
        first = self._first
        values, cash, dates = self._values[first:], self._cash[first:], self.dates[first:]
        if np.isnan(values).any():
            missing = dates[np.isnan(values)]
            raise BridgeError(f"Cerebro never stepped on {len(missing)} date(s) of the panel (first "
                              f"{missing[0].date()}); every panel date needs a feed with a bar on it")
        return pd.DataFrame({"value": values, "cash": cash, "exposure": values - cash},
                            index=pd.DatetimeIndex(dates, name="date"))


def _progress_bar(enabled: bool | None, total: int) -> Any:
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc="backtrader", unit="day", file=sys.stderr, delay=1.0, mininterval=0.25,
                leave=False)
