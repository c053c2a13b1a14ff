"""The paper simulator broker: fills orders from daily bars exactly as the backtester does.

It keeps one paper account (cash, positions, pending orders, stops) in a SQLite file, so
consecutive ``hybrid run --once`` calls continue the same account: a snapshot of the book when
it syncs with the bars (once a cycle), and between two snapshots a journal of the orders taken
and canceled, each written with its order before the broker answers (replayed on opening).
Inside a :meth:`PaperBroker.batch` (a replay's session, committed at its end) the account is
written once, when the batch ends: a snapshot of the book and the orders that changed. Market orders fill at the
open of the symbol's next bar, sells before buys; a stop order placed on a position triggers
from the following bar (gap fills at the open, else at the stop price). The fill logic is
:class:`~hybrid_core.engine.book.PortfolioBook`, the very code of the backtester (an
:class:`~hybrid_core.account.state.Account` with its execution model).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pandas as pd

from ..account.decisions import RowPrices
from ..contracts import (
    AccountSnapshot,
    Broker,
    BrokerPosition,
    HealthReport,
    OrderIntent,
    OrderRequest,
    OrderStatus,
    Panel,
)
from ..engine.book import PortfolioBook, intent_from_state, intent_state
from ..errors import BrokerError, OrderRejected
from ..hookspecs import hookimpl
from ..ops.state import replaced, savepoint

SCHEMA = """
CREATE TABLE IF NOT EXISTS account (id INTEGER PRIMARY KEY CHECK (id = 1), book TEXT NOT NULL,
                                    synced_through TEXT);
CREATE TABLE IF NOT EXISTS orders (client_order_id TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS journal (seq INTEGER PRIMARY KEY AUTOINCREMENT, op TEXT NOT NULL);
"""
OPEN = frozenset({"accepted", "new"})
"""Statuses of an order the simulator still works."""


class PaperBroker(Broker):
    """Paper simulator: fills at the next bar's open per STRATEGIES.md, account kept in SQLite.

    Its orders follow the same state machine as a real broker's (``accepted``, then ``filled``
    or ``canceled``); an order it cannot take is :class:`~hybrid_core.errors.OrderRejected`;
    it always answers, so its orders are never ``unknown``."""

    name = "paper"
    simulated = True
    durable = True
    """Sync every write of the account file to disk (SQLite ``synchronous=FULL``). A replay's
    session sets it False before :meth:`configure` (``NORMAL``: safe against a killed process,
    not against a power loss; a replay can be run again)."""

    @attrs.define(kw_only=True)
    class Params:
        initial_cash: float = 1_000_000.0
        """Cash of a new paper account."""
        slippage_bps: float = 0.0
        """Fills move against the trader by this many basis points."""
        commission: float = 0.0
        """Commission as a fraction of each fill's value."""
        account_file: str | None = None
        """SQLite file of the paper account (default: paper_account.sqlite beside the state database)."""

    def __init__(self, params: Any = None) -> None:
        super().__init__(params)
        self._conn: sqlite3.Connection | None = None
        self._book: PortfolioBook | None = None
        self._synced_through: pd.Timestamp | None = None
        self._batched = False
        self._open: dict[str, OrderStatus] = {}
        """The open orders by client id, in the file's order: read once when the account opens,
        kept with every save (the orders table only grows: a long replay holds tens of thousands)."""
        self._taken_ids: set[str] = set()
        self._column_map: tuple[pd.Index, dict[str, int]] | None = None
        """Every client id the account has taken (an id never seen is answered without a query)."""
        self._unsaved: dict[str, OrderStatus] | None = None
        """Inside a batch: the orders saved since it began, in the order of their last save,
        written when it ends (None outside a batch)."""
        self.mode = "paper"

    # ----------------------------------------------------------- lifecycle
    def configure(self, *, mode: str, state_dir: str) -> None:
        """Open (or create) the paper account. The simulator never touches a real account."""
        self.mode = mode
        path = Path(self.params.account_file) if self.params.account_file else Path(state_dir) / \
            "paper_account.sqlite"
        if not path.is_absolute() and self.params.account_file and self.profile_dir:
            path = Path(state_dir) / path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(str(path), timeout=30, isolation_level=None)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(f"PRAGMA synchronous={'FULL' if self.durable else 'NORMAL'}")
            self._conn.executescript(SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise BrokerError(f"paper broker cannot open its account file {path}: {exc}") from exc
        self.path = path
        row = self._conn.execute("SELECT book, synced_through FROM account WHERE id = 1").fetchone()
        if row is None:
            self._book = PortfolioBook(self.params.initial_cash, slippage_bps=self.params.slippage_bps,
                                       commission=self.params.commission)
            self._synced_through = None
            self._save()
        else:
            self._book = PortfolioBook.from_state(json.loads(row[0]))
            self._synced_through = pd.Timestamp(row[1]) if row[1] else None
            for (op,) in self._conn.execute("SELECT op FROM journal ORDER BY seq"):
                self._apply(json.loads(op))
        taken = self._orders()
        self._taken_ids = {o.client_order_id for o in taken}
        self._open = {o.client_order_id: o for o in taken if o.status in OPEN}

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @property
    def book(self) -> PortfolioBook:
        """The simulated account."""
        if self._book is None:
            raise BrokerError("paper broker used before configure(); this is a bug in the caller")
        return self._book

    def _apply(self, op: dict[str, Any]) -> None:
        """One change of the book between two snapshots: ``submit`` (a market order's pending
        intent), ``cancel`` (of that intent) or ``stop`` (a position's stop price set or cleared)."""
        book = self.book
        if op["op"] == "submit":
            book.submit(intent_from_state(op["intent"]))
        elif op["op"] == "cancel":
            pending = book.pending.get(op["symbol"], [])
            pending[:] = [o for o in pending if o.signal.get("client_order_id") != op["client_order_id"]]
            if not pending:
                book.pending.pop(op["symbol"], None)
        elif op["op"] == "stop" and op["symbol"] in book.positions:
            book.set_stop(op["symbol"], op["price"])

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Every save inside goes into one transaction, committed when the block ends (also when
        it raises); each save stays atomic (a savepoint). For a replay's cycle: see
        :meth:`~hybrid_core.live.runner.RunSession.cycle_writes`."""
        if self._batched or self._conn is None:
            yield
            return
        self._conn.execute("BEGIN IMMEDIATE")
        self._batched, self._unsaved = True, {}
        try:
            yield
        finally:
            unsaved, self._unsaved = self._unsaved, None
            try:
                self._write_account(list(unsaved.values()), None)
            finally:
                self._batched = False
                self._conn.execute("COMMIT")

    def _save(self, orders: list[OrderStatus] | None = None, op: dict[str, Any] | None = None) -> None:
        """Write ``orders`` with a snapshot of the book (``op`` None) or with the journal entry of
        ``op`` (a change :meth:`_apply` made), in one transaction. In a :meth:`batch`, the orders
        are kept until it ends, when the book's snapshot is written with them (the journal then
        has nothing to add)."""
        if self._unsaved is None:
            self._write_account(orders or [], op)
        for order in orders or []:  # as the file now has them: a replaced row moves to the end
            kept = replaced(order)  # the account's own (never changed, copied when handed out)
            if self._unsaved is not None:
                self._unsaved.pop(order.client_order_id, None)
                self._unsaved[order.client_order_id] = kept
            self._taken_ids.add(order.client_order_id)
            self._open.pop(order.client_order_id, None)
            if order.status in OPEN:
                self._open[order.client_order_id] = kept

    def _write_account(self, orders: list[OrderStatus], op: dict[str, Any] | None) -> None:
        assert self._conn is not None
        with savepoint(self._conn) if self._batched else self._transaction():
            if op is None:
                synced = self._synced_through.strftime("%Y-%m-%d") if self._synced_through is not None else None
                self._conn.execute("INSERT OR REPLACE INTO account (id, book, synced_through) VALUES (1, ?, ?)",
                                   (self.book.state_json(), synced))
                self._conn.execute("DELETE FROM journal")
            else:
                self._conn.execute("INSERT INTO journal (op) VALUES (?)", (json.dumps(op),))
            self._conn.executemany("INSERT OR REPLACE INTO orders (client_order_id, body) VALUES (?, ?)",
                                   [(o.client_order_id, json.dumps(attrs.asdict(o, recurse=False))) for o in orders])

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        assert self._conn is not None
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def _orders(self, where: str = "", args: tuple[Any, ...] = ()) -> list[OrderStatus]:
        assert self._conn is not None
        rows = self._conn.execute(f"SELECT body FROM orders {where} ORDER BY rowid", args).fetchall()
        return [OrderStatus(**json.loads(r[0])) for r in rows]

    # -------------------------------------------------------------- queries
    def health_check(self) -> HealthReport:
        try:
            assert self._conn is not None
            self._conn.execute("SELECT COUNT(*) FROM orders").fetchone()
        except Exception as exc:
            return HealthReport(False, f"paper account file unreadable: {exc}")
        return HealthReport(True, "paper simulator ready", {"cash": self.book.cash})

    def account(self) -> AccountSnapshot:
        value = self.book.value()
        return AccountSnapshot(cash=self.book.cash, equity=value, buying_power=self.book.cash)

    def positions(self) -> list[BrokerPosition]:
        return [BrokerPosition(p.symbol, p.qty, p.entry_price) for p in self.book.positions.values()]

    def open_orders(self) -> list[OrderStatus]:
        return [replaced(o) for o in self._open.values()]

    def get_order(self, client_order_id: str) -> OrderStatus | None:
        if client_order_id in self._open:  # the cycle asks after every open stop, every session
            return replaced(self._open[client_order_id])
        if client_order_id not in self._taken_ids:
            return None
        if self._unsaved and client_order_id in self._unsaved:
            return replaced(self._unsaved[client_order_id])
        found = self._orders("WHERE client_order_id = ?", (client_order_id,))
        return found[0] if found else None

    # --------------------------------------------------------------- orders
    def submit(self, order: OrderRequest) -> OrderStatus:
        existing = self.get_order(order.client_order_id)
        if existing is not None:  # idempotent: the same id never creates a second order
            return existing
        if order.qty <= 0:
            raise OrderRejected(f"paper broker: order {order.client_order_id} has quantity {order.qty}")
        status = OrderStatus(client_order_id=order.client_order_id,
                             broker_order_id=f"paper-{order.client_order_id}", symbol=order.symbol,
                             side=order.side, qty=order.qty, status="accepted",
                             order_type=order.order_type, stop_price=order.stop_price)
        if order.order_type == "market":
            if order.side == "sell" and order.symbol not in self.book.positions:
                raise OrderRejected(f"paper broker: no position in {order.symbol} to sell")
            intent = OrderIntent(symbol=order.symbol, side=order.side, qty=order.qty, strategy=order.strategy,
                                 reason=order.reason, decision_date=pd.Timestamp(order.decision_date or "1970-01-01"),
                                 ref_price=order.ref_price, signal={"client_order_id": order.client_order_id})
            self.book.submit(intent)
            op: dict[str, Any] = {"op": "submit", "intent": intent_state(intent)}
        elif order.order_type in {"stop", "stop_limit"}:
            if order.side != "sell" or order.symbol not in self.book.positions or order.stop_price is None:
                raise OrderRejected(f"paper broker: a stop must be a sell on a held position with a "
                                    f"stop price ({order.symbol})")
            op = {"op": "stop", "symbol": order.symbol, "price": float(order.stop_price)}
            self._apply(op)
        else:  # pragma: no cover - OrderRequest's type is a closed set
            raise OrderRejected(f"paper broker: unsupported order type {order.order_type}")
        self._save([status], op)
        return status

    def cancel(self, client_order_id: str) -> OrderStatus | None:
        """Cancel an open order at once; returns the order as it then is (None for an unknown id)."""
        status = self.get_order(client_order_id)
        if status is None or status.status not in OPEN:
            return status
        if status.order_type == "market":
            op: dict[str, Any] = {"op": "cancel", "symbol": status.symbol, "client_order_id": client_order_id}
        else:
            op = {"op": "stop", "symbol": status.symbol, "price": None}
        self._apply(op)
        status.status = "canceled"
        self._save([status], op)
        return status

    # ----------------------------------------------------------------- bars
    def sync(self, panel: Panel, now: pd.Timestamp) -> list[OrderStatus]:
        """Replay every bar after the last synced date up to ``now``: fills and triggered stops."""
        dates = panel.dates
        dates = dates[dates <= now]
        if self._synced_through is not None:
            dates = dates[dates > self._synced_through]
        elif len(dates):
            # a new account starts at the latest bar: nothing to fill before its first order
            self._synced_through = dates[-1]
            self._save()
            return []
        filled: list[OrderStatus] = []
        open_orders = {o.client_order_id: o for o in self.open_orders()}
        stops = {(o.symbol): o for o in open_orders.values() if o.order_type != "market"}
        if len(dates):  # the bars to go through only (a cycle's panel holds its whole lookback)
            panel = panel.select(start=dates[0], end=dates[-1])
        if self._column_map is None or self._column_map[0] is not panel.close.columns:  # a replay's never change
            self._column_map = (panel.close.columns, {str(s): j for j, s in enumerate(panel.close.columns)})
        columns = self._column_map[1]
        rows = panel.close.index
        opens, lows, closes = (frame.to_numpy(dtype="float64") for frame in (panel.open, panel.low, panel.close))
        for date in dates:
            i = rows.get_loc(date)
            pending_ids = {intent.symbol + intent.side: intent.signal.get("client_order_id")
                           for orders in self.book.pending.values() for intent in orders}
            fills = self.book.on_open(date, RowPrices(opens[i], columns), RowPrices(lows[i], columns))
            for fill in fills:
                cid = pending_ids.get(fill.symbol + fill.side) if fill.reason != "stop_loss" else None
                order = open_orders.get(cid) if cid else stops.get(fill.symbol)
                if order is None:
                    continue
                order.status = "filled"
                order.filled_qty = fill.qty
                order.filled_avg_price = fill.price
                order.filled_at = date.strftime("%Y-%m-%d")
                order.commission = fill.commission
                filled.append(order)
                if fill.side == "sell":  # a sold position's stop goes with it
                    stop = stops.pop(fill.symbol, None)
                    if stop is not None and stop is not order:
                        stop.status = "canceled"
                        filled.append(stop)
            self.book.mark(date, RowPrices(closes[i], columns))
            self._synced_through = date
        for sym in [s for s in self.book.last_close if s not in self.book.positions]:
            del self.book.last_close[sym]  # marks of sold symbols: never read again, saved every time
            self.book.last_bar_date.pop(sym, None)
        self.book.ledger.closed.clear()  # round trips live in the run's state database, not in the account
        self._save(filled)
        return [o for o in filled if o.status == "filled"]


@hookimpl
def hybrid_register_brokers(register):  # type: ignore[no-untyped-def]
    """Register the paper simulator broker."""
    register(PaperBroker)
