"""``hybrid replay PROFILE``: the live cycle over history, session by session, with a simulated clock."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..errors import HybridError
from ._dates import SESSION_DATE

if TYPE_CHECKING:
    import pandas as pd

    from ..engine.runner import RunSession


@click.command("replay")
@click.argument("profile_path", metavar="PROFILE", type=click.Path(dir_okay=False))
@click.option("--start", required=True, type=SESSION_DATE, help="First session of the replay (bars load from here).")
@click.option("--end", required=True, type=SESSION_DATE, help="Last session of the replay.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="Folder for the trade log, state database, heartbeat and replay_trades.csv "
                   "(default: the profile's outputs).")
@click.option("--compare-backtest", is_flag=True,
              help="Also backtest the same window and print the first decision where the two differ.")
@click.option("--log-level", default="WARNING", show_default=True, help="Log level of the cycles.")
@click.option("--json-logs", is_flag=True, help="One JSON object per log line.")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a terminal).")
@click.pass_obj
def command(obj, profile_path: str, start: pd.Timestamp, end: pd.Timestamp, out_dir: str | None,  # type: ignore[no-untyped-def]
            compare_backtest: bool, log_level: str, json_logs: bool, progress: bool | None) -> None:
    """Replay the real live cycle once per session over [START, END] through the paper broker.

    Each cycle sees only bars up to its session and orders fill at the next open, exactly as
    in `hybrid backtest`. Interrupted, it resumes from the state database where it stopped.
    """
    from ..engine.replay import replay
    from ..engine.runner import RunOptions, RunSession, StopFlag
    from ..ops.logging_setup import configure_logging
    from ..profile import load_profile

    profile = load_profile(profile_path)
    configure_logging(json_logs=json_logs, level=log_level)
    first, last = start, end
    if last < first:
        raise HybridError(f"--end {end.date()} is before --start {start.date()}")
    options = RunOptions(history_start=first, durable=False, simulated_clock=True)
    if out_dir:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        options.trade_log = str(out / "trades.csv")
        options.state_db = str(out / "state.sqlite")
        options.health_file = str(out / "hybrid.health")
    stop = StopFlag()
    stop.install()
    with RunSession(profile, obj.host.registry, options) as session:
        result = replay(session, first, last, progress=progress, stop=stop)
        trades_path = session.state_path.parent / "replay_trades.csv"
        result.trades.to_csv(trades_path, index=False, date_format="%Y-%m-%d")
        counts = result.trades["exit_reason"].value_counts().to_dict() if len(result.trades) else {}
        click.echo(f"replayed {len(result.sessions)} session(s) {first.date()}..{last.date()}"
                   f"{f' (resumed: {result.skipped} already done)' if result.skipped else ''}; "
                   f"{len(result.trades)} trade(s) {json.dumps(counts)}; trade log "
                   f"{session.audit.path}; round trips {trades_path}")
        if compare_backtest:
            _compare(session, result)


def _compare(session: RunSession, result) -> None:  # type: ignore[no-untyped-def]
    from ..engine.backtest import run_backtest
    from ..engine.replay import compare_trades, signal_numbers

    broker_params = session.components.broker.params
    cash = float(getattr(broker_params, "initial_cash", session.profile.backtest.cash))
    window = result.panel
    bt = run_backtest(window, session.components.strategies, session.components.risk_rules, cash=cash,
                      slippage_bps=float(getattr(broker_params, "slippage_bps", 0.0)),
                      commission=float(getattr(broker_params, "commission", 0.0)), progress=False)
    diff = compare_trades(result.trades, bt.trades)
    if diff is None:
        click.echo(f"replay matches the backtest: {len(bt.trades)} trade(s), same symbols, dates, reasons, "
                   f"quantities and prices (1e-9 relative)")
        return
    click.echo(diff.describe())
    decision_day = window.dates[window.dates < diff.date]
    if len(decision_day):
        numbers = signal_numbers(session.components.strategies, window, diff.symbol, decision_day[-1])
        click.echo(f"  signal at the close before: {json.dumps(numbers, default=str)}")
    raise SystemExit(1)
