"""Run a blocking call with a hard time limit.

yfinance can hang for minutes on a silent network (its cookie and crumb requests have a
hard-coded 30 s timeout each, and ``curl_cffi`` sockets ignore Python socket guards), so every
call runs in a daemon worker thread and the caller stops waiting after ``timeout_s``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from ..errors import DataError

T = TypeVar("T")


def call_with_timeout(fn: Callable[[], T], timeout_s: float, what: str) -> T:
    """``fn()``, or :class:`DataError` naming ``what`` if it takes longer than ``timeout_s``.

    An exception raised by ``fn`` is re-raised as is. A call that times out keeps running in
    its daemon thread (Python cannot kill a thread) but its result is discarded.
    """
    outcome: dict[str, Any] = {}

    def worker() -> None:
        try:
            outcome["value"] = fn()
        except BaseException as exc:  # handed to the caller below
            outcome["error"] = exc

    thread = threading.Thread(target=worker, name=f"hybrid-bounded:{what[:40]}", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        raise DataError(f"{what} did not answer within {timeout_s:g} s; check the network "
                        f"(or raise the timeout in the profile's data params)")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
