"""``hybrid backtest PROFILE --start DATE --end DATE --out DIR``: a profile's own components over history."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from ..errors import HybridError
from ._numbers import BASIS_POINTS, CASH, FRACTION


def _date(value: str | None, option: str) -> Any:
    import pandas as pd

    if value is None:
        return None
    try:
        return pd.Timestamp(value).normalize()
    except (ValueError, TypeError):
        raise HybridError(f"{option} {value!r} is not a date; use YYYY-MM-DD") from None


@click.command("backtest")
@click.argument("profile_path", metavar="PROFILE", type=click.Path(dir_okay=False))
@click.option("--start", metavar="DATE", help="First session (default: the profile's backtest.start).")
@click.option("--end", metavar="DATE", help="Last session (default: the profile's backtest.end).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder for round_trips.csv, equity.csv, summary.json and report.html.")
@click.option("--cash", type=CASH, default=None, help="Initial cash (default: the profile's backtest.cash).")
@click.option("--slippage-bps", type=BASIS_POINTS, default=None, help="Slippage in basis points (default: profile).")
@click.option("--commission", type=FRACTION, default=None,
              help="Commission as a fraction of each fill's value (default: profile).")
@click.option("--warmup", type=click.IntRange(0), default=None,
              help="Sessions of history before START that warm the strategies up (default: the profile's "
                   "backtest.warmup, else the longest strategy lookback; 0: cold start).")
@click.option("--lookahead-cuts", type=click.IntRange(0), default=3, show_default=True,
              help="Cut dates of the lookahead check run before reporting (0 skips it, with a warning).")
@click.option("--engine", "engine_name", default="native", show_default=True, metavar="NAME",
              help="Backtest engine: native (hybrid's own) or one a plugin adds, e.g. backtrader "
                   "(`hybrid plugins` lists them).")
@click.option("--log-level", default="WARNING", show_default=True, help="Log level.")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a terminal).")
@click.pass_obj
def command(obj: Any, profile_path: str, start: str | None, end: str | None, out_dir: str,
            cash: float | None, slippage_bps: float | None, commission: float | None, warmup: int | None,
            lookahead_cuts: int, engine_name: str, log_level: str, progress: bool | None) -> None:
    """Backtest a run profile: the very strategies and risk rules of a live run, over history.

    Execution follows the trading contract (STRATEGIES.md): decisions at the close, fills at
    each symbol's next open (sells first), stop-loss from the bar after entry, time stop after
    5 own bars, equities and 24/7 crypto in one account; every risk rule and guard vets orders
    as in a live cycle. Strategies start warm (bars before START feed their indicators, no order
    is decided before START) unless the warm-up is 0. Before reporting, each strategy must pass
    a quick lookahead check; a fixed equity universe draws a survivorship-bias warning.
    ``--engine`` runs the same profile through another engine (same outputs), e.g. Backtrader.
    """
    from loguru import logger

    from ..contracts import BacktestRequest
    from ..data.loading import policy_for
    from ..engine.backtest import (
        compute_signals,
        default_warmup,
        load_window,
        lookahead_check,
        survivorship_warnings,
        write_outputs,
    )
    from ..engine.benchmark import benchmark_curve
    from ..ops.atomic import staged_directory
    from ..ops.logging_setup import configure_logging
    from ..profile import build_components, load_profile

    t0 = time.perf_counter()
    configure_logging(level=log_level)
    profile = load_profile(profile_path)
    spec = profile.backtest
    first = _date(start if start is not None else spec.start, "--start")
    last = _date(end if end is not None else spec.end, "--end")
    if first is not None and last is not None and last < first:
        raise HybridError(f"--end {last.date()} is before --start {first.date()}")
    components = build_components(profile, obj.host.registry)
    from ..profile import writable_file_problem

    unwritable = writable_file_problem(Path(out_dir) / "summary.json")
    if unwritable:  # said before the backtest runs, not after
        raise HybridError(f"--out {out_dir}: {unwritable}")
    strategies, rules = components.strategies, components.risk_rules
    engine = _engine(obj.host.registry, engine_name)
    engine.check(strategies, rules)
    t_setup = time.perf_counter()
    sessions = warmup if warmup is not None else spec.warmup
    if sessions is None:
        sessions = default_warmup(strategies)
    window = load_window(components.data_source, strategies, first, last, sessions,
                         quality=policy_for(profile.data.quality, live=False))
    panel = window.panel
    t_load = time.perf_counter()

    notes = survivorship_warnings(strategies, window.trading)
    if window.note:
        notes.append(window.note)
    for line in notes:
        logger.warning(line)
    traded = None
    if lookahead_cuts > 0:
        # the cuts are checked against the very signals the engine trades on: each strategy runs
        # once over the window, not once more over its first half; the check's cut runs reuse the
        # memory of the info frames, which neither reads
        traded = {s.name: compute_signals(s, panel, with_info=False) for s in strategies}
        checks = lookahead_check(strategies, panel, n_cuts=lookahead_cuts, signals=traded)
    else:
        checks = ["lookahead check skipped (--lookahead-cuts 0): results are unchecked for lookahead bias"]
        logger.warning(checks[0])
    t_check = time.perf_counter()

    initial = float(cash if cash is not None else spec.cash)
    result = engine.run(BacktestRequest(
        panel, strategies, rules, cash=initial,
        slippage_bps=float(slippage_bps if slippage_bps is not None else spec.slippage_bps),
        commission=float(commission if commission is not None else spec.commission), start=window.start,
        profile_name=profile.name, progress=progress, signals=traded))
    if result.refused:
        notes.append(f"risk rules refused {len(result.refused)} order(s), e.g. {result.refused[0]}")
        for line in result.refused:
            logger.info("Order refused: {line}", line=line)
    dates = result.equity.index
    benchmark = benchmark_curve(spec.benchmark, panel, strategies, components.data_source, dates, initial,
                                quality=policy_for(profile.data.quality, live=False))
    meta = {
        "profile": profile.name, "profile_path": str(profile.path), "engine": engine_name,
        "start": str(dates[0].date()),
        "end": str(dates[-1].date()), "dates": len(dates), "symbols": len(panel.symbols), "bars": result.bars,
        "warmup": sessions, "refused_orders": len(result.refused),
        "strategies_run": result.strategies, "lookahead": checks,
        "timings": {"setup": t_setup - t0, "load": t_load - t_setup, "lookahead": t_check - t_load,
                    **result.timings},
    }
    out = Path(out_dir)
    title = f"Backtest {profile.name} {meta['start']}..{meta['end']}"
    with staged_directory(out) as stage:  # --out gets the files only if all of them were written
        summary = write_outputs(stage, result, panel, title=title, meta=meta, notes=[*notes, *checks],
                                started=t0, benchmark=benchmark)
    _print_summary(summary, out, result.trades)


def _engine(registry: Any, name: str) -> Any:
    """The backtest engine called ``name`` (bare or ``plugin:name``); an unknown name is one line
    listing the installed ones (a :class:`~hybrid_core.errors.ProfileError`, exit 2)."""
    return registry.get("backtest_engine", name).factory()


def _print_summary(summary: dict[str, Any], out: Path, trades: Any) -> None:
    from ..account.ledger import describe_round_trips
    from ..engine.backtest import ROUND_TRIPS_FILE

    total = summary["total"]

    def pct(value: Any) -> str:
        return "n/a" if value is None or value != value else f"{value * 100:.2f}%"

    def num(value: Any) -> str:
        return "n/a" if value is None or value != value else f"{value:.2f}"

    click.echo(f"backtest {summary['profile']} {summary['start']}..{summary['end']}: "
               f"{summary['dates']} dates, {summary['symbols']} symbols; {describe_round_trips(trades)}")
    click.echo(f"  final value {total['final_value']:,.2f}  CAGR {pct(total['cagr'])}  "
               f"Sharpe {total['sharpe']:.2f}  max drawdown {pct(total['max_drawdown'])}  "
               f"win rate {pct(total['win_rate'])}")
    bench = summary.get("benchmark")
    if bench:
        click.echo(f"  benchmark ({bench['name']}): CAGR {pct(bench['cagr'])}  excess return "
                   f"{pct(total['excess_return'])}  beta {num(total['beta'])}  alpha {pct(total['alpha'])}  "
                   f"information ratio {num(total['information_ratio'])}")
    for name, stats in summary.get("strategies", {}).items():
        click.echo(f"  {name}: PnL {stats['pnl']:,.2f} ({pct(stats['contribution'])} of initial cash), "
                   f"{stats['trades']} trades")
    timings = summary["timings"]
    click.echo(f"  {summary.get('engine', 'native')} engine {timings['engine']:.2f}s (signals "
               f"{timings['signals']:.2f}s, loop {timings['loop']:.2f}s), load {timings['load']:.2f}s, "
               f"total {timings['total']:.2f}s")
    click.echo(f"  wrote {out}/{ROUND_TRIPS_FILE}, equity.csv, summary.json, report.html")
