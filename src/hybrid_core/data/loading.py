"""The one way bars reach a strategy: fetch from the data source, then the quality gate.

API::

    result = load_bars(source, symbols, start, end, policy="refuse")   # GateResult, or DataError
    policy_for(profile_policy, live=False)                              # the effective policy

Backtests, replays, live cycles and ``hybrid data status`` all load through :func:`load_bars`,
so a bar is judged the same way whichever path reads it (:mod:`hybrid_core.data.quality`).
A data source hands over its bars with :meth:`DataSource.fetch_unchecked` (the local files
source gives them as the files hold them; other sources give their ``fetch``). A failure in a
source's own code becomes a :class:`~hybrid_core.errors.ComponentError` naming the source.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from ..errors import ComponentError
from .quality import GateResult, gate_bars


def policy_for(profile_policy: str | None, *, live: bool) -> str:
    """The policy of the gate: the profile's ``data.quality``, else ``refuse`` (backtests and
    replays) or ``halt`` (live cycles: bad bars left out and new entries halted)."""
    if profile_policy:
        return profile_policy
    return "halt" if live else "refuse"


def load_bars(source: Any, symbols: Sequence[str], start: pd.Timestamp | None, end: pd.Timestamp | None,
              *, policy: str, log: bool = True) -> GateResult:
    """Bars of ``symbols`` in [start, end] from ``source``, through the quality gate."""
    from ..account.boundary import call  # the one component boundary: a plugin's bug is a ComponentError

    name = getattr(source, "name", type(source).__name__)
    # a source that does not derive from DataSource (duck-typed) may have only fetch()
    method = "fetch_unchecked" if hasattr(source, "fetch_unchecked") else "fetch"
    raw = call(source, method, list(symbols), start, end)
    if not isinstance(raw, pd.DataFrame):
        raise ComponentError(f"data source {name!r} returned {type(raw).__name__} from fetch(), not a DataFrame")
    missing = [c for c in ("symbol", "date", "open", "high", "low", "close") if c not in raw.columns]
    if missing:
        raise ComponentError(f"data source {name!r} returned bars without column(s) {', '.join(missing)}")
    return gate_bars(raw, policy=policy, origin=f"data source {name}", log=log)
