"""The ``hybrid`` command line: a click group whose subcommands live in :mod:`hybrid_core.commands`.

Every module of that package exposing ``command`` is added; plugins may add more through the
``hybrid_register_commands`` hook. :func:`main` turns :class:`HybridError` into one line on
stderr and the error's exit code; a traceback is shown only for bugs (or with HYBRID_DEBUG=1).
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
from typing import Any

import click

from . import __version__
from .errors import HybridError


class HybridContext:
    """Per-invocation state: the plugin host is built on first use, once."""

    def __init__(self) -> None:
        self._host: Any = None

    @property
    def host(self) -> Any:
        """The plugin host for this invocation."""
        if self._host is None:
            from .plugins import build_plugin_host

            self._host = build_plugin_host()
        return self._host


def _load_dotenv() -> None:
    try:
        from dotenv import find_dotenv, load_dotenv
    except ImportError:  # pragma: no cover - python-dotenv is a dependency
        return
    path = find_dotenv(usecwd=True)
    if path:
        load_dotenv(path, override=False)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hybrid")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """hybrid: mean-reversion trading for S&P 500 equities and crypto, backtest and live alike.

    Paper trading unless TRADING_MODE=LIVE and LIVE_TRADING_ENABLED=true. Environment
    variables may also come from a .env file in the working folder.
    """
    _load_dotenv()
    ctx.obj = HybridContext()


def _add_builtin_commands(group: click.Group) -> None:
    from . import commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        try:
            module = importlib.import_module(f"{commands.__name__}.{info.name}")
        except Exception as exc:  # one broken command must not take the others down
            group.add_command(_broken_command(info.name, exc))
            continue
        command = getattr(module, "command", None)
        if isinstance(command, click.Command):
            group.add_command(command)


def _broken_command(name: str, exc: Exception) -> click.Command:
    reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"

    @click.command(name, help=f"(unavailable: {reason})",
                   context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
    def broken() -> None:
        raise HybridError(f"the `{name}` command could not be loaded: {reason}")

    return broken


_add_builtin_commands(cli)


def _add_plugin_commands(argv: list[str]) -> None:
    """Commands from plugins (hook ``hybrid_register_commands``), loaded only when the
    command line names a command that is not built in, or asks for the top-level help."""
    first = next((a for a in argv if not a.startswith("-")), None)
    if first is not None and first in cli.commands:
        return
    from .plugins import build_plugin_host

    host = build_plugin_host()
    for impl in host.manager.hook.hybrid_register_commands.get_hookimpls():
        try:
            impl.function(cli=cli)
        except Exception as exc:  # a plugin's command must not take the CLI down
            click.echo(f"warning: plugin {impl.plugin_name!r} failed to add its commands: {exc}", err=True)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``hybrid`` script."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        _add_plugin_commands(args)
        code = cli.main(args=args, prog_name="hybrid", standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx is not None else "hybrid"
        click.echo(f"error: {exc.format_message()} (see '{where} --help')", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except HybridError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("HYBRID_DEBUG"):
            raise
        first = str(exc).splitlines()[0] if str(exc) else ""
        click.echo(f"internal error: {type(exc).__name__}: {first} "
                   f"(a bug in hybrid or a plugin; run with HYBRID_DEBUG=1 for the traceback)", err=True)
        sys.exit(70)


if __name__ == "__main__":  # pragma: no cover
    main()
