"""Faults the local Alpaca server injects on demand.

429 bursts and storms of a few seconds, HTML 500s, hangs, dropped connections, a POST the
server processes only after the client gave up, an order created but answered with an error,
a DELETE answered 204 that cancels nothing: an operator's bad day, on demand.
"""

from __future__ import annotations

import threading
import time
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
    - ``action="late"``: hold the request ``hang_seconds`` (past the client's timeout), then
      process it and answer a client that is gone: the order appears after the client gave up.
    - ``action="ignore"``: answer ``status`` (204 for a DELETE) without processing anything:
      a cancel that is acknowledged but never happens.
    ``after_accept=True`` processes the request first (the order is created), then misbehaves.
    ``seconds`` makes the fault a storm: it matches every request for that long after its
    first match, whatever ``times`` says.
    """

    action: Literal["status", "hang", "drop", "late", "ignore"] = "status"
    status: int = 500
    body: str | None = None
    content_type: str = "application/json"
    method: str | None = None
    path: str | None = None
    """Path prefix to match (``/v2/orders``); None matches every path."""
    contains: str | None = None
    """Text the request's query string or JSON body must contain (a client_order_id, ``stop_limit``)."""
    times: int = 1
    after_accept: bool = False
    hang_seconds: float = 2.0
    retry_after: float | None = None
    """Seconds sent in a ``Retry-After`` header with ``action="status"``."""
    skip: int = 0
    """Matching requests let through untouched before the fault starts (the 2nd lookup fails...)."""
    seconds: float | None = None
    """Duration of a storm: the fault matches every request for this long after its first match."""
    started: float | None = None
    """Monotonic time of the first match (storms)."""
    hits: int = 0
    """Requests this fault has matched so far."""

    def matches(self, method: str, path: str, text: str = "") -> bool:
        """True if this fault applies to a request (``text``: its query string and body)."""
        return ((self.method is None or self.method.upper() == method.upper())
                and (self.path is None or path.startswith(self.path))
                and (self.contains is None or self.contains in text))

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


def rate_limit_storm(seconds: float, retry_after: float | None = None, method: str | None = None,
                     path: str | None = None) -> Fault:
    """429 to every matching request for ``seconds`` after the first one (with ``Retry-After``)."""
    return Fault("status", 429, seconds=seconds, retry_after=retry_after, method=method, path=path)


def late_post(hang_seconds: float = 2.0, times: int = 1, contains: str | None = None) -> Fault:
    """``POST /v2/orders`` processed ``hang_seconds`` late, after the client gave up waiting."""
    return Fault("late", method="POST", path="/v2/orders", hang_seconds=hang_seconds, times=times,
                 contains=contains)


def created_then_error(status: int = 500, times: int = 1, contains: str | None = None) -> Fault:
    """``POST /v2/orders`` that creates the order and answers ``status`` (an HTML error page)."""
    fault = (html_500(times, method="POST", path="/v2/orders", after_accept=True) if status >= 500 else
             Fault("status", status, times=times, method="POST", path="/v2/orders", after_accept=True))
    fault.contains = contains
    return fault


def ignored_cancel(times: int = 1) -> Fault:
    """``DELETE /v2/orders/{id}`` answered 204 while the order stays open."""
    return Fault("ignore", 204, body="", times=times, method="DELETE", path="/v2/orders/")


def unavailable(times: int = 1, method: str | None = None, path: str | None = None,
                status: int = 503, skip: int = 0, contains: str | None = None,
                seconds: float | None = None) -> Fault:
    """``times`` answers ``status`` (503 Service Unavailable) to matching requests after ``skip`` good
    ones, or every answer for ``seconds`` after the first."""
    return Fault("status", status, body='{"code":50300000,"message":"service unavailable"}',
                 times=times, method=method, path=path, skip=skip, contains=contains, seconds=seconds)


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

    def take(self, method: str, path: str, text: str = "") -> Fault | None:
        """The first fault matching the request (its count decremented, a storm timed), or None."""
        now = time.monotonic()
        with self._lock:
            for fault in list(self._faults):
                if not fault.matches(method, path, text):
                    continue
                if fault.skip > 0:
                    fault.skip -= 1
                    continue
                if fault.seconds is not None:
                    fault.started = now if fault.started is None else fault.started
                    if now - fault.started > fault.seconds:
                        self._faults.remove(fault)
                        continue
                else:
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                fault.hits += 1
                return fault
        return None

    def pending(self) -> list[Fault]:
        """Faults not used up yet."""
        with self._lock:
            return list(self._faults)
