"""Benchmark of `hybrid sweep`: 64 sets over all 504 equities 2015-2021 on 1 and on 2 workers.

The grid is decile (4) x stop-loss (4) x time stop (4) on bench/profiles/eq504_2015.yaml. Each
sweep runs as its own `hybrid sweep` process with an embedded cluster of N worker processes. The
set phase's time (from sweep.json: submitting the 64 sets to the last result) gives sets per
second and the 1 -> 2 worker speed-up; "per set per worker" is that time x workers / 64, shown
beside the engine time of one `hybrid backtest` of the same profile (signals + loop, bars
already loaded), which the sweep must approach because bars and signals are not reloaded per
set. Peak RSS is each worker process's, as reported by the workers at the end.

    .venv/bin/python bench/sweep.py                        # 1 and 2 workers, table + JSON
    .venv/bin/python bench/sweep.py --workers 1 2 4 --repeat 3 --json sweep-bench.json

On a shared machine the speed-up is depressed by other load: the load average before and after
each run is printed; rerun on a quiet machine for the real figure.
"""

from __future__ import annotations

import argparse
import importlib.util
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
PROFILE = REPO / "bench" / "profiles" / "eq504_2015.yaml"
START, END = "2015-01-01", "2021-04-21"
GRID = """method: grid
metric: sharpe
parameters:
  strategies[equity_reversal].params.decile: [0.05, 0.10, 0.15, 0.20]
  risk[stop_loss].params.pct: [0.03, 0.05, 0.08, 0.12]
  risk[time_stop].params.bars: [3, 5, 10, 20]
"""
TARGETS = {"per_set_vs_engine": 1.5, "speedup_1_to_2": 1.7, "worker_rss_mib": 600.0}


def _backtest_bench() -> Any:
    """bench/backtest.py as a module (its run_case gives the single backtest's engine time)."""
    spec = importlib.util.spec_from_file_location("bench_backtest", REPO / "bench" / "backtest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_sweep(workers: int, work: Path) -> dict[str, Any]:
    """One `hybrid sweep` process on ``workers`` worker processes; its figures."""
    out = work / f"sweep-{workers}"
    shutil.rmtree(out, ignore_errors=True)  # a rerun into the folder would skip every set
    grid = work / "grid.yaml"
    grid.write_text(GRID)
    cmd = [*_backtest_bench().hybrid_command(), "sweep", str(PROFILE), str(grid), "--start", START, "--end", END,
           "--out", str(out), "--workers", str(workers), "--no-progress", "--log-level", "ERROR"]
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"`{' '.join(cmd)}` failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    summary = json.loads((out / "sweep.json").read_text())
    timings, counts = summary["timings"], summary["counts"]
    sets = counts["sets"]
    set_phase = timings["sets"]
    alive = [w for w in summary["cluster"]["workers"] if w.get("alive")]
    return {
        "workers": workers, "sets": sets, "failed": counts["failed"], "wall_s": wall, "set_phase_s": set_phase,
        "sets_per_s": sets / set_phase, "per_set_per_worker_s": set_phase * workers / sets,
        "cpu_per_set_s": timings["sets_cpu"] / sets, "parallelism": timings["sets_cpu"] / set_phase,
        "cluster_start_s": timings.get("cluster_start"), "versions_and_bars_s": timings.get("versions_and_bars"),
        "worker_rss_mib": [round(w["peak_rss_mib"], 1) for w in alive],
        "bar_loads": [w.get("bar_loads") for w in alive],
        "load_avg_before": load_before, "load_avg_after": os.getloadavg()[0],
        "results_csv": (out / "results.csv").read_bytes(), "best": summary["best"],
        "dsr": (summary.get("deflated_sharpe") or {}).get("dsr"), "pbo": (summary.get("pbo") or {}).get("pbo"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=1,
                        help="rounds of all worker counts, alternated; the fastest set phase of each is kept "
                             "(on a shared machine the least disturbed)")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="hybrid-sweep-bench-"))
    try:
        single = _backtest_bench().run_case("eq504_2015", work / "backtest")
        engine = single["engine_s"]
        print(f"single backtest: engine {engine:.3f}s (signals {single['signals_s']:.3f}s, loop "
              f"{single['loop_s']:.3f}s), peak RSS {single['peak_rss_mb']:.0f} MB, reference "
              f"{single['reference']}", file=sys.stderr)
        tries: dict[int, list[dict[str, Any]]] = {n: [] for n in args.workers}
        for _ in range(args.repeat):
            for n in args.workers:
                row = run_sweep(n, work)
                row["per_set_vs_engine"] = row["per_set_per_worker_s"] / engine
                tries[n].append(row)
                print(f"{n} worker(s): {row['sets']} sets in {row['set_phase_s']:.1f}s ({row['sets_per_s']:.2f} "
                      f"sets/s), {row['per_set_per_worker_s']:.3f}s per set per worker = "
                      f"{row['per_set_vs_engine']:.2f}x the engine time, worker RSS {row['worker_rss_mib']} MiB, "
                      f"load {row['load_avg_before']:.1f}->{row['load_avg_after']:.1f}", file=sys.stderr)
        runs = []
        for rows in tries.values():
            best = min(rows, key=lambda r: r["set_phase_s"])
            best["set_phase_runs_s"] = [round(r["set_phase_s"], 2) for r in rows]
            runs.append(best)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    by_n = {r["workers"]: r for r in runs}
    identical = len({r["results_csv"] for rows in tries.values() for r in rows}) == 1
    speedup = by_n[1]["set_phase_s"] / by_n[2]["set_phase_s"] if 1 in by_n and 2 in by_n else None
    verdicts = []
    for r in runs:
        ok = r["per_set_vs_engine"] <= TARGETS["per_set_vs_engine"]
        verdicts.append(f"{r['workers']} worker(s): per set per worker {r['per_set_vs_engine']:.2f}x engine <= "
                        f"{TARGETS['per_set_vs_engine']}: {'OK' if ok else 'MISSED'}")
        worst = max(r["worker_rss_mib"]) if r["worker_rss_mib"] else float("nan")
        verdicts.append(f"{r['workers']} worker(s): worker peak RSS {worst:.0f} MiB < {TARGETS['worker_rss_mib']:.0f}: "
                        f"{'OK' if worst < TARGETS['worker_rss_mib'] else 'MISSED'}")
    if speedup is not None:
        verdicts.append(f"1 -> 2 workers speed-up {speedup:.2f}x >= {TARGETS['speedup_1_to_2']}: "
                        f"{'OK' if speedup >= TARGETS['speedup_1_to_2'] else 'MISSED'} (load average "
                        f"{by_n[2]['load_avg_before']:.1f} on {os.cpu_count()} cpus when 2 workers started)")
    verdicts.append(f"identical results.csv on {', '.join(str(r['workers']) for r in runs)} worker(s): "
                    f"{'OK' if identical else 'DIFFERENT'}")
    for rows in tries.values():
        for r in rows:
            r.pop("results_csv", None)
    machine = {"cpus": os.cpu_count(), "python": sys.version.split()[0]}
    result = {"machine": machine, "single_backtest": {k: single[k] for k in ("engine_s", "signals_s", "loop_s",
                                                                            "peak_rss_mb", "reference")},
              "sweeps": runs, "speedup_1_to_2": speedup, "identical_results": identical, "verdicts": verdicts}
    print(json.dumps(result, indent=2, default=str))
    print()
    header = f"{'workers':>7} {'sets/s':>7} {'set phase s':>11} {'per set/worker s':>16} {'x engine':>8} " \
             f"{'CPU/set s':>9} {'parallel':>8} {'worker RSS MiB':>16} {'load':>9}"
    print(header)
    for r in runs:
        print(f"{r['workers']:>7} {r['sets_per_s']:>7.2f} {r['set_phase_s']:>11.1f} {r['per_set_per_worker_s']:>16.3f} "
              f"{r['per_set_vs_engine']:>8.2f} {r['cpu_per_set_s']:>9.3f} {r['parallelism']:>8.2f} "
              f"{str(r['worker_rss_mib']):>16} {r['load_avg_before']:>4.1f}-{r['load_avg_after']:<4.1f}")
    print("parallel: CPU seconds of the sets / set phase seconds (what the machine gave the workers; "
          "2.0 on a quiet 2-core machine)")
    print(f"single backtest engine time {engine:.3f}s" + (f"; 1 -> 2 speed-up {speedup:.2f}x" if speedup else ""))
    print("\n".join(verdicts))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str) + "\n")
    return 0 if identical and all(r["failed"] == 0 for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
