"""Reading long-format bar files (Parquet or CSV): the one reader of local bar files.

API::

    bar_file_problem(path) -> str | None          # offline check: exists, regular, schema
    read_bars_file(path, symbols=None, start=None, end=None) -> long frame, before the gate

A file holds one row per symbol and session: ``symbol, date, open, high, low, close``,
optional ``volume`` and ``adj_close`` (column names in any case; ``ticker``, ``timestamp``,
``Adj Close`` accepted). With ``adj_close``, OHLC are adjusted as STRATEGIES.md says.

The frame returned has the canonical columns (``symbol, date, open, high, low, close,
volume``, float prices, tz-naive session dates) but is **not yet judged**: duplicated rows and
bad bars are still there for the quality gate (:mod:`hybrid_core.data.quality`) to refuse,
drop or keep under the profile's policy. What makes the whole file unusable is refused here,
as a :class:`~hybrid_core.errors.DataError` naming the file and the problem:

- a path that is missing, not a regular file (a folder, a named pipe: never opened) or
  unreadable, an unknown file type, a Parquet file that is corrupt;
- text that is not UTF-8 (a UTF-8/16/32 byte-order mark is honoured);
- a file holding an API error message instead of prices (AlphaVantage's ``{"Error Message":
  ...}``), missing columns, a header row repeated inside the file (files joined together);
- dates that do not parse, are not all in one format, mix values with and without a time
  zone, or lie outside 1800..2200.
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..contracts import NAT_NS, SMALL_CHUNK, at_midnight, used_categories
from ..errors import DataError
from ..paths import bom_encoding, regular_file_problem
from .normalise import adjust_ohlc

PARQUET_SUFFIXES = {".parquet", ".pq"}
TEXT_SUFFIXES = {".csv", ".txt", ".json", ".gz"}
REQUIRED = ("symbol", "date", "open", "high", "low", "close")
OPTIONAL = ("volume", "adj_close")
PRICE_COLUMNS = ("open", "high", "low", "close")
ALIASES = {"adj close": "adj_close", "adjclose": "adj_close", "adjusted_close": "adj_close",
           "timestamp": "date", "datetime": "date", "ticker": "symbol"}
_API_MESSAGE_KEYS = ("Error Message", "Information", "Note", "error", "message")
_NA_TEXT = ["", "nan", "NaN", "NA", "N/A", "n/a", "null", "NULL", "None", "-", "#N/A"]
_TZ_SUFFIX = re.compile(r"\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)$",
                        re.IGNORECASE)
FIRST_YEAR, LAST_YEAR = 1800, 2200
PARQUET_BUFFER_BYTES = 1 << 20
"""Column chunks are streamed through a buffer this big instead of being read whole."""


def canonical_name(name: object) -> str:
    """A column name as hybrid spells it (``Adj Close`` -> ``adj_close``)."""
    key = str(name).strip().lower()
    return ALIASES.get(key, key.replace(" ", "_"))


# ------------------------------------------------------------------ the file itself

def _kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    if suffix in TEXT_SUFFIXES:
        return "csv"
    raise DataError(f"unsupported bar file type {suffix or '(none)'!r}: {path} (use .parquet or .csv)")


def require_regular_file(path: Path, what: str = "data file") -> None:
    """DataError unless ``path`` is an existing regular file (never opens a pipe or a folder)."""
    problem = regular_file_problem(path, what, missing_hint="check data.params.path in the profile; relative "
                                                            "paths are taken from the profile's folder")
    if problem is not None:
        raise DataError(problem)


def _open_binary(path: Path) -> Any:
    if path.suffix.lower() == ".gz":
        import gzip

        return gzip.open(path, "rb")
    return open(path, "rb")


def _open_text(path: Path, encoding: str, errors: str = "strict") -> Any:
    import io

    return io.TextIOWrapper(_open_binary(path), encoding=encoding, errors=errors, newline="")


def _text_encoding(path: Path) -> str:
    try:
        with _open_binary(path) as handle:
            head = handle.read(4)
    except OSError as exc:  # e.g. a .gz file that is not gzip
        raise DataError(f"cannot read bar file {path}: {exc.strerror or _first(exc)}") from None
    return bom_encoding(head) or "utf-8"


def _decode_error(path: Path, exc: UnicodeError, encoding: str) -> DataError:
    where = f" at byte {exc.start}" if isinstance(exc, UnicodeDecodeError) else ""
    return DataError(f"bar file {path} is not {encoding.upper().replace('-SIG', '')} text (undecodable "
                     f"byte{where}); save it as UTF-8")


def _api_message(path: Path, encoding: str) -> str | None:
    """The API message a text file holds instead of bars, or None if it looks like data."""
    with _open_text(path, encoding, errors="replace") as handle:
        head = handle.read(4096)
    text = head.strip()
    if not text.startswith("{"):
        return None
    try:
        payload = json.loads(text)
    except ValueError:
        start = text.find(":")
        return text[start + 1:].strip(' "}') if start > 0 else text[:200]
    if isinstance(payload, dict):
        for key in _API_MESSAGE_KEYS:
            if key in payload:
                return str(payload[key])
        return json.dumps(payload)[:200]
    return None


def _csv_header(path: Path, encoding: str) -> list[str]:
    import csv

    try:
        with _open_text(path, encoding) as handle:
            row = next(csv.reader(handle), [])
    except UnicodeError as exc:
        raise _decode_error(path, exc, encoding) from None
    except (OSError, EOFError) as exc:
        raise DataError(f"cannot read bar file {path}: {_first(exc)}") from None
    return row


def file_columns(path: Path) -> list[str]:
    """The column names of a bar file (CSV header or Parquet schema; nothing else is read)."""
    require_regular_file(path)
    kind = _kind(path)
    if kind == "parquet":
        import pyarrow.parquet as pq

        try:
            return list(pq.read_schema(path).names)
        except Exception as exc:
            raise DataError(f"cannot read data file {path}: {type(exc).__name__}: {_first(exc)}") from None
    encoding = _text_encoding(path)
    message = _api_message(path, encoding)
    if message is not None:
        raise DataError(f"{path} holds an API error message instead of prices: {message[:160]!r}; "
                        f"re-download the file or drop it from the profile")
    return _csv_header(path, encoding)


def _missing_columns(path: Path, names: Sequence[str]) -> None:
    present = {canonical_name(n) for n in names}
    missing = [c for c in REQUIRED if c not in present]
    if missing:
        found = ", ".join(str(n) for n in list(names)[:6]) or "nothing"
        raise DataError(f"data file {path}: bars lack column(s) {', '.join(missing)} (found: {found!s:.80}); "
                        f"a bar file needs symbol, date, open, high, low, close; it may hold an API "
                        f"error message instead of prices: re-download it")


def bar_file_problem(path: Path) -> DataError | None:
    """Why ``path`` cannot be read as a bar file (None when it can): the offline check of
    ``hybrid validate``. Reads the CSV header or the Parquet schema only."""
    try:
        _missing_columns(path, file_columns(path))
    except DataError as exc:
        return exc
    return None


def _first(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0] if text.strip() else ""


# ------------------------------------------------------------------ reading

def _read_csv(path: Path) -> pd.DataFrame:
    encoding = _text_encoding(path)
    names = file_columns(path)
    _missing_columns(path, names)
    by_name = {canonical_name(n): n for n in names}
    text_columns = {by_name["symbol"]: str, by_name["date"]: str}
    numbers = [by_name[c] for c in (*PRICE_COLUMNS, *OPTIONAL) if c in by_name]
    try:
        frame = pd.read_csv(path, encoding=encoding, dtype=text_columns, keep_default_na=False,
                            na_values={c: _NA_TEXT for c in numbers}, skipinitialspace=True,
                            usecols=[by_name[c] for c in (*REQUIRED, *OPTIONAL) if c in by_name])
    except UnicodeError as exc:
        raise _decode_error(path, exc, encoding) from None
    frame.columns = [canonical_name(c) for c in frame.columns]
    _refuse_repeated_header(path, frame)
    return frame


def _refuse_repeated_header(path: Path, frame: pd.DataFrame) -> None:
    dates = frame["date"]
    if pd.api.types.is_datetime64_any_dtype(dates.dtype):
        return
    codes, uniques = pd.factorize(dates.astype(object))
    names = np.array([str(u).strip().lower() in ("date", "timestamp", "datetime") for u in uniques], dtype=bool)
    if not names.any():
        return
    header = names[codes] & (codes >= 0)
    header &= frame["symbol"].astype(object).map(lambda v: str(v).strip().lower() in ("symbol", "ticker")).to_numpy(
        dtype=bool)
    if header.any():
        row = int(np.flatnonzero(header)[0]) + 1
        raise DataError(f"bar file {path}: data row {row} repeats the header line (files joined "
                        f"together?); remove the extra header line(s) ({int(header.sum())} found)")


def _read_parquet(path: Path, symbols: Sequence[str] | None, start: pd.Timestamp | None,
                  end: pd.Timestamp | None) -> tuple[pd.DataFrame, bool]:
    """The rows of a Parquet file a run needs, and only them (predicate and column pushdown).

    Row groups whose statistics cannot hold a wanted symbol or date are never read; of the
    others, the symbol and date columns are read once and give the rows to keep (symbols
    judged once per distinct name, on the column's dictionary), then the other columns are
    decoded one row group at a time and only their kept rows are copied out, so the peak stays
    near the rows kept (plus one row group), not the file. Rows come out in (symbol, session
    date) order when the keys allow it (text symbols, timestamp or date column): each value is
    written once, straight to its sorted place, instead of copied again by :func:`_to_canonical`;
    the second value says so (True: the rows are in that order)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ..ops.memory import arrow_pool

    arrow_pool()  # the process's memory policy, before pyarrow's first buffer
    try:
        schema = pq.read_schema(path)
    except Exception as exc:
        raise DataError(f"cannot read data file {path}: {type(exc).__name__}: {_first(exc)}") from None
    _missing_columns(path, schema.names)
    by_name = {canonical_name(n): n for n in schema.names}
    columns = [by_name[c] for c in (*REQUIRED, *OPTIONAL) if c in by_name]
    date_name, symbol_name = by_name["date"], by_name["symbol"]
    date_type, symbol_type = schema.field(date_name).type, schema.field(symbol_name).type
    rows = _RowFilter(date_name, date_type, symbol_name, symbol_type, symbols, start, end)
    try:
        text = pa.types.is_string(symbol_type) or pa.types.is_large_string(symbol_type)
        file = pq.ParquetFile(path, read_dictionary=[symbol_name] if text else None,  # symbols as codes
                              pre_buffer=False, buffer_size=PARQUET_BUFFER_BYTES)
        keys = _KeyColumns(rows)
        for group, every_date in _row_groups(file, rows):
            keys.add(group, file.read_row_group(group, columns=[symbol_name, date_name], use_threads=False),
                     every_date=every_date)
        dates, place = keys.dates(date_type)
        symbols_ = keys.symbols(sort=place is not None)
        adjust = [by_name[c] for c in (*PRICE_COLUMNS, "adj_close")] if "adj_close" in by_name else None
        frame = pd.DataFrame({"symbol": symbols_, "date": dates,
                              **_values(file, [n for n in columns if n not in (symbol_name, date_name)], keys.picks,
                                        place, adjust)},
                             copy=False)
        frame.columns = [canonical_name(c) for c in frame.columns]
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"cannot read data file {path}: {type(exc).__name__}: {_first(exc)}") from None
    if not (pa.types.is_timestamp(date_type) or pa.types.is_date(date_type)):
        _refuse_repeated_header(path, frame)  # a header row can only hide in a text date column
    return frame, keys.in_order


class _RowFilter:
    """The rows a read keeps, decided on the file's own types: on a row group's statistics
    (:meth:`may_hold`) and as a mask over one row group's symbol and date columns.

    Exact on dates without a time zone (a session is the date of its timestamp); a day wider on
    each side for zoned timestamps, cut exactly on session dates later. A row dated after
    tomorrow is kept for the gate to refuse, and so is a row without a symbol (it could be
    anyone's); a row without a date is not kept when dates are filtered."""

    def __init__(self, date_name: str, date_type: Any, symbol_name: str, symbol_type: Any,
                 symbols: Sequence[str] | None, start: pd.Timestamp | None, end: pd.Timestamp | None) -> None:
        import pyarrow as pa

        self.date_name, self.date_type, self.symbol_name = date_name, date_type, symbol_name
        self.lo = self.hi = self.future = None
        if pa.types.is_timestamp(date_type) or pa.types.is_date(date_type):
            margin = pd.Timedelta(days=1 if getattr(date_type, "tz", None) else 0)
            if start is not None:
                self.lo = pd.Timestamp(start) - margin
            if end is not None:
                self.hi = pd.Timestamp(end) + pd.Timedelta(days=1) + margin
                self.future = pd.Timestamp(_tomorrow())
        self.wanted: set[str] | None = None
        if symbols is not None and (pa.types.is_string(symbol_type) or pa.types.is_large_string(symbol_type)
                                    or pa.types.is_dictionary(symbol_type)):
            self.wanted = {*symbols, ""}
        self.ordered = sorted(self.wanted) if self.wanted is not None else []

    def _instant(self, day: pd.Timestamp) -> np.datetime64:
        """``day`` as the values of the date column read as numpy (UTC instants for zoned stamps)."""
        tz = getattr(self.date_type, "tz", None)
        return (day.tz_localize(tz).tz_convert("UTC").tz_localize(None) if tz else day).to_datetime64()

    def may_hold(self, dates: Any, symbols: Any) -> bool:
        """False when a row group's statistics (``dates``, ``symbols``: its columns' Parquet
        statistics, None when absent) show it holds no kept row; True when unsure."""
        if dates is not None and dates.has_min_max and (self.lo is not None or self.hi is not None):
            try:
                bounds: tuple[np.datetime64, np.datetime64] | None = (_stat_instant(dates.min),
                                                                     _stat_instant(dates.max))
            except (TypeError, ValueError, OverflowError):
                bounds = None
            if bounds is not None:
                first, last = bounds
                if self.lo is not None and last < self._instant(self.lo):
                    return False
                if self.hi is not None and not (first < self._instant(self.hi) or last > self._instant(self.future)):
                    return False
        if (self.wanted is not None and symbols is not None and symbols.has_min_max and symbols.has_null_count
                and symbols.null_count == 0 and getattr(symbols, "is_min_value_exact", True)
                and getattr(symbols, "is_max_value_exact", True)):
            low, high = symbols.min, symbols.max
            if isinstance(low, bytes) or isinstance(high, bytes):
                return True
            at = bisect.bisect_left(self.ordered, low)
            return at < len(self.ordered) and self.ordered[at] <= high
        return True

    def keeps_every_date(self, dates: Any) -> bool:
        """True when a row group's date statistics show every one of its rows inside the date
        bounds (no mask to compute); False when unsure."""
        if self.lo is None and self.hi is None:
            return True
        if dates is None or not dates.has_min_max or not dates.has_null_count or dates.null_count:
            return False
        try:
            first, last = _stat_instant(dates.min), _stat_instant(dates.max)
        except (TypeError, ValueError, OverflowError):
            return False
        return bool((self.lo is None or first >= self._instant(self.lo))
                    and (self.hi is None or last < self._instant(self.hi)))

    def date_mask(self, dates: np.ndarray) -> np.ndarray | None:
        """Rows of one row group kept by the date bounds (None: no bound)."""
        keep = None
        if self.lo is not None:
            keep = dates >= self._instant(self.lo)
        if self.hi is not None:
            upper = (dates < self._instant(self.hi)) | (dates > self._instant(self.future))
            keep = upper if keep is None else keep & upper
        return keep


def _row_groups(file: Any, rows: _RowFilter) -> list[tuple[int, bool]]:
    """The row groups whose statistics may hold a kept row (Parquet's own min/max per column;
    read here rather than through pyarrow.dataset, whose import alone takes a third of a second),
    each with whether its statistics show all its dates kept (:meth:`_RowFilter.keeps_every_date`)."""
    meta = file.metadata
    if not meta.num_row_groups:
        return []
    first = meta.row_group(0)
    where = {first.column(j).path_in_schema: j for j in range(first.num_columns)}

    def stats(group: Any, name: str) -> Any:
        j = where.get(name)
        return None if j is None or not group.column(j).is_stats_set else group.column(j).statistics

    kept = []
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        dates = stats(group, rows.date_name)
        if rows.may_hold(dates, stats(group, rows.symbol_name)):
            kept.append((g, rows.keeps_every_date(dates)))
    return kept


def _stat_instant(value: Any) -> np.datetime64:
    """A date column's statistic as the numpy values :meth:`_RowFilter.date_mask` compares
    (zoned stamps as UTC instants)."""
    stamp = pd.Timestamp(value)
    if stamp.tz is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return stamp.to_datetime64()


class _KeyColumns:
    """The symbol and date columns of the row groups read, cut to the rows kept.

    Symbols read as a dictionary (text symbols) become codes into the stripped, sorted names
    without a string per bar; ``picks`` holds each row group's kept rows (None: all) for the
    other columns."""

    def __init__(self, rows: _RowFilter) -> None:
        self.rows = rows
        self.picks: list[tuple[int, np.ndarray | None]] = []
        self._names: dict[str, int] = {}
        self._ids: list[np.ndarray] = []
        self._symbol_parts: list[Any] = []
        self._date_parts: list[Any] = []
        self._seen: Any = None
        self._seen_id: dict[Any, int] = {}
        self._seen_ids: list[int] = []
        self._seen_good: list[bool] = []
        self.in_order = False
        """True once :meth:`dates` has put the rows in (symbol, session date) order (or found them so)."""

    def _id(self, name: object) -> int:
        key = "" if name is None else str(name).strip()
        return self._names.setdefault(key, len(self._names))

    def _dictionary(self, dictionary: Any) -> tuple[np.ndarray, np.ndarray]:
        """Per entry of a chunk's dictionary (then a missing symbol): its name's id and whether
        it is wanted. Each row group has its own dictionary, mostly of names already seen: they
        are looked up all at once, only new names one by one."""
        import pyarrow as pa
        import pyarrow.compute as pc

        at = None
        if self._seen is not None and self._seen.type == dictionary.type:
            at = pc.index_in(dictionary, value_set=self._seen).to_numpy(zero_copy_only=False)
        if at is None or (at.dtype.kind == "f" and bool(np.isnan(at).any())):
            wanted = self.rows.wanted
            for name in dictionary.to_pylist():
                if name not in self._seen_id:
                    self._seen_id[name] = len(self._seen_id)
                    self._seen_ids.append(self._id(name))
                    self._seen_good.append(wanted is None or name is None or name in wanted)
            self._seen = pa.array(list(self._seen_id), type=dictionary.type)
            at = pc.index_in(dictionary, value_set=self._seen).to_numpy(zero_copy_only=False)
        at = np.append(at.astype(np.int64), -1)  # a missing symbol: the last slot
        ids = np.append(np.asarray(self._seen_ids, dtype=np.int32), self._id(None))
        good = np.append(np.asarray(self._seen_good, dtype=bool), True)
        return ids[at], good[at]

    def add(self, group: int, table: Any, *, every_date: bool = False) -> None:
        """Judge one row group's keys (``table``: its symbol and date columns; ``every_date``:
        its statistics show every date kept)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        symbol, date = table.column(0), table.column(1)
        bounded = not every_date and (self.rows.lo is not None or self.rows.hi is not None)
        keep = self.rows.date_mask(date.to_numpy()) if bounded else None
        wanted = self.rows.wanted
        ids = None
        if pa.types.is_dictionary(symbol.type):
            parts, wanted_parts = [], []
            for chunk in symbol.chunks:
                local, good = self._dictionary(chunk.dictionary)
                index = chunk.indices.fill_null(len(local) - 1).to_numpy()  # a missing symbol: the last slot
                parts.append(local[index])
                if wanted is not None:
                    wanted_parts.append(good[index])
            ids = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32)
            if wanted is not None:
                by_symbol = np.concatenate(wanted_parts) if wanted_parts else np.zeros(0, dtype=bool)
                keep = by_symbol if keep is None else keep & by_symbol
        elif wanted is not None:
            by_symbol = pc.or_kleene(pc.is_in(symbol, value_set=pa.array(sorted(wanted), type=pa.string())),
                                     pc.is_null(symbol)).to_numpy(zero_copy_only=False)
            keep = by_symbol if keep is None else keep & by_symbol
        if keep is not None and keep.all():
            keep = None
        if keep is not None and not keep.any():
            return
        self.picks.append((group, keep))
        if ids is not None:
            self._ids.append(ids if keep is None else ids[keep])
        else:
            self._symbol_parts.extend((symbol if keep is None else symbol.filter(pa.array(keep))).chunks)
        self._date_parts.extend((date if keep is None else date.filter(pa.array(keep))).chunks)

    @functools.cached_property
    def _codes(self) -> tuple[np.ndarray, list[str]]:
        """The kept rows' symbol codes into the sorted names they use, and those names."""
        ids = np.concatenate(self._ids)
        names = np.array(list(self._names), dtype=object)
        used = np.flatnonzero(np.bincount(ids, minlength=len(names)))
        order = used[np.argsort(names[used].astype(str), kind="stable")]
        rank = np.full(len(names), -1, dtype=np.int16 if len(names) < 2**15 else np.int32)  # radix-sortable
        rank[order] = np.arange(len(order))
        return rank[ids], [str(n) for n in names[order]]

    def dates(self, date_type: Any) -> tuple[Any, np.ndarray | None]:
        """The kept rows' dates as pyarrow's pandas conversion gives them, put in (symbol, session
        date) order, ties in file order, as :func:`canonical_order` gives it on the canonical
        columns, and the place of each kept row in that order (:func:`_places`): None when the rows
        are in that order already or the keys cannot tell it (symbols not text, dates not
        timestamps, a row without a date)."""
        import pyarrow as pa

        nulls = any(part.null_count for part in self._date_parts)
        dates = pa.chunked_array(self._date_parts, type=date_type).to_pandas()
        self._date_parts.clear()  # read once: released as soon as converted
        if not self._ids or not pd.api.types.is_datetime64_any_dtype(dates.dtype) or nulls:
            return dates, None
        unit = np.datetime_data(dates.dtype.base)[0]  # numpy and zoned pandas dtypes alike
        instants = np.asarray(dates.array.asi8)  # zoned: UTC instants
        if not len(instants) or int(instants.min()) == NAT_NS:  # NaT without a null (the sentinel's value)
            return dates, None
        if bool((instants[1:] >= instants[:-1]).all()):  # in time order (a date-sorted file): so are their days,
            days = instants                              # and the order of the days is theirs
        else:  # each row's session date (as session_dates_of)
            days = instants.view(f"datetime64[{unit}]").astype("datetime64[D]").view(np.int64)
        order = canonical_order(self._codes[0], days)
        del days
        self.in_order = True
        if order is None:
            return dates, None
        place = _places(order)
        scale = 10 ** (9 - _DIGITS.get(unit, 9))
        if isinstance(dates.dtype, np.dtype) and scale > 1 and _fits(instants, scale):
            # in order and in nanoseconds in one array (the dtype every later step reads), each
            # row written to its place: a row group's rows land near each other, where a gather
            # in order reads each symbol's dates from all over the file's order
            del order
            placed = np.empty_like(instants)
            placed[place] = instants
            placed *= scale
            return pd.Series(placed.view("datetime64[ns]"), name=dates.name, copy=False), place
        return pd.Series(dates.array.take(order), name=dates.name), place

    def symbols(self, *, sort: bool = False) -> Any:
        """The kept rows' symbols (``sort``: in the order :meth:`dates` put the rows in, whose first
        key is the symbol): a categorical of stripped names in sorted order (text symbols), else
        pyarrow's pandas conversion (turned into one by :func:`symbol_categorical`)."""
        import pyarrow as pa

        if not self._ids:
            if self._symbol_parts:
                return pa.chunked_array(self._symbol_parts).to_pandas()
            return pd.Categorical([], categories=[])
        codes, names = self._codes
        if sort:  # each symbol's code repeated as often as it has rows, in code order
            codes = np.repeat(np.arange(len(names), dtype=codes.dtype), np.bincount(codes, minlength=len(names)))
        return pd.Categorical.from_codes(codes, categories=names, validate=False)


_DIGITS = {"s": 0, "ms": 3, "us": 6, "ns": 9}
"""Digits of a second in each datetime64 unit pyarrow's conversion may give."""


def _fits(instants: np.ndarray, scale: int) -> bool:
    """True when every one of ``instants`` times ``scale`` is a datetime64[ns] (no overflow, no NaT)."""
    bound = np.iinfo(np.int64).max // scale
    return -bound < int(instants.min()) and int(instants.max()) <= bound


def _places(order: np.ndarray) -> np.ndarray:
    """Where each row goes when rows are put in ``order`` (positions of the rows, in their new order)."""
    place = np.empty(len(order), dtype=np.intp)
    for start in range(0, len(order), SMALL_CHUNK):  # no row-sized temporary of positions
        part = order[start:start + SMALL_CHUNK]
        place[part] = np.arange(start, start + len(part), dtype=np.intp)
    return place


def _values(file: Any, names: list[str], picks: list[tuple[int, np.ndarray | None]],
            place: np.ndarray | None = None, adjust: Sequence[str] | None = None) -> dict[str, Any]:
    """The kept rows of columns ``names`` (each kept row at its ``place`` in the result, None:
    as read), one row group at a time: float64 for numbers (decoded straight into their places in
    the result, nulls as NaN), else what pyarrow's pandas conversion gives.

    ``adjust``: the file's names of open, high, low, close and adj_close. When all five are
    numbers, each row group's prices are adjusted (:func:`~hybrid_core.data.normalise.adjust_ohlc`)
    before they are placed, while they are a row group's few rows, and adj_close is not returned
    (its values are the close): no adj_close column nor factor array the size of the result.

    Rows put in order go through one reused map of a row group's rows to their places (a row
    not kept lands in a spare slot past the end): no temporary array per row group and column,
    each of which was a fresh mapping of zeroed pages under the memory policy. Rows left in file
    order (a symbol-sorted file: a few big row groups) are taken by position, as few arrays as
    there are row groups."""
    import pyarrow as pa

    schema = file.schema_arrow
    numeric = {n for n in names if pa.types.is_integer(schema.field(n).type)
               or pa.types.is_floating(schema.field(n).type)}
    adjusted = list(adjust) if adjust is not None and all(n in numeric for n in adjust) else []
    sizes = [file.metadata.row_group(g).num_rows if keep is None else int(np.count_nonzero(keep)) for g, keep in picks]
    total = sum(sizes)
    spare = {n: np.empty(total + 1, dtype="float64")  # + the spare slot
             for n in names if n in numeric and not (adjusted and n == adjusted[-1])}
    other: dict[str, list[Any]] = {n: [] for n in names if n not in numeric}
    ordered = place is not None
    target = np.empty(max((len(keep) for _, keep in picks if keep is not None), default=0) if ordered else 0,
                      dtype=np.intp)
    # a row group's prices while adjusted (all five when rows are put in order, else adj_close:
    # the others are adjusted in the result itself) and the factor, reused from one group to the next
    rows = max((size if keep is None or not ordered else len(keep) for (_, keep), size in zip(picks, sizes,
                                                                                             strict=True)), default=0)
    buffers = {n: np.empty(rows if ordered or n == adjusted[-1] else 0, dtype="float64") for n in adjusted}
    factor = np.empty(rows if adjusted else 0, dtype="float64")
    at = 0
    for (group, keep), size in zip(picks, sizes, strict=True):
        where: np.ndarray | slice = slice(at, at + size)
        kept = None  # in file order: the kept rows' positions (few big row groups, as a symbol-sorted file has)
        if place is not None:
            where = place[at:at + size]
            if keep is not None:
                where = target[:len(keep)]
                where.fill(total)
                where[keep] = place[at:at + size]
        elif keep is not None:
            kept = np.flatnonzero(keep)
        prices: dict[str, np.ndarray] = {}  # the row group's prices to adjust, by canonical name
        for name in names:  # a column at a time (all at once left ~25 MiB resident after a small read)
            column = file.read_row_group(group, columns=[name], use_threads=False).column(0)
            if name not in numeric:
                other[name].extend((column if keep is None else column.filter(pa.array(keep))).chunks)
                continue
            values = column.to_numpy()  # integers converted on the way, nulls NaN already
            if not ordered:  # straight into the result (adj_close: a buffer), adjusted there
                into = spare[name][at:at + size] if name in spare else buffers[name][:size]
                if kept is None:
                    into[:] = values
                elif values.dtype == np.float64:  # mode clip: unbuffered
                    np.take(values, kept, out=into, mode="clip")
                else:
                    into[:] = values[kept]
                values = into
            elif name in adjusted:  # pyarrow's values are read-only: into a buffer, adjusted there
                values = _copied(values, buffers[name])
            else:
                spare[name][where] = values
            if name in adjusted:
                prices[("open", "high", "low", "close", "adj_close")[adjusted.index(name)]] = values
        if adjusted:
            adj_close = prices.pop("adj_close")
            adjust_ohlc(prices, adj_close, overwrite=True, factor=factor[:len(adj_close)])  # in place
            for canonical, name in zip(PRICE_COLUMNS, adjusted[:4], strict=True):
                if ordered:
                    spare[name][where] = prices[canonical]
                elif canonical == "close":
                    spare[name][at:at + size] = prices[canonical]
        at += size
    out: dict[str, Any] = {n: values[:total] for n, values in spare.items()}
    for name, parts in other.items():
        values = pa.chunked_array(parts, type=schema.field(name).type).to_pandas()
        if ordered:
            taken = np.empty(total, dtype=np.intp)
            taken[place] = np.arange(total, dtype=np.intp)
            values = pd.Series(values.array.take(taken), name=values.name)
        out[name] = values
    return {n: out[n] for n in names if n in out}


def _copied(values: np.ndarray, buffer: np.ndarray) -> np.ndarray:
    """``values`` copied into the start of ``buffer`` (converted to its type)."""
    into = buffer[:len(values)]
    into[:] = values
    return into


def session_dates_of(path: Path, values: pd.Series) -> np.ndarray:
    """The column ``values`` as tz-naive session dates (datetime64[ns]); DataError naming the
    file, the row and the value when a date does not parse, formats are mixed, or values with
    and without a time zone are mixed."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC").dt.tz_localize(None).dt.normalize().to_numpy("datetime64[ns]")
    if pd.api.types.is_datetime64_dtype(values.dtype):
        parsed = pd.DatetimeIndex(values)
        _check_years(path, parsed, values)
        stamps = parsed.to_numpy("datetime64[ns]")
        if at_midnight(stamps.view(np.int64)):  # dates at midnight already (no NaT either)
            return stamps
        return parsed.normalize().to_numpy("datetime64[ns]")
    if pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype):
        raise DataError(f"bar file {path}: the date column holds numbers ({values.dtype}), not dates; "
                        f"write dates as YYYY-MM-DD")
    codes, uniques = pd.factorize(values.astype(object), use_na_sentinel=True)
    if (codes < 0).any():
        row = int(np.flatnonzero(codes < 0)[0]) + 1
        raise DataError(f"bar file {path}: data row {row} has no date; every bar needs its date")
    texts = pd.Index([str(v).strip() for v in uniques])
    if (texts == "").any():
        row = int(np.flatnonzero(codes == int(np.flatnonzero(texts == "")[0]))[0]) + 1
        raise DataError(f"bar file {path}: data row {row} has no date; every bar needs its date")
    aware = np.array([bool(_TZ_SUFFIX.search(t)) for t in texts], dtype=bool)
    if aware.any() and not aware.all():
        first_aware = _row_of(codes, int(np.flatnonzero(aware)[0]))
        first_naive = _row_of(codes, int(np.flatnonzero(~aware)[0]))
        raise DataError(f"bar file {path}: dates mix values with a time zone (data row {first_aware}: "
                        f"{texts[int(np.flatnonzero(aware)[0])]!r}) and without one (data row {first_naive}: "
                        f"{texts[int(np.flatnonzero(~aware)[0])]!r}); write every date in one form, "
                        f"YYYY-MM-DD")
    parsed = _parse_one_format(path, texts, codes, utc=bool(aware.any()))
    if parsed.tz is not None:
        parsed = parsed.tz_convert("UTC").tz_localize(None)
    _check_years(path, parsed, pd.Series(texts))
    days = parsed.normalize().to_numpy("datetime64[ns]")
    return days[codes]


def _row_of(codes: np.ndarray, unique_index: int) -> int:
    return int(np.flatnonzero(codes == unique_index)[0]) + 1


def _parse_one_format(path: Path, texts: pd.Index, codes: np.ndarray, utc: bool) -> pd.DatetimeIndex:
    iso = pd.to_datetime(texts, format="ISO8601", errors="coerce", utc=utc)
    if not iso.isna().any():
        return pd.DatetimeIndex(iso)
    from pandas.tseries.api import guess_datetime_format

    first = texts[0]
    guess = guess_datetime_format(first)
    if guess is None:
        bad = int(np.flatnonzero(iso.isna())[0])
        raise DataError(f"bar file {path}: data row {_row_of(codes, bad)} has {texts[bad]!r}, which is not "
                        f"a date; write dates as YYYY-MM-DD")
    parsed = pd.to_datetime(texts, format=guess, errors="coerce", utc=utc)
    if parsed.isna().any():
        bad = int(np.flatnonzero(parsed.isna())[0])
        iso_bad = int(np.flatnonzero(iso.isna())[0])
        culprit = bad if not iso.isna()[bad] or iso.isna().all() else iso_bad
        raise DataError(f"bar file {path}: dates are not in one format: data row {_row_of(codes, 0)} has "
                        f"{first!r} but data row {_row_of(codes, culprit)} has {texts[culprit]!r}; write "
                        f"every date as YYYY-MM-DD")
    return pd.DatetimeIndex(parsed)


def _check_years(path: Path, parsed: pd.DatetimeIndex, shown: Any) -> None:
    if not len(parsed) or (FIRST_YEAR <= parsed.min().year and parsed.max().year <= LAST_YEAR):
        return
    years = parsed.year
    bad = (years < FIRST_YEAR) | (years > LAST_YEAR)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"bar file {path}: date {str(list(shown)[i])!r} is not a plausible bar date "
                        f"(years {FIRST_YEAR}..{LAST_YEAR}); check the date column")


def _numbers(values: pd.Series) -> np.ndarray:
    if pd.api.types.is_float_dtype(values.dtype):
        return values.to_numpy(dtype="float64", na_value=np.nan)
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


def read_bars_file(path: str | Path, symbols: Sequence[str] | None = None,
                   start: pd.Timestamp | str | None = None,
                   end: pd.Timestamp | str | None = None) -> pd.DataFrame:
    """Bars of one file in the canonical columns, adjusted, filtered to ``symbols`` and [start, end],
    **before the quality gate** (see the module docstring)."""
    path = Path(path).expanduser()
    require_regular_file(path)
    kind = _kind(path)
    start_ts = pd.Timestamp(start).normalize() if start is not None else None
    end_ts = pd.Timestamp(end).normalize() if end is not None else None
    try:
        raw, in_order = _read_parquet(path, symbols, start_ts, end_ts) if kind == "parquet" else (_read_csv(path),
                                                                                                  False)
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"cannot read data file {path}: {type(exc).__name__}: {_first(exc)}") from exc
    return _to_canonical(path, raw, symbols, start_ts, end_ts, in_order=in_order)


def _tomorrow() -> np.datetime64:
    return (pd.Timestamp.now(tz="UTC").tz_localize(None).normalize() + pd.Timedelta(days=1)).to_datetime64()


def symbol_categorical(values: pd.Series | pd.Categorical) -> pd.Categorical:
    """Symbols as a categorical with sorted categories, stripped; a missing symbol is ``""``."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        given = values if isinstance(values, pd.Categorical) else values.array
        names = [str(c) for c in given.categories]
        codes = np.asarray(given.codes)
        if (names == sorted(set(names)) and all(n == n.strip() for n in names)
                and (not len(codes) or codes.min() >= 0)):
            return given  # the Parquet reader's symbols: already canonical
        codes = codes.astype(np.int64)
    else:
        codes, uniques = pd.factorize(values.astype(object), use_na_sentinel=True)
        names = [str(u) for u in uniques]
    names = [n.strip() for n in names]
    if (codes < 0).any():
        codes = np.where(codes < 0, len(names), codes)
        names.append("")
    merged, unique_names = pd.factorize(np.array(names, dtype=object))
    order = np.argsort(np.array(unique_names, dtype=str), kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    categories = [str(unique_names[i]) for i in order]
    return pd.Categorical.from_codes(rank[merged[codes]] if len(codes) else codes, categories=categories)


def canonical_order(codes: np.ndarray, dates: np.ndarray, keep: np.ndarray | None = None) -> np.ndarray | None:
    """Positions of the rows ``keep`` (None: all) in (symbol code, date) order, ties in their
    own order; None when that is all rows as they stand. A file sorted by date (a bar store
    growing a day at a time) needs only a stable sort of its symbol codes."""
    rows = None if keep is None or keep.all() else np.flatnonzero(keep)
    c = codes if rows is None else codes[rows]
    d = dates if rows is None else dates[rows]
    if not len(c):
        return rows
    if bool((c[1:] >= c[:-1]).all()):
        in_order = d[1:] >= d[:-1]  # within each symbol (no copy of the dates of each)
        in_order |= c[1:] != c[:-1]
        if bool(in_order.all()):
            return rows
        del in_order
    if bool((d[1:] >= d[:-1]).all()):  # numpy's stable sort of 8- and 16-bit integers is a radix sort
        order = np.argsort(c if c.dtype.itemsize <= 2 else c.astype(_small_int(c)), kind="stable")
    else:
        order = np.lexsort((d, c))
    return order if rows is None else rows[order]


def _small_int(values: np.ndarray) -> np.dtype[Any]:
    """The narrowest integer type holding ``values`` (int16 for the codes of fewer than 32,768 symbols)."""
    lo, hi = (int(values.min()), int(values.max())) if len(values) else (0, 0)
    for kind in (np.int8, np.int16, np.int32):
        info = np.iinfo(kind)
        if info.min <= lo and hi <= info.max:
            return np.dtype(kind)
    return np.dtype(np.int64)


def _to_canonical(path: Path, raw: pd.DataFrame, symbols: Sequence[str] | None,
                  start: pd.Timestamp | None, end: pd.Timestamp | None, *, in_order: bool = False) -> pd.DataFrame:
    """The canonical frame of ``raw``, sorted by symbol and date (rows of one symbol and date
    in file order, as the quality gate wants them), whose columns are taken out one by one as
    they are converted (``raw`` is left empty), so a big file is never held twice. ``in_order``:
    ``raw``'s rows are in that order already (the Parquet reader's :func:`canonical_order`)."""
    symbol = symbol_categorical(raw.pop("symbol"))
    dates = session_dates_of(path, raw.pop("date"))
    keep = np.ones(len(dates), dtype=bool)
    if symbols is not None:  # a blank symbol is kept for the gate to refuse: it could be anyone's
        named = {*symbols, ""}
        wanted = np.array([str(c) in named for c in symbol.categories], dtype=bool)
        if not wanted.all():
            keep &= wanted[symbol.codes]
    if start is not None:
        keep &= dates >= start.to_datetime64()
    if end is not None:  # a bar dated after today is kept for the gate: the file's dates are wrong
        keep &= (dates <= end.to_datetime64()) | (dates > _tomorrow())
    every = bool(keep.all())
    rows = None if in_order and every else canonical_order(np.asarray(symbol.codes), dates, None if every else keep)
    del keep

    def cut(values: np.ndarray) -> np.ndarray:
        return values if rows is None else values[rows]

    def numbers(column: str) -> np.ndarray:
        values = cut(_numbers(raw.pop(column)))
        with contextlib.suppress(ValueError):  # raw's column, popped: nobody else sees it (pandas marks it read-only)
            values.flags.writeable = True
        return values

    prices = {c: numbers(c) for c in PRICE_COLUMNS}
    volume = numbers("volume") if "volume" in raw.columns else np.zeros(len(dates) if rows is None else len(rows))
    if "adj_close" in raw.columns:
        adjust_ohlc(prices, numbers("adj_close"), overwrite=True)  # the arrays are this reader's own
    if rows is not None:
        symbol = pd.Categorical.from_codes(np.asarray(symbol.codes)[rows], dtype=symbol.dtype, validate=False)
        if not every:
            symbol = used_categories(symbol)
    return pd.DataFrame({"symbol": symbol, "date": cut(dates), **prices, "volume": volume}, copy=False)
