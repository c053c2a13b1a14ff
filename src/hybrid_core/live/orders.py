"""Order handling of the live cycle: send, cancel, protect positions with stops, recover.

:class:`OrderDesk` owns every conversation with the broker about orders. Its rules:

- every order gets a deterministic ``client_order_id`` (profile, strategy, symbol, side,
  decision date, kind) and is written to the state database (status ``submitting``) *before*
  it is sent, so a run killed in between asks the broker by id instead of sending twice;
- an exit first cancels the position's stop; if the exit then fails, the position gets a new
  stop under the next id of its sequence (never a reused id);
- a broker's ``BrokerError`` marks the order ``rejected``; any other failure of the broker's
  code is a ``ComponentError`` and leaves the order ``submitting`` (unknown, not rejected), to
  be settled by :meth:`OrderDesk.recover_unconfirmed` at the next cycle.

Issue 12 (an explicit order state machine) is meant to grow here.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pandas as pd

from ..account.boundary import call
from ..account.planner import Plan
from ..account.risk import protective_stop
from ..contracts import Broker, OrderIntent, OrderRequest, OrderStatus, Position, RiskRule, is_crypto
from ..errors import BrokerError
from ..ops.state import StateStore, StoredOrder, StoredPosition
from .events import AuditTrail, OrderEvent

MAX_CLIENT_ORDER_ID = 48


def client_order_id(profile: str, strategy: str, symbol: str, side: str, decision_date: Any,
                    kind: str = "mkt") -> str:
    """Deterministic order id: the same decision always gives the same id (at most 48 chars)."""
    day = pd.Timestamp(decision_date).strftime("%Y%m%d")
    digest = hashlib.sha256(f"{profile}|{strategy}|{symbol}|{side}|{day}|{kind}".encode()).hexdigest()
    cid = f"hy-{day}-{side[0]}{kind[0]}-{digest[:24]}"
    return cid[:MAX_CLIENT_ORDER_ID]


def state_status(status: str) -> str:
    """The state database's status for a broker's answer to a submission.

    A fill is never taken from a submission's answer: fills are recorded only by the fill path
    (:class:`~hybrid_core.live.fills.FillRecorder`, which opens or closes the position), so an
    order the broker already filled (say, adopted after a crash) stays ``pending`` until then."""
    if status in {"canceled", "rejected", "expired"}:
        return status
    return "pending"


class OrderDesk:
    """Sends, cancels and recovers the orders of one run; places and replaces protective stops."""

    def __init__(self, broker: Broker, state: StateStore, audit: AuditTrail, risk_rules: list[RiskRule],
                 profile_name: str) -> None:
        self.broker = broker
        self.state = state
        self.audit = audit
        self.stop_rules = [r for r in risk_rules if type(r).stop_price is not RiskRule.stop_price]
        self.profile_name = profile_name

    # ------------------------------------------------------------------ plan
    def carry_out(self, plan: Plan, as_of: pd.Timestamp, *, dry_run: bool, log: Any) -> list[dict[str, Any]]:
        """Cancel stale buys, restart time-stop counts, send the plan's (already vetted) orders.

        Returns one dict per order sent (or shown, in a dry run)."""
        sent: list[dict[str, Any]] = []
        for sym in plan.cancel:
            for order in self.state.orders(open_only=True):
                if order.symbol == sym and order.side == "buy" and order.order_type == "market":
                    if dry_run:
                        log.info("Dry run: would cancel the pending buy of {symbol} (not re-selected)",
                                 symbol=sym, client_order_id=order.client_order_id)
                        continue
                    self.cancel(order, "not re-selected by the next decision", log)
        if plan.restart and not dry_run:
            self.state.restart_positions(plan.restart, as_of)
        for intent in plan.orders:
            cid = self.order_id(intent)
            row = {"symbol": intent.symbol, "side": intent.side, "qty": intent.qty, "strategy": intent.strategy,
                   "reason": intent.reason, "client_order_id": cid, "price": intent.ref_price}
            if dry_run:
                log.info("Dry run: would {side} {qty} {symbol} ({reason})", side=intent.side,
                         qty=intent.qty, symbol=intent.symbol, reason=intent.reason, client_order_id=cid)
                self.audit.record(OrderEvent.decided(intent, cid, "dry_run"))
                sent.append({**row, "status": "dry_run"})
                continue
            status = self.send(intent, cid, log)
            if status is not None:
                sent.append({**row, "status": status.status, "order_id": status.broker_order_id})
            elif intent.side == "sell":  # the exit failed after its stop was cancelled: protect again
                self.protect_positions(log)
        return sent

    def refuse(self, intent: OrderIntent, why: str, log: Any) -> None:
        """Record an order the risk rules refused (not sent)."""
        cid = self.order_id(intent)
        log.warning("Order refused: {symbol} {side} {qty}: {why}", symbol=intent.symbol, side=intent.side,
                    qty=intent.qty, why=why, client_order_id=cid)
        self.audit.record(OrderEvent.decided(intent, cid, "refused", {"refusal": why}))

    def order_id(self, intent: OrderIntent) -> str:
        """The client order id of a market order decided at a close."""
        return client_order_id(self.profile_name, intent.strategy, intent.symbol, intent.side,
                               intent.decision_date)

    # --------------------------------------------------------------- sending
    def send(self, intent: OrderIntent, cid: str, log: Any) -> OrderStatus | None:
        """Record, then send, one market order; never sends an id twice."""
        known = self.state.get_order(cid)
        if known is not None and known.status != "submitting":
            log.info("Order {cid} already handled ({status}); not sent again", cid=cid, status=known.status)
            return None
        if intent.side == "sell":
            self.cancel_stop(intent.symbol, log)
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
        return self.submit(request, intent.signal, log, recovering=known is not None)

    def submit(self, request: OrderRequest, signal: dict[str, Any], log: Any,
               recovering: bool = False) -> OrderStatus | None:
        """Send a recorded order. ``recovering``: a previous run recorded it but may have died
        before hearing back, so ask the broker first and only send if it never saw the id."""
        try:
            status = call(self.broker, "get_order", request.client_order_id) if recovering else None
            if status is not None:
                log.warning("Order {cid} was sent by an interrupted run; adopting it, not resending",
                            cid=request.client_order_id)
            else:
                status = call(self.broker, "submit", request)
        except BrokerError as exc:
            self.state.update_order(request.client_order_id, status="rejected")
            log.error("Broker refused {symbol} {side} {qty}: {error}", symbol=request.symbol,
                      side=request.side, qty=request.qty, error=str(exc), client_order_id=request.client_order_id)
            self.audit.record(OrderEvent.sent(request, "rejected", signal, error=str(exc)))
            return None
        self.state.update_order(request.client_order_id, status=state_status(status.status),
                                broker_order_id=status.broker_order_id)
        log.info("Order submitted: {side} {qty} {symbol} ({reason})", side=request.side, qty=request.qty,
                 symbol=request.symbol, reason=request.reason, client_order_id=request.client_order_id,
                 order_id=status.broker_order_id)
        self.audit.record(OrderEvent.sent(request, "submitted", signal, order_id=status.broker_order_id))
        return status

    def cancel(self, order: StoredOrder, why: str, log: Any) -> None:
        """Cancel one open order at the broker; recorded only once the broker accepted the cancel."""
        try:
            call(self.broker, "cancel", order.client_order_id)
        except BrokerError as exc:
            log.error("Cancel of {cid} failed: {error}", cid=order.client_order_id, error=str(exc))
            return
        self.state.update_order(order.client_order_id, status="canceled")
        log.info("Order canceled: {side} {qty} {symbol}: {why}", side=order.side, qty=order.qty,
                 symbol=order.symbol, why=why, client_order_id=order.client_order_id)
        self.audit.record(OrderEvent.canceled(order, why))

    def cancel_stop(self, symbol: str, log: Any) -> None:
        """Cancel the protective stop of a position about to be sold."""
        stored = self.state.positions().get(symbol)
        if stored is None or not stored.stop_client_order_id:
            return
        order = self.state.get_order(stored.stop_client_order_id)
        if order is not None and order.is_open:
            self.cancel(order, "position exits", log)
        self.state.set_stop(symbol, None, None)

    # ----------------------------------------------------------------- stops
    def protect_positions(self, log: Any) -> None:
        """Place the broker-side stop of every position that has none and is not being sold.

        The stop price is the account's :func:`~hybrid_core.account.risk.protective_stop`, the
        very choice the backtest makes. A position whose stop was cancelled (by an exit whose
        order then failed, or at the broker) gets a new stop under the next id of its sequence."""
        if not self.stop_rules:
            return
        selling = {o.symbol for o in self.state.orders(open_only=True)
                   if o.side == "sell" and o.order_type == "market"}
        for sym, stored in self.state.positions().items():
            if stored.stop_client_order_id or sym in selling:
                continue
            pos = Position(symbol=sym, qty=stored.qty, entry_price=stored.entry_price,
                           entry_date=pd.Timestamp(stored.entry_date), strategy=stored.strategy)
            price = protective_stop(pos, self.stop_rules)
            if price is None:
                continue
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
            status = self.submit(request, {"stop_price": price}, log, recovering=known is not None)
            if status is not None:
                self.state.set_stop(sym, cid, price)

    def _stop_order_id(self, stored: StoredPosition) -> str:
        """The first id of the position's stop sequence that is unused, still open or unconfirmed."""
        for attempt in range(100):
            kind = "stop" if attempt == 0 else f"stop{attempt}"
            cid = client_order_id(self.profile_name, stored.strategy, stored.symbol, "sell",
                                  stored.entry_date, kind=kind)
            known = self.state.get_order(cid)
            if known is None or known.is_open:
                return cid
        raise BrokerError(f"{stored.symbol}: 100 stop orders were closed for one position; check the broker")

    # -------------------------------------------------------------- recovery
    def recover_unconfirmed(self, as_of: pd.Timestamp, log: Any) -> None:
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
            if not fresh and call(self.broker, "get_order", order.client_order_id) is None:
                self.state.update_order(order.client_order_id, status="canceled")
                log.warning("Order {cid} ({symbol} {side}) was recorded by an interrupted run on {date} but "
                            "never reached the broker; abandoned (stale decision or position gone)",
                            cid=order.client_order_id,
                            symbol=order.symbol, side=order.side, date=order.decision_date)
                continue
            status = self.submit(request, order.signal, log, recovering=True)
            if status is not None and order.order_type != "market" and order.symbol in self.state.positions():
                self.state.set_stop(order.symbol, order.client_order_id, order.stop_price)

