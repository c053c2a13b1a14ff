"""hybrid's own CLI commands: a built-in plugin, registered through ``hybrid_register_commands`` like
any plugin's commands. One module per command, each exposing ``command`` (a click command or group).

A command module that fails to import becomes a stub saying why, so the other commands still work.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from ..errors import HybridError
from ..hookspecs import hookimpl

CORE_COMMANDS = ("backtest", "dashboard", "data", "health", "notify", "plugin", "plugins", "replay", "report",
                 "run", "sweep", "validate")
"""The modules of this package that are commands (their names are reserved: no plugin may take one)."""


@hookimpl
def hybrid_register_commands(cli: Any) -> None:
    """Add hybrid's own commands."""
    for name in CORE_COMMANDS:
        cli.add_command(_command(name), name=name)


def _command(name: str) -> click.Command:
    try:
        module = importlib.import_module(f"{__name__}.{name}")
    except Exception as exc:  # one broken command must not take the others down
        return _broken_command(name, exc)
    command = getattr(module, "command", None)
    if not isinstance(command, click.Command):
        return _broken_command(name, TypeError(f"{module.__name__}.command is not a click command"))
    return command


def _broken_command(name: str, exc: Exception) -> click.Command:
    reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"

    @click.command(name, help=f"(unavailable: {reason})",
                   context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
    def broken() -> None:
        raise HybridError(f"the `{name}` command could not be loaded: {reason}")

    return broken
