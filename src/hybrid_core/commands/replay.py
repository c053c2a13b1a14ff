"""``hybrid replay PROFILE``: the live cycle over history, session by session, with a simulated clock."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .. import exit_codes
from ..errors import HybridError
from ._dates import SESSION_DATE

if TYPE_CHECKING:
    import pandas as pd

    from ..live.runner import RunSession


@click.command("replay")
@click.argument("profile_path", metavar="PROFILE", type=click.Path(dir_okay=False))
@click.option("--start", required=True, type=SESSION_DATE, help="First session of the replay (bars load from here).")
@click.option("--end", required=True, type=SESSION_DATE, help="Last session of the replay.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="Folder for the order-events audit log (order_events.csv), the state database, the "
                   "heartbeat and the round-trip table (round_trips.csv) (default: the profile's outputs).")
@click.option("--warmup", type=click.IntRange(0), default=None,
              help="Sessions of history before START that warm the strategies up (default: the profile's "
                   "backtest.warmup, else the longest strategy lookback; 0: cold start).")
@click.option("--compare-backtest", is_flag=True,
              help="Also backtest the same window and print the first decision where the two differ.")
@click.option("--log-level", default="WARNING", show_default=True, help="Log level of the cycles.")
@click.option("--json-logs", is_flag=True, help="One JSON object per log line.")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a terminal).")
@click.pass_obj
def command(obj, profile_path: str, start: pd.Timestamp, end: pd.Timestamp, out_dir: str | None,  # type: ignore[no-untyped-def]
            warmup: int | None, compare_backtest: bool, log_level: str, json_logs: bool,
            progress: bool | None) -> None:
    """Replay the real live cycle once per session over [START, END] through the paper broker.

    Each cycle sees only bars up to its session (and the same warm-up bars as a backtest) and
    orders fill at the next open, exactly as in `hybrid backtest`. Interrupted, it resumes from
    the state database where it stopped; a folder holding another profile's or window's replay
    is refused.
    """
    from ..account.ledger import ROUND_TRIP_COLUMNS, describe_round_trips
    from ..data.loading import policy_for
    from ..engine.backtest import ROUND_TRIPS_FILE, default_warmup, load_window, write_csv
    from ..engine.replay import replay
    from ..live.runner import RunOptions, RunSession, StopFlag
    from ..ops.audit import DEFAULT_FILE
    from ..ops.logging_setup import configure_logging
    from ..profile import build_components, load_profile

    profile = load_profile(profile_path)
    configure_logging(json_logs=json_logs, level=log_level)
    first, last = start, end
    if last < first:
        raise HybridError(f"--end {end.date()} is before --start {start.date()}")
    options = RunOptions(durable=False, simulated_clock=True)
    components = build_components(profile, obj.host.registry)
    sessions = warmup if warmup is not None else profile.backtest.warmup
    if sessions is None:
        sessions = default_warmup(components.strategies)
    # the bars first, through the quality gate: refused data leaves --out untouched
    window = load_window(components.data_source, components.strategies, first, last, sessions,
                         quality=policy_for(profile.data.quality, live=False))
    if out_dir:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        options.trade_log = str(out / DEFAULT_FILE)
        options.state_db = str(out / "state.sqlite")
        options.health_file = str(out / "hybrid.health")
    stop = StopFlag()
    stop.install()
    with RunSession(profile, obj.host.registry, options, components=components) as session:
        result = replay(session, first, last, warmup=sessions, progress=progress, stop=stop, window=window)
        trades_path = session.state_path.parent / ROUND_TRIPS_FILE
        write_csv(trades_path, result.trades[ROUND_TRIP_COLUMNS])
        click.echo(f"replayed {len(result.sessions)} session(s) {first.date()}..{last.date()}"
                   f"{f' (resumed: {result.skipped} already done)' if result.skipped else ''}; "
                   f"{describe_round_trips(result.trades)}; audit log {session.audit.path}; "
                   f"round trips {trades_path}")
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
                      commission=float(getattr(broker_params, "commission", 0.0)), start=result.start,
                      profile_name=session.profile.name, progress=False)
    diff = compare_trades(result.trades, bt.trades)
    if diff is None and not len(bt.trades):
        click.echo("replay and backtest both made 0 trades: nothing was compared; widen the window "
                   "(or check the warm-up) before trusting this profile's parity")
        raise SystemExit(exit_codes.UNHEALTHY)  # a check that says no (docs: Exit codes)
    if diff is None:
        still = int((bt.trades["exit_reason"] == "end_of_data").sum())
        click.echo(f"replay matches the backtest: {len(bt.trades) - still} round trip(s) and {still} open "
                   f"position(s), same symbols, dates, reasons, quantities and prices (1e-9 relative)")
        return
    click.echo(diff.describe())
    decision_day = window.dates[window.dates < diff.date]
    if len(decision_day):
        numbers = signal_numbers(session.components.strategies, window, diff.symbol, decision_day[-1],
                                 session.cycle.window_start(decision_day[-1]))
        click.echo(f"  signal at the close before: {json.dumps(numbers, default=str)}")
    raise SystemExit(exit_codes.UNHEALTHY)
