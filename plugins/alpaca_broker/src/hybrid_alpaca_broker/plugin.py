"""Entry point of the ``alpaca`` plugin: registers the ``alpaca`` broker and data source."""

from __future__ import annotations

from typing import Any

from hybrid_core import hookimpl

from .broker import AlpacaBroker
from .data_source import AlpacaDataSource


@hookimpl
def hybrid_register_brokers(register: Any) -> None:
    """Register the ``alpaca`` broker."""
    register(AlpacaBroker)


@hookimpl
def hybrid_register_data_sources(register: Any) -> None:
    """Register the ``alpaca`` data source."""
    register(AlpacaDataSource)
