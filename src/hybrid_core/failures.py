"""What the ``hybrid`` command prints and exits with when a command fails.

:func:`outcome` maps any exception that ends a command to ``(exit code, one line)`` with the
table of :mod:`hybrid_core.exit_codes`: hybrid's own errors carry their code, click's usage
errors are usage (an option filled from an environment variable names that variable), OS
errors (a folder that cannot be written, a disk that is full) are invalid input, and only
what is left is an internal error, a bug.
"""

from __future__ import annotations

import os

import click
from click.core import ParameterSource

from . import exit_codes
from .errors import HybridError, ProfileError


def _first_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0] if text.strip() else ""


def _from_environment(exc: click.BadParameter) -> str | None:
    """``NAME='value'`` when the bad value of ``exc`` came from an environment variable."""
    param, ctx = exc.param, exc.ctx
    if param is None or ctx is None or param.name is None:
        return None
    if ctx.get_parameter_source(param.name) is not ParameterSource.ENVIRONMENT:
        return None
    envvar = getattr(param, "envvar", None)
    names = [envvar] if isinstance(envvar, str) else list(envvar or [])
    if not names and ctx.auto_envvar_prefix and param.name:
        names = [f"{ctx.auto_envvar_prefix}_{param.name.upper()}"]
    for name in names:
        if name in os.environ:
            return f"{name}={os.environ[name]!r}"
    return None


def _usage_line(exc: click.UsageError) -> str:
    if isinstance(exc, click.BadParameter):
        source = _from_environment(exc)
        if source is not None:
            opts = "/".join(getattr(exc.param, "opts", []) or [])
            return (f"error: environment variable {source} is invalid for {opts}: {exc.message.rstrip('.')}; "
                    f"fix or unset it")
    where = exc.ctx.command_path if exc.ctx is not None else "hybrid"
    return f"error: {exc.format_message()} (see '{where} --help')"


def outcome(exc: BaseException) -> tuple[int, str | None]:
    """The exit code and the one line to print (None: print nothing) for ``exc``."""
    if isinstance(exc, click.exceptions.Exit):
        return exc.exit_code, None
    if isinstance(exc, click.exceptions.Abort):
        return exit_codes.INTERRUPTED, "aborted"
    if isinstance(exc, KeyboardInterrupt):
        return exit_codes.INTERRUPTED, "interrupted"
    if isinstance(exc, click.UsageError):
        return exit_codes.USAGE, _usage_line(exc)
    if isinstance(exc, click.ClickException):
        return exit_codes.USAGE, f"error: {exc.format_message()}"
    if isinstance(exc, ProfileError):
        return exc.exit_code, "\n".join(f"error: {line}" for line in exc.lines)
    if isinstance(exc, HybridError):
        return exc.exit_code, f"error: {exc}"
    if isinstance(exc, OSError) and (exc.strerror or exc.filename):
        where = f"{exc.filename}: " if exc.filename else ""
        return exit_codes.USAGE, f"error: {where}{exc.strerror or _first_line(exc)}"
    return exit_codes.INTERNAL, (f"internal error: {type(exc).__name__}: {_first_line(exc)} "
                                 f"(a bug in hybrid or a plugin; run with HYBRID_DEBUG=1 for the traceback)")


def is_bug(exc: BaseException) -> bool:
    """True when ``exc`` ends in the internal-error code (HYBRID_DEBUG=1 then re-raises it)."""
    return outcome(exc)[0] == exit_codes.INTERNAL
