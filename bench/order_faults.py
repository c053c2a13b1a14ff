"""Benchmark of the order lifecycle under the faults of issue 12, against the local Alpaca server.

Each scenario runs `hybrid run --once` in-process on the sessions 2021-03-25..27 (crypto_adx on
BTC/USD and ETH/USD: an entry, its stop, a 2-bar time-stop exit; crypto fees of 25 bps) with one
fault injected, and compares the outcome with a fault-free run of the same sessions:

- ``same orders``: the orders at the broker (symbol, side, type, quantity) equal the fault-free
  run's: nothing duplicated, no decision lost;
- ``unprotected``: positions above dust left without a stop when a cycle ended (must be 0);
- ``doubled``: orders with two terminal states in the audit log (must be 0); ``rejected``: rows
  saying rejected (must be 0: no fault here is a refusal);
- ``health``: the heartbeat status after each cycle; ``seconds``: wall time of each cycle.

Then one cancel whose DELETE answers 500 forever, timed with the broker's default retry budget
and with a short one: the one retry policy bounds it (before issue 12 the core and the plugin
each retried it: 10.8 s, twice over).

    .venv/bin/python bench/order_faults.py            # one line per scenario, then one JSON object

Times on a shared machine are noisy; the outcome columns are exact.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hybrid_alpaca_broker.broker import AlpacaBroker, AlpacaParams
from hybrid_alpaca_broker.testing import (
    AlpacaTestServer,
    SimulatedExchange,
    created_then_error,
    html_500,
    ignored_cancel,
    late_post,
    rate_limit_storm,
    unavailable,
)
from hybrid_alpaca_broker.testing.rehearsal import LIFECYCLE_DAYS, doubled_terminal_states, lifecycle_rehearsal
from hybrid_alpaca_broker.testing.server import read_bars_file
from loguru import logger

from hybrid_core.contracts import OrderRequest
from hybrid_core.live.orders import client_order_id
from hybrid_core.testing import sample_bars_path

DAYS = LIFECYCLE_DAYS
ORDERS, BY_ID = "/v2/orders", "/v2/orders:by_client_order_id"
STOP_ID = client_order_id("lifecycle", "crypto_adx", "ETH/USD", "sell", DAYS[0], kind="stop")
Fault = Callable[[AlpacaTestServer], None]
SCENARIOS: dict[str, tuple[int, Fault, dict[str, float]]] = {
    # name: (index of the day the fault hits, how to inject it, profile settings)
    "fault-free": (0, lambda s: None, {}),
    "429 storm 3 s (Retry-After 1 s)": (0, lambda s: s.faults.add(rate_limit_storm(3, 1, "POST", ORDERS)),
                                        {"budget": 10}),
    "look-ups 503 for 2 s": (0, lambda s: s.faults.add(unavailable(method="GET", path=BY_ID, seconds=2)),
                             {"budget": 0.5, "settle": 4}),
    "POST processed 6 s late": (0, lambda s: (s.faults.add(late_post(6.0)),
                                              s.faults.add(unavailable(100, "POST", ORDERS))), {"budget": 0.5}),
    "stop created, answered 500": (0, lambda s: (s.faults.add(created_then_error(500, contains='"stop_limit"')),
                                                 s.faults.add(unavailable(1000, "GET", BY_ID, contains=STOP_ID,
                                                                          skip=1))), {"budget": 0.5}),
    "DELETE 204 without effect": (1, lambda s: s.faults.add(ignored_cancel()), {}),
    "DELETE 500s": (1, lambda s: s.faults.add(html_500(1000, "DELETE", "/v2/orders/")), {}),
}


def run_scenario(name: str, bars: Any, root: Path) -> dict[str, Any]:
    day, inject, settings = SCENARIOS[name]
    exchange = SimulatedExchange(cash=1_000_000.0, market_open=False, crypto_fee_bps=25)
    exchange.load_bars(bars)
    folder = root / "".join(c if c.isalnum() else "_" for c in name)
    with AlpacaTestServer(exchange) as server:
        os.environ["ALPACA_BASE_URL"] = server.url
        run = lifecycle_rehearsal(folder, server, budget=settings.get("budget", 1.0),
                                  settle=settings.get("settle", 1.5), backoff=0.05)
        seconds = []
        for i, session in enumerate(DAYS):
            if i == day + 1:
                deadline = time.monotonic() + 10
                while "late" in name and not exchange.orders and time.monotonic() < deadline:
                    time.sleep(0.05)  # the held POST reaches the exchange before the next session
                server.faults.clear()  # the fault is over when the next session comes
            started = time.perf_counter()
            run.cycle(session, (lambda: inject(server)) if i == day else None, "--log-level", "ERROR")
            seconds.append(round(time.perf_counter() - started, 2))
        events = run.events()
        return {"scenario": name, "codes": run.codes, "health": [h.get("status") for h in run.health],
                "unknown": [h.get("unknown_orders", 0) for h in run.health], "seconds": seconds,
                "orders": sorted(f"{s} {side} {kind} {qty}" for (s, side, kind, qty) in run.decisions().elements()),
                "unprotected": sum(len(u) for u in run.unprotected_after),
                "doubled": len(doubled_terminal_states(events)),
                "rejected": int((events.status == "rejected").sum())}


def time_failing_cancel(budget: float, root: Path) -> float:
    """Seconds one cancel takes when every DELETE answers an HTML 500."""
    with AlpacaTestServer(SimulatedExchange()) as server:
        broker = AlpacaBroker(AlpacaParams(base_url=server.url, retry_budget=budget))
        broker.configure(mode="paper", state_dir=str(root / f"cancel-{budget:g}"))
        broker.submit(OrderRequest("in", "AAPL", "buy", 10))
        broker.submit(OrderRequest("stop", "AAPL", "sell", 10, order_type="stop", stop_price=90))
        server.faults.add(html_500(10_000, "DELETE", "/v2/orders/"))
        started = time.perf_counter()
        try:
            broker.cancel("stop")
        except Exception as exc:  # OrderUnconfirmed: the exit waits, the next cycle tries again
            assert "not confirmed" in str(exc)
        return round(time.perf_counter() - started, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cancel-budgets", default="5,60", help="retry budgets (s) to time a failing cancel with")
    args = parser.parse_args()
    logger.remove()
    logger.add(sys.stderr, level="ERROR")
    os.environ.update(ALPACA_API_KEY="PKBENCH", ALPACA_SECRET_KEY="bench")
    for var in ("TRADING_MODE", "LIVE_TRADING_ENABLED"):
        os.environ.pop(var, None)
    bars = read_bars_file(str(sample_bars_path()))
    results: dict[str, Any] = {"scenarios": [], "failing_cancel_seconds": {}}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.chdir(root)
        baseline: list[str] = []
        for name in SCENARIOS:
            row = run_scenario(name, bars, root)
            baseline = baseline or row["orders"]
            row["same_orders"] = row["orders"] == baseline
            results["scenarios"].append(row)
            print(f"{name:34s} same orders {row['same_orders']!s:5s} unprotected {row['unprotected']} "
                  f"doubled {row['doubled']} rejected {row['rejected']} health {'/'.join(row['health'])} "
                  f"unknown {row['unknown']} seconds {row['seconds']}", flush=True)
        for budget in (float(b) for b in args.cancel_budgets.split(",")):
            results["failing_cancel_seconds"][f"{budget:g}"] = time_failing_cancel(budget, root)
            print(f"one cancel, DELETE 500 forever, retry_budget {budget:g} s: "
                  f"{results['failing_cancel_seconds'][f'{budget:g}']} s", flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
