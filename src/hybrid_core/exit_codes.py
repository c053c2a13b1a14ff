"""The exit codes of every ``hybrid`` command: one table, used by the CLI, the docs and the help.

Every error class of :mod:`hybrid_core.errors` takes its code from here, and
:func:`hybrid_core.cli.main` maps what is not a :class:`~hybrid_core.errors.HybridError`
(click usage errors, OS errors, interrupts, bugs) with the same table. A code says what kind
of problem stopped the command, so a cron job or a probe can act on it without reading text.
"""

from __future__ import annotations

OK = 0
"""The command did what it was asked."""
UNHEALTHY = 1
"""A check answered "no": ``hybrid health`` (stale, missing, unreadable or failed run) and
``hybrid replay --compare-backtest`` (the replay differs from the backtest), ``hybrid notify test``
(a target failed). Never an error in the input."""
USAGE = 2
"""Usage or invalid input: a bad option, date or environment value, a profile that is
unreadable or invalid, a file the profile names that does not exist."""
PLUGIN_LOAD = 3
"""A plugin failed to load while ``HYBRID_STRICT_PLUGINS=1``."""
COMPONENT = 4
"""A component's own code failed (a strategy, a risk rule, a data source or broker plugin)."""
SAFETY = 5
"""A safety layer or the instance lock refused: live trading not enabled, broker health check
failed, another run holds the state database."""
BROKER = 6
"""The broker refused or failed a request."""
DATA = 7
"""Market data is missing, unreadable, stale or fails the quality gate."""
INTERNAL = 70
"""A bug in hybrid or a plugin (run again with ``HYBRID_DEBUG=1`` for the traceback)."""
INTERRUPTED = 130
"""Ctrl-C (SIGINT) before the command finished."""

TABLE: tuple[tuple[int, str], ...] = (
    (OK, "success"),
    (UNHEALTHY, "a check said no: `health` unhealthy, `replay --compare-backtest` differs, `notify test` failed"),
    (USAGE, "usage or invalid input: option, date, environment value, profile, a file it names"),
    (PLUGIN_LOAD, "a plugin failed to load (HYBRID_STRICT_PLUGINS=1)"),
    (COMPONENT, "a component's own code failed (strategy, risk rule, plugin)"),
    (SAFETY, "safety or lock refusal (live not enabled, broker health check, run already active)"),
    (BROKER, "the broker refused or failed a request"),
    (DATA, "data problem: missing, unreadable, stale, or refused by the quality gate"),
    (INTERNAL, "internal error: a bug (HYBRID_DEBUG=1 shows the traceback)"),
    (INTERRUPTED, "interrupted (Ctrl-C)"),
)
"""Every code with its one-line meaning, in order (docs and the ``hybrid --help`` epilogue)."""


def epilogue() -> str:
    """The exit-code table as the text of ``hybrid --help``'s epilogue."""
    rows = "\n".join(f"  {code:>3}  {meaning}" for code, meaning in TABLE)
    return f"Exit codes:\n\n\b\n{rows}"
