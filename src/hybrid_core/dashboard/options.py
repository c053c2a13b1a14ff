"""The dashboard's settings, parsed from the arguments after ``--`` of ``streamlit run``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import attrs

from hybrid_core.ops.heartbeat import DEFAULT_MAX_AGE_S, default_health_file

DEFAULT_REFRESH_S = 30.0


@attrs.frozen
class DashboardOptions:
    """Where the dashboard reads from and how often it refreshes."""

    trades: Path = Path("order_events.csv")
    health: Path = attrs.field(factory=lambda: Path(default_health_file()))
    backtest: Path | None = None
    state: Path | None = None
    refresh: float = DEFAULT_REFRESH_S
    max_age: float = DEFAULT_MAX_AGE_S

    def to_argv(self) -> list[str]:
        """The arguments that :func:`parse_options` turns back into these options."""
        argv = ["--trades", str(self.trades), "--health", str(self.health),
                "--refresh", repr(self.refresh), "--max-age", repr(self.max_age)]
        if self.backtest is not None:
            argv += ["--backtest", str(self.backtest)]
        if self.state is not None:
            argv += ["--state", str(self.state)]
        return argv


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # a message for the page, not sys.exit
        raise ValueError(f"dashboard arguments: {message}")


def parse_options(argv: Sequence[str]) -> DashboardOptions:
    """Options from ``argv`` (unknown arguments are ignored so Streamlit's own never break it).

    Raises ValueError with one line naming the bad argument."""
    parser = _Parser(prog="hybrid dashboard", add_help=False)
    parser.add_argument("--trades", type=Path, default=DashboardOptions.trades)
    parser.add_argument("--health", type=Path, default=None)
    parser.add_argument("--backtest", type=Path, default=None)
    parser.add_argument("--state", type=Path, default=None)
    parser.add_argument("--refresh", type=_positive, default=DEFAULT_REFRESH_S)
    parser.add_argument("--max-age", type=_positive, default=DEFAULT_MAX_AGE_S)
    args, _unknown = parser.parse_known_args(list(argv))
    return DashboardOptions(
        trades=args.trades,
        health=args.health if args.health is not None else Path(default_health_file()),
        backtest=args.backtest,
        state=args.state,
        refresh=args.refresh,
        max_age=args.max_age,
    )
