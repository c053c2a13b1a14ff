"""``hybrid dashboard``: start the Streamlit dashboard (replaces this process with streamlit)."""

from __future__ import annotations

import importlib.util
import os
import shlex
import sys
from pathlib import Path

import click

from hybrid_core.dashboard.options import DEFAULT_REFRESH_S, DashboardOptions
from hybrid_core.ops.heartbeat import DEFAULT_MAX_AGE_S, default_health_file

APP = Path(__file__).resolve().parent.parent / "dashboard" / "app.py"


def streamlit_argv(options: DashboardOptions, port: int, address: str) -> list[str]:
    """The ``python -m streamlit run`` command line serving the dashboard headless."""
    return [sys.executable, "-m", "streamlit", "run", str(APP),
            "--server.headless", "true", "--server.port", str(port), "--server.address", address,
            "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
            "--client.toolbarMode", "viewer",
            "--", *options.to_argv()]


@click.command("dashboard")
@click.option("--trades", type=click.Path(path_type=Path), default=Path("order_events.csv"), show_default=True,
              help="Order-events audit log, or a backtest/replay output folder or round_trips.csv.")
@click.option("--health", type=click.Path(path_type=Path), default=None,
              help="Heartbeat file [default: $HYBRID_HEALTH_FILE or /tmp/hybrid_trader.health].")
@click.option("--backtest", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Backtest output directory (equity.csv, summary.json).")
@click.option("--state", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="State database (SQLite) whose last cycle's closes mark the open positions.")
@click.option("--port", type=click.IntRange(1, 65535), default=8501, show_default=True)
@click.option("--address", default="127.0.0.1", show_default=True,
              help="Interface to listen on (0.0.0.0 to serve other machines).")
@click.option("--refresh", type=click.FloatRange(min=1), default=DEFAULT_REFRESH_S, show_default=True,
              help="Seconds between automatic refreshes.")
@click.option("--max-age", type=click.FloatRange(min=1), default=DEFAULT_MAX_AGE_S, show_default=True,
              help="Heartbeat age (s) beyond which the run shows STALE.")
@click.option("--print-command", is_flag=True, help="Print the streamlit command instead of running it.")
def command(trades: Path, health: Path | None, backtest: Path | None, state: Path | None, port: int,
            address: str, refresh: float, max_age: float, print_command: bool) -> None:
    """Serve the live dashboard (status, PnL tiles and charts, trades, positions, backtest)."""
    options = DashboardOptions(trades=trades.absolute(),
                               health=(health or Path(default_health_file())).absolute(),
                               backtest=backtest.absolute() if backtest else None,
                               state=state.absolute() if state else None,
                               refresh=refresh, max_age=max_age)
    argv = streamlit_argv(options, port, address)
    if print_command:
        click.echo(shlex.join(argv))
        return
    if importlib.util.find_spec("streamlit") is None:
        raise click.ClickException("streamlit is not installed; run: pip install 'hybrid-core[dashboard]'")
    click.echo(f"hybrid dashboard on http://{address}:{port} (Ctrl-C to stop)", err=True)
    sys.stdout.flush()
    os.execv(argv[0], argv)


if __name__ == "__main__":
    command()
