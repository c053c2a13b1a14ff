"""``hybrid report``: realised PnL, win rate, volume and open positions from the trade log."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from hybrid_core.errors import HybridError

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
        lines = [f"Trade log {source}: no order events yet."]
    else:
        unreal = report.unrealised_pnl
        lines = [
            f"Trade log {source}",
            f"  realised PnL   {_money(report.realised_pnl)}"
            + ("" if unreal is None else f"   (unrealised {_money(unreal)})"),
            f"  win rate       {report.win_rate:.1%}  ({report.wins} of {report.round_trips} round trips)",
            f"  trades         {report.trades} fills"
            f"  ({', '.join(f'{k} {v}' for k, v in report.status_counts.items())})",
            f"  symbols        {len(report.symbols)}  {' '.join(report.symbols)}",
            f"  volume         {_money(report.volume)}",
        ]
        for title, parts in (("By symbol", report.by_symbol), ("By strategy", report.by_strategy)):
            lines += ["", title]
            lines += _table(["key", "realised", "round trips", "win rate", "fills", "volume"], [
                [b.key, _money(b.realised_pnl), str(b.round_trips), f"{b.win_rate:.0%}", str(b.fills),
                 _money(b.volume)] for b in parts])
        lines += ["", "Open positions"]
        if report.open_positions:
            lines += _table(["symbol", "qty", "entry", "last", "unrealised", "strategy"], [
                [p.symbol, f"{p.qty:g}", _money(p.entry_price), _money(p.last_price),
                 _money(p.unrealised_pnl), p.strategy] for p in report.open_positions])
        else:
            lines.append("  none")
    if report.problems:
        lines += ["", f"Skipped {len(report.problems)} malformed row(s):"]
        lines += [f"  line {p.line}: {p.message}" for p in report.problems]
    return "\n".join(lines)


@click.command("report")
@click.option("--file", "file", type=click.Path(path_type=Path), default=Path("trades.csv"),
              show_default=True, help="Trade audit CSV written by the run.")
@click.option("--state", type=click.Path(path_type=Path), default=None,
              help="State database: list its open positions instead of the log's FIFO lots.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def command(file: Path, state: Path | None, as_json: bool) -> None:
    """Realised PnL (FIFO per symbol), win rate, trades, volume and open positions."""
    try:
        from hybrid_core.ops.report import build_report, with_state_positions

        report = build_report(file)
        if state is not None:
            report = with_state_positions(report, state)
    except HybridError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)  # SystemExit, not ctx.exit: the exit code survives standalone_mode=False
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        click.echo(render_text(report, str(file)))


if __name__ == "__main__":  # usable before the ``hybrid`` group lists it
    command()
