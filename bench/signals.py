"""Benchmark of the operators' signals: what notifications and metrics cost a live cycle.

Replays the demo profile's paper cycles over 2021-03-01..2021-04-21 (bundled sample bars, 42
symbols) in-process, once per setup, and reports each setup's cycle times: ``CycleResult.duration_s``
(the cycle's own steps) and the wall time of ``run_cycle`` (which adds the observers' end-of-cycle work):

- ``none``: no observer (the cycle as it was);
- ``metrics``: RunMetrics only;
- ``notify-ok``: metrics + a channel to a local receiver answering 200;
- ``notify-500``: metrics + a channel answering 500 to everything;
- ``notify-hang``: metrics + a channel that never answers (timeout_s 5).

The setups run in rounds (``--repeat``, default 3), interleaved; each figure is the best round's.

Then: the cost of queueing one message (``NotifyChannel.offer``, 10,000 offers on a hung channel:
64 queued, the rest dropped), the exit wait with a hung channel (bounded by timeout_s + 1 s), the
size and render time of a scrape, and the realised-PnL read of the trade log done once per cycle.

    .venv/bin/python bench/signals.py              # one line per figure, then one JSON object
    .venv/bin/python bench/signals.py --repeat 1   # one round (quicker, noisier)

The receiver is the tests' (tests/live/notify_receiver.py). Times on a shared machine are noisy:
compare the setups with each other, not with another day's run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "live"))

from notify_receiver import NotifyReceiver  # noqa: E402

from hybrid_core.commands.run import run_observers  # noqa: E402
from hybrid_core.live.runner import RunOptions, RunSession  # noqa: E402
from hybrid_core.ops.notify_channel import Message, NotifyChannel  # noqa: E402
from hybrid_core.ops.notify_targets import NotifySpec, resolve_targets  # noqa: E402
from hybrid_core.ops.report import build_report  # noqa: E402
from hybrid_core.plugins import build_plugin_host  # noqa: E402
from hybrid_core.profile import load_profile  # noqa: E402

START, END = "2021-03-01", "2021-04-21"
SETUPS = ("none", "metrics", "notify-ok", "notify-500", "notify-hang")


def write_profile(folder: Path) -> Path:
    profile = yaml.safe_load((REPO / "profiles" / "demo.yaml").read_text())
    profile["data"]["params"]["path"] = str(REPO / "data" / "sample" / "bars.parquet")
    profile["strategies"][0]["universe"] = str(REPO / "data" / "sample" / "universe_equities.txt")
    profile["outputs"] = {"trade_log": str(folder / "trades.csv"), "health_file": str(folder / "h.health"),
                          "state_db": str(folder / "state" / "state.sqlite")}
    profile["risk"] = [r for r in profile["risk"] if r["name"] != "kill_switch"]
    path = folder / "profile.yaml"
    path.write_text(yaml.safe_dump(profile))
    return path


def run_setup(setup: str, sessions: pd.DatetimeIndex) -> dict[str, Any]:
    receiver = None
    with tempfile.TemporaryDirectory() as tmp:
        profile = load_profile(write_profile(Path(tmp)))
        targets = []
        if setup.startswith("notify"):
            receiver = NotifyReceiver({"notify-ok": "ok", "notify-500": "fail", "notify-hang": "hang"}[setup])
            targets = resolve_targets([NotifySpec(url="$BENCH_NOTIFY", timeout_s=5, rate_limit_s=0)],
                                      {"BENCH_NOTIFY": receiver.url})
        observer, _metrics = run_observers(targets, metrics=setup != "none")
        session = RunSession(profile, build_plugin_host().registry, RunOptions(durable=False), observer=observer)
        durations, walls = [], []
        try:
            for day in sessions:
                started = time.perf_counter()
                durations.append(session.run_cycle(day).duration_s)
                walls.append(time.perf_counter() - started)
            if receiver is not None and setup != "notify-hang":
                receiver.wait(lambda r: r.requests >= 1 + len(sessions) // 5, timeout=30)
            exit_started = time.perf_counter()
        finally:
            session.__exit__(None, None, None)
        exit_s = time.perf_counter() - exit_started
        trade_rows = sum(1 for _ in open(Path(tmp) / "trades.csv")) - 1
        pnl_started = time.perf_counter()
        build_report(Path(tmp) / "trades.csv")
        pnl_s = time.perf_counter() - pnl_started
    if receiver is not None:
        receiver.close()
    return {"cycles": len(durations), "median_cycle_s": statistics.median(durations), "max_cycle_s": max(durations),
            "median_wall_s": statistics.median(walls), "max_wall_s": max(walls),
            "exit_s": exit_s, "messages_received": len(receiver.messages) if receiver else 0,
            "trade_rows": trade_rows, "realised_pnl_read_s": pnl_s}


def offer_cost() -> dict[str, Any]:
    receiver = NotifyReceiver("hang")
    (target,) = resolve_targets([NotifySpec(url="$R", timeout_s=1)], {"R": receiver.url})
    channel = NotifyChannel(target)
    channel.offer(Message("first", "held by the receiver"))
    receiver.wait(lambda r: r.requests == 1)
    n = 10_000
    started = time.perf_counter()
    for i in range(n):
        channel.offer(Message(f"m{i}", "x" * 200))
    per_offer_us = (time.perf_counter() - started) / n * 1e6
    queued, dropped = channel.queue.qsize(), channel.dropped
    exit_started = time.perf_counter()
    unsent = channel.close()
    exit_s = time.perf_counter() - exit_started
    receiver.close()
    return {"offers": n, "per_offer_us": per_offer_us, "queued": queued, "dropped": dropped,
            "exit_wait_s_timeout_1s": exit_s, "unsent_at_exit": unsent}


def scrape_cost() -> dict[str, Any]:
    from prometheus_client.parser import text_string_to_metric_families

    from hybrid_core.live.cycle import CycleResult
    from hybrid_core.ops.metrics import METRICS, RunMetrics
    from hybrid_core.ops.observer import RunInfo

    metrics = RunMetrics()
    metrics.run_started(RunInfo(profile="demo", mode="paper", broker="paper", risk_rules=(
        "stop_loss", "time_stop", "max_order_value", "max_daily_loss", "max_drawdown", "max_open_positions",
        "kill_switch")))
    metrics.cycle_finished(CycleResult(cycle=1, as_of=None, portfolio_value=1.0))
    started = time.perf_counter()
    for _ in range(100):
        text = metrics.exposition()
    render_ms = (time.perf_counter() - started) / 100 * 1000
    samples = sum(len(f.samples) for f in text_string_to_metric_families(text.decode()))
    return {"families": len(METRICS), "samples": samples, "bytes": len(text), "render_ms": render_ms}


def main() -> None:
    os.environ.setdefault("TRADING_MODE", "PAPER")
    os.environ.setdefault("HYBRID_DISABLE_PLUGINS", "alpaca")
    from hybrid_core.calendars import nyse_sessions
    from hybrid_core.ops.logging_setup import configure_logging

    configure_logging(level="ERROR")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="rounds of all setups; the best round counts")
    args = parser.parse_args()
    sessions = nyse_sessions(pd.Timestamp(START), pd.Timestamp(END))
    rounds = [{s: run_setup(s, sessions) for s in SETUPS} for _ in range(args.repeat)]
    results: dict[str, Any] = {"setups": {s: min((r[s] for r in rounds), key=lambda row: row["median_wall_s"])
                                          for s in SETUPS}, "rounds": args.repeat}
    results["offer"] = offer_cost()
    results["scrape"] = scrape_cost()
    for name, row in results["setups"].items():
        print(f"{name:12s} {row['cycles']} cycles: median {row['median_cycle_s'] * 1000:6.1f} ms, "
              f"max {row['max_cycle_s'] * 1000:6.1f} ms (wall median {row['median_wall_s'] * 1000:6.1f} ms, "
              f"max {row['max_wall_s'] * 1000:6.1f} ms); exit {row['exit_s']:.2f} s; "
              f"{row['messages_received']} message(s) received")
    offer = results["offer"]
    print(f"offer        {offer['per_offer_us']:.1f} us per message ({offer['queued']} queued, {offer['dropped']} "
          f"dropped of {offer['offers']}); exit with a hung channel (timeout 1 s): "
          f"{offer['exit_wait_s_timeout_1s']:.2f} s, {offer['unsent_at_exit']} unsent")
    scrape = results["scrape"]
    print(f"scrape       {scrape['families']} families, {scrape['samples']} samples, {scrape['bytes']} bytes, "
          f"rendered in {scrape['render_ms']:.2f} ms")
    last = results["setups"]["metrics"]
    print(f"realised PnL read of the trade log ({last['trade_rows']} rows, at a scrape after it changed): "
          f"{last['realised_pnl_read_s'] * 1000:.1f} ms")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
