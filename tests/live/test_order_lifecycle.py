"""The order state machine: every transition walked, one audit row per move, one terminal state.

The machine (hybrid_core.live.lifecycle) is shared by every broker; the last tests run the paper
simulator and a broker that never confirms, through the real cycle.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pandas as pd
import pytest
from loguru import logger

from hybrid_core import hookimpl
from hybrid_core.builtin.paper_broker import PaperBroker
from hybrid_core.contracts import CONTRACT_VERSION, OrderStatus
from hybrid_core.errors import OrderUnconfirmed
from hybrid_core.live.events import AuditTrail
from hybrid_core.live.lifecycle import STATES, TERMINAL, OrderStates, allowed
from hybrid_core.live.runner import RunOptions, RunSession
from hybrid_core.ops.audit import TradeAuditLog
from hybrid_core.ops.state import StateStore, StoredOrder
from hybrid_core.plugins import build_plugin_host
from hybrid_core.profile import load_profile

OPEN = ("intended", "submitted", "accepted", "partially_filled")
ALLOWED = {
    # written out by hand, not derived from the module: the machine of issue 12
    "intended": {"submitted", "accepted", "partially_filled", "filled", "canceled", "rejected", "expired", "unknown"},
    "submitted": {"accepted", "partially_filled", "filled", "canceled", "rejected", "expired", "unknown"},
    "accepted": {"partially_filled", "filled", "canceled", "rejected", "expired", "unknown"},
    "partially_filled": {"filled", "canceled", "rejected", "expired", "unknown"},
    "unknown": {"submitted", "accepted", "partially_filled", "filled", "canceled", "rejected", "expired"},
    "filled": set(), "canceled": set(), "rejected": set(), "expired": set(),
}


@pytest.fixture
def machine(tmp_path: Path):
    state = StateStore(tmp_path / "state.sqlite")
    audit = TradeAuditLog(tmp_path / "events.csv")
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), level="INFO", format="{level} {message}")
    yield OrderStates(state, AuditTrail(audit)), state, tmp_path / "events.csv", lines
    logger.remove(sink)
    state.close()


def stored(cid: str, status: str) -> StoredOrder:
    return StoredOrder(client_order_id=cid, symbol="AAPL", side="buy", qty=10, order_type="market",
                       status=status, strategy="s", reason="entry", decision_date="2021-03-25", ref_price=100.0)


def test_the_machine_allows_exactly_the_moves_of_the_issue():
    assert set(STATES) == set(ALLOWED) and TERMINAL == {"filled", "canceled", "rejected", "expired"}
    for current, new in itertools.product(STATES, STATES):
        assert allowed(current, new) == (new in ALLOWED[current]), (current, new)


def test_every_transition_is_walked_once_with_one_audit_row(machine):
    states, store, events_file, _ = machine
    edges = [(a, b) for a, b in itertools.product(STATES, STATES) if b in ALLOWED[a]]
    assert len(edges) == 33
    for i, (current, new) in enumerate(edges):
        order = stored(f"edge-{i}", current)
        store.record_order(order)
        moved = states.move(order, new, logger)
        assert moved.status == new and store.get_order(order.client_order_id).status == new
    events = pd.read_csv(events_file)
    assert len(events) == len(edges)  # one row per move, nothing else
    assert list(events.status) == [b for _a, b in edges]


def test_a_forbidden_move_changes_nothing_and_a_second_terminal_state_is_an_error(machine):
    states, store, events_file, lines = machine
    for i, (current, new) in enumerate((a, b) for a, b in itertools.product(STATES, STATES)
                                       if b not in ALLOWED[a]):
        order = stored(f"no-{i}", current)
        store.record_order(order)
        states.move(order, new, logger)
        assert store.get_order(order.client_order_id).status == current
    assert not events_file.exists() or len(pd.read_csv(events_file)) == 0
    assert any("is already canceled; the broker now says filled: kept canceled" in line for line in lines)


def test_one_order_through_its_life_is_audited_in_order_with_the_brokers_times(machine):
    states, store, events_file, _ = machine
    order = stored("life-1", "intended")
    store.record_order(order)
    answer = OrderStatus("life-1", "b-1", "AAPL", "buy", 10, "new", submitted_at="2021-03-25T20:00:01Z")
    order = states.advance(order, answer, logger)  # intended -> submitted -> accepted
    order = states.move(order, "unknown", logger, why="cancel not confirmed: timeout")
    order = states.advance(order, OrderStatus("life-1", "b-1", "AAPL", "buy", 10, "partially_filled"), logger)
    order = states.move(order, "filled", logger)
    states.move(order, "canceled", logger)  # refused: already filled
    states.advance(order, answer, logger)  # a stale answer: nothing moves back
    events = pd.read_csv(events_file)
    assert list(events.status) == ["submitted", "accepted", "unknown", "partially_filled", "filled"]
    assert events.timestamp.iloc[0] == "2021-03-25T20:00:01.000000Z"  # the broker's receipt, UTC
    assert events.order_id.iloc[1] == "b-1"
    assert store.get_order("life-1").status == "filled"


def valid_paths(events: pd.DataFrame) -> None:
    """Each order's audited states follow the machine, and end in at most one terminal state."""
    for cid, rows in events[~events.status.isin(["refused", "dry_run"])].groupby("client_order_id"):
        seen = ["intended", *rows.status]
        for a, b in itertools.pairwise(seen):
            assert b in ALLOWED[a] or (a, b) == ("unknown", "unknown"), (cid, seen)
        assert sum(s in TERMINAL for s in seen) <= 1, (cid, seen)


def _session(path: Path, broker: str = "paper", plugin: object | None = None) -> RunSession:
    profile = load_profile(path)
    profile.broker.name = broker
    profile.broker.params = {"account_file": str(path.parent / "state" / "paper.sqlite")}
    extra = [("lifecycle-test", plugin)] if plugin is not None else []
    return RunSession(profile, build_plugin_host(extra_plugins=extra).registry, RunOptions())


def test_the_paper_broker_follows_the_same_machine(demo_profile, monkeypatch):
    monkeypatch.setenv("HYBRID_DISABLE_PLUGINS", "alpaca")
    path = demo_profile()
    with _session(path) as session:
        for day in pd.bdate_range("2021-03-12", "2021-03-23"):
            result = session.run_cycle(day)
            assert result.health == "ok" and result.unknown == []
    events = pd.read_csv(path.parent / "trades.csv")
    assert {"submitted", "accepted", "filled", "canceled"} <= set(events.status)
    assert "unknown" not in set(events.status) and "rejected" not in set(events.status)
    valid_paths(events)


class NeverConfirms(PaperBroker):
    """A paper broker whose entries time out: the order may or may not exist, it never says."""

    name = "never_confirms"

    def submit(self, order):  # type: ignore[no-untyped-def]
        if order.order_type == "market" and order.side == "buy":
            raise OrderUnconfirmed(f"{order.client_order_id}: timeout (the broker may have it)")
        return super().submit(order)


class NeverConfirmsPlugin:
    HYBRID_CONTRACT = CONTRACT_VERSION

    @hookimpl
    def hybrid_register_brokers(self, register):  # type: ignore[no-untyped-def]
        register(NeverConfirms)


def test_an_unconfirmed_entry_is_unknown_counted_and_never_rejected(demo_profile, monkeypatch):
    monkeypatch.setenv("HYBRID_DISABLE_PLUGINS", "alpaca")
    path = demo_profile(schedule={"settle_seconds": 0})
    with _session(path, "never_confirms", NeverConfirmsPlugin()) as session:
        result = session.run_cycle(pd.Timestamp("2021-04-16"))
        assert result.health == "degraded" and len(result.unknown) == 4  # the Friday rebalance's four buys
        assert result.notes[-1].startswith("4 order(s) unknown at the broker")
    with _session(path) as session:  # the next cycle: the broker answers it never had them
        later = session.run_cycle(pd.Timestamp("2021-04-19"))
        assert later.unknown == [] and later.health == "ok"
        orders = [o for o in session.state.orders() if o.order_type == "market"]
    assert {o.status for o in orders} == {"expired"}
    events = pd.read_csv(path.parent / "trades.csv")
    assert "rejected" not in set(events.status)
    valid_paths(events)


def test_an_open_order_state_reads_the_same_in_an_older_state_database(tmp_path: Path):
    import sqlite3

    store = StateStore(tmp_path / "old.sqlite")
    store.close()
    with sqlite3.connect(tmp_path / "old.sqlite") as conn:  # rows as an older run wrote them
        for cid, status in (("a", "submitting"), ("b", "pending"), ("c", "new"), ("d", "canceled")):
            conn.execute("INSERT INTO orders (client_order_id, symbol, side, qty, order_type, status, created_at, "
                         "updated_at) VALUES (?, 'AAPL', 'buy', 1, 'market', ?, '', '')", (cid, status))
    store = StateStore(tmp_path / "old.sqlite")
    assert {o.client_order_id: o.status for o in store.orders()} == {
        "a": "intended", "b": "accepted", "c": "accepted", "d": "canceled"}
    assert [o.client_order_id for o in store.orders(open_only=True)] == ["a", "b", "c"]
    store.close()


@pytest.mark.parametrize("status", OPEN)
def test_open_states_are_open(status):
    assert stored("x", status).is_open and not stored("x", "filled").is_open


def test_a_run_ended_by_an_internal_error_says_error_and_fails_the_health_check(demo_profile, monkeypatch):
    import json

    from hybrid_core.ops.heartbeat import check_health

    monkeypatch.setenv("HYBRID_DISABLE_PLUGINS", "alpaca")
    path = demo_profile()
    with pytest.raises(RuntimeError), _session(path) as session:
        session.preflight()
        raise RuntimeError("a bug in the loop")
    beat = json.loads((path.parent / "h.health").read_text())
    assert beat["status"] == "error" and beat["last_error"] == "RuntimeError: a bug in the loop"
    assert not check_health(path.parent / "h.health").ok
