"""Notification targets in the profile, and what the notifier says (no network: messages are built, not sent)."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
import yaml
from loguru import logger

from hybrid_core.contracts import OrderIntent
from hybrid_core.errors import BrokerError, ProfileError
from hybrid_core.live.cycle import CycleResult
from hybrid_core.ops.logging_setup import configure_logging
from hybrid_core.ops.notify import MAX_LINES, Notifier
from hybrid_core.ops.notify_targets import NOTIFY_EVENTS, NotifySpec, resolve_targets, target_secrets
from hybrid_core.ops.observer import RunInfo
from hybrid_core.profile import load_profile

TOKEN = "123456789:AAHsecretBotTokenValue"
TELEGRAM = f"tgram://{TOKEN}/987654"
WEBHOOK = "json://127.0.0.1:9/hook"  # never contacted: these tests only build messages


def write_profile(tmp_path: Path, notify: object) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"name": "t", "strategies": [{"name": "equity_reversal"}], "notify": notify}))
    return path


@pytest.mark.parametrize("url", [TELEGRAM, "json://127.0.0.1:8080/hook", "ntfy://my-secret-topic"])
def test_a_literal_url_in_the_profile_is_refused_like_a_key(tmp_path: Path, url: str) -> None:
    with pytest.raises(ProfileError) as caught:
        load_profile(write_profile(tmp_path, [{"url": url, "events": ["fill"]}]))
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'p.yaml'}: notify[0].url: profiles must not hold notification URLs")
    assert "$HYBRID_NOTIFY_" in message and url not in message


def test_environment_references_and_defaults(tmp_path: Path) -> None:
    profile = load_profile(write_profile(tmp_path, [{"url": "$HYBRID_NOTIFY_A"},
                                                    {"url": "${HYBRID_NOTIFY_B}", "events": ["error"]}]))
    first, second = profile.notify
    assert first.events == list(NOTIFY_EVENTS) and first.timeout_s == 10 and first.rate_limit_s == 900
    assert second.events == ["error"]


@pytest.mark.parametrize(("entry", "line"), [
    ({"url": "$A", "events": ["fills"]}, "notify[0].events: has unknown event(s) 'fills'"),
    ({"url": "$A", "events": []}, "notify[0].events: is empty"),
    ({"url": "$A", "timeout_s": 0}, "notify[0].timeout_s: must be more than 0"),
    ({"url": "$A", "channel": "x"}, "notify[0].channel: unknown key"),
])
def test_bad_targets_are_refused_with_their_path(tmp_path: Path, entry: dict, line: str) -> None:
    with pytest.raises(ProfileError, match=re.escape(line)):
        load_profile(write_profile(tmp_path, [entry]))


def test_resolution_names_the_variable_never_the_value() -> None:
    specs = [NotifySpec(url="$HYBRID_NOTIFY_MISSING"), NotifySpec(url="$HYBRID_NOTIFY_ODD")]
    with pytest.raises(ProfileError) as caught:
        resolve_targets(specs, {"HYBRID_NOTIFY_ODD": "nosuchservice://user:hunter22@example.com/x"})
    lines = caught.value.lines  # type: ignore[attr-defined]
    assert lines[0].startswith("notify[0].url: environment variable HYBRID_NOTIFY_MISSING is not set")
    assert lines[1].startswith("notify[1].url: $HYBRID_NOTIFY_ODD is not a URL Apprise can send to "
                               "(scheme 'nosuchservice'")
    assert "hunter22" not in str(caught.value)


def test_a_resolved_target_hides_its_token_and_the_logs_redact_it() -> None:
    (target,) = resolve_targets([NotifySpec(url="$HYBRID_NOTIFY_TG", timeout_s=3)], {"HYBRID_NOTIFY_TG": TELEGRAM})
    assert "AAHsecret" not in target.name and target.name.startswith("notify[0] $HYBRID_NOTIFY_TG (tgram://")
    assert TELEGRAM in target.secrets and "AAHsecretBotTokenValue" in target.secrets
    assert target.plugin.socket_read_timeout == 3 and target.plugin.socket_connect_timeout == 3
    lines: list[str] = []
    configure_logging(level="INFO", secrets=target_secrets([target]))
    sink = logger.add(lines.append, format="{message}")
    try:
        logger.info(f"posting to {TELEGRAM} with AAHsecretBotTokenValue")
    finally:
        logger.remove(sink)
    assert lines and "AAHsecret" not in lines[0] and "***" in lines[0]


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


RUN = RunInfo(profile="demo", mode="paper", broker="paper", strategies=("equity_reversal",),
              risk_rules=("max_order_value", "kill_switch"))


@pytest.fixture
def notifier():
    clock = FakeClock()
    specs = [NotifySpec(url="$ALL", rate_limit_s=900), NotifySpec(url="$REFUSALS", events=["refused", "stop"]),
             NotifySpec(url="$FILLS", events=["fill"])]
    targets = resolve_targets(specs, {"ALL": WEBHOOK, "REFUSALS": WEBHOOK, "FILLS": WEBHOOK})
    made = Notifier(targets, clock=clock)
    made.run = RUN
    made.clock = clock  # type: ignore[attr-defined]
    yield made
    made.close()


def intent(symbol: str, side: str = "buy", qty: float = 100, price: float = 12.5) -> OrderIntent:
    return OrderIntent(symbol=symbol, side=side, qty=qty, strategy="equity_reversal",  # type: ignore[arg-type]
                       reason="entry", decision_date=pd.Timestamp("2021-04-16"), ref_price=price)


def messages(notifier: Notifier, cycle: int = 1, error: BaseException | None = None) -> list:
    """What each target would get when the cycle ends (then forgets the cycle's notices)."""
    pending, notifier._pending = notifier._pending, []
    return [notifier.message_for(c.target, pending, cycle=cycle) for c in notifier.channels]


def test_a_guard_refusal_is_a_guard_for_who_wants_guards_and_a_refusal_for_the_others(notifier) -> None:
    notifier.order_refused(intent("AAPL"), "kill_switch", "kill_switch: kill switch /x/KILL_SWITCH is present")
    notifier.order_refused(intent("MSFT", price=300), "max_order_value",
                           "max_order_value: order value 30,000.00 exceeds 10,000.00")
    everything, refusals, fills = messages(notifier)
    assert everything.title == "hybrid demo (paper) cycle 1: 1 guard, 1 refused"
    assert everything.body.splitlines() == [
        "GUARD buy 100 AAPL @ 12.50: kill_switch: kill switch /x/KILL_SWITCH is present",
        "REFUSED buy 100 MSFT @ 300.00: max_order_value: order value 30,000.00 exceeds 10,000.00"]
    assert everything.severity == "warning"
    assert refusals.title == "hybrid demo (paper) cycle 1: 2 refused"
    assert fills is None


def test_fills_and_a_broker_rejection(notifier) -> None:
    notifier.order_event({"status": "filled", "side": "buy", "qty": 4469.0, "symbol": "BAC", "price": 39.391,
                          "reason": "entry", "strategy": "equity_reversal", "client_order_id": "a"})
    notifier.order_event({"status": "submitted", "side": "buy", "qty": 1, "symbol": "F", "price": 12.0})
    notifier.order_event({"status": "rejected", "side": "sell", "qty": 3, "symbol": "GM", "price": 50,
                          "signal": {"error": "insufficient qty"}})
    everything, _refusals, fills = messages(notifier)
    assert everything.body.splitlines() == ["ERROR broker rejected sell 3 GM @ 50.00: insufficient qty",
                                            "FILL buy 4469 BAC @ 39.39 (entry, equity_reversal)"]
    assert everything.severity == "failure"
    assert fills.body == "FILL buy 4469 BAC @ 39.39 (entry, equity_reversal)"


def test_many_events_of_a_kind_make_one_message_with_a_count(notifier) -> None:
    for i in range(MAX_LINES + 30):
        notifier.order_refused(intent(f"S{i:02d}"), "kill_switch", "kill_switch: present")
    everything = messages(notifier)[0]
    lines = everything.body.splitlines()
    assert everything.title.endswith(f": {MAX_LINES + 30} guard")
    assert len(lines) == MAX_LINES + 1 and lines[-1] == "... and 30 more guard"


def test_repeats_are_rate_limited_then_summarised(notifier) -> None:
    for cycle in (1, 2, 3):  # one cycle a minute, each refused by the kill switch twice
        notifier.order_refused(intent("AAPL"), "kill_switch", "kill_switch: present")
        notifier.order_refused(intent("MSFT"), "kill_switch", "kill_switch: present")
        notifier.order_event({"status": "filled", "side": "buy", "qty": 1, "symbol": "F", "price": 12,
                              "client_order_id": f"fill-{cycle}"})
        sent = messages(notifier, cycle)[0]
        notifier.clock.now += 60
        if cycle == 1:
            assert "2 guard" in sent.title
        else:  # within 15 minutes: the guard is held back, fills are never held back
            assert sent.title == f"hybrid demo (paper) cycle {cycle}: 1 fills"
    notifier.clock.now += 900
    notifier.order_refused(intent("AAPL"), "kill_switch", "kill_switch: present")
    again = messages(notifier, 4)[0]
    assert again.body.splitlines() == ["GUARD buy 100 AAPL @ 12.50: kill_switch: present "
                                       "(+4 like it not sent: rate limit)"]


def test_the_stop_message_counts_what_the_rate_limit_held_back(notifier) -> None:
    notifier.cycle_finished(CycleResult(cycle=1, as_of=None, status="error", error="401 unauthorized"),
                            BrokerError("401 unauthorized"))
    notifier.cycle_finished(CycleResult(cycle=2, as_of=None, status="error", error="401 unauthorized"),
                            BrokerError("401 unauthorized"))
    notifier._pending.append(notifier._stop_notice("SIGTERM received", None))
    final = [notifier.message_for(c.target, notifier._pending, final=True) for c in notifier.channels]
    everything, refusals, fills = final
    assert everything.body.splitlines()[0] == "STOP (SIGTERM received) after 2 cycle(s)"
    assert everything.body.splitlines()[1].endswith("UTC: 1 errors (broker:401 unauthorized)")
    assert refusals.body == "STOP (SIGTERM received) after 2 cycle(s)" and fills is None


def test_a_run_that_fails_tells_who_wants_errors_and_who_wants_stops(notifier) -> None:
    notifier.run = None
    notice = notifier._stop_notice("failed", BrokerError("API health check failed on startup: 401"))
    everything, refusals, fills = [notifier.message_for(c.target, [notice], final=True) for c in notifier.channels]
    assert everything.body == "ERROR the run failed before its first cycle: API health check failed on startup: 401"
    assert everything.title == "hybrid: 1 errors"
    assert refusals.body == everything.body and fills is None


def test_an_error_names_its_component() -> None:
    from hybrid_core.errors import ComponentError, DataError, HybridError, StrategyError
    from hybrid_core.ops.audit import TradeLogError
    from hybrid_core.ops.observer import error_component

    class Rule:
        kind = "risk_rule"

    boundary = ComponentError("max_order_value (plugin core) failed: ZeroDivisionError")
    boundary.component = Rule()  # type: ignore[attr-defined]
    assert [error_component(e) for e in (boundary, BrokerError("x"), StrategyError("x"), DataError("x"),
                                         TradeLogError("x"), HybridError("x"), KeyError("x"), None)] == [
        "risk_rule", "broker", "strategy", "data", "audit", "cycle", "internal", "cycle"]
