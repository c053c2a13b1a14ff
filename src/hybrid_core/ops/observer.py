"""The one seam through which a run tells operators' tools what happened.

The live cycle and the run session call a :class:`RunObserver` at the points where facts are
decided: the run started, the data quality gate judged the bars, a risk rule refused an
order, an order event was audited, a cycle finished, the run stopped. Notifications
(:mod:`hybrid_core.ops.notify`) and Prometheus metrics (:mod:`hybrid_core.ops.metrics`) are
observers; the cycle knows nothing about either.

Observers are called on the cycle's own thread, so they must be quick and must not block
(hand slow work, such as sending a message, to a thread of their own). :class:`RunObservers`
fans one call out to several observers and contains their failures: a bug in an observer
is logged once per method and never breaks or stops a cycle.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
from loguru import logger

if TYPE_CHECKING:
    from ..contracts import OrderIntent
    from ..data.quality import QualityReport
    from ..live.cycle import CycleResult


@attrs.frozen
class RunInfo:
    """Who is running: the profile, the mode and where the run writes."""

    profile: str
    mode: str
    """``paper`` or ``live``."""
    dry_run: bool = False
    broker: str = ""
    strategies: tuple[str, ...] = ()
    risk_rules: tuple[str, ...] = ()
    trade_log: Path | None = None
    health_file: Path | None = None

    @property
    def label(self) -> str:
        """``paper``, ``LIVE``, ``paper, dry run``: how messages name the run's mode."""
        mode = "LIVE" if self.mode == "live" else self.mode
        return f"{mode}, dry run" if self.dry_run else mode


def error_component(error: BaseException | None) -> str:
    """Which part of the run an error came from: ``broker``, ``strategy``, ``data``... (metrics, messages).

    An error naming its component (``error.component``: a kind such as ``"broker"``, or the
    component itself, whose ``kind`` is used) is taken at its word; otherwise the error's class
    decides.
    """
    from ..errors import BrokerError, ComponentError, DataError, HybridError, ProfileError, SafetyError, StrategyError
    from .audit import TradeLogError

    named = getattr(error, "component", None)
    kind = named if isinstance(named, str) else getattr(named, "kind", None)
    if isinstance(kind, str) and kind:
        return {"data_source": "data"}.get(kind, kind)
    for cls, name in ((StrategyError, "strategy"), (BrokerError, "broker"), (DataError, "data"),
                      (ComponentError, "component"), (SafetyError, "safety"), (ProfileError, "profile"),
                      (TradeLogError, "audit")):
        if isinstance(error, cls):
            return name
    return "cycle" if error is None or isinstance(error, HybridError) else "internal"


class RunObserver:
    """Receives a run's events; every method is a no-op here, subclasses override what they need."""

    def run_started(self, run: RunInfo) -> None:
        """The run passed its safety checks and is about to run its first cycle."""

    def data_checked(self, report: QualityReport) -> None:
        """The data quality gate judged the bars of a cycle (``report.halt_entries``: no new entries)."""

    def order_refused(self, intent: OrderIntent, rule: str, reason: str) -> None:
        """``rule`` (a risk rule's name, ``data_quality`` or ``reference_price``) refused ``intent``."""

    def order_event(self, event: Mapping[str, Any]) -> None:
        """One order event, as written to the trade audit log (status submitted, filled, refused...)."""

    def cycle_finished(self, result: CycleResult, error: BaseException | None = None) -> None:
        """A cycle ended; ``error`` is what made it fail (``result.status == "error"``), else None."""

    def run_stopped(self, reason: str, error: BaseException | None = None) -> None:
        """The run ends: ``reason`` says why (a signal, ``--once``, ...); ``error`` if it failed."""

    def close(self) -> None:
        """Release resources (threads, sockets); called once, after :meth:`run_stopped`."""


class RunObservers(RunObserver):
    """Several observers behind one: each call goes to all of them, in order, failures contained."""

    def __init__(self, observers: Iterable[RunObserver] = ()) -> None:
        self.observers: Sequence[RunObserver] = list(observers)
        self._failed: set[tuple[str, str]] = set()

    def _each(self, method: str, *args: Any) -> None:
        for observer in self.observers:
            try:
                getattr(observer, method)(*args)
            except Exception as exc:  # an observer must never break the cycle it watches
                key = (type(observer).__name__, method)
                if key not in self._failed:
                    self._failed.add(key)
                    logger.opt(exception=exc).error(
                        "{observer}.{method} failed: {error} (the run goes on; further failures of it "
                        "are not logged)", observer=key[0], method=method, error=exc)

    def run_started(self, run: RunInfo) -> None:
        self._each("run_started", run)

    def data_checked(self, report: QualityReport) -> None:
        self._each("data_checked", report)

    def order_refused(self, intent: OrderIntent, rule: str, reason: str) -> None:
        self._each("order_refused", intent, rule, reason)

    def order_event(self, event: Mapping[str, Any]) -> None:
        self._each("order_event", event)

    def cycle_finished(self, result: CycleResult, error: BaseException | None = None) -> None:
        self._each("cycle_finished", result, error)

    def run_stopped(self, reason: str, error: BaseException | None = None) -> None:
        self._each("run_stopped", reason, error)

    def close(self) -> None:
        self._each("close")
