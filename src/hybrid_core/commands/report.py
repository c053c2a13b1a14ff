"""``hybrid report [PATH]``: realised PnL, round trips, win rate, volume and marked open positions.

PATH is a run's output folder (its order-events audit log, marked with the state database's
closes), a backtest's output folder (its round-trip table) or either file itself."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from hybrid_core.ops.report import Report


def _money(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    return [fmt.format(*headers), fmt.format(*("-" * w for w in widths)), *(fmt.format(*r) for r in rows)]


def render_text(report: Report, source: str) -> str:
    """The human-readable report."""
    if report.is_empty:
        lines = [f"{report.source or source}: no order events yet."]
    else:
        unreal = report.unrealised_pnl
        statuses = ", ".join(f"{k} {v}" for k, v in report.status_counts.items())
        lines = [
            f"Report of {report.source or source}",
            f"  round trips    {report.round_trips}  (realised PnL {_money(report.realised_pnl)})",
            f"  open positions {len(report.open_positions)}  (unrealised PnL "
            + (_money(unreal) if unreal is not None else "unknown: no marks") + ")",
            f"  win rate       {report.win_rate:.1%}  ({report.wins} of {report.round_trips} round trips)",
            f"  fills          {report.fills}" + (f"  (order events: {statuses})" if statuses else ""),
            f"  symbols        {len(report.symbols)}  {' '.join(report.symbols)}",
            f"  volume         {_money(report.volume)}",
        ]
        for title, parts in (("By symbol", report.by_symbol), ("By strategy", report.by_strategy)):
            lines += ["", title]
            lines += _table(["key", "realised", "round trips", "win rate", "fills", "volume"], [
                [b.key, _money(b.realised_pnl), str(b.round_trips), f"{b.win_rate:.0%}", str(b.fills),
                 _money(b.volume)] for b in parts])
        marked = f" (marked at the closes of {report.marks_as_of})" if report.marks_as_of else ""
        lines += ["", f"Open positions{marked}"]
        if report.open_positions:
            lines += _table(["symbol", "qty", "entry", "mark", "unrealised", "strategy"], [
                [p.symbol, f"{p.qty:g}", _money(p.entry_price), _money(p.mark),
                 _money(p.unrealised_pnl), p.strategy] for p in report.open_positions])
        else:
            lines.append("  none")
    if report.dust:
        lines += ["", "Dust (held at the broker below the smallest order it takes: not traded, not a discrepancy)"]
        lines += _table(["symbol", "qty", "smallest order"], [
            [sym, f"{item.get('qty', 0):g}", f"{item.get('min_order_qty') or 0:g}"]
            for sym, item in sorted(report.dust.items())])
    for note in report.notes:
        lines += ["", f"Note: {note}"]
    if report.problems:
        lines += ["", f"Skipped {len(report.problems)} malformed row(s):"]
        lines += [f"  line {p.line}: {p.message}" for p in report.problems]
    return "\n".join(lines)


@click.command("report")
@click.argument("path", required=False, type=click.Path(path_type=Path))
@click.option("--file", "file", type=click.Path(path_type=Path), default=None,
              help="The audit log (order_events.csv) or round-trip table (round_trips.csv) to read "
                   "(same as PATH; default: order_events.csv).")
@click.option("--state", type=click.Path(path_type=Path), default=None,
              help="State database whose last cycle's closes mark the open positions "
                   "(default: state.sqlite beside the audit log, when PATH is a folder).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def command(path: Path | None, file: Path | None, state: Path | None, as_json: bool) -> None:
    """Round trips, realised PnL (FIFO), win rate, fills, volume and marked open positions.

    PATH: a run's or replay's output folder, a backtest's output folder, or one of their files.
    """
    from hybrid_core.ops.report import load_report

    if path is not None and file is not None:
        raise click.UsageError("give PATH or --file, not both")
    file = path or file or Path("order_events.csv")
    report = load_report(file, state)  # a HybridError: one line and its exit code (hybrid_core.failures)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        click.echo(render_text(report, str(file)))


if __name__ == "__main__":  # usable before the ``hybrid`` group lists it
    command()
