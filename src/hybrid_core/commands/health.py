"""``hybrid health``: exit 0 when the run's heartbeat is fresh and error-free, 1 otherwise.

Prints one line saying which (or a JSON object with ``--json``). Meant for a Kubernetes
liveness probe, a Docker HEALTHCHECK or a monitoring cron job.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any

import click

from ..ops.heartbeat import DEFAULT_MAX_AGE_S, HEALTH_FILE_ENV, check_health, default_health_file


class Seconds(click.ParamType):
    """A finite number of seconds greater than zero (``inf`` and ``nan`` are refused too)."""

    name = "SECONDS"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            seconds = math.nan
        if not (math.isfinite(seconds) and seconds > 0):
            self.fail(f"{value!r} is not a number of seconds greater than 0", param, ctx)
        return seconds


SECONDS = Seconds()


@click.command("health")
@click.option("--file", "path", type=click.Path(), default=default_health_file,
              show_default=f"${HEALTH_FILE_ENV} or /tmp/hybrid_trader.health",
              help="Heartbeat file written by `hybrid run`.")
@click.option("--max-age", "max_age", type=SECONDS,
              default=DEFAULT_MAX_AGE_S, show_default=True, envvar="HYBRID_HEALTH_MAX_AGE",
              help="Seconds after which the heartbeat is stale. Loop mode refreshes it every 60 s; "
                   "for one cycle a day from cron use 93600 (26 h).")
@click.option("--json", "as_json", is_flag=True, help="Print the verdict as one JSON object.")
def command(path: str, max_age: float, as_json: bool) -> None:
    """Check the heartbeat file: exit 0 if healthy, 1 if stale, missing, unreadable or in error.

    Any content or state of the file gets a verdict, 0 or 1 (a folder, a pipe, random bytes,
    an empty or huge file are unhealthy); `degraded` (entries halted) is healthy, its reason shown.
    """
    result = check_health(path, max_age)
    if as_json:
        click.echo(json.dumps({"ok": result.ok, "line": result.line, "file": str(path),
                               "age_s": result.age_s, "heartbeat": result.heartbeat}, default=str))
    else:
        click.echo(result.line)
    if result.exit_code:
        # SystemExit, not ctx.exit(): a non-standalone click main would swallow the code.
        sys.exit(result.exit_code)
