"""The benchmark a backtest or a sweep is compared with: a value curve on the run's dates.

``backtest.benchmark`` in the profile chooses it:

- ``universe`` (the default): equal-weight buy-and-hold of every symbol the profile's strategies
  trade, over the same window and data. Each symbol gets ``1/n`` of the initial cash and is
  bought at its first close in the window (until then its share waits in cash); it is then
  held to the end, valued at its latest close (a symbol whose bars stop keeps its last close).
- a symbol (``SPY``, ``BTC/USD``): buy-and-hold of that symbol from its first close in the
  window, read from the profile's data source like any other bars (through the data quality
  gate, under the run's ``data.quality`` policy).

Prices are the panel's adjusted closes, so dividends are in (STRATEGIES.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..contracts import Panel, Strategy
from ..errors import ProfileError
from .stats import latest_closes

UNIVERSE = "universe"
"""The ``backtest.benchmark`` value meaning the equal-weight buy-and-hold of the profile's universe."""


def buy_and_hold(closes: pd.DataFrame, dates: pd.DatetimeIndex, initial: float) -> pd.Series:
    """Value of ``initial`` split equally over the columns of ``closes``, each bought at its first
    close on or after ``dates[0]`` and held; columns without any close in the window are left out."""
    dates = pd.DatetimeIndex(dates)
    marks = latest_closes(closes, dates)
    has = ~np.isnan(marks)
    listed = has.any(axis=0)
    if not listed.all():
        marks, has = marks[:, listed], has[:, listed]
    if marks.shape[1] == 0:
        return pd.Series(np.full(len(dates), float(initial)), index=dates, name="benchmark")
    first = marks[has.argmax(axis=0), np.arange(marks.shape[1])]
    growth = np.asfortranarray(marks)  # symbol by symbol: the layout the mean below has always summed
    np.divide(growth, first, out=growth)
    growth[~has] = 1.0  # before its first close a share is cash
    values = initial * growth.mean(axis=1)
    return pd.Series(values, index=dates, name="benchmark")


def benchmark_curve(choice: str, panel: Panel, strategies: Sequence[Strategy], data_source: Any,
                    dates: pd.DatetimeIndex, initial: float, *, quality: str = "refuse") -> tuple[str, pd.Series]:
    """The benchmark named by ``choice`` (``backtest.benchmark``) as ``(description, values)``.

    ``values`` start from ``initial`` on ``dates`` (the backtest's dates). A symbol that the panel
    lacks is loaded from ``data_source`` through the quality gate under ``quality`` (the run's
    policy: bad benchmark bars are refused like the strategies' own); one without any bar in the
    window is refused with a :class:`~hybrid_core.errors.ProfileError` naming the key.
    """
    dates = pd.DatetimeIndex(dates)
    if choice == UNIVERSE:
        symbols = sorted({s for strat in strategies for s in strat.universe} & set(panel.symbols))
        closes = panel.close if symbols == list(panel.close.columns) else panel.close[symbols]  # no copy of it all
        values = buy_and_hold(closes, dates, initial)
        return f"equal-weight buy-and-hold of the {len(symbols)} universe symbols", values
    if choice in panel.symbols:
        closes = panel.close[[choice]]
    else:
        closes = _fetch_closes(choice, data_source, dates, quality)
    if not closes[choice].reindex(dates).notna().any():
        first, last = (dates[0].date(), dates[-1].date()) if len(dates) else ("?", "?")
        raise ProfileError(f"backtest.benchmark: no bars for {choice!r} between {first} and {last} in the "
                           f"profile's data; name a symbol the data has, or leave the key out for the "
                           f"equal-weight universe")
    return f"buy-and-hold of {choice}", buy_and_hold(closes, dates, initial)


def _fetch_closes(symbol: str, data_source: Any, dates: pd.DatetimeIndex, quality: str) -> pd.DataFrame:
    from ..data.loading import load_bars
    from ..errors import BarsRefused, DataError

    empty = pd.DataFrame({symbol: pd.Series(dtype="float64")})
    if not len(dates):
        return empty
    try:
        bars = load_bars(data_source, [symbol], dates[0], dates[-1], policy=quality).bars
    except BarsRefused:
        raise  # the bars are there and wrong: the gate's own line (file, symbol, date, check)
    except DataError:  # no bars for the symbol: refused below, naming the profile key
        return empty
    if bars.empty:
        return empty
    return Panel.from_long(bars).close.reindex(columns=[symbol])
