"""``hybrid sweep PROFILE GRID.yaml --start D --end D --out DIR``: many backtests of one profile on Dask."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ._dates import SESSION_DATE


@click.command("sweep")
@click.argument("profile_path", metavar="PROFILE", type=click.Path(dir_okay=False))
@click.argument("grid_path", metavar="GRID.yaml", type=click.Path(dir_okay=False))
@click.option("--start", type=SESSION_DATE, help="First session (default: the profile's backtest.start).")
@click.option("--end", type=SESSION_DATE, help="Last session (default: the profile's backtest.end).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder for results.parquet/csv, returns.parquet, sweep.json, report.html (and sweep.sqlite, "
                   "which lets a rerun skip finished sets).")
@click.option("--workers", type=click.IntRange(1), default=None,
              help="Worker processes of the embedded Dask cluster (default: the cores).")
@click.option("--scheduler", metavar="ADDRESS", default=None,
              help="Run on the Dask cluster whose scheduler is at ADDRESS (tcp://host:8786) instead.")
@click.option("--walk-forward", "walk_forward", metavar="train=N,test=M[,anchored]", default=None,
              help="Also run a walk-forward analysis with windows of N and M sessions.")
@click.option("--lookahead-cuts", type=click.IntRange(0), default=3, show_default=True,
              help="Cut dates of the lookahead check of each strategy variant (0 skips it).")
@click.option("--log-level", default="WARNING", show_default=True, help="Log level (INFO shows each set start).")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a terminal).")
@click.pass_obj
def command(obj: Any, profile_path: str, grid_path: str, start: Any, end: Any, out_dir: str, workers: int | None,
            scheduler: str | None, walk_forward: str | None, lookahead_cuts: int, log_level: str,
            progress: bool | None) -> None:
    """Backtest every parameter set of GRID.yaml on PROFILE, in parallel on Dask, and report which set
    is best, how likely that is luck (Deflated Sharpe Ratio, PBO), and the benchmark beside it.

    Every set is validated like a profile before anything runs. With no --scheduler, an embedded
    cluster of worker processes runs on this machine; a worker that dies is replaced and its sets run
    again; a set that fails is recorded with its error. Rerunning into the same --out skips the sets
    already finished. See docs/sweeps.md.
    """
    from ..ops.logging_setup import configure_logging
    from ..profile import load_profile
    from ..research.grid import load_plan
    from ..research.outputs import write_sweep_outputs
    from ..research.sweep import SweepRequest, require_dates, run_sweep
    from ..research.variant_backtest import DateSpan
    from ..research.walkforward import WalkForwardSpec

    if workers is not None and scheduler:
        raise click.UsageError("give --workers (an embedded cluster) or --scheduler (a running one), not both")
    configure_logging(level=log_level)
    # a ProfileError prints one line per problem (hybrid_core.failures): every bad set at once
    profile = load_profile(profile_path)
    plan = load_plan(grid_path)
    spec = profile.backtest
    window = DateSpan(start if start is not None else _stamp(spec.start, "backtest.start"),
                      end if end is not None else _stamp(spec.end, "backtest.end"))
    require_dates(window)
    request = SweepRequest(profile_path=Path(profile_path), plan=plan, out_dir=Path(out_dir), window=window,
                           workers=workers, scheduler=scheduler,
                           walk_forward=WalkForwardSpec.parse(walk_forward) if walk_forward else None,
                           lookahead_cuts=lookahead_cuts, progress=progress, log_level=log_level.upper())
    result = run_sweep(request, obj.host.registry)
    summary = write_sweep_outputs(result)
    _print_summary(summary, Path(out_dir))


def _stamp(value: str | None, key: str) -> Any:
    if value is None:
        return None
    return SESSION_DATE.convert(value, None, None) if value else None


def _print_summary(summary: dict[str, Any], out: Path) -> None:
    def num(value: Any, pct: bool = False) -> str:
        if value is None or value != value:
            return "n/a"
        return f"{value * 100:.2f}%" if pct else f"{value:.3f}"

    counts = summary["counts"]
    click.echo(f"sweep {summary['profile']} {summary['start']}..{summary['end']}: {counts['sets']} sets "
               f"({counts['ran']} run, {counts['skipped']} already finished, {counts['failed']} failed), "
               f"{summary['method']}, metric {summary['metric']}")
    best = summary.get("best")
    if best:
        values = ", ".join(f"{k}={v!r}" for k, v in best["parameters"].items())
        m = best["metrics"]
        click.echo(f"  best set {best['set_id']} ({values}): {summary['metric']} {num(best[summary['metric']])}, "
                   f"CAGR {num(m.get('cagr'), True)}, Sharpe {num(m.get('sharpe'))}, max drawdown "
                   f"{num(m.get('max_drawdown'), True)}, excess return {num(m.get('excess_return'), True)}")
    bench = summary.get("benchmark") or {}
    if bench:
        click.echo(f"  benchmark ({bench.get('name')}): CAGR {num(bench.get('cagr'), True)}, Sharpe "
                   f"{num(bench.get('sharpe'))}, max drawdown {num(bench.get('max_drawdown'), True)}")
    dsr, pbo = summary.get("deflated_sharpe"), summary.get("pbo")
    if dsr or pbo:
        trials = f" ({dsr['trials']} trials)" if dsr else ""
        splits = f" ({pbo['combinations']:,} CSCV splits)" if pbo else ""
        click.echo(f"  overfitting: deflated Sharpe ratio {num(dsr and dsr['dsr'])}{trials}, "
                   f"PBO {num(pbo and pbo['pbo'], True)}{splits}")
    if summary.get("overfitting_note"):
        click.echo(f"  {summary['overfitting_note']}")
    walk = summary.get("walk_forward")
    if walk:
        total = walk["total"]
        click.echo(f"  walk-forward {walk['walk_forward']}: {walk['folds']} folds, out-of-sample {walk['start']}.."
                   f"{walk['end']}: CAGR {num(total['cagr'], True)}, Sharpe {num(total['sharpe'])}, excess return "
                   f"{num(total.get('excess_return'), True)}")
    timings = summary["timings"]
    click.echo(f"  sets {timings.get('sets', 0):.1f}s (cluster start {timings.get('cluster_start', 0):.1f}s, "
               f"versions and bars {timings.get('versions_and_bars', 0):.1f}s), total {timings.get('total', 0):.1f}s")
    files = "results.parquet, results.csv, returns.parquet, sweep.json, report.html"
    if walk:
        files += ", walk_forward.csv, oos_equity.csv"
    click.echo(f"  wrote {out}/{{{files}}}")
