"""The sweep's journal: every finished set, saved the moment its result arrives (``sweep.sqlite``).

Rerunning a sweep into the same folder skips the sets whose result is already here (a failed
set is tried again), so an interrupted sweep resumes where it stopped and a grid can be
extended. The journal remembers what its results depend on (the profile's content, the window,
the lookahead check, hybrid's and the plugins' versions); a sweep of something else into the
same folder is refused rather than mixed in.
"""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import HybridError
from .worker import SetOutcome

COLUMNS = ("scope", "key", "set_id", "ok", "error", "metrics", "dates", "returns", "equity", "trades", "worker", "pid",
           "seconds", "cpu_seconds", "peak_rss_mib")
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sets (
    scope TEXT NOT NULL, key TEXT NOT NULL, set_id INTEGER NOT NULL, ok INTEGER NOT NULL, error TEXT NOT NULL,
    metrics TEXT NOT NULL, dates BLOB, returns BLOB, equity BLOB, trades BLOB,
    worker TEXT NOT NULL, pid INTEGER NOT NULL, seconds REAL NOT NULL, cpu_seconds REAL NOT NULL,
    peak_rss_mib REAL NOT NULL,
    PRIMARY KEY (scope, key)
);
"""


class SweepJournal:
    """Finished sets of one sweep folder, in SQLite; see the module docstring."""

    def __init__(self, path: Path, fingerprint: dict[str, Any]) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path)
        self._conn.executescript(SCHEMA)
        columns = tuple(row[1] for row in self._conn.execute("PRAGMA table_info(sets)"))
        if columns != COLUMNS:
            self._conn.close()
            raise HybridError(f"{path} was written by another version of hybrid's sweep (its columns differ); use "
                              f"a new --out folder, or delete it to start over")
        self._check(fingerprint)

    def _check(self, fingerprint: dict[str, Any]) -> None:
        row = self._conn.execute("SELECT value FROM meta WHERE name = 'fingerprint'").fetchone()
        if row is None:
            with self._conn:
                self._conn.execute("INSERT INTO meta VALUES ('fingerprint', ?)", (json.dumps(fingerprint),))
            return
        stored = json.loads(row[0])
        for name in sorted(set(stored) | set(fingerprint)):
            if stored.get(name) != fingerprint.get(name):
                raise HybridError(f"{self.path.parent} holds a sweep with another {name} ({_short(stored.get(name))}, "
                                  f"now {_short(fingerprint.get(name))}); use a new --out folder, or delete it to "
                                  f"start over")

    def finished(self, scope: str) -> dict[str, SetOutcome]:
        """The successful outcomes of ``scope`` by set key."""
        rows = self._conn.execute("SELECT * FROM sets WHERE scope = ? AND ok = 1", (scope,)).fetchall()
        return {row[1]: _outcome(row) for row in rows}

    def record(self, outcome: SetOutcome) -> None:
        """Save one outcome (replacing an earlier one of the same set and scope)."""
        with self._conn:
            self._conn.execute(
                "INSERT OR REPLACE INTO sets VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (outcome.scope, outcome.key, outcome.set_id, int(outcome.ok), outcome.error,
                 json.dumps(outcome.metrics, default=_plain),
                 _array_bytes(outcome.dates, "datetime64[ns]"), _array_bytes(outcome.returns, "float64"),
                 _frame_bytes(outcome.equity), _frame_bytes(outcome.trades),
                 outcome.worker, outcome.pid, outcome.seconds, outcome.cpu_seconds, outcome.peak_rss_mib))

    def close(self) -> None:
        """Close the database."""
        self._conn.close()


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else value
    return text if len(text) <= 60 else text[:57] + "..."


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def _array_bytes(values: np.ndarray | None, dtype: str) -> bytes | None:
    return None if values is None else np.ascontiguousarray(values, dtype=dtype).tobytes()


def _frame_bytes(frame: pd.DataFrame | None) -> bytes | None:
    if frame is None:
        return None
    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    return buffer.getvalue()


def _frame(blob: bytes | None) -> pd.DataFrame | None:
    return None if blob is None else pd.read_parquet(io.BytesIO(blob))


def _outcome(row: tuple[Any, ...]) -> SetOutcome:
    (scope, key, set_id, ok, error, metrics, dates, returns, equity, trades, worker, pid, seconds, cpu, rss) = row
    return SetOutcome(set_id=int(set_id), key=key, scope=scope, ok=bool(ok), error=error, metrics=json.loads(metrics),
                      dates=None if dates is None else np.frombuffer(dates, dtype="datetime64[ns]"),
                      returns=None if returns is None else np.frombuffer(returns, dtype="float64"),
                      equity=_frame(equity), trades=_frame(trades), worker=worker, pid=int(pid),
                      seconds=float(seconds), cpu_seconds=float(cpu), peak_rss_mib=float(rss))
