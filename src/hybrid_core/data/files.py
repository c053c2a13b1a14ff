"""Reading long-format bar files (Parquet or CSV) into the canonical frame.

API::

    read_bars_file(path, symbols=None, start=None, end=None) -> canonical long frame

A file holds one row per symbol and session: ``symbol, date, open, high, low, close``,
optional ``volume`` and ``adj_close`` (adjusted per STRATEGIES.md by :func:`normalise_bars`).
A file that holds an API error message instead of prices (AlphaVantage's
``{"Error Message": "Invalid API call..."}``, a rate-limit ``Note``...) raises a
:class:`~hybrid_core.errors.DataError` naming the file and quoting the message.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..errors import DataError
from .normalise import normalise_bars

PARQUET_SUFFIXES = {".parquet", ".pq"}
TEXT_SUFFIXES = {".csv", ".txt", ".json"}
_API_MESSAGE_KEYS = ("Error Message", "Information", "Note", "error", "message")


def _api_message(path: Path) -> str | None:
    """The API message a text file holds instead of bars, or None if it looks like data."""
    with open(path, encoding="utf-8", errors="replace") as handle:
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


def _read_parquet(path: Path, symbols: Sequence[str] | None, start: pd.Timestamp | None,
                  end: pd.Timestamp | None) -> pd.DataFrame:
    """Row groups pruned on dates by pyarrow, then one vectorised symbol filter."""
    names = set(pq.read_schema(path).names)
    filters: list[tuple[str, str, object]] = []
    if start is not None and "date" in names:
        filters.append(("date", ">=", pd.Timestamp(start)))
    if end is not None and "date" in names:
        filters.append(("date", "<=", pd.Timestamp(end)))
    table = pq.read_table(path, filters=filters or None)
    if symbols is not None and "symbol" in names:
        wanted = pa.array(list(symbols), type=pa.string())
        table = table.filter(pc.is_in(table["symbol"].cast(pa.string()), value_set=wanted))
    return table.to_pandas()


def _read_raw(path: Path, symbols: Sequence[str] | None, start: pd.Timestamp | None,
              end: pd.Timestamp | None) -> pd.DataFrame:
    suffix = path.suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        return _read_parquet(path, symbols, start, end)
    if suffix in TEXT_SUFFIXES:
        message = _api_message(path)
        if message is not None:
            raise DataError(f"{path} holds an API error message instead of prices: {message[:160]!r}; "
                            f"re-download the file or drop it from the profile")
        return pd.read_csv(path)
    raise DataError(f"unsupported bar file type {suffix!r}: {path} (use .parquet or .csv)")


def read_bars_file(path: str | Path, symbols: Sequence[str] | None = None,
                   start: pd.Timestamp | str | None = None,
                   end: pd.Timestamp | str | None = None) -> pd.DataFrame:
    """Bars of one file as the canonical long frame, filtered to ``symbols`` and [start, end]."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"bar file not found: {path} (check data.params.path in the profile)")
    start_ts = pd.Timestamp(start) if start is not None else None
    end_ts = pd.Timestamp(end) if end is not None else None
    try:
        raw = _read_raw(path, symbols, start_ts, end_ts)
    except DataError:
        raise
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise DataError(f"cannot read bar file {path}: {type(exc).__name__}: {first}") from exc
    try:
        bars = normalise_bars(raw, source=path.name)
    except DataError as exc:
        raise DataError(f"{path}: {exc}; is it a long-format bar file?") from exc
    if symbols is not None:
        bars = bars[bars["symbol"].isin(list(symbols))]
    if start_ts is not None:
        bars = bars[bars["date"] >= start_ts]
    if end_ts is not None:
        bars = bars[bars["date"] <= end_ts]
    return bars.reset_index(drop=True)
