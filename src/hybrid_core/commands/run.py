"""``hybrid run PROFILE``: the live (or paper) trading loop, or one cycle with ``--once``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ._dates import SESSION_DATE

if TYPE_CHECKING:
    import pandas as pd


@click.command("run")
@click.argument("profile_path", metavar="PROFILE", type=click.Path(dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Compute signals and orders, send nothing to the broker.")
@click.option("--once", is_flag=True, help="Run one cycle, then exit.")
@click.option("--json-logs", is_flag=True, help="One JSON object per log line (for log shippers).")
@click.option("--log-file", type=click.Path(dir_okay=False), help="Also log to this rotated file.")
@click.option("--log-level", default="INFO", show_default=True, help="TRACE, DEBUG, INFO, WARNING, ERROR.")
@click.option("--trade-log", type=click.Path(dir_okay=False),
              help="Trade audit CSV (default: outputs.trade_log of the profile, else trades.csv).")
@click.option("--as-of", "as_of", type=SESSION_DATE,
              help="Decide at the close of this session instead of the latest bar (with --once).")
@click.pass_obj
def command(obj, profile_path: str, dry_run: bool, once: bool, json_logs: bool,  # type: ignore[no-untyped-def]
            log_file: str | None, log_level: str, trade_log: str | None, as_of: pd.Timestamp | None) -> None:
    """Trade a run profile: load bars, signals, risk rules, orders, audit, heartbeat.

    Paper unless TRADING_MODE=LIVE and LIVE_TRADING_ENABLED=true. Without --once the run
    loops on the profile's schedule and stops cleanly on Ctrl-C or SIGTERM.
    """
    from ..engine.runner import RunOptions, RunSession, StopFlag, run_loop
    from ..ops.logging_setup import configure_logging
    from ..profile import load_profile

    profile = load_profile(profile_path)
    configure_logging(json_logs=json_logs, log_file=log_file or profile.outputs.log_file, level=log_level)
    when = as_of
    with RunSession(profile, obj.host.registry, RunOptions(dry_run=dry_run, trade_log=trade_log)) as session:
        if once:
            result = session.run_cycle(when)
            click.echo(f"cycle {result.cycle} at {result.as_of.date() if result.as_of is not None else '-'}: "
                       f"{result.signals_count} signal(s), {len(result.orders)} order(s), "
                       f"{len(result.fills)} fill(s), {len(result.refused)} refused; portfolio value "
                       f"{result.portfolio_value:,.2f}{' (dry run: nothing sent)' if dry_run else ''}")
            return
        stop = StopFlag()
        stop.install()
        cycles = run_loop(session, stop)
        click.echo(f"stopped after {cycles} cycle(s)")
