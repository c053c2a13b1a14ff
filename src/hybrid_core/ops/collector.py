"""Python's cyclic garbage collector during a command's start-up.

Starting ``hybrid`` imports pandas, pyarrow, numpy, click and the plugins: a few hundred
thousand objects that live as long as the process. With the collector's default thresholds
(a young collection every 700 new containers, older generations every 10 of those) start-up
walks them again and again, about a sixth of its CPU time (0.2 s of 1.2 s measured on the
imports of ``hybrid backtest``), and every later full collection of a long ``hybrid run``
walks them once more.

:func:`pause_for_start_up` (called by :func:`hybrid_core.cli.main` first) makes young
collections rare while the process imports; :func:`start_up_done` (called once the plugin
host is loaded, which is when the imports are done) moves everything start-up made into the
collector's permanent generation (``gc.freeze``: never walked again, never freed, as module
objects would not be anyway) and restores the thresholds the process had. A command that
never loads the host keeps the rare young collections: memory held in reference cycles is
then reclaimed a little later, never leaked.
"""

from __future__ import annotations

import gc

START_UP_THRESHOLD = 50_000
"""New containers between two young collections while the process starts (Python's default: 700)."""
_state: dict[str, tuple[int, ...] | None] = {}
"""``thresholds``: the process's own, saved while paused (None once start-up is done)."""


def pause_for_start_up() -> None:
    """Make young collections rare until :func:`start_up_done`; only the first call of a process
    does anything (a test session calling ``main`` many times freezes once)."""
    if "thresholds" in _state:
        return
    _state["thresholds"] = thresholds = gc.get_threshold()
    gc.set_threshold(max(START_UP_THRESHOLD, thresholds[0]), *thresholds[1:])


def start_up_done() -> None:
    """Freeze what start-up made and restore the collector's thresholds (once; a no-op unless paused)."""
    thresholds = _state.get("thresholds")
    if thresholds is None:
        return
    _state["thresholds"] = None
    gc.freeze()
    gc.set_threshold(*thresholds)
