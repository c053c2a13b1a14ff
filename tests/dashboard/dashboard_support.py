"""Helpers shared by the report and dashboard tests (a module of its own: every test folder has a
conftest.py, so ``from conftest import`` would depend on which one pytest imported last)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

TILE_SCALES = {"%": 0.01, "M": 1e6, "B": 1e9}


def tile_number(text: str) -> float:
    """A tile's text as a number: '$52,075.00' -> 52075.0, '40.0%' -> 0.4, '-$1.25M' -> -1.25e6."""
    clean = text.replace("$", "").replace(",", "").strip()
    scale = TILE_SCALES.get(clean[-1:], 1.0)
    return float(clean[:-1] if scale != 1.0 else clean) * scale


def tile_tolerance(text: str) -> float:
    """Half a unit of the tile's last shown digit (e.g. 0.005 for cents, 5000 for '$15.80M')."""
    clean = text.replace("$", "").replace(",", "").strip()
    scale = TILE_SCALES.get(clean[-1:], 1.0)
    digits = clean.rstrip("%MB")
    decimals = len(digits.split(".")[1]) if "." in digits else 0
    return 0.5 * 10 ** -decimals * scale + 1e-12


def write_heartbeat(path: Path, *, age_seconds: float = 0.0, mode: str = "paper",
                    last_error: str | None = None, cycle: int = 42) -> Path:
    """A heartbeat file as the OPS heartbeat writer produces it, ``age_seconds`` old."""
    when = datetime.now(UTC).timestamp() - age_seconds
    stamp = datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    path.write_text(json.dumps({"time": stamp, "cycle": cycle, "mode": mode,
                                "last_error": last_error, "status": "ok" if not last_error else "error"}))
    return path


def write_state_db(path: Path, marks: dict[str, float], as_of: str = "2026-01-13") -> Path:
    """A run's state database (the real StateStore) whose last cycle marked ``marks`` at ``as_of``."""
    from hybrid_core.ops.state import StateStore

    store = StateStore(path)
    store.record_marks(as_of, {s: (c, as_of) for s, c in marks.items()})
    store.close()
    return path
