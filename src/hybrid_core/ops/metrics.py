"""Prometheus metrics of a run: a :class:`~hybrid_core.ops.observer.RunObserver` over ``prometheus_client``.

``hybrid run --metrics-port N`` serves them over HTTP in loop mode; ``--metrics-textfile
PATH`` writes them after every cycle in the text format node_exporter's textfile collector
reads (cron runs). Every series carries the labels ``profile`` and ``mode`` (``paper`` or
``live``). :data:`METRICS` lists the families; docs/operations.md shows alert rules and
deploy/grafana-dashboard.json a board over them.

Each number is taken from where it is decided: cycle results from the cycle, refusals from
the refusing rule, staleness from the data quality gate's report, realised PnL from the
trade report's FIFO ledger over the trade log (:func:`hybrid_core.ops.report.build_report`),
the heartbeat's age from the heartbeat file itself. The last two are read when the metrics
are rendered (a scrape, the textfile), not on the cycle's path; the PnL only when the trade
log has changed since the last read.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from pathlib import Path
from time import time
from typing import TYPE_CHECKING, Any

from loguru import logger

from ..errors import HybridError
from .atomic import atomic_replace
from .observer import RunInfo, RunObserver, error_component

if TYPE_CHECKING:
    from ..contracts import OrderIntent
    from ..data.quality import QualityReport
    from ..live.cycle import CycleResult
    from .notify_targets import NotifyTarget

RUN_LABELS = ("profile", "mode")
CYCLE_BUCKETS = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)
"""Cycle duration buckets (s): a paper cycle on 40 symbols takes ~1 s, a slow data fetch minutes."""
ORDER_OUTCOMES = ("submitted", "accepted", "partially_filled", "filled", "canceled", "rejected", "expired", "unknown",
                  "refused", "dry_run")
ERROR_COMPONENTS = ("cycle", "broker", "strategy", "data", "risk_rule", "component", "audit", "notify", "internal")
SLEEVES = ("equity", "crypto")
METRICS: Mapping[str, tuple[str, str, tuple[str, ...]]] = {
    # name: (type, help, labels beyond profile and mode)
    "hybrid_run_info": ("gauge", "1 for the running profile; labels say how it runs", ("dry_run", "broker", "version")),
    "hybrid_run_start_timestamp_seconds": ("gauge", "Unix time the run passed its safety checks", ()),
    "hybrid_cycles": ("counter", "Cycles run, by outcome (ok or error)", ("status",)),
    "hybrid_cycle_duration_seconds": ("histogram", "Wall time of a cycle, from loading bars to the heartbeat", ()),
    "hybrid_last_cycle_timestamp_seconds": ("gauge", "Unix time the latest cycle ended, whatever its outcome", ()),
    "hybrid_last_successful_cycle_timestamp_seconds": ("gauge", "Unix time the latest successful cycle ended", ()),
    "hybrid_last_cycle_success": ("gauge", "1 when the latest cycle succeeded, 0 when it failed", ()),
    "hybrid_orders": ("counter", "Order events written to the trade log, by side and outcome", ("side", "outcome")),
    "hybrid_fills": ("counter", "Fills recorded, by side", ("side",)),
    "hybrid_refusals": ("counter", "Orders refused, by the rule that refused them", ("rule",)),
    "hybrid_guard_tripped": ("gauge", "1 when the portfolio guard refused an order in the latest cycle", ("guard",)),
    "hybrid_errors": ("counter", "Errors, by the component they came from", ("component",)),
    "hybrid_portfolio_value": ("gauge", "Portfolio value (cash + positions at the latest closes)", ()),
    "hybrid_cash": ("gauge", "Cash at the broker", ()),
    "hybrid_open_positions": ("gauge", "Symbols held", ()),
    "hybrid_realised_pnl": ("gauge", "Realised PnL of the trade log's round trips (FIFO)", ()),
    "hybrid_heartbeat_age_seconds": ("gauge", "Seconds since the heartbeat file was written (NaN if unreadable)", ()),
    "hybrid_data_stale_symbols": ("gauge", "Symbols whose latest bar is older than the calendar expects", ("sleeve",)),
    "hybrid_data_entries_halted": ("gauge", "1 when the data quality gate halted new entries in the latest cycle", ()),
    "hybrid_notifications": ("counter", "Notification messages, by target and outcome (sent, failed, dropped)",
                             ("target", "outcome")),
}
"""Every metric family: its type, help text and labels (after ``profile`` and ``mode``)."""


class RunMetrics(RunObserver):
    """The run's metrics in a registry of their own; see the module docstring."""

    def __init__(self, *, textfile: str | Path | None = None) -> None:
        import prometheus_client as prom

        prom.disable_created_metrics()  # no *_created series: they double the output and no alert uses them
        self.registry = prom.CollectorRegistry()
        self.textfile = Path(textfile) if textfile else None
        self.run: RunInfo | None = None
        self._labels: tuple[str, str] = ("", "")
        self._guards: set[str] = set()
        self._tripped: set[str] = set()
        self._pnl: tuple[tuple[int, int] | None, float] = (None, math.nan)
        self._pnl_failed = False
        self._server: Any = None
        self._lock = threading.Lock()
        self._pnl_lock = threading.Lock()
        kinds = {"gauge": prom.Gauge, "counter": prom.Counter, "histogram": prom.Histogram}
        self.families: dict[str, Any] = {}
        for name, (kind, text, extra) in METRICS.items():
            options: dict[str, Any] = {"registry": self.registry}
            if kind == "histogram":
                options["buckets"] = CYCLE_BUCKETS
            self.families[name] = kinds[kind](name, text, [*RUN_LABELS, *extra], **options)

    def metric(self, name: str, *labels: str) -> Any:
        """The child of family ``name`` for this run and ``labels`` (after profile and mode)."""
        return self.families[name].labels(*self._labels, *labels)

    # ------------------------------------------------------------ observer
    def run_started(self, run: RunInfo) -> None:
        from .. import __version__
        from .heartbeat import check_health

        self.run = run
        self._labels = (run.profile, run.mode)
        self.metric("hybrid_run_info", str(run.dry_run).lower(), run.broker, __version__).set(1)
        self.metric("hybrid_run_start_timestamp_seconds").set(time())
        from ..builtin.guards import GUARD_NAMES

        self._guards = set(run.risk_rules) & GUARD_NAMES
        # every series an alert watches exists from the start at 0, so increase() sees the first event
        for status in ("ok", "error"):
            self.metric("hybrid_cycles", status)
        for side in ("buy", "sell"):
            self.metric("hybrid_fills", side)
            for outcome in ORDER_OUTCOMES:
                self.metric("hybrid_orders", side, outcome)
        for rule in (*run.risk_rules, "data_quality", "reference_price"):
            self.metric("hybrid_refusals", rule)
        for guard in self._guards:
            self.metric("hybrid_guard_tripped", guard).set(0)
        for component in ERROR_COMPONENTS:
            self.metric("hybrid_errors", component)
        for sleeve in SLEEVES:
            self.metric("hybrid_data_stale_symbols", sleeve).set(0)
        self.metric("hybrid_data_entries_halted").set(0)
        health = run.health_file

        def heartbeat_age() -> float:
            if health is None:
                return math.nan
            age = check_health(health, max_age_s=math.inf).age_s
            return math.nan if age is None else max(age, 0.0)

        self.metric("hybrid_heartbeat_age_seconds").set_function(heartbeat_age)
        self.metric("hybrid_realised_pnl").set_function(self._realised_pnl)

    def data_checked(self, report: QualityReport) -> None:
        from ..contracts import is_crypto

        stale = report.stale
        for sleeve in SLEEVES:
            count = sum(1 for s in stale if is_crypto(s) == (sleeve == "crypto"))
            self.metric("hybrid_data_stale_symbols", sleeve).set(count)
        self.metric("hybrid_data_entries_halted").set(1 if report.halt_entries else 0)

    def order_refused(self, intent: OrderIntent, rule: str, reason: str) -> None:
        self.metric("hybrid_refusals", rule).inc()
        if rule in self._guards:
            self._tripped.add(rule)

    def order_event(self, event: Mapping[str, Any]) -> None:
        side, outcome = str(event.get("side")), str(event.get("status"))
        self.metric("hybrid_orders", side, outcome).inc()
        if outcome == "filled":
            self.metric("hybrid_fills", side).inc()
        elif outcome == "rejected":
            self.metric("hybrid_errors", "broker").inc()

    def cycle_finished(self, result: CycleResult, error: BaseException | None = None) -> None:
        now = time()
        self.metric("hybrid_cycles", result.status).inc()
        self.metric("hybrid_cycle_duration_seconds").observe(result.duration_s)
        self.metric("hybrid_last_cycle_timestamp_seconds").set(now)
        self.metric("hybrid_last_cycle_success").set(1 if result.status == "ok" else 0)
        for guard in self._guards:
            self.metric("hybrid_guard_tripped", guard).set(1 if guard in self._tripped else 0)
        self._tripped = set()
        if result.status == "ok":
            self.metric("hybrid_last_successful_cycle_timestamp_seconds").set(now)
            self.metric("hybrid_portfolio_value").set(result.portfolio_value)
            self.metric("hybrid_cash").set(result.cash)
            self.metric("hybrid_open_positions").set(result.open_positions)
        else:
            self.metric("hybrid_errors", error_component(error)).inc()
        self.write_textfile()

    def run_stopped(self, reason: str, error: BaseException | None = None) -> None:
        if error is not None and not isinstance(error, KeyboardInterrupt) and self.run is not None:
            self.metric("hybrid_errors", error_component(error)).inc()
        self.write_textfile()

    def close(self) -> None:
        self.write_textfile()  # again: the notifier (closed first) has counted its last sends
        if self._server is not None:
            server, self._server = self._server, None
            server.shutdown()
            server.server_close()

    # --------------------------------------------------------- other inputs
    def notification_result(self, target: NotifyTarget, outcome: str) -> None:
        """A notification was sent, failed or dropped (the notifier's callback)."""
        if self.run is None:
            return
        self.metric("hybrid_notifications", f"notify[{target.index}]", outcome).inc()
        if outcome == "failed":
            self.metric("hybrid_errors", "notify").inc()

    def _realised_pnl(self) -> float:
        """The trade log's realised PnL, read again only when the file changed (scrape thread)."""
        trade_log = self.run.trade_log if self.run is not None else None
        if trade_log is None:
            return math.nan
        try:
            stat = trade_log.stat()
        except OSError:
            return 0.0 if not trade_log.exists() else math.nan
        key = (stat.st_size, stat.st_mtime_ns)
        with self._pnl_lock:
            if key != self._pnl[0]:
                from .report import build_report

                try:
                    self._pnl = (key, build_report(trade_log).realised_pnl)
                    self._pnl_failed = False
                except Exception as exc:  # the metric shows NaN; a scrape must not fail for it
                    if not self._pnl_failed:
                        logger.warning("realised PnL metric not readable: {error}", error=exc)
                        self._pnl_failed = True
                    self._pnl = (key, math.nan)
            return self._pnl[1]

    # ------------------------------------------------------------- exposing
    def exposition(self) -> bytes:
        """The metrics in Prometheus' text format."""
        from prometheus_client import generate_latest

        return generate_latest(self.registry)

    def write_textfile(self) -> None:
        """Replace the textfile (if one was asked for) atomically: node_exporter never reads half of it."""
        if self.textfile is None:
            return
        with self._lock, atomic_replace(self.textfile) as handle:
            handle.write(self.exposition())

    def serve(self, port: int, host: str = "0.0.0.0") -> int:
        """Serve ``/metrics`` on ``host:port`` from a thread (0 picks a free port); returns the port."""
        from prometheus_client import start_http_server

        try:
            server, _thread = start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            raise HybridError(f"--metrics-port {port}: cannot listen on {host}:{port} ({exc.strerror or exc}); "
                              f"choose another port or stop what uses it") from None
        self._server = server
        return int(server.server_address[1])


def check_textfile_path(path: str | Path) -> Path:
    """``path`` for ``--metrics-textfile``; node_exporter reads only ``*.prom`` files."""
    file = Path(path)
    if file.suffix != ".prom":
        raise HybridError(f"--metrics-textfile {file}: the name must end in .prom (node_exporter's textfile "
                          f"collector reads only *.prom files)")
    return file
