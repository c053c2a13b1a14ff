"""Order handling of the live cycle: send, cancel, protect positions with stops, reconcile.

:class:`OrderDesk` owns every conversation with the broker about orders, and moves orders only
through the state machine of :mod:`~hybrid_core.live.lifecycle`. Its rules:

- every order gets a deterministic ``client_order_id`` (profile, strategy, symbol, side,
  decision date, kind) and is written to the state database (``intended``) *before* it is
  sent, so a run killed in between asks the broker by id instead of sending twice;
- only the broker's explicit refusal (:class:`~hybrid_core.errors.OrderRejected`) makes an
  order ``rejected``; any other failure leaves its outcome ``unknown``, and every order not
  finished is looked up by id at the start of each cycle (:meth:`OrderDesk.reconcile`) and,
  while unknown, during the cycle with bounded backoff (:meth:`OrderDesk.settle`);
- an exit waits for the broker's confirmation that the position's stop is canceled (or filled:
  then the exit is not needed); an exit still waiting, or refused, is tried again at the next
  cycle while the position is held; a position whose stop is gone gets a new one under the next
  id of its sequence (never a reused id);
- the desk calls each broker method once per step: retrying a request is the broker's job,
  within its own per-cycle budget.
"""

from __future__ import annotations

import functools
import hashlib
import time
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from ..account.boundary import call
from ..account.planner import Plan
from ..account.risk import protective_stop
from ..contracts import Broker, OrderIntent, OrderRequest, OrderStatus, Position, RiskRule, is_crypto
from ..errors import BrokerError, HybridError, OrderRejected
from ..ops.state import StateStore, StoredOrder, StoredPosition, iso_date, stored_day
from .events import AuditTrail, OrderEvent
from .fills import FillRecorder
from .lifecycle import TERMINAL, OrderStates, broker_state, is_terminal, normalise, order_kind

MAX_CLIENT_ORDER_ID = 48
SETTLE_FIRST_WAIT_S = 0.5
"""First pause before an unknown order is looked up again within a cycle (then doubled)."""


def client_order_id(profile: str, strategy: str, symbol: str, side: str, decision_date: Any,
                    kind: str = "mkt") -> str:
    """Deterministic order id: the same decision always gives the same id (at most 48 chars)."""
    day = _compact_day(decision_date)
    digest = hashlib.sha256(f"{profile}|{strategy}|{symbol}|{side}|{day}|{kind}".encode()).hexdigest()
    cid = f"hy-{day}-{side[0]}{kind[0]}-{digest[:24]}"
    return cid[:MAX_CLIENT_ORDER_ID]


@functools.lru_cache(maxsize=4096)
def _compact_day(value: Any) -> str:
    return pd.Timestamp(value).strftime("%Y%m%d")


def request_of(order: StoredOrder) -> OrderRequest:
    """The request that sends a recorded order (the same request every time it is sent)."""
    return OrderRequest(
        client_order_id=order.client_order_id, symbol=order.symbol, side=order.side,  # type: ignore[arg-type]
        qty=order.qty, order_type=order.order_type, stop_price=order.stop_price,  # type: ignore[arg-type]
        time_in_force="gtc" if is_crypto(order.symbol) or order.order_type != "market" else "day",
        strategy=order.strategy or "", reason=order.reason or "", decision_date=order.decision_date or "",
        ref_price=float(order.ref_price or 0.0))


def filled_answer(status: OrderStatus) -> bool:
    """True when the broker's answer carries a fill to record (filled, or closed after a partial fill)."""
    state = broker_state(status)
    return state == "filled" or (state in TERMINAL and status.filled_qty > 0)


class OrderDesk:
    """Sends, cancels and reconciles the orders of one run; places and replaces protective stops."""

    def __init__(self, broker: Broker, state: StateStore, audit: AuditTrail, risk_rules: list[RiskRule],
                 profile_name: str, sleep: Callable[[float], None] = time.sleep) -> None:
        self.broker = broker
        self.state = state
        self.states = OrderStates(state, audit)
        self.fills = FillRecorder(state, self.states)
        self.audit = audit
        self.stop_rules = [r for r in risk_rules if type(r).stop_price is not RiskRule.stop_price]
        self.profile_name = profile_name
        self.sleep = sleep
        self.exit_problems: list[str] = []
        """This cycle's exits that wait for a stop's cancel or were refused (the cycle is degraded)."""
        self.sent_now: set[str] = set()
        """Client ids of the orders submitted in this cycle."""

    # ------------------------------------------------------- start of cycle
    def reconcile(self, as_of: pd.Timestamp, reported: Sequence[OrderStatus], log: Any) -> list[OrderStatus]:
        """Bring every order of ours that is not finished in line with the broker; returns the fills recorded.

        The broker's ``sync`` report (``reported``) and a look-up by client_order_id of every
        other open order give its answer: fills are recorded first (with their positions), then
        every other answer moves its order; an order the broker could not be asked about is
        ``unknown``; an order the broker answers it never had is sent now if it is still wanted
        (an entry decided at this close, an exit or a stop of a position still held), else it
        ``expired`` (its decision lapsed, or its position is gone).
        """
        self.exit_problems, self.sent_now = [], set()
        answers: dict[str, OrderStatus] = {s.client_order_id: s for s in reported}
        absent: list[StoredOrder] = []
        open_orders = {o.client_order_id: o for o in self.state.orders(open_only=True)}
        for order in open_orders.values():
            if order.client_order_id in answers:
                continue
            try:
                found = call(self.broker, "get_order", order.client_order_id)
            except HybridError as exc:
                self.states.move(order, "unknown", log, why=f"look-up got no answer: {exc}")
                continue
            if found is None:
                absent.append(order)
            else:
                answers[order.client_order_id] = found
        fills = self.fills.record([s for s in answers.values() if filled_answer(s)], log)
        for cid, status in answers.items():
            if filled_answer(status):
                continue
            # recording fills moved only the filled orders: the others are as read above
            stored = open_orders[cid] if cid in open_orders else self.state.get_order(cid)
            if stored is not None and not is_terminal(stored.status):
                self.states.advance(stored, status, log)
        for order in absent:
            current = self.state.get_order(order.client_order_id)
            if current is not None and not is_terminal(current.status):
                self._absent(current, as_of, log)
        return fills

    def _absent(self, order: StoredOrder, as_of: pd.Timestamp, log: Any) -> None:
        """The broker answers it has no order with this id: send it if still wanted, else it expired."""
        state = normalise(order.status)
        if state not in ("intended", "unknown"):
            self.states.move(order, "unknown", log, why=f"the broker acknowledged it ({state}) but now answers "
                                                         f"it has no such order")
            return
        held = self.state.position(order.symbol)
        kind = order_kind(order)
        if kind == "entry" and pd.Timestamp(order.decision_date) == as_of:
            self.submit(order, log)
        elif kind == "exit" and held is not None:
            self.exit(order, log)
        elif kind == "stop" and held is not None and held.stop_client_order_id == order.client_order_id:
            self._send_stop(order, log)
        else:
            why = (f"its decision of {order.decision_date} lapsed" if kind == "entry"
                   else f"the position in {order.symbol} is gone" if held is None
                   else "the position has another stop")
            self.states.move(order, "expired", log, why=f"never reached the broker; {why}")

    # ------------------------------------------------------------------ plan
    def carry_out(self, plan: Plan, as_of: pd.Timestamp, *, dry_run: bool, log: Any) -> list[dict[str, Any]]:
        """Cancel stale buys, restart time-stop counts, send the plan's (already vetted) orders.

        Returns one dict per order sent (or shown, in a dry run)."""
        sent: list[dict[str, Any]] = []
        for sym in plan.cancel:
            for order in self.state.orders(open_only=True, symbol=sym):
                if order.side == "buy" and order.order_type == "market":
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
            placed = self.send(intent, cid, log)
            if placed is not None:
                sent.append({**row, "status": normalise(placed.status), "order_id": placed.broker_order_id or ""})
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
    def send(self, intent: OrderIntent, cid: str, log: Any) -> StoredOrder | None:
        """Record (``intended``), then send one market order of the plan; never sends an id twice.

        An exit goes through :meth:`exit` (its stop's cancel confirmed first). Returns the order
        as it now stands, or None when the id was handled before.
        """
        known = self.state.get_order(cid)
        if known is not None:
            log.info("Order {cid} already {status}; not sent again", cid=cid, status=normalise(known.status))
            return None
        order = StoredOrder(client_order_id=cid, symbol=intent.symbol, side=intent.side, qty=intent.qty,
                            order_type="market", status="intended", strategy=intent.strategy,
                            reason=intent.reason, decision_date=intent.decision_date.strftime("%Y-%m-%d"),
                            ref_price=intent.ref_price, signal=intent.signal)
        self.state.record_order(order)
        return self.exit(order, log) if intent.side == "sell" else self.submit(order, log)

    def submit(self, order: StoredOrder, log: Any) -> StoredOrder:
        """Send a recorded order once and move it by the broker's answer; returns it as it now stands."""
        self.sent_now.add(order.client_order_id)
        try:
            status = call(self.broker, "submit", request_of(order))
        except OrderRejected as exc:
            return self.states.move(order, "rejected", log, why=str(exc))
        except HybridError as exc:  # the broker's failure, or a bug in its code: the outcome is not known
            return self.states.move(order, "unknown", log, why=f"outcome not confirmed: {exc}")
        return self.states.advance(order, status, log)

    def exit(self, order: StoredOrder, log: Any) -> StoredOrder:
        """Send a recorded exit once every open stop of its position is confirmed closed.

        A stop the broker says filled sold the position: the exit is not needed (``expired``).
        A stop whose cancel is not confirmed keeps the exit ``intended``; it is tried again at
        the next cycle (and within this one once the cancel is confirmed). A refused exit leaves
        the position to :meth:`protect_positions`.
        """
        for stop in self._open_stops(order.symbol):
            after = self.cancel(stop, "position exits", log)
            if normalise(after.status) == "filled":
                return self.states.move(order, "expired", log, why="not needed: the stop filled first")
            if not is_terminal(after.status):
                self.exit_problems.append(f"exit of {order.symbol} waits for the cancel of its stop "
                                          f"{stop.client_order_id} (tried again next cycle)")
                log.warning("Exit of {symbol} waits: the cancel of stop {stop} is not confirmed; the exit is "
                            "tried again once it is", symbol=order.symbol, stop=stop.client_order_id,
                            client_order_id=order.client_order_id)
                return order
        if self.state.position(order.symbol) is None:
            return self.states.move(order, "expired", log, why=f"not needed: {order.symbol} is no longer held")
        self.state.set_stop(order.symbol, None, None)
        sent = self.submit(order, log)
        if normalise(sent.status) == "rejected":
            self.exit_problems.append(f"exit of {order.symbol} refused by the broker")
        return sent

    def _open_stops(self, symbol: str) -> list[StoredOrder]:
        return [o for o in self.state.orders(open_only=True, symbol=symbol)
                if o.side == "sell" and o.order_type != "market"]

    def cancel(self, order: StoredOrder, why: str, log: Any) -> StoredOrder:
        """Ask the broker to cancel ``order``; returns it as the broker's answer leaves it.

        ``canceled`` only on the broker's confirmation; a fill the broker reports is recorded
        (with its position); no answer, or an order still open after the broker's wait, is
        ``unknown``, looked up again.
        """
        if normalise(order.status) == "intended":  # never sent: nothing at the broker to cancel
            return self.states.move(order, "expired", log, why=f"canceled before it was sent: {why}")
        try:
            status = call(self.broker, "cancel", order.client_order_id)
            if status is None:  # a broker of contract 1.0 answers nothing: ask
                status = call(self.broker, "get_order", order.client_order_id)
        except HybridError as exc:
            return self.states.move(order, "unknown", log, why=f"cancel not confirmed: {exc}")
        if status is None:
            return self.states.move(order, "expired", log, why="the broker answers it has no such order")
        if filled_answer(status):
            self.fills.record([status], log)
            return self.state.get_order(order.client_order_id) or order
        if broker_state(status) in TERMINAL:
            return self.states.advance(order, status, log, why=why)
        return self.states.move(order, "unknown", log, why=f"cancel not confirmed: the broker still shows it "
                                                             f"{status.status}")

    # ----------------------------------------------------------------- stops
    def protect_positions(self, log: Any) -> None:
        """Place the broker-side stop of every held position that has none and is not being sold.

        The stop price is the account's :func:`~hybrid_core.account.risk.protective_stop`, the
        very choice the backtest makes. A position whose stop is closed (canceled by an exit
        that was then refused, expired or rejected) gets a new stop under the next id of its
        sequence; a stop whose fate is unknown is looked up, never duplicated."""
        if not self.stop_rules:
            return
        open_orders = self.state.orders(open_only=True, copy=False)
        selling = {o.symbol for o in open_orders if o.side == "sell" and o.order_type == "market"}
        stops = {o.symbol: o for o in open_orders if o.side == "sell" and o.order_type != "market"}
        for sym, stored in self.state.positions(copy=False).items():
            if sym in selling:
                continue
            if sym in stops:  # protected, or its stop's fate is being looked up
                if stored.stop_client_order_id != stops[sym].client_order_id:
                    self.state.set_stop(sym, stops[sym].client_order_id, stops[sym].stop_price)
                continue
            pos = Position(symbol=sym, qty=stored.qty, entry_price=stored.entry_price,
                           entry_date=stored_day(stored.entry_date), strategy=stored.strategy)
            price = protective_stop(pos, self.stop_rules)
            if price is None:
                continue
            order = StoredOrder(client_order_id=self._stop_order_id(stored), symbol=sym, side="sell",
                                qty=stored.qty, order_type="stop", stop_price=price, status="intended",
                                strategy=stored.strategy, reason="stop_loss",
                                decision_date=iso_date(stored.entry_date),
                                ref_price=stored.entry_price)
            self.state.record_order(order)
            self.state.set_stop(sym, order.client_order_id, price)  # the position points at its stop at once
            self._send_stop(order, log)

    def _send_stop(self, order: StoredOrder, log: Any) -> None:
        sent = self.submit(order, log)
        if normalise(sent.status) in TERMINAL:
            self.state.set_stop(order.symbol, None, None)
            log.error("{symbol} has no stop at the broker: stop {cid} is {status}; a new one is tried at the next "
                      "cycle", symbol=order.symbol, cid=order.client_order_id, status=sent.status)
        else:
            self.state.set_stop(order.symbol, order.client_order_id, sent.stop_price)

    def _stop_order_id(self, stored: StoredPosition) -> str:
        """The first id of the position's stop sequence that was never used."""
        for attempt in range(100):
            kind = "stop" if attempt == 0 else f"stop{attempt}"
            cid = client_order_id(self.profile_name, stored.strategy, stored.symbol, "sell",
                                  stored.entry_date, kind=kind)
            if self.state.get_order(cid) is None:
                return cid
        raise BrokerError(f"{stored.symbol}: 100 stop orders were closed for one position; check the broker")

    # ----------------------------------------------------------- in the cycle
    def settle(self, seconds: float, as_of: pd.Timestamp, log: Any) -> list[OrderStatus]:
        """Before the cycle ends: record what this cycle's orders already did, settle the unknown ones,
        and protect every held position; returns the fills recorded.

        Each order sent in this cycle and still open is asked once (a crypto entry fills at once,
        and its position gets its stop now rather than a day later). Orders whose outcome is
        unknown are looked up with waits of 0.5, 1, 2... s for at most ``seconds``: an answer
        moves them; an order the broker does not have is sent again (same client_order_id) if it
        is still wanted. Exits whose stop's cancel is now confirmed are sent.
        """
        fills: list[OrderStatus] = []
        wait, spent = SETTLE_FIRST_WAIT_S, 0.0
        unknown = self.unknown_orders()
        while unknown and spent + wait <= seconds:
            self.sleep(wait)
            spent += wait
            wait *= 2
            for order in unknown:
                fills += self._look_up(order, as_of, log, resend=True)
            self._resume_exits(log)
            unknown = self.unknown_orders()
        for cid in sorted(self.sent_now):
            sent = self.state.get_order(cid)
            if sent is not None and sent.is_open and normalise(sent.status) != "unknown":
                fills += self._look_up(sent, as_of, log, resend=False)
        self.protect_positions(log)
        return fills

    def _look_up(self, order: StoredOrder, as_of: pd.Timestamp, log: Any, *, resend: bool) -> list[OrderStatus]:
        """Ask the broker about one order and apply its answer; returns the fill recorded, if any."""
        try:
            status = call(self.broker, "get_order", order.client_order_id)
        except HybridError:
            return []
        current = self.state.get_order(order.client_order_id) or order
        if is_terminal(current.status):
            return []
        if status is None:
            if resend:
                self._absent(current, as_of, log)
            return []
        if filled_answer(status):
            return self.fills.record([status], log)
        self.states.advance(current, status, log)
        return []

    def _resume_exits(self, log: Any) -> None:
        """Send the waiting exits whose every stop is now confirmed closed (no new cancel request)."""
        for order in self.state.orders(open_only=True):
            if order_kind(order) == "exit" and normalise(order.status) == "intended" \
                    and not self._open_stops(order.symbol):
                self.exit(order, log)

    def unknown_orders(self) -> list[StoredOrder]:
        """Orders whose outcome the broker has not confirmed."""
        return self.state.orders(status="unknown")
