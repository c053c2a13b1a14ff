"""``hybrid run PROFILE``: the live (or paper) trading loop, or one cycle with ``--once``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ._dates import SESSION_DATE

if TYPE_CHECKING:
    from collections.abc import Sequence

    import pandas as pd

    from ..ops.metrics import RunMetrics
    from ..ops.notify_targets import NotifyTarget
    from ..ops.observer import RunObservers


@click.command("run")
@click.argument("profile_path", metavar="PROFILE", type=click.Path(dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Compute signals and orders, send nothing to the broker.")
@click.option("--once", is_flag=True, help="Run one cycle, then exit.")
@click.option("--json-logs", is_flag=True, help="One JSON object per log line (for log shippers).")
@click.option("--log-file", type=click.Path(dir_okay=False), help="Also log to this rotated file.")
@click.option("--log-level", default="INFO", show_default=True, help="TRACE, DEBUG, INFO, WARNING, ERROR.")
@click.option("--trade-log", type=click.Path(dir_okay=False),
              help="Order-events audit log (default: outputs.trade_log of the profile, else order_events.csv).")
@click.option("--as-of", "as_of", type=SESSION_DATE,
              help="Decide at the close of this session instead of the latest bar (with --once).")
@click.option("--metrics-port", type=click.IntRange(0, 65535),
              help="Serve Prometheus metrics on this port at /metrics (loop mode; 0 picks a free port).")
@click.option("--metrics-host", default="0.0.0.0", show_default=True, help="Address the metrics server listens on.")
@click.option("--metrics-textfile", type=click.Path(dir_okay=False),
              help="Write the metrics to this *.prom file after every cycle (node_exporter's textfile collector).")
@click.pass_obj
def command(obj, profile_path: str, dry_run: bool, once: bool, json_logs: bool,  # type: ignore[no-untyped-def]
            log_file: str | None, log_level: str, trade_log: str | None, as_of: pd.Timestamp | None,
            metrics_port: int | None, metrics_host: str, metrics_textfile: str | None) -> None:
    """Trade a run profile: load bars, signals, risk rules, orders, audit, heartbeat.

    Paper unless TRADING_MODE=LIVE and LIVE_TRADING_ENABLED=true. Without --once the run
    loops on the profile's schedule and stops cleanly on Ctrl-C or SIGTERM. The profile's
    notify: targets are told of fills, refusals, guards, errors, stale data, start and stop.
    """
    from ..live.runner import RunOptions, RunSession, StopFlag, run_loop
    from ..ops.logging_setup import configure_logging
    from ..ops.notify_targets import resolve_targets, target_secrets
    from ..profile import load_profile

    if once and metrics_port is not None:
        raise click.UsageError("--metrics-port serves metrics while the loop runs; a --once run exits at once, "
                               "so write them with --metrics-textfile PATH.prom")
    if metrics_textfile and not metrics_textfile.endswith(".prom"):
        raise click.BadParameter("the name must end in .prom (node_exporter's textfile collector reads only "
                                 "*.prom files)", param_hint="--metrics-textfile")
    profile = load_profile(profile_path)
    targets = resolve_targets(profile.notify)
    configure_logging(json_logs=json_logs, log_file=log_file or profile.outputs.log_file, level=log_level,
                      secrets=target_secrets(targets))
    observer, metrics = run_observers(targets, metrics=metrics_port is not None or bool(metrics_textfile),
                                      textfile=metrics_textfile)
    when = as_of
    try:
        session = RunSession(profile, obj.host.registry, RunOptions(dry_run=dry_run, trade_log=trade_log),
                             observer=observer)
    except BaseException as exc:  # cannot start (lock held, broker misconfigured): tell the operators too
        observer.run_stopped("failed", exc)
        observer.close()
        raise
    with session:
        if metrics is not None and metrics_port is not None:
            port = metrics.serve(metrics_port, metrics_host)
            click.echo(f"metrics on http://{metrics_host}:{port}/metrics", err=True)
        if once:
            session.stop_reason = "--once"
            result = session.run_cycle(when)
            click.echo(f"cycle {result.cycle} at {result.as_of.date() if result.as_of is not None else '-'}: "
                       f"{result.signals_count} signal(s), {len(result.orders)} order(s), "
                       f"{len(result.fills)} fill(s), {len(result.refused)} refused, {len(result.unknown)} unknown; "
                       f"portfolio value "
                       f"{result.portfolio_value:,.2f}{' (dry run: nothing sent)' if dry_run else ''}")
            if result.health != "ok":
                click.echo(f"health {result.health}: {'; '.join(result.notes)}")
            return
        stop = StopFlag()
        stop.install()
        cycles = run_loop(session, stop)
        session.stop_reason = f"{stop.signal_name} received" if stop.signal_name else "loop ended"
        click.echo(f"stopped after {cycles} cycle(s)")


def run_observers(targets: Sequence[NotifyTarget], *, metrics: bool, textfile: str | None = None
                  ) -> tuple[RunObservers, RunMetrics | None]:
    """The run's notifier (when there are targets) and metrics (when asked for), behind one observer.

    The notifier comes first, so at exit it has queued its last messages before the metrics
    are written, and it is closed (its queue drained) before the metrics write their last file.
    """
    from ..ops.metrics import RunMetrics
    from ..ops.notify import Notifier
    from ..ops.observer import RunObservers

    made = RunMetrics(textfile=textfile) if metrics else None
    notifier = Notifier(targets, on_result=made.notification_result if made else None) if targets else None
    return RunObservers([o for o in (notifier, made) if o is not None]), made
