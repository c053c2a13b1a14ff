"""Notifications of real cycles reach a local HTTP receiver through Apprise's JSON webhook, event by event;
a hanging or failing receiver never slows a cycle beyond its bound and is logged once per failure burst."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from loguru import logger
from notify_receiver import NotifyReceiver
from prometheus_client.parser import text_string_to_metric_families

from hybrid_core.commands.run import run_observers
from hybrid_core.errors import HybridError
from hybrid_core.live.runner import RunOptions, RunSession
from hybrid_core.ops.audit import read_trade_log
from hybrid_core.ops.notify_channel import EXIT_GRACE_S, QUEUE_SIZE, Message, NotifyChannel
from hybrid_core.ops.notify_targets import NotifySpec, resolve_targets
from hybrid_core.ops.report import build_report
from hybrid_core.plugins import build_plugin_host
from hybrid_core.profile import load_profile

FRIDAY, MONDAY, WEDNESDAY = pd.Timestamp("2021-04-16"), pd.Timestamp("2021-04-19"), pd.Timestamp("2021-04-21")


@pytest.fixture(autouse=True)
def _paper(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADING_MODE", "PAPER")
    monkeypatch.setenv("HYBRID_DISABLE_PLUGINS", "alpaca")


@pytest.fixture
def receivers() -> Iterator[dict[str, NotifyReceiver]]:
    made: dict[str, NotifyReceiver] = {}
    yield made
    for receiver in made.values():
        receiver.close()


@pytest.fixture
def log_lines() -> Iterator[list[str]]:
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(m.record["message"]), level="INFO")
    yield lines
    logger.remove(sink)


def session_with(profile_path: Path, monkeypatch: pytest.MonkeyPatch, receivers: dict[str, NotifyReceiver],
                 targets: dict[str, dict], *, metrics: bool = True) -> RunSession:
    """A run session whose notify targets post to ``receivers`` (one per name, made on first use)."""
    notify = []
    for name, spec in targets.items():
        receiver = receivers.setdefault(name, NotifyReceiver(spec.pop("mode", "ok")))
        monkeypatch.setenv(f"HYBRID_NOTIFY_{name.upper()}", receiver.url)
        notify.append(NotifySpec(url=f"$HYBRID_NOTIFY_{name.upper()}", **spec))
    profile = load_profile(profile_path)
    profile.notify = notify
    observer, _metrics = run_observers(resolve_targets(profile.notify), metrics=metrics)
    return RunSession(profile, build_plugin_host().registry, RunOptions(), observer=observer)


def exposition(session: RunSession) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    metrics = next(o for o in session.observer.observers if hasattr(o, "exposition"))  # type: ignore[attr-defined]
    samples = {}
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        for s in family.samples:
            labels = tuple(sorted((k, v) for k, v in s.labels.items() if k not in {"profile", "mode"}))
            samples[(s.name, labels)] = s.value
    return samples


def test_start_fills_and_stop_arrive_as_they_happen(demo_profile, monkeypatch, receivers) -> None:
    path = demo_profile()
    with session_with(path, monkeypatch, receivers, {"ops": {}}) as session:
        session.run_cycle(FRIDAY)  # four buys go to the paper broker: nothing worth a message
        ops = receivers["ops"]
        assert ops.wait(lambda r: len(r.messages) == 1)
        assert ops.bodies() == ["hybrid demo (paper): start\nSTART broker paper, strategies equity_reversal, "
                                "crypto_adx"]
        session.run_cycle(MONDAY)  # they fill at Monday's open
        assert ops.wait(lambda r: len(r.messages) == 2)
        title, *lines = ops.bodies()[1].splitlines()
        assert title == "hybrid demo (paper) cycle 2: 4 fills"
        fills = read_trade_log(path.parent / "trades.csv").query("status == 'filled'")
        expected = [f"FILL buy {row.qty:g} {row.symbol} @ {row.price:,.2f} (entry, equity_reversal)"
                    for row in fills.itertuples()]
        assert sorted(lines) == sorted(expected) and len(lines) == 4
        samples = exposition(session)
        assert samples[("hybrid_fills_total", (("side", "buy"),))] == 4
        assert samples[("hybrid_orders_total", (("outcome", "submitted"), ("side", "buy")))] >= 4
        assert samples[("hybrid_open_positions", ())] == 4
        session.run_cycle(WEDNESDAY)  # three of them hit their stops
        assert samples != exposition(session)
        realised = exposition(session)[("hybrid_realised_pnl", ())]
        assert realised == pytest.approx(build_report(path.parent / "trades.csv").realised_pnl) and realised < 0
    assert ops.wait(lambda r: len(r.messages) == 4)
    assert ops.bodies()[2].splitlines()[0] == "hybrid demo (paper) cycle 3: 3 fills"
    assert all("(stop_loss, equity_reversal)" in line for line in ops.bodies()[2].splitlines()[1:])
    assert ops.bodies()[3] == "hybrid demo (paper): stop\nSTOP (finished) after 3 cycle(s)"


@pytest.mark.parametrize(("risk", "rule", "guard_line"), [
    ({"name": "max_order_value", "params": {"value": 20000}}, "max_order_value", "REFUSED buy"),
    (None, "kill_switch", "GUARD buy"),
])
def test_refusals_and_guards(demo_profile, monkeypatch, receivers, tmp_path, risk, rule, guard_line) -> None:
    profile = demo_profile()
    if risk is not None:
        text = profile.read_text().replace("value: 500000", "value: 20000")
        assert text != profile.read_text()
        profile.write_text(text)
    else:
        (tmp_path / "KILL_SWITCH").write_text("broker incident 42\n")
    targets = {"guards": {"events": ["guard"]}, "refusals": {"events": ["refused"]}}
    with session_with(profile, monkeypatch, receivers, targets) as session:
        result = session.run_cycle(FRIDAY)
        samples = exposition(session)
    assert len(result.refused) == 4
    refusals = receivers["refusals"]
    assert refusals.wait(lambda r: len(r.messages) == 1)
    title, *lines = refusals.bodies()[0].splitlines()
    assert title == "hybrid demo (paper) cycle 1: 4 refused"
    assert all(line.startswith(("REFUSED buy ", "GUARD buy ")) and f": {rule}: " in line for line in lines)
    assert samples[("hybrid_refusals_total", (("rule", rule),))] == 4
    guards = receivers["guards"]
    if rule == "kill_switch":  # a guard: its own event, with the reason the operator wrote in the file
        assert guards.wait(lambda r: len(r.messages) == 1)
        title, *lines = guards.bodies()[0].splitlines()
        assert title == "hybrid demo (paper) cycle 1: 4 guard"
        assert len(lines) == 4 and all(line.startswith(guard_line) and "(broker incident 42)" in line for line in lines)
        assert samples[("hybrid_guard_tripped", (("guard", "kill_switch"),))] == 1
    else:
        assert samples[("hybrid_guard_tripped", (("guard", "kill_switch"),))] == 0
        assert guards.wait(lambda r: r.requests > 0, timeout=1) is False


def test_stale_data_and_a_failed_cycle(demo_profile, monkeypatch, receivers) -> None:
    with session_with(demo_profile(), monkeypatch, receivers, {"ops": {"events": ["stale", "error"]}}) as session:
        session.run_cycle()  # today's cycle: the bundled bars end in 2021
        with pytest.raises(HybridError):
            session.run_cycle(pd.Timestamp("2015-01-02"))
        samples = exposition(session)
    ops = receivers["ops"]
    assert ops.wait(lambda r: len(r.messages) == 2)
    stale, failed = ops.bodies()
    assert stale.startswith("hybrid demo (paper) cycle 1: 1 stale data\nSTALE stale equity data: 40 of 40 symbol(s)")
    assert "new entries halted" in stale
    assert failed.startswith("hybrid demo (paper) cycle 2: 1 errors\nERROR cycle 2 failed (data): no bars for "
                             "42 symbol(s) between")
    assert samples[("hybrid_data_stale_symbols", (("sleeve", "equity"),))] == 40
    assert samples[("hybrid_data_stale_symbols", (("sleeve", "crypto"),))] == 2
    assert samples[("hybrid_errors_total", (("component", "data"),))] == 1
    assert samples[("hybrid_cycles_total", (("status", "error"),))] == 1
    assert samples[("hybrid_last_cycle_success", ())] == 0


def test_a_hanging_channel_does_not_slow_cycles_nor_the_other_channel(demo_profile, monkeypatch, receivers,
                                                                       log_lines) -> None:
    targets = {"slow": {"mode": "hang", "timeout_s": 30}, "fast": {}}
    with session_with(demo_profile(), monkeypatch, receivers, targets) as session:
        slow, fast = receivers["slow"], receivers["fast"]
        session.preflight()  # the run starts: the start message goes to both channels
        assert slow.wait(lambda r: r.requests == 1)  # the start message is stuck at the slow channel
        results = [session.run_cycle(day) for day in (FRIDAY, MONDAY, WEDNESDAY)]
        # each cycle ended while the slow channel still held its first message: nothing waited for it
        assert slow.requests == 1 and not slow.release.is_set()
        assert all(r.duration_s < 30 for r in results), [r.duration_s for r in results]
        assert fast.wait(lambda r: len(r.messages) == 3)  # start + two cycles of fills
        slow.mode = "ok"
        slow.release.set()
    assert fast.wait(lambda r: len(r.messages) == 4) and slow.wait(lambda r: len(r.messages) == 4)
    assert not [line for line in log_lines if "failed" in line and "notify" in line]


def test_a_failing_channel_is_logged_once_per_burst(demo_profile, monkeypatch, receivers, log_lines) -> None:
    with session_with(demo_profile(), monkeypatch, receivers,
                      {"down": {"mode": "fail", "rate_limit_s": 0}}) as session:
        down = receivers["down"]
        for _ in range(3):
            session.run_cycle()  # stale data every time: one message per cycle
        assert down.wait(lambda r: r.requests == 4)  # start + 3 cycles, all answered 500
        failed = ("hybrid_notifications_total", (("outcome", "failed"), ("target", "notify[0]")))
        deadline = time.monotonic() + 30
        while exposition(session).get(failed) != 4 and time.monotonic() < deadline:
            time.sleep(0.01)  # the worker counts the fourth failure once Apprise has read the answer
        samples = exposition(session)
        down.mode = "ok"
        session.run_cycle()
        assert down.wait(lambda r: len(r.messages) == 1)
    failures = [line for line in log_lines if line.startswith("Notification to notify[0]")]
    assert failures == [f"Notification to notify[0] $HYBRID_NOTIFY_DOWN (json://127.0.0.1:{down.port}/hook) failed: "
                        "Failed to send JSON POST notification: Internal server error., error=500.; further "
                        "failures are not logged until a send succeeds"]
    assert [line for line in log_lines if "work again" in line] == [
        f"Notifications to notify[0] $HYBRID_NOTIFY_DOWN (json://127.0.0.1:{down.port}/hook) work again "
        "(4 send(s) failed before)"]
    assert samples[failed] == 4
    assert samples[("hybrid_errors_total", (("component", "notify"),))] == 4


def channel_to(receiver: NotifyReceiver, timeout_s: float) -> NotifyChannel:
    (target,) = resolve_targets([NotifySpec(url="$R", timeout_s=timeout_s)], {"R": receiver.url})
    return NotifyChannel(target)


def test_the_queue_is_bounded_and_drops_are_said_once(receivers, log_lines) -> None:
    receiver = receivers["hang"] = NotifyReceiver("hang")
    channel = channel_to(receiver, timeout_s=30)
    assert channel.offer(Message("first", "in flight"))
    assert receiver.wait(lambda r: r.requests == 1)
    accepted = [channel.offer(Message(f"m{i}", "queued")) for i in range(QUEUE_SIZE + 5)]
    assert accepted.count(True) == QUEUE_SIZE and accepted[-5:] == [False] * 5 and channel.dropped == 5
    assert len([line for line in log_lines if "are not keeping up" in line]) == 1
    receiver.mode = "ok"
    receiver.release.set()
    assert channel.close() == 0
    assert len(receiver.messages) == QUEUE_SIZE + 1 and channel.sent == QUEUE_SIZE + 1


def test_exit_waits_for_a_hanging_channel_at_most_its_timeout(receivers, log_lines) -> None:
    receiver = receivers["hang"] = NotifyReceiver("hang")
    channel = channel_to(receiver, timeout_s=1)
    for i in range(3):
        channel.offer(Message(f"m{i}", "never answered"))
    assert receiver.wait(lambda r: r.requests == 1)
    started = time.monotonic()
    unsent = channel.close()
    waited = time.monotonic() - started
    assert 1 <= unsent <= 3 and waited < 1 + EXIT_GRACE_S + 2.0, waited
    assert any("not sent at exit" in line for line in log_lines)
