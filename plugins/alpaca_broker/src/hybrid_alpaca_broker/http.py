"""HTTP policy for alpaca-py clients: timeouts, no SDK retries, our own bounded read retries.

alpaca-py retries 429 and 504 itself (three times, a fixed 3 s apart), POST /v2/orders
included, so a retried POST can create a second order; and its ``requests`` session has
no timeout, so a silent network hangs forever. :func:`harden_sdk_client` is the ONLY
place that touches the SDK's private attributes (``_retry``, ``_retry_wait``,
``_retry_codes``, ``_session``). Retries are then owned here, by one policy:
:class:`RetryBudget` (a time budget per cycle that honours ``Retry-After``); order
submission reconciles by client_order_id between its attempts (submission.py).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from loguru import logger

if TYPE_CHECKING:
    import requests

T = TypeVar("T")


def _requests() -> Any:
    """The requests package, imported on first use: this plugin is loaded by every hybrid process
    (a backtest too), and requests alone is 6 MiB of its resident memory."""
    import requests

    return requests


def _api_error() -> type[Exception]:
    """alpaca-py's APIError, imported on first use (importing alpaca-py costs about 0.5 s)."""
    from alpaca.common.exceptions import APIError

    return APIError

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
"""HTTP statuses after which a read is worth repeating."""


@functools.cache
def timeout_adapter_class() -> type:
    """``TimeoutHTTPAdapter``: a requests adapter that gives every request a timeout and never
    retries at transport level (made on first use, with requests)."""
    from requests.adapters import HTTPAdapter

    class TimeoutHTTPAdapter(HTTPAdapter):
        def __init__(self, timeout: float) -> None:
            super().__init__(max_retries=0)
            self.timeout = timeout

        def send(self, request: Any, **kwargs: Any) -> Any:  # type: ignore[override]  # requests API
            if kwargs.get("timeout") is None:
                kwargs["timeout"] = self.timeout
            return super().send(request, **kwargs)

    return TimeoutHTTPAdapter


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
    adapter = timeout_adapter_class()(timeout)
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
    return getattr(exc, "status_code", None) if isinstance(exc, _api_error()) else None


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
    requests = _requests()
    if isinstance(exc, (requests.Timeout, requests.ConnectionError)):
        return True
    return status_of(exc) in RETRYABLE_STATUS


def describe_failure(exc: BaseException) -> str:
    """One line for a log: HTTP status and a short body, or the network error's kind."""
    if isinstance(exc, _api_error()):
        body = " ".join(str(exc).split())
        if body.lstrip().startswith("<"):
            body = "HTML error page"
        return f"HTTP {status_of(exc)}: {body[:160]}"
    requests = _requests()
    if isinstance(exc, requests.Timeout):
        return f"timeout ({type(exc).__name__})"
    if isinstance(exc, requests.ConnectionError):
        return f"connection error ({type(exc).__name__})"
    if isinstance(exc, ValueError):
        return f"unreadable answer ({type(exc).__name__})"
    return f"{type(exc).__name__}: {exc}"


class RetryBudget:
    """The plugin's one retry policy: repeat transient failures within a total time budget.

    A failed request (timeout, dropped connection, 429, 5xx) is repeated after a pause: the
    server's ``Retry-After`` when it sends one, else ``backoff * 2**i`` capped at ``max_wait``.
    Time spent on failed attempts and pauses is charged to one budget of ``seconds``, shared by
    every request of the broker (reads, order submissions, lookups, cancels) and renewed by
    :meth:`renew` at the start of each cycle. When the next pause does not fit in what is left,
    the last failure is raised: a request is always tried once, never retried past the budget.
    Callers that must not repeat a request blindly (an order POST) use :meth:`wait` and
    :meth:`rest` themselves.
    """

    def __init__(self, seconds: float = 60.0, backoff: float = 0.5, max_wait: float = 8.0,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.backoff = backoff
        self.max_wait = max_wait
        self.sleep = sleep
        self.clock = clock
        self.spent = 0.0

    def renew(self) -> None:
        """A new cycle: the whole budget is available again."""
        self.spent = 0.0

    @property
    def left(self) -> float:
        """Seconds of the budget not yet spent."""
        return max(0.0, self.seconds - self.spent)

    def charge(self, seconds: float) -> None:
        """Count ``seconds`` spent on a failed attempt against the budget."""
        self.spent += max(0.0, seconds)

    def wait(self, attempt: int, exc: BaseException | None = None) -> float:
        """The pause after failed attempt number ``attempt`` (0-based): the server's ``Retry-After``
        when it sent one, else exponential backoff capped at ``max_wait``."""
        hinted = retry_after(exc)
        return hinted if hinted > 0 else min(self.max_wait, self.backoff * (2 ** attempt))

    def rest(self, seconds: float) -> None:
        """Sleep ``seconds`` before the next attempt, charged to the budget."""
        self.sleep(seconds)
        self.charge(seconds)

    def call(self, what: str, fn: Callable[[], T]) -> T:
        """Run ``fn``; repeat it on transient failures while the budget lasts; else re-raise the last one."""
        attempt = 0
        while True:
            started = self.clock()
            try:
                return fn()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                self.charge(self.clock() - started)
                pause = self.wait(attempt, exc)
                if pause > self.left:
                    logger.warning("alpaca {what}: {failure}; not retried (next wait {pause:.2f}s, retry "
                                   "budget left {left:.2f}s of {total:g}s)", what=what,
                                   failure=describe_failure(exc), pause=pause, left=self.left,
                                   total=self.seconds)
                    raise
                attempt += 1
                logger.warning("alpaca {what}: {failure}; retry {n} in {pause:.2f}s (retry budget left "
                               "{left:.2f}s)", what=what, failure=describe_failure(exc), n=attempt,
                               pause=pause, left=self.left)
                self.rest(pause)
