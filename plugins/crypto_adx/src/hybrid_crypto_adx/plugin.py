"""Entry point of the ``crypto_adx`` plugin (group ``hybrid``): registers the strategy."""

from __future__ import annotations

from hybrid_core import hookimpl

from .strategy import CryptoAdxReversion

HYBRID_CONTRACT = "1.0"
"""The hybrid contract version this plugin is built for (hybrid_core.contracts.CONTRACT_VERSION)."""


@hookimpl
def hybrid_register_strategies(register):  # type: ignore[no-untyped-def]
    """Register :class:`CryptoAdxReversion` as strategy ``crypto_adx``."""
    register(CryptoAdxReversion)
