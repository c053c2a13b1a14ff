"""EquityReversal: the weekly bottom-decile reversal of STRATEGIES.md, vectorised over a panel.

Score at a rebalance close t: ``close_t / close_{t-k} - 1`` where t-k is the k-th session of
the exchange calendar before t (k = ``lookback_sessions``, 5), using adjusted closes. The
rebalance days are the last sessions of ISO weeks according to the calendar, so the same
dates come out of a 20-year backtest and of a live run on a short lookback window.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from typing import Any

import attrs
import numpy as np
import pandas as pd
from loguru import logger

from hybrid_core.contracts import Panel, Signals, Strategy, date_positions, is_crypto, symbol_index
from hybrid_core.contracts import column_positions as core_column_positions
from hybrid_core.errors import ProfileError

from .sessions import (
    days_between,
    is_known_calendar,
    next_week_end_session,
    session_days,
    week_end_days,
    week_end_sessions,
)


def _fraction_up_to_one(instance: Any, attribute: attrs.Attribute, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise ValueError(f"{attribute.name} must be a number in (0, 1], got {value!r}")


def _positive_int(instance: Any, attribute: attrs.Attribute, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{attribute.name} must be a whole number >= 1, got {value!r}")


def _calendar_name(instance: Any, attribute: attrs.Attribute, value: str) -> None:
    if not isinstance(value, str) or not is_known_calendar(value):
        raise ValueError(f"{attribute.name} {value!r} is not an exchange_calendars name (e.g. 'XNYS')")


def default_sp500_universe() -> list[str]:
    """The S&P 500 constituents of April 2021 shipped with the plugin (one symbol a line)."""
    text = resources.files(__package__).joinpath("sp500_constituents.txt").read_text()
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def closes_at(panel: Panel, rows: np.ndarray, symbols: Sequence[str] | np.ndarray) -> np.ndarray:
    """Closes of ``symbols`` on panel rows ``rows`` (row -1: none), NaN where there is no positive close.

    ``symbols`` may also be the symbols' column positions in the panel (:func:`column_positions`,
    -1: not in the panel). Gathers only the rows asked for, so a 20-year panel is never copied whole,
    and reads them a symbol at a time, the panel's layout (a row of it spans the whole panel)."""
    values = panel.close.to_numpy(dtype="float64")
    cols = symbols if isinstance(symbols, np.ndarray) else column_positions(panel, symbols)
    rows = np.asarray(rows, dtype="int64")
    if not values.size:
        return np.full((len(rows), len(cols)), np.nan)
    by_symbol = values.T  # a symbol's dates side by side
    out = by_symbol[np.ix_(np.maximum(cols, 0), np.maximum(rows, 0))].T
    out[rows < 0] = np.nan
    out[:, cols < 0] = np.nan
    out[out <= 0] = np.nan  # NaN stays NaN
    return out


def column_positions(panel: Panel, symbols: Sequence[str] | pd.Index) -> np.ndarray:
    """Positions of ``symbols`` among the panel's columns (-1 where absent; the core's kept answer)."""
    return core_column_positions(panel.close.columns, symbols.tolist() if isinstance(symbols, pd.Index) else
                                 [str(s) for s in symbols])


def select_lowest(scores: np.ndarray, decile: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row: the ``max(1, floor(n_valid * decile))`` lowest scores, ties by column order.

    Returns (selected bool array, ranks with 1 = lowest and NaN for unscored, n per row;
    n is 0 for a row without any score). Columns must be sorted by symbol name: equal
    scores are ranked in column order, which breaks ties by symbol name.
    """
    valid = ~np.isnan(scores)
    n_valid = valid.sum(axis=1)
    n = np.where(n_valid > 0, np.maximum(1, np.floor(n_valid * decile)), 0).astype("int64")
    ranks = np.full(scores.shape, np.nan)
    for i in np.flatnonzero(n_valid):
        scored = np.flatnonzero(valid[i])
        ranks[i, scored[stable_order(scores[i, scored])]] = np.arange(1.0, len(scored) + 1)
    return ranks <= n[:, None], ranks, n


def stable_order(values: np.ndarray) -> np.ndarray:
    """``values.argsort(kind="stable")`` (equal values keep their order) for values without NaN,
    from numpy's fast unstable sort: equal values are put back in order only where there are some."""
    order = values.argsort()
    ordered = values[order]
    new_value = ordered[1:] != ordered[:-1]
    if new_value.all():
        return order
    run = np.zeros(len(values), dtype=np.int64)  # number of the run of equal values at each place
    np.cumsum(new_value, out=run[1:])
    return np.sort(run * len(values) + order) % len(values)  # runs in order, then places in a run


class EquityReversal(Strategy):
    """Buys the 10% worst 5-session losers at each week's last NYSE close; sells them when not re-selected.

    - Rebalance day: the last NYSE session of each ISO week (Thursday when Friday is a
      holiday), from the exchange calendar, never inferred from where the data stops.
    - Score at t: ``close_t / close_{t-5} - 1``, t-5 being the 5th calendar session before
      t; only symbols with a bar on both dates take part.
    - Selection: the ``n = max(1, floor(n_valid * decile))`` lowest scores, ties broken by
      symbol name. Selected names are entries (bought with weight ``allocation / n``) and
      keeps (their time-stop count restarts); every other universe name is an exit
      (``exit_reason = "rebalance"``).
    - Other dates: no decision (``decided`` False, every flag False).

    Data ending mid-week: STRATEGIES.md lets a backtest treat its last session as that week's
    rebalance day, whose orders never fill, so trades are the same whether it does or not.
    This strategy does not: its rebalance days come from the calendar only, so its signals
    never depend on where the data stops (the no-lookahead check holds at every cut) and the
    live cycle, which runs at every close, rebalances only on the true last session of the week.
    """

    name = "equity_reversal"

    @attrs.define(kw_only=True)
    class Params:
        """Parameters of :class:`EquityReversal` (defaults from STRATEGIES.md)."""

        decile: float = attrs.field(default=0.10, validator=_fraction_up_to_one)
        """Fraction of scored symbols bought at each rebalance (at least one name)."""
        lookback_sessions: int = attrs.field(default=5, validator=_positive_int)
        """Sessions of the score's return: close_t / close_{t-lookback_sessions} - 1."""
        calendar: str = attrs.field(default="XNYS", validator=_calendar_name)
        """exchange_calendars name giving the sessions and the weekly rebalance days."""

    def __init__(self, params: Any = None, *, name: str = "", universe: Sequence[str] | None = None,
                 allocation: float = 0.7) -> None:
        super().__init__(params, name=name or self.name, universe=universe, allocation=allocation)
        crypto = [s for s in self.universe if is_crypto(s)]
        if crypto:
            raise ProfileError(f"strategy {self.name!r} trades exchange-listed equities, but its universe "
                               f"holds crypto pair(s) {', '.join(crypto[:5])}; move them to a crypto "
                               f"strategy")

    def default_universe(self) -> Sequence[str]:
        """The S&P 500 constituents (April 2021) shipped with the plugin."""
        return default_sp500_universe()

    def lookback(self) -> int:
        """Sessions one live decision needs: the score's k sessions plus two weeks of margin."""
        return 2 * self.params.lookback_sessions + 10

    # -- signals -------------------------------------------------------------------------

    def signals(self, panel: Panel) -> Signals:
        """Entries, exits and keeps on each rebalance day of ``panel``; nothing on other dates.

        Errors in here reach the engine as a StrategyError naming the strategy (the core wraps it)."""
        columns = self._columns()
        index = pd.DatetimeIndex(panel.close.index)
        shape = (len(index), len(columns))
        score, rank = np.full(shape, np.nan), np.full(shape, np.nan)
        entry, exit_, weight = np.zeros(shape, bool), np.zeros(shape, bool), np.zeros(shape)
        decided = np.zeros(len(index), bool)
        if len(index):
            days = np.asarray(index, dtype="datetime64[ns]")  # numpy from here: no pandas per-call cost
            sessions = days_between(session_days(self.params.calendar), days[0], days[-1])
            rows = date_positions(days, days_between(week_end_days(self.params.calendar), days[0], days[-1]))
            rows = rows[rows >= 0]
            cols = column_positions(panel, columns)
            self._warn_off_calendar(panel, cols, index, sessions)
            close, day_scores = self._scores(panel, cols, days, rows, sessions)
            chosen, ranks, n = select_lowest(day_scores, self.params.decile)
            self._log_unscored(columns, close, day_scores, n, days[rows])
            score[rows], rank[rows], entry[rows] = day_scores, ranks, chosen  # a day without scores: none
            day, symbol = np.nonzero(chosen)
            weight[rows[day], symbol] = self.allocation / n[day]
            scored = n > 0
            exit_[rows[scored]], decided[rows[scored]] = ~chosen[scored], True

        def frame(values: np.ndarray) -> pd.DataFrame:
            return pd.DataFrame(values, index=index, columns=columns, copy=False)

        return Signals(entry=frame(entry), exit=frame(exit_), keep=frame(entry.copy()),
                       weight=frame(weight), decided=pd.Series(decided, index=index, name="decided"),
                       exit_reason="rebalance", info={"score": frame(score), "rank": frame(rank)})

    def _columns(self) -> pd.Index:
        """The universe, sorted and without repeats: the columns of the signals (made once)."""
        key = tuple(self._universe)
        if getattr(self, "_columns_of", (None,))[0] != key:
            self._columns_of = (key, symbol_index(sorted(set(key))))
        return self._columns_of[1]

    def _scores(self, panel: Panel, cols: np.ndarray, days: np.ndarray, rows: np.ndarray,
                sessions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Closes and scores on panel rows ``rows``: ``close_t / close_{t-k} - 1``.

        t-k is the k-th calendar session before t (not the symbol's own k-th previous bar);
        the score is NaN unless the symbol has a bar on both dates. ``days``: the panel's dates,
        ``sessions``: the calendar's sessions over them (both ``datetime64[ns]``).
        """
        k = self.params.lookback_sessions
        position = date_positions(sessions, days[rows])
        earlier = date_positions(days, sessions[np.maximum(position - k, 0)]) if len(sessions) else \
            np.full(len(rows), -1, dtype=np.int64)
        earlier[position < k] = -1
        close = closes_at(panel, rows, cols)
        with np.errstate(invalid="ignore", divide="ignore"):
            score = close / closes_at(panel, earlier, cols)
        score -= 1.0
        return close, np.ascontiguousarray(score)  # a rebalance day's scores side by side: what is ranked

    def _warn_off_calendar(self, panel: Panel, cols: np.ndarray, index: pd.DatetimeIndex,
                           sessions: np.ndarray) -> None:
        """One warning if universe symbols have bars on dates that are not calendar sessions."""
        off = np.flatnonzero(date_positions(sessions, np.asarray(index, dtype="datetime64[ns]")) < 0)
        if not len(off):
            return
        stray = off[np.isfinite(closes_at(panel, off, cols)).any(axis=1)]
        if len(stray):
            logger.warning("{strategy}: {n} date(s) with equity bars are not {cal} sessions (first {first}); "
                           "they are ignored", strategy=self.name, n=len(stray), cal=self.params.calendar,
                           first=index[stray[0]].date())

    def _log_unscored(self, symbols: Sequence[str], close: np.ndarray, score: np.ndarray, n: np.ndarray,
                      days: np.ndarray) -> None:
        """One log line per symbol with a bar on a rebalance day but no score (short history, gap).

        Only days on which other symbols were scored count, so the warm-up at the start of the
        panel (no session k sessions back yet) is not logged.
        """
        missing = np.isfinite(close) & np.isnan(score) & (n > 0)[:, None]
        dates = days
        for col in np.flatnonzero(missing.any(axis=0)):
            skipped = dates[missing[:, col]]
            logger.info("{strategy}: {symbol} not scored on {n} rebalance day(s) (first {first}): no bar "
                        "{k} sessions earlier", strategy=self.name, symbol=symbols[int(col)], n=len(skipped),
                        first=str(skipped[0])[:10], k=self.params.lookback_sessions)

    # -- explain -------------------------------------------------------------------------

    def explain(self, panel: Panel, signals: Signals, date: pd.Timestamp) -> list[str]:
        """Why the strategy did or did not act at ``date``: rebalance summary or next rebalance day."""
        date = pd.Timestamp(date)
        if not bool(signals.decided.get(date, False)):
            if date in week_end_sessions(self.params.calendar, date, date):
                return [f"{self.name}: {date.date()} is a rebalance day but no symbol has a bar on it and "
                        f"{self.params.lookback_sessions} sessions earlier: no decision"]
            upcoming = next_week_end_session(self.params.calendar, date)
            when = upcoming.date() if upcoming is not None else "unknown"
            return [f"{self.name}: not a rebalance day (next: {when})"]
        score = signals.info["score"].loc[date]
        chosen = signals.entry.loc[date]
        picks = score[chosen.to_numpy()].sort_values()
        shown = ", ".join(f"{s} {v:+.2%}" for s, v in picks.head(5).items())
        more = f" (+{len(picks) - 5} more)" if len(picks) > 5 else ""
        return [f"{self.name}: rebalance on {date.date()}: {len(picks)} of {int(score.notna().sum())} scored "
                f"names selected (decile {self.params.decile:g}, {self.params.lookback_sessions}-session "
                f"return): {shown}{more}; every other name is sold if held"]
