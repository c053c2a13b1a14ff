"""Local data source: long-format Parquet or CSV bar files on disk.

Files hold one row per symbol and session with ``symbol, date, open, high, low, close,
volume`` and optionally ``adj_close``. When ``adj_close`` is present, OHLC are adjusted as
STRATEGIES.md says (``open/high/low * adj_close / close``, ``close = adj_close``). Reading is
:func:`hybrid_core.data.files.read_bars_file` (the one reader of bar files); the engine judges
the bars with the quality gate (:meth:`fetch_unchecked` hands them over as the files hold them).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import attrs
import numpy as np
import pandas as pd
from loguru import logger

from ..contracts import DataSource
from ..data.files import bar_file_problem, read_bars_file, require_regular_file, session_dates_of
from ..data.quality import gate_bars
from ..errors import DataError, HybridError
from ..hookspecs import hookimpl
from ..paths import resolve_path


def _paths(value: str | list[str]) -> list[str]:
    if isinstance(value, str):
        return [value]
    return list(value)


def _no_blank_entry(_instance: object, _attribute: attrs.Attribute, value: str | list[str]) -> None:
    if isinstance(value, list) and (not value or any(not str(p).strip() for p in value)):
        raise ValueError("name at least one bar file, and no empty path in the list")


NO_FILE = ("no bar file named: set data.params.path to your Parquet/CSV file(s), or use the bundled "
           "sample with data: {source: sample}")


class LocalBars(DataSource):
    """Local bars: long-format Parquet/CSV files (symbol, date, OHLC, volume, optional adj_close)."""

    name = "local"

    @attrs.define(kw_only=True)
    class Params:
        path: str | list[str] = attrs.field(default="", validator=_no_blank_entry)
        """One file or a list of files; relative paths are resolved against the profile's folder.
        No default file (``""``: refused by :meth:`offline_check` and :meth:`files`): a default would trade
        on whatever happens to lie there; the bundled sample is the ``sample`` source."""

    def files(self) -> list[Path]:
        """The resolved file paths (the profile's folder for relative ones: :func:`resolve_path`)."""
        raw = _paths(self.params.path)
        if not raw or not any(str(p).strip() for p in raw):
            raise DataError(NO_FILE)
        return [resolve_path(p, self.profile_dir) for p in raw]

    def offline_check(self) -> list[HybridError]:
        """A file is named, and every file exists, is a regular readable file and has a bar schema
        (header or Parquet schema only)."""
        try:
            files = self.files()
        except DataError as exc:
            return [exc]
        return [problem for path in files if (problem := bar_file_problem(path)) is not None]

    def fetch_unchecked(self, symbols: Sequence[str], start: pd.Timestamp | None,
                        end: pd.Timestamp | None) -> pd.DataFrame:
        """The files' bars in [start, end] as they are, each row tagged with its ``file``."""
        parts: list[pd.DataFrame] = []
        files: list[str] = []
        codes: list[np.ndarray] = []
        for path in self.files():
            part = read_bars_file(path, symbols, start, end)
            if len(part):
                codes.append(np.full(len(part), len(files), dtype=np.int32))
                parts.append(part)
                files.append(str(path))
        if not parts:
            raise DataError(f"no bars for {len(symbols)} symbol(s) between "
                            f"{_day(start)} and {_day(end)} in {', '.join(str(p) for p in self.files())}")
        if len(parts) > 1:
            symbols_all = pd.api.types.union_categoricals([p["symbol"] for p in parts], sort_categories=True)
            frame = pd.concat([p.drop(columns=["symbol"]) for p in parts], ignore_index=True)
            frame.insert(0, "symbol", symbols_all)
        else:
            frame = parts[0]
        frame["file"] = pd.Categorical.from_codes(np.concatenate(codes), categories=files)
        present = {str(s) for s in frame["symbol"].unique()}  # from the codes: no string per bar
        absent = [s for s in symbols if s not in present]
        if absent:
            logger.warning("local: no bars for {n} symbol(s): {symbols}", n=len(absent),
                           symbols=", ".join(absent[:10]) + (" ..." if len(absent) > 10 else ""))
        return frame

    def fetch(self, symbols: Sequence[str], start: pd.Timestamp | None,
              end: pd.Timestamp | None) -> pd.DataFrame:
        """The canonical frame: bars that cannot be traded on left out, the rest kept (gate policy
        ``warn``: one warning per kind). The engine loads through the gate with the profile's policy."""
        return gate_bars(self.fetch_unchecked(symbols, start, end), policy="warn").bars

    def latest_date(self, symbols: Sequence[str]) -> pd.Timestamp | None:
        """The last date in the files (from Parquet statistics when available)."""
        latest: pd.Timestamp | None = None
        for path in self.files():
            found = _last_date(path)
            if found is not None and (latest is None or found > latest):
                latest = found
        return latest


def _day(value: pd.Timestamp | None) -> str:
    return str(pd.Timestamp(value).date()) if value is not None else "any date"


def _last_date(path: Path) -> pd.Timestamp | None:
    require_regular_file(path)
    try:
        return _read_last_date(path)
    except DataError:
        raise
    except Exception as exc:  # a corrupt or unreadable file: one line naming it, never a traceback
        raise DataError(f"cannot read data file {path}: {type(exc).__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else ''}") from exc


def _read_last_date(path: Path) -> pd.Timestamp | None:
    if path.suffix.lower() in {".parquet", ".pq"}:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from ..data.files import canonical_name

        meta = pq.ParquetFile(path).metadata
        names = [meta.schema.column(i).name for i in range(meta.num_columns)]
        dates = [n for n in names if canonical_name(n) == "date"]
        if not dates:
            return None
        field = pq.read_schema(path).field(dates[0])
        if pa.types.is_timestamp(field.type) or pa.types.is_date(field.type):
            col = names.index(dates[0])
            stats = [meta.row_group(i).column(col).statistics for i in range(meta.num_row_groups)]
            if stats and all(st is not None and st.has_min_max for st in stats):
                newest = pd.Timestamp(max(st.max for st in stats))
                if newest.tzinfo is not None:
                    newest = newest.tz_convert("UTC").tz_localize(None)
                return newest.normalize()
        column = pd.read_parquet(path, columns=[dates[0]])[dates[0]]
    else:
        frame = read_bars_file(path)
        column = frame["date"]
    if column.empty:
        return None
    days = session_dates_of(path, column)
    return pd.Timestamp(days.max()) if len(days) else None


@hookimpl
def hybrid_register_data_sources(register):  # type: ignore[no-untyped-def]
    """Register the local file data source."""
    register(LocalBars)
