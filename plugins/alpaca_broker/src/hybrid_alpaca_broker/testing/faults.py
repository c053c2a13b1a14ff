"""Faults the local Alpaca server injects on demand (429 bursts, HTML 500s, hangs, drops)."""

from __future__ import annotations

import threading
from typing import Literal

import attrs

HTML_500 = ("<html><head><title>500 Internal Server Error</title></head><body>"
            "<center><h1>500 Internal Server Error</h1></center><hr><center>nginx</center></body></html>")


@attrs.define
class Fault:
    """One fault rule, applied to the next ``times`` requests that match ``method`` and ``path``.

    - ``action="status"``: answer ``status`` with ``body`` (JSON text or HTML).
    - ``action="hang"``: wait ``hang_seconds`` before answering (past the client's timeout).
    - ``action="drop"``: close the connection without an answer.
    ``after_accept=True`` processes the request first (the order is created), then misbehaves.
    """

    action: Literal["status", "hang", "drop"] = "status"
    status: int = 500
    body: str | None = None
    content_type: str = "application/json"
    method: str | None = None
    path: str | None = None
    """Path prefix to match (``/v2/orders``); None matches every path."""
    times: int = 1
    after_accept: bool = False
    hang_seconds: float = 2.0
    retry_after: float | None = None
    """Seconds sent in a ``Retry-After`` header with ``action="status"``."""

    def matches(self, method: str, path: str) -> bool:
        """True if this fault applies to a request."""
        return ((self.method is None or self.method.upper() == method.upper())
                and (self.path is None or path.startswith(self.path)))

    def payload(self) -> str:
        """The body sent with ``action="status"``."""
        if self.body is not None:
            return self.body
        if self.status == 429:
            return '{"code":42910000,"message":"rate limit exceeded"}'
        return '{"code":50010000,"message":"internal server error"}'


def rate_limit_burst(times: int, method: str | None = None, path: str | None = None) -> Fault:
    """``times`` consecutive 429 answers."""
    return Fault("status", 429, times=times, method=method, path=path)


def html_500(times: int = 1, method: str | None = None, path: str | None = None,
             after_accept: bool = False) -> Fault:
    """500 answers with an nginx-style HTML body (not JSON)."""
    return Fault("status", 500, body=HTML_500, content_type="text/html", times=times, method=method,
                 path=path, after_accept=after_accept)


class FaultPlan:
    """Thread-safe queue of fault rules; each request consumes at most one matching rule."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self.release = threading.Event()
        """Set on shutdown so hanging handlers return at once."""

    def add(self, fault: Fault) -> Fault:
        """Queue ``fault``; returns it."""
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        """Drop every queued fault."""
        with self._lock:
            self._faults.clear()

    def take(self, method: str, path: str) -> Fault | None:
        """The first fault matching the request (its count decremented), or None."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None
