"""Faults at the HTTP level: no duplicate orders, bounded time, clear logs, unknown is never rejected."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import requests
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, TimeInForce
from alpaca.trading.requests import MarketOrderRequest
from hybrid_alpaca_broker.http import RetryBudget, harden_sdk_client
from hybrid_alpaca_broker.testing import (
    Fault,
    created_then_error,
    html_500,
    late_post,
    rate_limit_burst,
    rate_limit_storm,
    unavailable,
)

from hybrid_core.contracts import OrderRequest
from hybrid_core.errors import BrokerError, OrderRejected, OrderUnconfirmed

ORDERS = "/v2/orders"
BY_ID = "/v2/orders:by_client_order_id"


def sent_once(status, server) -> None:
    """``status`` is the one order the server holds under its client id, and it filled."""
    order = one_order(server, status.client_order_id)
    assert status.broker_order_id == order["id"] and order["status"] == "filled"


def one_order(server, cid: str) -> dict:
    found = [o for o in server.exchange.orders if o["client_order_id"] == cid]
    assert len(found) == 1, f"{len(found)} orders with client_order_id {cid}"
    return found[0]


def hardened(server, timeout: float = 0.5) -> TradingClient:
    return harden_sdk_client(TradingClient("PKTEST0000", "secret", url_override=server.url), timeout)


def market(cid: str, qty: float = 1) -> MarketOrderRequest:
    return MarketOrderRequest(symbol="AAPL", qty=qty, side=OrderSide.BUY, time_in_force=TimeInForce.DAY,
                              client_order_id=cid)


def test_hardened_sdk_sends_a_failed_post_exactly_once(server):
    """alpaca-py alone would repeat a 429/504 POST three times, 3 s apart; hardened, it sends one."""
    client = hardened(server)
    server.faults.add(Fault("status", 504, method="POST", path=ORDERS, times=5))
    with pytest.raises(APIError) as err:
        client.submit_order(market("x"))
    assert err.value.status_code == 504
    assert server.count("POST", ORDERS) == 1
    assert client._retry == 0 and client._retry_codes == []


def test_every_request_has_a_timeout(server):
    client = hardened(server, timeout=0.3)
    server.faults.add(Fault("hang", method="GET", path="/v2/clock", hang_seconds=3))
    started = time.monotonic()
    with pytest.raises(requests.Timeout):
        client.get_clock()
    assert time.monotonic() - started < 1.5


class FakeClock:
    """A monotonic clock that only moves when the budget sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def test_retry_budget_backs_off_and_gives_up_when_the_next_wait_does_not_fit():
    clock, calls = FakeClock(), []
    budget = RetryBudget(seconds=1.0, backoff=0.1, max_wait=0.3, sleep=clock.sleep, clock=lambda: clock.now)

    def flaky():
        calls.append(1)
        raise requests.ConnectionError("down")
    with pytest.raises(requests.ConnectionError):
        budget.call("GET x", flaky)
    assert clock.waits == [0.1, 0.2, 0.3, 0.3] and len(calls) == 5  # 0.9 s spent; 0.3 more does not fit
    with pytest.raises(requests.ConnectionError):  # the budget is spent: tried once, not retried
        budget.call("GET x", flaky)
    assert len(calls) == 6 and len(clock.waits) == 4
    budget.renew()  # the next cycle
    with pytest.raises(ValueError):  # not transient: never retried
        budget.call("GET y", lambda: (_ for _ in ()).throw(ValueError("bad")))
    assert budget.left == 1.0


def test_a_429_retry_after_header_is_honoured(broker, server, logs):
    server.faults.add(Fault("status", 429, method="GET", path="/v2/account", retry_after=0.4))
    started = time.monotonic()
    assert broker.account().cash == 100_000.0
    assert 0.4 <= time.monotonic() - started < 1.5
    assert any("HTTP 429" in line and "retry 1 in 0.40s" in line for line in logs)


def test_a_retry_after_longer_than_the_budget_is_not_waited_for(make_broker, server, logs):
    broker = make_broker(retry_budget=1.0)
    server.faults.add(Fault("status", 429, method="GET", path="/v2/account", retry_after=30))
    started = time.monotonic()
    with pytest.raises(BrokerError, match="HTTP 429"):
        broker.account()
    assert time.monotonic() - started < 0.5
    assert any("not retried (next wait 30.00s, retry budget left" in line for line in logs)


def test_429_storm_ends_with_one_order_and_a_clear_log(make_broker, server, logs):
    broker = make_broker()
    server.faults.add(rate_limit_burst(2))
    server.faults.add(rate_limit_burst(3, method="POST", path=ORDERS))
    server.faults.add(rate_limit_burst(3, method="GET", path=BY_ID))
    status = broker.submit(OrderRequest("storm-1", "AAPL", "buy", 3))
    sent_once(status, server)
    assert server.count("POST", ORDERS) == 4
    posts = [line for line in logs if "POST /v2/orders storm-1" in line]
    assert len(posts) == 3 and all("HTTP 429" in line and "rate limit exceeded" in line and
                                   "asking Alpaca by client_order_id before any new POST" in line
                                   for line in posts)


def test_a_429_storm_of_seconds_delays_the_order_it_does_not_drop_it(make_broker, server, logs):
    """Every request is refused for 1.2 s (Retry-After 0.3 s): the order goes out once it ends."""
    broker = make_broker(retry_budget=5.0)
    server.faults.add(rate_limit_storm(1.2, retry_after=0.3))
    started = time.monotonic()
    status = broker.submit(OrderRequest("storm-s", "AAPL", "buy", 3))
    assert time.monotonic() - started >= 1.2
    sent_once(status, server)
    assert server.count("POST", ORDERS) == 1
    assert all("in 0.30s" in line for line in logs if "retry " in line and "HTTP 429" in line)


def test_lookup_503s_outlasting_the_budget_leave_the_order_unknown_and_unsent(make_broker, server):
    broker = make_broker(retry_budget=0.5)
    server.faults.add(unavailable(500, method="GET", path=BY_ID))
    with pytest.raises(OrderUnconfirmed, match="lookup of order lookup-0 got no answer .*HTTP 503.*unknown"):
        broker.submit(OrderRequest("lookup-0", "AAPL", "buy", 3))
    assert server.count("POST", ORDERS) == 0
    server.faults.clear()
    assert broker.get_order("lookup-0") is None  # the broker's answer, once it can give one


def test_a_429_storm_outlasting_the_budget_is_unknown_not_rejected_then_sent_once(make_broker, server, logs):
    broker = make_broker(retry_budget=0.5)
    server.faults.add(rate_limit_burst(1000, method="POST", path=ORDERS))
    started = time.monotonic()
    with pytest.raises(OrderUnconfirmed, match=r"storm-2 .* not confirmed after \d+ POST\(s\) within the "
                                               r"retry budget of 0.5s .*HTTP 429"):
        broker.submit(OrderRequest("storm-2", "AAPL", "buy", 3))
    assert time.monotonic() - started < 1.5
    assert server.exchange.orders == []
    server.faults.clear()
    broker.start_cycle(pd.Timestamp.now())
    sent_once(broker.submit(OrderRequest("storm-2", "AAPL", "buy", 3)), server)


def test_a_post_processed_after_the_client_gave_up_is_unknown_then_found(make_broker, server):
    """The server holds the POST past the client's timeout and creates the order later; every
    new POST meanwhile is refused (503): the outcome is unknown, never rejected, and the next
    look-up finds the order (issue 12, case 2)."""
    broker = make_broker(timeout=0.3, retry_budget=0.6)
    server.faults.add(late_post(hang_seconds=1.5))
    server.faults.add(unavailable(100, method="POST", path=ORDERS))
    with pytest.raises(OrderUnconfirmed) as err:
        broker.submit(OrderRequest("late-1", "AAPL", "buy", 2))
    assert not isinstance(err.value, OrderRejected)
    assert server.exchange.orders == []  # not yet: the first POST is still held
    deadline = time.monotonic() + 5
    while not server.exchange.orders and time.monotonic() < deadline:
        time.sleep(0.05)
    found = broker.get_order("late-1")
    assert found is not None and found.status == "filled" and found.qty == 2
    one_order(server, "late-1")


def test_a_late_post_and_a_repeated_one_make_one_order(broker, server):
    """The repeated POST creates the order; the late first one then meets the duplicate-id 422."""
    server.faults.add(late_post(hang_seconds=1.5))
    status = broker.submit(OrderRequest("late-2", "AAPL", "buy", 2))
    time.sleep(1.6)  # let the held request reach the exchange (the assertion is about what it does then)
    assert server.count("POST", ORDERS) == 2
    sent_once(status, server)


def test_a_stop_created_but_answered_with_an_error_is_unknown_then_found(make_broker, server):
    """Case 3 of issue 12: the stop exists at Alpaca although its POST failed and no lookup answered."""
    broker = make_broker(retry_budget=0.4)
    broker.submit(OrderRequest("st-in", "AAPL", "buy", 10))
    server.faults.add(created_then_error(500))
    server.faults.add(unavailable(100, method="GET", path=BY_ID, skip=1))  # the check before the POST answers
    with pytest.raises(OrderUnconfirmed):
        broker.submit(OrderRequest("st-stop", "AAPL", "sell", 10, order_type="stop", stop_price=95))
    server.faults.clear()
    broker.start_cycle(pd.Timestamp.now())
    assert broker.get_order("st-stop").status == "new"
    with pytest.raises(OrderRejected, match="reserved by open orders"):  # a second stop: refused, not sent
        broker.submit(OrderRequest("st-stop1", "AAPL", "sell", 10, order_type="stop", stop_price=95))
    assert [o["client_order_id"] for o in server.exchange.orders] == ["st-in", "st-stop"]


def test_post_that_hangs_after_the_order_was_accepted(broker, server):
    server.faults.add(Fault("hang", method="POST", path=ORDERS, after_accept=True, hang_seconds=2))
    started = time.monotonic()
    status = broker.submit(OrderRequest("hang-1", "AAPL", "buy", 2))
    elapsed = time.monotonic() - started
    assert elapsed < 1.5
    sent_once(status, server)
    assert status.status == "accepted" and status.filled_qty == 0  # the fill is sync's to report
    assert [f.client_order_id for f in broker.sync(None, pd.Timestamp.now())] == ["hang-1"]
    assert server.count("POST", ORDERS) == 1


def test_reads_that_keep_hanging_fail_within_a_bound(make_broker, server):
    broker = make_broker(retry_budget=0.3, timeout=0.3)
    server.faults.add(Fault("hang", method="GET", path="/v2/account", times=5, hang_seconds=2))
    started = time.monotonic()
    report = broker.health_check()
    assert not report.ok and "timeout" in report.reason
    assert time.monotonic() - started < 1.5


def test_html_500_before_accept_is_retried_once_confirmed_absent(broker, server, logs):
    server.faults.add(html_500(method="POST", path=ORDERS))
    sent_once(broker.submit(OrderRequest("html-1", "AAPL", "buy", 1)), server)
    assert server.count("POST", ORDERS) == 2
    assert any("HTTP 500: HTML error page" in line for line in logs)


def test_html_500_after_accept_is_not_resubmitted(broker, server):
    server.faults.add(html_500(method="POST", path=ORDERS, after_accept=True))
    sent_once(broker.submit(OrderRequest("html-2", "AAPL", "buy", 1)), server)
    assert server.count("POST", ORDERS) == 1


def test_html_500_on_reads_becomes_one_broker_error_line(broker, server):
    server.faults.add(html_500(times=10, method="GET", path="/v2/account"))
    with pytest.raises(BrokerError) as err:
        broker.account()
    assert str(err.value).endswith("HTTP 500: HTML error page") and "\n" not in str(err.value)


def test_dropped_connection_after_accept(broker, server):
    server.faults.add(Fault("drop", method="POST", path=ORDERS, after_accept=True))
    sent_once(broker.submit(OrderRequest("drop-1", "AAPL", "buy", 4)), server)
    assert server.count("POST", ORDERS) == 1


@pytest.mark.parametrize("body", ["<html>proxy says hi</html>", '{"id": "not-an-order"}'])
def test_an_unreadable_answer_to_an_accepted_post_is_reconciled(broker, server, logs, body):
    server.faults.add(Fault("status", 200, body=body, method="POST", path=ORDERS, after_accept=True))
    sent_once(broker.submit(OrderRequest("garbled-1", "AAPL", "buy", 2)), server)
    assert server.count("POST", ORDERS) == 1
    assert any("unreadable answer" in line and "asking Alpaca by client_order_id" in line for line in logs)


def test_duplicate_id_422_is_reconciled(broker, server, logs):
    hardened(server).submit_order(market("dup-1", 4))
    server.faults.add(Fault("status", 404, body='{"code":40410000,"message":"order not found"}',
                            method="GET", path=BY_ID))  # a stale read hides it from the pre-check
    status = broker.submit(OrderRequest("dup-1", "AAPL", "buy", 4))
    assert status.qty == 4
    sent_once(status, server)
    assert any("HTTP 422" in line and "client_order_id must be unique" in line for line in logs)


CRASHING_CHILD = """
import sys
from hybrid_alpaca_broker.broker import AlpacaBroker, AlpacaParams
from hybrid_core.contracts import OrderRequest
broker = AlpacaBroker(AlpacaParams(base_url=sys.argv[1], timeout=30))
broker.configure(mode="paper", state_dir=sys.argv[2])
print("sending", flush=True)
broker.submit(OrderRequest("crash-1", "AAPL", "buy", 7))
print("recorded", flush=True)
"""


def test_crash_between_send_and_record_then_restart_leaves_one_order(make_broker, server, tmp_path: Path):
    """A real process is killed (SIGKILL) while its POST is in flight; the restarted one sends nothing new."""
    server.faults.add(Fault("hang", method="POST", path=ORDERS, after_accept=True, hang_seconds=20))
    env = {**os.environ, "ALPACA_API_KEY": "PKTEST0000", "ALPACA_SECRET_KEY": "secret"}
    child = subprocess.Popen([sys.executable, "-c", CRASHING_CHILD, server.url, str(tmp_path / "s")],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        deadline = time.monotonic() + 20
        while not server.exchange.orders and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.exchange.orders, "the child never sent its order"
        child.send_signal(signal.SIGKILL)
        out, _ = child.communicate(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
    assert "recorded" not in out
    restarted = make_broker(state_dir=tmp_path / "s")
    status = restarted.submit(OrderRequest("crash-1", "AAPL", "buy", 7))
    assert status.qty == 7
    sent_once(status, server)
    assert server.count("POST", ORDERS) == 1
    assert json.loads(json.dumps(server.exchange.orders[0]))["client_order_id"] == "crash-1"
