"""Runs sweep tasks on the cluster: submit, record each result in the journal as it lands, show progress.

A set whose worker dies is run again by Dask's scheduler on another worker (a replacement
worker joins meanwhile). A set that kills every worker it runs on (Dask gives up after
``distributed.scheduler.allowed-failures`` deaths) is recorded as failed with that reason; the
sweep goes on either way.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any

import attrs
from loguru import logger

from ..errors import HybridError
from .journal import SweepJournal
from .worker import SetOutcome, SetTask, run_set


class SetRunner:
    """Runs :class:`SetTask` lists on a Dask client, skipping sets the journal already has."""

    def __init__(self, client: Any, journal: SweepJournal, *, progress: bool | None = None) -> None:
        self.client = client
        self.journal = journal
        self.progress = sys.stderr.isatty() if progress is None else progress
        self.ran = 0
        self.skipped = 0
        self.busy_seconds = 0.0
        """Wall time spent waiting for sets that ran (the cluster's time on this sweep's sets)."""
        self.cpu_seconds = 0.0
        """CPU time the workers spent in the sets that ran."""

    def run(self, tasks: Sequence[SetTask], desc: str = "sweep") -> dict[tuple[str, str], SetOutcome]:
        """Outcomes by (scope, key): from the journal when finished before, else run now."""
        from distributed import as_completed

        out: dict[tuple[str, str], SetOutcome] = {}
        todo: dict[tuple[str, str], SetTask] = {}
        finished: dict[str, dict[str, SetOutcome]] = {}
        for task in tasks:
            scope_done = finished.setdefault(task.scope, self.journal.finished(task.scope))
            ident = (task.scope, task.key)
            if task.key in scope_done:
                out[ident] = attrs.evolve(scope_done[task.key], set_id=task.set_id)
            elif ident not in todo:
                todo[ident] = task
        self.skipped += len(out)
        if not todo:
            return out
        t0 = time.perf_counter()
        futures = {self.client.submit(run_set, task, pure=False, key=task_key(task)): task for task in todo.values()}
        bar = _bar(len(todo), desc, self.progress)
        try:
            for future, value in as_completed(futures, with_results=True, raise_errors=False):
                task = futures[future]
                if not isinstance(value, SetOutcome):
                    self._check_cluster(future, len(out), len(tasks))
                outcome = value if isinstance(value, SetOutcome) else _failed(task, future)
                self.journal.record(outcome)
                out[(task.scope, task.key)] = outcome
                self.ran += 1
                self.cpu_seconds += outcome.cpu_seconds
                if not outcome.ok:
                    logger.warning("set {id} ({scope}) failed: {error}", id=task.set_id, scope=task.scope,
                                   error=outcome.error)
                if bar is not None:
                    bar.update(1)
        finally:
            if bar is not None:
                bar.close()
            self.busy_seconds += time.perf_counter() - t0
        return out


    def _check_cluster(self, future: Any, done: int, total: int) -> None:
        """Stop the sweep (finished sets stay in the journal) when the cluster itself went away."""
        from concurrent.futures import CancelledError

        exc = future.exception() if future.status != "cancelled" else CancelledError()
        if isinstance(exc, CancelledError) or self.client.status in ("closing", "closed"):
            raise HybridError(f"lost the Dask cluster after {done} of {total} sets ({type(exc).__name__}); rerun "
                              f"into the same --out to go on: the finished sets are kept")


def task_key(task: SetTask) -> str:
    """The Dask key of a set's task: ``hybrid-set-<id>-<scope>-<sweep id>`` (unique on a shared cluster)."""
    return f"hybrid-set-{task.set_id}-{task.scope}-{task.sweep_id}"


def set_id_of(key: Any) -> str | None:
    """The set id in a :func:`task_key`, or None for another task's key."""
    text = str(key)
    return text.split("-")[2] if text.startswith("hybrid-set-") else None


def _failed(task: SetTask, future: Any) -> SetOutcome:
    """The outcome of a set whose task itself failed (its workers died, or the cluster went away)."""
    from distributed.scheduler import KilledWorker

    exc = future.exception()
    if isinstance(exc, KilledWorker):
        error = ("every worker that ran this set died (Dask gave up after its allowed failures): out of memory, "
                 "or a crash in native code")
    elif isinstance(exc, HybridError):
        error = str(exc)
    else:
        first = str(exc).splitlines()[0] if str(exc) else ""
        error = f"{type(exc).__name__}: {first}"
    return SetOutcome(set_id=task.set_id, key=task.key, scope=task.scope, ok=False, error=error)


def _bar(total: int, desc: str, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="set", file=sys.stderr, mininterval=0.25, dynamic_ncols=True)
