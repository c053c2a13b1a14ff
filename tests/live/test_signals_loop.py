"""`hybrid run` as operators run it: the loop serves /metrics over HTTP and notifies a local receiver;
a --once run writes the textfile-collector format."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest
from notify_receiver import NotifyReceiver
from prometheus_client.parser import text_string_to_metric_families

ENV = {**os.environ, "TRADING_MODE": "PAPER", "HYBRID_DISABLE_PLUGINS": "alpaca"}
HYBRID = [sys.executable, "-m", "hybrid_core.cli"]


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            assert s.labels.get("profile") == "demo" and s.labels.get("mode") == "paper", s
            out[(s.name, tuple(sorted((k, v) for k, v in s.labels.items() if k not in {"profile", "mode"})))] = s.value
    return out


@pytest.fixture
def receiver():
    made = NotifyReceiver()
    yield made
    made.close()


def with_notify(profile: Path) -> Path:
    profile.write_text(profile.read_text() + "notify:\n  - {url: $HYBRID_NOTIFY_OPS, rate_limit_s: 0}\n")
    return profile


def test_the_loop_serves_metrics_and_notifies_until_sigterm(demo_profile, receiver) -> None:
    profile = with_notify(demo_profile(schedule={"interval_seconds": 0.5}))
    proc = subprocess.Popen([*HYBRID, "run", str(profile), "--metrics-port", "0", "--metrics-host", "127.0.0.1",
                             "--log-level", "WARNING"], env={**ENV, "HYBRID_NOTIFY_OPS": receiver.url},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stderr], daemon=True).start()  # type: ignore[union-attr]
    try:
        port = None
        while port is None:
            line = lines.get(timeout=60)
            match = re.match(r"metrics on http://127\.0\.0\.1:(\d+)/metrics", line)
            port = int(match.group(1)) if match else None
        # a cycle on today's clock: the bundled bars end in 2021, so the data gate halts entries
        assert receiver.wait(lambda r: any("cycle 2" in b for b in r.bodies()), timeout=60), receiver.bodies()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
            assert answer.status == 200
            scraped = samples(answer.read().decode())
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "stopped after" in out
    assert scraped[("hybrid_cycles_total", (("status", "ok"),))] >= 2
    assert scraped[("hybrid_cycle_duration_seconds_count", ())] >= 2
    assert scraped[("hybrid_data_entries_halted", ())] == 1
    assert scraped[("hybrid_data_stale_symbols", (("sleeve", "equity"),))] == 40
    assert scraped[("hybrid_portfolio_value", ())] == scraped[("hybrid_cash", ())] == 1_000_000
    assert scraped[("hybrid_open_positions", ())] == 0
    assert 0 <= scraped[("hybrid_heartbeat_age_seconds", ())] < 60
    info = [k for k in scraped if k[0] == "hybrid_run_info"]
    assert info == [("hybrid_run_info", (("broker", "paper"), ("dry_run", "false"), ("version", "0.1.0")))]
    bodies = receiver.bodies()
    assert bodies[0].startswith("hybrid demo (paper): start\nSTART broker paper")
    assert all(b.startswith(f"hybrid demo (paper) cycle {i}: 1 stale data\nSTALE stale equity data")
               for i, b in enumerate(bodies[1:-1], start=1))
    assert re.fullmatch(r"hybrid demo \(paper\): stop\nSTOP \(SIGTERM received\) after \d+ cycle\(s\)", bodies[-1])


def test_a_once_run_writes_the_textfile_atomically(demo_profile, tmp_path) -> None:
    profile = demo_profile()
    textfile = tmp_path / "prom" / "hybrid.prom"
    result = subprocess.run([*HYBRID, "run", str(profile), "--once", "--as-of", "2021-04-16",
                             "--metrics-textfile", str(textfile)], env=ENV, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    got = samples(textfile.read_text())
    assert sorted(p.name for p in textfile.parent.iterdir()) == ["hybrid.prom"]  # no temporary file left
    printed = float(re.search(r"portfolio value ([\d,.]+)", result.stdout).group(1).replace(",", ""))  # type: ignore[union-attr]
    assert got[("hybrid_portfolio_value", ())] == pytest.approx(printed, abs=0.01)
    assert got[("hybrid_cycles_total", (("status", "ok"),))] == 1
    assert got[("hybrid_orders_total", (("outcome", "submitted"), ("side", "buy")))] == 4


@pytest.mark.parametrize(("args", "message"), [
    (["--once", "--metrics-port", "9464"], "--metrics-port serves metrics while the loop runs"),
    (["--metrics-textfile", "hybrid.txt"], "the name must end in .prom"),
])
def test_metrics_options_that_cannot_work_are_refused(demo_profile, args, message) -> None:
    result = subprocess.run([*HYBRID, "run", str(demo_profile()), *args], env=ENV, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_busy_metrics_port_stops_the_run_before_it_trades(demo_profile, tmp_path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run([*HYBRID, "run", str(demo_profile()), "--metrics-port", str(port),
                                 "--metrics-host", "127.0.0.1"], env=ENV, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2  # exit_codes.USAGE: an option value the run cannot use
    assert f"error: --metrics-port {port}: cannot listen on 127.0.0.1:{port}" in result.stderr
    assert not (tmp_path / "trades.csv").exists() or "filled" not in (tmp_path / "trades.csv").read_text()


def test_a_missing_notify_variable_stops_the_run_before_it_trades(demo_profile) -> None:
    result = subprocess.run([*HYBRID, "run", str(with_notify(demo_profile())), "--once"], env=ENV,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip() == ("error: notify[0].url: environment variable HYBRID_NOTIFY_OPS is not set; "
                                     "export the channel's Apprise URL in it (e.g. tgram://BOT_TOKEN/CHAT_ID) "
                                     "or remove the target")


def test_notify_test_names_the_target_that_failed(demo_profile) -> None:
    ok, down = NotifyReceiver(), NotifyReceiver("fail")
    profile = demo_profile()
    profile.write_text(profile.read_text() + "notify:\n  - {url: $HYBRID_NOTIFY_OK}\n"
                       "  - {url: '${HYBRID_NOTIFY_DOWN}', events: [error]}\n")
    try:
        result = subprocess.run([*HYBRID, "notify", "test", str(profile)], capture_output=True, text=True,
                                env={**ENV, "HYBRID_NOTIFY_OK": ok.url, "HYBRID_NOTIFY_DOWN": down.url}, timeout=120)
    finally:
        ok.close()
        down.close()
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"ok     notify[0] $HYBRID_NOTIFY_OK (json://127.0.0.1:{ok.port}/hook)",
        f"FAILED notify[1] $HYBRID_NOTIFY_DOWN (json://127.0.0.1:{down.port}/hook): Failed to send JSON POST "
        "notification: Internal server error., error=500."]
    assert result.stderr.strip() == (f"error: 1 of 2 notification target(s) failed: notify[1] $HYBRID_NOTIFY_DOWN "
                                     f"(json://127.0.0.1:{down.port}/hook)")
    (message,) = ok.messages
    assert message["title"] == "hybrid demo (paper): test" and "hybrid notify test" in message["message"]
