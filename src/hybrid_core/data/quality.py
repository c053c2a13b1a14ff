"""The data quality gate: every bar a strategy sees has passed it, on every path.

API::

    result = gate_bars(bars, policy="refuse", origin="bars.parquet")   # or BarsRefused (a DataError)
    result.bars            # canonical long frame: sorted, one row per (symbol, date)
    result.problems        # BarProblem per (check, symbol): first date, count, action
    result.halt_reason     # policy "halt": why new entries should wait (None: trade)

    report = check_quality(bars, now, universe=None, max_lag_sessions=0, ...)  # freshness
    report.halt_entries, report.reason, report.stale, report.issues

:func:`gate_bars` judges bars as a source gave them (``load_bars`` in
:mod:`hybrid_core.data.loading` is the one entry point that fetches and gates). Checks, per bar:

====================== ============================================================ ==========
check                  what                                                          keepable
====================== ============================================================ ==========
``empty_symbol``       the symbol is blank                                           no
``missing_price``      an open/high/low/close is empty or not a number               no
``non_positive_price`` a price is zero or negative                                   no
``absurd_value``       a price above 1e9 or below 1e-9, inf, a volume above 1e15    no
``high_below_low``     high < low                                                    yes
``outside_range``      open or close outside [low, high]                             yes
``negative_volume``    volume < 0                                                    yes
``future_date``        dated after today (UTC)                                       yes
``off_calendar``       an equity bar on a day that is not an NYSE session            yes
``conflicting_duplicate`` two rows for one (symbol, date) with different values      yes (last)
``unadjusted_split``   a one-day move of open and close by a split ratio (2:1 ...
                       1000:1 or reverse) in the prices strategies would trade on:
                       the series is not split-adjusted (drop: the whole symbol)     yes
====================== ============================================================ ==========

A row with no price and no volume at all is a day the source lost (the shared crypto data has
8): it is left out as a missing bar, never refused. Identical duplicate rows are collapsed.

Policies (profile key ``data.quality``):

- ``refuse`` (default of backtests and replays): one line naming the file, symbol, date and
  check of the first problem, with a count of the others; :class:`~hybrid_core.errors.BarsRefused`
  (a :class:`DataError`), exit code 7;
- ``drop``: bad bars (a symbol, for ``unadjusted_split``) are left out; one summary line per
  check (first few symbols and dates, the count), every bar at DEBUG;
- ``warn``: bars are kept where they can be (the "keepable" column), one warning per check;
  bars that cannot be traded on are left out as with ``drop``;
- ``halt`` (default of live cycles): as ``drop``, and when a bad bar lies in the last
  :data:`HALT_WINDOW_DAYS` days, ``halt_reason`` says why new entries wait this cycle.

:func:`check_quality` is the live cycle's freshness check (``stale``/``no_bars`` against the
NYSE and UTC calendars, ``gap``: sessions missing between a symbol's first and last bar) and,
for a long frame, also reports the bar checks above (a Panel comes from bars the gate judged);
each kind is logged as one summary line per call (at DEBUG when this process already warned
about exactly those problems).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs
import numpy as np
import pandas as pd
from loguru import logger

from ..calendars import nyse_sessions
from ..contracts import (
    BAR_COLUMNS,
    DAY_NS,
    MARKABLE_DAYS,
    NAT_NS,
    SMALL_CHUNK,
    Panel,
    date_positions,
    is_crypto,
    used_categories,
)
from ..errors import BarsRefused
from .clock import as_utc, expected_last_bar
from .files import canonical_order

PRICES = ["open", "high", "low", "close"]
POLICIES = ("refuse", "drop", "warn", "halt")
MAX_PRICE, MIN_PRICE, MAX_VOLUME = 1e9, 1e-9, 1e15
SPLIT_FACTORS = (2, 3, 4, 5, 6, 7, 8, 10, 15, 20, 25, 30, 40, 50, 100, 1000)
SPLIT_CLOSE_TOLERANCE, SPLIT_OPEN_TOLERANCE = 0.10, 0.04
"""Calibrated on the shared S&P 500 history: the raw series shows 336 of its 473 splits, the
adjusted one only 5 moves, each a split the source failed to adjust (ANTM, TRMB, WST)."""
HALT_WINDOW_DAYS = 45
"""A bad bar this recent (days before the newest bar) halts new live entries for the cycle."""
SUMMARY_NAMES = 3
"""Symbols (with dates) named in a summary line before "and N more"."""
RANGE_TOLERANCE = 1e-9

CHECKS: dict[str, tuple[str, bool]] = {
    "empty_symbol": ("a bar without a symbol", False),
    "missing_price": ("an empty or non-numeric price", False),
    "non_positive_price": ("a zero or negative price", False),
    "absurd_value": ("an absurd value (a price above 1e9 or below 1e-9, inf, a volume above 1e15)", False),
    "high_below_low": ("high below low", True),
    "outside_range": ("open or close outside [low, high]", True),
    "negative_volume": ("a negative volume", True),
    "future_date": ("a date after today", True),
    "off_calendar": ("an equity bar on a day the NYSE was closed", True),
    "conflicting_duplicate": ("two different rows for one symbol and date", True),
    "unadjusted_split": ("a one-day jump by a split ratio: prices not split-adjusted", True),
}
"""Every bar check: what it means, and whether ``warn`` may keep such a bar."""
STALE_KINDS = ("stale", "no_bars")

_LOGGED: set[tuple[object, ...]] = set()
"""Problems already logged at WARNING by this process (the same ones again go to DEBUG)."""


def forget_logged_issues() -> None:
    """Log every problem at WARNING again (tests; a new run in the same process)."""
    from .normalise import _SKIPS_LOGGED

    _LOGGED.clear()
    _SKIPS_LOGGED.clear()


# ------------------------------------------------------------------ results

@attrs.frozen
class BarProblem:
    """One check failed by ``count`` bars of one symbol, the first on ``date``."""

    kind: str
    symbol: str
    date: pd.Timestamp | None
    count: int = 1
    detail: str = ""
    origin: str = ""
    """The file (or source) the bars came from."""

    def line(self) -> str:
        """``origin: SYMBOL DATE: check: detail``, the refusal line."""
        day = self.date.date() if self.date is not None else "-"
        where = f"{self.origin}: " if self.origin else ""
        what = CHECKS.get(self.kind, (self.kind, True))[0]
        more = f" ({self.count} bars)" if self.count > 1 else ""
        detail = f" ({self.detail})" if self.detail else ""
        return f"{where}{self.symbol or '(blank symbol)'} {day}: {self.kind}: {what}{detail}{more}"


@attrs.define
class GateResult:
    """What :func:`gate_bars` let through, and what it found."""

    bars: pd.DataFrame
    problems: list[BarProblem] = attrs.field(factory=list)
    dropped: int = 0
    """Bars left out (bad bars and, for ``unadjusted_split`` under drop, whole symbols)."""
    lost_days: int = 0
    """Rows without any price (days the source lost), left out as missing bars."""
    collapsed: int = 0
    """Identical duplicate rows collapsed into one."""
    halt_reason: str | None = None

    def counts(self) -> dict[str, int]:
        """Bars per failed check."""
        out: dict[str, int] = {}
        for p in self.problems:
            out[p.kind] = out.get(p.kind, 0) + p.count
        return out

    def summary(self) -> str:
        """One line: what the gate found (``no problem`` when clean)."""
        parts = [f"{kind} {n}" for kind, n in sorted(self.counts().items())]
        if self.lost_days:
            parts.append(f"days without any price {self.lost_days}")
        if self.collapsed:
            parts.append(f"identical duplicates {self.collapsed}")
        return ", ".join(parts) if parts else "no problem"


# ------------------------------------------------------------------ the checks

def _sorted(frame: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """``frame`` sorted by (symbol, date), stable, and its symbol codes (in symbol order)."""
    symbol = frame["symbol"]
    if isinstance(symbol.dtype, pd.CategoricalDtype):
        if not symbol.cat.categories.is_monotonic_increasing:
            symbol = symbol.cat.reorder_categories(sorted(symbol.cat.categories))
            frame = frame.assign(symbol=symbol)
        codes = symbol.cat.codes.to_numpy()  # int8/16 for a few thousand symbols: as good as int64 here
    else:
        codes, _names = pd.factorize(symbol.astype(str), sort=True)
    order = canonical_order(codes, frame["date"].to_numpy(dtype="datetime64[ns]"))
    if order is None:
        return frame.reset_index(drop=True), codes
    return frame.iloc[order].reset_index(drop=True), codes[order]


def _columns(frame: pd.DataFrame) -> tuple[list[np.ndarray], np.ndarray]:
    """open, high, low, close and volume of ``frame`` as float64 arrays."""
    ohlc = [frame[c].to_numpy(dtype="float64") for c in PRICES]
    volume = frame["volume"].to_numpy(dtype="float64") if "volume" in frame.columns else np.zeros(len(frame))
    return ohlc, volume


def price_flags(ohlc: Sequence[np.ndarray], volume: np.ndarray) -> dict[str, np.ndarray]:
    """The checks of the prices themselves (``ohlc``: the open, high, low and close arrays)."""
    o, h, low, c = ohlc
    smallest = np.minimum(o, h)  # NaN when any price is NaN; one array each, made in place
    np.minimum(smallest, low, out=smallest)
    np.minimum(smallest, c, out=smallest)
    largest = np.maximum(o, h)
    np.maximum(largest, low, out=largest)
    np.maximum(largest, c, out=largest)
    with np.errstate(invalid="ignore"):  # each mask built in place: one temporary at a time
        absurd = largest > MAX_PRICE
        del largest
        tiny = smallest > 0
        tiny &= smallest < MIN_PRICE
        absurd |= tiny
        np.isinf(volume, out=tiny)
        absurd |= tiny
        np.greater(volume, MAX_VOLUME, out=tiny)
        absurd |= tiny
        return {"missing_price": np.isnan(smallest), "non_positive_price": smallest <= 0, "absurd_value": absurd}


def usable_prices(ohlc: Sequence[np.ndarray], volume: np.ndarray) -> np.ndarray:
    """True where a bar's prices can be traded on at all (what no policy can keep otherwise)."""
    flags = price_flags(ohlc, volume)
    return ~(flags["missing_price"] | flags["non_positive_price"] | flags["absurd_value"])


def bar_flags(frame: pd.DataFrame, codes: np.ndarray, *, today: pd.Timestamp,
              sessions: Callable[..., pd.DatetimeIndex] = nyse_sessions) -> dict[str, np.ndarray]:
    """A boolean mask per check over the rows of ``frame`` (sorted by symbol, date)."""
    return _flags(frame, codes, today, sessions)[0]


def _flags(frame: pd.DataFrame, codes: np.ndarray, today: pd.Timestamp,
           sessions: Callable[..., pd.DatetimeIndex]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """:func:`bar_flags`, and the identical repeats of a (symbol, date) found with the conflicting ones."""
    n = len(frame)
    ohlc, volume = _columns(frame)
    dates = frame["date"].to_numpy(dtype="datetime64[ns]")
    names = _symbol_names(frame, codes)
    blank = np.array([not n.strip() for n in names], dtype=bool)
    crypto = np.array([is_crypto(n) for n in names], dtype=bool)
    flags: dict[str, Any] = {
        "empty_symbol": blank[codes] if len(names) else np.zeros(n, bool),
        **_price_checks(ohlc, volume),
        "future_date": dates > (today.normalize() + pd.Timedelta(days=1)).to_datetime64(),
    }
    flags["off_calendar"] = _off_calendar(crypto[codes] if len(names) else np.zeros(n, bool), dates, sessions)
    flags["conflicting_duplicate"], identical = _duplicates(frame, codes, dates)
    return flags, identical


def _blocks(n: int) -> Iterable[slice]:
    """Slices of :data:`~hybrid_core.contracts.SMALL_CHUNK` rows covering ``n`` rows."""
    return (slice(lo, lo + SMALL_CHUNK) for lo in range(0, n, SMALL_CHUNK))


def _price_checks(ohlc: Sequence[np.ndarray], volume: np.ndarray) -> dict[str, np.ndarray]:
    """:func:`price_flags`, ``high_below_low``, ``outside_range`` and ``negative_volume`` of every
    row, judged :data:`~hybrid_core.contracts.SMALL_CHUNK` rows at a time: each check's
    temporaries stay in the CPU's cache and reuse the heap (whole columns made a dozen passes
    over 36 MB arrays at 4.7 million bars, twice the time)."""
    n = len(volume)
    kinds = ("missing_price", "non_positive_price", "absurd_value", "high_below_low", "outside_range",
             "negative_volume")
    out = {kind: np.empty(n, dtype=bool) for kind in kinds}
    o, h, low, c = ohlc
    with np.errstate(invalid="ignore"):
        for rows in _blocks(n):
            for kind, mask in price_flags([o[rows], h[rows], low[rows], c[rows]], volume[rows]).items():
                out[kind][rows] = mask
            np.less(h[rows], low[rows], out=out["high_below_low"][rows])
            out["outside_range"][rows] = _outside(o[rows], h[rows], low[rows], c[rows])
            np.less(volume[rows], 0, out=out["negative_volume"][rows])
    return out


def _lost(ohlc: Sequence[np.ndarray], volume: np.ndarray) -> np.ndarray:
    """Rows without any price and without volume (days the source lost), a block of rows at a time."""
    o, h, low, c = ohlc
    lost = np.empty(len(volume), dtype=bool)
    for rows in _blocks(len(volume)):
        any_price = np.fmax(o[rows], h[rows])  # NaN only when all are
        np.fmax(any_price, low[rows], out=any_price)
        np.fmax(any_price, c[rows], out=any_price)
        np.isnan(any_price, out=lost[rows])
    if lost.any():  # else no row is lost, whatever its volume
        lost &= np.isnan(volume) | (volume == 0)
    return lost


def _outside(o: np.ndarray, h: np.ndarray, low: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Open or close outside [low, high] (within :data:`RANGE_TOLERANCE`), one bound at a time."""
    bound = h * (1 + RANGE_TOLERANCE)
    outside = o > bound
    outside |= c > bound
    np.multiply(low, 1 - RANGE_TOLERANCE, out=bound)  # the bottom, in the top's array
    outside |= o < bound
    outside |= c < bound
    return outside


def _symbol_names(frame: pd.DataFrame, codes: np.ndarray) -> list[str]:
    """The symbol of each code of :func:`_sorted` (code i -> names[i])."""
    symbol = frame["symbol"]
    if isinstance(symbol.dtype, pd.CategoricalDtype):
        return [str(c) for c in symbol.cat.categories]
    names = [""] * (int(codes.max()) + 1 if len(codes) else 0)
    firsts = np.unique(codes, return_index=True)[1]
    values = symbol.to_numpy()
    for code, pos in zip(codes[firsts], firsts, strict=True):
        names[int(code)] = str(values[pos])
    return names


def _off_calendar(crypto: np.ndarray, dates: np.ndarray,
                  sessions: Callable[..., pd.DatetimeIndex]) -> np.ndarray:
    if not len(dates):
        return np.zeros(0, dtype=bool)
    calendar = pd.DatetimeIndex(sessions())
    if not len(calendar):
        return np.zeros(len(dates), dtype=bool)
    days = _distinct_days(dates)  # the few distinct days, no code per bar
    inside = (days >= calendar[0].to_datetime64()) & (days <= calendar[-1].to_datetime64())
    closed = inside & ~np.isin(days, calendar.to_numpy(dtype="datetime64[ns]"))
    if not closed.any():
        return np.zeros(len(dates), dtype=bool)
    return np.isin(dates, days[closed]) & ~crypto


def _distinct_days(dates: np.ndarray) -> np.ndarray:
    """The distinct values of ``dates`` (datetime64[ns]), in any order: for session dates (midnights
    within a few centuries) a day number per bar is marked a block of rows at a time, else hashed."""
    stamps = dates.view(np.int64)
    lo, hi = int(stamps.min()), int(stamps.max())
    if lo != NAT_NS and (hi - lo) // DAY_NS < MARKABLE_DAYS:  # no NaT, a span of days to mark
        present = np.zeros((hi - lo) // DAY_NS + 1, dtype=bool)
        for rows in _blocks(len(stamps)):
            number, rest = np.divmod(stamps[rows] - lo, DAY_NS)
            if rest.any():
                break
            present[number] = True
        else:
            return (np.flatnonzero(present) * DAY_NS + lo).view("datetime64[ns]")
    return np.asarray(pd.unique(dates), dtype="datetime64[ns]")


def _duplicates(frame: pd.DataFrame, codes: np.ndarray, dates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(conflicting rows, identical repeats) of (symbol, date) in a sorted frame."""
    n = len(frame)
    repeat = np.zeros(n, dtype=bool)
    if n > 1:
        repeat[1:] = (codes[1:] == codes[:-1]) & (dates[1:] == dates[:-1])
    if not repeat.any():
        return np.zeros(n, dtype=bool), repeat
    values = np.column_stack([frame[c].to_numpy(dtype="float64") for c in BAR_COLUMNS if c in frame.columns])
    same_values = np.zeros(n, dtype=bool)
    same_values[1:] = ((values[1:] == values[:-1]) | (np.isnan(values[1:]) & np.isnan(values[:-1]))).all(axis=1)
    group_start = ~repeat
    group = np.cumsum(group_start) - 1
    differs = repeat & ~same_values
    conflict_groups = np.unique(group[differs])
    conflicting = np.isin(group, conflict_groups)
    identical = repeat & ~conflicting
    return conflicting, identical


def _split_jumps(frame: pd.DataFrame, codes: np.ndarray, usable: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows whose open and close both moved from the previous usable close by a split ratio,
    and that ratio (the previous close / this close: 4.0 for a 4:1 split). Only the big moves
    are looked at closely, so the temporaries stay near one float per bar."""
    n = len(frame)
    close, opens, keys = frame["close"].to_numpy(dtype="float64"), frame["open"].to_numpy(dtype="float64"), codes
    idx = None if usable.all() else np.flatnonzero(usable)
    if idx is not None:
        close, opens, keys = close[idx], opens[idx], codes[idx]
    hit = np.zeros(n, dtype=bool)
    if len(close) < 2:
        return hit, np.full(n, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):  # every split ratio is at least 2
        big = np.concatenate([_big_moves(close, keys, rows) for rows in _blocks(len(close) - 1)])
        move_close = close[big + 1] / close[big]
        move_open = opens[big + 1] / close[big]
    found = np.zeros(len(big), dtype=bool)
    for factor in SPLIT_FACTORS:
        for k in (1.0 / factor, float(factor)):
            found |= ((np.abs(move_close / k - 1) < SPLIT_CLOSE_TOLERANCE)
                      & (np.abs(move_open / k - 1) < SPLIT_OPEN_TOLERANCE))
    rows = big[found] + 1
    where = rows if idx is None else idx[rows]
    hit[where] = True
    ratio = np.full(n, np.nan)
    ratio[where] = 1.0 / move_close[found]
    return hit, ratio


def _big_moves(close: np.ndarray, keys: np.ndarray, rows: slice) -> np.ndarray:
    """Of the rows ``rows`` (each compared with the next), those whose next row is the same symbol's
    with a close below 0.55x or above 1.9x theirs (the only moves a split ratio can be)."""
    lo, hi = rows.start, min(rows.stop, len(close) - 1)
    move = close[lo + 1:hi + 1] / close[lo:hi]
    near = move < 0.55
    near |= move > 1.9
    near &= keys[lo + 1:hi + 1] == keys[lo:hi]
    return np.flatnonzero(near) + lo


def _split_detail(ratio: float) -> str:
    move = (f"open and close fell to 1/{ratio:.3g} in one day, like a {round(ratio)}:1 split" if ratio >= 1
            else f"open and close rose {1 / ratio:.3g}x in one day, like a 1:{round(1 / ratio)} reverse split")
    return f"{move} that the prices are not adjusted for; use split-adjusted prices (an adj_close column)"


# ------------------------------------------------------------------ the gate

def gate_bars(bars: pd.DataFrame, *, policy: str = "refuse", origin: str = "",
              today: pd.Timestamp | None = None, log: bool = True,
              sessions: Callable[..., pd.DatetimeIndex] = nyse_sessions) -> GateResult:
    """Judge ``bars`` (canonical columns, any order, maybe duplicated) under ``policy``.

    ``origin`` names the source in messages (a file path); a frame with a ``file`` column
    names each bar's own file instead. Returns the canonical long frame (sorted by symbol and
    date, one row per pair, float64 prices, ``file`` dropped) and what was found; raises
    :class:`BarsRefused` (one line) under ``refuse``. ``log=False`` keeps it quiet (status reports).
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown quality policy {policy!r}; expected one of {', '.join(POLICIES)}")
    today = pd.Timestamp.now(tz="UTC").tz_localize(None) if today is None else pd.Timestamp(today)
    if not len(bars):
        return GateResult(bars=_canonical(bars))
    frame, codes = _sorted(bars)
    n = len(frame)
    lost = _lost(*_columns(frame))
    flags, identical = _flags(frame, codes, today, sessions)
    if lost.any():
        found = ~lost
        for mask in (*flags.values(), identical):
            mask &= found
        del found
    unusable = np.zeros(n, dtype=bool)
    for kind, (_what, keepable) in CHECKS.items():
        if kind in flags and not keepable:
            unusable |= flags[kind]
    split, ratio = _split_jumps(frame, codes, ~(unusable | lost | identical | flags["conflicting_duplicate"]))
    flags["unadjusted_split"] = split
    problems = _problems(frame, flags, origin, ratio)
    result = GateResult(bars=frame, problems=problems, lost_days=int(lost.sum()),
                        collapsed=int(identical.sum()))
    if problems and policy == "refuse":
        raise BarsRefused(_refusal(result))
    drop = lost | identical | unusable
    if policy in ("drop", "halt"):
        for kind, mask in flags.items():
            drop |= np.isin(codes, np.unique(codes[mask])) if kind == "unadjusted_split" else mask
    elif policy == "warn":
        conflicting = flags["conflicting_duplicate"]
        if conflicting.any():  # keep the last of each conflicting (symbol, date), as files are read
            last = np.ones(n, dtype=bool)
            last[:-1] = ~((codes[1:] == codes[:-1]) & (frame["date"].to_numpy()[1:] == frame["date"].to_numpy()[:-1]))
            drop |= conflicting & ~last
    result.dropped = int((drop & ~lost & ~identical).sum())
    del flags, split, ratio, unusable  # judged: a bool per check and bar less while the result is made
    result.bars = _canonical(frame.loc[~drop] if drop.any() else frame)
    if policy == "halt" and problems:
        newest = frame["date"].max()
        recent = [p for p in problems if p.date is not None
                  and p.date >= newest - pd.Timedelta(days=HALT_WINDOW_DAYS)]
        if recent:
            kinds = sorted({p.kind for p in recent})
            names = sorted({p.symbol for p in recent})
            result.halt_reason = (f"bad bars in the last {HALT_WINDOW_DAYS} days ({', '.join(kinds)}: "
                                  f"{_names(names)}) were left out; new entries wait for clean data")
    if log:
        _log_gate(result, policy, origin)
    return result


def _problems(frame: pd.DataFrame, flags: Mapping[str, np.ndarray], origin: str,
              ratio: np.ndarray) -> list[BarProblem]:
    out: list[BarProblem] = []
    has_file = "file" in frame.columns
    for kind in CHECKS:
        mask = flags.get(kind)
        if mask is None or not mask.any():
            continue
        positions = np.flatnonzero(mask)
        hits = pd.DataFrame({"symbol": frame["symbol"].iloc[positions].astype(str).to_numpy(), "pos": positions})
        per_symbol = hits.groupby("symbol", sort=True).agg(pos=("pos", "first"), n=("pos", "size"))
        for symbol, pos, count in per_symbol.itertuples():
            where = str(frame["file"].iat[pos]) if has_file else origin
            out.append(BarProblem(kind, str(symbol), pd.Timestamp(frame["date"].iat[pos]), int(count),
                                  _detail(kind, frame, int(pos), ratio), where))
    return out


def _detail(kind: str, frame: pd.DataFrame, pos: int, ratio: np.ndarray) -> str:
    row = frame.iloc[pos]
    ohlc = f"open {row['open']:g}, high {row['high']:g}, low {row['low']:g}, close {row['close']:g}"
    if kind in ("missing_price", "non_positive_price", "absurd_value", "high_below_low", "outside_range"):
        extra = f", volume {row['volume']:g}" if kind == "absurd_value" and "volume" in frame.columns else ""
        return ohlc + extra
    if kind == "negative_volume":
        return f"volume {row['volume']:g}"
    if kind == "unadjusted_split":
        return _split_detail(float(ratio[pos]))
    if kind == "off_calendar":
        return f"{pd.Timestamp(row['date']):%A}" if pd.Timestamp(row["date"]).weekday() >= 5 else "an NYSE holiday"
    return ""


def _names(items: Sequence[str], limit: int = SUMMARY_NAMES) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _refusal(result: GateResult) -> str:
    first = min(result.problems, key=lambda p: (p.date or pd.Timestamp.max, p.symbol))
    counts = result.counts()
    rest = ""
    if sum(counts.values()) > first.count:
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(counts.items()))
        rest = f"; found in all: {kinds}"
    return (f"data quality: {first.line()}{rest}; fix the data, or set data.quality: drop (leave bad "
            f"bars out) or warn (keep them) in the profile")


def _log_gate(result: GateResult, policy: str, origin: str) -> None:
    files = sorted({p.origin for p in result.problems if p.origin}) or ([origin] if origin else [])
    where = f" [{', '.join(files)}]" if files else ""
    by_kind: dict[str, list[BarProblem]] = {}
    for problem in result.problems:
        by_kind.setdefault(problem.kind, []).append(problem)
    for kind, items in by_kind.items():
        keep = policy == "warn" and CHECKS[kind][1]
        verb = "kept" if keep else "left out"
        n = sum(p.count for p in items)
        listed = _names([f"{p.symbol or '(blank)'} {p.date.date() if p.date is not None else '-'}"
                         for p in sorted(items, key=lambda p: (p.date or pd.Timestamp.max, p.symbol))])
        scope = " (whole symbols)" if kind == "unadjusted_split" and not keep else ""
        _log_once(("gate", kind, tuple((p.symbol, p.date, p.count) for p in items)),
                  f"data quality: {verb} {n} bar(s) with {CHECKS[kind][0]}{scope} ({kind}): {listed}{where}",
                  kind=kind, count=n)
        for problem in items:
            logger.debug("data quality: {line}", line=problem.line())
    if result.lost_days:
        logger.info("data: {n} row(s) without any price (days the source lost) left out as missing bars{w}",
                    n=result.lost_days, w=where)
    if result.collapsed:
        logger.info("data: {n} identical duplicate row(s) collapsed{w}", n=result.collapsed, w=where)


def _log_once(key: tuple[object, ...], line: str, **fields: Any) -> None:
    """WARNING the first time this process sees ``key``, DEBUG after (a live loop re-reads its bars)."""
    level = "DEBUG" if key in _LOGGED else "WARNING"
    _LOGGED.add(key)
    logger.bind(**fields).log(level, line)


def _canonical(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.reset_index(drop=True)
    if "file" in out.columns:
        out = out.drop(columns=["file"])
    if "volume" not in out.columns:
        out["volume"] = 0.0
    volume = out["volume"].to_numpy(dtype="float64")
    if np.isnan(volume).any():
        out["volume"] = np.nan_to_num(volume, nan=0.0)
    elif out["volume"].dtype != np.float64:
        out["volume"] = volume
    if isinstance(out["symbol"].dtype, pd.CategoricalDtype):
        out["symbol"] = used_categories(out["symbol"])
    for column in PRICES:
        out[column] = out[column].astype("float64")
    out["date"] = out["date"].astype("datetime64[ns]")
    return out[["symbol", "date", *BAR_COLUMNS]]


# ------------------------------------------------------------------ freshness (live cycles)

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

    def to_dict(self) -> dict[str, Any]:
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


def _row_issues(long: pd.DataFrame, today: pd.Timestamp,
                sessions: Callable[..., pd.DatetimeIndex]) -> list[QualityIssue]:
    """The bar checks of the gate, one issue per (check, symbol) with the first date and a count."""
    frame, codes = _sorted(long)
    flags = bar_flags(frame, codes, today=today, sessions=sessions)
    issues = []
    for kind, mask in flags.items():
        if not mask.any():
            continue
        hit = frame.loc[mask, ["symbol", "date"]]
        for symbol, rows in hit.groupby("symbol", sort=True, observed=True):
            issues.append(QualityIssue(kind, str(symbol), pd.Timestamp(rows["date"].min()),
                                       f"{len(rows)} row(s)"))
    return issues


def gap_issues(spans: pd.DataFrame, long: pd.DataFrame, sessions: pd.DatetimeIndex) -> list[QualityIssue]:
    """Missing sessions/days between each symbol's first and last bar (``spans``: symbol, min,
    max, nunique of ``long``'s dates per symbol; NYSE ``sessions`` covering them)."""
    arrays = _Spans.of(spans)
    return _gaps(arrays, *_has_matrix(arrays.symbols, long), sessions)


def _has_matrix(symbols: list[str], long: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct dates, has-bar matrix dates x ``symbols``) of a long frame."""
    codes, dates = pd.factorize(pd.DatetimeIndex(long["date"]), sort=True)
    column = pd.Index(symbols).get_indexer(long["symbol"].astype(str))
    has = np.zeros((len(dates), len(symbols)), dtype=bool)
    has[codes[column >= 0], column[column >= 0]] = True
    return np.asarray(dates, dtype="datetime64[ns]"), has


@attrs.frozen
class _Spans:
    """Per symbol with bars: its first and last bar dates and its count of bar dates (arrays)."""

    symbols: list[str]
    first: np.ndarray
    last: np.ndarray
    count: np.ndarray

    @classmethod
    def of(cls, spans: pd.DataFrame) -> _Spans:
        """From a ``groupby(symbol)["date"].agg(["min", "max", "nunique"])`` frame."""
        return cls([str(s) for s in spans["symbol"].tolist()], spans["min"].to_numpy(dtype="datetime64[ns]"),
                   spans["max"].to_numpy(dtype="datetime64[ns]"), spans["nunique"].to_numpy())


@functools.lru_cache(maxsize=16)
def _crypto_mask(symbols: tuple[str, ...]) -> np.ndarray:
    """:func:`is_crypto` of each symbol (a live loop asks for the same universe every cycle)."""
    mask = np.array([is_crypto(s) for s in symbols], dtype=bool)
    mask.setflags(write=False)
    return mask


def _gaps(spans: _Spans, dates: np.ndarray, has: np.ndarray, sessions: pd.DatetimeIndex) -> list[QualityIssue]:
    """:func:`gap_issues` on a has-bar matrix (sorted distinct ``dates`` x ``spans``' symbols), all
    symbols at once: an equity's calendar is the NYSE sessions of its span, a crypto's every day of
    it. Only symbols with fewer bars than calendar days in their span are looked at closely."""
    symbols, firsts, lasts, counts = spans.symbols, spans.first, spans.last, spans.count
    crypto = _crypto_mask(tuple(symbols))
    found: dict[int, QualityIssue] = {}
    for cols, unit in ((np.flatnonzero(~crypto), "NYSE session(s)"), (np.flatnonzero(crypto), "day(s)")):
        if not len(cols):
            continue
        if unit.startswith("NYSE"):
            days = np.asarray(sessions, dtype="datetime64[ns]")
        else:
            lo, hi = firsts[cols].min(), lasts[cols].max()
            days = lo + np.arange((hi - lo) // np.timedelta64(1, "D") + 1) * np.timedelta64(1, "D")
        expected = (np.searchsorted(days, lasts[cols], side="right")
                    - np.searchsorted(days, firsts[cols], side="left"))
        cols = cols[counts[cols] < expected]  # every other symbol has a bar on each day of its span
        if not len(cols):
            continue
        inside = (days[:, None] >= firsts[cols]) & (days[:, None] <= lasts[cols])
        rows = date_positions(dates, days)
        bar = np.zeros(inside.shape, dtype=bool)
        bar[rows >= 0] = has[rows[rows >= 0]][:, cols]
        missing = inside & ~bar
        n_missing, first_missing = missing.sum(axis=0), missing.argmax(axis=0)
        for k in np.flatnonzero(n_missing > 0):
            found[int(cols[k])] = QualityIssue("gap", symbols[cols[k]], pd.Timestamp(days[first_missing[k]]),
                                               f"{int(n_missing[k])} {unit} without a bar")
    return [found[j] for j in sorted(found)]


def _presence(bars: Panel, symbols: list[str]) -> tuple[_Spans, np.ndarray, np.ndarray, np.ndarray]:
    """(spans, dates, has-bar matrix, row of each of ``symbols`` in spans or -1) of ``symbols`` in a
    Panel, read off its closes (a Panel's bar: :attr:`Panel.has_bar`; the gate keeps no bar without
    all four prices), spans as ``groupby(symbol)`` of its long frame would give."""
    close = bars.close
    dates = np.asarray(close.index, dtype="datetime64[ns]")
    values = close.to_numpy(dtype="float64")
    columns = close.columns
    if len(columns) == len(symbols) and columns.tolist() == symbols:  # the usual case: no gather
        has = ~np.isnan(values)
        known = np.ones(len(symbols), dtype=bool)
    else:
        cols = columns.get_indexer(pd.Index(symbols, dtype=object))
        known = cols >= 0
        has = ~np.isnan(values[:, cols[known]])
    present = np.zeros(len(symbols), dtype=bool)
    present[known] = has.any(axis=0)
    keep = present[known]
    if not keep.all():
        has = has[:, keep]
    rows = np.where(present, np.cumsum(present) - 1, -1)
    names = [s for s, p in zip(symbols, present.tolist(), strict=True) if p]
    first = dates[has.argmax(axis=0)]
    last = dates[len(dates) - 1 - has[::-1].argmax(axis=0)]
    return _Spans(names, first, last, has.sum(axis=0)), dates, has, rows


def check_quality(bars: pd.DataFrame | Panel, now: pd.Timestamp | str, *,
                  universe: Iterable[str] | None = None, max_lag_sessions: int = 0,
                  max_stale_fraction: float = 0.2, settle_minutes: int = 30,
                  sessions: Callable[..., pd.DatetimeIndex] = nyse_sessions,
                  check_gaps: bool = True, check_rows: bool | None = None) -> QualityReport:
    """Check ``bars`` at ``now`` (see the module docstring); one summary line per kind.

    ``check_rows`` (default: for a long frame, not for a :class:`Panel`, which the engines build
    from bars the gate already judged) also reports the gate's bar checks. A Panel is judged on
    its arrays (no long frame, no per-symbol Python loop but over the problems found)."""
    now = as_utc(now)
    if universe is None and isinstance(bars, Panel):
        universe = bars.symbols  # a column without any bar is a symbol without data
    if check_rows is None:
        check_rows = not isinstance(bars, Panel)
    report = QualityReport()
    report.expected = {"equity": expected_last_bar("SPY", now, max_lag_sessions, settle_minutes),
                       "crypto": expected_last_bar("BTC/USD", now, max_lag_sessions, settle_minutes)}
    if isinstance(bars, Panel) and not check_rows:  # a live cycle's: from the wide arrays, no long frame
        symbols = sorted(set(universe or ()))
        spans, dates, has, rows = _presence(bars, symbols)
        long = None
    else:
        long = _as_long(bars)
        long = long.assign(date=pd.to_datetime(long["date"]).astype("datetime64[ns]"),
                           symbol=long["symbol"].astype(str))
        symbols = sorted(set(universe) if universe is not None else set(long["symbol"]))
        long = long[long["symbol"].isin(symbols)]
        if check_rows and len(long):
            report.issues.extend(_row_issues(long, now.tz_localize(None), sessions))
        spans = _Spans.of(long.groupby("symbol", sort=True)["date"].agg(["min", "max", "nunique"]).reset_index())
        row_of = {s: i for i, s in enumerate(spans.symbols)}
        rows = np.array([row_of.get(s, -1) for s in symbols], dtype=np.int64)
    crypto = _crypto_mask(tuple(symbols))
    lasts = spans.last[np.maximum(rows, 0)] if len(spans.symbols) else \
        np.full(len(symbols), np.datetime64("NaT"), dtype="datetime64[ns]")
    due = np.where(crypto, report.expected["crypto"].to_datetime64(), report.expected["equity"].to_datetime64())
    late = (rows < 0) | (lasts < due)
    stale_by_group: dict[str, list[str]] = {"equity": [], "crypto": []}
    members = {"equity": int((~crypto).sum()), "crypto": int(crypto.sum())}
    for k in np.flatnonzero(late):  # in symbol order, as the symbols are
        symbol, group = symbols[k], "crypto" if crypto[k] else "equity"
        if rows[k] < 0:
            report.issues.append(QualityIssue("no_bars", symbol, None, "no bar at all"))
        else:
            last = pd.Timestamp(lasts[k])
            report.issues.append(QualityIssue("stale", symbol, last, f"last bar {last.date()}, expected "
                                                                     f"{report.expected[group].date()}"))
        stale_by_group[group].append(symbol)
    if check_gaps and len(spans.symbols):
        calendar = sessions(pd.Timestamp(spans.first.min()), pd.Timestamp(spans.last.max()))
        if long is not None:
            dates, has = _has_matrix(spans.symbols, long)
        report.issues.extend(_gaps(spans, dates, has, calendar))
    reasons = []
    for group, stale in stale_by_group.items():
        if members[group] and len(stale) / members[group] > max_stale_fraction:
            reasons.append(f"stale {group} data: {len(stale)} of {members[group]} symbol(s) have "
                           f"no bar for {report.expected[group].date()} (e.g. {', '.join(stale[:5])})")
    if reasons:
        report.halt_entries = True
        report.reason = "; ".join(reasons) + "; new entries halted for this cycle"
    _log_issues(report.issues)
    return report


def _log_issues(issues: Sequence[QualityIssue]) -> None:
    """One line per kind: the count and the first few symbols; every issue at DEBUG."""
    by_kind: dict[str, list[QualityIssue]] = {}
    for issue in issues:
        by_kind.setdefault(issue.kind, []).append(issue)
    for kind, items in by_kind.items():
        key = ("check", kind, tuple((i.symbol, i.date, i.detail) for i in items))
        first = items[0]
        sample = f"{first.detail}" if len(items) == 1 else f"e.g. {first.symbol}: {first.detail}"
        _log_once(key, f"data quality: {kind}: {len(items)} symbol(s) ({_names([i.symbol for i in items])}); "
                       f"{sample}", kind=kind, count=len(items))
        for issue in items:
            logger.debug("data quality: {line}", line=issue.line())
