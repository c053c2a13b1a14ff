"""The order-events audit log: an append-only CSV with one row per order event.

It is not a round-trip table: a round trip (entry to exit) is built from its ``filled`` rows by
:mod:`hybrid_core.account.ledger`; backtests and replays write theirs as ``round_trips.csv``.

Durability rules, so that a process killed at any moment leaves a file that parses:

- each row is encoded first, then written with a single ``write()`` on an ``O_APPEND``
  descriptor, then flushed and fsynced before :meth:`TradeAuditLog.append` returns (a replay's
  log, ``durable=False``, skips the fsync: a killed replay still leaves whole rows, a power
  loss may lose the last ones, and the replay can be run again);
- on open, a torn last line (a write cut short by a kill or a crash, recognisable by its
  missing newline) is truncated away and logged;
- a row whose ``(client_order_id, status)`` is already in the file is not written again, so a
  run that restarts and replays the events of an interrupted cycle never duplicates a row;
- a full disk (``ENOSPC``) truncates back any partial write and raises one clear line;
- a file whose header is neither :data:`TRADE_LOG_COLUMNS` nor :data:`LEGACY_COLUMNS` is
  refused (never appended to);
- a replay's session appends inside :meth:`TradeAuditLog.batch`: its rows are checked and
  encoded as they come, and written in one ``write()`` when the batch ends, before the session's
  state is committed (a replay killed before that commit redoes the session, rows included;
  rows already written are not written twice).

Only one process should write a given file (the run's :class:`~hybrid_core.ops.lock.InstanceLock`
sees to that).
"""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import math
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from loguru import logger

from ..errors import HybridError

if TYPE_CHECKING:  # pandas is imported lazily: writers stay light (fast restarts)
    import pandas as pd

TRADE_LOG_COLUMNS = ["timestamp", "symbol", "side", "qty", "price", "order_id", "status",
                     "client_order_id", "strategy", "reason", "signal", "commission"]
"""Columns of the order-events audit log, in file order."""
LEGACY_COLUMNS = TRADE_LOG_COLUMNS[:-1]
"""Columns of logs written before ``commission`` was added; such a log is still appended to in its
own format (its rows then carry no commission)."""
DEFAULT_FILE = "order_events.csv"
TRADE_STATUSES = frozenset({"submitted", "accepted", "partially_filled", "filled", "canceled", "rejected", "expired",
                            "unknown", "refused", "dry_run"})
"""An order's states (hybrid_core.live.lifecycle, ``intended`` aside: nothing has happened yet),
plus decisions that never became orders: ``refused`` by a risk rule, ``dry_run``."""
TRADE_SIDES = frozenset({"buy", "sell"})
REQUIRED_COLUMNS = ("symbol", "side", "qty", "status")
_COLUMN_SET = frozenset(TRADE_LOG_COLUMNS)
_PLAIN = (str, int, bool, type(None))
HEADER_LINE = ",".join(TRADE_LOG_COLUMNS) + "\n"


class TradeLogError(HybridError):
    """The trade log cannot be written or read (wrong header, full disk, bad row)."""


def _iso_utc(value: Any) -> str:
    if value is None or value == "":
        return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, str):
        return value
    import pandas as pd

    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _number(value: Any) -> str:
    if value is None or value == "":
        return ""
    number = float(value)
    return "" if math.isnan(number) else repr(number)


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return _json_safe(value.item())
    return value


def _signal(value: Any) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        return value
    if type(value) is dict and all(type(k) is str and (type(v) in _PLAIN or (type(v) is float and math.isfinite(v)))
                                   for k, v in value.items()):
        return _SIGNAL_JSON.encode(value)  # nothing to make safe (most rows)
    return _SIGNAL_JSON.encode(_json_safe(value))


_SIGNAL_JSON = json.JSONEncoder(separators=(",", ":"), sort_keys=True, default=str)
"""``json.dumps(..., separators=(",", ":"), sort_keys=True, default=str)``, made once."""
_FORMATTERS: dict[str, Callable[[Any], str]] = {"timestamp": _iso_utc, "qty": _number, "price": _number,
                                                "signal": _signal, "commission": _number}
"""How a column's value is written (any other: ``str``, None as empty)."""
_LINES = threading.local()


def _csv_line(cells: list[str]) -> str:
    """``cells`` as one CSV line, through a writer kept per thread (making one costs as much as a row)."""
    kept = getattr(_LINES, "writer", None)
    if kept is None:
        buffer = io.StringIO()
        kept = _LINES.writer = (buffer, csv.writer(buffer, lineterminator="\n"))
    buffer, writer = kept
    buffer.seek(0)
    buffer.truncate()
    writer.writerow(cells)
    return buffer.getvalue()


def format_row(row: Mapping[str, Any], columns: list[str] = TRADE_LOG_COLUMNS) -> str:
    """One CSV line (with its newline) for ``row``; raises :class:`TradeLogError` on a bad row."""
    if not _COLUMN_SET.issuperset(row):
        raise TradeLogError(f"trade log row has unknown column(s) {sorted(row.keys() - _COLUMN_SET)}; "
                            f"allowed: {', '.join(TRADE_LOG_COLUMNS)}")
    missing = [c for c in REQUIRED_COLUMNS if row.get(c) in (None, "")]
    if missing:
        raise TradeLogError(f"trade log row is missing {missing}: {dict(row)}")
    if row["status"] not in TRADE_STATUSES:
        raise TradeLogError(f"trade log status {row['status']!r} is not one of "
                            f"{', '.join(sorted(TRADE_STATUSES))}")
    if row["side"] not in TRADE_SIDES:
        raise TradeLogError(f"trade log side {row['side']!r} is not 'buy' or 'sell'")
    cells = []
    for column in columns:
        value = row.get(column)
        formatter = _FORMATTERS.get(column)
        cells.append(formatter(value) if formatter is not None else "" if value is None else str(value))
    line = _csv_line(cells)
    if line.count("\n") != 1:
        raise TradeLogError(f"trade log row contains a line break: {dict(row)}")
    return line


def _dedupe_key(client_order_id: str, status: str) -> tuple[str, str] | None:
    return (client_order_id, status) if client_order_id else None


class TradeAuditLog:
    """Append-only order-events audit log CSV (default ``order_events.csv``); see the module docstring."""

    def __init__(self, path: str | os.PathLike[str], *, durable: bool = True) -> None:
        self.path = Path(path)
        self.durable = durable
        self._handle: BinaryIO | None = None
        self._seen: set[tuple[str, str]] = set()
        self._held: list[str] | None = None
        """Inside a :meth:`batch`: the lines appended, not written yet."""
        self.columns = TRADE_LOG_COLUMNS
        self._open_and_repair()

    def _open_and_repair(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists() or self.path.stat().st_size == 0:
            self._write(HEADER_LINE.encode(), what="header")
            self._fsync_dir()
            return
        data = self.path.read_bytes()
        if not data.endswith(b"\n"):
            keep = data.rfind(b"\n") + 1
            torn = data[keep:]
            with open(self.path, "r+b") as fh:
                fh.truncate(keep)
                os.fsync(fh.fileno())
            logger.warning("Trade log {} had a torn last line ({} bytes, from an interrupted write); "
                           "removed it", self.path, len(torn), torn=torn.decode("utf-8", "replace"))
            data = data[:keep]
            if keep == 0:
                self._write(HEADER_LINE.encode(), what="header")
                return
        header = data[: data.find(b"\n") + 1].decode("utf-8", "replace")
        if header.strip().lstrip("\ufeff") == ",".join(LEGACY_COLUMNS):
            self.columns = LEGACY_COLUMNS
        elif header.strip().lstrip("\ufeff") != HEADER_LINE.strip():
            raise TradeLogError(
                f"trade log {self.path} has header {header.strip()!r}, expected {HEADER_LINE.strip()!r}; "
                f"move that file aside (or set outputs.trade_log to a new file) and restart")
        for cells in csv.reader(io.StringIO(data[len(header):].decode("utf-8", "replace"))):
            if len(cells) == len(self.columns):
                key = _dedupe_key(cells[7], cells[6])
                if key is not None:
                    self._seen.add(key)

    def _fsync_dir(self) -> None:
        try:
            fd = os.open(self.path.parent, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)

    def _write(self, data: bytes, *, what: str) -> None:
        """One write() of ``data`` at the end of the file, then fsync; all or nothing. A durable log
        opens the file for every write (a rotated file is followed); a replay's keeps it open."""
        if self.durable or self._handle is None:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            if not self.durable:
                self._handle = os.fdopen(fd, "ab", buffering=0)  # closed with the log (or at exit)
        else:
            fd = self._handle.fileno()
        try:
            size = os.fstat(fd).st_size
            try:
                written = os.write(fd, data)
                if written != len(data):
                    raise OSError(errno.ENOSPC, f"short write ({written} of {len(data)} bytes)")
                if self.durable:
                    os.fsync(fd)
            except OSError as exc:
                try:
                    os.ftruncate(fd, size)  # never leave part of a row behind
                except OSError:
                    pass
                if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                    raise TradeLogError(
                        f"disk full writing the trade log {self.path}: the {what} was not written; "
                        f"free space on that filesystem (or point outputs.trade_log elsewhere) "
                        f"and restart") from exc
                raise TradeLogError(f"cannot write the trade log {self.path}: {exc.strerror or exc}; "
                                    f"check the path and its permissions") from exc
        finally:
            if self._handle is None:
                os.close(fd)

    def append(self, row: Mapping[str, Any]) -> bool:
        """Append one order event; returns False when that (client_order_id, status) is already logged."""
        return self.append_many([row]) == 1

    def append_many(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Append several events in one write (all or none); returns how many rows were written."""
        lines: list[str] = []
        keys: set[tuple[str, str]] = set()
        for row in rows:
            line = format_row(row, self.columns)
            key = _dedupe_key(str(row.get("client_order_id") or ""), str(row["status"]))
            if key is not None and (key in self._seen or key in keys):
                continue  # already logged (a restarted run replaying its events)
            if key is not None:
                keys.add(key)
            lines.append(line)
        if not lines:
            return 0
        if self._held is not None:
            self._held.extend(lines)
        else:
            self._write("".join(lines).encode("utf-8"), what=f"{len(lines)} row(s)")
        self._seen |= keys
        return len(lines)

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Rows appended inside are written together, in one ``write()``, when the block ends (also
        when it raises). For a run that can be done again, whose state is committed after the
        block (a replay's session: :meth:`~hybrid_core.live.runner.RunSession.cycle_writes`)."""
        if self._held is not None:
            yield
            return
        self._held = []
        try:
            yield
        finally:
            lines, self._held = self._held, None
            if lines:
                self._write("".join(lines).encode("utf-8"), what=f"{len(lines)} row(s)")


STRING_COLUMNS = ["symbol", "side", "order_id", "status", "client_order_id", "strategy", "reason", "signal"]


def read_trade_log(path: str | os.PathLike[str]) -> pd.DataFrame:
    """The trade log as a frame with typed columns (timestamp UTC, qty and price float64).

    A torn last line is ignored (the file is not modified). Raises :class:`TradeLogError`
    naming the file when it is missing or has the wrong header.
    """
    import pandas as pd

    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TradeLogError(f"trade log {file} not found; run `hybrid run` first or pass the right "
                            f"--file") from None
    except OSError as exc:
        raise TradeLogError(f"cannot read trade log {file}: {exc.strerror or exc}") from exc
    text = text[: text.rfind("\n") + 1]
    if not text:
        frame = pd.DataFrame({c: pd.Series(dtype="object") for c in TRADE_LOG_COLUMNS})
        return _typed(frame)
    header = text[: text.find("\n")].lstrip("\ufeff")
    if header not in (HEADER_LINE.strip(), ",".join(LEGACY_COLUMNS)):
        raise TradeLogError(f"trade log {file} has header {header!r}, expected {HEADER_LINE.strip()!r}")
    frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    return _typed(frame)


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    import pandas as pd

    out = pd.DataFrame(index=pd.RangeIndex(len(frame)))
    out["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True, format="ISO8601")
    if "commission" not in frame:
        frame = frame.assign(commission="")
    for col in TRADE_LOG_COLUMNS[1:]:
        if col in ("qty", "price", "commission"):
            out[col] = pd.to_numeric(frame[col].replace("", None), errors="coerce").astype("float64")
        else:
            out[col] = frame[col].astype(str)
    return out
