"""Reading hybrid's environment variables: a bad value is refused with a line naming the variable.

``TRADING_MODE`` and ``LIVE_TRADING_ENABLED`` are read by :mod:`hybrid_core.safety` (a bad value
there is a safety refusal); the switches and numbers below are read here.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping

from .errors import EnvironmentValueError

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"", "0", "false", "no", "off"})


def _environ(environ: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if environ is None else environ


def env_flag(name: str, environ: Mapping[str, str] | None = None) -> bool:
    """True/False from a switch variable (unset or empty: False); any other word is refused."""
    raw = _environ(environ).get(name, "")
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise EnvironmentValueError(f"environment variable {name}={raw!r} is not a switch; use 1, true, yes, "
                                f"on (or 0, false, no, off), or unset it")


def env_number(name: str, default: float, *, minimum: float | None = None,
               environ: Mapping[str, str] | None = None) -> float:
    """A finite number from ``name`` (unset or empty: ``default``); above ``minimum`` when given."""
    raw = _environ(environ).get(name, "")
    if not raw.strip():
        return default
    try:
        value = float(raw.strip())
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or (minimum is not None and value <= minimum):
        bound = f" greater than {minimum:g}" if minimum is not None else ""
        raise EnvironmentValueError(f"environment variable {name}={raw!r} is not a number{bound}; "
                                    f"fix it or unset it")
    return value
