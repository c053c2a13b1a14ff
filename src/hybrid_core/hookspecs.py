"""pluggy hook specifications: how a plugin hands its components to hybrid.

A plugin is a module (or object) with functions decorated by :data:`hookimpl`. Each hook
receives a ``register`` callback; call it once per component class::

    from hybrid_core import hookimpl

    @hookimpl
    def hybrid_register_strategies(register):
        register(MyStrategy)          # name taken from MyStrategy.name

A component class must subclass the matching base in :mod:`hybrid_core.contracts` and set a
class attribute ``name`` (the name a run profile uses) and, optionally, an attrs ``Params``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

PROJECT_NAME = "hybrid"
hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

Register = Callable[..., Any]
"""``register(component_cls, name=None)``: adds one component class to the registry."""


@hookspec
def hybrid_register_data_sources(register: Register) -> None:
    """Register :class:`~hybrid_core.contracts.DataSource` classes.

    Called once, when the plugin host is built (before any profile is read).
    Returns nothing: call ``register(cls)`` for each data source.
    """


@hookspec
def hybrid_register_strategies(register: Register) -> None:
    """Register :class:`~hybrid_core.contracts.Strategy` classes.

    Called once, when the plugin host is built. Returns nothing: call ``register(cls)``
    for each strategy.
    """


@hookspec
def hybrid_register_risk_rules(register: Register) -> None:
    """Register :class:`~hybrid_core.contracts.RiskRule` classes.

    Called once, when the plugin host is built. Returns nothing: call ``register(cls)``
    for each risk rule.
    """


@hookspec
def hybrid_register_brokers(register: Register) -> None:
    """Register :class:`~hybrid_core.contracts.Broker` classes.

    Called once, when the plugin host is built. Returns nothing: call ``register(cls)``
    for each broker.
    """


@hookspec
def hybrid_register_commands(cli: Any) -> None:
    """Add click commands to the ``hybrid`` group (``cli.add_command(...)``).

    Called once, when the CLI starts. Returns nothing.
    """
