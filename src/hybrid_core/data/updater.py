"""Bring a :class:`~hybrid_core.data.cache.BarCache` up to date from any bar downloader.

API::

    updater = CacheUpdater(cache, download, source="yfinance", overlap_days=5)
    report = updater.update(symbols, start, end, now)      # -> UpdateReport
    bars = cache.read_many(symbols, start, end)

``download(symbols, start, end)`` returns canonical bars for ``start <= date <= end``
(a source-specific function: yfinance here, Alpaca in its plugin). Per symbol:

- not cached, or asked from before the cached window: the whole window is downloaded;
- cached and complete up to ``end``: no request at all;
- otherwise only the missing days, plus ``overlap_days`` already cached days. The overlap is
  compared with the cache: a bar that changed at the source (a split or dividend
  re-adjustment rescales all history) makes the updater download the symbol again in full.

Symbols are downloaded in batches of ``batch_size`` sharing a start date, with a tqdm progress
bar on stderr when there are many. A symbol for which the source returns nothing is reported
in ``UpdateReport.missing`` (the caller decides whether to raise).
"""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import numpy as np
import pandas as pd
from loguru import logger
from tqdm import tqdm

from .cache import BarCache
from .clock import settled_through
from .normalise import PRICE_COLUMNS

Downloader = Callable[[Sequence[str], pd.Timestamp, pd.Timestamp], pd.DataFrame]
@attrs.define
class UpdateReport:
    """What one update did, per symbol."""

    full: list[str] = attrs.field(factory=list)
    """Downloaded over the whole window (not cached before, or window extended)."""
    incremental: list[str] = attrs.field(factory=list)
    """Downloaded from the last complete day on."""
    readjusted: list[str] = attrs.field(factory=list)
    """Bars changed at the source: downloaded again in full."""
    up_to_date: list[str] = attrs.field(factory=list)
    missing: list[str] = attrs.field(factory=list)
    """The source returned no bar."""
    requests: int = 0
    """Downloader calls (batches)."""


def bars_changed(old: Mapping[str, Any], new: Mapping[str, Any], tolerance: float) -> pd.Timestamp | None:
    """First date on which ``new`` differs from ``old`` by more than ``tolerance`` (relative).

    ``old`` and ``new``: canonical frames or mappings of column name to array.
    """
    dates, i_old, i_new = np.intersect1d(np.asarray(old["date"], dtype="datetime64[ns]"),
                                         np.asarray(new["date"], dtype="datetime64[ns]"),
                                         assume_unique=True, return_indices=True)
    if not len(dates):
        return None
    old_px = np.column_stack([np.asarray(old[c], dtype="float64")[i_old] for c in PRICE_COLUMNS])
    new_px = np.column_stack([np.asarray(new[c], dtype="float64")[i_new] for c in PRICE_COLUMNS])
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.abs(new_px / old_px - 1.0)
    changed = (rel > tolerance).any(axis=1)
    return pd.Timestamp(dates[changed].min()) if changed.any() else None


class CacheUpdater:
    """Fills a bar cache from a downloader, fetching only what is missing (module docstring)."""

    def __init__(self, cache: BarCache, download: Downloader, *, source: str, batch_size: int = 100,
                 overlap_days: int = 5, tolerance: float = 1e-4, settle_minutes: int = 30,
                 progress: bool = True, progress_min_symbols: int = 20) -> None:
        self.cache = cache
        self.download = download
        self.source = source
        self.batch_size = max(1, batch_size)
        self.overlap = pd.Timedelta(days=overlap_days)
        self.tolerance = tolerance
        self.settle_minutes = settle_minutes
        self.progress = progress
        self.progress_min_symbols = progress_min_symbols

    def _complete_to(self, symbol: str, end: pd.Timestamp, now: pd.Timestamp) -> pd.Timestamp:
        return min(end, settled_through(symbol, now, self.settle_minutes))

    def update(self, symbols: Sequence[str], start: pd.Timestamp, end: pd.Timestamp,
               now: pd.Timestamp) -> UpdateReport:
        """Make the cache cover [start, end] for ``symbols``; returns what was done."""
        start, end = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
        report = UpdateReport()
        full: dict[pd.Timestamp, list[str]] = defaultdict(list)
        incremental: dict[pd.Timestamp, list[str]] = defaultdict(list)
        for symbol in dict.fromkeys(symbols):
            meta = self.cache.meta(symbol)
            if meta is None or start < meta.covered_from:
                full[start].append(symbol)
            elif end <= meta.complete_to:
                report.up_to_date.append(symbol)
            else:
                incremental[max(meta.covered_from, meta.complete_to - self.overlap)].append(symbol)
        todo = sum(map(len, full.values())) + sum(map(len, incremental.values()))
        with tqdm(total=todo, desc=f"{self.source} bars", unit="sym", file=sys.stderr, leave=False,
                  disable=not self.progress or todo < self.progress_min_symbols) as bar:
            for fetch_start, group in sorted(full.items()):
                self._fetch_full(group, fetch_start, end, now, report, bar)
            refetch: dict[pd.Timestamp, list[str]] = defaultdict(list)
            for fetch_start, group in sorted(incremental.items()):
                for batch, got in self._batches(group, fetch_start, end, report, bar):
                    for symbol in batch:
                        redo_from = self._merge_incremental(symbol, got.get(symbol), end, now, report)
                        if redo_from is not None:
                            refetch[redo_from].append(symbol)
            for fetch_start, group in sorted(refetch.items()):
                bar.total += len(group)
                self._fetch_full(group, fetch_start, end, now, report, bar, readjusted=True)
        self.cache.sync()
        if report.missing:
            logger.warning("{source}: no bars for {n} symbol(s): {symbols}", source=self.source,
                           n=len(report.missing), symbols=", ".join(report.missing[:20]))
        return report

    def _batches(self, symbols: list[str], start: pd.Timestamp, end: pd.Timestamp, report: UpdateReport,
                 bar: tqdm):  # type: ignore[no-untyped-def]
        for i in range(0, len(symbols), self.batch_size):
            batch = symbols[i:i + self.batch_size]
            frame = self.download(batch, start, end)
            report.requests += 1
            frame = frame[(frame["date"] >= start) & (frame["date"] <= end)]
            got = {str(sym): rows.reset_index(drop=True) for sym, rows in frame.groupby("symbol", sort=False)}
            bar.update(len(batch))
            yield batch, got

    def _fetch_full(self, symbols: list[str], start: pd.Timestamp, end: pd.Timestamp, now: pd.Timestamp,
                    report: UpdateReport, bar: tqdm, readjusted: bool = False) -> None:
        for batch, got in self._batches(symbols, start, end, report, bar):
            for symbol in batch:
                rows = got.get(symbol)
                if rows is None or rows.empty:
                    report.missing.append(symbol)
                    continue
                self.cache.write(symbol, rows, start, self._complete_to(symbol, end, now), self.source,
                                 sync_dir=False)
                (report.readjusted if readjusted else report.full).append(symbol)

    def _merge_incremental(self, symbol: str, rows: pd.DataFrame | None, end: pd.Timestamp,
                           now: pd.Timestamp, report: UpdateReport) -> pd.Timestamp | None:
        """Append new bars to the cache; returns a full-refetch start if old bars changed."""
        meta = self.cache.meta(symbol)
        assert meta is not None
        if rows is None or rows.empty:
            report.missing.append(symbol)
            return None
        old = self.cache.read_arrays(symbol)
        new_dates = rows["date"].to_numpy(dtype="datetime64[ns]")
        first_new = new_dates.min()
        in_overlap = (old["date"] >= first_new) & (old["date"] <= np.datetime64(meta.complete_to, "ns"))
        changed = bars_changed({k: v[in_overlap] for k, v in old.items()}, rows, self.tolerance)
        if changed is not None:
            logger.info("{source}: {symbol}: cached bar of {date} changed at the source "
                        "(split or dividend re-adjustment); fetching its history again",
                        source=self.source, symbol=symbol, date=changed.date())
            return meta.covered_from
        keep = old["date"] < first_new
        merged = {k: np.concatenate([v[keep], rows[k].to_numpy()]) for k, v in old.items()}
        complete_to = max(meta.complete_to, self._complete_to(symbol, end, now))
        self.cache.write(symbol, merged, meta.covered_from, complete_to, self.source, sync_dir=False)
        report.incremental.append(symbol)
        return None
