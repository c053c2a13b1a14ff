"""Entry point of the ``alpaca`` plugin: registers the ``alpaca`` broker and data source."""

from __future__ import annotations

from typing import Any

from hybrid_core import hookimpl

from .broker import AlpacaBroker
from .data_source import AlpacaDataSource

HYBRID_CONTRACT = "1.1"
"""The hybrid contract version this plugin is built for (hybrid_core.contracts.CONTRACT_VERSION)."""


@hookimpl
def hybrid_register_brokers(register: Any) -> None:
    """Register the ``alpaca`` broker."""
    register(AlpacaBroker)


@hookimpl
def hybrid_register_data_sources(register: Any) -> None:
    """Register the ``alpaca`` data source."""
    register(AlpacaDataSource)
