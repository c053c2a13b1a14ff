"""Benchmark of one live cycle: `hybrid run --once --dry-run` over all 504 S&P 500 symbols + BTC/ETH.

The cycle runs as its own process, so wall time is the whole process (interpreter start,
imports, plugins, profile, data load, strategies, risk rules, audit rows, heartbeat) and peak
RSS is the child's (``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss``). The profile is written
to a temp folder with every output there; the decision date is 2021-04-16 (a Friday: the
equity strategy rebalances).

    .venv/bin/python bench/cycle.py                  # one line of text, then one JSON object
    .venv/bin/python bench/cycle.py --repeat 3       # best wall time of three runs

Targets: under 3 s wall and under 400 MiB peak RSS (the deployment's memory limit is 512 MiB).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("HYBRID_SHARED_DATA") or REPO.parent / "shared" / "data")
HYBRID = Path(sys.executable).with_name("hybrid")
AS_OF = "2021-04-16"
TARGET_WALL_S = 3.0
TARGET_RSS_MIB = 400.0


def equity_symbols() -> list[str]:
    """Every symbol of the shared S&P 500 file (504), read from its dictionary column only."""
    import pyarrow.parquet as pq

    table = pq.read_table(SHARED_DATA / "sp500_daily.parquet", columns=["symbol"])
    return sorted(str(s) for s in table.column("symbol").unique().to_pylist())


def write_profile(folder: Path, equities: list[str]) -> Path:
    """A profile trading every symbol, both strategies, the paper broker, outputs in ``folder``."""
    profile = {
        "name": "bench-cycle",
        "data": {"source": "local", "params": {"path": [str(SHARED_DATA / "sp500_daily.parquet"),
                                                          str(SHARED_DATA / "crypto_daily.parquet")]}},
        "strategies": [
            {"name": "equity_reversal", "allocation": 0.7, "universe": equities},
            {"name": "crypto_adx", "allocation": 0.3, "universe": ["BTC/USD", "ETH/USD"]},
        ],
        "risk": [{"name": "stop_loss"}, {"name": "time_stop"}, {"name": "max_order_value"},
                 {"name": "max_daily_loss"}, {"name": "max_drawdown"}, {"name": "max_open_positions"},
                 {"name": "kill_switch", "params": {"path": str(folder / "KILL_SWITCH")}}],
        "broker": {"name": "paper", "params": {"initial_cash": 1_000_000}},
        "outputs": {"trade_log": str(folder / "trades.csv"), "health_file": str(folder / "hybrid.health"),
                    "state_db": str(folder / "state" / "hybrid.sqlite")},
    }
    path = folder / "bench_cycle.yaml"
    path.write_text(yaml.safe_dump(profile))
    return path


def run_once(folder: Path, profile: Path) -> dict[str, Any]:
    """One whole `hybrid run --once --dry-run` process; wall time, its output and exit code."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run([str(HYBRID), "run", str(profile), "--once", "--dry-run", "--as-of", AS_OF,
                           "--log-level", "WARNING"], cwd=folder, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    if proc.returncode != 0:
        raise SystemExit(f"hybrid run failed (exit {proc.returncode}): {proc.stderr.strip()[-500:]}")
    return {"wall_s": wall, "cpu_s": cpu, "summary": proc.stdout.strip()}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit 1 when a target is missed (with --check)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs; the best wall time is reported")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args(argv)
    equities = equity_symbols()
    walls, cpus, summary = [], [], ""
    with tempfile.TemporaryDirectory(prefix="hybrid-bench-cycle-") as tmp:
        folder = Path(tmp)
        profile = write_profile(folder, equities)
        for i in range(args.repeat):
            run_folder = folder / f"run{i}"
            run_folder.mkdir()
            profile_i = write_profile(run_folder, equities) if i else profile
            result = run_once(run_folder, profile_i)
            walls.append(result["wall_s"])
            cpus.append(result["cpu_s"])
            summary = result["summary"]
    rss_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
    report = {"benchmark": "cycle", "symbols": len(equities) + 2, "as_of": AS_OF, "runs": args.repeat,
              "wall_s": round(min(walls), 3), "wall_s_all": [round(w, 3) for w in walls],
              "cpu_s": round(min(cpus), 3), "load_average": round(os.getloadavg()[0], 2),
              "peak_rss_mib": round(rss_mib, 1), "target_wall_s": TARGET_WALL_S,
              "target_rss_mib": TARGET_RSS_MIB, "within_targets": min(walls) < TARGET_WALL_S
              and rss_mib < TARGET_RSS_MIB, "cycle": summary}
    print(f"cycle over {report['symbols']} symbols: {report['wall_s']:.2f} s wall "
          f"(target < {TARGET_WALL_S:.0f}; CPU {report['cpu_s']:.2f} s, load {report['load_average']}), "
          f"peak RSS {report['peak_rss_mib']:.0f} MiB (target < {TARGET_RSS_MIB:.0f}); {summary}")
    print(json.dumps(report))
    return 1 if args.check and not report["within_targets"] else 0


if __name__ == "__main__":
    sys.exit(main())
