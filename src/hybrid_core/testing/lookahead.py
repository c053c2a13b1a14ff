"""No-lookahead check for strategies: signals must not change when future bars are removed.

A strategy decides at the close of t from bars up to t. So its signals up to a date c must
be the same whether it sees the whole panel or the panel cut at c. This module runs the
strategy on the full panel and on panels truncated at several cut dates, compares
``entry``, ``exit``, ``keep``, ``decided`` and ``weight`` (weights where either run enters)
up to each cut, and reports the first difference::

    from hybrid_core.testing.lookahead import assert_no_lookahead
    assert_no_lookahead(MyStrategy(universe=["AAPL", "MSFT"]), panel)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar

import attrs
import numpy as np
import pandas as pd
from loguru import logger

from ..contracts import Panel, Signals, Strategy
from ..errors import HybridError, StrategyError

FLAG_FIELDS = ("entry", "exit", "keep")
FlagsT = TypeVar("FlagsT", pd.DataFrame, pd.Series)
WEIGHT_TOLERANCE = 1e-12
"""Relative tolerance on weights (they are ratios such as 0.7 / n, equal to the last bit)."""


@attrs.frozen
class LookaheadReport:
    """Result of :func:`check_no_lookahead`: ``ok``, or the first difference found.

    ``date``/``symbol``/``field`` locate the first cell (earliest date, then symbol) where the
    run on the panel cut at ``cut_date`` differs from the full run; ``full_value`` and
    ``cut_value`` are the two values.
    """

    strategy: str
    cut_dates: tuple[pd.Timestamp, ...]
    ok: bool
    cut_date: pd.Timestamp | None = None
    date: pd.Timestamp | None = None
    symbol: str | None = None
    field: str | None = None
    full_value: Any = None
    cut_value: Any = None

    @property
    def message(self) -> str:
        """One line for a user: what was checked, or where the strategy looked ahead."""
        cuts = len(self.cut_dates)
        if self.ok:
            return f"{self.strategy}: no lookahead found ({cuts} cut date(s))"
        where = f"{self.date.date() if self.date is not None else '?'}"
        if self.symbol is not None:
            where += f" {self.symbol}"
        cut = self.cut_date.date() if self.cut_date is not None else "?"
        return (f"{self.strategy}: lookahead: {self.field} on {where} is {self.full_value!r} with the full "
                f"panel but {self.cut_value!r} with the panel cut at {cut}; signals at a date must use "
                f"only bars up to that date")

    def __bool__(self) -> bool:
        return self.ok


def truncate_panel(panel: Panel, end: pd.Timestamp) -> Panel:
    """The panel with every date after ``end`` removed (nothing else changed): :meth:`Panel.until`."""
    return panel.until(end)


def default_cut_dates(panel: Panel, n_cuts: int = 8) -> list[pd.Timestamp]:
    """``n_cuts`` dates spread evenly between 10% of the panel and its second-to-last date.

    Evenly spaced positions land on every weekday over time, including the middle of a
    week, where a weekly strategy that reads "the last date of the data" would differ.
    """
    dates = panel.dates
    if len(dates) < 3 or n_cuts < 1:
        return []
    first, last = max(1, len(dates) // 10), len(dates) - 2
    positions = np.unique(np.linspace(first, last, num=n_cuts).round().astype(int))
    return [dates[i] for i in positions]


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence loguru while a strategy runs on a truncated panel (errors still raise)."""
    logger.disable("")
    try:
        yield
    finally:
        logger.enable("")


def _run(strategy: Strategy, panel: Panel, label: str) -> Signals:
    try:
        return strategy.signals(panel)
    except Exception as exc:
        cause = _user_error(exc)
        if cause is None:
            raise
        raise StrategyError(f"{_name(strategy)}: signals() raised on {label}: "
                            f"{type(cause).__name__}: {cause}") from cause


def _user_error(exc: BaseException) -> BaseException | None:
    """The strategy's own exception: ``exc`` itself, or the one a StrategyError wraps; None for
    other hybrid errors, which pass through unchanged."""
    if isinstance(exc, StrategyError) and exc.__cause__ is not None:
        return exc.__cause__
    if isinstance(exc, HybridError):
        return None
    return exc


def _name(strategy: Strategy) -> str:
    """The profile name if one was given, else the component name (``Cls.name``), else the class name."""
    given = getattr(strategy, "name", "")
    if given and given != type(strategy).__name__:
        return str(given)
    component = getattr(type(strategy), "name", "")
    return component if isinstance(component, str) and component else type(strategy).__name__


def _first_difference(full: pd.DataFrame, cut: pd.DataFrame, mask: np.ndarray | None = None,
                      weights: bool = False) -> tuple[int, int] | None:
    """(row, column) of the first differing cell (earliest row, then column) of two aligned
    frames, else None; with ``mask``, only cells where it is True are compared.

    Only the compared cells are judged, one row-major pass: weights where either run enters
    (a few percent of the cells), flags all at once without an index array of every cell."""
    a, b = full.to_numpy(), cut.to_numpy()
    if weights:
        if mask is None:
            mask = np.ones(a.shape, dtype=bool)
        dates = np.flatnonzero(mask.any(axis=1))  # entries fall on a few dates (a weekly strategy's)
        at, cols = np.nonzero(mask[dates])  # row-major: the earliest date first, then columns in order
        rows = dates[at]
        x = a[rows, cols].astype("float64", copy=False)
        y = b[rows, cols].astype("float64", copy=False)
        with np.errstate(invalid="ignore"):
            same = (x == y) | (np.isnan(x) & np.isnan(y)) | (
                np.abs(x - y) <= WEIGHT_TOLERANCE * np.maximum(np.abs(x), np.abs(y)))
        bad = np.flatnonzero(~same)
        return (int(rows[bad[0]]), int(cols[bad[0]])) if len(bad) else None
    differs = a.astype(bool, copy=False) != b.astype(bool, copy=False)
    if mask is not None:
        differs &= mask
    hit = np.flatnonzero(differs.any(axis=1))
    if not len(hit):
        return None
    i = int(hit[0])
    return i, int(np.flatnonzero(differs[i])[0])


def _compare(full: Signals, cut: Signals, cut_date: pd.Timestamp) -> dict[str, Any] | None:
    """The first difference between the full run up to ``cut_date`` and the cut run, else None."""
    dates = full.entry.index[full.entry.index <= cut_date]
    columns = full.entry.columns.union(cut.entry.columns, sort=False)
    found: list[tuple[pd.Timestamp, str, str, Any, Any]] = []

    decided_full = _flags(full.decided).reindex(dates, fill_value=False)
    decided_cut = _flags(cut.decided).reindex(dates, fill_value=False)
    differs = np.flatnonzero(decided_full.to_numpy() != decided_cut.to_numpy())
    if len(differs):
        i = differs[0]
        found.append((dates[i], "", "decided", bool(decided_full.iloc[i]), bool(decided_cut.iloc[i])))

    aligned = {}
    for field in FLAG_FIELDS:
        pair = [_on(_flags(getattr(s, field)), dates, columns, False) for s in (full, cut)]
        aligned[field] = pair
        hit = _first_difference(*pair)
        if hit is not None:
            i, j = hit
            found.append((dates[i], str(columns[j]), field, bool(pair[0].iat[i, j]), bool(pair[1].iat[i, j])))

    weights = [_on(s.weight, dates, columns, np.nan) for s in (full, cut)]
    entered = aligned["entry"][0].to_numpy(dtype=bool) | aligned["entry"][1].to_numpy(dtype=bool)
    hit = _first_difference(weights[0], weights[1], mask=entered, weights=True)
    if hit is not None:
        i, j = hit
        found.append((dates[i], str(columns[j]), "weight", float(weights[0].iat[i, j]),
                      float(weights[1].iat[i, j])))
    if full.exit_reason != cut.exit_reason and len(dates):
        found.append((dates[-1], "", "exit_reason", full.exit_reason, cut.exit_reason))
    if not found:
        return None
    date, symbol, field, full_value, cut_value = min(found, key=lambda f: (f[0], f[1]))
    return {"date": date, "symbol": symbol or None, "field": field, "full_value": full_value,
            "cut_value": cut_value}


def _judged(signals: Signals) -> Signals:
    """The fields the check compares: ``info`` (the numbers behind decisions, often as many wide
    frames as the decisions) is let go while the cut runs need memory."""
    return attrs.evolve(signals, info={})


def _on(frame: pd.DataFrame, dates: pd.DatetimeIndex, columns: pd.Index, fill: Any) -> pd.DataFrame:
    """``frame`` on ``dates`` x ``columns``: its first rows when it is already laid out so (a view,
    the usual case: no copy of a long history), else reindexed with ``fill``."""
    n = len(dates)
    if frame.columns.equals(columns) and len(frame.index) >= n and frame.index[:n].equals(dates):
        return frame.iloc[:n]
    return frame.reindex(index=dates, columns=columns, fill_value=fill)


def _flags(flags: FlagsT) -> FlagsT:
    """Flags as bools (a strategy's wrongly typed flags are reported elsewhere; compared here anyway)."""
    if flags.to_numpy().dtype == bool:  # bool columns only (a view of a frame's one bool block)
        return flags
    return flags.fillna(0).astype(bool)


def check_no_lookahead(strategy: Strategy, panel: Panel, cut_dates: Iterable[Any] | None = None,
                       n_cuts: int = 8, *, full: Signals | None = None) -> LookaheadReport:
    """Compare the strategy's signals on ``panel`` with its signals on ``panel`` cut at each date.

    ``cut_dates`` default to :func:`default_cut_dates` (``n_cuts`` of them). Runs the
    strategy ``1 + len(cut_dates)`` times, or ``len(cut_dates)`` times when ``full`` gives its
    signals on ``panel`` or on a longer panel with the same first dates (a backtest's own: the
    cuts are then checked against the signals it trades on). Returns a :class:`LookaheadReport`
    (truthy when no difference is found); raises :class:`StrategyError` if the strategy itself raises.
    """
    cuts: Sequence[pd.Timestamp] = (default_cut_dates(panel, n_cuts) if cut_dates is None
                                    else sorted(pd.Timestamp(c) for c in cut_dates))
    name = _name(strategy)
    if full is None:
        full = _judged(_run(strategy, panel, "the full panel"))
    for cut_date in cuts:
        with _quiet():  # a cut panel's short history is expected here; its warm-up lines are noise
            cut = _run(strategy, truncate_panel(panel, cut_date), f"the panel cut at {cut_date.date()}")
        difference = _compare(full, cut, cut_date)
        del cut  # gone before the next cut run, whose arrays can take its place
        if difference is not None:
            return LookaheadReport(strategy=name, cut_dates=tuple(cuts), ok=False, cut_date=cut_date,
                                   **difference)
    return LookaheadReport(strategy=name, cut_dates=tuple(cuts), ok=True)


def assert_no_lookahead(strategy: Strategy, panel: Panel, cut_dates: Iterable[Any] | None = None,
                        n_cuts: int = 8) -> LookaheadReport:
    """:func:`check_no_lookahead`, raising ``AssertionError`` with the report's message on a difference."""
    report = check_no_lookahead(strategy, panel, cut_dates=cut_dates, n_cuts=n_cuts)
    if not report.ok:
        raise AssertionError(report.message)
    return report
