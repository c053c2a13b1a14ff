"""The ``hybrid`` command line, built by :func:`build_cli` (a factory: each call, each test, a fresh one).

Every command, hybrid's own included, comes from the ``hybrid_register_commands`` hook of a
plugin: hybrid-core's commands are the built-in plugin :mod:`hybrid_core.commands`. So that a
liveness probe (``hybrid health``) stays cheap, the group loads that plugin first and the rest
of the plugin host (built-in components, entry points) only when a command uses it, for
``--help``, or for a command name hybrid-core does not have. Whenever the whole host is loaded,
each plugin that failed to load gets one warning line on stderr.

:func:`main` turns :class:`HybridError` into one line on stderr and the error's exit code (table in
:mod:`hybrid_core.exit_codes`, mapping in :mod:`hybrid_core.failures`); a traceback is shown only
for bugs with HYBRID_DEBUG=1.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from . import __version__
from .env import TRUE_WORDS
from .errors import HybridError
from .exit_codes import epilogue
from .failures import is_bug, outcome
from .ops.collector import pause_for_start_up, start_up_done
from .ops.memory import return_freed_memory
from .plugins import COMMANDS_MODULE, CommandSpec, PluginHost


class HybridContext:
    """Per-invocation state handed to commands as ``obj``: the plugin host, loaded on first use."""

    def __init__(self, group: HybridCLI) -> None:
        self._group = group

    @property
    def host(self) -> PluginHost:
        """The whole plugin host (loaded once; load failures printed as warnings)."""
        return self._group.load_host()

    def load_host(self, *, warn: bool = True) -> PluginHost:
        """The whole plugin host; ``warn=False`` for a command that reports load errors itself."""
        return self._group.load_host(warn=warn)


class HybridCLI(click.Group):
    """The ``hybrid`` group: commands from the plugin host's ``hybrid_register_commands`` hook."""

    def __init__(self, *, load_entry_points: bool = True, extra_plugins: list[tuple[str, Any]] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._host = PluginHost()
        self._load_entry_points = load_entry_points
        self._extra_plugins = list(extra_plugins or [])
        self._core_loaded = self._all_loaded = self._warned = False

    def _load_core_commands(self) -> None:
        if not self._core_loaded:
            self._core_loaded = True
            self._host.load_builtins([COMMANDS_MODULE])
            self._add_host_commands()

    def load_host(self, *, warn: bool = True) -> PluginHost:
        """Load every plugin (once) and return the host; print one warning line per failed plugin."""
        self._load_core_commands()
        if not self._all_loaded:
            self._all_loaded = True
            self._host.load_builtins()
            if self._load_entry_points:
                self._host.load_entry_points()
            self._host.load_objects(self._extra_plugins)
            self._add_host_commands()
            start_up_done()  # the imports are done: what they made is frozen, the collector back to normal
        if warn and not self._warned:
            self._warned = True
            for error in self._host.errors:
                click.echo(error.warning, err=True)
        return self._host

    def _add_host_commands(self) -> None:
        conflicts = self._host.command_conflicts()
        for spec in self._host.commands:
            if spec.name not in self.commands:
                self.add_command(_ambiguous(spec.name, conflicts[spec.name]) if spec.name in conflicts
                                 else spec.command, spec.name)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        self._load_core_commands()
        if cmd_name not in self.commands:
            self.load_host()
        return self.commands.get(cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self.load_host()
        return sorted(self.commands)


def _ambiguous(name: str, specs: list[CommandSpec]) -> click.Command:
    providers = " and ".join(f"{s.plugin!r} ({s.package})" for s in specs)

    @click.command(name, help=f"(unavailable: added by plugins {providers})",
                   context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
    def ambiguous() -> None:
        raise HybridError(f"command {name!r} is added by plugins {providers}; neither is used: uninstall "
                          f"or disable one (HYBRID_DISABLE_PLUGINS)")

    return ambiguous


def _load_dotenv() -> None:
    try:
        from dotenv import find_dotenv, load_dotenv
    except ImportError:  # pragma: no cover - python-dotenv is a dependency
        return
    path = find_dotenv(usecwd=True)
    if path:
        load_dotenv(path, override=False)


def build_cli(*, load_entry_points: bool = True, extra_plugins: list[tuple[str, Any]] | None = None) -> HybridCLI:
    """A new ``hybrid`` group with its own plugin host (``extra_plugins``: in-process plugins, for tests)."""

    @click.pass_context
    def callback(ctx: click.Context) -> None:
        """hybrid: mean-reversion trading for S&P 500 equities and crypto, backtest and live alike.

        Paper trading unless TRADING_MODE=LIVE and LIVE_TRADING_ENABLED=true. Environment
        variables may also come from a .env file in the working folder.
        """
        _load_dotenv()
        ctx.obj = HybridContext(group)

    group = HybridCLI(name="hybrid", callback=callback, help=callback.__doc__,
                      load_entry_points=load_entry_points, extra_plugins=extra_plugins,
                      context_settings={"help_option_names": ["-h", "--help"]}, epilog=epilogue())
    click.version_option(__version__, prog_name="hybrid")(group)
    return group


def main(argv: list[str] | None = None, *, cli: click.Group | None = None) -> None:
    """Entry point of the ``hybrid`` script (``cli``: a group from :func:`build_cli`, default a new one).

    Exit codes come from :mod:`hybrid_core.exit_codes` through :func:`hybrid_core.failures.outcome`."""
    args = list(sys.argv[1:] if argv is None else argv)
    pause_for_start_up()
    return_freed_memory()
    try:
        code = (cli or build_cli()).main(args=args, prog_name="hybrid", standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except SystemExit:
        raise
    except BaseException as exc:
        if is_bug(exc) and _debug():
            raise
        code, line = outcome(exc)
        if line:
            click.echo(line, err=True)
        sys.exit(code)


def _debug() -> bool:
    """HYBRID_DEBUG=1: show the traceback of an internal error (lenient: any other word is no)."""
    return os.environ.get("HYBRID_DEBUG", "").strip().lower() in TRUE_WORDS


if __name__ == "__main__":  # pragma: no cover
    main()
