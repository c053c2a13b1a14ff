"""A local Alpaca-compatible server (and its in-memory exchange) for tests and offline rehearsals.

``AlpacaTestServer`` is imported lazily so that ``python -m hybrid_alpaca_broker.testing.server``
runs its module once (no runpy warning).
"""

from typing import Any

from .exchange import SimulatedExchange
from .faults import (
    Fault,
    created_then_error,
    html_500,
    ignored_cancel,
    late_post,
    rate_limit_burst,
    rate_limit_storm,
    unavailable,
)

__all__ = ["AlpacaTestServer", "Fault", "SimulatedExchange", "created_then_error", "html_500", "ignored_cancel",
           "late_post", "rate_limit_burst", "rate_limit_storm", "unavailable"]


def __getattr__(name: str) -> Any:
    if name == "AlpacaTestServer":
        from .server import AlpacaTestServer

        return AlpacaTestServer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
