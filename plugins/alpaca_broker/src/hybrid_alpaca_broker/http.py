"""HTTP policy for alpaca-py clients: timeouts, no SDK retries, our own bounded read retries.

alpaca-py retries 429 and 504 itself (three times, a fixed 3 s apart), POST /v2/orders
included, so a retried POST can create a second order; and its ``requests`` session has
no timeout, so a silent network hangs forever. :func:`harden_sdk_client` is the ONLY
place that touches the SDK's private attributes (``_retry``, ``_retry_wait``,
``_retry_codes``, ``_session``). Retries are then owned here: :class:`ReadRetry` for
idempotent reads; order submission reconciles by client_order_id instead (broker.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import requests
from loguru import logger
from requests.adapters import HTTPAdapter

T = TypeVar("T")


def _api_error() -> type[Exception]:
    """alpaca-py's APIError, imported on first use (importing alpaca-py costs about 0.5 s)."""
    from alpaca.common.exceptions import APIError

    return APIError

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
"""HTTP statuses after which a read is worth repeating."""


class TimeoutHTTPAdapter(HTTPAdapter):
    """A requests adapter that gives every request a timeout and never retries at transport level."""

    def __init__(self, timeout: float) -> None:
        super().__init__(max_retries=0)
        self.timeout = timeout

    def send(self, request: Any, **kwargs: Any) -> Any:  # type: ignore[override]  # requests API
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        return super().send(request, **kwargs)


def harden_sdk_client(client: Any, timeout: float) -> Any:
    """Disable alpaca-py's automatic retries and mount a timeout on its session; returns ``client``.

    Works for TradingClient and the historical data clients (all subclass ``RESTClient``).
    """
    for attr in ("_retry", "_retry_wait", "_retry_codes", "_session"):
        if not hasattr(client, attr):
            raise RuntimeError(
                f"alpaca-py {type(client).__name__} has no {attr}; this plugin is written for "
                f"alpaca-py 0.44 (pip install 'alpaca-py==0.44.0')")
    client._retry = 0
    client._retry_wait = 0
    client._retry_codes = []
    session: requests.Session = client._session
    adapter = TimeoutHTTPAdapter(timeout)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return client


def close_sdk_client(client: Any) -> None:
    """Close the client's HTTP session (connection pool)."""
    session = getattr(client, "_session", None)
    if session is not None:
        session.close()


def status_of(exc: BaseException) -> int | None:
    """HTTP status of an alpaca-py APIError, else None."""
    return exc.status_code if isinstance(exc, _api_error()) else None


def retry_after(exc: BaseException | None) -> float:
    """The ``Retry-After`` seconds of an HTTP error response, 0 when absent or not a number."""
    response = getattr(exc, "response", None) if isinstance(exc, _api_error()) else None
    value = response.headers.get("Retry-After") if response is not None else None
    try:
        return max(0.0, float(value)) if value is not None else 0.0
    except ValueError:
        return 0.0


def is_transient(exc: BaseException) -> bool:
    """True for failures where the server may not have answered: timeouts, drops, 429, 5xx."""
    if isinstance(exc, (requests.Timeout, requests.ConnectionError)):
        return True
    return status_of(exc) in RETRYABLE_STATUS


def describe_failure(exc: BaseException) -> str:
    """One line for a log: HTTP status and a short body, or the network error's kind."""
    if isinstance(exc, _api_error()):
        body = " ".join(str(exc).split())
        if body.lstrip().startswith("<"):
            body = "HTML error page"
        return f"HTTP {exc.status_code}: {body[:160]}"
    if isinstance(exc, requests.Timeout):
        return f"timeout ({type(exc).__name__})"
    if isinstance(exc, requests.ConnectionError):
        return f"connection error ({type(exc).__name__})"
    if isinstance(exc, ValueError):
        return f"unreadable answer ({type(exc).__name__})"
    return f"{type(exc).__name__}: {exc}"


class ReadRetry:
    """Bounded retries with exponential backoff for idempotent requests (GETs, DELETE of an order).

    ``attempts`` counts the first try; waits are ``backoff * 2**i`` capped at ``max_wait``.
    """

    def __init__(self, attempts: int = 4, backoff: float = 0.5, max_wait: float = 8.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self.max_wait = max_wait
        self.sleep = sleep

    def wait(self, attempt: int, exc: BaseException | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (0-based).

        Exponential backoff, stretched to the server's ``Retry-After`` (seconds) when it sends
        one, capped at ``max_wait``.
        """
        pause = self.backoff * (2 ** attempt)
        return min(self.max_wait, max(pause, retry_after(exc)))

    def call(self, what: str, fn: Callable[[], T]) -> T:
        """Run ``fn``; repeat it on transient failures; re-raise the last failure when out of attempts."""
        for attempt in range(self.attempts):
            try:
                return fn()
            except Exception as exc:
                if not is_transient(exc) or attempt == self.attempts - 1:
                    raise
                pause = self.wait(attempt, exc)
                logger.warning("alpaca {what}: {failure}; retry {n}/{total} in {pause:.2f}s",
                               what=what, failure=describe_failure(exc), n=attempt + 1,
                               total=self.attempts - 1, pause=pause)
                self.sleep(pause)
        raise AssertionError("unreachable")  # pragma: no cover
