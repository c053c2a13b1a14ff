"""Wiring a profile into a runnable session, and the scheduled loop of ``hybrid run``.

:class:`RunSession` builds everything a cycle needs from a profile (components, safety
checks, instance lock, state database, trade audit log, heartbeat) and runs cycles; the
CLI commands ``run`` and ``replay`` are thin layers over it.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import pandas as pd
from loguru import logger

from ..account.boundary import call
from ..builtin.paper_broker import PaperBroker
from ..contracts import Panel
from ..data.loading import policy_for
from ..errors import HybridError, ProfileError
from ..ops.audit import TradeAuditLog
from ..ops.heartbeat import HeartbeatFile
from ..ops.lock import InstanceLock
from ..ops.memory import release_freed_memory
from ..ops.observer import RunInfo, RunObserver
from ..ops.state import StateStore
from ..profile import Components, RunProfile, build_components
from ..safety import live_banner, require_healthy_broker, resolve_mode
from .cycle import CycleResult, CycleSettings, TradingCycle

HEARTBEAT_WHILE_WAITING_S = 60.0


@attrs.define
class RunOptions:
    """Command-line choices that shape a run."""

    dry_run: bool = False
    trade_log: str | None = None
    health_file: str | None = None
    state_db: str | None = None
    banner_seconds: float = 5.0
    history_start: pd.Timestamp | None = None
    simulated_clock: bool = False
    """Replays: audit rows carry the simulated session time, not the wall clock."""
    durable: bool = True
    """Sync every write to disk: state database, audit log, heartbeat and the paper simulator's
    account (False for replays: safe against a kill, not power loss)."""


class RunSession:
    """One profile, wired: components, safety checks, lock, state, audit and heartbeat."""

    def __init__(self, profile: RunProfile, registry: Any, options: RunOptions,
                 components: Components | None = None, observer: RunObserver | None = None) -> None:
        self.profile = profile
        self.observer = observer or RunObserver()
        self.stop_reason = "finished"
        self.options = options
        self.mode = resolve_mode()
        self.components = components or build_components(profile, registry)
        outputs = profile.outputs
        self.state_path = Path(options.state_db or outputs.state_db)
        self.lock = InstanceLock(self.state_path)
        self.lock.acquire()
        try:
            self.state = StateStore(self.state_path, durable=options.durable)
            self.audit = TradeAuditLog(options.trade_log or outputs.trade_log, durable=options.durable)
            self.heartbeat = HeartbeatFile(options.health_file or outputs.health_file, durable=options.durable)
            if isinstance(self.components.broker, PaperBroker):
                self.components.broker.durable = options.durable
            call(self.components.broker, "configure", mode=self.mode, state_dir=str(self.state_path.parent))
        except BaseException:
            self.lock.release()
            raise
        self.cycle = TradingCycle(
            data_source=self.components.data_source, strategies=self.components.strategies,
            risk_rules=self.components.risk_rules, broker=self.components.broker, state=self.state,
            audit=self.audit, heartbeat=self.heartbeat,
            settings=CycleSettings(mode=self.mode, dry_run=options.dry_run, profile_name=profile.name,
                                   lookback_days=profile.data.lookback_days,
                                   history_start=options.history_start,
                                   simulated_clock=options.simulated_clock,
                                   heartbeat_every_s=1.0 if options.simulated_clock else 0.0,
                                   max_failed_cycles=profile.schedule.max_failed_cycles,
                                   settle_seconds=profile.schedule.settle_seconds,
                                   data_quality=policy_for(profile.data.quality, live=True)),
            observer=self.observer)
        self._checked = False

    @contextlib.contextmanager
    def cycle_writes(self) -> Iterator[None]:
        """The writes of one cycle, made together at its end when the run is not durable (a
        replay): the audit log's rows first, then the paper account's commit, then the state
        database's. A replay killed inside loses that cycle's writes in all three and redoes the
        cycle (orders are idempotent by id, what the paper account kept is found by the cycle's
        look-ups, and an audit row already written is not written again); a durable run is untouched."""
        if self.options.durable:
            yield
            return
        broker = self.components.broker
        with self.state.batch(), broker.batch() if isinstance(broker, PaperBroker) else contextlib.nullcontext(), \
                self.audit.batch():
            yield

    def preflight(self) -> None:
        """Safety before the first order: the LIVE banner, then the broker's health check.

        A refusal (or an error) here stops the run: the heartbeat then says ``stopped`` (``error``
        for an unexpected failure) with the reason, so ``hybrid health`` fails instead of reading
        the ``starting`` written a moment before."""
        if self._checked:
            return
        self.heartbeat.write(cycle=self.state.cycle_count(), mode=self.mode, status="starting")
        try:
            if self.mode == "live" and not self.options.dry_run:
                live_banner(self.options.banner_seconds)
            if not self.options.dry_run:
                require_healthy_broker(self.components.broker)
        except BaseException as exc:
            refused = isinstance(exc, (HybridError, KeyboardInterrupt))
            reason = str(exc) if isinstance(exc, HybridError) else f"{type(exc).__name__}: {exc}"
            self.heartbeat.write(cycle=self.state.cycle_count(), mode=self.mode,
                                 status="stopped" if refused else "error", last_error=reason or "interrupted",
                                 reasons=[f"run stopped before its first cycle: {reason or 'interrupted'}"])
            raise
        logger.info("Run starting", profile=self.profile.name, mode=self.mode, dry_run=self.options.dry_run,
                    broker=self.profile.broker.name,
                    strategies=[s.name for s in self.components.strategies])
        self._checked = True
        self.observer.run_started(self.run_info())

    def run_info(self) -> RunInfo:
        """Who is running, for observers."""
        return RunInfo(profile=self.profile.name, mode=self.mode, dry_run=self.options.dry_run,
                       broker=self.profile.broker.name, strategies=tuple(s.name for s in self.components.strategies),
                       risk_rules=tuple(getattr(r, "name", type(r).__name__) for r in self.components.risk_rules),
                       trade_log=self.audit.path, health_file=self.heartbeat.path)

    def run_cycle(self, as_of: pd.Timestamp | None = None, panel: Panel | None = None) -> CycleResult:
        """Preflight (once), then one cycle."""
        self.preflight()
        return self.cycle.run(as_of, panel)

    def close(self) -> None:
        """Release everything (components, state, lock)."""
        for component in (self.components.broker, self.components.data_source,
                          *self.components.strategies, *self.components.risk_rules):
            try:
                component.close()
            except Exception as exc:  # closing must not hide the run's outcome
                logger.warning("closing {c} failed: {e}", c=type(component).__name__, e=exc)
        self.state.close()
        self.lock.release()

    def __enter__(self) -> RunSession:
        return self

    def __exit__(self, _type: Any, error: BaseException | None, _tb: Any) -> None:
        if isinstance(error, Exception) and not isinstance(error, HybridError) and self._checked:
            # a bug ends the run: the heartbeat says so (a HybridError was recorded by its cycle)
            self.heartbeat.write(cycle=self.state.cycle_count(), mode=self.mode, status="error",
                                 last_error=f"{type(error).__name__}: {error}",
                                 reasons=[f"run stopped by an internal error: {type(error).__name__}: {error}"])
        try:
            self.observer.run_stopped(self.stop_reason if error is None else "failed", error)
            self.observer.close()
        finally:
            self.close()


def next_run_time(profile: RunProfile, now: datetime) -> datetime:
    """When the next scheduled cycle starts (``now`` is timezone-aware)."""
    sched = profile.schedule
    if sched.interval_seconds:
        return now + timedelta(seconds=float(sched.interval_seconds))
    try:
        zone = ZoneInfo(sched.timezone)
    except Exception:
        raise ProfileError(f"schedule.timezone: unknown time zone {sched.timezone!r} "
                           f"(use an IANA name such as America/New_York)") from None
    hour, minute = (int(x) for x in sched.at.split(":"))
    local = now.astimezone(zone)
    candidate = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    while candidate <= local or (sched.days == "weekdays" and candidate.weekday() >= 5):
        candidate = (candidate + timedelta(days=1)).replace(hour=hour, minute=minute)
    return candidate


class StopFlag:
    """Set by SIGINT/SIGTERM: the loop finishes the cycle in progress, then stops."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signal_name: str | None = None

    def install(self) -> None:
        """Route SIGINT and SIGTERM to this flag."""
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, _frame: Any) -> None:
        self.signal_name = signal.Signals(signum).name
        logger.warning("{sig} received: stopping after the current step", sig=self.signal_name)
        self.event.set()

    @property
    def is_set(self) -> bool:
        """True once a stop was asked for."""
        return self.event.is_set()


def run_loop(session: RunSession, stop: StopFlag, *, clock: Callable[[], datetime] | None = None,
             max_cycles: int | None = None) -> int:
    """Run cycles on the profile's schedule until stopped; returns the number of cycles run.

    A cycle that fails on a :class:`~hybrid_core.errors.HybridError` (a component's failure is
    one: see :mod:`hybrid_core.account.boundary`) failed closed and was recorded by the cycle;
    the loop goes on to the next scheduled time. Between cycles the heartbeat is refreshed every
    minute so a liveness probe stays green while the loop sleeps: ``waiting`` after a good
    cycle, else the last cycle's ``degraded`` or ``error`` with its reasons.
    """
    now = clock or (lambda: datetime.now().astimezone())
    session.preflight()
    cycles = 0
    last_error: str | None = None
    while not stop.is_set:
        try:
            session.cycle.run()
            last_error = None
        except HybridError as exc:
            last_error = str(exc)  # the cycle logged it and wrote the heartbeat
        release_freed_memory()  # the cycle's arrays wait in the heap for reuse: not while sleeping
        cycles += 1
        if max_cycles is not None and cycles >= max_cycles:
            break
        due = next_run_time(session.profile, now())
        logger.info("Next cycle at {due}", due=due.isoformat())
        last = session.cycle.last
        status = "waiting" if last is None or last.health == "ok" else last.health
        reasons = ([] if last is None else ([last.error] if last.error else []) + list(last.notes))
        while not stop.is_set:
            remaining = (due - now()).total_seconds()
            if remaining <= 0:
                break
            session.heartbeat.write(cycle=session.state.cycle_count(), mode=session.mode,
                                    status=status, last_error=last_error, next_cycle=due.isoformat(),
                                    reasons=reasons)
            stop.event.wait(min(remaining, HEARTBEAT_WHILE_WAITING_S))
    session.heartbeat.write(cycle=session.state.cycle_count(), mode=session.mode, status="stopped",
                            last_error=last_error)
    return cycles
