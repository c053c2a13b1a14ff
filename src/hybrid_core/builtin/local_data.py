"""Local data source: long-format Parquet or CSV bar files on disk.

Files hold one row per symbol and session with ``symbol, date, open, high, low, close,
volume`` and optionally ``adj_close``. When ``adj_close`` is present, OHLC are adjusted as
STRATEGIES.md says (``open/high/low * adj_close / close``, ``close = adj_close``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import attrs
import numpy as np
import pandas as pd
from loguru import logger

from ..contracts import BAR_COLUMNS, DataSource
from ..data.normalise import adjust_ohlc
from ..errors import DataError
from ..hookspecs import hookimpl

REQUIRED = ("symbol", "date", "open", "high", "low", "close")


def _paths(value: str | list[str]) -> list[str]:
    if isinstance(value, str):
        return [value]
    return list(value)


PARQUET_BATCH_ROWS = 262_144
"""Rows decoded at a time: filtering each batch keeps peak memory near the rows kept, not the file."""
PARQUET_BUFFER_BYTES = 1 << 20
"""Column chunks are streamed through a buffer this big instead of being read whole."""


def _read_parquet(path: Path, symbols: Sequence[str] | None, start: pd.Timestamp | None,
                  end: pd.Timestamp | None) -> pd.DataFrame:
    """Parquet through pyarrow, decoded batch by batch, each batch filtered on dates and symbols."""
    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    schema_names = set(pq.read_schema(path).names)
    columns = [c for c in (*REQUIRED, "volume", "adj_close") if c in schema_names] or None
    condition = None
    for clause in (ds.field("date") >= pd.Timestamp(start) if start is not None and "date" in schema_names
                   else None,
                   ds.field("date") <= pd.Timestamp(end) if end is not None and "date" in schema_names
                   else None,
                   ds.field("symbol").isin(pa_array(symbols)) if symbols is not None and "symbol" in
                   schema_names else None):
        if clause is not None:
            condition = clause if condition is None else condition & clause
    file = pq.ParquetFile(path, read_dictionary=["symbol"] if "symbol" in schema_names else None,
                          pre_buffer=False, buffer_size=PARQUET_BUFFER_BYTES)
    parts = []
    # one thread: parallel column decoding held several row groups' buffers at once (+80 MiB peak)
    for batch in file.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=columns, use_threads=False):
        part = pa.Table.from_batches([batch])
        parts.append(part.filter(condition) if condition is not None else part)
    if not parts:
        return file.schema_arrow.empty_table().select(columns or file.schema_arrow.names).to_pandas()
    return pa.concat_tables(parts).to_pandas()


def pa_array(values: Sequence[str]):  # type: ignore[no-untyped-def]
    """A pyarrow string array (kept tiny so the import stays lazy)."""
    import pyarrow as pa

    return pa.array(list(values), type=pa.string())


def read_bar_file(path: Path, symbols: Sequence[str] | None = None,
                  start: pd.Timestamp | None = None, end: pd.Timestamp | None = None) -> pd.DataFrame:
    """Read one long-format bar file (Parquet or CSV), filtered, without adjusting it."""
    if not path.exists():
        raise DataError(f"data file not found: {path} (check data.params.path in the profile)")
    suffix = path.suffix.lower()
    try:
        if suffix in {".parquet", ".pq"}:
            frame = _read_parquet(path, symbols, start, end)
        elif suffix in {".csv", ".txt", ".gz"}:
            frame = pd.read_csv(path)
        else:
            raise DataError(f"unsupported data file type {suffix!r}: {path} (use .parquet or .csv)")
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"cannot read data file {path}: {type(exc).__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else ''}") from exc
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        snippet = " ".join(str(v) for v in frame.columns[:3])
        raise DataError(f"data file {path} has no {', '.join(missing)} column(s) (found: {snippet!s:.80}); "
                        f"it may hold an API error message instead of prices; re-download it")
    if suffix not in {".parquet", ".pq"}:
        frame["date"] = pd.to_datetime(frame["date"], utc=False, errors="coerce")
        if symbols is not None:
            frame = frame[frame["symbol"].isin(list(symbols))]
        if start is not None:
            frame = frame[frame["date"] >= pd.Timestamp(start)]
        if end is not None:
            frame = frame[frame["date"] <= pd.Timestamp(end)]
    return frame


def adjust_and_clean(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """Adjust OHLC by adj_close/close, drop rows without a positive price (logged once per symbol).

    Returns the canonical long frame, sorted by (symbol, date), without duplicated rows.
    """
    symbol = frame["symbol"]
    if not isinstance(symbol.dtype, pd.CategoricalDtype):
        symbol = symbol.astype(str)
    date = pd.to_datetime(frame["date"])
    if getattr(date.dt, "tz", None) is not None:
        date = date.dt.tz_convert("UTC").dt.tz_localize(None)
    prices = {c: pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype="float64") for c in
              ("open", "high", "low", "close")}
    volume = (pd.to_numeric(frame["volume"], errors="coerce").to_numpy(dtype="float64")
              if "volume" in frame.columns else np.zeros(len(frame)))
    if "adj_close" in frame.columns:
        adjust_ohlc(prices, pd.to_numeric(frame["adj_close"], errors="coerce").to_numpy(dtype="float64"))
    out = pd.DataFrame({"symbol": symbol.array, "date": date.dt.normalize().to_numpy(),
                        **prices, "volume": volume})
    block = np.column_stack([prices[c] for c in ("open", "high", "low", "close")])
    good = np.isfinite(block).all(axis=1) & (block > 0).all(axis=1)
    if not good.all():
        bad = out.loc[~good]
        for sym, rows in bad.groupby("symbol", observed=True):
            first = pd.Timestamp(rows["date"].iloc[0]).date()
            logger.warning("{source}: {symbol}: skipped {n} row(s) without a positive price (first {first})",
                           source=source, symbol=sym, n=len(rows), first=first)
        out = out.loc[good]
    if isinstance(out["symbol"].dtype, pd.CategoricalDtype):
        out["symbol"] = out["symbol"].cat.remove_unused_categories()
        out["symbol"] = out["symbol"].cat.reorder_categories(sorted(out["symbol"].cat.categories))
    keys = out[["symbol", "date"]]
    if not (keys["symbol"].is_monotonic_increasing and _dates_sorted_within(out)):
        out = out.sort_values(["symbol", "date"], kind="stable")
    dup = out.duplicated(["symbol", "date"], keep="last")
    if dup.any():
        logger.warning("{source}: dropped {n} duplicated (symbol, date) row(s)", source=source, n=int(dup.sum()))
        out = out.loc[~dup]
    return out.reset_index(drop=True)[["symbol", "date", *BAR_COLUMNS]]


def _dates_sorted_within(frame: pd.DataFrame) -> bool:
    codes = (frame["symbol"].cat.codes.to_numpy() if isinstance(frame["symbol"].dtype, pd.CategoricalDtype)
             else pd.factorize(frame["symbol"], sort=True)[0])
    dates = frame["date"].to_numpy()
    same = codes[1:] == codes[:-1]
    return bool((dates[1:][same] > dates[:-1][same]).all())


class LocalBars(DataSource):
    """Local bars: long-format Parquet/CSV files (symbol, date, OHLC, volume, optional adj_close)."""

    name = "local"

    @attrs.define(kw_only=True)
    class Params:
        path: str | list[str] = attrs.field(default="data/sample/bars.parquet")
        """One file or a list of files; relative paths are resolved against the profile's folder."""

    def files(self) -> list[Path]:
        """The resolved file paths."""
        out = []
        for raw in _paths(self.params.path):
            path = Path(raw).expanduser()
            out.append(path if path.is_absolute() else ((self.profile_dir or Path.cwd()) / path).resolve())
        return out

    def fetch(self, symbols: Sequence[str], start: pd.Timestamp | None,
              end: pd.Timestamp | None) -> pd.DataFrame:
        parts = [read_bar_file(p, symbols, start, end) for p in self.files()]
        parts = [p for p in parts if len(p)]
        if not parts:
            raise DataError(f"no bars for {len(symbols)} symbol(s) between {start} and {end} in "
                            f"{', '.join(str(p) for p in self.files())}")
        frame = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
        bars = adjust_and_clean(frame, source=self.name)
        found = set(bars["symbol"].unique())
        absent = [s for s in symbols if s not in found]
        if absent:
            logger.warning("local: no bars for {n} symbol(s): {symbols}", n=len(absent),
                           symbols=", ".join(absent[:10]) + (" ..." if len(absent) > 10 else ""))
        return bars


    def latest_date(self, symbols: Sequence[str]) -> pd.Timestamp | None:
        """The last date in the files (from Parquet statistics when available)."""
        latest: pd.Timestamp | None = None
        for path in self.files():
            found = _last_date(path)
            if found is not None and (latest is None or found > latest):
                latest = found
        return latest


def _last_date(path: Path) -> pd.Timestamp | None:
    if not path.exists():
        return None
    try:
        return _read_last_date(path)
    except Exception as exc:  # a corrupt or unreadable file: one line naming it, never a traceback
        raise DataError(f"cannot read data file {path}: {type(exc).__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else ''}") from exc


def _read_last_date(path: Path) -> pd.Timestamp | None:
    if path.suffix.lower() in {".parquet", ".pq"}:
        import pyarrow.parquet as pq

        meta = pq.ParquetFile(path).metadata
        names = [meta.schema.column(i).name for i in range(meta.num_columns)]
        if "date" in names:
            col = names.index("date")
            stats = [meta.row_group(i).column(col).statistics for i in range(meta.num_row_groups)]
            if stats and all(st is not None and st.has_min_max for st in stats):
                return pd.Timestamp(max(st.max for st in stats)).normalize()
        frame = pd.read_parquet(path, columns=["date"])
    else:
        frame = pd.read_csv(path, usecols=lambda c: str(c).strip().lower() == "date")
        frame.columns = ["date"]
    if frame.empty:
        return None
    return pd.Timestamp(pd.to_datetime(frame["date"]).max()).normalize()


@hookimpl
def hybrid_register_data_sources(register):  # type: ignore[no-untyped-def]
    """Register the local file data source."""
    register(LocalBars)
