"""pluggy hook specifications: how a plugin hands its components to hybrid.

A plugin is a module (or object) with functions decorated by :data:`hookimpl` and a
``HYBRID_CONTRACT = "MAJOR.MINOR"`` string naming the contract version it was built for
(:data:`hybrid_core.contracts.CONTRACT_VERSION`). Each component hook receives a ``register``
callback; call it once per component class::

    from hybrid_core import hookimpl

    HYBRID_CONTRACT = "1.1"

    @hookimpl
    def hybrid_register_strategies(register):
        register(MyStrategy)          # name taken from MyStrategy.name

A component class must subclass the matching base in :mod:`hybrid_core.contracts` and set a
class attribute ``name`` (the name a run profile uses, also reachable as ``<plugin>:<name>``)
and, optionally, an attrs ``Params``. hybrid's own commands and components are plugins
registered through these same hooks. docs/plugins.md documents each hook with this signature.
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
def hybrid_register_backtest_engines(register: Register) -> None:
    """Register :class:`~hybrid_core.contracts.BacktestEngine` classes (``hybrid backtest --engine``).

    Called once, when the plugin host is built; the built-in ``native`` engine registers here
    too. Returns nothing: call ``register(cls)`` for each engine. The module holding this hook
    must not import the engine's heavy dependencies (the host imports it to list the engine).
    """


@hookspec
def hybrid_register_commands(cli: Any) -> None:
    """Add CLI commands to ``hybrid``: ``cli.add_command(cmd)``, or ``@cli.command()`` / ``@cli.group()``.

    Called once per plugin, when the plugin host loads it (the CLI loads plugins only when a
    command needs them). A name of one of hybrid's own commands is refused; a name two plugins
    add is used from neither. Returns nothing.
    """
