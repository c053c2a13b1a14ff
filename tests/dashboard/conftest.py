"""Fixtures for the report and dashboard tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from dashboard_support import write_heartbeat  # noqa: E402
from sample_log import write_log  # noqa: E402


@pytest.fixture
def sample_log(tmp_path: Path) -> Path:
    """The hand-worked sample trade log as a CSV file."""
    return write_log(tmp_path / "trades.csv")


@pytest.fixture
def heartbeat_file(tmp_path: Path) -> Path:
    """A fresh paper-mode heartbeat."""
    return write_heartbeat(tmp_path / "hybrid.health")
