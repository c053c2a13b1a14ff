"""Fixtures for crypto_adx tests (data helpers live in ``crypto_data``)."""

from __future__ import annotations

import pytest
from loguru import logger


@pytest.fixture
def log_lines():  # type: ignore[no-untyped-def]
    """Messages logged through loguru while the test runs."""
    lines: list[str] = []
    sink = logger.add(lambda message: lines.append(str(message.record["message"])), level="DEBUG")
    yield lines
    logger.remove(sink)
