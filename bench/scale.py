"""Scale benchmark: a synthetic 3,000-symbol universe, backtest and live cycle at 500 / 1,000 / 3,000 symbols.

The universe is made from the real bars: the 504 S&P 500 symbols of ../shared/data/sp500_daily.parquet
tiled six times (3,024 symbols). Copy 1 keeps the real names and prices; copy k (2..6) renames
``AAPL`` to ``AAPL.k`` and multiplies each bar's open, high, low, close and adjusted close by
``exp(0.002 * z)`` (``z`` standard normal from a generator seeded with k), so the copies trade
differently while every bar stays consistent (high >= open, close >= low). The file is written
once into a cache folder (``--cache``, default ``~/.cache/hybrid-bench``) under a name that
changes with the source file, the layout and this generator: it is never part of the repository.
Long format, zstd, in one of two layouts (``--layout``):

- ``date`` (default): sorted by date then symbol, row groups of 128Ki rows (about six weeks of
  3,024 symbols), as a bar store that grows by one day of bars at a time; a reader that pushes
  its date range down to the row groups' statistics reads only the weeks it needs;
- ``symbol``: as ../shared/data/sp500_daily.parquet, sorted by symbol then date, row groups of
  1Mi rows, each spanning every date of a few hundred symbols: no row group can be skipped for
  a date range, every read decodes the whole file.

For each size N (the first N symbols in copy order: 500 real ones, then real + copy 2, ...), two
`hybrid` processes run and are measured whole (wall, CPU, peak RSS):

- the backtest 2015-01-01..2021-04-21 of equity_reversal (0.7) over the N symbols with stop_loss and
  time_stop, cold start (``--warmup 0``);
- one live cycle, ``hybrid run --once --dry-run --as-of 2021-04-16``, over the N symbols plus
  BTC/USD and ETH/USD (crypto_adx 0.3), paper broker, every risk rule (bench/cycle.py's profile).

    .venv/bin/python bench/scale.py                          # 500, 1000, 3000 symbols
    .venv/bin/python bench/scale.py --sizes 500 3000 --repeat 3
    .venv/bin/python bench/scale.py --vs /tmp/hybrid-main    # before/after in one run

Targets at 3,000 symbols (issue 14): live cycle at most 3 s and 450 MiB, backtest at most 6 s and
1 GiB; cost growing no faster than linearly in symbols (the marginal cost per 1,000 symbols of
the last step may not exceed the average cost per 1,000 symbols at the largest size by more than 25%).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml
from cycle import run_once, write_profile
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
    table,
)

COPIES = 6
NOISE = 0.002
GENERATOR = "v2"
"""Changes whenever the synthetic file would come out different (then it is made again)."""
COLUMNS = ["symbol", "date", "open", "high", "low", "close", "adj_close", "volume"]
BACKTEST = ("2015-01-01", "2021-04-21")
TARGETS = {"cycle": {"wall_s": 3.0, "peak_rss_mib": 450.0}, "backtest": {"wall_s": 6.0, "peak_rss_mib": 1024.0}}
GROWTH_SLACK = 1.25


def default_cache() -> Path:
    """``$XDG_CACHE_HOME/hybrid-bench`` (``~/.cache/hybrid-bench``)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hybrid-bench"


LAYOUTS = {"date": ([("date", "ascending"), ("symbol", "ascending")], 1 << 17),
           "symbol": ([("symbol", "ascending"), ("date", "ascending")], 1 << 20)}
"""Sort keys and row-group size of each layout."""


def synthetic_path(cache: Path, layout: str) -> Path:
    """Where the synthetic file of ``layout`` lives (its name changes with the source and the generator)."""
    stat = (SHARED_DATA / "sp500_daily.parquet").stat()
    return cache / f"synthetic_{COPIES}x_{layout}_{stat.st_size}_{int(stat.st_mtime)}_{GENERATOR}.parquet"


def synthetic_file(cache: Path, layout: str = "date") -> Path:
    """The synthetic universe's Parquet file, made if absent by a child process (``--make-file``):
    making it takes about 2 GiB, which every later child would report as its own peak."""
    path = synthetic_path(cache, layout)
    if not path.exists():
        subprocess.run([sys.executable, __file__, "--make-file", "--cache", str(cache), "--layout", layout],
                       check=True)
    return path


def make_synthetic_file(cache: Path, layout: str) -> Path:
    """Write the synthetic file (see the module docstring); run in its own process."""
    source = SHARED_DATA / "sp500_daily.parquet"
    path = synthetic_path(cache, layout)
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    cache.mkdir(parents=True, exist_ok=True)
    real = pq.read_table(source, columns=COLUMNS)
    real = real.set_column(0, "symbol", pc.cast(real["symbol"], pa.string()))
    parts = [real]
    for copy in range(2, COPIES + 1):
        factor = np.exp(NOISE * np.random.default_rng(copy).standard_normal(real.num_rows))
        part = real.set_column(0, "symbol", pc.binary_join_element_wise(real["symbol"], pa.scalar(str(copy)), "."))
        for name in ("open", "high", "low", "close", "adj_close"):
            part = part.set_column(part.schema.get_field_index(name), name,
                                   pc.multiply(part[name], pa.array(factor)))
        parts.append(part)
    keys, row_group = LAYOUTS[layout]
    table = pa.concat_tables(parts).sort_by(keys)
    partial = path.with_suffix(".tmp")
    pq.write_table(table, partial, compression="zstd", row_group_size=row_group)
    partial.replace(path)
    return path


def universe(size: int) -> list[str]:
    """The first ``size`` symbols in copy order (the real names sorted, then copy 2's, ...)."""
    names = _real_symbols()
    ordered = names + [f"{s}.{k}" for k in range(2, COPIES + 1) for s in names]
    if size > len(ordered):
        raise SystemExit(f"--sizes: at most {len(ordered)} symbols ({COPIES} copies of {len(names)})")
    return ordered[:size]


@functools.cache
def _real_symbols() -> list[str]:
    return file_symbols(SHARED_DATA / "sp500_daily.parquet")


def write_universe(folder: Path, symbols: list[str]) -> Path:
    """A universe CSV (``Symbol`` column) the profiles name."""
    path = folder / f"universe_{len(symbols)}.csv"
    path.write_text("Symbol\n" + "\n".join(symbols) + "\n")
    return path


def backtest_profile(folder: Path, data: Path, universe_csv: Path) -> Path:
    profile = {"name": "scale-backtest", "data": {"source": "local", "params": {"path": str(data)}},
               "strategies": [{"name": "equity_reversal", "allocation": 0.7, "universe": str(universe_csv)}],
               "risk": [{"name": "stop_loss", "params": {"pct": 0.05}}, {"name": "time_stop", "params": {"bars": 5}}],
               "backtest": {"cash": 1_000_000, "slippage_bps": 0, "commission": 0}}
    path = folder / "backtest.yaml"
    path.write_text(yaml.safe_dump(profile))
    return path


def run_size(checkout: Checkout, work: Path, data: Path, size: int) -> dict[str, Any]:
    """The backtest and the live cycle over ``size`` symbols, each one measured process."""
    folder = Path(tempfile.mkdtemp(prefix=f"n{size}-", dir=work))
    universe_csv = write_universe(folder, universe(size))
    cmd = [*checkout.hybrid, "backtest", str(backtest_profile(folder, data, universe_csv)), "--start", BACKTEST[0],
           "--end", BACKTEST[1], "--out", str(folder / "bt"), "--no-progress"]
    if checkout.has_option("backtest", "--warmup"):
        cmd += ["--warmup", "0"]
    bt = measure(cmd, cwd=folder)
    summary = json.loads((folder / "bt" / "summary.json").read_text())
    cycle = run_once(folder, write_profile(folder, str(universe_csv), data), checkout)
    return {"checkout": checkout.label, "symbols": size,
            "backtest_wall_s": bt.wall_s, "backtest_cpu_s": bt.cpu_s, "backtest_peak_rss_mib": bt.peak_rss_mib,
            "backtest_load_s": summary.get("timings", {}).get("load", float("nan")),  # in-process: read, gate, panel
            "backtest_bars": summary["bars"], "backtest_trades": summary["total"]["trades"],
            "backtest_loop_s": summary.get("timings", {}).get("loop", float("nan")),  # in-process: the engine loop
            "cycle_wall_s": cycle["wall_s"], "cycle_cpu_s": cycle["cpu_s"], "cycle_peak_rss_mib": cycle["peak_rss_mib"],
            "cycle": cycle["summary"]}


FIGURES = ["backtest_wall_s", "backtest_cpu_s", "backtest_peak_rss_mib", "backtest_load_s", "backtest_loop_s",
           "cycle_wall_s", "cycle_cpu_s", "cycle_peak_rss_mib"]


def growth(rows: list[dict[str, Any]]) -> list[str]:
    """Per figure: the marginal cost per 1,000 symbols of each step, and whether the cost grows no
    faster than linearly: the last step's marginal cost may not exceed the average cost per 1,000
    symbols at the largest size by more than 25% (a superlinear cost makes its last step dearer
    than its average; a fixed part, start-up or a floor of memory, makes it cheaper)."""
    lines = []
    rows = sorted(rows, key=lambda r: r["symbols"])
    for key in ("backtest_cpu_s", "backtest_peak_rss_mib", "cycle_cpu_s", "cycle_peak_rss_mib"):
        steps = [(b[key] - a[key]) / (b["symbols"] - a["symbols"]) * 1000 for a, b in zip(rows, rows[1:], strict=False)]
        if not steps:
            continue
        average = rows[-1][key] / rows[-1]["symbols"] * 1000
        linear = steps[-1] <= GROWTH_SLACK * average
        shown = ", ".join(f"{s:+.2f}" for s in steps)
        verdict = "no faster than linear" if linear else "FASTER THAN LINEAR"
        lines.append(f"{rows[0]['checkout']} {key}: per 1,000 more symbols {shown}; average per 1,000 at "
                     f"{rows[-1]['symbols']:,}: {average:.2f} ({verdict})")
    return lines


def verdicts(rows: list[dict[str, Any]]) -> list[str]:
    """Targets at 3,000 symbols (the largest size run at or above 3,000)."""
    out = []
    big = [r for r in rows if r["symbols"] >= 3000]
    for row in big:
        for what, limits in TARGETS.items():
            for key, limit in limits.items():
                value = row[f"{what}_{key}"]
                out.append(f"{row['checkout']} {row['symbols']} symbols {what} {key} {value:.2f} <= {limit:g}: "
                           f"{'OK' if value <= limit else 'MISSED'}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[500, 1000, 3000], help="universe sizes")
    parser.add_argument("--repeat", type=int, default=1, help="runs per size and checkout; medians are shown")
    parser.add_argument("--cache", type=Path, default=default_cache(), help="folder of the synthetic file")
    parser.add_argument("--layout", choices=list(LAYOUTS), default="date", help="rows order of the synthetic file")
    parser.add_argument("--make-file", action="store_true", help=argparse.SUPPRESS)
    add_vs_option(parser)
    args = parser.parse_args(argv)
    if args.make_file:
        make_synthetic_file(args.cache, args.layout)
        return 0
    data = synthetic_file(args.cache, args.layout)
    print(f"synthetic universe: {data} ({data.stat().st_size / 2**20:.0f} MiB)", file=sys.stderr)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="hybrid-bench-scale-") as tmp:
        work = Path(tmp)
        for size in sorted(args.sizes):
            runs = alternate(checkouts(args.vs), args.repeat, lambda co, i, size=size: run_size(co, work, data, size))
            for label, size_runs in runs.items():
                row = median_row(size_runs, FIGURES)
                rows.append(row)
                print(f"{label} {size} symbols: backtest {row['backtest_wall_s']:.2f} s wall, "
                      f"{row['backtest_cpu_s']:.2f} s CPU, {row['backtest_peak_rss_mib']:.0f} MiB; cycle "
                      f"{row['cycle_wall_s']:.2f} s wall, {row['cycle_cpu_s']:.2f} s CPU, "
                      f"{row['cycle_peak_rss_mib']:.0f} MiB", file=sys.stderr)
    print(table(rows, [("checkout", "{}"), ("symbols", "{:,}"), ("backtest_wall_s", "{:.2f}"),
                       ("backtest_cpu_s", "{:.2f}"), ("backtest_peak_rss_mib", "{:.0f}"), ("backtest_load_s", "{:.2f}"),
                       ("backtest_loop_s", "{:.2f}"), ("backtest_bars", "{:,}"),
                       ("backtest_trades", "{:,}"), ("cycle_wall_s", "{:.2f}"), ("cycle_cpu_s", "{:.2f}"),
                       ("cycle_peak_rss_mib", "{:.0f}")]))
    lines = [line for label in dict.fromkeys(r["checkout"] for r in rows)
             for line in growth([r for r in rows if r["checkout"] == label])] + verdicts(rows)
    print("\n".join(lines))
    print(load_line())
    print(json.dumps({"benchmark": "scale", "machine": machine(), "synthetic_file": str(data), "layout": args.layout,
                      "rows": rows,
                      "verdicts": lines}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
