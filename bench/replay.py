"""Benchmark of `hybrid replay` on all 504 S&P 500 equities (eq504): time per session, and replay = backtest.

A replay runs the live cycle once per session. Its cost per session is measured as the
difference between two whole `hybrid replay` processes over the same start: one replaying the
window's first session only, one replaying the whole window, divided by the extra sessions::

    per session = (T(whole window) - T(first session)) / (sessions - 1)

so start-up, imports, plugins and the data load cancel out (for wall time and CPU time alike).
On a shared machine that difference of two processes carries the noise of both (a few ms a
session either way), so the replay's own cycle stamps (state database, table ``cycles``) are read
too: the time from one session's start to the next one's (its commit included), as a mean over
all sessions and as medians over the quiet and the rebalance sessions.
Then the replay's round trips are compared with a `hybrid backtest` of the same window (same
symbols, entry and exit dates, exit reasons and quantities; prices to 1e-9 relative).

    .venv/bin/python bench/replay.py                                   # 2021-01-04..2021-04-21
    .venv/bin/python bench/replay.py --start 2015-01-02 --end 2021-04-21 --repeat 1
    .venv/bin/python bench/replay.py --vs /tmp/hybrid-main --repeat 3  # before/after in one run

The profile (written to a temp folder) trades equity_reversal (0.7) over every symbol of
../shared/data/sp500_daily.parquet with stop_loss and time_stop, through the paper simulator from
1,000,000; replays and backtests start cold (no warm-up), as the reference cases do.

Target (issue 14): at most 25 ms per session, replay = backtest.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml
from harness import (
    SHARED_DATA,
    Checkout,
    add_vs_option,
    alternate,
    checkouts,
    load_line,
    machine,
    measure,
    median_row,
    round_trip_difference,
    table,
)

TARGET_MS_PER_SESSION = 25.0
REBALANCE_ORDERS = 10
"""A session that sent this many orders or more is a rebalance session (eq504: 60 to 90 orders)."""


def write_profile(folder: Path) -> Path:
    """The eq504 profile with every output in ``folder``."""
    profile = {
        "name": "bench-replay",
        "data": {"source": "local", "params": {"path": str(SHARED_DATA / "sp500_daily.parquet")}},
        "strategies": [{"name": "equity_reversal", "allocation": 0.7,
                        "universe": str(SHARED_DATA / "sp500_constituents.csv")}],
        "risk": [{"name": "stop_loss", "params": {"pct": 0.05}}, {"name": "time_stop", "params": {"bars": 5}}],
        "broker": {"name": "paper", "params": {"initial_cash": 1_000_000}},
        "backtest": {"cash": 1_000_000, "slippage_bps": 0, "commission": 0},
        "outputs": {"trade_log": str(folder / "order_events.csv"), "health_file": str(folder / "hybrid.health"),
                    "state_db": str(folder / "state.sqlite")},
    }
    path = folder / "eq504_replay.yaml"
    path.write_text(yaml.safe_dump(profile))
    return path


def replay(checkout: Checkout, folder: Path, start: str, end: str) -> dict[str, Any]:
    """One `hybrid replay` process over [start, end] into ``folder``; its figures and round trips."""
    folder.mkdir(parents=True)
    profile = write_profile(folder)
    cmd = [*checkout.hybrid, "replay", str(profile), "--start", start, "--end", end, "--out", str(folder / "out"),
           "--no-progress"]
    if checkout.has_option("replay", "--warmup"):
        cmd += ["--warmup", "0"]
    run = measure(cmd, cwd=folder)
    line = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else ""
    sessions = int(line.split()[1]) if line.startswith("replayed ") else -1
    return {"wall_s": run.wall_s, "cpu_s": run.cpu_s, "peak_rss_mib": run.peak_rss_mib, "sessions": sessions,
            "summary": line, "trades": _first_file(folder / "out", "round_trips.csv", "replay_trades.csv"),
            **session_times(folder / "out" / "state.sqlite")}


def session_times(state_db: Path) -> dict[str, float]:
    """Milliseconds per session as the replay's own cycle records stamp them (from one cycle's start
    to the next one's: the session's commit included; no start-up, no data load), median over the
    quiet sessions and over the rebalance sessions (:data:`REBALANCE_ORDERS` orders or more), and
    the mean over all. Empty for a state database without cycle stamps."""
    import sqlite3
    from datetime import datetime

    if not state_db.exists():
        return {}
    with contextlib.closing(sqlite3.connect(state_db)) as db:
        rows = db.execute("SELECT started_at, finished_at, orders_count FROM cycles ORDER BY id").fetchall()
    if len(rows) < 2:
        return {}

    def stamp(text: str) -> float:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()

    starts = [stamp(r[0]) for r in rows] + [stamp(rows[-1][1])]
    spans = [1000 * (b - a) for a, b in zip(starts, starts[1:], strict=False)]
    quiet = [ms for ms, r in zip(spans, rows, strict=True) if (r[2] or 0) < REBALANCE_ORDERS]
    busy = [ms for ms, r in zip(spans, rows, strict=True) if (r[2] or 0) >= REBALANCE_ORDERS]
    return {"loop_ms_per_session": statistics.fmean(spans),
            "quiet_ms": statistics.median(quiet) if quiet else math.nan,
            "rebalance_ms": statistics.median(busy) if busy else math.nan,
            "quiet_sessions": len(quiet), "rebalance_sessions": len(busy)}


def backtest(checkout: Checkout, folder: Path, start: str, end: str) -> Path:
    """`hybrid backtest` of the same window (cold start); the path of its round trips."""
    folder.mkdir(parents=True)
    profile = write_profile(folder)
    cmd = [*checkout.hybrid, "backtest", str(profile), "--start", start, "--end", end, "--out",
           str(folder / "out"), "--no-progress", "--lookahead-cuts", "0"]
    if checkout.has_option("backtest", "--warmup"):
        cmd += ["--warmup", "0"]
    measure(cmd, cwd=folder)
    return _first_file(folder / "out", "round_trips.csv", "trades.csv")


def _first_file(folder: Path, *names: str) -> Path:
    for name in names:
        if (folder / name).exists():
            return folder / name
    raise SystemExit(f"none of {', '.join(names)} in {folder}")


def same_trades(replay_trades: Path, backtest_trades: Path) -> str:
    """'match (N round trips)' when both tables hold the same round trips, else what differs."""
    import pandas as pd  # here, not at the top: this process stays small (see harness.py)

    count = len(pd.read_csv(backtest_trades))
    if count == 0 and len(pd.read_csv(replay_trades)) == 0:
        return "nothing compared: 0 round trips on both sides (widen the window)"
    differs = round_trip_difference(replay_trades, backtest_trades)
    return f"DIFFERENT {differs}" if differs else f"match ({count} round trips)"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit 1 when a replay differs from its backtest."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", default="2021-01-04", help="first session of the replay")
    parser.add_argument("--end", default="2021-04-21", help="last session of the replay")
    parser.add_argument("--repeat", type=int, default=1, help="timed pairs per checkout; medians are shown")
    add_vs_option(parser)
    args = parser.parse_args(argv)
    if not (SHARED_DATA / "sp500_daily.parquet").exists():
        raise SystemExit(f"shared data not found at {SHARED_DATA} (set HYBRID_SHARED_DATA)")
    rows = []
    with tempfile.TemporaryDirectory(prefix="hybrid-bench-replay-") as tmp:
        work = Path(tmp)

        def pair(checkout: Checkout, i: int) -> dict[str, Any]:
            tag = f"{abs(hash(checkout.label))}-{i}"
            first = replay(checkout, work / f"first-{tag}", args.start, args.start)
            whole = replay(checkout, work / f"whole-{tag}", args.start, args.end)
            extra = whole["sessions"] - first["sessions"]
            return {**whole, "first_wall_s": first["wall_s"], "first_cpu_s": first["cpu_s"],
                    "ms_per_session": 1000 * (whole["wall_s"] - first["wall_s"]) / extra if extra > 0 else math.nan,
                    "cpu_ms_per_session": 1000 * (whole["cpu_s"] - first["cpu_s"]) / extra if extra > 0 else math.nan}

        measured = checkouts(args.vs)  # once: a label names the commit measured, even if HEAD moves meanwhile
        for label, runs in alternate(measured, args.repeat, pair).items():
            co = next(c for c in measured if c.label == label)
            row = median_row(runs, ["wall_s", "cpu_s", "peak_rss_mib", "first_wall_s", "first_cpu_s",
                                    "ms_per_session", "cpu_ms_per_session", "loop_ms_per_session", "quiet_ms",
                                    "rebalance_ms"])
            row["checkout"] = label
            row["ms_per_session_all"] = [round(r["ms_per_session"], 1) for r in runs]
            row["parity"] = same_trades(runs[-1]["trades"], backtest(co, work / f"bt-{abs(hash(label))}",
                                                                     args.start, args.end))
            row["within_target"] = row["ms_per_session"] <= TARGET_MS_PER_SESSION
            row.pop("trades")
            rows.append(row)
            print(f"{label}: replay {args.start}..{args.end}, {row['sessions']} sessions: "
                  f"{row['ms_per_session']:.1f} ms per session wall, {row['cpu_ms_per_session']:.1f} ms CPU "
                  f"(target <= {TARGET_MS_PER_SESSION:.0f}); inside the replay's loop (its cycle stamps) "
                  f"{row.get('loop_ms_per_session', math.nan):.1f} ms per session, quiet "
                  f"{row.get('quiet_ms', math.nan):.1f} ms ({row.get('quiet_sessions', 0)}), rebalance "
                  f"{row.get('rebalance_ms', math.nan):.1f} ms ({row.get('rebalance_sessions', 0)}); "
                  f"whole process {row['wall_s']:.2f} s wall, "
                  f"{row['cpu_s']:.2f} s CPU, peak RSS {row['peak_rss_mib']:.0f} MiB; replay vs backtest: "
                  f"{row['parity']}", file=sys.stderr)
    print(table(rows, [("checkout", "{}"), ("sessions", "{}"), ("ms_per_session", "{:.1f}"),
                       ("cpu_ms_per_session", "{:.1f}"), ("loop_ms_per_session", "{:.1f}"), ("quiet_ms", "{:.1f}"),
                       ("rebalance_ms", "{:.1f}"), ("wall_s", "{:.2f}"), ("cpu_s", "{:.2f}"),
                       ("first_wall_s", "{:.2f}"), ("peak_rss_mib", "{:.0f}"), ("parity", "{}")]))
    print(load_line())
    print(json.dumps({"benchmark": "replay", "start": args.start, "end": args.end, "machine": machine(),
                      "target_ms_per_session": TARGET_MS_PER_SESSION, "rows": rows}))
    return 0 if all(r["parity"].startswith("match") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
