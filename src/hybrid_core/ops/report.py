"""Trade report: realised PnL, round trips, win rate, volume and marked open positions.

The single implementation of the reported trading numbers: ``hybrid report`` prints them and
the dashboard shows them. Round trips and open lots come from the account's ledger
(:mod:`hybrid_core.account.ledger`), the code that builds a backtest's and a replay's round
trips, so every tool counts the same round trips with the same PnL (after commissions).

Sources (:func:`load_report`):

- an order-events audit log (``order_events.csv``, one row per order event; only ``filled``
  rows move positions), marked with the closes the last cycle saw, read from the run's state
  database (``marks`` table) when one is given or found beside the log. Without it the report
  says that open positions are unmarked instead of marking them at a fill price;
- a round-trip table (``round_trips.csv`` of a backtest or replay output folder), whose
  ``end_of_data`` rows are the open positions marked at their last close.

A malformed audit row is listed in :attr:`Report.problems` with its line number and skipped,
so a damaged log still yields a report. (The strict :func:`hybrid_core.ops.audit.read_trade_log`
refuses a whole file instead, which suits the writer, not a report.) A last line without its
newline is a write in progress and is ignored.

Definitions: a *fill* is a ``filled`` row (``fills`` counts them); a *round trip* is one
closing fill matched FIFO against the lots it closes; ``win_rate`` = round trips with pnl > 0 /
round trips (0.0 when none); ``volume`` = sum of |qty * price| over fills.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pandas as pd

from hybrid_core.account.ledger import END_OF_DATA, ROUND_TRIP_COLUMNS, Ledger, OpenLot, RoundTrip
from hybrid_core.errors import DataError
from hybrid_core.ops.audit import DEFAULT_FILE, TRADE_LOG_COLUMNS, TRADE_SIDES, TRADE_STATUSES

REQUIRED_COLUMNS = ("timestamp", "symbol", "side", "qty", "price", "status")
OPTIONAL_COLUMNS = tuple(c for c in TRADE_LOG_COLUMNS if c not in REQUIRED_COLUMNS)
EVENT_COLUMNS = ("line", *REQUIRED_COLUMNS, *OPTIONAL_COLUMNS, "value")
_EPS = 1e-9


@attrs.frozen
class RowProblem:
    """A trade log row that was skipped, with the 1-based line number in the file."""

    line: int
    message: str


OpenPosition = OpenLot
"""An open position of the report: the ledger's open lot with its mark."""


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
    fills: int
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
    source: str = ""
    """What was read (the audit log or round-trip table, and where the marks came from)."""
    marks_as_of: str | None = None
    """As-of date of the cycle whose closes marked the open positions (None: unmarked)."""
    notes: tuple[str, ...] = ()
    dust: Mapping[str, Mapping[str, float]] = attrs.field(factory=dict)
    """Positions at the broker below the exchange's smallest order (``{symbol: {qty, min_order_qty}}``,
    from the state database): held, not tradable, never a discrepancy."""

    @property
    def losses(self) -> int:
        """Round trips with pnl <= 0."""
        return self.round_trips - self.wins

    @property
    def unrealised_pnl(self) -> float | None:
        """Sum of the open positions' unrealised PnL; None when one of them has no mark."""
        values = [p.unrealised_pnl for p in self.open_positions]
        if any(v is None for v in values):
            return None
        return float(sum(v for v in values if v is not None))

    @property
    def is_empty(self) -> bool:
        """True when the source holds no valid order events (or round trips) at all."""
        return self.events.empty and not self.closed and not self.open_positions

    def cumulative_pnl(self) -> pd.DataFrame:
        """Realised PnL over time: one row per round trip, columns time, symbol, pnl, cumulative."""
        frame = pd.DataFrame(
            {
                "time": [t.exit_date for t in self.closed],
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
            "source": self.source,
            "realised_pnl": self.realised_pnl,
            "unrealised_pnl": self.unrealised_pnl,
            "marks_as_of": self.marks_as_of,
            "win_rate": self.win_rate,
            "fills": self.fills,
            "round_trips": self.round_trips,
            "open_position_count": len(self.open_positions),
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
            "notes": list(self.notes),
            "dust": {s: dict(v) for s, v in self.dust.items()},
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


def _position_dict(p: OpenLot) -> dict[str, Any]:
    return {
        "symbol": p.symbol,
        "qty": p.qty,
        "entry_price": p.entry_price,
        "entry_time": _iso(p.entry_date),
        "strategy": p.strategy,
        "mark": p.mark,
        "mark_date": _iso(p.mark_date),
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
    from ..paths import regular_file_problem

    problem = regular_file_problem(path, "trade log")  # a named pipe is never opened: no hang
    if problem is not None:
        raise DataError(problem)
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


# ----------------------------------------------------------------------------- ledger


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


def ledger_of(fills: pd.DataFrame) -> Ledger:
    """The account's ledger fed with the log's time-ordered fills (commission when logged)."""
    ledger = Ledger()
    fees = pd.to_numeric(fills["commission"], errors="coerce").fillna(0.0) if "commission" in fills else None
    columns = ["symbol", "side", "qty", "price", "timestamp", "strategy", "reason"]
    rows = zip(*(fills[c].tolist() for c in columns), strict=True)  # lists: fast on arrow strings
    for k, (symbol, side, qty, price, when, strategy, reason) in enumerate(rows):
        ledger.fill(symbol, side, float(qty), float(price), when, strategy=strategy, reason=reason,
                    commission=float(fees.iloc[k]) if fees is not None else 0.0)
    return ledger


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


def build_report(source: str | Path | pd.DataFrame, marks: Mapping[str, float] | None = None, *,
                 marks_as_of: str | None = None, mark_dates: Mapping[str, Any] | None = None,
                 described: str = "") -> Report:
    """Read an order-events audit log (path or frame of raw rows) and compute every report number.

    ``marks`` (closes from market data, e.g. :func:`read_state_marks`) value the open positions;
    without them the open positions are listed unmarked and the report says so.
    """
    events, problems = read_events(source)
    fills = _fill_rows(events, problems)
    ledger = ledger_of(fills)
    trips = list(ledger.closed)
    given = {k: float(v) for k, v in (marks or {}).items()}
    dates = {k: pd.Timestamp(v) for k, v in (mark_dates or {}).items()}
    lots = ledger.open_lots(given, dates)
    notes = []
    unmarked = [lot.symbol for lot in lots if lot.mark is None]
    if unmarked:
        notes.append(f"no market close for {', '.join(unmarked)}: unrealised PnL unknown (the audit log "
                     f"has fill prices, not marks; pass --state with the run's state database)")
    name = described or (str(source) if not isinstance(source, pd.DataFrame) else "(frame)")
    return _report(
        trips, lots, fills.assign(value=fills["qty"] * fills["price"]),
        problems=tuple(sorted(problems, key=lambda p: p.line)),
        status_counts={str(k): int(v) for k, v in events["status"].value_counts().sort_index().items()},
        marks=given, events=events, source=name, marks_as_of=marks_as_of if not unmarked else None,
        notes=tuple(notes))


def _report(trips: list[RoundTrip], lots: list[OpenLot], fills: pd.DataFrame, **fields: Any) -> Report:
    """The numbers every source shares: ``fills`` has symbol, strategy, value and line per fill."""
    return Report(
        realised_pnl=float(sum(t.pnl for t in trips)),
        win_rate=(sum(1 for t in trips if t.pnl > 0) / len(trips)) if trips else 0.0,
        fills=len(fills),
        round_trips=len(trips),
        wins=sum(1 for t in trips if t.pnl > 0),
        symbols=tuple(sorted(set(fills["symbol"]))),
        volume=float(fills["value"].abs().sum()),
        by_symbol=tuple(_breakdowns(trips, fills, "symbol")),
        by_strategy=tuple(_breakdowns(trips, fills, "strategy")),
        open_positions=tuple(lots),
        closed=tuple(trips),
        **fields,
    )


def report_from_round_trips(path: Path) -> Report:
    """The report of a round-trip table (``round_trips.csv`` of a backtest or replay folder)."""
    try:
        table = pd.read_csv(path, parse_dates=["entry_date", "exit_date"])
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise DataError(f"cannot read the round-trip table {path}: {exc}") from exc
    missing = [c for c in ROUND_TRIP_COLUMNS if c not in table.columns]
    if missing:
        raise DataError(f"{path} lacks column(s) {', '.join(missing)}: not a round-trip table")
    closed_rows = table[table["exit_reason"] != END_OF_DATA]
    open_rows = table[table["exit_reason"] == END_OF_DATA]
    trips = [RoundTrip(symbol=r.symbol, strategy=r.strategy, qty=r.qty, entry_date=r.entry_date,
                       entry_price=r.entry_price, exit_date=r.exit_date, exit_price=r.exit_price,
                       exit_reason=r.exit_reason,
                       commission=(r.exit_price - r.entry_price) * r.qty - r.pnl)
             for r in closed_rows.itertuples(index=False)]
    lots = [OpenLot(symbol=r.symbol, qty=r.qty, entry_price=r.entry_price, entry_date=r.entry_date,
                    strategy=r.strategy, entry_commission=(r.exit_price - r.entry_price) * r.qty - r.pnl,
                    mark=r.exit_price, mark_date=r.exit_date)
             for r in open_rows.sort_values("symbol").itertuples(index=False)]
    fills = pd.DataFrame({
        "symbol": [*table["symbol"], *closed_rows["symbol"]],
        "strategy": [*table["strategy"], *closed_rows["strategy"]],
        "value": [*(table["entry_price"] * table["qty"]), *(closed_rows["exit_price"] * closed_rows["qty"])],
    })
    fills["line"] = range(len(fills))
    marked = str(open_rows["exit_date"].max().date()) if len(open_rows) else None
    return _report(trips, lots, fills, problems=(), status_counts={},
                   marks={lot.symbol: float(lot.mark) for lot in lots if lot.mark is not None},
                   events=_empty_events(), source=f"round-trip table {path}", marks_as_of=marked)


def load_report(path: str | Path, state: str | Path | None = None) -> Report:
    """The report of whatever ``path`` is: an output folder, an audit log or a round-trip table.

    A folder is read as a run's folder when it holds ``order_events.csv`` (marked from the
    ``state.sqlite`` beside it), else as a backtest's when it holds ``round_trips.csv``.
    ``state`` names the state database whose last cycle's closes mark an audit log.
    """
    target = Path(path)
    if target.is_dir():
        log, table = target / DEFAULT_FILE, target / ROUND_TRIPS_FILE
        if log.is_file():
            found = target / "state.sqlite"
            return load_report(log, state if state is not None else (found if found.is_file() else None))
        if table.is_file():
            return report_from_round_trips(table)
        raise DataError(f"{target} holds neither {DEFAULT_FILE} (a run's audit log) nor {ROUND_TRIPS_FILE} "
                        f"(a backtest's round trips); pass the folder or file the run wrote")
    if target.is_file() and _header(target) >= set(ROUND_TRIP_COLUMNS):
        return report_from_round_trips(target)
    if state is None:
        return build_report(target, described=f"audit log {target} (no state database: unmarked)")
    as_of, marks = read_state_marks(state)
    report = build_report(target, {s: c for s, (c, _d) in marks.items()}, marks_as_of=as_of,
                          mark_dates={s: d for s, (_c, d) in marks.items()},
                          described=f"audit log {target}, marked at the closes of {as_of} ({state})")
    return attrs.evolve(report, dust=read_state_dust(state))


ROUND_TRIPS_FILE = "round_trips.csv"


def _header(path: Path) -> set[str]:
    with open(path, encoding="utf-8", errors="replace") as handle:
        return {c.strip() for c in handle.readline().lstrip("\ufeff").split(",")}


# ----------------------------------------------------------------------------- state database


def read_state_marks(db_path: str | Path) -> tuple[str | None, dict[str, tuple[float, str]]]:
    """The closes the run's last cycle marked its positions at: ``(as_of, {symbol: (close, bar date)})``.

    The state database is opened read-only. Raises :class:`DataError` (one line) when the file
    or its ``marks`` table is missing (a state database from before marks were kept).
    """
    from hybrid_core.ops.state import read_latest_marks

    path = Path(db_path)
    if not path.is_file():
        raise DataError(f"state database not found: {path}; pass --state with the profile's state_db")
    try:
        with sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True) as conn:
            return read_latest_marks(conn)
    except sqlite3.Error as exc:
        raise DataError(f"cannot read marks from state database {path}: {exc} (a run of this version "
                        f"writes them each cycle)") from exc


def read_state_dust(db_path: str | Path) -> dict[str, dict[str, float]]:
    """The dust the run's last reconciliation found: ``{symbol: {"qty": ..., "min_order_qty": ...}}``.

    Written by :class:`~hybrid_core.live.reconcile.Reconciler` (``meta`` key ``dust``); empty when
    there is none or the database predates it. Opened read-only.
    """
    path = Path(db_path)
    try:
        with sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True) as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'dust'").fetchone()
    except sqlite3.Error:
        return {}
    value = json.loads(row[0]) if row else {}
    return value if isinstance(value, dict) else {}


def positions_frame(positions: Iterable[OpenPosition]) -> pd.DataFrame:
    """Open positions as a display/JSON-friendly frame."""
    records = [_position_dict(p) for p in positions]
    columns = ["symbol", "qty", "entry_price", "entry_time", "strategy", "mark", "mark_date",
               "market_value", "unrealised_pnl"]
    return pd.DataFrame(records, columns=columns)
