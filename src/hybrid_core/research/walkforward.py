"""Walk-forward analysis: choose on a training window, trade the next window, stitch what followed.

``--walk-forward train=756,test=252[,anchored]`` (sessions of the sweep's window): fold k trains on
sessions ``[k*test, k*test + train)`` (anchored: ``[0, k*test + train)``) and tests on the
``test`` sessions that follow, with no gap; the last fold's test window may be shorter. On each
fold every set is backtested on the training window, the best by the sweep's metric is chosen
(the lowest set id among ties), and that set is backtested on the test window, warm (its
signals have seen every earlier session) from a flat account with the profile's cash. The test
windows' daily returns, chained, are the out-of-sample equity curve; its summary comes from
the one statistics module, against the benchmark over the same sessions.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np
import pandas as pd

from ..engine import stats
from ..errors import HybridError
from .worker import SetOutcome

_SPEC = re.compile(r"train=(\d+),test=(\d+)(,anchored)?")


@attrs.frozen
class WalkForwardSpec:
    """Training and test lengths in sessions; anchored folds all train from the first session."""

    train: int
    test: int
    anchored: bool = False

    @classmethod
    def parse(cls, text: str) -> WalkForwardSpec:
        """``train=756,test=252[,anchored]``; raises HybridError with the expected form."""
        match = _SPEC.fullmatch(text.replace(" ", ""))
        if match is None or int(match.group(1)) < 2 or int(match.group(2)) < 1:
            raise HybridError(f"--walk-forward {text!r}: expected train=N,test=M[,anchored] with N >= 2 and M >= 1 "
                              f"sessions, e.g. train=756,test=252")
        return cls(int(match.group(1)), int(match.group(2)), bool(match.group(3)))

    def text(self) -> str:
        """The option's value."""
        return f"train={self.train},test={self.test}{',anchored' if self.anchored else ''}"


@attrs.frozen
class Fold:
    """One fold: index ranges (half-open) into the sweep's sessions, and those sessions' dates."""

    number: int
    train: tuple[int, int]
    test: tuple[int, int]
    train_dates: tuple[pd.Timestamp, pd.Timestamp]
    test_dates: tuple[pd.Timestamp, pd.Timestamp]

    @property
    def train_scope(self) -> str:
        """Journal scope of the training runs (by dates, so other specs reuse matching windows)."""
        return f"train {_day(self.train_dates[0])}..{_day(self.train_dates[1])}"

    @property
    def test_scope(self) -> str:
        """Journal scope of the test run."""
        return f"test {_day(self.test_dates[0])}..{_day(self.test_dates[1])}"


def _day(stamp: pd.Timestamp) -> str:
    return str(pd.Timestamp(stamp).date())


def make_folds(dates: pd.DatetimeIndex, spec: WalkForwardSpec) -> list[Fold]:
    """The folds over ``dates``; refuses a window too short for one full fold."""
    n = len(dates)
    if n < spec.train + spec.test:
        first, last = (_day(dates[0]), _day(dates[-1])) if n else ("?", "?")
        raise HybridError(f"--walk-forward {spec.text()} needs at least {spec.train + spec.test} sessions; the window "
                          f"{first}..{last} has {n}; use shorter windows or a longer --start/--end")
    folds = []
    k = 0
    while k * spec.test + spec.train < n:
        lo = 0 if spec.anchored else k * spec.test
        mid = k * spec.test + spec.train
        hi = min(mid + spec.test, n)
        folds.append(Fold(k, (lo, mid), (mid, hi), (dates[lo], dates[mid - 1]), (dates[mid], dates[hi - 1])))
        k += 1
    return folds


def best_set(outcomes: Sequence[SetOutcome], metric: str) -> SetOutcome | None:
    """The outcome with the highest ``metric`` (NaN never wins; ties go to the lowest set id)."""
    scored = [o for o in outcomes if o.ok and _finite(o.metrics.get(metric))]
    if not scored:
        return None
    return max(sorted(scored, key=lambda o: o.set_id), key=lambda o: float(o.metrics[metric]))


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(float(value))


@attrs.frozen
class WalkForwardResult:
    """Per-fold choices and test results, the stitched out-of-sample curve and its summary."""

    spec: WalkForwardSpec
    folds: pd.DataFrame
    equity: pd.DataFrame
    """Out-of-sample ``value`` (and ``benchmark``) by date, chained from the profile's cash."""
    summary: dict[str, Any]


def stitch(spec: WalkForwardSpec, folds: Sequence[Fold], chosen: Sequence[SetOutcome | None],
           tests: Sequence[SetOutcome | None], labels: dict[int, str], metric: str, cash: float,
           benchmark: tuple[str, pd.Series]) -> WalkForwardResult:
    """Chain the test windows into one out-of-sample curve and summarise it.

    Each fold's test run started from ``cash``; its values are scaled so that it starts where the
    previous fold ended (returns compound). A fold whose training gave no usable set, or whose test
    run failed, stays flat (its sessions earn nothing) and is said so in ``folds``.
    """
    rows, frames, trade_frames = [], [], []
    level = 1.0
    for fold, pick, test in zip(folds, chosen, tests, strict=True):
        row: dict[str, Any] = {"fold": fold.number, "train_start": fold.train_dates[0],
                               "train_end": fold.train_dates[1], "test_start": fold.test_dates[0],
                               "test_end": fold.test_dates[1], "set_id": pick.set_id if pick else None,
                               "parameters": labels.get(pick.set_id, "") if pick else "",
                               f"train_{metric}": pick.metrics.get(metric) if pick else math.nan}
        if pick is None or test is None or not test.ok or test.equity is None:
            row["note"] = ("no set with a finite metric on the training window" if pick is None
                           else f"test run failed: {test.error if test else 'not run'}")
            dates = benchmark[1].index[fold.test[0]:fold.test[1]]
            flat = pd.DataFrame({"value": cash, "cash": cash, "exposure": 0.0}, index=dates)
            frames.append(flat * level)
        else:
            row["note"] = ""
            row.update({f"test_{k}": v for k, v in test.metrics.items()})
            frames.append(test.equity[["value", "cash", "exposure"]] * level)
            trades = test.trades.copy() if test.trades is not None else pd.DataFrame()
            if len(trades):
                trades["pnl"] = trades["pnl"] * level  # in the stitched curve's money, like the values
                trade_frames.append(trades)
        level = float(frames[-1]["value"].iloc[-1]) / cash
        rows.append(row)
    equity = pd.concat(frames)
    equity.index.name = "date"
    trades_all = pd.concat(trade_frames, ignore_index=True) if trade_frames else _no_trades()
    bench = benchmark[1].reindex(equity.index)
    bench_values = bench / float(bench.iloc[0]) * cash
    summary = stats.summarize(equity, trades_all, [], cash, benchmark=(benchmark[0], bench_values))
    for key in ("traded_value", "annual_turnover"):  # no fills are kept across folds
        summary["total"].pop(key, None)
    summary = {"walk_forward": spec.text(), "folds": len(folds), "start": _day(equity.index[0]),
               "end": _day(equity.index[-1]), "sessions": len(equity), **summary}
    out_equity = pd.DataFrame({"value": equity["value"], "benchmark": bench_values})
    return WalkForwardResult(spec, pd.DataFrame(rows), out_equity, summary)


def _no_trades() -> pd.DataFrame:
    return pd.DataFrame({"entry_date": pd.DatetimeIndex([]), "exit_date": pd.DatetimeIndex([]),
                         "pnl": np.zeros(0), "exit_reason": pd.Series([], dtype=object)})
