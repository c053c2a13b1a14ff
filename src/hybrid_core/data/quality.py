"""Data quality gate, run on the bars before a strategy sees them.

API::

    report = check_quality(bars, now, universe=None, max_lag_sessions=0,
                           max_stale_fraction=0.2, settle_minutes=30, sessions=nyse_sessions)
    if report.halt_entries:
        ...   # the live cycle opens no new position this cycle; report.reason says why
    report.stale, report.issues, report.symbols_with("high_below_low")

``bars`` is a canonical long frame (``symbol, date, open, high, low, close, volume``) or a
:class:`~hybrid_core.contracts.Panel` (whose columns are then the default ``universe``).
``now`` is the cycle time (naive = UTC). Problems found
(one :class:`QualityIssue` each, logged once with symbol and date: at WARNING the first time
this process sees it, at DEBUG when a later cycle finds it again):

- ``stale``: the last bar is older than the calendar says (equities: the last settled NYSE
  session of ``sessions``; crypto: the last complete UTC day), ``max_lag_sessions`` allowed;
- ``no_bars``: a symbol of ``universe`` has no bar at all (counted as stale);
- ``gap``: sessions (NYSE) or days (crypto) missing between a symbol's first and last bar;
- ``missing_price`` / ``non_positive_price``: a row with a NaN or <= 0 open/high/low/close;
- ``high_below_low``: high < low;
- ``duplicate_date``: two rows for one (symbol, date).

``halt_entries`` is True when, in the equity or the crypto part of the universe, more than
``max_stale_fraction`` of the symbols are stale: trading on old prices is refused for that
cycle (exits and stops still run). Individually stale or broken symbols are listed so the
caller may leave them out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import attrs
import numpy as np
import pandas as pd
from loguru import logger

from ..calendars import nyse_sessions
from ..contracts import BAR_COLUMNS, Panel, is_crypto
from .clock import as_utc, expected_last_bar

PRICES = ["open", "high", "low", "close"]
_LOGGED: set[tuple[object, ...]] = set()
"""Issues already logged at WARNING by this process (repeats go to DEBUG)."""


def forget_logged_issues() -> None:
    """Log every issue (and skipped row) at WARNING again (tests; a new run in the same process)."""
    from .normalise import _SKIPS_LOGGED

    _LOGGED.clear()
    _SKIPS_LOGGED.clear()
STALE_KINDS = ("stale", "no_bars")


@attrs.frozen
class QualityIssue:
    """One problem: its kind, the symbol, the (first) date concerned and a short detail."""

    kind: str
    symbol: str
    date: pd.Timestamp | None
    detail: str = ""

    def line(self) -> str:
        """One log line."""
        day = self.date.date() if self.date is not None else "-"
        return f"{self.kind}: {self.symbol} {day}: {self.detail}"


@attrs.define
class QualityReport:
    """Result of :func:`check_quality`."""

    issues: list[QualityIssue] = attrs.field(factory=list)
    halt_entries: bool = False
    reason: str = ""
    expected: dict[str, pd.Timestamp] = attrs.field(factory=dict)
    """Expected last bar date per calendar (``equity``, ``crypto``)."""

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.issues

    def symbols_with(self, *kinds: str) -> list[str]:
        """Symbols having an issue of one of ``kinds`` (all kinds when none given), sorted."""
        return sorted({i.symbol for i in self.issues if not kinds or i.kind in kinds})

    @property
    def stale(self) -> list[str]:
        """Symbols whose data is stale or absent."""
        return self.symbols_with(*STALE_KINDS)

    def to_dict(self) -> dict:
        """JSON-ready form (for logs, heartbeat and the dashboard)."""
        return {"halt_entries": self.halt_entries, "reason": self.reason,
                "expected": {k: str(v.date()) for k, v in self.expected.items()},
                "issues": [{"kind": i.kind, "symbol": i.symbol,
                            "date": str(i.date.date()) if i.date is not None else None,
                            "detail": i.detail} for i in self.issues]}


def _as_long(bars: pd.DataFrame | Panel) -> pd.DataFrame:
    if isinstance(bars, Panel):
        parts = {name: getattr(bars, name).stack(future_stack=True) for name in BAR_COLUMNS}
        long = pd.DataFrame(parts).reset_index()
        long.columns = ["date", "symbol", *BAR_COLUMNS]
        return long.loc[long[PRICES].notna().any(axis=1)].reset_index(drop=True)
    return bars.reset_index(drop=True)


def _row_issues(long: pd.DataFrame) -> list[QualityIssue]:
    """Per-row problems, one issue per (kind, symbol) with the first date and a count."""
    block = long[PRICES].to_numpy(dtype="float64")
    with np.errstate(invalid="ignore"):
        checks = {
            "missing_price": ~np.isfinite(block).all(axis=1),
            "non_positive_price": (block <= 0).any(axis=1),
            "high_below_low": block[:, 1] < block[:, 2],
            "duplicate_date": long.duplicated(["symbol", "date"], keep="first").to_numpy(),
        }
    issues = []
    for kind, mask in checks.items():
        if not mask.any():
            continue
        hit = long.loc[mask, ["symbol", "date"]]
        for symbol, rows in hit.groupby("symbol", sort=True):
            issues.append(QualityIssue(kind, str(symbol), pd.Timestamp(rows["date"].min()),
                                       f"{len(rows)} row(s)"))
    return issues


def _gap_issues(last_rows: pd.DataFrame, long: pd.DataFrame, sessions: pd.DatetimeIndex
                ) -> list[QualityIssue]:
    """Missing sessions/days between each symbol's first and last bar."""
    issues = []
    for symbol, first, last, count in last_rows.itertuples(index=False):
        if is_crypto(symbol):
            calendar = pd.date_range(first, last, freq="D")
        else:
            calendar = sessions[(sessions >= first) & (sessions <= last)]
        if count >= len(calendar):
            continue
        have = pd.DatetimeIndex(long.loc[long["symbol"] == symbol, "date"])
        missing = calendar.difference(have)
        if len(missing):
            unit = "day(s)" if is_crypto(symbol) else "NYSE session(s)"
            issues.append(QualityIssue("gap", symbol, pd.Timestamp(missing[0]),
                                       f"{len(missing)} {unit} without a bar"))
    return issues


def check_quality(bars: pd.DataFrame | Panel, now: pd.Timestamp | str, *,
                  universe: Iterable[str] | None = None, max_lag_sessions: int = 0,
                  max_stale_fraction: float = 0.2, settle_minutes: int = 30,
                  sessions: Callable[..., pd.DatetimeIndex] = nyse_sessions,
                  check_gaps: bool = True) -> QualityReport:
    """Check ``bars`` at ``now`` (see the module docstring); logs each problem once."""
    now = as_utc(now)
    if universe is None and isinstance(bars, Panel):
        universe = bars.symbols  # a column without any bar is a symbol without data
    long = _as_long(bars)
    long = long.assign(date=pd.to_datetime(long["date"]), symbol=long["symbol"].astype(str))
    symbols = sorted(set(universe) if universe is not None else set(long["symbol"]))
    long = long[long["symbol"].isin(symbols)]
    report = QualityReport()
    report.expected = {"equity": expected_last_bar("SPY", now, max_lag_sessions, settle_minutes),
                       "crypto": expected_last_bar("BTC/USD", now, max_lag_sessions, settle_minutes)}
    report.issues.extend(_row_issues(long))
    spans = (long.groupby("symbol", sort=True)["date"].agg(["min", "max", "nunique"])
             .reset_index())
    last_by_symbol = dict(zip(spans["symbol"], spans["max"], strict=True))
    stale_by_group: dict[str, list[str]] = {"equity": [], "crypto": []}
    members: dict[str, list[str]] = {"equity": [], "crypto": []}
    for symbol in symbols:
        group = "crypto" if is_crypto(symbol) else "equity"
        members[group].append(symbol)
        expected = report.expected[group]
        last = last_by_symbol.get(symbol)
        if last is None:
            report.issues.append(QualityIssue("no_bars", symbol, None, "no bar at all"))
            stale_by_group[group].append(symbol)
        elif pd.Timestamp(last) < expected:
            report.issues.append(QualityIssue("stale", symbol, pd.Timestamp(last),
                                              f"last bar {pd.Timestamp(last).date()}, expected "
                                              f"{expected.date()}"))
            stale_by_group[group].append(symbol)
    if check_gaps and len(spans):
        start = spans["min"].min()
        calendar = sessions(start, spans["max"].max())
        report.issues.extend(_gap_issues(spans, long, calendar))
    reasons = []
    for group, stale in stale_by_group.items():
        if members[group] and len(stale) / len(members[group]) > max_stale_fraction:
            reasons.append(f"stale {group} data: {len(stale)} of {len(members[group])} symbol(s) have "
                           f"no bar for {report.expected[group].date()} (e.g. {', '.join(stale[:5])})")
    if reasons:
        report.halt_entries = True
        report.reason = "; ".join(reasons) + "; new entries halted for this cycle"
    for issue in report.issues:
        key = (issue.kind, issue.symbol, issue.date, issue.detail)
        level = "DEBUG" if key in _LOGGED else "WARNING"  # a live loop sees the same gap daily
        _LOGGED.add(key)
        logger.bind(kind=issue.kind, symbol=issue.symbol).log(level, "data quality: {line}", line=issue.line())
    if report.halt_entries:
        logger.error("data quality: {reason}", reason=report.reason)
    return report
