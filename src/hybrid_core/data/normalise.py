"""One canonical bar frame from any source's frame.

API::

    normalise_bars(frame, *, symbol_map=None, source="data", symbol=None) -> pd.DataFrame

accepts

- a yfinance ``download`` frame: columns a MultiIndex named (``Price``, ``Ticker``) (or
  (``Ticker``, ``Price``) with ``group_by="ticker"``), index = dates;
- an alpaca-py ``BarSet.df``: index (``symbol``, ``timestamp`` in UTC), columns ``open, high,
  low, close, volume, trade_count, vwap``;
- a long frame: ``symbol, date`` (or ``timestamp``), ``open, high, low, close``, optional
  ``volume`` and ``adj_close`` (``Adj Close``); a single-symbol frame without a ``symbol``
  column needs ``symbol=``,

and returns the canonical long frame of :mod:`hybrid_core.contracts`: ``symbol, date, open,
high, low, close, volume``, float64, dates tz-naive and normalised (a tz-aware timestamp is
converted to UTC first, so it is the UTC session date), sorted by (symbol, date), no duplicated
(symbol, date) (the last one wins). When ``adj_close`` is present, prices are adjusted as
STRATEGIES.md says: ``open/high/low * adj_close / close`` and ``close = adj_close``. A row
whose prices cannot be traded on (missing, non-positive or absurd: the quality gate's own
definition, :func:`hybrid_core.data.quality.usable_prices`) is not a bar: it is dropped, and
the skip is logged once per
symbol and run (a repeat of the same skip in the same process goes to DEBUG). ``symbol_map``
renames symbols (e.g. Yahoo ``BTC-USD`` -> ``BTC/USD``).

``align_for_valuation(close)`` puts equities (NYSE sessions) and crypto (UTC days) on one date
axis for *portfolio valuation only*: closes forward-filled on the union of dates (an equity
keeps its Friday close through the weekend). Strategies never see it: they get the panel, where
a date without a bar stays NaN.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from loguru import logger

from ..contracts import BAR_COLUMNS
from ..errors import DataError

CANONICAL_COLUMNS = ("symbol", "date", *BAR_COLUMNS)
PRICE_COLUMNS = ("open", "high", "low", "close")
_ALIASES = {"adj close": "adj_close", "adjclose": "adj_close", "adjusted_close": "adj_close",
            "timestamp": "date", "datetime": "date", "ticker": "symbol"}


def empty_bars() -> pd.DataFrame:
    """An empty canonical frame with the right dtypes."""
    frame = pd.DataFrame({"symbol": pd.Series([], dtype=object),
                          "date": pd.DatetimeIndex([], dtype="datetime64[ns]")})
    for col in BAR_COLUMNS:
        frame[col] = pd.Series([], dtype="float64")
    return frame


def _clean_name(name: object) -> str:
    key = str(name).strip().lower()
    return _ALIASES.get(key, key.replace(" ", "_"))


def _from_wide_yfinance(frame: pd.DataFrame) -> pd.DataFrame:
    """yfinance MultiIndex columns -> long frame (symbol, date, price columns)."""
    names = [str(n) if n is not None else "" for n in frame.columns.names]
    level_values = [{str(v).lower() for v in frame.columns.get_level_values(i)} for i in range(2)]
    price_level = 0 if "close" in level_values[0] else 1
    if "close" not in level_values[price_level]:
        raise DataError(f"cannot read a wide frame with column levels {names}: no Close column")
    ticker_level = 1 - price_level
    long = frame.stack(level=ticker_level, future_stack=True)
    long.index = long.index.set_names(["date", "symbol"])
    long = long.reset_index()
    # yfinance reindexes every ticker on the union of all tickers' dates: a row with no price
    # at all is alignment padding (an equity on a Saturday next to BTC), not a skipped bar.
    prices = [c for c in long.columns if str(c).lower() in PRICE_COLUMNS or str(c).lower() == "adj close"]
    return long.loc[long[prices].notna().any(axis=1)]


def _to_long(frame: pd.DataFrame, symbol: str | None) -> pd.DataFrame:
    """Any supported shape -> long frame with lower-case canonical column names."""
    if isinstance(frame.columns, pd.MultiIndex):
        long = _from_wide_yfinance(frame)
    elif isinstance(frame.index, pd.MultiIndex):
        long = frame.reset_index()
    elif not any(_clean_name(c) == "date" for c in frame.columns):
        long = frame.rename_axis("date").reset_index()
    else:
        long = frame.reset_index(drop=True)
    long = long.rename(columns={c: _clean_name(c) for c in long.columns})
    if "symbol" not in long.columns:
        if symbol is None:
            raise DataError("bars have no symbol column; pass symbol= for a single-symbol frame")
        long["symbol"] = symbol
    missing = [c for c in ("date", *PRICE_COLUMNS) if c not in long.columns]
    if missing:
        found = ", ".join(str(c) for c in list(long.columns)[:6])
        raise DataError(f"bars lack column(s) {', '.join(missing)} (found: {found})")
    return long


def session_dates(values: object) -> pd.DatetimeIndex:
    """tz-naive normalised dates; tz-aware values are converted to UTC first."""
    index = pd.DatetimeIndex(pd.to_datetime(values, utc=False))
    if index.tz is not None:
        index = index.tz_convert("UTC").tz_localize(None)
    return index.normalize().astype("datetime64[ns]")


_SKIPS_LOGGED: set[tuple[object, ...]] = set()
"""Skips already warned about by this process: a live loop re-reads the same rows daily."""


def _log_skips(out: pd.DataFrame, good: np.ndarray, source: str) -> None:
    """One line for all symbols (the first few named with their count and first date), each at DEBUG."""
    bad = out.loc[~good, ["symbol", "date"]]
    parts = [(str(sym), len(rows), pd.Timestamp(rows["date"].min()).date())
             for sym, rows in bad.groupby("symbol", sort=True)]
    key = (source, tuple(parts))
    level = "DEBUG" if key in _SKIPS_LOGGED else "WARNING"
    _SKIPS_LOGGED.add(key)
    named = ", ".join(f"{sym}: {n} row(s) (first {first})" for sym, n, first in parts[:3])
    more = f" and {len(parts) - 3} more symbol(s)" if len(parts) > 3 else ""
    logger.log(level, "{source}: skipped {n} row(s) without a usable price: {named}{more}", source=source,
               n=int((~good).sum()), named=named, more=more)
    for sym, n, first in parts:
        logger.debug("{source}: {symbol}: skipped {n} row(s) without a usable price (first {first})",
                     source=source, symbol=sym, n=n, first=first)


def adjust_ohlc(prices: dict[str, np.ndarray], adj_close: np.ndarray, *, overwrite: bool = False,
                factor: np.ndarray | None = None) -> None:
    """Adjust raw prices in place per STRATEGIES.md: open/high/low * adj_close/close, close = adj_close.

    ``overwrite``: the arrays of ``prices`` are the caller's own, multiplied where they are
    rather than replaced by new ones. ``factor``: an array as long as ``adj_close`` to hold
    adj_close / close (a caller adjusting piece by piece reuses one)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.divide(adj_close, prices["close"], out=factor)
    for col in ("open", "high", "low"):
        mine = overwrite and prices[col].flags.writeable
        prices[col] = np.multiply(prices[col], factor, out=prices[col] if mine else None)
    prices["close"] = adj_close


def normalise_bars(frame: pd.DataFrame, *, symbol_map: Mapping[str, str] | None = None,
                   source: str = "data", symbol: str | None = None) -> pd.DataFrame:
    """The canonical long frame of ``frame`` (see the module docstring for the shapes accepted)."""
    if frame is None or len(frame) == 0:
        return empty_bars()
    long = _to_long(frame, symbol)
    # symbols as codes into a small table of names: cleaning, renaming and sorting stay cheap
    codes, names = pd.factorize(long["symbol"].to_numpy(), use_na_sentinel=False)
    names = np.array([str(n).strip() for n in names], dtype=object)
    if symbol_map:
        names = np.array([symbol_map.get(n, n) for n in names], dtype=object)
    dates = session_dates(long["date"]).to_numpy()
    prices = {c: pd.to_numeric(long[c], errors="coerce").to_numpy(dtype="float64") for c in PRICE_COLUMNS}
    if "adj_close" in long.columns:
        adjust_ohlc(prices, pd.to_numeric(long["adj_close"], errors="coerce").to_numpy(dtype="float64"))
    volume = (pd.to_numeric(long["volume"], errors="coerce").to_numpy(dtype="float64")
              if "volume" in long.columns else np.zeros(len(long)))
    from .quality import usable_prices  # the gate's own definition of a tradable price

    good = usable_prices([prices[c] for c in PRICE_COLUMNS], np.nan_to_num(volume, nan=0.0))
    if not good.all():
        _log_skips(pd.DataFrame({"symbol": names[codes], "date": dates}), good, source)
    # order by (symbol name, date); of rows sharing both, the last one given wins
    rank = np.empty(len(names), dtype=np.int64)
    rank[np.argsort(names.astype(str), kind="stable")] = np.arange(len(names))
    keys = rank[codes]
    order = np.lexsort((np.arange(len(keys)), dates, keys))
    order = order[good[order]]
    keys_o, dates_o = keys[order], dates[order]
    last = np.ones(len(order), dtype=bool)
    last[:-1] = (keys_o[1:] != keys_o[:-1]) | (dates_o[1:] != dates_o[:-1])
    order = order[last]
    out = pd.DataFrame({"symbol": pd.array(names[codes[order]], dtype="str"), "date": dates[order]})
    for col in PRICE_COLUMNS:
        out[col] = prices[col][order]
    out["volume"] = np.nan_to_num(volume[order], nan=0.0)
    return out


def align_for_valuation(close: pd.DataFrame, dates: pd.DatetimeIndex | None = None) -> pd.DataFrame:
    """Closes on one date axis for portfolio valuation (never for signals).

    ``close`` is a wide frame (dates x symbols, NaN where no bar, e.g. ``Panel.close``) or a
    canonical long frame. The result is indexed by ``dates`` (default: the union of all bar
    dates, i.e. NYSE sessions and UTC days), each symbol forward-filled from its own last
    bar; before a symbol's first bar it stays NaN.
    """
    if "symbol" in close.columns and "date" in close.columns:
        close = close.pivot(index="date", columns="symbol", values="close")
    close = close.sort_index()
    axis = close.index if dates is None else pd.DatetimeIndex(dates)
    union = close.index.union(axis)
    return close.reindex(union).ffill().reindex(axis)
