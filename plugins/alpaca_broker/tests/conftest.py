"""Fixtures: a local Alpaca-compatible server per test and brokers pointed at it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hybrid_alpaca_broker.broker import AlpacaBroker, AlpacaParams
from hybrid_alpaca_broker.testing import AlpacaTestServer, SimulatedExchange
from loguru import logger

FAST = dict(timeout=0.5, backoff=0.01, retry_budget=3.0, cancel_wait=1.0)
"""Broker params that keep fault tests at a fraction of a second (3 s of retries per cycle at most)."""


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Paper-looking keys in the environment."""
    monkeypatch.setenv("ALPACA_API_KEY", "PKTEST0000")
    monkeypatch.setenv("ALPACA_SECRET_KEY", "secret")


@pytest.fixture
def exchange() -> SimulatedExchange:
    """The in-memory account behind the server (tests tweak it before use)."""
    return SimulatedExchange(cash=100_000.0)


@pytest.fixture
def server(exchange: SimulatedExchange) -> Iterator[AlpacaTestServer]:
    """The server on 127.0.0.1, a free port, in a thread."""
    with AlpacaTestServer(exchange) as srv:
        yield srv


@pytest.fixture
def make_broker(server: AlpacaTestServer, keys: None, tmp_path: Path):
    """Build a configured paper broker against the server; keyword args override params."""
    def make(mode: str = "paper", state_dir: Path | None = None, **params) -> AlpacaBroker:
        broker = AlpacaBroker(AlpacaParams(base_url=server.url, **{**FAST, **params}))
        broker.configure(mode=mode, state_dir=str(state_dir or tmp_path / "state"))
        return broker
    return make


@pytest.fixture
def broker(make_broker) -> AlpacaBroker:
    """A configured paper broker against the server."""
    return make_broker()


@pytest.fixture
def logs() -> Iterator[list[str]]:
    """Log lines (loguru messages) emitted during the test."""
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m).rstrip()), level="DEBUG", format="{level} {message}")
    yield lines
    logger.remove(sink)
