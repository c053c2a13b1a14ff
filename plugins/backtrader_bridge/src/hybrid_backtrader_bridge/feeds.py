"""hybrid's bars as Backtrader data feeds: one ``bt.feeds.PandasData`` per symbol.

The bars are the canonical ones every hybrid data source gives (local files, the yfinance
cache, Alpaca): adjusted OHLCV, labelled by session date (NYSE sessions for equities, UTC days
for crypto). A date on which a symbol has no bar is simply absent from its feed, so Cerebro
runs on the union of the feeds' dates and a feed only moves on its own sessions.
"""

from __future__ import annotations

from collections.abc import Iterable

import backtrader as bt
import numpy as np
import pandas as pd
from loguru import logger

from hybrid_core.contracts import BAR_COLUMNS, Panel
from hybrid_core.errors import DataError

PRICE_COLUMNS = ("open", "high", "low", "close")


ORDINAL_OF_1970_01_01 = 719163
"""``datetime.date(1970, 1, 1).toordinal()``: Backtrader numbers a midnight by its proleptic ordinal."""


def session_numbers(dates: pd.DatetimeIndex) -> list[float]:
    """Backtrader's ``date2num`` of each session date (midnights), computed at once."""
    if not (dates == dates.normalize()).all():  # not hybrid's session labels: the general, slow way
        return [float(bt.date2num(ts.to_pydatetime())) for ts in dates]
    days = dates.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]").astype("int64")
    return (days + float(ORDINAL_OF_1970_01_01)).tolist()


class HybridBars(bt.feeds.PandasData):
    """A ``PandasData`` over one symbol's bars (index: session dates; columns open..volume).

    It reads its rows from numpy arrays taken once from the frame instead of one
    ``DataFrame.iloc`` lookup per value (what ``PandasData`` does): the same lines, about
    ten times faster to load (eq50: 1.7 s instead of 17 s). ``dataname`` is still the DataFrame.
    """

    params = (("openinterest", None),)

    def start(self) -> None:
        super().start()
        frame = self.p.dataname
        self._rows = len(frame)
        self._times = session_numbers(pd.DatetimeIndex(frame.index))
        self._columns = [(getattr(self.lines, field), frame[field].to_numpy(dtype="float64").tolist())
                         for field in BAR_COLUMNS]

    def _load(self) -> bool:
        self._idx += 1
        i = self._idx
        if i >= self._rows:
            return False
        for line, values in self._columns:
            line[0] = values[i]
        self.lines.datetime[0] = self._times[i]
        return True


def _panel(panel_or_bars: Panel | pd.DataFrame) -> Panel:
    if isinstance(panel_or_bars, Panel):
        return panel_or_bars
    if isinstance(panel_or_bars, pd.DataFrame):
        missing = [c for c in ("symbol", "date", *BAR_COLUMNS) if c not in panel_or_bars.columns]
        if missing:
            raise DataError(f"to_feeds: the bars lack column(s) {', '.join(missing)}; pass a Panel or the "
                            f"canonical long frame (symbol, date, open, high, low, close, volume)")
        return Panel.from_long(panel_or_bars)
    raise TypeError(f"to_feeds takes a hybrid Panel or a long bar frame, not {type(panel_or_bars).__name__}")


def symbol_frame(panel: Panel, symbol: str) -> pd.DataFrame:
    """One symbol's bars as a frame indexed by session date, rows that are not bars left out.

    A row is a bar when open, high, low and close are all positive numbers (STRATEGIES.md);
    a row with only some prices is skipped with one warning for the symbol.
    """
    frame = pd.DataFrame({c: getattr(panel, c)[symbol] for c in BAR_COLUMNS})
    frame.index = pd.DatetimeIndex(frame.index, name="date")
    prices = frame[list(PRICE_COLUMNS)].to_numpy(dtype="float64")
    with np.errstate(invalid="ignore"):
        is_bar = (np.isfinite(prices) & (prices > 0)).all(axis=1)
    partial = ~is_bar & ~np.isnan(prices).all(axis=1)
    if partial.any():
        first = frame.index[partial][0].date()
        logger.warning("to_feeds: {symbol}: skipped {n} row(s) without a positive open, high, low and close "
                       "(first {first}); those days have no bar", symbol=symbol, n=int(partial.sum()), first=first)
    return frame.loc[is_bar]


def to_feeds(panel_or_bars: Panel | pd.DataFrame, symbols: Iterable[str] | None = None) -> list[HybridBars]:
    """One Backtrader feed per symbol from hybrid's canonical bars (a :class:`Panel` or the long frame).

    Each feed is a ``bt.feeds.PandasData`` named after its symbol (``feed._name``; pass it to
    ``cerebro.adddata(feed, name=feed._name)``), daily, with the adjusted OHLCV of the
    symbol's own sessions. ``symbols`` picks and orders them (default: every symbol, sorted);
    a symbol without any bar gets no feed, an unknown one is an error.
    """
    panel = _panel(panel_or_bars)
    names = panel.symbols if symbols is None else [str(s) for s in symbols]
    unknown = [s for s in names if s not in panel.close.columns]
    if unknown:
        raise DataError(f"to_feeds: no bars for {', '.join(unknown[:5])}"
                        f"{' ...' if len(unknown) > 5 else ''}; the bars hold {len(panel.symbols)} symbol(s)")
    feeds = []
    for symbol in names:
        frame = symbol_frame(panel, symbol)
        if frame.empty:
            logger.debug("to_feeds: {symbol} has no bar in the window: no feed", symbol=symbol)
            continue
        feeds.append(HybridBars(dataname=frame, name=symbol, timeframe=bt.TimeFrame.Days, compression=1))
    return feeds
