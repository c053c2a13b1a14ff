"""Trade report: realised PnL by FIFO lot matching, win rate, volume and open positions.

The single implementation of the trading numbers: ``hybrid report`` prints them and the
dashboard shows them. Input is the trade audit CSV (one row per order event); only ``filled``
rows move positions. A malformed row is listed in :attr:`Report.problems` with its line number
and skipped, so a damaged log still yields a report. (The strict
:func:`hybrid_core.ops.audit.read_trade_log` refuses a whole file instead, which suits the
writer, not a report.) A last line without its newline is a write in progress and is ignored.

Definitions:

- a *fill* is a row with status ``filled``; ``trades`` counts fills;
- a *round trip* is one closing fill (a sell against long lots, or a buy against short lots);
  its PnL is the sum over the FIFO lots it consumes, attributed to the strategy that opened them;
- ``win_rate`` = round trips with pnl > 0 / all round trips (0.0 when there are none);
- ``volume`` = sum of |qty * price| over fills;
- open positions are the FIFO lots left per symbol, marked at ``last_prices`` when given, else
  at the last price the log shows for the symbol (:func:`latest_prices`).
"""

from __future__ import annotations

import csv
import io
import math
import sqlite3
from collections import deque
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pandas as pd

from hybrid_core.errors import DataError
from hybrid_core.ops.audit import TRADE_LOG_COLUMNS, TRADE_SIDES, TRADE_STATUSES

REQUIRED_COLUMNS = ("timestamp", "symbol", "side", "qty", "price", "status")
OPTIONAL_COLUMNS = tuple(c for c in TRADE_LOG_COLUMNS if c not in REQUIRED_COLUMNS)
EVENT_COLUMNS = ("line", *REQUIRED_COLUMNS, *OPTIONAL_COLUMNS, "value")
_EPS = 1e-9


@attrs.frozen
class RowProblem:
    """A trade log row that was skipped, with the 1-based line number in the file."""

    line: int
    message: str


@attrs.frozen
class RoundTrip:
    """One closing fill matched FIFO against the lots it closes."""

    symbol: str
    strategy: str
    qty: float
    entry_price: float  # quantity-weighted over the matched lots
    exit_price: float
    entry_time: pd.Timestamp
    exit_time: pd.Timestamp
    pnl: float
    line: int


@attrs.frozen
class OpenPosition:
    """What is left of a symbol's lots (qty < 0 for a short), with its mark."""

    symbol: str
    qty: float
    entry_price: float  # average cost of the remaining lots
    entry_time: pd.Timestamp | None
    strategy: str
    last_price: float | None = None

    @property
    def cost(self) -> float:
        """Entry value of the position."""
        return self.qty * self.entry_price

    @property
    def market_value(self) -> float | None:
        """Value at the mark, or None without a mark."""
        return None if self.last_price is None else self.qty * self.last_price

    @property
    def unrealised_pnl(self) -> float | None:
        """(mark - entry) * qty, or None without a mark."""
        return None if self.last_price is None else (self.last_price - self.entry_price) * self.qty


@attrs.frozen
class Breakdown:
    """Realised numbers for one symbol or one strategy."""

    key: str
    realised_pnl: float
    round_trips: int
    wins: int
    fills: int
    volume: float

    @property
    def win_rate(self) -> float:
        """Share of round trips with pnl > 0 (0.0 when none closed)."""
        return self.wins / self.round_trips if self.round_trips else 0.0


@attrs.frozen
class Report:
    """Everything ``hybrid report`` prints and the dashboard shows."""

    realised_pnl: float
    win_rate: float
    trades: int
    round_trips: int
    wins: int
    symbols: tuple[str, ...]
    volume: float
    by_symbol: tuple[Breakdown, ...]
    by_strategy: tuple[Breakdown, ...]
    open_positions: tuple[OpenPosition, ...]
    closed: tuple[RoundTrip, ...]
    problems: tuple[RowProblem, ...]
    status_counts: Mapping[str, int]
    marks: Mapping[str, float]
    events: pd.DataFrame = attrs.field(eq=False, repr=False)

    @property
    def losses(self) -> int:
        """Round trips with pnl <= 0."""
        return self.round_trips - self.wins

    @property
    def unrealised_pnl(self) -> float | None:
        """Sum of the marked open positions' unrealised PnL (None when nothing is marked)."""
        values = [p.unrealised_pnl for p in self.open_positions if p.unrealised_pnl is not None]
        return sum(values) if values else None

    @property
    def is_empty(self) -> bool:
        """True when the log holds no valid order events at all."""
        return self.events.empty

    def cumulative_pnl(self) -> pd.DataFrame:
        """Realised PnL over time: one row per round trip, columns time, symbol, pnl, cumulative."""
        frame = pd.DataFrame(
            {
                "time": [t.exit_time for t in self.closed],
                "symbol": [t.symbol for t in self.closed],
                "pnl": [t.pnl for t in self.closed],
            }
        )
        frame["cumulative"] = frame["pnl"].cumsum() if len(frame) else pd.Series(dtype=float)
        return frame

    def recent_events(self, n: int = 50) -> pd.DataFrame:
        """The last ``n`` order events of the (append-only) log, newest first, with their value."""
        return self.events.sort_values("line", ascending=False).head(n)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every number (timestamps as ISO strings)."""
        return {
            "realised_pnl": self.realised_pnl,
            "unrealised_pnl": self.unrealised_pnl,
            "win_rate": self.win_rate,
            "trades": self.trades,
            "round_trips": self.round_trips,
            "wins": self.wins,
            "losses": self.losses,
            "symbols": list(self.symbols),
            "symbol_count": len(self.symbols),
            "volume": self.volume,
            "status_counts": dict(self.status_counts),
            "by_symbol": [_breakdown_dict(b) for b in self.by_symbol],
            "by_strategy": [_breakdown_dict(b) for b in self.by_strategy],
            "open_positions": [_position_dict(p) for p in self.open_positions],
            "cumulative_pnl": [
                {"time": _iso(row.time), "symbol": row.symbol, "pnl": row.pnl, "cumulative": row.cumulative}
                for row in self.cumulative_pnl().itertuples(index=False)
            ],
            "problems": [{"line": p.line, "message": p.message} for p in self.problems],
        }


def _iso(ts: pd.Timestamp | None) -> str | None:
    if ts is None or pd.isna(ts):
        return None
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ") if ts.tzinfo is not None else ts.isoformat()


def _breakdown_dict(b: Breakdown) -> dict[str, Any]:
    return {
        "key": b.key,
        "realised_pnl": b.realised_pnl,
        "round_trips": b.round_trips,
        "wins": b.wins,
        "win_rate": b.win_rate,
        "fills": b.fills,
        "volume": b.volume,
    }


def _position_dict(p: OpenPosition) -> dict[str, Any]:
    return {
        "symbol": p.symbol,
        "qty": p.qty,
        "entry_price": p.entry_price,
        "entry_time": _iso(p.entry_time),
        "strategy": p.strategy,
        "last_price": p.last_price,
        "market_value": p.market_value,
        "unrealised_pnl": p.unrealised_pnl,
    }


# ----------------------------------------------------------------------------- reading


def read_events(source: str | Path | pd.DataFrame) -> tuple[pd.DataFrame, list[RowProblem]]:
    """Parse a trade log (path or frame of raw rows) into typed events plus skipped-row problems.

    Raises :class:`DataError` when the file is missing or has no usable header; an empty file
    gives an empty frame. Line numbers count the header as line 1. Validation is vectorised
    (100k rows in well under a second).
    """
    if isinstance(source, pd.DataFrame):
        header = [str(c) for c in source.columns]
        raw = pd.DataFrame({str(c): source[c].map(_cell) for c in source.columns})
        raw["line"] = range(2, len(raw) + 2)
        problems: list[RowProblem] = []
    else:
        file_header, raw, problems = _read_csv(Path(source))
        if file_header is None:
            return _empty_events(), problems
        header = file_header
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        name = "(frame)" if isinstance(source, pd.DataFrame) else source
        raise DataError(f"trade log {name} lacks column(s) {', '.join(missing)}; expected a header "
                        f"starting timestamp,symbol,side,qty,price,order_id,status")
    if raw.empty:
        return _empty_events(), problems
    frame, row_problems = _validate(raw)
    return frame, sorted(problems + row_problems, key=lambda p: p.line)


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, pd.Timestamp):
        return _iso(value.tz_localize("UTC") if value.tzinfo is None else value) or ""
    return str(value)


def _read_csv(path: Path) -> tuple[list[str] | None, pd.DataFrame, list[RowProblem]]:
    """Header, raw string cells (plus ``line``), and the rows the CSV layer could not split."""
    if not path.exists():
        raise DataError(f"trade log not found: {path}; pass --file with the run's trade log")
    if path.is_dir():
        raise DataError(f"trade log {path} is a directory; pass the CSV file itself")
    text = path.read_text(encoding="utf-8", errors="replace").lstrip("\ufeff")
    text = text[: text.rfind("\n") + 1]  # drop a torn (still being written) last line
    reader = csv.reader(io.StringIO(text))
    header: list[str] | None = None
    cells: list[list[str]] = []
    lines: list[int] = []
    problems: list[RowProblem] = []
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:  # e.g. NUL byte or runaway quote
            problems.append(RowProblem(reader.line_num, f"unreadable CSV ({exc})"))
            continue
        if not "".join(fields).strip():
            continue
        if header is None:
            header = [f.strip() for f in fields]
            continue
        if len(fields) < len(REQUIRED_COLUMNS) or len(fields) > len(header):
            problems.append(RowProblem(reader.line_num,
                                       f"{len(fields)} fields where the header has {len(header)}"))
            continue
        cells.append(fields + [""] * (len(header) - len(fields)))
        lines.append(reader.line_num)
    raw = pd.DataFrame(cells, columns=header or [], dtype=object)
    raw["line"] = lines
    return header, raw, problems


def _validate(raw: pd.DataFrame) -> tuple[pd.DataFrame, list[RowProblem]]:
    """Typed events from raw string cells; each invalid row becomes one :class:`RowProblem`."""
    text = {c: raw[c].astype(str).str.strip() if c in raw else pd.Series("", index=raw.index)
            for c in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)}
    side, status = text["side"].str.lower(), text["status"].str.lower()
    stamps = pd.to_datetime(text["timestamp"], format="ISO8601", utc=True, errors="coerce")
    numbers = {n: pd.to_numeric(text[n], errors="coerce").astype("float64") for n in ("qty", "price")}
    filled = status == "filled"
    checks: list[tuple[pd.Series, Any]] = [  # first failing check names the problem
        (text["symbol"] == "", lambda i: "empty symbol"),
        (~side.isin(TRADE_SIDES), lambda i: f"unknown side {text['side'][i]!r} (expected buy or sell)"),
        (~status.isin(TRADE_STATUSES), lambda i: f"unknown status {text['status'][i]!r}"),
        (stamps.isna(), lambda i: f"bad timestamp {text['timestamp'][i]!r}"),
    ]
    for name, values in numbers.items():
        blank_ok = (text[name] == "") & ~filled  # e.g. a refused order without a reference price
        invalid = ~blank_ok & (values.isna() | ~np.isfinite(values) | (values < 0))
        checks.append((invalid, lambda i, n=name: f"bad {n} {text[n][i]!r} (must be a finite number >= 0)"))
    checks.append((filled & ((numbers["qty"] <= 0) | (numbers["price"] <= 0)),
                   lambda i: "filled row with zero qty or price"))
    bad = pd.Series(False, index=raw.index)
    problems = []
    for failing, message in checks:
        new = failing & ~bad
        problems += [RowProblem(int(raw["line"][i]), message(i)) for i in raw.index[new]]
        bad |= new
    frame = pd.DataFrame({"line": raw["line"].astype("int64"), "timestamp": stamps,
                          "symbol": text["symbol"], "side": side, "qty": numbers["qty"],
                          "price": numbers["price"], "status": status,
                          **{c: text[c] for c in OPTIONAL_COLUMNS}})
    frame["value"] = frame["qty"] * frame["price"]
    frame = frame.loc[~bad, list(EVENT_COLUMNS)].reset_index(drop=True)
    return (frame if len(frame) else _empty_events()), problems


def _empty_events() -> pd.DataFrame:
    numeric = {"line": "int64", "qty": "float64", "price": "float64", "value": "float64"}
    frame = pd.DataFrame({c: pd.Series(dtype=numeric.get(c, object)) for c in EVENT_COLUMNS})
    frame["timestamp"] = pd.Series(dtype="datetime64[ns, UTC]")
    return frame


# ----------------------------------------------------------------------------- FIFO


@attrs.define
class _Lot:
    qty: float  # signed: > 0 long, < 0 short
    price: float
    time: pd.Timestamp
    strategy: str


def _fill_rows(events: pd.DataFrame, problems: list[RowProblem]) -> pd.DataFrame:
    """Filled events in time order; a repeated fill of one client order id is skipped."""
    fills = events[events["status"] == "filled"].sort_values(["timestamp", "line"], kind="stable")
    keep: list[bool] = []
    seen: dict[str, int] = {}
    for line, coid in zip(fills["line"], fills["client_order_id"], strict=True):
        if coid and coid in seen:
            problems.append(RowProblem(int(line), f"repeated fill of client_order_id {coid} "
                                                  f"(first on line {seen[coid]}); ignored"))
            keep.append(False)
            continue
        if coid:
            seen[coid] = int(line)
        keep.append(True)
    return fills[pd.Series(keep, index=fills.index, dtype=bool)]


@attrs.frozen
class _FillRow:
    symbol: str
    side: str
    qty: float
    price: float
    timestamp: pd.Timestamp
    strategy: str
    line: int


def match_fifo(fills: pd.DataFrame) -> tuple[list[RoundTrip], dict[str, deque[_Lot]]]:
    """Match time-ordered fills FIFO per symbol; return the round trips and the lots left."""
    books: dict[str, deque[_Lot]] = {}
    trips: list[RoundTrip] = []
    columns = ["symbol", "side", "qty", "price", "timestamp", "strategy", "line"]
    records = zip(*(fills[c].tolist() for c in columns), strict=True)  # lists: fast on arrow strings
    for values in records:
        row = _FillRow(*values)
        lots = books.setdefault(row.symbol, deque())
        signed = row.qty if row.side == "buy" else -row.qty
        remaining = signed
        matched_qty = matched_cost = pnl = 0.0
        strategies: list[str] = []
        entry_time = None
        # close opposite-direction lots first
        while lots and abs(remaining) > _EPS and (lots[0].qty > 0) != (remaining > 0):
            lot = lots[0]
            take = min(abs(remaining), abs(lot.qty))
            direction = 1.0 if lot.qty > 0 else -1.0
            pnl += direction * take * (row.price - lot.price)
            matched_qty += take
            matched_cost += take * lot.price
            entry_time = lot.time if entry_time is None else entry_time
            if lot.strategy and lot.strategy not in strategies:
                strategies.append(lot.strategy)
            lot.qty -= direction * take
            remaining += direction * take
            if abs(lot.qty) <= _EPS * max(1.0, take):
                lots.popleft()
        if matched_qty > 0:
            trips.append(
                RoundTrip(
                    symbol=row.symbol,
                    strategy="+".join(strategies) or row.strategy,
                    qty=matched_qty,
                    entry_price=matched_cost / matched_qty,
                    exit_price=row.price,
                    entry_time=entry_time,
                    exit_time=row.timestamp,
                    pnl=pnl,
                    line=int(row.line),
                )
            )
        if abs(remaining) > _EPS * max(1.0, abs(signed)):
            lots.append(_Lot(remaining, row.price, row.timestamp, row.strategy))
    return trips, books


def _open_positions(
    books: Mapping[str, deque[_Lot]], marks: Mapping[str, float]
) -> list[OpenPosition]:
    out = []
    for symbol in sorted(books):
        lots = books[symbol]
        qty = sum(lot.qty for lot in lots)
        if not lots or abs(qty) <= _EPS:
            continue
        out.append(
            OpenPosition(
                symbol=symbol,
                qty=qty,
                entry_price=sum(lot.qty * lot.price for lot in lots) / qty,
                entry_time=lots[0].time,
                strategy="+".join(dict.fromkeys(lot.strategy for lot in lots if lot.strategy)),
                last_price=marks.get(symbol),
            )
        )
    return out


def latest_prices(events: pd.DataFrame) -> dict[str, float]:
    """The last market price the log shows per symbol, in file (append) order.

    Any row with a positive price counts (non-filled rows carry the reference close) except
    an unfilled stop order, whose price is its trigger, not the market. File order, not
    timestamps: a replay stamps fills with simulated time and other events with wall time.
    """
    price = events["price"].astype(float)
    stop_order = (events["reason"] == "stop_loss") & (events["status"] != "filled")
    priced = events[(price > 0) & ~stop_order].sort_values("line", kind="stable")
    return {str(k): float(v) for k, v in priced.groupby("symbol")["price"].last().items()}


def _breakdowns(trips: list[RoundTrip], fills: pd.DataFrame, key: str) -> list[Breakdown]:
    """Per-``key`` ("symbol" or "strategy") totals: round trips grouped by their key, fills by theirs."""
    closed = pd.DataFrame({"key": [getattr(t, key) for t in trips], "pnl": [t.pnl for t in trips]})
    closed["win"] = closed["pnl"] > 0
    by_trip = closed.groupby("key").agg(pnl=("pnl", "sum"), trips=("pnl", "size"), wins=("win", "sum"))
    by_fill = fills.assign(volume=fills["value"].abs()).groupby(key).agg(
        fills=("line", "size"), volume=("volume", "sum"))
    out = []
    for name in sorted(set(by_trip.index) | set(by_fill.index)):
        t = by_trip.loc[name] if name in by_trip.index else None
        f = by_fill.loc[name] if name in by_fill.index else None
        out.append(Breakdown(
            key=str(name),
            realised_pnl=float(t["pnl"]) if t is not None else 0.0,
            round_trips=int(t["trips"]) if t is not None else 0,
            wins=int(t["wins"]) if t is not None else 0,
            fills=int(f["fills"]) if f is not None else 0,
            volume=float(f["volume"]) if f is not None else 0.0,
        ))
    return out


def build_report(
    source: str | Path | pd.DataFrame, last_prices: Mapping[str, float] | None = None
) -> Report:
    """Read the trade log (path or frame of raw rows) and compute every report number.

    ``last_prices`` marks open positions; symbols without one are marked at the latest price
    in the log.
    """
    events, problems = read_events(source)
    fills = _fill_rows(events, problems)
    trips, books = match_fifo(fills)
    marks = {**latest_prices(events), **{k: float(v) for k, v in (last_prices or {}).items()}}
    return Report(
        realised_pnl=float(sum(t.pnl for t in trips)),
        win_rate=(sum(1 for t in trips if t.pnl > 0) / len(trips)) if trips else 0.0,
        trades=len(fills),
        round_trips=len(trips),
        wins=sum(1 for t in trips if t.pnl > 0),
        symbols=tuple(sorted(set(fills["symbol"]))),
        volume=float(fills["value"].abs().sum()),
        by_symbol=tuple(_breakdowns(trips, fills, "symbol")),
        by_strategy=tuple(_breakdowns(trips, fills, "strategy")),
        open_positions=tuple(_open_positions(books, marks)),
        closed=tuple(trips),
        problems=tuple(sorted(problems, key=lambda p: p.line)),
        status_counts={str(k): int(v) for k, v in events["status"].value_counts().sort_index().items()},
        marks=marks,
        events=events,
    )


# ----------------------------------------------------------------------------- state database


def read_state_positions(
    db_path: str | Path, marks: Mapping[str, float] | None = None
) -> list[OpenPosition]:
    """Open positions from the state database's ``positions`` table, opened read-only.

    Raises :class:`DataError` (one line) when the file, the table or a column is missing.
    """
    path = Path(db_path)
    if not path.is_file():
        raise DataError(f"state database not found: {path}; pass --state with the profile's state_db")
    try:
        with sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True) as conn:
            conn.row_factory = sqlite3.Row
            rows = conn.execute(
                "SELECT symbol, qty, entry_price, entry_date, strategy FROM positions"
            ).fetchall()
    except sqlite3.Error as exc:
        raise DataError(f"cannot read positions from state database {path}: {exc}") from exc
    marks = marks or {}
    out = []
    for row in rows:
        try:
            qty, entry = float(row["qty"]), float(row["entry_price"])
        except (TypeError, ValueError):
            continue
        when = pd.to_datetime(row["entry_date"], errors="coerce", utc=True)
        out.append(
            OpenPosition(
                symbol=str(row["symbol"]),
                qty=qty,
                entry_price=entry,
                entry_time=None if pd.isna(when) else when,
                strategy=str(row["strategy"] or ""),
                last_price=marks.get(str(row["symbol"])),
            )
        )
    return sorted(out, key=lambda p: p.symbol)


def with_state_positions(report: Report, db_path: str | Path) -> Report:
    """The report with its open positions taken from the state database, marked like the log's."""
    return attrs.evolve(report, open_positions=tuple(read_state_positions(db_path, report.marks)))


def positions_frame(positions: Iterable[OpenPosition]) -> pd.DataFrame:
    """Open positions as a display/JSON-friendly frame."""
    records = [_position_dict(p) for p in positions]
    columns = ["symbol", "qty", "entry_price", "entry_time", "strategy", "last_price",
               "market_value", "unrealised_pnl"]
    return pd.DataFrame(records, columns=columns)
