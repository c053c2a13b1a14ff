"""Signals -> decisions: the one place where a strategy's wide frames become per-date decisions.

The backtest builds a :class:`DecisionTable` once per run and reads it date by date; the live
cycle (and ``Signals.row``) reads the last date of a table built over its lookback window.
Both get the very same :class:`~hybrid_core.contracts.Decision`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..contracts import Decision, Signals


class RowPrices(Mapping[str, float]):
    """A read-only view of one row of a wide price array as ``{symbol: price}``; NaN reads as absent."""

    __slots__ = ("_row", "_index")

    def __init__(self, row: Sequence[float], index: Mapping[str, int]) -> None:
        self._row = row
        self._index = index

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        j = self._index.get(key)
        if j is None:
            return default
        value = float(self._row[j])
        return default if value != value else value

    def __getitem__(self, key: str) -> float:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        return self.get(key) is not None  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[str]:
        return (s for s, j in self._index.items() if self._row[j] == self._row[j])

    def __len__(self) -> int:
        return sum(1 for _ in self)


def plain(value: Any) -> Any:
    """A numpy scalar as a plain Python value (NaN as None), for logs and the audit trail."""
    if isinstance(value, (np.floating, float)):
        return None if math.isnan(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


class DecisionTable:
    """A strategy's signals as numpy arrays aligned on a run's dates, read one date at a time.

    :meth:`at` limits exits and keeps to held symbols when given ``held``, which is all the
    planner looks at (a weekly strategy "exits" hundreds of unheld names).
    ``with_info=False`` leaves ``Decision.info`` empty (the backtest does not log signals).
    """

    def __init__(self, signals: Signals, strategy: str, dates: Sequence[pd.Timestamp] | pd.DatetimeIndex, *,
                 with_info: bool = True) -> None:
        index = pd.DatetimeIndex(signals.entry.index)
        self.strategy = strategy
        self.exit_reason = signals.exit_reason
        self.symbols = [str(s) for s in signals.entry.columns]
        self.column = {s: j for j, s in enumerate(self.symbols)}
        self.dates = list(index)
        self.entry = _bool_array(signals.entry, index, self.symbols)
        self.exit = _bool_array(signals.exit, index, self.symbols)
        self.keep = _bool_array(signals.keep, index, self.symbols)
        self.weight = signals.weight.reindex(index=index, columns=self.symbols).to_numpy(
            dtype="float64", na_value=np.nan)
        self.decided = signals.decided.reindex(index).fillna(False).to_numpy(dtype=bool)
        self.info = ({k: _array(v.reindex(index=index, columns=self.symbols)) for k, v in signals.info.items()}
                     if with_info else None)
        active = self.decided | self.entry.any(axis=1) | self.exit.any(axis=1) | self.keep.any(axis=1)
        where = pd.DatetimeIndex(dates).get_indexer(index)
        self.row_of = np.full(len(dates), -1, dtype=np.int64)
        ok = (where >= 0) & active
        self.row_of[where[ok]] = np.flatnonzero(ok)

    def at(self, i: int, held: Mapping[str, Any] | None = None) -> Decision | None:
        """The decision at position ``i`` of the run's dates, or None when the strategy did nothing.

        With ``held``, exits and keeps list only symbols in ``held``.
        """
        r = int(self.row_of[i])
        if r < 0:
            return None
        info = None if self.info is None else {k: a[r] for k, a in self.info.items()}
        return _decision(self.dates[r], bool(self.decided[r]), self.symbols, self.column, self.entry[r],
                         self.exit[r], self.keep[r], self.weight[r], info, self.exit_reason, self.strategy, held)


def decision_at(signals: Signals, date: pd.Timestamp, strategy: str = "",
                held: Mapping[str, Any] | None = None) -> Decision:
    """The decision of one date (an empty, undecided one when the strategy did nothing then).

    Reads only that date's row of each frame (the live cycle's last row), then builds the
    decision exactly as :meth:`DecisionTable.at` does."""
    index = signals.entry.index
    if date not in index:
        return Decision(date=date, decided=False, exit_reason=signals.exit_reason, strategy=strategy)
    symbols = [str(s) for s in signals.entry.columns]
    at = index.get_loc(date)

    def row_of(frame: pd.DataFrame) -> pd.Series:
        if isinstance(at, int) and frame.index.equals(index) and frame.columns.equals(signals.entry.columns):
            return frame.iloc[at]  # aligned (the usual case): by position, no label lookups
        return frame.loc[date].reindex(signals.entry.columns)

    def row(frame: pd.DataFrame, dtype: str) -> np.ndarray:
        values = row_of(frame)
        if dtype == "bool":
            return values.fillna(False).to_numpy(dtype=bool) if values.dtype != bool else values.to_numpy()
        return values.to_numpy(dtype="float64", na_value=np.nan)

    entry, exit_, keep = row(signals.entry, "bool"), row(signals.exit, "bool"), row(signals.keep, "bool")
    flag = signals.decided.get(date, False)
    decided = bool(flag) if pd.notna(flag) else False
    if not (decided or entry.any() or exit_.any() or keep.any()):
        return Decision(date=date, decided=False, exit_reason=signals.exit_reason, strategy=strategy)
    info = {k: _info_row(v, row_of(v)) for k, v in signals.info.items()}
    return _decision(date, decided, symbols, {s: j for j, s in enumerate(symbols)}, entry, exit_, keep,
                     row(signals.weight, "float"), info, signals.exit_reason, strategy, held)


def _info_row(frame: pd.DataFrame, values: pd.Series) -> np.ndarray:
    """One date's row of an info frame, as :func:`_array` gives the whole frame."""
    if _numeric(frame):
        return values.to_numpy(dtype="float64", na_value=np.nan)
    return values.to_numpy(dtype=object)


def _numeric(frame: pd.DataFrame) -> bool:
    """True when every column is numeric or bool (read as float64, NaN for missing)."""
    return all(pd.api.types.is_numeric_dtype(t) or pd.api.types.is_bool_dtype(t) for t in set(frame.dtypes))


def _decision(date: pd.Timestamp, decided: bool, symbols: list[str], column: Mapping[str, int],
              entry: np.ndarray, exit_: np.ndarray, keep: np.ndarray, weight: np.ndarray,
              info_rows: Mapping[str, np.ndarray] | None, exit_reason: str, strategy: str,
              held: Mapping[str, Any] | None) -> Decision:
    """One decision from one date's rows (aligned on ``symbols``): the single place both readers use."""
    entry_cols = np.flatnonzero(entry).tolist()
    if held is None:
        exit_cols = np.flatnonzero(exit_).tolist()
        keep_cols = np.flatnonzero(keep).tolist()
    else:
        cols = np.array([j for j in map(column.get, held) if j is not None], dtype=np.intp)
        exit_cols = cols[exit_[cols]].tolist()
        keep_cols = cols[keep[cols]].tolist()
    info: dict[str, dict[str, Any]] = {}
    if info_rows is not None:
        info = {symbols[j]: {k: plain(row[j]) for k, row in info_rows.items()}
                for j in {*entry_cols, *exit_cols, *keep_cols}}
    return Decision(date=date, decided=decided,
                    entries=dict(zip([symbols[j] for j in entry_cols], weight[entry_cols].tolist(), strict=True)),
                    exits=[symbols[j] for j in exit_cols], keeps=[symbols[j] for j in keep_cols],
                    exit_reason=exit_reason, info=info, strategy=strategy)


def _array(frame: pd.DataFrame) -> np.ndarray:
    if _numeric(frame):
        return frame.to_numpy(dtype="float64", na_value=np.nan)
    return frame.to_numpy()


def _bool_array(frame: pd.DataFrame, index: pd.DatetimeIndex, symbols: list[str]) -> np.ndarray:
    aligned = frame.reindex(index=index, columns=symbols)
    if aligned.isna().any().any():
        aligned = aligned.fillna(False)
    return aligned.to_numpy(dtype=bool)
