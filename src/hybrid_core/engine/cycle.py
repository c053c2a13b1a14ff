"""The live cycle: load bars -> broker sync -> signals -> risk rules -> orders -> audit -> heartbeat.

One :class:`TradingCycle` runs the same steps for ``hybrid run`` (paper or live),
``hybrid run --dry-run`` and ``hybrid replay``. It decides with the very function the
backtester uses (:func:`~hybrid_core.engine.planner.plan_orders`), so a paper run follows
STRATEGIES.md exactly as a backtest does.

Idempotency: every order gets a deterministic ``client_order_id`` (profile, strategy,
symbol, side, decision date), written to the state database *before* it is sent. A cycle
that is run again, or restarted after a crash, finds the id and asks the broker instead of
sending a second order.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import numpy as np
import pandas as pd
from loguru import logger

from ..contracts import (
    Broker,
    CycleContext,
    DataSource,
    Decision,
    OrderIntent,
    OrderRequest,
    OrderStatus,
    Panel,
    Position,
    RiskRule,
    Signals,
    Strategy,
    is_crypto,
)
from ..errors import BrokerError, HybridError
from ..ops.observer import RunObserver
from ..ops.state import StateStore, StoredOrder, StoredPosition
from .planner import Plan, plan_orders

MAX_CLIENT_ORDER_ID = 48
QUALITY_WINDOW_DAYS = 45
SIMULATED_CLOSE = pd.Timedelta(hours=21)
"""Time of day (UTC) a replayed decision is stamped with: after the NYSE close, before midnight."""
"""Calendar days of recent bars the data quality gate inspects each cycle."""


def client_order_id(profile: str, strategy: str, symbol: str, side: str, decision_date: Any,
                    kind: str = "mkt") -> str:
    """Deterministic order id: the same decision always gives the same id (at most 48 chars)."""
    day = pd.Timestamp(decision_date).strftime("%Y%m%d")
    digest = hashlib.sha256(f"{profile}|{strategy}|{symbol}|{side}|{day}|{kind}".encode()).hexdigest()
    cid = f"hy-{day}-{side[0]}{kind[0]}-{digest[:24]}"
    return cid[:MAX_CLIENT_ORDER_ID]


@attrs.define
class CycleResult:
    """What one cycle did."""

    cycle: int
    as_of: pd.Timestamp | None
    signals_count: int = 0
    orders: list[dict[str, Any]] = attrs.field(factory=list)
    fills: list[OrderStatus] = attrs.field(factory=list)
    refused: list[str] = attrs.field(factory=list)
    notes: list[str] = attrs.field(factory=list)
    portfolio_value: float = 0.0
    cash: float = 0.0
    open_positions: int = 0
    status: str = "ok"
    error: str | None = None
    duration_s: float = 0.0


@attrs.define
class CycleSettings:
    """How a cycle behaves: mode, dry run, profile name, history to load."""

    mode: str = "paper"
    dry_run: bool = False
    profile_name: str = "default"
    lookback_days: int = 400
    history_start: pd.Timestamp | None = None
    """Load bars from this date on instead of ``as_of - lookback_days`` (replay uses the window start)."""
    simulated_clock: bool = False
    """Stamp audit rows with the simulated close (replays) instead of the wall clock."""


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
        self.audit = audit
        self.heartbeat = heartbeat
        self.settings = settings
        self.observer = observer or RunObserver()
        self.symbols = sorted({s for strat in self.strategies for s in strat.universe})
        self._as_of: pd.Timestamp | None = None

    # ------------------------------------------------------------------ run
    def run(self, as_of: pd.Timestamp | None = None, panel: Panel | None = None) -> CycleResult:
        """Run one cycle at the close of ``as_of`` (default: the latest bar of the data)."""
        cycle_no = self.state.start_cycle(as_of or pd.Timestamp.now(tz="UTC").tz_localize(None).normalize())
        result = CycleResult(cycle=cycle_no, as_of=as_of)
        log = logger.bind(cycle=cycle_no, mode=self.settings.mode, dry_run=self.settings.dry_run)
        started = time.monotonic()
        try:
            self._run(result, as_of, panel, log)
        except HybridError as exc:
            result.status, result.error = "error", str(exc)
            self._finish(result, log, started, exc)
            raise
        except Exception as exc:
            result.status, result.error = "error", f"{type(exc).__name__}: {exc}"
            self._finish(result, log, started, exc)
            raise
        self._finish(result, log, started)
        return result

    def _finish(self, result: CycleResult, log: Any, started: float, error: BaseException | None = None) -> None:
        result.duration_s = time.monotonic() - started
        self.state.finish_cycle(result.cycle, status=result.status, error=result.error,
                                signals_count=result.signals_count, orders_count=len(result.orders))
        self.heartbeat.write(cycle=result.cycle, mode=self.settings.mode, last_error=result.error,
                             status="ok" if result.status == "ok" else "error",
                             as_of=result.as_of.strftime("%Y-%m-%d") if result.as_of is not None else None,
                             portfolio_value=round(result.portfolio_value, 2),
                             dry_run=self.settings.dry_run)
        if result.status == "ok":
            log.info("Cycle completed", signals_count=result.signals_count, orders_count=len(result.orders),
                     fills_count=len(result.fills), portfolio_value=round(result.portfolio_value, 2),
                     as_of=str(result.as_of.date()) if result.as_of is not None else None)
        else:
            log.error("Cycle failed: {error}", error=result.error)
        self.observer.cycle_finished(result, error)

    def _run(self, result: CycleResult, as_of: pd.Timestamp | None, panel: Panel | None, log: Any) -> None:
        wall_clock = as_of is None  # no simulated date: judge data freshness against today
        if as_of is None:
            today = pd.Timestamp.now(tz="UTC").tz_localize(None).normalize()
            latest = self.data_source.latest_date(self.symbols)
            as_of = min(today, latest) if latest is not None else today
        if panel is None:
            panel = self._load(as_of)
        if len(panel.dates) and panel.dates[-1] < as_of:
            as_of = panel.dates[-1]
        panel = panel.select(self.symbols, end=as_of) if len(panel.dates) else panel
        result.as_of = as_of
        self._as_of = as_of
        if not len(panel.dates) or panel.dates[-1] < as_of - pd.Timedelta(days=7):
            raise HybridError(f"no bars up to {as_of.date()} for the universe; check the data source")
        now = pd.Timestamp.now(tz="UTC").tz_localize(None) if wall_clock else as_of
        halt_reason = self._quality_gate(panel, now, log)

        # 1. the broker catches up: fills and triggered stops since the last cycle
        if not self.settings.dry_run:
            self._recover_unconfirmed(as_of, log)
            fills = self._collect_fills(self.broker.sync(panel, as_of), log)
            self._record_fills(fills, panel, log)
            result.fills = fills
            self._reconcile(log)
            self._protect_new_positions(as_of, log)

        # 2. what the account holds and is worth at this close
        closes = latest_closes(panel, as_of)
        positions = self._positions(panel, as_of)
        cash = self.broker.account().cash
        value = cash + sum(p.qty * closes.get(s, p.entry_price) for s, p in positions.items())
        result.portfolio_value, result.cash, result.open_positions = value, cash, len(positions)
        peak = max(float(self.state.get_meta("peak_value", value)), value)
        day_key = as_of.strftime("%Y-%m-%d")
        day_start = self.state.get_meta("day_start", {})
        if day_start.get("date") != day_key:
            day_start = {"date": day_key, "value": self.state.get_meta("last_value", value)}
        self.state.set_meta({"peak_value": peak, "day_start": day_start, "last_value": value})

        # 3. every strategy's decision at this close
        decisions = []
        for strategy in self.strategies:
            decision = self._decide(strategy, panel, as_of, log)
            if decision is not None:
                decisions.append(decision)
                result.signals_count += len(decision.entries) + len(decision.exits)

        # 4. decisions -> plan (the backtester's own function), then risk vetoes, then orders
        pending = self._pending_intents()
        plan = plan_orders(as_of, decisions, positions, pending, closes, value, self.risk_rules)
        context = CycleContext(now=as_of, mode=self.settings.mode,  # type: ignore[arg-type]
                               dry_run=self.settings.dry_run, profile_name=self.settings.profile_name,
                               portfolio_value=value, positions=positions, peak_value=peak,
                               day_start_value=float(day_start["value"]), state=self.state)
        self._apply_plan(plan, context, halt_reason, result, log)

    # ----------------------------------------------------------------- data
    def _load(self, as_of: pd.Timestamp | None) -> Panel:
        end = as_of
        anchor = as_of if as_of is not None else pd.Timestamp.now(tz="UTC").tz_localize(None).normalize()
        start = self.settings.history_start
        if start is None:
            need = max([s.lookback() for s in self.strategies] + [1])
            days = max(self.settings.lookback_days, int(need * 1.6) + 10)
            start = anchor - pd.Timedelta(days=days)
        bars = self.data_source.fetch(self.symbols, start, end)
        return Panel.from_long(bars)

    def _quality_gate(self, panel: Panel, now: pd.Timestamp, log: Any) -> str | None:
        """Run the data quality gate when it is available; returns a reason to halt entries."""
        try:
            from ..data.quality import check_quality
        except ImportError:
            return None
        # older bars were checked by earlier cycles; the recent window is what this cycle trades on
        recent = panel.select(end=now, start=panel.dates[-1] - pd.Timedelta(days=QUALITY_WINDOW_DAYS))
        report = check_quality(recent, now)
        self.observer.data_checked(report)
        halt = getattr(report, "halt_entries", False)
        if halt:
            reason = getattr(report, "reason", "") or "stale data"
            log.warning("New entries halted for this cycle: {reason}", reason=reason)
            return str(reason)
        return None

    # ------------------------------------------------------------ decisions
    def _decide(self, strategy: Strategy, panel: Panel, as_of: pd.Timestamp, log: Any) -> Decision | None:
        sub = panel.select(strategy.universe, end=as_of)
        if not len(sub.dates):
            log.info("{strategy}: no bars for its universe", strategy=strategy.name)
            return None
        signals: Signals = strategy.signals(sub)  # failures arrive as StrategyError (see Strategy)
        decision = signals.row(as_of)
        decision.strategy = strategy.name
        try:
            lines = strategy.explain(sub, signals, as_of)
        except Exception as exc:  # explanations must never stop trading
            lines = [f"{strategy.name}: explain() failed: {exc}"]
        for line in lines:
            log.info(line, strategy=strategy.name)
        if decision.entries or decision.exits:
            log.info("{strategy}: {n_in} entry and {n_out} exit signal(s)", strategy=strategy.name,
                     n_in=len(decision.entries), n_out=len(decision.exits),
                     entries=sorted(decision.entries), exits=sorted(decision.exits))
        return decision

    def _positions(self, panel: Panel, as_of: pd.Timestamp) -> dict[str, Position]:
        """Open positions with their time-stop count derived from the symbol's own bars."""
        out = {}
        has_bar = panel.has_bar
        for sym, stored in self.state.positions().items():
            anchor = pd.Timestamp(stored.restart_date) if stored.restart_date else None
            entry = pd.Timestamp(stored.entry_date)
            if sym in has_bar.columns:
                bars = has_bar[sym]
                window = bars.loc[(bars.index > anchor) if anchor is not None else (bars.index >= entry)]
                window = window.loc[window.index <= as_of]
                held = int(window.sum())
            else:
                held = 0
            out[sym] = Position(symbol=sym, qty=stored.qty, entry_price=stored.entry_price, entry_date=entry,
                                strategy=stored.strategy, bars_held=held, stop_price=stored.stop_price)
        return out

    def _pending_intents(self) -> dict[str, list[OrderIntent]]:
        pending: dict[str, list[OrderIntent]] = {}
        for order in self.state.orders(open_only=True):
            if order.order_type != "market":
                continue
            pending.setdefault(order.symbol, []).append(OrderIntent(
                symbol=order.symbol, side=order.side, qty=order.qty,  # type: ignore[arg-type]
                strategy=order.strategy or "", reason=order.reason or "",
                decision_date=pd.Timestamp(order.decision_date), ref_price=order.ref_price or math.nan,
                signal={"client_order_id": order.client_order_id}))
        return pending

    # --------------------------------------------------------------- orders
    def _apply_plan(self, plan: Plan, context: CycleContext, halt_reason: str | None,
                    result: CycleResult, log: Any) -> None:
        as_of = context.now
        for sym in plan.cancel:
            for order in self.state.orders(open_only=True):
                if order.symbol == sym and order.side == "buy" and order.order_type == "market":
                    if self.settings.dry_run:
                        log.info("Dry run: would cancel the pending buy of {symbol} (not re-selected)",
                                 symbol=sym, client_order_id=order.client_order_id)
                        continue
                    self._cancel(order, "not re-selected by the next decision", log)
        if plan.restart and not self.settings.dry_run:
            self.state.restart_positions(plan.restart, as_of)
        for intent in plan.orders:
            cid = client_order_id(self.settings.profile_name, intent.strategy, intent.symbol, intent.side,
                                  intent.decision_date)
            refusal = self._vet(intent, context, halt_reason)
            row = {"symbol": intent.symbol, "side": intent.side, "qty": intent.qty,
                   "strategy": intent.strategy, "reason": intent.reason, "client_order_id": cid,
                   "signal": intent.signal, "price": intent.ref_price}
            if refusal is not None:
                log.warning("Order refused: {symbol} {side} {qty}: {why}", symbol=intent.symbol,
                            side=intent.side, qty=intent.qty, why=refusal, client_order_id=cid)
                result.refused.append(f"{intent.symbol}: {refusal}")
                self._audit({**row, "status": "refused", "order_id": "",
                             "signal": {**intent.signal, "refusal": refusal}})
                continue
            if self.settings.dry_run:
                log.info("Dry run: would {side} {qty} {symbol} ({reason})", side=intent.side,
                         qty=intent.qty, symbol=intent.symbol, reason=intent.reason, client_order_id=cid)
                self._audit({**row, "status": "dry_run", "order_id": ""})
                result.orders.append({**row, "status": "dry_run"})
                continue
            status = self._send(intent, cid, log)
            if status is not None:
                result.orders.append({**row, "status": status.status, "order_id": status.broker_order_id})
            elif intent.side == "sell":  # the exit failed after its stop was cancelled: protect again
                self._protect_new_positions(as_of, log)

    def _vet(self, intent: OrderIntent, context: CycleContext, halt_reason: str | None) -> str | None:
        if intent.side == "buy" and halt_reason:
            return self._refused(intent, "data_quality", f"new entries halted: {halt_reason}")
        if not (intent.ref_price > 0) or not math.isfinite(intent.ref_price):
            return self._refused(intent, "reference_price",
                                 f"no valid reference price for {intent.symbol} (got {intent.ref_price})")
        for rule in self.risk_rules:
            reason = rule.vet(intent, context)
            if reason is not None:
                name = getattr(rule, "name", type(rule).__name__)
                return self._refused(intent, name, f"{name}: {reason}")
        return None

    def _refused(self, intent: OrderIntent, rule: str, refusal: str) -> str:
        """Tell the observer which rule refused ``intent``; returns the refusal line."""
        self.observer.order_refused(intent, rule, refusal)
        return refusal

    def _send(self, intent: OrderIntent, cid: str, log: Any) -> OrderStatus | None:
        """Record, then send, one market order; never sends an id twice."""
        known = self.state.get_order(cid)
        if known is not None and known.status != "submitting":
            log.info("Order {cid} already handled ({status}); not sent again", cid=cid, status=known.status)
            return None
        if intent.side == "sell":
            self._cancel_stop(intent.symbol, log)
        request = OrderRequest(client_order_id=cid, symbol=intent.symbol, side=intent.side, qty=intent.qty,
                               order_type="market", time_in_force="gtc" if is_crypto(intent.symbol) else "day",
                               strategy=intent.strategy, reason=intent.reason,
                               decision_date=intent.decision_date.strftime("%Y-%m-%d"),
                               ref_price=float(intent.ref_price))
        if known is None:
            self.state.record_order(StoredOrder(
                client_order_id=cid, symbol=intent.symbol, side=intent.side, qty=intent.qty,
                order_type="market", status="submitting", strategy=intent.strategy, reason=intent.reason,
                decision_date=request.decision_date, ref_price=intent.ref_price, signal=intent.signal))
        return self._submit(request, intent.signal, log, recovering=known is not None)

    def _submit(self, request: OrderRequest, signal: Mapping[str, Any], log: Any,
                recovering: bool = False) -> OrderStatus | None:
        """Send a recorded order. ``recovering``: a previous run recorded it but may have died
        before hearing back, so ask the broker first and only send if it never saw the id."""
        try:
            status = self.broker.get_order(request.client_order_id) if recovering else None
            if status is not None:
                log.warning("Order {cid} was sent by an interrupted run; adopting it, not resending",
                            cid=request.client_order_id)
            else:
                status = self.broker.submit(request)
        except BrokerError as exc:
            self.state.update_order(request.client_order_id, status="rejected")
            log.error("Broker refused {symbol} {side} {qty}: {error}", symbol=request.symbol,
                      side=request.side, qty=request.qty, error=str(exc), client_order_id=request.client_order_id)
            self._audit({"symbol": request.symbol, "side": request.side, "qty": request.qty,
                         "price": request.ref_price, "order_id": "", "status": "rejected",
                         "client_order_id": request.client_order_id, "strategy": request.strategy,
                         "reason": request.reason, "signal": {**signal, "error": str(exc)}})
            return None
        self.state.update_order(request.client_order_id, status=_state_status(status.status),
                                broker_order_id=status.broker_order_id)
        log.info("Order submitted: {side} {qty} {symbol} ({reason})", side=request.side, qty=request.qty,
                 symbol=request.symbol, reason=request.reason, client_order_id=request.client_order_id,
                 order_id=status.broker_order_id)
        self._audit({"symbol": request.symbol, "side": request.side, "qty": request.qty,
                     "price": request.stop_price if request.order_type != "market" else request.ref_price,
                     "order_id": status.broker_order_id, "status": "submitted",
                     "client_order_id": request.client_order_id, "strategy": request.strategy,
                     "reason": request.reason, "signal": dict(signal)})
        return status

    def _cancel(self, order: StoredOrder, why: str, log: Any) -> None:
        try:
            self.broker.cancel(order.client_order_id)
        except BrokerError as exc:
            log.error("Cancel of {cid} failed: {error}", cid=order.client_order_id, error=str(exc))
            return
        self.state.update_order(order.client_order_id, status="canceled")
        log.info("Order canceled: {side} {qty} {symbol}: {why}", side=order.side, qty=order.qty,
                 symbol=order.symbol, why=why, client_order_id=order.client_order_id)
        self._audit({"symbol": order.symbol, "side": order.side, "qty": order.qty,
                     "price": order.stop_price if order.order_type != "market" else order.ref_price,
                     "order_id": order.broker_order_id or "", "status": "canceled",
                     "client_order_id": order.client_order_id, "strategy": order.strategy or "",
                     "reason": why if order.order_type == "market" else "stop_loss", "signal": order.signal})

    def _cancel_stop(self, symbol: str, log: Any) -> None:
        stored = self.state.positions().get(symbol)
        if stored is None or not stored.stop_client_order_id:
            return
        order = self.state.get_order(stored.stop_client_order_id)
        if order is not None and order.is_open:
            self._cancel(order, "position exits", log)
        self.state.set_stop(symbol, None, None)

    # ---------------------------------------------------------------- fills
    def _recover_unconfirmed(self, as_of: pd.Timestamp, log: Any) -> None:
        """Settle orders a killed run recorded but never heard back about.

        The broker is asked by client id: an order it has is adopted; an order it never saw is
        sent now if it was decided at this very close, and abandoned (with a log line) if its
        decision is older, since trading on a stale decision is worse than missing it.
        """
        for order in self.state.orders(open_only=True):
            if order.status != "submitting":
                continue
            request = OrderRequest(
                client_order_id=order.client_order_id, symbol=order.symbol, side=order.side,  # type: ignore[arg-type]
                qty=order.qty, order_type=order.order_type, stop_price=order.stop_price,  # type: ignore[arg-type]
                time_in_force="gtc" if is_crypto(order.symbol) or order.order_type != "market" else "day",
                strategy=order.strategy or "", reason=order.reason or "",
                decision_date=order.decision_date or "", ref_price=float(order.ref_price or 0.0))
            if order.order_type == "market":
                fresh = pd.Timestamp(order.decision_date) == as_of
            else:  # a stop is only worth sending while its position is held (else it could open a short)
                fresh = order.symbol in self.state.positions()
            if not fresh and self.broker.get_order(order.client_order_id) is None:
                self.state.update_order(order.client_order_id, status="canceled")
                log.warning("Order {cid} ({symbol} {side}) was recorded by an interrupted run on {date} but "
                            "never reached the broker; abandoned (stale decision or position gone)",
                            cid=order.client_order_id,
                            symbol=order.symbol, side=order.side, date=order.decision_date)
                continue
            status = self._submit(request, order.signal, log, recovering=True)
            if status is not None and order.order_type != "market" and order.symbol in self.state.positions():
                self.state.set_stop(order.symbol, order.client_order_id, order.stop_price)

    def _collect_fills(self, reported: Sequence[OrderStatus], log: Any) -> list[OrderStatus]:
        """Fills the broker reported, plus any open order of ours it has filled or closed meanwhile.

        Asking for every open order by id catches what a crashed run never recorded."""
        fills = list(reported)
        seen = {f.client_order_id for f in fills}
        for order in self.state.orders(open_only=True):
            if order.client_order_id in seen or order.status == "submitting":
                continue
            status = self.broker.get_order(order.client_order_id)
            if status is None:
                continue
            if status.status == "filled":
                fills.append(status)
            elif status.status in {"canceled", "rejected", "expired"}:
                self.state.update_order(order.client_order_id, status=status.status)
                log.warning("Order {cid} ({symbol} {side}) is {status} at the broker", cid=order.client_order_id,
                            symbol=order.symbol, side=order.side, status=status.status)
                if order.order_type != "market":
                    self.state.set_stop(order.symbol, None, None)
        fills.sort(key=lambda f: (str(f.filled_at or ""), 0 if f.side == "sell" else 1))
        return fills

    def _record_fills(self, fills: Sequence[OrderStatus], panel: Panel, log: Any) -> None:
        for fill in fills:
            stored = self.state.get_order(fill.client_order_id)
            if stored is None:
                log.warning("Broker reports a fill for an order this run did not send: {cid} {symbol}",
                            cid=fill.client_order_id, symbol=fill.symbol)
                continue
            if stored.status == "filled":
                continue
            price = float(fill.filled_avg_price or 0.0)
            when = fill.filled_at or ""
            self.state.update_order(fill.client_order_id, status="filled", filled_qty=fill.filled_qty,
                                    filled_avg_price=price, filled_at=when)
            if fill.side == "buy":
                self.state.open_position(StoredPosition(
                    symbol=fill.symbol, qty=float(fill.filled_qty), entry_price=price,
                    entry_date=pd.Timestamp(when).strftime("%Y-%m-%d"), strategy=stored.strategy or "",
                    opened_by=fill.client_order_id))
                reason = stored.reason or "entry"
            else:
                self.state.close_position(fill.symbol)
                reason = "stop_loss" if stored.order_type != "market" else (stored.reason or "signal")
            log.info("Fill: {side} {qty} {symbol} at {price}", side=fill.side, qty=fill.filled_qty,
                     symbol=fill.symbol, price=price, client_order_id=fill.client_order_id, reason=reason)
            self._audit({"timestamp": _fill_time(when), "symbol": fill.symbol, "side": fill.side,
                         "qty": fill.filled_qty, "price": price, "order_id": fill.broker_order_id,
                         "status": "filled", "client_order_id": fill.client_order_id,
                         "strategy": stored.strategy or "", "reason": reason, "signal": stored.signal})

    def _reconcile(self, log: Any) -> None:
        """Compare positions with the broker's; report differences, never sell on our own."""
        broker_positions = {p.symbol: p for p in self.broker.positions()}
        stored = self.state.positions()
        for sym, held in broker_positions.items():
            if sym not in stored:
                log.warning("Broker holds {qty} {symbol} that the state database does not know; "
                            "left alone (not sold)", qty=held.qty, symbol=sym)
        for sym, known in stored.items():
            if sym not in broker_positions:
                log.warning("State database holds {symbol} but the broker does not; forgetting it",
                            symbol=sym)
                self.state.close_position(sym)
            elif not math.isclose(broker_positions[sym].qty, known.qty, rel_tol=1e-9, abs_tol=1e-9):
                log.warning("{symbol}: broker quantity {b} differs from state {s}; using the broker's",
                            symbol=sym, b=broker_positions[sym].qty, s=known.qty)
                self.state.open_position(attrs.evolve(known, qty=broker_positions[sym].qty))

    def _protect_new_positions(self, as_of: pd.Timestamp, log: Any) -> None:
        """Place the broker-side stop of every position that has none and is not being sold.

        A position whose stop was cancelled (by an exit whose order then failed, or at the
        broker) gets a new stop under the next id of its sequence, never a reused id."""
        selling = {o.symbol for o in self.state.orders(open_only=True)
                   if o.side == "sell" and o.order_type == "market"}
        for sym, stored in self.state.positions().items():
            if stored.stop_client_order_id or sym in selling:
                continue
            pos = Position(symbol=sym, qty=stored.qty, entry_price=stored.entry_price,
                           entry_date=pd.Timestamp(stored.entry_date), strategy=stored.strategy)
            stops = [s for s in (r.stop_price(pos) for r in self.risk_rules) if s is not None]
            if not stops:
                continue
            price = max(stops)
            cid = self._stop_order_id(stored)
            request = OrderRequest(client_order_id=cid, symbol=sym, side="sell", qty=stored.qty,
                                   order_type="stop", stop_price=price,
                                   time_in_force="gtc", strategy=stored.strategy, reason="stop_loss",
                                   decision_date=pd.Timestamp(stored.entry_date).strftime("%Y-%m-%d"),
                                   ref_price=stored.entry_price)
            known = self.state.get_order(cid)
            if known is not None and known.status not in {"submitting"}:
                if known.is_open:
                    self.state.set_stop(sym, cid, price)
                continue
            if known is None:
                self.state.record_order(StoredOrder(
                    client_order_id=cid, symbol=sym, side="sell", qty=stored.qty, order_type="stop",
                    stop_price=price, status="submitting", strategy=stored.strategy, reason="stop_loss",
                    decision_date=request.decision_date, ref_price=stored.entry_price))
            status = self._submit(request, {"stop_price": price}, log, recovering=known is not None)
            if status is not None:
                self.state.set_stop(sym, cid, price)

    def _stop_order_id(self, stored: StoredPosition) -> str:
        """The first id of the position's stop sequence that is unused, still open or unconfirmed."""
        for attempt in range(100):
            kind = "stop" if attempt == 0 else f"stop{attempt}"
            cid = client_order_id(self.settings.profile_name, stored.strategy, stored.symbol, "sell",
                                  stored.entry_date, kind=kind)
            known = self.state.get_order(cid)
            if known is None or known.is_open:
                return cid
        raise BrokerError(f"{stored.symbol}: 100 stop orders were closed for one position; check the broker")

    def _audit(self, row: Mapping[str, Any]) -> None:
        if self.audit is None:
            return
        if self.settings.simulated_clock and not row.get("timestamp") and self._as_of is not None:
            row = {**row, "timestamp": _fill_time(str(self._as_of + SIMULATED_CLOSE))}
        self.audit.append(row)
        self.observer.order_event(row)


def _state_status(status: str) -> str:
    """The state database's status for a broker's answer to a submission.

    A fill is never taken from a submission's answer: fills are recorded only by
    :meth:`TradingCycle._record_fills` (which opens or closes the position), so an order the
    broker already filled (say, adopted after a crash) stays ``pending`` until then."""
    if status in {"canceled", "rejected", "expired"}:
        return status
    return "pending"


def _fill_time(when: str) -> str:
    if not when:
        return ""
    stamp = pd.Timestamp(when)
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return stamp.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def latest_closes(panel: Panel, as_of: pd.Timestamp) -> dict[str, float]:
    """Each symbol's latest close up to ``as_of`` (an equity keeps its Friday close on weekends)."""
    closes = panel.close.loc[:as_of]
    if closes.empty:
        return {}
    last = closes.ffill().iloc[-1]
    return {str(s): float(v) for s, v in last.items() if isinstance(v, float) and not np.isnan(v)}
