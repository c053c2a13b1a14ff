"""HybridStrategy: any hybrid :class:`~hybrid_core.contracts.Strategy` traded inside Backtrader.

What is hybrid's and what is Backtrader's:

- hybrid's: each strategy's ``signals()`` runs once over the panel; at every close, hybrid's
  planner (the one the native backtest and the live cycle use) turns the decisions into
  orders: exits (labelled ``rebalance`` or ``signal``), entries sized from the close
  (``weight * portfolio value / close``: whole shares, crypto rounded down to 1e-6), time-stop
  restarts of re-selected names, cancellation of a pending buy not selected again on the next
  decided date, then the time stop. Trades are hybrid's round trips.
- Backtrader's: the fills (market orders at each data's next open, sells first), the stop-loss
  as a Backtrader ``Stop`` order placed at the entry fill (active from the next bar of its own
  data, at the open on a gap, else at the stop price), cash, commission, slippage, the
  portfolio value the entries are sized from, and the calendar of mixed feeds (Cerebro steps
  through the union of NYSE sessions and 24/7 crypto days; a symbol moves on its own bars).

A market exit cancels the position's stop when it is sent, so at the next open the exit
fills and the stop cannot (the contract's precedence). Orders still pending when the data
ends are dropped; positions still open are reported as ``end_of_data`` trades at the
symbol's own last close and bar date.
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
from .rules import check_risk_rules


class BridgeError(HybridError):
    """Backtrader did something the bridge never asks for (a refused or partial order)."""


class _LatestCloses(Mapping[str, float]):
    """Each symbol's latest close: its data's close at its last bar so far (no bar yet: absent)."""

    def __init__(self, data_of: Mapping[str, Any]) -> None:
        self._data_of = data_of

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        data = self._data_of.get(key)
        if data is None or not len(data):
            return default
        return data.close[0]

    def __getitem__(self, key: str) -> float:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return float(value)

    def __iter__(self) -> Iterator[str]:
        return (s for s, d in self._data_of.items() if len(d))

    def __len__(self) -> int:
        return sum(1 for _ in self)


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

    Params: ``strategies`` (a hybrid Strategy or a sequence of them, each with its universe
    and allocation), ``risk_rules`` (stop-loss and time-stop rules, e.g. the profile's
    ``stop_loss`` and ``time_stop``; order-vetting rules are refused), ``panel`` (the bars
    behind the feeds; default: rebuilt from the feeds' DataFrames), ``start`` (a warm start: bars
    before it feed the signals only, no order is decided before it; None: every date trades, a
    cold start) and ``progress``.
    Feeds are found by symbol name (``data._name``). After the run, :attr:`trades`,
    :attr:`fills` and :meth:`equity` hold the results.
    """

    params = (("strategies", ()), ("risk_rules", ()), ("panel", None), ("start", None), ("progress", False))

    def __init__(self) -> None:
        given = self.p.strategies
        self.hybrid_strategies: list[Strategy] = [given] if isinstance(given, Strategy) else list(given)
        if not self.hybrid_strategies:
            raise BridgeError("HybridStrategy needs strategies=<a hybrid Strategy or a list of them>")
        names = [s.name for s in self.hybrid_strategies]
        if len(set(names)) != len(names):
            raise BridgeError(f"two strategies share a name in {names}; give each a distinct `id` in the profile")
        self.risk_rules: list[RiskRule] = list(self.p.risk_rules)
        check_risk_rules(self.risk_rules)
        self._stop_for = _core.stop_pricer(self.risk_rules)
        self._data_of = {d._name: d for d in self.datas}
        self._closes = _LatestCloses(self._data_of)
        self.positions_open: dict[str, Position] = {}
        self._pending: dict[str, list[tuple[OrderIntent, bt.Order]]] = {}
        self._intents: dict[int, OrderIntent] = {}
        self._stops: dict[str, bt.Order] = {}
        self._cancelled: set[int] = set()
        self._entry_fee: dict[str, float] = {}
        self.trades: list[_core.Trade] = []
        self.fills: list[Fill] = []
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
        panel = self.p.panel if self.p.panel is not None else panel_from_feeds(self.datas)
        self.dates = panel.dates
        self._row = {num: i for i, num in enumerate(session_numbers(self.dates))}
        self._tables = [_core.DecisionTable(_core.compute_signals(s, panel), s.name, self.dates, with_info=False)
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
        date = self.dates[i]
        for sym, pos in self.positions_open.items():  # the close counts for symbols with a bar today
            if self._data_of[sym].datetime[0] == now:
                pos.bars_held += 1
        decisions = [d for d in (t.at(i, self.positions_open) for t in self._tables) if d is not None]
        if decisions or self.positions_open:
            pending = {s: [intent for intent, _ in orders] for s, orders in self._pending.items()}
            plan = _core.plan_orders(date, decisions, self.positions_open, pending, self._closes,
                                     self.broker.getvalue(), self.risk_rules)
            self._apply(plan, date)
        self._values[i] = self.broker.getvalue()
        self._cash[i] = self.broker.getcash()
        if self._bar is not None:
            self._bar.update(1)

    prenext = next  # feeds that list later have no bar yet: trade the others anyway
    nextstart = next

    def _apply(self, plan: Any, date: pd.Timestamp) -> None:
        for sym in plan.restart:
            self.positions_open[sym].bars_held = 0
        for sym in plan.cancel:
            kept = []
            for intent, order in self._pending.get(sym, []):
                if intent.side == "buy" and intent.decision_date < date:
                    self._cancel(order)
                else:
                    kept.append((intent, order))
            self._set_pending(sym, kept)
        for intent in plan.orders:
            data = self._data_of[intent.symbol]
            if intent.side == "sell":
                stop = self._stops.pop(intent.symbol, None)
                if stop is not None:  # the market exit takes precedence over the stop
                    self._cancel(stop)
                order = self.sell(data=data, size=intent.qty, exectype=bt.Order.Market)
            else:
                order = self.buy(data=data, size=intent.qty, exectype=bt.Order.Market)
            self._pending.setdefault(intent.symbol, []).append((intent, order))
            self._intents[order.ref] = intent

    def _cancel(self, order: bt.Order) -> None:
        self._cancelled.add(order.ref)
        self._intents.pop(order.ref, None)
        self.broker.cancel(order)

    def _set_pending(self, sym: str, orders: list[tuple[OrderIntent, bt.Order]]) -> None:
        if orders:
            self._pending[sym] = orders
        else:
            self._pending.pop(sym, None)

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
        stop = self._stops.get(sym)
        if stop is not None and stop.ref == order.ref:
            del self._stops[sym]
            self._close(sym, date, price, qty, fee, "stop_loss")
            return
        intent = self._intents.pop(order.ref)
        self._set_pending(sym, [(i, o) for i, o in self._pending.get(sym, []) if o.ref != order.ref])
        if intent.side == "sell":
            self._close(sym, date, price, qty, fee, intent.reason)
            return
        pos = Position(symbol=sym, qty=qty, entry_price=price, entry_date=date, strategy=intent.strategy,
                       bars_held=0)
        pos.stop_price = self._stop_for(pos)
        self.positions_open[sym] = pos
        self._entry_fee[sym] = fee
        self.fills.append(Fill(symbol=sym, side="buy", qty=qty, price=price, date=date, strategy=intent.strategy,
                               reason=intent.reason, commission=fee))
        if pos.stop_price is not None:  # tried from the next bar of this data on (ContractBroker)
            self._stops[sym] = self.sell(data=order.data, size=qty, exectype=bt.Order.Stop, price=pos.stop_price)

    def _close(self, sym: str, date: pd.Timestamp, price: float, qty: float, fee: float, reason: str) -> None:
        pos = self.positions_open.pop(sym)
        if qty != pos.qty:
            raise BridgeError(f"Backtrader sold {qty} {sym} from a position of {pos.qty}")
        entry_fee = self._entry_fee.pop(sym, 0.0)
        self.trades.append(_core.Trade(symbol=sym, strategy=pos.strategy, qty=pos.qty, entry_date=pos.entry_date,
                                       entry_price=pos.entry_price, exit_date=date, exit_price=price,
                                       exit_reason=reason, commission=entry_fee + fee, entry_commission=entry_fee))
        self.fills.append(Fill(symbol=sym, side="sell", qty=qty, price=price, date=date, strategy=pos.strategy,
                               reason=reason, commission=fee))

    # ---------------------------------------------------------------- the end
    def stop(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def open_trades(self) -> list[Any]:
        """Positions still open, as ``end_of_data`` trades at each symbol's own last close and bar date."""
        out = []
        for sym, pos in self.positions_open.items():
            data = self._data_of[sym]
            fee = self._entry_fee.get(sym, 0.0)
            out.append(_core.Trade(symbol=sym, strategy=pos.strategy, qty=pos.qty, entry_date=pos.entry_date,
                                   entry_price=pos.entry_price, exit_date=self.dates[self._row[data.datetime[0]]],
                                   exit_price=float(data.close[0]), exit_reason="end_of_data", commission=fee,
                                   entry_commission=fee))
        return out

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
