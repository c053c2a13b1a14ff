"""Benchmark of `hybrid backtest` on the reference cases and the full equity history.

Each case runs as its own `hybrid backtest` process, so wall time is the whole process
(interpreter start, imports, plugins, data load, lookahead check, engine, outputs) and peak
RSS is the child's. Engine time (strategy signals + simulation loop, after the data is loaded)
and the other phases come from the run's summary.json. Reference cases are also checked
against ../shared/reference (same trades, prices 1e-9, values 1e-6). ``--engines native backtrader``
runs each case through both engines (the Backtrader one needs the backtrader_bridge plugin) and
prints the time ratio and whether their round_trips.csv are identical.

    .venv/bin/python bench/backtest.py                 # all four cases, table + JSON
    .venv/bin/python bench/backtest.py --cases eq504_2015 --repeat 3 --json bench.json
    .venv/bin/python bench/backtest.py --cases eq50_2015 --engines native backtrader
    .venv/bin/python bench/backtest.py --vs /tmp/hybrid-main --repeat 3   # before/after, one run

With ``--vs`` (see bench/harness.py) each case also runs with the other checkout's hybrid and
its own bench profiles, alternating run by run; the table then has one row per checkout, case
and engine, each figure the median of the runs.

Targets (issue 14): peak RSS at most 250 MiB for eq504_2015 and 500 MiB for the full history.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from harness import (
    REPO,
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
    this_checkout,
)

REFERENCE = REPO.parent / "shared" / "reference"

CASES: dict[str, dict[str, str]] = {
    "eq50_2015": {"profile": "eq50_2015.yaml", "start": "2015-01-01", "end": "2021-04-21"},
    "eq504_2015": {"profile": "eq504_2015.yaml", "start": "2015-01-01", "end": "2021-04-21"},
    "hybrid_2016": {"profile": "hybrid_2016.yaml", "start": "2016-01-01", "end": "2021-04-21"},
    "eq504_full": {"profile": "eq504_2015.yaml", "start": "1999-11-01", "end": "2021-04-21"},
}
BACKTRADER_SECONDS = {"eq50_2015": 6.5, "eq504_2015": 61.0, "hybrid_2016": 52.0, "eq504_full": 178.0}
"""Whole-process times of Backtrader on this kind of machine (../shared/reference/README.md)."""
TARGETS = {"eq504_2015": {"wall_s": 2.0, "engine_s": 0.5}, "eq504_full": {"wall_s": 6.0}}
RSS_TARGETS_MIB = {"eq504_2015": 250.0, "eq504_full": 500.0}
RSS_TARGET_MB = 1500.0
"""Every other case."""


def run_case(name: str, out: Path, engine: str = "native", checkout: Checkout | None = None) -> dict[str, Any]:
    """Run one case as a child process (with ``checkout``'s hybrid and bench profiles); wall time,
    CPU time, peak RSS and the run's own timings."""
    co = checkout or this_checkout()
    case = CASES[name]
    cmd = [*co.hybrid, "backtest", str(co.root / "bench" / "profiles" / case["profile"]), "--start", case["start"],
           "--end", case["end"], "--out", str(out), "--no-progress"]
    if engine != "native" or co.has_option("backtest", "--engine"):
        cmd += ["--engine", engine]
    run = measure(cmd)
    wall = run.wall_s
    trips = out / "round_trips.csv" if (out / "round_trips.csv").exists() else out / "trades.csv"  # older: trades.csv
    summary = json.loads((out / "summary.json").read_text())
    timings = summary["timings"]
    engine_s = timings["engine"]
    return {
        "checkout": co.label, "case": name, "engine": engine, "wall_s": wall, "engine_s": engine_s,
        "signals_s": timings["signals"],
        "loop_s": timings["loop"], "load_s": timings["load"], "setup_s": timings["setup"],
        "lookahead_s": timings["lookahead"], "write_s": timings.get("write", float("nan")),
        "after_load_s": timings["lookahead"] + engine_s + timings.get("write", 0.0),
        "cpu_s": run.cpu_s, "peak_rss_mb": run.peak_rss_mib,
        "dates": summary["dates"], "symbols": summary["symbols"], "bars": summary["bars"],
        "bars_per_s_engine": summary["bars"] / engine_s if engine_s else float("nan"),
        "bars_per_s_wall": summary["bars"] / wall, "trades": summary["total"]["trades"],
        "final_value": summary["total"]["final_value"],
        "speedup_vs_backtrader": BACKTRADER_SECONDS[name] / wall,
        "reference": check_reference(name, out, trips),
        "trades_sha256": hashlib.sha256(trips.read_bytes()).hexdigest(),
    }


def check_reference(name: str, out: Path, trips: Path) -> str:
    """'match' when trades and daily values equal ../shared/reference, 'n/a' without a reference."""
    ref_trades = REFERENCE / f"{name}_trades.csv"
    if not ref_trades.exists():
        return "n/a"
    import numpy as np
    import pandas as pd

    differs = round_trip_difference(trips, ref_trades)
    if differs:
        return f"DIFFERENT {differs}"
    values = pd.read_csv(REFERENCE / f"{name}_values.csv")
    equity = pd.read_csv(out / "equity.csv")
    if list(values["date"]) != list(equity["date"]):
        return "DIFFERENT dates"
    worst = float(np.max(np.abs(equity["value"].to_numpy() / values["value"].to_numpy() - 1)))
    return "match" if worst <= 1e-6 else f"DIFFERENT values ({worst:.2g})"


COLUMNS = [("checkout", "{}"), ("case", "{}"), ("engine", "{}"), ("wall_s", "{:.2f}"), ("cpu_s", "{:.2f}"),
           ("engine_s", "{:.3f}"), ("after_load_s", "{:.2f}"), ("load_s", "{:.2f}"), ("setup_s", "{:.2f}"),
           ("bars", "{:,}"), ("bars_per_s_engine", "{:,.0f}"), ("bars_per_s_wall", "{:,.0f}"),
           ("peak_rss_mb", "{:.0f}"), ("speedup_vs_backtrader", "{:.1f}x"), ("trades", "{:,}"), ("reference", "{}")]


def verdicts(rows: list[dict[str, Any]]) -> list[str]:
    """One line per target: reached or not."""
    out = []
    for row in rows:
        if row["engine"] != "native":  # the targets are the native engine's
            continue
        for key, limit in TARGETS.get(row["case"], {}).items():
            ok = row[key] < limit
            out.append(f"{row['checkout']} {row['case']} {key} {row[key]:.2f} < {limit}: "
                       f"{'OK' if ok else 'MISSED'}")
        limit = RSS_TARGETS_MIB.get(row["case"], RSS_TARGET_MB)
        ok = row["peak_rss_mb"] <= limit
        out.append(f"{row['checkout']} {row['case']} peak RSS {row['peak_rss_mb']:.0f} MiB <= {limit:.0f}: "
                   f"{'OK' if ok else 'MISSED'}")
    return out


def engine_ratios(rows: list[dict[str, Any]]) -> list[str]:
    """Per case run by several engines: each engine's time against the native one, same trades or not."""
    out = []
    native = {(r["checkout"], r["case"]): r for r in rows if r["engine"] == "native"}
    for row in rows:
        base = native.get((row["checkout"], row["case"]))
        if row["engine"] == "native" or base is None:
            continue
        same = "identical" if row["trades_sha256"] == base["trades_sha256"] else "DIFFERENT"
        out.append(f"{row['checkout']} {row['case']}: {row['engine']} {row['wall_s']:.2f}s wall / native "
                   f"{base['wall_s']:.2f}s = "
                   f"{row['wall_s'] / base['wall_s']:.1f}x; engine {row['engine_s']:.2f}s / "
                   f"{base['engine_s']:.3f}s = {row['engine_s'] / base['engine_s']:.0f}x; round_trips.csv {same}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    parser.add_argument("--engines", nargs="+", default=["native"], metavar="ENGINE",
                        help="engines to run each case with (default: native)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per case, engine and checkout; medians are shown")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    add_vs_option(parser)
    args = parser.parse_args(argv)
    rows = []
    work = Path(tempfile.mkdtemp(prefix="hybrid-bench-"))
    figures = ["wall_s", "cpu_s", "engine_s", "signals_s", "loop_s", "load_s", "setup_s", "lookahead_s", "write_s",
               "after_load_s", "peak_rss_mb", "bars_per_s_engine", "bars_per_s_wall", "speedup_vs_backtrader"]
    try:
        for name in args.cases:
            for engine in args.engines:
                def one(co: Checkout, i: int, name: str = name, engine: str = engine) -> dict[str, Any]:
                    return run_case(name, work / f"{name}-{engine}-{abs(hash(co.label))}-{i}", engine, co)

                for label, runs in alternate(checkouts(args.vs), args.repeat, one).items():
                    row = median_row(runs, figures)
                    row["runs_wall_s"] = [round(r["wall_s"], 3) for r in runs]
                    row["runs_peak_rss_mb"] = [round(r["peak_rss_mb"], 1) for r in runs]
                    row["reference"] = ", ".join(sorted({r["reference"] for r in runs}))
                    rows.append(row)
                    print(f"{label} {name} ({engine}): {row['wall_s']:.2f}s wall, {row['cpu_s']:.2f}s CPU, "
                          f"{row['engine_s']:.3f}s engine, {row['peak_rss_mb']:.0f} MiB, reference {row['reference']}",
                          file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = {"machine": machine(), "cases": rows, "verdicts": verdicts(rows), "engines": engine_ratios(rows)}
    print(json.dumps(result, indent=2))
    print()
    print(table(rows, COLUMNS))
    print("\n".join(result["verdicts"]))
    print("\n".join(result["engines"]))
    print(load_line())
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    same = not any("DIFFERENT" in line for line in result["engines"])
    return 0 if same and all(r["reference"] in ("match", "n/a") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
