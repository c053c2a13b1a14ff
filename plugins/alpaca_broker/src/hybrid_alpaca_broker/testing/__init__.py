"""A local Alpaca-compatible server (and its in-memory exchange) for tests and offline rehearsals.

``AlpacaTestServer`` is imported lazily so that ``python -m hybrid_alpaca_broker.testing.server``
runs its module once (no runpy warning).
"""

from typing import Any

from .exchange import SimulatedExchange
from .faults import Fault, html_500, rate_limit_burst

__all__ = ["AlpacaTestServer", "Fault", "SimulatedExchange", "html_500", "rate_limit_burst"]


def __getattr__(name: str) -> Any:
    if name == "AlpacaTestServer":
        from .server import AlpacaTestServer

        return AlpacaTestServer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
