"""The SQLite state database of a live or paper run.

It holds what the run must not forget between cycles and across crashes:

- ``positions``: open positions with entry date and price (for stops and time stops), the
  date their time-stop count was last restarted, and the client id of their stop order;
- ``orders``: every order by its deterministic ``client_order_id``, written *before* the
  order is sent (state ``intended``), then moved through the order state machine
  (:mod:`hybrid_core.live.lifecycle`) by the broker's answers, so a run killed between the two
  can ask the broker instead of sending a second order;
- ``cycles``: one row per cycle (as-of date, start, end, outcome);
- ``meta``: small values (peak portfolio value, value at the start of the day, the window of
  a replay...);
- ``marks``: per cycle, the close each held position was marked at (market data, not the
  last fill), so a report over the run values open positions as the cycle did.

Every write is its own transaction (WAL journal, ``synchronous=FULL``). A run that is not
durable (a replay) may group a whole cycle's writes into one with :meth:`StateStore.batch`.
The store is the file's only writer (one run per state database, see ops/lock.py): it reads the
open positions and the unfinished orders once and keeps them with every write, and hands out
copies (:func:`replaced`), so a cycle that asks after them many times reads no file.
"""

from __future__ import annotations

import functools
import json
import math
import operator
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import attrs
import pandas as pd

from ..errors import HybridError

SCHEMA = """
CREATE TABLE IF NOT EXISTS positions (
    symbol TEXT PRIMARY KEY,
    qty REAL NOT NULL,
    entry_price REAL NOT NULL,
    entry_date TEXT NOT NULL,
    strategy TEXT NOT NULL,
    restart_date TEXT,
    stop_client_order_id TEXT,
    stop_price REAL,
    opened_by TEXT
);
CREATE TABLE IF NOT EXISTS orders (
    client_order_id TEXT PRIMARY KEY,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    qty REAL NOT NULL,
    order_type TEXT NOT NULL DEFAULT 'market',
    stop_price REAL,
    strategy TEXT,
    reason TEXT,
    decision_date TEXT,
    ref_price REAL,
    signal TEXT,
    status TEXT NOT NULL,
    broker_order_id TEXT,
    filled_qty REAL DEFAULT 0,
    filled_avg_price REAL,
    filled_at TEXT,
    commission REAL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS orders_status ON orders(status);
CREATE TABLE IF NOT EXISTS cycles (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    as_of TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT NOT NULL,
    error TEXT,
    signals_count INTEGER DEFAULT 0,
    orders_count INTEGER DEFAULT 0
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS marks (
    as_of TEXT NOT NULL,
    symbol TEXT NOT NULL,
    close REAL NOT NULL,
    bar_date TEXT NOT NULL,
    PRIMARY KEY (as_of, symbol)
);
"""
MIGRATIONS = {("orders", "commission"): "ALTER TABLE orders ADD COLUMN commission REAL DEFAULT 0"}
"""Columns added since the first release, added to an older database when it is opened."""

OPEN_STATUSES = ("intended", "submitted", "accepted", "partially_filled", "unknown")
"""Order states that mean "not finished yet" (:mod:`hybrid_core.live.lifecycle`)."""
LEGACY_STATUSES = {"submitting": "intended", "pending": "accepted", "new": "accepted", "held": "accepted"}
"""Order statuses of older state databases and the state each now reads as (renamed on open)."""


def utc_now() -> str:
    """Current UTC time as ISO 8601 with a Z (``YYYY-MM-DDTHH:MM:SS.ffffffZ``)."""
    seconds, micros = divmod(time.time_ns() // 1000, 1_000_000)
    return f"{_utc_second(seconds)}.{micros:06d}Z"  # every write is stamped: a datetime costs 3 us


@functools.lru_cache(maxsize=4)
def _utc_second(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")


@functools.lru_cache(maxsize=4096)
def iso_date(value: Any) -> str | None:
    """``YYYY-MM-DD`` of a date or time, None for none (remembered: a cycle writes the same few
    dates on every row)."""
    if value is None or value == "":
        return None
    return pd.Timestamp(value).strftime("%Y-%m-%d")


@functools.lru_cache(maxsize=4096)
def stored_day(value: str) -> pd.Timestamp:
    """The Timestamp of a date as the state database stores it (remembered: a cycle reads every
    position's entry date, every session)."""
    return pd.Timestamp(value)


def _real(value: Any) -> float | None:
    """A value as a REAL column reads it back: a float, or None for None and NaN (stored as NULL)."""
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


@attrs.define
class StoredPosition:
    """A position as the state database remembers it."""

    symbol: str
    qty: float
    entry_price: float
    entry_date: str
    strategy: str
    restart_date: str | None = None
    stop_client_order_id: str | None = None
    stop_price: float | None = None
    opened_by: str | None = None


@attrs.define
class StoredOrder:
    """An order as the state database remembers it."""

    client_order_id: str
    symbol: str
    side: str
    qty: float
    order_type: str
    status: str
    strategy: str | None = None
    reason: str | None = None
    decision_date: str | None = None
    ref_price: float | None = None
    signal: dict[str, Any] = attrs.field(factory=dict)
    stop_price: float | None = None
    broker_order_id: str | None = None
    filled_qty: float = 0.0
    filled_avg_price: float | None = None
    filled_at: str | None = None
    commission: float = 0.0

    @property
    def is_open(self) -> bool:
        """True while the order may still fill."""
        return LEGACY_STATUSES.get(self.status, self.status) in OPEN_STATUSES


class StateStore:
    """The run's SQLite state database (one file, created with its folder on first use)."""

    def __init__(self, path: str | Path, *, durable: bool = True) -> None:
        """``durable=False`` (replays) syncs to disk at WAL checkpoints only: safe against a
        killed process, not against power loss."""
        self.path = Path(path)
        self._batched = False
        self._open: dict[str, StoredOrder] | None = None
        self._held: dict[str, StoredPosition] | None = None
        self._ids: set[str] | None = None
        """Every client id in the file (read once, kept with every record): a new id is told
        apart without a query (a cycle checks each id it is about to use)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(str(self.path), timeout=30, isolation_level=None)
            self._conn.row_factory = sqlite3.Row
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            self._conn.executescript(SCHEMA)
            for (table, column), statement in MIGRATIONS.items():
                columns = {r[1] for r in self._conn.execute(f"PRAGMA table_info({table})")}
                if column not in columns:
                    self._conn.execute(statement)
            self._conn.executemany("UPDATE orders SET status = ? WHERE status = ?",
                                   [(new, old) for old, new in LEGACY_STATUSES.items()])
        except (sqlite3.Error, OSError) as exc:
            raise HybridError(f"cannot open state database {self.path}: {exc}; check the path "
                              f"(outputs.state_db) and that its folder is writable") from exc

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Every write inside goes into one transaction, committed when the block ends (also when
        it raises: what it wrote is kept, as write by write). Each write stays atomic (one statement,
        or a savepoint around several).
        For a run that can be done again (a replay's cycle): a process killed inside loses the
        block's writes, and the replay redoes that cycle."""
        if self._batched:
            yield
            return
        self._begin()
        self._batched = True
        try:
            yield
        finally:
            self._batched = False
            self._commit()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write (BEGIN IMMEDIATE ... COMMIT, rolled back on error; a savepoint in a
        :meth:`batch`). The positions and open orders are read again from the file afterwards
        (the caller may have written either)."""
        try:
            with self._transaction() as db:
                yield db
        finally:
            self._open = self._held = self._ids = None

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        if self._batched:
            with savepoint(self._conn):
                yield self._conn
            return
        self._begin()
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._commit()

    def _execute(self, sql: str, args: Any = ()) -> sqlite3.Cursor:
        """One statement, atomic by itself (SQLite undoes a failed statement alone): its own
        transaction, or part of the :meth:`batch` without a savepoint around it."""
        if self._batched:
            return self._conn.execute(sql, args)
        self._begin()
        try:
            cursor = self._conn.execute(sql, args)
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._commit()
        return cursor

    def _begin(self) -> None:
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise HybridError(f"state database {self.path} is busy or unwritable: {exc}") from exc

    def _commit(self) -> None:
        try:
            self._conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:  # e.g. disk full
            self._conn.execute("ROLLBACK")
            raise HybridError(f"cannot write state database {self.path}: {exc}; free disk "
                              f"space and restart (nothing was half-written)") from exc

    # ------------------------------------------------------------ positions
    def _positions(self) -> dict[str, StoredPosition]:
        """The open positions by symbol, in symbol order: read from the file once, then kept with
        every write of this store."""
        if self._held is None:
            rows = self._conn.execute("SELECT * FROM positions ORDER BY symbol").fetchall()
            self._held = {r["symbol"]: StoredPosition(**dict(r)) for r in rows}
        return self._held

    def positions(self, *, copy: bool = True) -> dict[str, StoredPosition]:
        """Open positions by symbol. ``copy=False``: the records the store keeps, for a caller that
        only reads them (never change one: the store would no longer read as its file)."""
        if not copy:
            return dict(self._positions())
        return {s: replaced(p) for s, p in self._positions().items()}

    def position(self, symbol: str) -> StoredPosition | None:
        """The open position in ``symbol``, or None."""
        held = self._positions().get(symbol)
        return replaced(held) if held is not None else None

    def open_position(self, pos: StoredPosition) -> None:
        """Record a newly opened position (replaces a row with the same symbol)."""
        row = StoredPosition(symbol=pos.symbol, qty=float(pos.qty), entry_price=float(pos.entry_price),
                             entry_date=iso_date(pos.entry_date) or "", strategy=pos.strategy,
                             restart_date=iso_date(pos.restart_date),
                             stop_client_order_id=pos.stop_client_order_id, stop_price=_real(pos.stop_price),
                             opened_by=pos.opened_by)
        held = self._positions()
        self._execute("INSERT OR REPLACE INTO positions (symbol, qty, entry_price, entry_date, strategy, "
                      "restart_date, stop_client_order_id, stop_price, opened_by) VALUES (?,?,?,?,?,?,?,?,?)",
                      (pos.symbol, pos.qty, pos.entry_price, iso_date(pos.entry_date), pos.strategy,
                       iso_date(pos.restart_date), pos.stop_client_order_id, pos.stop_price, pos.opened_by))
        new = row.symbol not in held
        held[row.symbol] = row
        if new:
            self._held = dict(sorted(held.items()))

    def close_position(self, symbol: str) -> None:
        """Forget a position (it was sold)."""
        held = self._positions()
        self._execute("DELETE FROM positions WHERE symbol = ?", (symbol,))
        held.pop(symbol, None)

    def restart_positions(self, symbols: list[str], date: Any) -> None:
        """Restart the time-stop count of ``symbols`` at the close of ``date``."""
        if not symbols:
            return
        held = self._positions()
        day = iso_date(date)
        with self._transaction() as db:
            db.executemany("UPDATE positions SET restart_date = ? WHERE symbol = ?", [(day, s) for s in symbols])
        for symbol in symbols:
            if symbol in held:
                held[symbol].restart_date = day

    def set_stop(self, symbol: str, client_order_id: str | None, price: float | None) -> None:
        """Remember (or clear) the stop order protecting a position (a position that already has
        it is not written again)."""
        held = self._positions()
        if symbol in held and (held[symbol].stop_client_order_id, held[symbol].stop_price) == \
                (client_order_id, _real(price)):
            return
        self._execute("UPDATE positions SET stop_client_order_id = ?, stop_price = ? WHERE symbol = ?",
                      (client_order_id, price, symbol))
        if symbol in held:
            held[symbol].stop_client_order_id = client_order_id
            held[symbol].stop_price = _real(price)

    # --------------------------------------------------------------- orders
    def _open_orders(self) -> dict[str, StoredOrder]:
        """The unfinished orders by client id, in creation order: read from the file once, then kept
        with every write of this store (the only writer: one run per state database, see ops/lock.py).
        A live cycle asks after them many times (every protective stop, every session)."""
        if self._open is None:
            marks = ",".join("?" for _ in OPEN_STATUSES)
            rows = self._conn.execute(f"SELECT * FROM orders WHERE status IN ({marks}) ORDER BY rowid",
                                      OPEN_STATUSES).fetchall()
            self._open = {r["client_order_id"]: _order(r) for r in rows}
        return self._open

    def _known_ids(self) -> set[str]:
        if self._ids is None:
            self._ids = {r[0] for r in self._conn.execute("SELECT client_order_id FROM orders")}
        return self._ids

    def get_order(self, client_order_id: str) -> StoredOrder | None:
        """The order with this client id, or None."""
        known = self._open_orders().get(client_order_id)
        if known is not None:
            return _copy(known)
        if client_order_id not in self._known_ids():
            return None
        row = self._conn.execute("SELECT * FROM orders WHERE client_order_id = ?",
                                 (client_order_id,)).fetchone()
        return _order(row) if row else None

    def orders(self, *, open_only: bool = False, symbol: str | None = None,
               status: str | None = None, copy: bool = True) -> list[StoredOrder]:
        """Orders in creation order: only unfinished ones with ``open_only``, only ``symbol``'s,
        only those in ``status``. ``copy=False``: the unfinished orders the store keeps, for a
        caller that only reads them (never change one: the store would no longer read as its file)."""
        if open_only or status in OPEN_STATUSES:
            found = [o for o in self._open_orders().values()
                     if (symbol is None or o.symbol == symbol) and (status is None or o.status == status)]
            return [_copy(o) for o in found] if copy else found
        where: list[str] = []
        args: list[str] = []
        if open_only:
            where.append(f"status IN ({','.join('?' for _ in OPEN_STATUSES)})")
            args.extend(OPEN_STATUSES)
        if status is not None:
            where.append("status = ?")
            args.append(status)
        if symbol is not None:
            where.append("symbol = ?")
            args.append(symbol)
        clause = f"WHERE {' AND '.join(where)} " if where else ""
        rows = self._conn.execute(f"SELECT * FROM orders {clause}ORDER BY rowid", args).fetchall()
        return [_order(r) for r in rows]

    def record_order(self, order: StoredOrder) -> bool:
        """Write an order before it is sent. Returns False if that client id is already known."""
        now = utc_now()
        signal = json.dumps(order.signal, default=_json_default)
        status = LEGACY_STATUSES.get(order.status, order.status)
        added = self._execute(
            "INSERT OR IGNORE INTO orders (client_order_id, symbol, side, qty, order_type, stop_price, "
            "strategy, reason, decision_date, ref_price, signal, status, broker_order_id, filled_qty, "
            "filled_avg_price, filled_at, created_at, updated_at) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (order.client_order_id, order.symbol, order.side, order.qty, order.order_type,
             order.stop_price, order.strategy, order.reason, iso_date(order.decision_date),
             _finite(order.ref_price), signal, status, order.broker_order_id, order.filled_qty,
             order.filled_avg_price, order.filled_at, now, now)).rowcount == 1
        if added and self._ids is not None:
            self._ids.add(order.client_order_id)
        if added and self._open is not None and status in OPEN_STATUSES:  # as the row reads back
            self._open[order.client_order_id] = StoredOrder(
                client_order_id=order.client_order_id, symbol=order.symbol, side=order.side, qty=float(order.qty),
                order_type=order.order_type, status=status, strategy=order.strategy, reason=order.reason,
                decision_date=iso_date(order.decision_date), ref_price=_real(order.ref_price),
                signal=json.loads(signal) if signal else {}, stop_price=_real(order.stop_price),
                broker_order_id=order.broker_order_id, filled_qty=_real(order.filled_qty) or 0.0,
                filled_avg_price=_real(order.filled_avg_price), filled_at=order.filled_at)
        return added

    def update_order(self, client_order_id: str, **fields: Any) -> None:
        """Update columns of one order (status, broker_order_id, filled_qty, ...)."""
        if not fields:
            return
        unknown = fields.keys() - _UPDATABLE_ORDER_COLUMNS
        if unknown:
            raise ValueError(f"cannot update order column(s) {sorted(unknown)}")
        if "status" in fields:
            fields["status"] = LEGACY_STATUSES.get(fields["status"], fields["status"])
        self._execute(_update_statement(tuple(fields)), (*fields.values(), utc_now(), client_order_id))
        cached = self._open
        known = cached.get(client_order_id) if cached is not None else None
        if cached is not None and known is not None:  # as the row now reads; a finished order leaves
            for key, value in fields.items():  # the kept record is never handed out: changed in place
                if key in _REAL_ORDER_COLUMNS:
                    value = _real(value)
                    if value is None and key in ("filled_qty", "commission"):
                        value = 0.0
                setattr(known, key, value)
            if known.status not in OPEN_STATUSES:
                del cached[client_order_id]

    # --------------------------------------------------------------- cycles
    def start_cycle(self, as_of: Any) -> int:
        """Open a cycle record; returns its number."""
        cur = self._execute("INSERT INTO cycles (as_of, started_at, status) VALUES (?,?,?)",
                            (iso_date(as_of), utc_now(), "running"))
        return int(cur.lastrowid or 0)

    def finish_cycle(self, cycle_id: int, *, status: str, error: str | None = None,
                     signals_count: int = 0, orders_count: int = 0) -> None:
        """Close a cycle record with its outcome."""
        self._execute("UPDATE cycles SET finished_at = ?, status = ?, error = ?, signals_count = ?, "
                      "orders_count = ? WHERE id = ?",
                      (utc_now(), status, error, signals_count, orders_count, cycle_id))

    def last_completed_as_of(self) -> str | None:
        """As-of date of the last cycle that completed, or None."""
        row = self._conn.execute("SELECT as_of FROM cycles WHERE status = 'ok' ORDER BY id DESC LIMIT 1"
                                 ).fetchone()
        return row["as_of"] if row else None

    def failed_cycles_in_a_row(self) -> int:
        """Finished cycles that failed since the last one that completed (0 after a success)."""
        rows = self._conn.execute("SELECT status FROM cycles WHERE finished_at IS NOT NULL "
                                  "ORDER BY id DESC LIMIT 1000")  # read as far as the last success only
        count = 0
        for row in rows:
            if row["status"] == "ok":
                break
            count += 1
        return count

    def cycle_count(self) -> int:
        """How many cycles were started."""
        return int(self._conn.execute("SELECT COUNT(*) FROM cycles").fetchone()[0])

    # ---------------------------------------------------------------- marks
    def record_marks(self, as_of: Any, marks: Mapping[str, tuple[float, Any]],
                     meta: Mapping[str, Any] | None = None) -> None:
        """The closes the cycle at ``as_of`` marked its positions at: ``{symbol: (close, bar date)}``,
        with ``meta`` values of the same close (the guards' watermarks) in the same transaction."""
        day = iso_date(as_of)
        with self._transaction() as db:
            db.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                           [(k, json.dumps(v, default=_json_default)) for k, v in (meta or {}).items()])
            db.execute("DELETE FROM marks WHERE as_of = ?", (day,))
            db.executemany("INSERT INTO marks (as_of, symbol, close, bar_date) VALUES (?,?,?,?)",
                           [(day, s, float(c), iso_date(d)) for s, (c, d) in marks.items()])
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('marks_as_of', ?)", (json.dumps(day),))

    def latest_marks(self) -> tuple[str | None, dict[str, tuple[float, str]]]:
        """The last cycle's marks: its as-of date and ``{symbol: (close, bar date)}`` (None, {} if none)."""
        return read_latest_marks(self._conn)

    # ----------------------------------------------------------------- meta
    def get_meta(self, key: str, default: Any = None) -> Any:
        """A small stored value (JSON), or ``default``."""
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row["value"]) if row else default

    def set_meta(self, values: Mapping[str, Any]) -> None:
        """Store small values (JSON) in one transaction."""
        with self._transaction() as db:
            db.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                           [(k, json.dumps(v, default=_json_default)) for k, v in values.items()])


@contextmanager
def savepoint(conn: sqlite3.Connection) -> Iterator[None]:
    """One atomic step inside an open transaction: rolled back alone when the block raises."""
    conn.execute("SAVEPOINT step")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK TO step")
        conn.execute("RELEASE step")
        raise
    conn.execute("RELEASE step")


def read_latest_marks(conn: sqlite3.Connection) -> tuple[str | None, dict[str, tuple[float, str]]]:
    """The marks of the latest cycle (an empty dict when it held nothing), from an open connection."""
    row = conn.execute("SELECT value FROM meta WHERE key = 'marks_as_of'").fetchone()
    day = json.loads(row[0]) if row else None
    if day is None:
        return None, {}
    rows = conn.execute("SELECT symbol, close, bar_date FROM marks WHERE as_of = ?", (day,)).fetchall()
    return day, {str(r[0]): (float(r[1]), str(r[2])) for r in rows}


def _finite(value: float | None) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value)


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return str(value)


def _copy(order: StoredOrder) -> StoredOrder:
    """A copy a caller may change (its signal too) without changing the store's."""
    return replaced(order, signal=dict(order.signal))


_REAL_ORDER_COLUMNS = frozenset({"qty", "stop_price", "filled_qty", "filled_avg_price", "commission"})
_UPDATABLE_ORDER_COLUMNS = frozenset({"status", "broker_order_id", "filled_at", *_REAL_ORDER_COLUMNS})


@functools.lru_cache(maxsize=64)
def _update_statement(columns: tuple[str, ...]) -> str:
    return f"UPDATE orders SET {', '.join(f'{k} = ?' for k in columns)}, updated_at = ? WHERE client_order_id = ?"


Record = TypeVar("Record")


@functools.cache
def _fields_of(cls: type) -> Callable[[Any], tuple[Any, ...]]:
    fields = attrs.fields(cls)
    if any(not f.init or f.kw_only for f in fields) or len(fields) < 2:
        raise TypeError(f"replaced() needs an attrs class whose fields are all positional: {cls.__name__}")
    return operator.attrgetter(*(f.name for f in fields))  # type: ignore[return-value]


def replaced(record: Record, **changes: Any) -> Record:
    """A shallow copy of a mutable attrs record with ``changes`` set: :func:`attrs.evolve` without
    its walk over the fields on every call (a replay copies orders and positions ~50,000 times)."""
    cls: Any = type(record)
    copy = cls(*_fields_of(cls)(record))
    for name, value in changes.items():
        setattr(copy, name, value)
    return copy


def _order(row: sqlite3.Row) -> StoredOrder:
    data = dict(row)
    data.pop("created_at", None)
    data.pop("updated_at", None)
    data["signal"] = json.loads(data["signal"]) if data.get("signal") else {}
    data["filled_qty"] = data.get("filled_qty") or 0.0
    data["commission"] = data.get("commission") or 0.0
    return StoredOrder(**data)
