"""Benchmark of one live cycle: `hybrid run --once --dry-run` over all 504 S&P 500 symbols + BTC/ETH.

The cycle runs as its own process, so wall time is the whole process (interpreter start,
imports, plugins, profile, data load, strategies, risk rules, audit rows, heartbeat) and peak
RSS is the child's (``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss``). The profile is written
to a temp folder with every output there; the decision date is 2021-04-16 (a Friday: the
equity strategy rebalances).

    .venv/bin/python bench/cycle.py                  # one line of text, then one JSON object
    .venv/bin/python bench/cycle.py --repeat 3       # medians of three runs
    .venv/bin/python bench/cycle.py --vs /tmp/hybrid-main --repeat 3   # before/after in one run

``--vs DIR`` also runs the cycle with another checkout's hybrid, alternating run by run (see
bench/harness.py): one line per checkout.

Targets: under 3 s wall and at most 250 MiB peak RSS (the deployment's memory limit is 512 MiB).
"""

from __future__ import annotations

import argparse
import json
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
    file_symbols,
    load_line,
    machine,
    measure,
    median_row,
)

AS_OF = "2021-04-16"
TARGET_WALL_S = 3.0
TARGET_RSS_MIB = 250.0


def equity_symbols() -> list[str]:
    """Every symbol of the shared S&P 500 file (504), read from its symbol column only (in a child)."""
    return file_symbols(SHARED_DATA / "sp500_daily.parquet")


def write_profile(folder: Path, equities: list[str] | str, equity_file: Path | None = None) -> Path:
    """A profile trading ``equities`` (a list or a universe CSV) of ``equity_file`` (default: the
    shared S&P 500 file) and BTC/ETH, every risk rule, the paper broker, outputs in ``folder``."""
    profile = {
        "name": "bench-cycle",
        "data": {"source": "local", "params": {"path": [str(equity_file or SHARED_DATA / "sp500_daily.parquet"),
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


def run_once(folder: Path, profile: Path, checkout: Checkout) -> dict[str, Any]:
    """One whole `hybrid run --once --dry-run` process; wall and CPU time, peak RSS, its summary line."""
    run = measure([*checkout.hybrid, "run", str(profile), "--once", "--dry-run", "--as-of", AS_OF,
                   "--log-level", "WARNING"], cwd=folder)
    return {"wall_s": run.wall_s, "cpu_s": run.cpu_s, "peak_rss_mib": run.peak_rss_mib,
            "summary": run.stdout.strip()}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit 1 when a target is missed (with --check)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs per checkout; medians are reported")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    add_vs_option(parser)
    args = parser.parse_args(argv)
    equities = equity_symbols()
    with tempfile.TemporaryDirectory(prefix="hybrid-bench-cycle-") as tmp:
        def one(checkout: Checkout, i: int) -> dict[str, Any]:
            run_folder = Path(tmp) / f"{abs(hash(checkout.label))}-{i}"
            run_folder.mkdir()
            return run_once(run_folder, write_profile(run_folder, equities), checkout)

        runs = alternate(checkouts(args.vs), args.repeat, one)
    reports = []
    for label, rows in runs.items():
        row = median_row(rows, ["wall_s", "cpu_s", "peak_rss_mib"])
        report = {"benchmark": "cycle", "checkout": label, "symbols": len(equities) + 2, "as_of": AS_OF,
                  "runs": args.repeat, "wall_s": round(row["wall_s"], 3),
                  "wall_s_all": [round(r["wall_s"], 3) for r in rows], "cpu_s": round(row["cpu_s"], 3),
                  "peak_rss_mib": round(row["peak_rss_mib"], 1),
                  "peak_rss_mib_all": [round(r["peak_rss_mib"], 1) for r in rows],
                  "load_average": machine()["load_avg"], "target_wall_s": TARGET_WALL_S,
                  "target_rss_mib": TARGET_RSS_MIB,
                  "within_targets": row["wall_s"] < TARGET_WALL_S and row["peak_rss_mib"] <= TARGET_RSS_MIB,
                  "cycle": row["summary"]}
        reports.append(report)
        print(f"{label}: cycle over {report['symbols']} symbols: {report['wall_s']:.2f} s wall "
              f"(target < {TARGET_WALL_S:.0f}; CPU {report['cpu_s']:.2f} s), peak RSS "
              f"{report['peak_rss_mib']:.0f} MiB (target <= {TARGET_RSS_MIB:.0f}); {report['cycle']}")
    print(load_line())
    print(json.dumps(reports if len(reports) > 1 else reports[0]))
    return 1 if args.check and not reports[0]["within_targets"] else 0


if __name__ == "__main__":
    sys.exit(main())
