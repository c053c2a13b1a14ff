"""The dashboard page: status header, metric tiles, charts, trades, positions, backtest.

The live part re-runs alone every ``refresh`` seconds (``st.fragment(run_every=...)``), so the
page never reloads and the reader keeps their place.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import streamlit as st
from loguru import logger

from hybrid_core.dashboard import charts
from hybrid_core.dashboard.options import DashboardOptions
from hybrid_core.dashboard.sources import (
    ONLINE,
    STALE,
    SystemStatus,
    load_backtest,
    load_report,
    system_status,
)
from hybrid_core.ops.report import Report, positions_frame

STATE_COLOURS = {ONLINE: "green", STALE: "orange"}  # anything else: red
TILE_LABELS = ("Realised PnL", "Round trips", "Win rate", "Open positions", "Unrealised PnL", "Fills")
RECENT_ROWS = 100


def money(value: float | None) -> str:
    """``$1,234.56`` / ``-$1,234.56`` / ``-`` for None."""
    if value is None:
        return "-"
    return f"{'-' if value < 0 else ''}${abs(value):,.2f}"


def money_tile(value: float) -> str:
    """Money short enough for a tile: exact below a million, then ``$15.80M`` / ``-$1.25B``."""
    for scale, suffix in ((1e9, "B"), (1e6, "M")):
        if abs(value) >= scale:
            return f"{'-' if value < 0 else ''}${abs(value) / scale:,.2f}{suffix}"
    return money(value)


def render(options: DashboardOptions) -> None:
    """Draw the whole page."""
    st.set_page_config(page_title="hybrid dashboard", page_icon=":material/monitoring:", layout="wide")
    live = st.fragment(run_every=options.refresh)(_guarded(_render_live))
    live(options)
    if options.backtest is not None:
        _guarded(_render_backtest)(options)


def _guarded(section: Callable[[DashboardOptions], None]) -> Callable[[DashboardOptions], None]:
    """Run a page section; a bug shows one line on the page (traceback in the log), not a trace."""
    @functools.wraps(section)
    def run(options: DashboardOptions) -> None:
        try:
            section(options)
        except Exception as exc:  # noqa: BLE001 - the page must keep rendering
            logger.exception("Dashboard section {name} failed", name=section.__name__)
            st.error(f"This section failed: {type(exc).__name__}: {exc} (details in the server log)")
    return run


def _render_live(options: DashboardOptions) -> None:
    _render_header(system_status(options.health, options.max_age), options)
    loaded = load_report(options.trades, options.state)
    for error in loaded.errors:
        st.error(error)
    for note in loaded.notes:
        st.info(note)
    report: Report | None = loaded.value
    if report is None:
        return
    _render_tiles(report)
    if report.is_empty:
        return
    left, right = st.columns(2)
    with left:
        cumulative = report.cumulative_pnl()
        if cumulative.empty:
            st.info("No closed round trips yet: the cumulative P&L starts with the first closing fill.")
        else:
            st.plotly_chart(charts.cumulative_pnl_figure(cumulative), key="cumulative_pnl")
    with right:
        closed = [b for b in report.by_symbol if b.round_trips]
        if closed:
            st.plotly_chart(charts.symbol_pnl_figure(closed), key="symbol_pnl")
        else:
            st.info("No realised gains or losses per symbol yet.")
    _render_trades(report)
    _render_positions(report, options)
    _render_breakdowns(report)


def _render_header(status: SystemStatus, options: DashboardOptions) -> None:
    colour = STATE_COLOURS.get(status.state, "red")
    mode = status.mode or "MODE UNKNOWN"
    mode_colour = "red" if status.is_live else "blue"
    when = status.last_time.strftime("%Y-%m-%d %H:%M:%S UTC") if status.last_time else "never"
    cycle = f" · cycle {status.cycle}" if status.cycle is not None else ""
    st.markdown(f"## hybrid &nbsp; {_badge(status.state, colour)} &nbsp; {_badge(mode, mode_colour)}")
    st.caption(f"Last cycle {when}{cycle} · trade log {options.trades} · "
               f"refreshed {datetime.now(UTC):%H:%M:%S} UTC, every {options.refresh:g} s")
    if status.is_live:
        st.error("LIVE TRADING: orders go to the real-money account.", icon=":material/warning:")
    if status.message:
        (st.warning if status.state == STALE else st.error if status.state != ONLINE else st.info)(
            status.message)
    if status.last_error:
        st.warning(f"Last cycle error: {status.last_error}")


def _badge(text: str, colour: str) -> str:
    """Bold coloured text on a tinted background, as big as the heading it sits in."""
    return f":{colour}-background[**:{colour}[{text}]**]"


def tile_values(report: Report) -> dict[str, str]:
    """The tiles' texts by label (the same numbers as ``hybrid report``)."""
    unreal = report.unrealised_pnl
    return dict(zip(TILE_LABELS, (
        money_tile(report.realised_pnl), f"{report.round_trips:,}", f"{report.win_rate:.1%}",
        f"{len(report.open_positions):,}", "unmarked" if unreal is None else money_tile(unreal),
        f"{report.fills:,}"), strict=True))


def _render_tiles(report: Report) -> None:
    values = tile_values(report).values()
    unreal = report.unrealised_pnl
    helps = (f"{money(report.realised_pnl)}: realised profit and loss of the closed round trips, "
             f"after commissions",
             "Closing fills matched FIFO against the lots they close (the backtest's round trips)",
             f"{report.wins} winning of {report.round_trips} round trips",
             ", ".join(p.symbol for p in report.open_positions) or "none",
             ("no market close to mark the open positions with (give the state database)" if unreal is None
              else f"{money(unreal)}: open positions at the closes of {report.marks_as_of}"),
             f"Filled orders; volume {money(report.volume)} (sum of |qty × price|) over "
             f"{len(report.symbols)} symbol(s)")
    for column, label, value, help_text in zip(st.columns(len(TILE_LABELS)), TILE_LABELS, values, helps,
                                               strict=True):
        column.metric(label, value, help=help_text, border=True)


def _side_style(side: Any) -> str:
    return {"buy": "color: #21c354; font-weight: 600", "sell": "color: #ff4b4b; font-weight: 600"}.get(
        str(side), "")


def _render_trades(report: Report) -> None:
    st.subheader("Recent trades")
    recent = report.recent_events(RECENT_ROWS)
    table = pd.DataFrame({
        "time": recent["timestamp"].dt.strftime("%Y-%m-%d %H:%M:%S"),
        "symbol": recent["symbol"], "side": recent["side"], "qty": recent["qty"].astype(float),
        "price": recent["price"].astype(float), "value": recent["value"].astype(float),
        "status": recent["status"], "strategy": recent["strategy"], "reason": recent["reason"],
    }).reset_index(drop=True)
    styled = table.style.map(_side_style, subset=["side"]).format(
        {"qty": "{:,.6g}", "price": "{:,.2f}", "value": "{:,.2f}"}, na_rep="")
    st.dataframe(styled, hide_index=True, key="recent_trades")


def _render_positions(report: Report, options: DashboardOptions) -> None:
    st.subheader("Open positions")
    if not report.open_positions:
        st.info("No open positions.")
        return
    frame = positions_frame(report.open_positions)
    frame["entry_time"] = frame["entry_time"].fillna("")
    frame["mark_date"] = frame["mark_date"].fillna("")
    marked = (f"marked at the closes of {report.marks_as_of} (state database)" if report.marks_as_of
              else "unmarked: no state database with the cycle's closes")
    st.caption(f"Open lots of the round-trip ledger; {marked}.")
    st.dataframe(frame, hide_index=True, key="open_positions", column_config={
        "entry_price": st.column_config.NumberColumn(format="%.2f"),
        "mark": st.column_config.NumberColumn(format="%.2f"),
        "market_value": st.column_config.NumberColumn(format="%.2f"),
        "unrealised_pnl": st.column_config.NumberColumn("unrealised PnL", format="%.2f"),
    })
    if report.unrealised_pnl is not None:
        st.metric("Unrealised PnL", money_tile(report.unrealised_pnl))


def _render_breakdowns(report: Report) -> None:
    st.subheader("Breakdown")
    for column, title, parts in zip(st.columns(2), ("By symbol", "By strategy"),
                                    (report.by_symbol, report.by_strategy), strict=True):
        frame = pd.DataFrame({
            title.split()[-1]: [b.key for b in parts],
            "realised PnL": [b.realised_pnl for b in parts],
            "round trips": [b.round_trips for b in parts],
            "win rate": [100 * b.win_rate for b in parts],
            "fills": [b.fills for b in parts],
            "volume": [b.volume for b in parts],
        })
        column.dataframe(frame, hide_index=True, key=f"breakdown_{title}", column_config={
            "realised PnL": st.column_config.NumberColumn(format="%.2f"),
            "win rate": st.column_config.NumberColumn(format="%.1f%%"),
            "volume": st.column_config.NumberColumn(format="%.2f"),
        })


def _render_backtest(options: DashboardOptions) -> None:
    assert options.backtest is not None
    st.divider()
    st.subheader(f"Backtest · {options.backtest}")
    loaded = load_backtest(options.backtest)
    for error in loaded.errors:
        st.error(error)
    if loaded.value is None:
        return
    equity, summary = loaded.value.equity, loaded.value.summary
    if summary:
        scalars = {k: v for k, v in summary.items() if isinstance(v, (int, float, str, bool)) or v is None}
        st.dataframe(pd.DataFrame({"metric": list(scalars), "value": [str(v) for v in scalars.values()]}),
                     hide_index=True, key="backtest_summary")
    if equity is not None and not equity.empty:
        left, right = st.columns(2)
        left.plotly_chart(charts.equity_figure(equity), key="backtest_equity")
        right.plotly_chart(charts.drawdown_figure(equity), key="backtest_drawdown")
        st.caption(f"Max drawdown {equity['drawdown'].min():.2%}")
