"""yfinance data source (``yfinance``): Yahoo Finance daily bars behind a local Parquet cache.

Equities and crypto: hybrid's ``BTC/USD`` and ``BRK.B`` are Yahoo's ``BTC-USD`` and ``BRK-B``
(:mod:`hybrid_core.data.symbols`). The first fetch downloads ``lookback_days`` of history into
``cache_dir``; later fetches download only the missing days (:mod:`hybrid_core.data.updater`).

yfinance never raises for a failed ticker: it logs and returns NaN columns. Such symbols are
detected here and raise one :class:`~hybrid_core.errors.DataError` naming them
(``on_missing: raise``, the default) or are logged and left out (``on_missing: warn``).
Every download runs in a worker thread bounded by ``call_timeout_s``; ``timeout_s`` is passed
to yfinance for each HTTP request.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np
import pandas as pd
from loguru import logger

from ..contracts import DataSource
from ..data.bounded import call_with_timeout
from ..data.clock import as_utc, settled_through, utc_now
from ..data.normalise import empty_bars, normalise_bars
from ..data.symbols import yahoo_map
from ..errors import DataError, HybridError
from ..hookspecs import hookimpl

if TYPE_CHECKING:  # imported where used: the plugin host imports this module to list the source, and the
    # cache brings pyarrow.dataset and filelock, the updater tqdm (0.1 s of every hybrid start-up)
    from ..data.cache import BarCache
    from ..data.updater import UpdateReport

DEFAULT_CACHE_DIR = "~/.cache/hybrid/bars"

# yfinance 1.7 still uses pandas' deprecated inplace= arguments; those warnings are not ours.
warnings.filterwarnings("ignore", category=FutureWarning, module=r"yfinance\.")
warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"yfinance\.")


class YFinanceBars(DataSource):
    """Yahoo Finance daily bars (equities and crypto) with a local Parquet cache."""

    name = "yfinance"

    @attrs.define(kw_only=True)
    class Params:
        cache_dir: str = DEFAULT_CACHE_DIR
        """Folder of the Parquet cache (relative paths: against the profile's folder)."""
        lookback_days: int = attrs.field(default=400, validator=attrs.validators.gt(0))
        """Calendar days fetched when no start date is given."""
        timeout_s: float = attrs.field(default=10.0, validator=attrs.validators.gt(0))
        """Per HTTP request, passed to yfinance."""
        call_timeout_s: float = attrs.field(default=120.0, validator=attrs.validators.gt(0))
        """Hard bound of one batch download (yfinance can hang ~130 s on a silent network)."""
        batch_size: int = attrs.field(default=100, validator=attrs.validators.gt(0))
        """Tickers per yfinance.download call."""
        auto_adjust: bool = False
        """Let yfinance adjust OHLC; False: hybrid adjusts from Adj Close (same result)."""
        on_missing: str = attrs.field(default="raise", validator=attrs.validators.in_(["raise", "warn"]))
        """A symbol without bars: ``raise`` a DataError, or ``warn`` and go on with the rest."""
        overlap_days: int = attrs.field(default=5, validator=attrs.validators.ge(0))
        """Cached days fetched again to detect split/dividend re-adjustments."""
        tolerance: float = attrs.field(default=1e-4, validator=attrs.validators.gt(0))
        """Relative price change of a cached bar taken as a re-adjustment."""
        settle_minutes: int = attrs.field(default=30, validator=attrs.validators.ge(0))
        """Minutes after the 16:00 New York close before today's equity bar counts as final."""
        threads: bool = True
        """Let yfinance download the tickers of a batch in parallel."""
        progress: bool = True
        """tqdm progress bar on stderr for downloads of many symbols."""
        include_unsettled: bool = True
        """Return today's bar while it is still forming (crypto during the UTC day, equities
        before the close + settle_minutes); it is fetched again once final. False: final bars only."""

    def __init__(self, params: Any = None, base_dir: str | Path | None = None,
                 clock: Callable[[], pd.Timestamp] | None = None) -> None:
        super().__init__(params)
        self.base_dir = Path(base_dir) if base_dir else Path.cwd()
        self.clock = clock or utc_now
        self.last_report: UpdateReport | None = None
        self.yahoo_errors: list[str] = []
        """Error lines yfinance logged (it never raises for a failed ticker)."""

    @property
    def cache(self) -> BarCache:
        """The Parquet cache this source fills (a relative cache_dir is taken from the profile's folder)."""
        from ..data.cache import BarCache
        from ..paths import resolve_path

        return BarCache(resolve_path(self.params.cache_dir, getattr(self, "profile_dir", None) or self.base_dir))

    def offline_check(self) -> list[HybridError]:
        """Offline check for `hybrid validate`: the cache folder is a folder that can be written."""
        from ..profile import writable_file_problem

        problem = writable_file_problem(self.cache.root / ".hybrid-write-check")
        return [DataError(f"cache_dir {self.cache.root}: {problem}")] if problem else []

    def download(self, symbols: Sequence[str], start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        """Canonical bars of ``symbols`` for ``start <= date <= end`` straight from Yahoo (no cache)."""
        import yfinance as yf

        mapping = yahoo_map(symbols)
        yf.set_tz_cache_location(str(self.cache.root / "yfinance"))
        params = self.params

        def call() -> pd.DataFrame:
            with warnings.catch_warnings():  # yfinance 1.7 uses pandas' deprecated inplace=
                warnings.simplefilter("ignore", DeprecationWarning)
                warnings.simplefilter("ignore", FutureWarning)
                return download_now()

        def download_now() -> pd.DataFrame:
            return yf.download(list(mapping), start=pd.Timestamp(start).strftime("%Y-%m-%d"),
                               end=(pd.Timestamp(end) + pd.Timedelta(days=1)).strftime("%Y-%m-%d"),
                               interval="1d", auto_adjust=params.auto_adjust, actions=False,
                               threads=params.threads, progress=False, timeout=params.timeout_s,
                               group_by="column", multi_level_index=True)

        what = f"yfinance download of {len(mapping)} symbol(s) ({', '.join(list(symbols)[:3])}...)"
        with _YahooErrors() as errors:
            raw = call_with_timeout(call, params.call_timeout_s, what)
        self.yahoo_errors.extend(errors.lines)
        if raw is None or raw.empty:
            return empty_bars()
        return normalise_bars(raw, symbol_map=mapping, source="yfinance")

    def yahoo_reason(self, limit: int = 300) -> str:
        """yfinance's logged errors of the last update, one line (it never raises for a ticker)."""
        return "; ".join(dict.fromkeys(self.yahoo_errors))[:limit]

    def update(self, symbols: Sequence[str], start: pd.Timestamp | None = None,
               end: pd.Timestamp | None = None) -> UpdateReport:
        """Bring the cache up to date for ``symbols`` over [start, end] (defaults: lookback, today)."""
        return self._update(symbols, *self._window(start, end))

    def _update(self, symbols: Sequence[str], start_day: pd.Timestamp, end_day: pd.Timestamp,
                now: pd.Timestamp) -> UpdateReport:
        from ..data.updater import CacheUpdater

        self.yahoo_errors = []
        params = self.params
        updater = CacheUpdater(self.cache, self.download, source=self.name, batch_size=params.batch_size,
                               overlap_days=params.overlap_days, tolerance=params.tolerance,
                               settle_minutes=params.settle_minutes, progress=params.progress)
        with self.cache.locked():
            report = updater.update([s.strip().upper() for s in symbols], start_day, end_day, now)
        self.last_report = report
        return report

    def _window(self, start: pd.Timestamp | None, end: pd.Timestamp | None
                ) -> tuple[pd.Timestamp, pd.Timestamp, pd.Timestamp]:
        now = as_utc(self.clock())
        today = now.tz_localize(None).normalize()
        end_day = min(pd.Timestamp(end).normalize(), today) if end is not None else today
        start_day = (pd.Timestamp(start).normalize() if start is not None
                     else end_day - pd.Timedelta(days=self.params.lookback_days))
        if start_day > end_day:
            raise DataError(f"yfinance: start {start_day.date()} is after end {end_day.date()}")
        return start_day, end_day, now

    def fetch(self, symbols: Sequence[str], start: pd.Timestamp | None,
              end: pd.Timestamp | None) -> pd.DataFrame:
        symbols = [s.strip().upper() for s in symbols]
        start_day, end_day, now = self._window(start, end)
        report = self._update(symbols, start_day, end_day, now)
        if report.missing and self.params.on_missing == "raise":
            said = f" (yfinance: {self.yahoo_reason()})" if self.yahoo_errors else ""
            raise DataError(f"yfinance returned no bars for {len(report.missing)} symbol(s): "
                            f"{', '.join(report.missing[:20])}{said}; check the tickers or the network, "
                            f"or set data.params.on_missing: warn to go on without them")
        bars = self.cache.read_many(symbols, start_day, end_day)
        if not self.params.include_unsettled:
            bars = drop_unsettled(bars, now, self.params.settle_minutes)
        if bars.empty:
            raise DataError(f"yfinance: no bars for {len(symbols)} symbol(s) between {start_day.date()} "
                            f"and {end_day.date()}")
        logger.debug("yfinance: {rows} bars of {n} symbol(s), {requests} request(s)", rows=len(bars),
                     n=bars["symbol"].nunique(), requests=report.requests)
        return bars


class _YahooErrors(logging.Handler):
    """Collects the error lines yfinance logs during a download (its only failure signal)."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        line = " ".join(record.getMessage().split())
        if line and not line.endswith("Failed download:") and not line.endswith("Failed downloads:"):
            self.lines.append(line)

    def __enter__(self) -> _YahooErrors:
        logging.getLogger("yfinance").addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger("yfinance").removeHandler(self)


def drop_unsettled(bars: pd.DataFrame, now: pd.Timestamp, settle_minutes: int) -> pd.DataFrame:
    """``bars`` without the rows whose daily bar is not final at ``now``."""
    crypto = bars["symbol"].str.contains("/", regex=False).to_numpy()
    limit = np.where(crypto, settled_through("BTC/USD", now, settle_minutes).to_datetime64(),
                     settled_through("SPY", now, settle_minutes).to_datetime64())
    return bars.loc[bars["date"].to_numpy() <= limit].reset_index(drop=True)


@hookimpl
def hybrid_register_data_sources(register):  # type: ignore[no-untyped-def]
    """Register the yfinance data source."""
    register(YFinanceBars)
