"""What the dashboard reads: the heartbeat, the trade report, the state database, a backtest.

Each loader returns a value plus human-readable messages instead of raising, so the page can
always render and say what is missing.
"""

from __future__ import annotations

import functools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pandas as pd

from hybrid_core.errors import HybridError
from hybrid_core.ops.heartbeat import check_health
from hybrid_core.ops.report import Report
from hybrid_core.ops.report import load_report as read_report

ONLINE, STALE, OFFLINE = "ONLINE", "STALE", "OFFLINE"
OFFLINE_AFTER_FACTOR = 6.0
"""A heartbeat older than ``max_age`` is STALE, older than this many ``max_age`` OFFLINE."""


@attrs.frozen
class SystemStatus:
    """The run's state as the heartbeat file tells it."""

    state: str  # ONLINE, STALE or OFFLINE
    mode: str | None = None  # "PAPER", "LIVE", ... (upper case) or None when unknown
    cycle: int | None = None
    last_time: datetime | None = None
    age_s: float | None = None
    run_status: str | None = None
    last_error: str | None = None
    message: str | None = None

    @property
    def is_live(self) -> bool:
        """True when the run trades real money."""
        return self.mode == "LIVE"


def system_status(path: Path, max_age_s: float, now: datetime | None = None) -> SystemStatus:
    """ONLINE when the heartbeat is at most ``max_age_s`` old, STALE up to six times that,
    OFFLINE beyond, when missing or unreadable, or when the run says it stopped.

    Parsing and age come from :func:`hybrid_core.ops.heartbeat.check_health`; a cycle error
    does not change the state here (the page shows it separately)."""
    if not path.exists():
        return SystemStatus(OFFLINE, message=f"No heartbeat file at {path}: is `hybrid run` running "
                                             "with this health file? (pass --health PATH)")
    health = check_health(path, max_age_s, now=now or datetime.now(UTC))
    beat = health.heartbeat
    if beat is None:
        return SystemStatus(OFFLINE, message=f"Heartbeat file {path} is not a readable JSON object.")
    mode = str(beat["mode"]).upper() if beat.get("mode") else None
    cycle = beat.get("cycle") if isinstance(beat.get("cycle"), int) else None
    run_status = str(beat["status"]) if beat.get("status") else None
    error = str(beat["last_error"]) if beat.get("last_error") else None
    known = SystemStatus(OFFLINE, mode=mode, cycle=cycle, run_status=run_status, last_error=error)
    age = health.age_s
    if age is None:
        return attrs.evolve(known, message=f"Heartbeat file {path} has no valid 'time'.")
    when = (now or datetime.now(UTC)) - timedelta(seconds=age)
    if run_status == "stopped":
        state, message = OFFLINE, "The run reported that it stopped."
    elif age <= max_age_s:
        state, message = ONLINE, None
    elif age <= OFFLINE_AFTER_FACTOR * max_age_s:
        state, message = STALE, f"Last heartbeat {age:.0f} s ago (limit {max_age_s:.0f} s)."
    else:
        state, message = OFFLINE, f"Last heartbeat {age:.0f} s ago: the run looks down."
    return attrs.evolve(known, state=state, last_time=when, age_s=age, message=message)


@attrs.frozen
class Loaded:
    """A value (None when it could not be loaded) with messages for the page."""

    value: Any
    errors: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


@functools.lru_cache(maxsize=4)
def _report_of_version(trades: Path, state: Path | None, _versions: tuple[tuple[int, int], ...]) -> Report:
    return read_report(trades, state)


def _version(path: Path | None) -> tuple[int, int]:
    try:
        stat = path.stat() if path is not None else None
    except OSError:
        return (0, 0)
    return (stat.st_mtime_ns, stat.st_size) if stat is not None else (0, 0)


def cached_report(trades: Path, state: Path | None = None) -> Report:
    """:func:`hybrid_core.ops.report.load_report`, recomputed only when a file it reads changes."""
    if not trades.exists():
        return read_report(trades, state)  # raises the one-line "not found" DataError
    wal = state.with_name(state.name + "-wal") if state is not None else None
    return _report_of_version(trades, state, (_version(trades), _version(state), _version(wal)))


def load_report(trades: Path, state: Path | None = None) -> Loaded:
    """The report of the audit log (or output folder, or round-trip table) ``trades``, its open
    positions marked with the closes of the state database's last cycle when one is given."""
    notes: list[str] = []
    if state is not None and not state.is_file():
        notes.append(f"State database {state} not found: open positions are shown unmarked.")
        state = None
    try:
        report: Report = cached_report(trades, state)
    except HybridError as exc:
        return Loaded(None, errors=(str(exc),))
    if report.is_empty:
        notes.append(f"The trade log {trades} has no order events yet.")
    notes.extend(report.notes)
    errors = tuple(f"Skipped malformed row on line {p.line} of {trades}: {p.message}"
                   for p in report.problems)
    return Loaded(report, errors=errors, notes=tuple(notes))


@attrs.frozen
class Backtest:
    """A backtest output directory: equity curve (with drawdown) and summary."""

    equity: pd.DataFrame | None  # index date; columns value, cash, exposure, drawdown
    summary: dict[str, Any] | None


def drawdown(values: pd.Series) -> pd.Series:
    """Fractional drawdown from the running peak (0 at a peak, negative below)."""
    return values / values.cummax() - 1.0


def load_backtest(directory: Path) -> Loaded:
    """``equity.csv`` (date,value,cash,exposure) and ``summary.json`` of a backtest directory."""
    errors: list[str] = []
    equity = summary = None
    if not directory.is_dir():
        return Loaded(None, errors=(f"Backtest directory {directory} not found (pass --backtest DIR).",))
    equity_file = directory / "equity.csv"
    try:
        frame = pd.read_csv(equity_file)
        frame["date"] = pd.to_datetime(frame["date"])
        frame["value"] = pd.to_numeric(frame["value"], errors="raise")
        equity = frame.set_index("date").sort_index()
        equity["drawdown"] = drawdown(equity["value"])
    except FileNotFoundError:
        errors.append(f"No equity curve: {equity_file} is missing.")
    except (ValueError, KeyError, pd.errors.ParserError) as exc:
        errors.append(f"Cannot read {equity_file} (expected columns date,value,cash,exposure): {exc}")
    summary_file = directory / "summary.json"
    try:
        loaded = json.loads(summary_file.read_text(encoding="utf-8"))
        summary = loaded if isinstance(loaded, dict) else None
        if summary is None:
            errors.append(f"{summary_file} is not a JSON object.")
    except FileNotFoundError:
        errors.append(f"No summary: {summary_file} is missing.")
    except (OSError, ValueError) as exc:
        errors.append(f"Cannot read {summary_file}: {exc}")
    return Loaded(Backtest(equity, summary), errors=tuple(errors))
