"""A local Alpaca-compatible server (and its in-memory exchange) for tests and offline rehearsals."""

from .exchange import SimulatedExchange
from .faults import Fault, html_500, rate_limit_burst
from .server import AlpacaTestServer

__all__ = ["AlpacaTestServer", "Fault", "SimulatedExchange", "html_500", "rate_limit_burst"]
