"""The run loop stops cleanly on SIGTERM, and a cycle that crashed around an order never doubles it."""

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

from hybrid_core import hookimpl
from hybrid_core.builtin.paper_broker import PaperBroker
from hybrid_core.contracts import CONTRACT_VERSION
from hybrid_core.live.runner import RunOptions, RunSession
from hybrid_core.ops.state import StateStore
from hybrid_core.plugins import build_plugin_host
from hybrid_core.profile import load_profile
from hybrid_core.testing import sample_bars_path

ENV = {**os.environ, "TRADING_MODE": "PAPER", "HYBRID_DISABLE_PLUGINS": "alpaca"}
FRIDAY = pd.Timestamp("2021-04-16")


def test_loop_runs_on_its_schedule_and_stops_cleanly_on_sigterm(demo_profile, tmp_path):
    profile = demo_profile(schedule={"interval_seconds": 0.5})
    health = tmp_path / "h.health"
    proc = subprocess.Popen([sys.executable, "-m", "hybrid_core.cli", "run", str(profile), "--dry-run",
                             "--log-level", "WARNING"], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        beat = json.loads(health.read_text()) if health.exists() else {}
        if beat.get("cycle", 0) >= 2:
            break
        time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail(f"no second cycle within 60 s: {proc.communicate()}")
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "stopped after" in out
    assert "SIGTERM received" in err
    beat = json.loads(health.read_text())
    assert beat["status"] == "stopped" and beat["mode"] == "paper"
    # the heartbeat the loop leaves is what `hybrid health` reads: a stopped run is not healthy
    probe = subprocess.run([sys.executable, "-m", "hybrid_core.cli", "health", "--file", str(health)],
                           env=ENV, capture_output=True, text=True)
    assert probe.returncode in (0, 1) and probe.stdout.strip()


class CrashAfterSend(PaperBroker):
    """A paper broker whose process 'dies' right after the broker accepted an order."""

    name = "crash_after_send"

    def submit(self, order):  # type: ignore[no-untyped-def]
        status = super().submit(order)
        if order.order_type == "market":
            raise KeyboardInterrupt("simulated crash after the order reached the broker")
        return status


class CrashBeforeSend(PaperBroker):
    """A paper broker whose process 'dies' after the order was recorded but before it was sent."""

    name = "crash_before_send"

    def submit(self, order):  # type: ignore[no-untyped-def]
        if order.order_type == "market":
            raise KeyboardInterrupt("simulated crash before the order reached the broker")
        return super().submit(order)


class CrashyPlugin:
    HYBRID_CONTRACT = CONTRACT_VERSION

    @hookimpl
    def hybrid_register_brokers(self, register):  # type: ignore[no-untyped-def]
        register(CrashAfterSend)
        register(CrashBeforeSend)


def _session(profile_path: Path, broker: str) -> RunSession:
    profile = load_profile(profile_path)
    profile.broker.name = broker
    profile.broker.params = {"account_file": str(profile_path.parent / "state" / "paper.sqlite")}
    host = build_plugin_host(load_entry_points=True, extra_plugins=[("crashy", CrashyPlugin())])
    return RunSession(profile, host.registry, RunOptions())


@pytest.mark.parametrize("crashing_broker", ["crash_after_send", "crash_before_send"])
def test_restart_after_a_crash_around_an_order_leaves_exactly_one_order(demo_profile, crashing_broker, monkeypatch):
    monkeypatch.setenv("HYBRID_DISABLE_PLUGINS", "alpaca")
    path = demo_profile()
    with _session(path, crashing_broker) as session, pytest.raises(KeyboardInterrupt):
        session.run_cycle(FRIDAY)
    with _session(path, "paper") as session:
        result = session.run_cycle(FRIDAY)
        pending = session.components.broker.book.pending
        orders = session.state.orders()
    # the Friday rebalance buys 4 names (10% of 40); every one is at the broker exactly once
    market = [o for o in orders if o.order_type == "market"]
    assert len(market) == 4
    assert all(o.status == "accepted" for o in market), [(o.symbol, o.status) for o in market]
    assert sorted(pending) == sorted(o.symbol for o in market)
    assert all(len(v) == 1 for v in pending.values())
    assert result.orders or crashing_broker == "crash_after_send"
    # a third run of the same close sends nothing new
    with _session(path, "paper") as session:
        again = session.run_cycle(FRIDAY)
        assert again.orders == []
        assert all(len(v) == 1 for v in session.components.broker.book.pending.values())


def test_the_next_session_fills_at_the_open_and_places_stops(demo_profile):
    path = demo_profile()
    with _session(path, "paper") as session:
        session.run_cycle(FRIDAY)
    with _session(path, "paper") as session:
        result = session.run_cycle(pd.Timestamp("2021-04-19"))
        positions = session.state.positions()
    bars = pd.read_parquet(sample_bars_path())
    monday = bars[bars["date"] == pd.Timestamp("2021-04-19")].set_index("symbol")
    adjusted_open = monday["open"] * monday["adj_close"] / monday["close"]
    fills = [f for f in result.fills if f.side == "buy"]
    assert len(fills) == 4
    for fill in fills:
        assert fill.filled_avg_price == pytest.approx(adjusted_open[fill.symbol], rel=1e-12)
        stored = positions[fill.symbol]
        assert stored.entry_date == "2021-04-19"
        assert stored.stop_price == pytest.approx(fill.filled_avg_price * 0.95, rel=1e-12)
        assert stored.stop_client_order_id
    state = StateStore(path.parent / "state" / "state.sqlite")
    stops = [o for o in state.orders() if o.order_type == "stop"]
    assert len(stops) == 4 and all(o.status == "accepted" for o in stops)


class RefusesExits(PaperBroker):
    """A paper broker that refuses every market sell (as a broker may, e.g. a halted symbol)."""

    name = "refuses_exits"

    def submit(self, order):  # type: ignore[no-untyped-def]
        from hybrid_core.errors import OrderRejected

        if order.order_type == "market" and order.side == "sell":
            raise OrderRejected(f"{order.symbol}: trading halted")
        return super().submit(order)


class RefusingPlugin:
    HYBRID_CONTRACT = CONTRACT_VERSION

    @hookimpl
    def hybrid_register_brokers(self, register):  # type: ignore[no-untyped-def]
        register(RefusesExits)


def test_a_refused_exit_leaves_the_position_protected_by_a_new_stop(demo_profile, monkeypatch):
    monkeypatch.setenv("HYBRID_DISABLE_PLUGINS", "alpaca")
    path = demo_profile()

    def session_with(broker: str) -> RunSession:
        profile = load_profile(path)
        profile.broker.name = broker
        profile.broker.params = {"account_file": str(path.parent / "state" / "paper.sqlite")}
        host = build_plugin_host(extra_plugins=[("refusing", RefusingPlugin())])
        return RunSession(profile, host.registry, RunOptions())

    days = pd.bdate_range("2021-03-12", "2021-03-23")  # a Friday's entries, the next Friday's rebalance exits
    with session_with("refuses_exits") as session:
        for day in days:
            session.run_cycle(day)
        positions = session.state.positions()
        orders = session.state.orders()
    refused = [o for o in orders if o.side == "sell" and o.order_type == "market" and o.status == "rejected"]
    if not refused:
        pytest.fail("the window produced no exit to refuse; pick days with an exit")
    for order in refused:
        if order.symbol not in positions:
            continue  # a stop filled meanwhile
        stored = positions[order.symbol]
        assert stored.stop_client_order_id, f"{order.symbol} left without a stop after its exit was refused"
        stop = next(o for o in orders if o.client_order_id == stored.stop_client_order_id)
        assert stop.is_open and stop.order_type == "stop"
        first = [o for o in orders if o.symbol == order.symbol and o.order_type == "stop"]
        assert len({o.client_order_id for o in first}) >= 2  # a new id, never the cancelled one reused


def test_an_unconfirmed_stop_for_a_position_no_longer_held_is_abandoned_not_sent(demo_profile):
    from hybrid_core.ops.state import StoredOrder

    path = demo_profile()
    with _session(path, "paper") as session:
        session.state.record_order(StoredOrder(
            client_order_id="hy-orphan-stop", symbol="AAPL", side="sell", qty=100, order_type="stop",
            status="submitting", strategy="equity_reversal", reason="stop_loss", decision_date="2021-04-15",
            stop_price=120.0, ref_price=126.0))
        session.run_cycle(FRIDAY)
        stored = session.state.get_order("hy-orphan-stop")
        at_broker = session.components.broker.get_order("hy-orphan-stop")
    assert stored is not None and stored.status == "expired"
    assert at_broker is None  # never sent: a stop without its position could open a short
