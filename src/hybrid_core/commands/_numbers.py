"""A click parameter type for money and rates: finite numbers in a range (``nan``/``inf`` refused)."""

from __future__ import annotations

import math
from typing import Any

import click


class FiniteNumber(click.ParamType):
    """A finite float with ``low < value`` (or ``<=``) and ``value < high``; else a usage error (exit 2)."""

    name = "NUMBER"

    def __init__(self, low: float | None = None, high: float | None = None, *, low_open: bool = False,
                 high_open: bool = True) -> None:
        self.low, self.high, self.low_open, self.high_open = low, high, low_open, high_open

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        too_low = self.low is not None and (number <= self.low if self.low_open else number < self.low)
        too_high = self.high is not None and (number >= self.high if self.high_open else number > self.high)
        if not math.isfinite(number) or too_low or too_high:
            left = "" if self.low is None else f"{'>' if self.low_open else '>='} {self.low:g}"
            right = "" if self.high is None else f"{'<' if self.high_open else '<='} {self.high:g}"
            bounds = " and ".join(b for b in (left, right) if b)
            self.fail(f"{value!r} is not a finite number{f' {bounds}' if bounds else ''}", param, ctx)
        return number


CASH = FiniteNumber(0, None, low_open=True)
BASIS_POINTS = FiniteNumber(0, 10_000)
FRACTION = FiniteNumber(0, 1)
