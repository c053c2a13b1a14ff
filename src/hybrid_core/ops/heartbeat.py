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
HEALTHY_STATUSES = frozenset({"ok", "waiting", "starting"})
DEGRADED_STATUS = "degraded"
"""The run works but a cycle failed closed or entries were halted (see ``reasons``): healthy, with
its reason shown; after ``max_failed_cycles`` failed cycles in a row the run writes ``error``."""
CLOCK_SKEW_S = 60.0


def default_health_file() -> str:
    """``$HYBRID_HEALTH_FILE`` or ``/tmp/hybrid_trader.health``."""
    return os.environ.get(HEALTH_FILE_ENV) or DEFAULT_HEALTH_FILE


def utc_now_iso() -> str:
    """The current UTC time as ISO 8601 with a ``Z`` suffix."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def write_atomically(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` so readers see the old or the new content, never a mix
    (``durable=False``: without the fsyncs, see :func:`~hybrid_core.ops.atomic.atomic_replace`)."""
    with atomic_replace(path, durable=durable) as handle:
        handle.write(data)


class HeartbeatFile:
    """The heartbeat JSON file of one run (default ``/tmp/hybrid_trader.health``).

    ``durable=False`` (replays) replaces it without fsyncs: a reader still never sees half a
    file, but a power loss may leave the previous heartbeat."""

    def __init__(self, path: str | os.PathLike[str] | None = None, *, durable: bool = True) -> None:
        self.path = Path(path if path is not None else default_health_file())
        self.durable = durable

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
        write_atomically(self.path, data, durable=self.durable)
        return payload

    def read(self) -> dict[str, Any] | None:
        """The last heartbeat, or None when the file is missing, unreadable or not a JSON object."""
        return _read_heartbeat(self.path)[0]


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
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, OverflowError):
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


MAX_HEARTBEAT_BYTES = 1 << 16
"""A heartbeat is a few hundred bytes; a bigger file is not one (and is not read whole)."""


def _read_heartbeat(file: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(the heartbeat object, None) or (None, why it is unusable): never raises, never blocks."""
    from ..paths import read_bounded

    try:
        raw = read_bounded(file, "heartbeat file", MAX_HEARTBEAT_BYTES,
                           missing_hint="missing: no run has written it; is `hybrid run` running with this "
                                        "health file?")
    except ValueError as exc:
        return None, str(exc)
    if not raw.strip():
        return None, f"heartbeat file {file} is empty"
    try:
        beat = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        beat = None
    if not isinstance(beat, dict):
        return None, f"heartbeat file {file} is not a JSON object"
    return beat, None


def _text(value: Any, limit: int = 200) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _degraded_reason(beat: dict[str, Any]) -> str:
    for key in ("reason", "reasons", "degraded", "halt_reason", "last_error"):
        value = beat.get(key)
        if value:
            return _text("; ".join(map(str, value)) if isinstance(value, list) else value)
    return "no reason given"


def _failed_cycles_exceeded(beat: dict[str, Any]) -> str | None:
    """The run's own limit of consecutive failed cycles, when the heartbeat carries one."""
    failed = beat.get("failed_cycles")
    limit = beat.get("failed_cycles_limit", beat.get("max_failed_cycles"))
    if isinstance(failed, int) and isinstance(limit, int) and not isinstance(failed, bool) and 0 < limit <= failed:
        return f"{failed} failed cycle(s) in a row (limit {limit})"
    return None


def check_health(path: str | os.PathLike[str], max_age_s: float = DEFAULT_MAX_AGE_S,
                 *, now: datetime | None = None) -> HealthResult:
    """Healthy when the heartbeat is a fresh JSON object whose run reports no error.

    Any content or state of the file gives a verdict (never an exception): missing, a folder,
    a pipe, unreadable, empty, huge, not JSON, no valid time, stale, in the future, an error
    or a stopped run are unhealthy; ``ok``, ``waiting``, ``starting`` are healthy, and
    ``degraded`` (entries halted, exits still running) is healthy with its reason shown,
    unless the run's failed-cycles limit is reached.
    """
    file = Path(path)
    beat, problem = _read_heartbeat(file)
    if beat is None:
        return HealthResult(False, f"UNHEALTHY: {problem}")
    written = _parse_time(beat.get("time"))
    if written is None:
        return HealthResult(False, f"UNHEALTHY: heartbeat file {file} has no valid 'time'", None, beat)
    current = now or datetime.now(UTC)
    age = (current - written).total_seconds()
    where = (f"cycle {_text(beat.get('cycle', '?'), 20)}, mode {_text(beat.get('mode', '?'), 20)}, "
             f"pid {_text(beat.get('pid', '?'), 20)}")
    if age > max_age_s:
        return HealthResult(False, f"UNHEALTHY: stale heartbeat, last written {age:.0f}s ago "
                                   f"(max {max_age_s:.0f}s; {where})", age, beat)
    if age < -CLOCK_SKEW_S:
        return HealthResult(False, f"UNHEALTHY: heartbeat time is {-age:.0f}s in the future; "
                                   f"check the clocks ({where})", age, beat)
    status = _text(beat.get("status", "ok"), 40)
    exceeded = _failed_cycles_exceeded(beat)
    if exceeded:
        return HealthResult(False, f"UNHEALTHY: {exceeded} ({where})", age, beat)
    if status == DEGRADED_STATUS:
        return HealthResult(True, f"OK (degraded): heartbeat {max(age, 0):.0f}s old, "
                                  f"{_degraded_reason(beat)} ({where})", age, beat)
    error = beat.get("last_error")
    if error:
        return HealthResult(False, f"UNHEALTHY: run reports an error: {_text(error)} ({where})", age, beat)
    if status not in HEALTHY_STATUSES:
        return HealthResult(False, f"UNHEALTHY: run status is {status!r} ({where})", age, beat)
    return HealthResult(True, f"OK: heartbeat {max(age, 0):.0f}s old, status {status} ({where})", age, beat)
