"""The heartbeat file a run keeps fresh, and the health check that reads it.

A run writes the heartbeat after every cycle (``status="ok"`` or ``"error"``) and, in loop
mode, every 60 s while it waits for the next cycle (``status="waiting"``). The file is a
small JSON object, replaced atomically (temporary file, fsync, ``os.replace``), so a reader
never sees half of it::

    {"time": "2026-01-02T21:10:03.120000Z", "pid": 4242, "cycle": 42, "mode": "paper",
     "status": "ok", "last_error": null}

:func:`check_health` turns it into a verdict for ``hybrid health``, a Kubernetes liveness
probe or a Docker HEALTHCHECK.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs

from .atomic import atomic_replace

DEFAULT_HEALTH_FILE = "/tmp/hybrid_trader.health"
HEALTH_FILE_ENV = "HYBRID_HEALTH_FILE"
DEFAULT_MAX_AGE_S = 600.0
"""Default staleness limit: ten times the 60 s waiting heartbeat of loop mode, and longer
than a slow cycle (a data fetch can hang ~130 s in yfinance). Cron (one cycle a day) needs
``--max-age 93600`` (26 h)."""
HEALTHY_STATUSES = frozenset({"ok", "waiting", "starting", "degraded"})
"""``degraded``: the run works but a cycle failed closed or entries were halted (see ``reasons``);
after ``max_failed_cycles`` failed cycles in a row the run writes ``error``."""
CLOCK_SKEW_S = 60.0


def default_health_file() -> str:
    """``$HYBRID_HEALTH_FILE`` or ``/tmp/hybrid_trader.health``."""
    return os.environ.get(HEALTH_FILE_ENV) or DEFAULT_HEALTH_FILE


def utc_now_iso() -> str:
    """The current UTC time as ISO 8601 with a ``Z`` suffix."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so readers see the old or the new content, never a mix."""
    with atomic_replace(path) as handle:
        handle.write(data)


class HeartbeatFile:
    """The heartbeat JSON file of one run (default ``/tmp/hybrid_trader.health``)."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path if path is not None else default_health_file())

    def write(self, *, cycle: int, mode: str, last_error: str | None = None, status: str = "ok",
              **extra: Any) -> dict[str, Any]:
        """Record that the run is alive; returns what was written.

        ``last_error`` is the error of the latest cycle (None once a cycle succeeds);
        ``status`` is ``ok``, ``waiting`` (between cycles), ``starting``, ``error`` or
        ``stopped``. Extra keyword values (JSON-serialisable) are stored as they are.
        """
        payload: dict[str, Any] = {"time": utc_now_iso(), "pid": os.getpid(), "cycle": int(cycle),
                                   "mode": mode, "status": status, "last_error": last_error}
        for key, value in extra.items():
            payload.setdefault(key, value)
        data = (json.dumps(payload, default=str, sort_keys=False) + "\n").encode("utf-8")
        write_atomically(self.path, data)
        return payload

    def read(self) -> dict[str, Any] | None:
        """The last heartbeat, or None when the file is missing, unreadable or not a JSON object."""
        try:
            payload = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return payload if isinstance(payload, dict) else None


@attrs.frozen
class HealthResult:
    """Verdict of :func:`check_health`: ``ok`` and one line saying why."""

    ok: bool
    line: str
    age_s: float | None = None
    heartbeat: dict[str, Any] | None = None

    @property
    def exit_code(self) -> int:
        """0 when healthy, 1 otherwise (what probes expect)."""
        return 0 if self.ok else 1


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def check_health(path: str | os.PathLike[str], max_age_s: float = DEFAULT_MAX_AGE_S,
                 *, now: datetime | None = None) -> HealthResult:
    """Healthy when the heartbeat exists, parses, is younger than ``max_age_s`` and reports no error."""
    file = Path(path)
    if not file.exists():
        return HealthResult(False, f"UNHEALTHY: heartbeat file {file} is missing (no run has written "
                                   f"it; is `hybrid run` running with this health file?)")
    try:
        raw = file.read_text(encoding="utf-8")
    except OSError as exc:
        return HealthResult(False, f"UNHEALTHY: heartbeat file {file} is unreadable: {exc.strerror or exc}")
    try:
        beat = json.loads(raw)
    except ValueError:
        beat = None
    if not isinstance(beat, dict):
        return HealthResult(False, f"UNHEALTHY: heartbeat file {file} is not a JSON object")
    written = _parse_time(beat.get("time"))
    if written is None:
        return HealthResult(False, f"UNHEALTHY: heartbeat file {file} has no valid 'time'", None, beat)
    current = now or datetime.now(UTC)
    age = (current - written).total_seconds()
    where = f"cycle {beat.get('cycle', '?')}, mode {beat.get('mode', '?')}, pid {beat.get('pid', '?')}"
    if age > max_age_s:
        return HealthResult(False, f"UNHEALTHY: stale heartbeat, last written {age:.0f}s ago "
                                   f"(max {max_age_s:.0f}s; {where})", age, beat)
    if age < -CLOCK_SKEW_S:
        return HealthResult(False, f"UNHEALTHY: heartbeat time is {-age:.0f}s in the future; "
                                   f"check the clocks ({where})", age, beat)
    status = str(beat.get("status", "ok"))
    error = beat.get("last_error")
    if error:
        return HealthResult(False, f"UNHEALTHY: run reports an error: {error} ({where})", age, beat)
    if status not in HEALTHY_STATUSES:
        return HealthResult(False, f"UNHEALTHY: run status is {status!r} ({where})", age, beat)
    return HealthResult(True, f"OK: heartbeat {max(age, 0):.0f}s old, status {status} ({where})", age, beat)
