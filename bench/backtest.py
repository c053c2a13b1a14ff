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
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PROFILES = REPO / "bench" / "profiles"
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
RSS_TARGET_MB = 1500.0


def hybrid_command() -> list[str]:
    """The `hybrid` script of this interpreter's environment (or the module)."""
    script = Path(sys.executable).parent / "hybrid"
    return [str(script)] if script.exists() else [sys.executable, "-m", "hybrid_core.cli"]


def run_case(name: str, out: Path, engine: str = "native") -> dict[str, Any]:
    """Run one case as a child process; wall time, peak RSS and the run's own timings."""
    case = CASES[name]
    cmd = [*hybrid_command(), "backtest", str(PROFILES / case["profile"]), "--start", case["start"],
           "--end", case["end"], "--out", str(out), "--no-progress", "--engine", engine]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    stdout, stderr = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"{name}: `{' '.join(cmd)}` failed ({proc.returncode}):\n{stderr[-2000:]}")
    summary = json.loads((out / "summary.json").read_text())
    timings = summary["timings"]
    engine_s = timings["engine"]
    return {
        "case": name, "engine": engine, "wall_s": wall, "engine_s": engine_s, "signals_s": timings["signals"],
        "loop_s": timings["loop"], "load_s": timings["load"], "setup_s": timings["setup"],
        "lookahead_s": timings["lookahead"], "write_s": timings.get("write", float("nan")),
        "after_load_s": timings["lookahead"] + engine_s + timings.get("write", 0.0),
        "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mb": usage.ru_maxrss / 1024.0,
        "dates": summary["dates"], "symbols": summary["symbols"], "bars": summary["bars"],
        "bars_per_s_engine": summary["bars"] / engine_s if engine_s else float("nan"),
        "bars_per_s_wall": summary["bars"] / wall, "trades": summary["total"]["trades"],
        "final_value": summary["total"]["final_value"],
        "speedup_vs_backtrader": BACKTRADER_SECONDS[name] / wall,
        "reference": check_reference(name, out),
        "trades_sha256": hashlib.sha256((out / "round_trips.csv").read_bytes()).hexdigest(),
    }


def check_reference(name: str, out: Path) -> str:
    """'match' when trades and daily values equal ../shared/reference, 'n/a' without a reference."""
    ref_trades = REFERENCE / f"{name}_trades.csv"
    if not ref_trades.exists():
        return "n/a"
    import numpy as np
    import pandas as pd

    key = ["symbol", "entry_date"]
    ref = pd.read_csv(ref_trades)
    ours = pd.read_csv(out / "round_trips.csv")
    merged = ref.merge(ours, on=key, how="outer", suffixes=("_ref", ""), indicator=True)
    if (merged["_merge"] != "both").any():
        return f"DIFFERENT: {int((merged['_merge'] != 'both').sum())} unmatched trades"
    for col in ("exit_date", "exit_reason", "qty"):
        if (merged[col] != merged[f"{col}_ref"]).any():
            return f"DIFFERENT {col}"
    for col in ("entry_price", "exit_price"):
        if (np.abs(merged[col] / merged[f"{col}_ref"] - 1) > 1e-9).any():
            return f"DIFFERENT {col}"
    values = pd.read_csv(REFERENCE / f"{name}_values.csv")
    equity = pd.read_csv(out / "equity.csv")
    if list(values["date"]) != list(equity["date"]):
        return "DIFFERENT dates"
    worst = float(np.max(np.abs(equity["value"].to_numpy() / values["value"].to_numpy() - 1)))
    return "match" if worst <= 1e-6 else f"DIFFERENT values ({worst:.2g})"


def table(rows: list[dict[str, Any]]) -> str:
    """The results as a fixed-width text table."""
    cols = [("case", "{}"), ("engine", "{}"), ("wall_s", "{:.2f}"), ("engine_s", "{:.3f}"), ("after_load_s", "{:.2f}"),
            ("load_s", "{:.2f}"), ("setup_s", "{:.2f}"), ("bars", "{:,}"), ("bars_per_s_engine", "{:,.0f}"),
            ("bars_per_s_wall", "{:,.0f}"), ("peak_rss_mb", "{:.0f}"), ("speedup_vs_backtrader", "{:.1f}x"),
            ("trades", "{:,}"), ("reference", "{}")]
    cells = [[fmt.format(r[c]) for c, fmt in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, (c, _) in enumerate(cols)]
    lines = ["  ".join(c.rjust(w) for (c, _), w in zip(cols, widths, strict=True))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def verdicts(rows: list[dict[str, Any]]) -> list[str]:
    """One line per target: reached or not."""
    out = []
    for row in rows:
        if row["engine"] != "native":  # the targets are the native engine's
            continue
        for key, limit in TARGETS.get(row["case"], {}).items():
            ok = row[key] < limit
            out.append(f"{row['case']} {key} {row[key]:.2f} < {limit}: {'OK' if ok else 'MISSED'}")
        ok = row["peak_rss_mb"] < RSS_TARGET_MB
        out.append(f"{row['case']} peak RSS {row['peak_rss_mb']:.0f} MB < {RSS_TARGET_MB:.0f}: "
                   f"{'OK' if ok else 'MISSED'}")
    return out


def engine_ratios(rows: list[dict[str, Any]]) -> list[str]:
    """Per case run by several engines: each engine's time against the native one, same trades or not."""
    out = []
    native = {r["case"]: r for r in rows if r["engine"] == "native"}
    for row in rows:
        base = native.get(row["case"])
        if row["engine"] == "native" or base is None:
            continue
        same = "identical" if row["trades_sha256"] == base["trades_sha256"] else "DIFFERENT"
        out.append(f"{row['case']}: {row['engine']} {row['wall_s']:.2f}s wall / native {base['wall_s']:.2f}s = "
                   f"{row['wall_s'] / base['wall_s']:.1f}x; engine {row['engine_s']:.2f}s / "
                   f"{base['engine_s']:.3f}s = {row['engine_s'] / base['engine_s']:.0f}x; round_trips.csv {same}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    parser.add_argument("--engines", nargs="+", default=["native"], metavar="ENGINE",
                        help="engines to run each case with (default: native)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per case; the fastest wall time is kept")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv)
    rows = []
    work = Path(tempfile.mkdtemp(prefix="hybrid-bench-"))
    try:
        for name in args.cases:
            for engine in args.engines:
                runs = [run_case(name, work / f"{name}-{engine}-{i}", engine) for i in range(args.repeat)]
                best = min(runs, key=lambda r: r["wall_s"])
                best["runs_wall_s"] = [round(r["wall_s"], 3) for r in runs]
                rows.append(best)
                print(f"{name} ({engine}): {best['wall_s']:.2f}s wall, {best['engine_s']:.3f}s engine, "
                      f"{best['peak_rss_mb']:.0f} MB, reference {best['reference']}", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    machine = {"cpus": os.cpu_count(), "load_avg_1m": os.getloadavg()[0], "python": sys.version.split()[0]}
    result = {"machine": machine, "cases": rows, "verdicts": verdicts(rows), "engines": engine_ratios(rows)}
    print(json.dumps(result, indent=2))
    print()
    print(table(rows))
    print("\n".join(result["verdicts"]))
    print("\n".join(result["engines"]))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    same = not any("DIFFERENT" in line for line in result["engines"])
    return 0 if same and all(r["reference"] in ("match", "n/a") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
