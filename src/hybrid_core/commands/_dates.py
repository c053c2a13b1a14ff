"""A click parameter type for session dates (YYYY-MM-DD), shared by the commands."""

from __future__ import annotations

from typing import Any

import click


class SessionDate(click.ParamType):
    """A date on the command line, normalised to midnight; a bad value is a usage error (exit 2)."""

    name = "DATE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        import pandas as pd  # imported on use: `hybrid health` (a liveness probe) must start fast

        if isinstance(value, pd.Timestamp):
            return value.normalize()
        try:
            stamp = pd.Timestamp(str(value))
        except (ValueError, TypeError):
            stamp = pd.NaT
        if stamp is pd.NaT or pd.isna(stamp):
            self.fail(f"{value!r} is not a date; use YYYY-MM-DD", param, ctx)
        return stamp.normalize()


SESSION_DATE = SessionDate()
