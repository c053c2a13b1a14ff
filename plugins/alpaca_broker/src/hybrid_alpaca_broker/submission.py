"""Sending an order exactly once: POST, and on any ambiguous failure reconcile by client_order_id.

A POST that timed out, lost its connection, got a 5xx/429, a duplicate-id 422, or an answer
that does not parse may or may not have created the order. Instead of resubmitting blindly, :class:`OrderSender` asks
``GET /v2/orders:by_client_order_id``; only when Alpaca confirms it has no such order is the
POST repeated (with the same client_order_id, which Alpaca refuses to reuse: a second order
cannot be created even then).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from loguru import logger

from hybrid_core.errors import BrokerError

from .conversions import sdk_order_request
from .http import ReadRetry, describe_failure, is_transient, status_of
from .order_rules import OrderPlan


class OrderSender:
    """Idempotent order submission over an alpaca-py ``TradingClient`` whose own retries are off."""

    def __init__(self, client: Any, reads: ReadRetry, attempts: int = 3,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.client = client
        self.reads = reads
        self.attempts = max(1, attempts)
        self.sleep = sleep

    def lookup(self, client_order_id: str) -> Any | None:
        """The Alpaca order with this client id (read retries apply), or None on 404."""
        def fetch() -> Any | None:
            try:
                return self.client.get_order_by_client_id(client_order_id)
            except Exception as exc:
                if status_of(exc) == 404:
                    return None
                raise
        try:
            return self.reads.call(f"GET order {client_order_id}", fetch)
        except Exception as exc:
            raise BrokerError(f"alpaca lookup of order {client_order_id} failed ({describe_failure(exc)}); "
                              f"nothing resubmitted, the next cycle reconciles it by id") from exc

    def send(self, plan: OrderPlan) -> Any:
        """POST ``plan`` once; reconcile after ambiguous failures; return the Alpaca order.

        Raises the API error for a definite refusal (4xx other than 429), and
        :class:`BrokerError` when the outcome is still unknown after ``attempts`` POSTs.
        """
        cid = plan.client_order_id
        log = logger.bind(client_order_id=cid, symbol=plan.symbol)
        last = ""
        request = sdk_order_request(plan)
        for attempt in range(1, self.attempts + 1):
            try:
                return self.client.submit_order(request)
            except Exception as exc:
                status = status_of(exc)
                unreadable = isinstance(exc, ValueError)  # a 2xx whose body is not an order
                if not (is_transient(exc) or status == 422 or unreadable):
                    raise
                last = describe_failure(exc)
                log.warning("alpaca POST /v2/orders {cid} ({symbol} {side} {qty:g}) attempt {n}/{total}: "
                            "{failure}; reconciling by client_order_id instead of resubmitting",
                            cid=cid, symbol=plan.symbol, side=plan.side, qty=plan.qty, n=attempt,
                            total=self.attempts, failure=last)
                found = self.lookup(cid)
                if found is not None:
                    log.info("alpaca order {cid} exists (status {status}); not resubmitted",
                             cid=cid, status=getattr(found.status, "value", found.status))
                    return found
                if status == 422:
                    raise
                if attempt < self.attempts:
                    self.sleep(self.reads.wait(attempt - 1, exc))
        raise BrokerError(
            f"alpaca order {cid} ({plan.symbol} {plan.side} {plan.qty:g}) not confirmed after "
            f"{self.attempts} attempts (last: {last}); Alpaca has no order with this client_order_id, "
            f"the next cycle reconciles it by id")
