"""The live cycle: the steps of one decision at a close, in order.

load and gate bars -> sync with the broker (fills, every open order by id, positions and dust,
stops) -> the account at this close -> strategy signals -> decisions -> plan and vet (the
backtest's own functions) -> orders (exits once their stop's cancel is confirmed) -> settle
(this cycle's orders asked once, unknown ones looked up with bounded backoff, every held
position protected) -> one typed audit event per transition -> heartbeat.

One :class:`TradingCycle` runs these steps for ``hybrid run`` (paper or live),
``hybrid run --dry-run`` and ``hybrid replay``. The account at the close is
:meth:`~hybrid_core.account.state.Account.rebuild` from the state database, and it decides
with :meth:`~hybrid_core.account.state.Account.decide`, the very code of the backtest, so a
paper run follows STRATEGIES.md exactly as a backtest does. Orders, fills and reconciliation
live in their own classes (:mod:`.orders`, :mod:`.fills`, :mod:`.reconcile`).

A component that fails (a strategy, a risk rule, the data source or the broker raising in its
own code) fails the cycle *closed*: nothing is sent after the failure (no new entries; the
protective stops already at the broker stay), the cycle is recorded as failed with one ERROR
line, and the heartbeat says ``degraded`` until ``schedule.max_failed_cycles`` cycles in a row
failed, then ``error``. A cycle that leaves orders ``unknown`` (the broker did not confirm them),
or an exit waiting for its stop's cancel or refused, is ``degraded`` with those reasons.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import attrs
import pandas as pd
from loguru import logger

from ..account.boundary import call
from ..account.decisions import RowPrices, decision_at
from ..account.risk import Watermarks
from ..account.state import Account
from ..contracts import Broker, DataSource, Decision, OrderIntent, OrderStatus, Panel, Position, RiskRule, Strategy
from ..data.loading import load_bars
from ..data.quality import check_quality
from ..errors import DataError, HybridError
from ..ops.observer import RunObserver
from ..ops.state import StateStore, StoredOrder, stored_day
from .events import AuditTrail
from .lifecycle import order_kind
from .orders import OrderDesk
from .reconcile import Reconciler

QUALITY_WINDOW_DAYS = 45
"""Calendar days of recent bars the data quality gate inspects each cycle."""
_INFO = 20


def logs_info() -> bool:
    """True when some log sink takes INFO lines: a strategy's explanation is made for them only (a
    replay logs at WARNING by default, and explaining every session cost a few percent of it)."""
    return int(getattr(getattr(logger, "_core", None), "min_level", 0)) <= _INFO


@attrs.define
class CycleResult:
    """What one cycle did."""

    cycle: int
    as_of: pd.Timestamp | None
    signals_count: int = 0
    orders: list[dict[str, Any]] = attrs.field(factory=list)
    fills: list[OrderStatus] = attrs.field(factory=list)
    refused: list[str] = attrs.field(factory=list)
    unknown: list[str] = attrs.field(factory=list)
    """Orders whose outcome the broker had not confirmed when the cycle ended (looked up at the next)."""
    corrections: list[str] = attrs.field(factory=list)
    """What reconciliation corrected or reported (one line each)."""
    notes: list[str] = attrs.field(factory=list)
    """Why the cycle is degraded (entries halted by the data quality gate...)."""
    portfolio_value: float = 0.0
    cash: float = 0.0
    open_positions: int = 0
    status: str = "ok"
    """``ok`` or ``error`` (the cycle failed closed)."""
    error: str | None = None
    health: str = "ok"
    """What the heartbeat says after this cycle: ``ok``, ``degraded`` or ``error``."""
    duration_s: float = 0.0


@attrs.define
class CycleSettings:
    """How a cycle behaves: mode, dry run, profile name, history to load."""

    mode: str = "paper"
    dry_run: bool = False
    profile_name: str = "default"
    lookback_days: int = 400
    """Calendar days of bars one decision sees (raised to cover every strategy's ``lookback()``)."""
    history_start: pd.Timestamp | None = None
    """Load bars from this date on instead of the lookback window's start (each decision still
    sees its lookback window only)."""
    simulated_clock: bool = False
    """Stamp audit rows with the simulated close (replays) instead of the wall clock."""
    max_failed_cycles: int = 3
    """Failed cycles in a row after which the heartbeat says ``error`` instead of ``degraded``."""
    settle_seconds: float = 10.0
    """Seconds a cycle keeps looking up orders whose outcome is unknown before it ends."""
    data_quality: str = "halt"
    """Policy of the data quality gate for the bars a cycle loads (:func:`hybrid_core.data.loading.policy_for`)."""
    heartbeat_every_s: float = 0.0
    """Seconds (wall clock) between two heartbeats while cycles end ``ok`` (0: after every cycle). A
    replay runs dozens of cycles a second: its heartbeat is written once a second, after any cycle
    that is not ``ok``, and at its end (:meth:`TradingCycle.write_heartbeat`)."""


class TradingCycle:
    """Runs cycles for one profile's components against one broker, state database and audit log."""

    def __init__(self, *, data_source: DataSource, strategies: Sequence[Strategy],
                 risk_rules: Sequence[RiskRule], broker: Broker, state: StateStore, audit: Any,
                 heartbeat: Any, settings: CycleSettings, observer: RunObserver | None = None) -> None:
        self.data_source = data_source
        self.strategies = list(strategies)
        self.risk_rules = list(risk_rules)
        self.broker = broker
        self.state = state
        self.observer = observer or RunObserver()
        self._gate_halt: str | None = None
        self.trail = AuditTrail(audit, simulated_clock=settings.simulated_clock, observer=self.observer)
        self.heartbeat = heartbeat
        self.settings = settings
        self.symbols = sorted({s for strat in self.strategies for s in strat.universe})
        self.orders = OrderDesk(broker, state, self.trail, self.risk_rules, settings.profile_name)
        self.reconciler = Reconciler(broker, state)
        self.last: CycleResult | None = None
        self._beat: dict[str, Any] | None = None
        """The heartbeat of the last cycle, not written yet (see ``heartbeat_every_s``)."""
        self._beat_at = -math.inf
        self._columns: tuple[pd.Index, dict[str, int]] | None = None

    # ------------------------------------------------------------------ run
    def run(self, as_of: pd.Timestamp | None = None, panel: Panel | None = None) -> CycleResult:
        """Run one cycle at the close of ``as_of`` (default: the latest bar of the data).

        A failure is recorded (state database, heartbeat, one ERROR line) and raised again."""
        cycle_no = self.state.start_cycle(as_of or pd.Timestamp.now(tz="UTC").tz_localize(None).normalize())
        result = CycleResult(cycle=cycle_no, as_of=as_of)
        log = logger.bind(cycle=cycle_no, mode=self.settings.mode, dry_run=self.settings.dry_run)
        started = time.monotonic()
        try:
            self._run(result, as_of, panel, log)
        except Exception as exc:
            result.status = "error"
            result.error = str(exc) if isinstance(exc, HybridError) else f"{type(exc).__name__}: {exc}"
            self._finish(result, log, started, exc)
            raise
        self._finish(result, log, started)
        return result

    def write_heartbeat(self) -> None:
        """Write the last cycle's heartbeat if it is not written yet."""
        if self._beat is not None:
            self.heartbeat.write(**self._beat)
            self._beat, self._beat_at = None, time.monotonic()

    def _finish(self, result: CycleResult, log: Any, started: float, error: BaseException | None = None) -> None:
        result.duration_s = time.monotonic() - started
        self.state.finish_cycle(result.cycle, status=result.status, error=result.error,
                                signals_count=result.signals_count, orders_count=len(result.orders))
        failed = self.state.failed_cycles_in_a_row()
        limit = self.settings.max_failed_cycles
        reasons = list(result.notes)
        if result.status != "ok":
            reasons.insert(0, str(result.error))
            result.health = "error" if failed >= limit else "degraded"
        else:
            result.health = "degraded" if reasons else "ok"
        self.last = result
        self._beat = {"cycle": result.cycle, "mode": self.settings.mode, "last_error": result.error,
                      "status": result.health, "reasons": reasons, "failed_cycles": failed,
                      "max_failed_cycles": limit,
                      "as_of": result.as_of.strftime("%Y-%m-%d") if result.as_of is not None else None,
                      "portfolio_value": round(result.portfolio_value, 2),
                      "unknown_orders": len(result.unknown), "dry_run": self.settings.dry_run}
        if result.health != "ok" or time.monotonic() - self._beat_at >= self.settings.heartbeat_every_s:
            self.write_heartbeat()
        if result.status == "ok":
            log.info("Cycle completed", signals_count=result.signals_count, orders_count=len(result.orders),
                     fills_count=len(result.fills), unknown_orders=len(result.unknown),
                     portfolio_value=round(result.portfolio_value, 2),
                     as_of=str(result.as_of.date()) if result.as_of is not None else None,
                     health=result.health)
        else:
            log.error("Cycle failed closed ({n} of {limit} in a row): {error}; no new orders this cycle, "
                      "protective stops stay at the broker", n=failed, limit=limit, error=result.error)
        self.observer.cycle_finished(result, error)

    def _run(self, result: CycleResult, as_of: pd.Timestamp | None, panel: Panel | None, log: Any) -> None:
        # 0. bars up to this close, and whether they are good enough for new entries
        as_of, panel, halt_reason = self._bars(as_of, panel, log)
        result.as_of = as_of
        self.trail.as_of = as_of
        if halt_reason:
            result.notes.append(f"new entries halted: {halt_reason}")

        # 1. the broker catches up: fills and triggered stops since the last cycle; every order of
        #    ours not finished is settled by id; positions, dust and open orders are reconciled
        if not self.settings.dry_run:
            call(self.broker, "start_cycle", as_of)
            result.fills = self.orders.reconcile(as_of, call(self.broker, "sync", panel, as_of), log)
            result.corrections = self.reconciler.run(log)
            self.orders.protect_positions(log)

        # 2. the account at this close: positions, time-stop counts, marks, value, watermarks
        account = self._account(panel, as_of)
        result.portfolio_value, result.cash = account.last_value, account.cash
        result.open_positions = len(account.positions)

        # 3. every strategy's decision at this close
        decisions = []
        for strategy in self.strategies:
            decision = self._decide(strategy, panel, as_of, log)
            if decision is not None:
                decisions.append(decision)
                result.signals_count += len(decision.entries) + len(decision.exits)

        # 4. decisions -> plan -> vet (the backtest's own code), then orders
        closes = panel.close
        last_row = closes.to_numpy(dtype="float64", na_value=math.nan)[-1].copy()  # no row Series
        today = RowPrices(last_row, self._column_of(closes.columns)) if closes.index[-1] == as_of else {}
        plan, refused = account.decide(as_of, today, decisions, halt_reason=halt_reason)
        for intent, why in refused:
            self.orders.refuse(intent, str(why), log)
            self.observer.order_refused(intent, why.rule, str(why))
            result.refused.append(f"{intent.symbol}: {why}")
        result.orders = self.orders.carry_out(plan, as_of, dry_run=self.settings.dry_run, log=log)

        # 5. this cycle's orders are asked once (fills known now, positions protected now); orders
        #    whose outcome is unknown are looked up (bounded backoff); what is still unknown, and
        #    exits that wait or were refused, make the cycle degraded
        if not self.settings.dry_run:
            result.fills += self.orders.settle(self.settings.settle_seconds, as_of, log)
            self._report_unknown(self.orders.unknown_orders(), as_of, result, log)
            result.notes.extend(self.orders.exit_problems)

    def _report_unknown(self, unknown: list[StoredOrder], as_of: pd.Timestamp, result: CycleResult, log: Any) -> None:
        for order in unknown:
            late = order_kind(order) == "entry" and pd.Timestamp(order.decision_date) < as_of
            result.unknown.append(f"{order.client_order_id} ({order.symbol} {order.side} {order_kind(order)}, "
                                  f"decided {order.decision_date})")
            log.warning("Order {cid} ({symbol} {side} {kind}, decided {date}) is still unknown at the broker"
                        "{late}; it is looked up by id at every cycle", cid=order.client_order_id,
                        symbol=order.symbol, side=order.side, kind=order_kind(order), date=order.decision_date,
                        late=" past its decision's deadline" if late else "", client_order_id=order.client_order_id)
        if unknown:
            result.notes.append(f"{len(unknown)} order(s) unknown at the broker: "
                                + ", ".join(result.unknown[:5]) + (" ..." if len(unknown) > 5 else ""))

    # ----------------------------------------------------------------- data
    def _bars(self, as_of: pd.Timestamp | None, panel: Panel | None, log: Any
              ) -> tuple[pd.Timestamp, Panel, str | None]:
        wall_clock = as_of is None  # no simulated date: judge data freshness against today
        if as_of is None:
            today = pd.Timestamp.now(tz="UTC").tz_localize(None).normalize()
            latest = call(self.data_source, "latest_date", self.symbols)
            as_of = min(today, latest) if latest is not None else today
        if panel is None:
            panel = self._load(as_of)
        dates = panel.dates
        if len(dates) and dates[-1] < as_of:
            as_of = dates[-1]
        # what a live run loads at this close, whatever the caller holds (a replay: its whole window)
        panel = panel.select(self.symbols, end=as_of, start=self.window_start(as_of)) if len(dates) else panel
        dates = panel.dates
        if not len(dates) or dates[-1] < as_of - pd.Timedelta(days=7):
            raise DataError(f"no bars up to {as_of.date()} for the universe; check the data source")
        now = pd.Timestamp.now(tz="UTC").tz_localize(None) if wall_clock else as_of
        return as_of, panel, self._quality_gate(panel, now, log)

    def _column_of(self, columns: pd.Index) -> dict[str, int]:
        """``{symbol: position}`` of a panel's columns (made again only when the columns change)."""
        if self._columns is None or self._columns[0] is not columns:
            self._columns = (columns, {str(s): j for j, s in enumerate(columns)})
        return self._columns[1]

    def window_start(self, as_of: pd.Timestamp) -> pd.Timestamp:
        """The first date a decision at the close of ``as_of`` sees: ``lookback_days`` calendar days
        back, more if a strategy's ``lookback()`` sessions need it (1.6 days a session, plus 10)."""
        need = max([int(call(s, "lookback")) for s in self.strategies] + [1])
        return as_of - pd.Timedelta(days=max(self.settings.lookback_days, int(need * 1.6) + 10))

    def _load(self, as_of: pd.Timestamp) -> Panel:
        start = self.settings.history_start if self.settings.history_start is not None else self.window_start(as_of)
        gated = load_bars(self.data_source, self.symbols, start, as_of, policy=self.settings.data_quality)
        self._gate_halt = gated.halt_reason  # bad bars left out of this window: entries wait
        return Panel.from_long(gated.bars)

    def _quality_gate(self, panel: Panel, now: pd.Timestamp, log: Any) -> str | None:
        """The data quality gate on recent bars; returns a reason to halt new entries."""
        # older bars were checked by earlier cycles; the recent window is what this cycle trades on
        recent = panel.select(end=now, start=panel.dates[-1] - pd.Timedelta(days=QUALITY_WINDOW_DAYS))
        report = check_quality(recent, now)
        self.observer.data_checked(report)
        reasons = [r for r in (self._gate_halt, str(report.reason or "stale data") if report.halt_entries else None)
                   if r]
        self._gate_halt = None
        if reasons:
            reason = "; ".join(reasons)
            log.warning("New entries halted for this cycle: {reason}", reason=reason)
            return reason
        return None

    # -------------------------------------------------------------- account
    def _account(self, panel: Panel, as_of: pd.Timestamp) -> Account:
        """The account at this close, rebuilt from the state database and the broker's cash."""
        stored = self.state.positions(copy=False)
        positions = [Position(symbol=p.symbol, qty=p.qty, entry_price=p.entry_price,
                              entry_date=stored_day(p.entry_date), strategy=p.strategy,
                              stop_price=p.stop_price) for p in stored.values()]
        restarts = {p.symbol: stored_day(p.restart_date) if p.restart_date else None for p in stored.values()}
        account = Account.rebuild(
            call(self.broker, "account").cash, positions, restarts, panel, as_of, self.risk_rules,
            pending=self._pending_intents(),
            context={"mode": self.settings.mode, "dry_run": self.settings.dry_run,
                     "profile_name": self.settings.profile_name, "state": self.state})
        marks = Watermarks.from_meta(self.state.get_meta)
        marks.update(as_of.strftime("%Y-%m-%d"), account.last_value)
        account.watermarks = marks
        self.state.record_marks(as_of, {s: (account.last_close[s], account.last_bar_date[s])
                                        for s in account.positions if s in account.last_close},
                                meta=marks.to_meta())
        return account

    def _pending_intents(self) -> dict[str, list[OrderIntent]]:
        pending: dict[str, list[OrderIntent]] = {}
        for order in self.state.orders(open_only=True, copy=False):
            if order.order_type != "market":
                continue
            pending.setdefault(order.symbol, []).append(OrderIntent(
                symbol=order.symbol, side=order.side, qty=order.qty,  # type: ignore[arg-type]
                strategy=order.strategy or "", reason=order.reason or "",
                decision_date=stored_day(order.decision_date or ""), ref_price=order.ref_price or math.nan,
                signal={"client_order_id": order.client_order_id}))
        return pending

    # ------------------------------------------------------------ decisions
    def _decide(self, strategy: Strategy, panel: Panel, as_of: pd.Timestamp, log: Any) -> Decision | None:
        sub = panel.select(strategy.universe, end=as_of)
        if not len(sub.dates):
            log.info("{strategy}: no bars for its universe", strategy=strategy.name)
            return None
        signals = call(strategy, "signals", sub)
        decision = decision_at(signals, as_of, strategy.name)
        try:
            lines = strategy.explain(sub, signals, as_of) if logs_info() else []
        except Exception as exc:  # explanations must never stop trading
            lines = [f"{strategy.name}: explain() failed: {exc}"]
        for line in lines:
            log.info(line, strategy=strategy.name)
        if decision.entries or decision.exits:
            log.info("{strategy}: {n_in} entry and {n_out} exit signal(s)", strategy=strategy.name,
                     n_in=len(decision.entries), n_out=len(decision.exits),
                     entries=sorted(decision.entries), exits=sorted(decision.exits))
        return decision
