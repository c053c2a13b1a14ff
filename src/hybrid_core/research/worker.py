"""What runs on a Dask worker: one task per parameter set, with bars and signals cached per process.

A worker process keeps a :class:`WorkerCache`: the plugin host (built once), the bars of each
data window it was asked for (loaded once, shared by every set on that window) and each
strategy's signals keyed by everything they depend on (the strategy's class, name, params,
universe and allocation, and the bars): sets that change only risk rules or sizing (cash,
slippage, commission) reuse them. :class:`SweepPreload` is a Dask worker plugin that loads the
bars when a worker joins (a replacement worker too), so a worker that cannot read the data is
refused before the sweep starts.

:func:`run_set` never raises for a set's own failure: it returns a :class:`SetOutcome` with
the error line, and the sweep records it and goes on.
"""

from __future__ import annotations

import json
import os
import resource
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import attrs
import numpy as np
import pandas as pd
from distributed.diagnostics.plugin import WorkerPlugin

from ..engine.backtest import Window
from ..errors import DataError, HybridError
from .variant_backtest import (
    DateSpan,
    backtest_variant,
    benchmark_values,
    check_lookahead,
    load_bars,
    set_metrics,
    strategy_signals,
    trading_dates,
    window_notes,
)

EVENT_TOPIC = "hybrid-sweep"
"""Dask event topic on which workers report each set they start (the client logs it)."""


@attrs.frozen
class SetTask:
    """One backtest of a sweep: a profile variant (plain data) over ``window``, trading in ``trade``."""

    set_id: int
    key: str
    scope: str
    """``full`` for the sweep's window, ``train ...``/``test ...`` for walk-forward folds."""
    profile: dict[str, Any] = attrs.field(eq=False, repr=False)
    profile_path: str | None
    window: DateSpan
    """The bars loaded (the sweep's window)."""
    trade: DateSpan
    """The sessions traded (the sweep's window, or a walk-forward fold inside it)."""
    versions: dict[str, Any] = attrs.field(eq=False, repr=False)
    """The client's hybrid and plugin versions; a worker with others refuses the set."""
    lookahead_cuts: int = 3
    keep_curve: bool = True
    """Return the daily returns (for the overfitting statistics and the report)."""
    keep_trades: bool = False
    """Return the equity frame and the round trips (walk-forward test folds)."""
    log_level: str = "WARNING"
    """The client's log level, applied to the worker's own log lines (stderr of the worker process)."""
    sweep_id: str = ""
    """Unique per sweep run: a long-lived worker loads the bars again for the next sweep (the data
    may have changed in between) instead of reusing an earlier sweep's."""


@attrs.frozen
class SetOutcome:
    """What one set gave: its metrics and daily returns, or the error that stopped it."""

    set_id: int
    key: str
    scope: str
    ok: bool
    error: str = ""
    metrics: dict[str, Any] = attrs.field(factory=dict)
    dates: np.ndarray | None = attrs.field(default=None, eq=False, repr=False)
    """Sessions of ``returns`` (datetime64[ns])."""
    returns: np.ndarray | None = attrs.field(default=None, eq=False, repr=False)
    equity: pd.DataFrame | None = attrs.field(default=None, eq=False, repr=False)
    trades: pd.DataFrame | None = attrs.field(default=None, eq=False, repr=False)
    worker: str = ""
    pid: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    """CPU time of the task's thread (independent of other load on the machine)."""
    peak_rss_mib: float = 0.0


def worker_versions() -> dict[str, Any]:
    """hybrid's version and every loaded plugin's distribution and version, in this process."""
    from .. import __version__

    host = CACHE.host
    return {"hybrid-core": __version__,
            "plugins": {p.name: f"{p.package} {p.version}" for p in host.plugins},
            "plugin_errors": {e.name: e.error for e in host.errors}}


def version_difference(mine: dict[str, Any], theirs: dict[str, Any]) -> str | None:
    """The first difference between two :func:`worker_versions` answers, as ``what: theirs vs mine``."""
    if theirs.get("hybrid-core") != mine.get("hybrid-core"):
        return f"hybrid-core {theirs.get('hybrid-core')} (this client: {mine.get('hybrid-core')})"
    a, b = mine.get("plugins", {}), theirs.get("plugins", {})
    for name in sorted(set(a) | set(b)):
        if name not in b:
            why = theirs.get("plugin_errors", {}).get(name)
            return f"no plugin {name!r} ({a[name]} on this client{f'; it failed to load: {why}' if why else ''})"
        if name not in a:
            return f"plugin {name!r} ({b[name]}) that this client does not have"
        if a[name] != b[name]:
            return f"plugin {name!r} from {b[name]} (this client: {a[name]})"
    return None


class WorkerCache:
    """Per-process state of a sweep worker: plugin host, bars by data window, signals by strategy."""

    def __init__(self, max_panels: int = 2, max_signals: int = 16) -> None:
        self._host: Any = None
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}
        self.panels: OrderedDict[str, Any] = OrderedDict()
        self.signals: OrderedDict[str, Any] = OrderedDict()
        self.benchmarks: OrderedDict[str, Any] = OrderedDict()
        self.max_panels = max_panels
        self.max_signals = max_signals
        self.loads = 0
        """How many times this process loaded bars (the sweep reports it per worker)."""
        self.log_level: str | None = None

    def configure_logging(self, level: str) -> None:
        """hybrid's log setup in this worker process, at the client's level (once per level)."""
        with self._lock:
            if self.log_level == level:
                return
            from ..ops.logging_setup import configure_logging

            configure_logging(level=level)
            self.log_level = level

    @property
    def host(self) -> Any:
        """The plugin host of this process, built on first use."""
        with self._lock:
            if self._host is None:
                from ..plugins import build_plugin_host

                self._host = build_plugin_host()
            return self._host

    def cached(self, store: OrderedDict[str, Any], limit: int, key: str, make: Callable[[], Any]) -> Any:
        """``store[key]``, made once by ``make`` even when two threads ask at once; least recently
        used entries beyond ``limit`` are dropped."""
        with self._lock:
            if key in store:
                store.move_to_end(key)
                return store[key]
            gate = self._loading.setdefault(key, threading.Lock())
        with gate:
            with self._lock:
                if key in store:
                    return store[key]
            value = make()
            with self._lock:
                store[key] = value
                while len(store) > limit:
                    store.popitem(last=False)
                self._loading.pop(key, None)
            return value


CACHE = WorkerCache()
"""The cache of this process (a Dask worker process runs one sweep task at a time per thread)."""


def _components(task: SetTask) -> tuple[Any, Any]:
    from ..profile import build_components
    from .variants import load_variant

    CACHE.configure_logging(task.log_level)
    profile = load_variant(task.profile, task.profile_path)
    return profile, build_components(profile, CACHE.host.registry)


def _bars_key(task: SetTask, components: Any) -> str:
    symbols = sorted({s for strat in components.strategies for s in strat.universe})
    return json.dumps({"sweep": task.sweep_id, "data": task.profile["data"], "base": task.profile_path,
                       "symbols": symbols, "warmup": task.profile["backtest"].get("warmup"),
                       "window": [str(task.window.start), str(task.window.end)]}, sort_keys=True, default=str)


def _load(profile: Any, components: Any, span: DateSpan) -> Window:
    bars = load_bars(profile, components, span)
    CACHE.loads += 1
    return bars


def bars_for(task: SetTask, profile: Any, components: Any) -> tuple[str, Window]:
    """The bars of the task's window (warm-up included) for its variant, loaded once per process and
    data window."""
    key = _bars_key(task, components)
    return key, CACHE.cached(CACHE.panels, CACHE.max_panels, key, lambda: _load(profile, components, task.window))


def signals_for(task: SetTask, components: Any, panel_key: str, panel: Any) -> dict[str, Any]:
    """Each strategy's signals over the panel, computed once per strategy variant (and lookahead-checked)."""
    out = {}
    for strategy in components.strategies:
        key = json.dumps({"panel": panel_key, "class": f"{type(strategy).__module__}.{type(strategy).__qualname__}",
                          "name": strategy.name, "params": attrs.asdict(strategy.params) if attrs.has(
                              type(strategy.params)) else repr(strategy.params),
                          "universe": strategy.universe, "allocation": strategy.allocation,
                          "lookahead_cuts": task.lookahead_cuts}, sort_keys=True, default=str)

        def make(strategy: Any = strategy) -> Any:
            if task.lookahead_cuts > 0:
                check_lookahead(strategy, panel, task.lookahead_cuts)
            return strategy_signals(strategy, panel)

        out[strategy.name] = CACHE.cached(CACHE.signals, CACHE.max_signals, key, make)
    return out


def _benchmark(task: SetTask, profile: Any, components: Any, panel_key: str, panel: Any,
               dates: pd.DatetimeIndex) -> tuple[str, pd.Series]:
    key = json.dumps({"panel": panel_key, "benchmark": profile.backtest.benchmark, "cash": profile.backtest.cash,
                      "trade": [str(task.trade.start), str(task.trade.end)]}, sort_keys=True)
    return CACHE.cached(CACHE.benchmarks, 64, key, lambda: benchmark_values(profile, components, panel, dates))


def _report(event: dict[str, Any]) -> str:
    """Tell the client (Dask event) what this worker starts; returns the worker's address."""
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):  # not on a Dask worker (tests, one process)
        return ""
    worker.log_event(EVENT_TOPIC, {**event, "worker": worker.address, "pid": os.getpid()})
    return str(worker.address)


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_set(task: SetTask) -> SetOutcome:
    """Backtest one parameter set; a failure of the set is returned as an outcome, never raised."""
    t0, cpu0 = time.perf_counter(), time.thread_time()
    address = _report({"event": "started", "set": task.set_id, "scope": task.scope})
    common: dict[str, Any] = {"set_id": task.set_id, "key": task.key, "scope": task.scope, "worker": address,
                              "pid": os.getpid()}
    try:
        difference = version_difference(task.versions, worker_versions())
        if difference:
            raise HybridError(f"this worker has {difference}; install the same versions on every worker")
        profile, components = _components(task)
        panel_key, bars = bars_for(task, profile, components)
        panel = bars.panel
        signals = signals_for(task, components, panel_key, panel)
        dates = trading_dates(panel, task.trade)
        benchmark = _benchmark(task, profile, components, panel_key, panel, dates)
        result = backtest_variant(profile, components, panel, signals, task.trade)
        metrics = set_metrics(result, benchmark)
    except Exception as exc:  # a set that fails is recorded with its error; the sweep goes on
        message = str(exc).splitlines()[0] if str(exc) else ""
        error = message if isinstance(exc, HybridError) else f"{type(exc).__name__}: {message}"
        return SetOutcome(**common, ok=False, error=error, seconds=time.perf_counter() - t0,
                          cpu_seconds=time.thread_time() - cpu0, peak_rss_mib=peak_rss_mib())
    values = result.equity["value"]
    from ..engine.stats import daily_returns

    returns = daily_returns(values, result.initial_cash).to_numpy(dtype="float64") if task.keep_curve else None
    return SetOutcome(**common, ok=True, metrics=metrics,
                      dates=values.index.to_numpy(dtype="datetime64[ns]") if task.keep_curve else None,
                      returns=returns, equity=result.equity if task.keep_trades else None,
                      trades=result.trades if task.keep_trades else None,
                      seconds=time.perf_counter() - t0, cpu_seconds=time.thread_time() - cpu0,
                      peak_rss_mib=peak_rss_mib())


@attrs.frozen
class WindowFacts:
    """What the client needs to know about the sweep's window before the sets run."""

    dates: np.ndarray
    """The sessions traded (datetime64[ns])."""
    benchmark_name: str
    benchmark_values: np.ndarray
    notes: list[str]


def window_facts(task: SetTask) -> WindowFacts:
    """The sessions, the benchmark curve and the survivorship notes of the base profile's window."""
    _report({"event": "facts", "set": task.set_id, "scope": task.scope})
    profile, components = _components(task)
    panel_key, bars = bars_for(task, profile, components)
    panel = bars.panel
    dates = trading_dates(panel, task.trade)
    if not len(dates):
        raise DataError(f"no sessions with bars in {task.trade.label()} for the profile's symbols")
    name, values = _benchmark(task, profile, components, panel_key, panel, dates)
    return WindowFacts(dates=dates.to_numpy(dtype="datetime64[ns]"), benchmark_name=name,
                       benchmark_values=values.to_numpy(dtype="float64"),
                       notes=window_notes(components.strategies, bars))


def worker_report() -> dict[str, Any]:
    """This worker process's pid, peak RSS and how many times it loaded bars (asked at the end)."""
    return {"pid": os.getpid(), "peak_rss_mib": peak_rss_mib(), "loads": CACHE.loads}


class SweepPreload(WorkerPlugin):
    """Dask worker plugin: when a worker joins, check its versions and load the sweep's bars.

    Registered once per sweep; Dask runs it on every worker present and on every worker that
    joins later (a replacement for one that died). A worker with other versions, or that
    cannot read the data, makes the registration fail with one line naming the worker.
    """

    name = "hybrid-sweep-preload"
    idempotent = False

    def __init__(self, task: SetTask) -> None:
        self.task = task

    async def setup(self, worker: Any) -> None:
        """Load the bars in a thread (the worker's event loop keeps answering the scheduler)."""
        import asyncio

        await asyncio.to_thread(self._load, str(worker.address))

    def _load(self, address: str) -> None:
        difference = version_difference(self.task.versions, worker_versions())
        if difference:
            raise HybridError(f"worker {address} has {difference}; install the same hybrid and plugin versions "
                              f"on every worker (docs/sweeps.md)")
        try:
            profile, components = _components(self.task)
            bars_for(self.task, profile, components)
        except HybridError as exc:  # a data problem keeps its exit code (7)
            kind = DataError if isinstance(exc, DataError) else HybridError
            raise kind(f"worker {address} cannot load the sweep's bars: {exc}") from None

    def teardown(self, worker: Any) -> None:
        """Nothing to release: the cache goes with the process."""
