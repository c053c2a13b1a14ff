"""A local Parquet cache of canonical bars: one file per symbol under one folder.

API::

    cache = BarCache(root)                       # e.g. ~/.cache/hybrid/bars
    cache.meta(symbol) -> CacheMeta | None       # covered_from, complete_to (cheap: schema only)
    cache.read(symbol) -> canonical frame        # empty frame when not cached
    cache.read_many(symbols, start, end)         # one frame for many symbols
    cache.write(symbol, bars, covered_from, complete_to)   # atomic
    cache.status() -> DataFrame                  # symbol, first, last, rows, covered_from, complete_to
    with cache.locked(): ...                     # inter-process lock while updating

Each file holds the canonical long frame of one symbol and, in the Parquet key-value metadata,
the window the cache is known to cover: ``covered_from`` (the first day that was requested:
no bar before it means "not asked", not "no data") and ``complete_to`` (the last day whose bar
was settled when fetched; later bars are fetched again).

Writes are atomic: the frame goes to a temporary file in the same folder, which is flushed,
fsynced and moved over the old file with :func:`os.replace`. A crash mid-write leaves the
previous file readable (and at worst a stray ``*.tmp`` file, ignored, and removed by the next
:meth:`BarCache.locked`).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import attrs
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
from filelock import FileLock

from ..errors import DataError
from ..ops.atomic import atomic_replace, fsync_dir
from .normalise import CANONICAL_COLUMNS, empty_bars

META_KEY = b"hybrid.cache"
SUFFIX = ".parquet"


@attrs.frozen
class CacheMeta:
    """What one symbol's cache file covers."""

    symbol: str
    covered_from: pd.Timestamp
    complete_to: pd.Timestamp
    source: str = ""


def file_stem(symbol: str) -> str:
    """A file-system-safe name for ``symbol`` (``BTC/USD`` -> ``BTC_USD``)."""
    return "".join(ch if ch.isalnum() or ch in ".-" else "_" for ch in symbol.upper())


def atomic_write_parquet(table: pa.Table, path: Path, sync_dir: bool = True) -> None:
    """Write ``table`` to ``path`` atomically (temp file + fsync + os.replace).

    ``sync_dir`` also fsyncs the folder so the rename itself survives a power cut; a caller
    writing many files may pass False and call :meth:`BarCache.sync` once at the end.
    """
    with atomic_replace(path, sync_dir=sync_dir) as handle:
        pq.write_table(table, handle, compression="zstd")


class BarCache:
    """Canonical bars on disk, one Parquet file per symbol (see the module docstring)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()

    def path_for(self, symbol: str) -> Path:
        """The file holding ``symbol``."""
        return self.root / f"{file_stem(symbol)}{SUFFIX}"

    @contextlib.contextmanager
    def locked(self, timeout_s: float = 600.0) -> Iterator[None]:
        """Hold the cache's inter-process lock (one updater at a time)."""
        self.root.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.root / ".lock"), timeout=timeout_s)
        with lock:
            for stray in self.root.glob(f".*{SUFFIX}.*.tmp"):  # left by a killed writer
                with contextlib.suppress(OSError):
                    stray.unlink()
            yield

    def _open_error(self, path: Path, exc: Exception) -> DataError:
        return DataError(f"cache file {path} is unreadable ({type(exc).__name__}: {exc}); "
                         f"delete it and run `hybrid data update` to fetch it again")

    def meta(self, symbol: str) -> CacheMeta | None:
        """Coverage of ``symbol``'s cache file, or None when it is not cached."""
        path = self.path_for(symbol)
        if not path.exists():
            return None
        try:
            raw = (pq.read_schema(path).metadata or {}).get(META_KEY)
        except Exception as exc:
            raise self._open_error(path, exc) from exc
        if raw is None:
            return None
        info = json.loads(raw)
        return CacheMeta(symbol=info["symbol"], covered_from=pd.Timestamp(info["covered_from"]),
                         complete_to=pd.Timestamp(info["complete_to"]), source=info.get("source", ""))

    def read(self, symbol: str) -> pd.DataFrame:
        """All cached bars of ``symbol`` (an empty canonical frame when not cached)."""
        path = self.path_for(symbol)
        if not path.exists():
            return empty_bars()
        try:
            frame = pq.read_table(path).to_pandas()
        except Exception as exc:
            raise self._open_error(path, exc) from exc
        return frame[list(CANONICAL_COLUMNS)]

    def read_arrays(self, symbol: str) -> dict[str, np.ndarray]:
        """``symbol``'s cached columns (``date`` and the bar columns) as numpy arrays (fast path)."""
        path = self.path_for(symbol)
        try:
            table = pq.read_table(path, columns=list(CANONICAL_COLUMNS[1:]))
        except Exception as exc:
            raise self._open_error(path, exc) from exc
        return {name: table.column(name).to_numpy() for name in CANONICAL_COLUMNS[1:]}

    def read_many(self, symbols: Iterable[str], start: pd.Timestamp | None = None,
                  end: pd.Timestamp | None = None) -> pd.DataFrame:
        """Cached bars of ``symbols`` in [start, end], one canonical frame (absent symbols skipped).

        One multi-threaded pyarrow dataset scan with the date filter pushed down.
        """
        paths = [str(self.path_for(s)) for s in sorted(set(symbols)) if self.path_for(s).exists()]
        if not paths:
            return empty_bars()
        condition = None
        if start is not None:
            condition = pads.field("date") >= pd.Timestamp(start)
        if end is not None:
            upper = pads.field("date") <= pd.Timestamp(end)
            condition = upper if condition is None else condition & upper
        try:
            table = pads.dataset(paths, format="parquet").to_table(columns=list(CANONICAL_COLUMNS),
                                                                   filter=condition)
        except Exception as exc:
            raise DataError(f"cache {self.root} is unreadable ({type(exc).__name__}: {exc}); delete "
                            f"the broken file and run `hybrid data update` to fetch it again") from exc
        # files come in symbol order, each sorted by date: a stable sort is then almost free
        return table.to_pandas().sort_values(["symbol", "date"], kind="mergesort", ignore_index=True)

    def write(self, symbol: str, bars: pd.DataFrame | Mapping[str, np.ndarray], covered_from: pd.Timestamp,
              complete_to: pd.Timestamp, source: str = "", sync_dir: bool = True) -> None:
        """Replace ``symbol``'s cache file with ``bars`` (that symbol only), atomically.

        ``bars``: a canonical frame, or a mapping of ``date`` and bar columns to arrays.
        """
        dates = np.asarray(bars["date"], dtype="datetime64[ns]")
        columns = {"symbol": pa.array([symbol] * len(dates), type=pa.string()), "date": pa.array(dates)}
        for col in CANONICAL_COLUMNS[2:]:
            columns[col] = pa.array(np.asarray(bars[col], dtype="float64"))
        info = {"symbol": symbol, "covered_from": str(pd.Timestamp(covered_from).date()),
                "complete_to": str(pd.Timestamp(complete_to).date()), "source": source}
        table = pa.table(columns, metadata={META_KEY: json.dumps(info).encode()})
        atomic_write_parquet(table, self.path_for(symbol), sync_dir=sync_dir)

    def sync(self) -> None:
        """fsync the cache folder (after writes made with ``sync_dir=False``)."""
        fsync_dir(self.root)

    def symbols(self) -> list[str]:
        """Symbols with a cache file (read from the files' metadata), sorted."""
        out = []
        for path in sorted(self.root.glob(f"*{SUFFIX}")):
            raw = (pq.read_schema(path).metadata or {}).get(META_KEY)
            if raw is not None:
                out.append(json.loads(raw)["symbol"])
        return sorted(out)

    def status(self, symbols: Iterable[str] | None = None) -> pd.DataFrame:
        """Per symbol: first and last cached bar, rows, covered_from, complete_to (None when absent)."""
        rows = []
        for symbol in (list(symbols) if symbols is not None else self.symbols()):
            meta = self.meta(symbol)
            if meta is None:
                rows.append({"symbol": symbol, "first": None, "last": None, "rows": 0,
                             "covered_from": None, "complete_to": None})
                continue
            dates = pq.read_table(self.path_for(symbol), columns=["date"]).column("date").to_pandas()
            rows.append({"symbol": symbol,
                         "first": pd.Timestamp(dates.min()).date() if len(dates) else None,
                         "last": pd.Timestamp(dates.max()).date() if len(dates) else None,
                         "rows": len(dates), "covered_from": meta.covered_from.date(),
                         "complete_to": meta.complete_to.date()})
        return pd.DataFrame(rows, columns=["symbol", "first", "last", "rows", "covered_from", "complete_to"])
