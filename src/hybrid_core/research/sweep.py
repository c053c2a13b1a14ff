"""A parameter sweep from start to end: validate every set, start the cluster, run, summarise.

1. The sweep file and every set are validated against the profile before anything starts.
2. The cluster starts (or is joined); every worker must have this client's versions and load
   the sweep's bars (:class:`~hybrid_core.research.worker.SweepPreload`).
3. Sets run as Dask tasks, each result saved in the journal as it lands (rerun skips them).
4. Optionally the walk-forward folds run (training windows, then the chosen sets' test windows).
5. The best set, the Deflated Sharpe Ratio and the PBO are computed from the daily returns of
   every set that ran; :mod:`.outputs` writes the files.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pandas as pd
from loguru import logger

from ..errors import HybridError
from ..profile import load_profile, profile_error
from ..registry import ComponentRegistry
from .cluster import check_versions, follow_events, sweep_client
from .grid import ParameterSet, SweepPlan
from .journal import SweepJournal
from .overfitting import (
    BacktestOverfitting,
    DeflatedSharpe,
    deflated_sharpe,
    partitions_problem,
    probability_of_backtest_overfitting,
)
from .runner import SetRunner, set_id_of
from .variant_backtest import DateSpan
from .variants import ProfileVariants
from .walkforward import Fold, WalkForwardResult, WalkForwardSpec, best_set, make_folds, stitch
from .worker import SetOutcome, SetTask, SweepPreload, WindowFacts, window_facts, worker_report, worker_versions


@attrs.frozen
class SweepRequest:
    """What ``hybrid sweep`` was asked to do."""

    profile_path: Path
    plan: SweepPlan
    out_dir: Path
    window: DateSpan
    workers: int | None = None
    scheduler: str | None = None
    walk_forward: WalkForwardSpec | None = None
    lookahead_cuts: int = 3
    progress: bool | None = None
    log_level: str = "WARNING"


@attrs.define
class SweepResult:
    """Everything a sweep produced, ready to be written by :mod:`.outputs`."""

    request: SweepRequest
    profile_name: str
    sets: list[ParameterSet]
    outcomes: dict[int, SetOutcome]
    """The outcome of each set id on the sweep's whole window."""
    facts: WindowFacts
    best: SetOutcome | None
    deflated: DeflatedSharpe | None
    overfitting: BacktestOverfitting | None
    overfitting_note: str
    walk_forward: WalkForwardResult | None
    workers: list[dict[str, Any]]
    counts: dict[str, int]
    timings: dict[str, float]

    @property
    def dates(self) -> pd.DatetimeIndex:
        """The sweep's sessions."""
        return pd.DatetimeIndex(self.facts.dates)

    @property
    def benchmark(self) -> tuple[str, pd.Series]:
        """The benchmark's name and value curve over the sweep's sessions."""
        return self.facts.benchmark_name, pd.Series(self.facts.benchmark_values, index=self.dates, name="benchmark")

    def returns_matrix(self) -> pd.DataFrame:
        """Daily returns of every set that ran (columns ``set_<id>``), on the sweep's sessions."""
        cols = {f"set_{i}": o.returns for i, o in sorted(self.outcomes.items())
                if o.ok and o.returns is not None and len(o.returns) == len(self.dates)}
        return pd.DataFrame(cols, index=self.dates)


def fingerprint(variants: ProfileVariants, request: SweepRequest, versions: dict[str, Any]) -> dict[str, Any]:
    """What a sweep folder's results depend on (see :class:`~hybrid_core.research.journal.SweepJournal`)."""
    content = json.dumps(variants.base, sort_keys=True, default=str)
    return {"profile": hashlib.sha256(content.encode()).hexdigest()[:16], "window": request.window.label(),
            "lookahead_cuts": request.lookahead_cuts, "versions": versions}


def run_sweep(request: SweepRequest, registry: ComponentRegistry) -> SweepResult:
    """Run a sweep (and its walk-forward analysis) and return what it produced; see the module docstring."""
    t0 = time.perf_counter()
    plan = request.plan
    profile = load_profile(request.profile_path)
    variants = ProfileVariants(profile, registry)
    problems = variants.check_plan(plan)
    sets: list[ParameterSet] = []
    data: dict[str, dict[str, Any]] = {}
    if not problems and plan.spec.method != "optuna":
        sets = plan.sets()
        data, problems = variants.check_sets(sets, plan.dimensions)
    if problems:
        raise profile_error(problems)
    versions = worker_versions()
    template = SetTask(set_id=-1, key="base", scope="full", profile=variants.base,
                       profile_path=str(profile.path) if profile.path else None, window=request.window,
                       trade=request.window, versions=versions, lookahead_cuts=request.lookahead_cuts,
                       log_level=request.log_level, sweep_id=uuid.uuid4().hex)

    def task(item: ParameterSet, variant: dict[str, Any], **changes: Any) -> SetTask:
        return attrs.evolve(template, set_id=item.id, key=item.key, profile=variant, **changes)

    journal = SweepJournal(request.out_dir / "sweep.sqlite", fingerprint(variants, request, versions))
    timings: dict[str, float] = {"validate": time.perf_counter() - t0}
    t_cluster = time.perf_counter()
    cluster_log = ClusterLog()
    try:
        with sweep_client(request.workers, request.scheduler) as client:
            timings["cluster_start"] = time.perf_counter() - t_cluster
            t_bars = time.perf_counter()
            check_versions(client, versions)
            follow_events(client, cluster_log)
            client.register_plugin(SweepPreload(template))
            facts: WindowFacts = client.submit(window_facts, template, pure=False).result()
            timings["versions_and_bars"] = time.perf_counter() - t_bars
            folds = (make_folds(pd.DatetimeIndex(facts.dates), request.walk_forward)  # refused before any set runs
                     if request.walk_forward is not None else [])
            runner = SetRunner(client, journal, progress=request.progress)
            if plan.spec.method == "optuna":
                from .optuna_search import optuna_sets

                def run_batch(batch: list[ParameterSet], valid: dict[str, dict[str, Any]]) -> dict[str, SetOutcome]:
                    done = runner.run([task(s, valid[s.key]) for s in batch], desc="optuna batch")
                    return {key: outcome for (_, key), outcome in done.items()}

                sets, by_key = optuna_sets(plan, variants, run_batch)
                data = {s.key: variants.variant(s.values) for s in sets}
            else:
                done = runner.run([task(s, data[s.key]) for s in sets])
                by_key = {key: outcome for (_, key), outcome in done.items()}
            timings["sets"] = runner.busy_seconds
            timings["sets_cpu"] = runner.cpu_seconds
            counts = {"sets": 0, "ran": runner.ran, "skipped": runner.skipped}
            sets = _first_of_each_key(sets)
            outcomes = {s.id: attrs.evolve(by_key[s.key], set_id=s.id) for s in sets}
            walk = None
            if request.walk_forward is not None:
                t_walk = time.perf_counter()
                ran = [s for s in sets if outcomes[s.id].ok]  # a set that failed on the whole window is not tried
                walk = _walk_forward(request, plan, folds, ran, data, facts, runner, task,
                                     float(profile.backtest.cash))
                timings["walk_forward"] = time.perf_counter() - t_walk
                counts.update(walk_forward_ran=runner.ran - counts["ran"],
                              walk_forward_skipped=runner.skipped - counts["skipped"])
            workers = _workers(client, [*outcomes.values()])
            t_stop = time.perf_counter()
        timings["cluster_stop"] = time.perf_counter() - t_stop
    finally:
        journal.close()
    best = best_set(list(outcomes.values()), plan.spec.metric)
    result = SweepResult(request=request, profile_name=profile.name, sets=sets, outcomes=outcomes, facts=facts,
                         best=best, deflated=None, overfitting=None, overfitting_note="", walk_forward=walk,
                         workers=workers, counts={**counts, "sets": len(sets),
                                                  "failed": sum(not o.ok for o in outcomes.values()),
                                                  "workers_lost": len(cluster_log.lost)},
                         timings=timings)
    _overfitting(result)
    result.timings["total"] = time.perf_counter() - t0
    return result


def _first_of_each_key(sets: list[ParameterSet]) -> list[ParameterSet]:
    """Sets without repeats (Optuna may ask for one twice): the first id of each key."""
    seen: set[str] = set()
    out = []
    for item in sets:
        if item.key not in seen:
            seen.add(item.key)
            out.append(item)
    return out


def _overfitting(result: SweepResult) -> None:
    """Fill in the DSR and PBO of the sweep (or say why they cannot be computed)."""
    matrix = result.returns_matrix()
    best = result.best
    column = f"set_{best.set_id}" if best is not None else ""
    if best is None or column not in matrix:
        result.overfitting_note = "no set finished with a finite metric: no overfitting statistics"
        return
    returns = matrix.to_numpy(dtype="float64")
    if returns.shape[1] < 2:
        result.overfitting_note = "one set only: the overfitting statistics need at least 2 sets"
        return
    result.deflated = deflated_sharpe(returns, list(matrix.columns).index(column))
    partitions = result.request.plan.spec.pbo_partitions
    problem = partitions_problem(returns.shape[0], returns.shape[1], partitions)
    if problem:
        result.overfitting_note = f"no PBO: {problem}"
        return
    result.overfitting = probability_of_backtest_overfitting(returns, partitions)


def _walk_forward(request: SweepRequest, plan: SweepPlan, folds: list[Fold], sets: list[ParameterSet],
                  data: dict[str, dict[str, Any]], facts: WindowFacts, runner: SetRunner, task: Any,
                  cash: float) -> WalkForwardResult:
    """Train every set on each fold, test each fold's best, stitch the tests (see :mod:`.walkforward`)."""
    assert request.walk_forward is not None
    dates = pd.DatetimeIndex(facts.dates)
    train_tasks = [task(s, data[s.key], scope=f.train_scope, trade=DateSpan(*f.train_dates), keep_curve=False)
                   for f in folds for s in sets]
    trained = runner.run(train_tasks, desc="walk-forward training")
    by_id = {s.key: s for s in sets}
    chosen = []
    for fold in folds:
        fold_outcomes = [attrs.evolve(o, set_id=by_id[key].id) for (scope, key), o in trained.items()
                         if scope == fold.train_scope]
        chosen.append(best_set(fold_outcomes, plan.spec.metric))
    test_tasks = [task(by_id[pick.key], data[pick.key], scope=fold.test_scope, trade=DateSpan(*fold.test_dates),
                       keep_trades=True) for fold, pick in zip(folds, chosen, strict=True) if pick is not None]
    tested = runner.run(test_tasks, desc="walk-forward tests")
    tests = [tested.get((fold.test_scope, pick.key)) if pick is not None else None
             for fold, pick in zip(folds, chosen, strict=True)]
    labels = {s.id: s.describe(plan.dimensions) for s in sets}
    benchmark = (facts.benchmark_name, pd.Series(facts.benchmark_values, index=dates))
    return stitch(request.walk_forward, folds, chosen, tests, labels, plan.spec.metric, cash, benchmark)


def _workers(client: Any, outcomes: list[SetOutcome]) -> list[dict[str, Any]]:
    """Each worker process seen: pid, address, sets run, peak RSS (dead workers from their last set)."""
    seen: dict[int, dict[str, Any]] = {}
    for o in outcomes:
        if o.pid:
            row = seen.setdefault(o.pid, {"pid": o.pid, "worker": o.worker, "sets": 0, "cpu_s": 0.0,
                                          "peak_rss_mib": 0.0, "alive": False, "bar_loads": None})
            row["sets"] += 1
            row["cpu_s"] += o.cpu_seconds
            row["peak_rss_mib"] = max(row["peak_rss_mib"], o.peak_rss_mib)
    try:
        answers = client.run(worker_report, on_error="return")
    except Exception as exc:  # the cluster is going away: report what the sets said
        logger.warning("could not ask the workers for their memory: {exc}", exc=exc)
        answers = {}
    for address, answer in answers.items():
        if isinstance(answer, dict):
            row = seen.setdefault(answer["pid"], {"pid": answer["pid"], "worker": address, "sets": 0,
                                                  "cpu_s": 0.0, "peak_rss_mib": 0.0})
            row.update(alive=True, worker=address, bar_loads=answer["loads"],
                       peak_rss_mib=max(row["peak_rss_mib"], answer["peak_rss_mib"]))
    return sorted(seen.values(), key=lambda r: (r["worker"], r["pid"]))


class ClusterLog:
    """Logs what the cluster reports while a sweep runs, and counts the workers lost."""

    def __init__(self) -> None:
        self.lost: list[str] = []

    def __call__(self, event: dict[str, Any]) -> None:
        """One event from :func:`~hybrid_core.research.cluster.follow_events`."""
        kind = event.get("event")
        if kind == "remove-worker":
            if event.get("expected"):
                return
            self.lost.append(str(event.get("worker")))
            running = [i for i in map(set_id_of, event.get("processing-tasks", ())) if i is not None]
            logger.warning("worker {worker} left the cluster unexpectedly{sets}; Dask runs its sets again on "
                           "the other workers and a replacement joins", worker=event.get("worker"),
                           sets=f" with set(s) {', '.join(running)} assigned" if running else "")
        elif kind == "add-worker":
            logger.info("worker {worker} joined the cluster", worker=event.get("worker"))
        elif kind == "facts":
            logger.info("the window's sessions and benchmark computed on worker {worker} (pid {pid})",
                        worker=event.get("worker"), pid=event.get("pid"))
        else:
            logger.info("set {set} ({scope}) {event} on worker {worker} (pid {pid})", **{
                "set": event.get("set"), "scope": event.get("scope"), "event": kind,
                "worker": event.get("worker"), "pid": event.get("pid")})


def best_metric(result: SweepResult) -> float:
    """The best set's metric value (NaN without one)."""
    if result.best is None:
        return float("nan")
    return float(result.best.metrics.get(result.request.plan.spec.metric, np.nan))


def require_dates(window: DateSpan) -> None:
    """Refuse a window whose end is before its start."""
    if window.start is not None and window.end is not None and window.end < window.start:
        raise HybridError(f"--end {window.end.date()} is before --start {window.start.date()}")
