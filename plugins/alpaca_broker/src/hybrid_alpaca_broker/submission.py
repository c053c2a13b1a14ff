"""Sending an order exactly once: POST, and on any ambiguous failure ask by client_order_id.

A POST that timed out, lost its connection, got a 5xx/429, a duplicate-id 422, or an answer
that does not parse may or may not have created the order (the server may even process it
after the client gave up). Instead of resubmitting blindly, :class:`OrderSender` asks
``GET /v2/orders:by_client_order_id``; only when Alpaca answers that it has no such order is
the POST repeated, with the same client_order_id (which Alpaca refuses to reuse, so a late
first POST and a repeated one cannot both create an order). Pauses honour ``Retry-After``
and come out of the broker's one :class:`~hybrid_alpaca_broker.http.RetryBudget`; when it
runs out the outcome is *unknown* (:class:`~hybrid_core.errors.OrderUnconfirmed`), never a
refusal.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from loguru import logger

from hybrid_core.errors import OrderUnconfirmed

from .conversions import sdk_order_request
from .http import RetryBudget, describe_failure, is_transient, status_of
from .order_rules import OrderPlan


def is_duplicate_id(exc: BaseException) -> bool:
    """Alpaca's 422 for a client_order_id it already holds."""
    return status_of(exc) == 422 and "client_order_id" in str(exc) and "unique" in str(exc)


class OrderSender:
    """Idempotent order submission over an alpaca-py ``TradingClient`` whose own retries are off."""

    def __init__(self, client: Any, budget: RetryBudget,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.budget = budget
        self.clock = clock

    def lookup(self, client_order_id: str) -> Any | None:
        """The Alpaca order with this client id, or None when Alpaca answers it has none (404).

        Raises :class:`OrderUnconfirmed` when Alpaca gave no answer within the retry budget.
        """
        def fetch() -> Any | None:
            try:
                return self.client.get_order_by_client_id(client_order_id)
            except Exception as exc:
                if status_of(exc) == 404:
                    return None
                raise
        try:
            return self.budget.call(f"GET order {client_order_id}", fetch)
        except Exception as exc:
            raise OrderUnconfirmed(f"alpaca lookup of order {client_order_id} got no answer "
                                   f"({describe_failure(exc)}); its state is unknown, nothing was sent, "
                                   f"it is looked up by id again") from exc

    def send(self, plan: OrderPlan) -> Any:
        """POST ``plan``; after an ambiguous failure ask by id before any new POST; return the Alpaca order.

        Raises the API error of a definite refusal (a 4xx other than 429 and the duplicate-id
        422), and :class:`OrderUnconfirmed` when the retry budget ran out before Alpaca confirmed.
        """
        cid = plan.client_order_id
        log = logger.bind(client_order_id=cid, symbol=plan.symbol)
        request = sdk_order_request(plan)
        attempt = 0
        while True:
            started = self.clock()
            try:
                return self.client.submit_order(request)
            except Exception as exc:
                unreadable = isinstance(exc, ValueError)  # a 2xx whose body is not an order
                if not (is_transient(exc) or status_of(exc) == 422 or unreadable):
                    raise
                self.budget.charge(self.clock() - started)
                failure = describe_failure(exc)
                attempt += 1
                log.warning("alpaca POST /v2/orders {cid} ({symbol} {side} {qty:g}) attempt {n}: {failure}; "
                            "asking Alpaca by client_order_id before any new POST", cid=cid,
                            symbol=plan.symbol, side=plan.side, qty=plan.qty, n=attempt, failure=failure)
                found = self.lookup(cid)
                if found is not None:
                    log.info("alpaca order {cid} exists (status {status}); not resubmitted",
                             cid=cid, status=getattr(found.status, "value", found.status))
                    return found
                if status_of(exc) == 422 and not is_duplicate_id(exc):
                    raise
                pause = self.budget.wait(attempt - 1, exc)
                if pause > self.budget.left:
                    raise OrderUnconfirmed(
                        f"alpaca order {cid} ({plan.symbol} {plan.side} {plan.qty:g}) not confirmed after "
                        f"{attempt} POST(s) within the retry budget of {self.budget.seconds:g}s (last: "
                        f"{failure}); Alpaca had no order with this id when asked, but a POST still in "
                        f"flight may create it: unknown, looked up by id, never resent under a new id") from exc
                log.info("alpaca has no order {cid}; POST again in {pause:.2f}s (retry budget left {left:.2f}s)",
                         cid=cid, pause=pause, left=self.budget.left)
                self.budget.rest(pause)
