"""A bug in a component fails its cycle closed; the loop survives and says so.

A third party's risk rule whose ``vet()`` raises used to end `hybrid run` with exit 70. Now the
cycle fails closed (nothing sent, the protective stops stay at the broker), one ERROR line
names the rule and its plugin, the heartbeat says ``degraded`` and, after
``schedule.max_failed_cycles`` failed cycles in a row, ``error`` (so `hybrid health` fails).
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
from loguru import logger

from hybrid_core import hookimpl
from hybrid_core.contracts import CONTRACT_VERSION, RiskRule
from hybrid_core.live.runner import RunOptions, RunSession, StopFlag, run_loop
from hybrid_core.plugins import build_plugin_host
from hybrid_core.profile import load_profile

ENV = {**os.environ, "TRADING_MODE": "PAPER", "HYBRID_DISABLE_PLUGINS": "alpaca"}


class BuggyRule(RiskRule):
    """A third party's rule with a bug that shows once it is armed."""

    name = "buggy_rule"
    armed = False

    def vet(self, order, context):  # type: ignore[no-untyped-def]
        if BuggyRule.armed:
            return f"{1 / 0}"
        return None


class BuggyPlugin:
    HYBRID_CONTRACT = CONTRACT_VERSION

    @hookimpl
    def hybrid_register_risk_rules(self, register):  # type: ignore[no-untyped-def]
        register(BuggyRule)


def _session(path: Path) -> RunSession:
    profile = load_profile(path)
    host = build_plugin_host(load_entry_points=True, extra_plugins=[("buggy", BuggyPlugin())])
    return RunSession(profile, host.registry, RunOptions())


def _health(path: Path) -> int:
    return subprocess.run([sys.executable, "-m", "hybrid_core.cli", "health", "--file", str(path)],
                          env=ENV, capture_output=True, text=True).returncode


def test_a_failing_vet_fails_the_cycle_closed_and_the_loop_keeps_running(demo_profile, tmp_path, monkeypatch):
    monkeypatch.setenv("HYBRID_DISABLE_PLUGINS", "alpaca")
    risk = [{"name": "stop_loss", "params": {"pct": 0.05}}, {"name": "time_stop", "params": {"bars": 5}},
            {"name": "kill_switch", "params": {"path": str(tmp_path / "KILL_SWITCH")}}, {"name": "buggy_rule"}]
    path = demo_profile(schedule={"interval_seconds": 0.01, "max_failed_cycles": 2}, risk=risk)
    with _session(path) as session:  # a healthy week: buy on Friday, fill and protect on Monday
        session.run_cycle(pd.Timestamp("2021-04-09"))
        session.run_cycle(pd.Timestamp("2021-04-12"))
        stops = {o.client_order_id for o in session.state.orders() if o.order_type == "stop" and o.is_open}
        known = {o.client_order_id for o in session.state.orders()}
    assert len(stops) == 4

    lines: list[str] = []
    sink = logger.add(lines.append, level="ERROR", format="{message}")
    BuggyRule.armed = True
    beats = []
    try:
        with _session(path) as session:
            run = session.cycle.run
            # the loop's cycles decide at the Friday rebalance close (buys reach vet())
            monkeypatch.setattr(session.cycle, "run", functools.partial(run, pd.Timestamp("2021-04-16")))
            original = session.heartbeat.write
            monkeypatch.setattr(session.heartbeat, "write",
                                lambda **kw: beats.append(kw) or original(**kw))  # type: ignore[func-returns-value]
            cycles = run_loop(session, StopFlag(), max_cycles=3)
            orders = session.state.orders()
            health_file = session.heartbeat.path
    finally:
        BuggyRule.armed = False
        logger.remove(sink)
    assert cycles == 3  # the loop survived every failed cycle
    failed = [b for b in beats if b.get("failed_cycles")]
    assert [b["status"] for b in failed] == ["degraded", "error", "error"]
    assert "risk rule 'buggy_rule'" in failed[0]["reasons"][0] and "plugin buggy" in failed[0]["reasons"][0]
    assert "ZeroDivisionError" in failed[0]["reasons"][0]
    errors = [line for line in lines if "Cycle failed closed" in line]
    assert len(errors) == 3 and "buggy_rule" in errors[0]
    # closed: no new order of any kind, and the stops of the held positions are still at the broker
    assert {o.client_order_id for o in orders} == known
    assert stops <= {o.client_order_id for o in orders if o.is_open}
    # after max_failed_cycles failures in a row `hybrid health` fails; a good cycle clears it
    assert json.loads(health_file.read_text())["status"] == "stopped"
    with _session(path) as session:
        result = session.run_cycle(pd.Timestamp("2021-04-16"))
    assert result.health == "ok" and result.orders
    assert json.loads(health_file.read_text())["failed_cycles"] == 0 and _health(health_file) == 0


def test_two_failures_in_a_row_make_health_fail(tmp_path):
    from hybrid_core.ops.heartbeat import HeartbeatFile

    beat = HeartbeatFile(tmp_path / "h.health")
    beat.write(cycle=1, mode="paper", status="degraded", reasons=["risk rule failed"], failed_cycles=1)
    assert _health(beat.path) == 0
    beat.write(cycle=2, mode="paper", status="error", reasons=["risk rule failed"], failed_cycles=2)
    assert _health(beat.path) == 1


def test_entries_halted_by_the_data_quality_gate_make_the_heartbeat_degraded(demo_profile, monkeypatch):
    monkeypatch.setenv("HYBRID_DISABLE_PLUGINS", "alpaca")
    path = demo_profile()
    with _session(path) as session:
        result = session.run_cycle()  # wall clock: the bundled 2021 bars are stale today
        beat = json.loads(session.heartbeat.path.read_text())
    assert result.status == "ok" and result.health == "degraded"
    assert beat["status"] == "degraded" and beat["reasons"][0].startswith("new entries halted: stale")
    assert _health(session.heartbeat.path) == 0  # degraded is healthy, with its reason shown
