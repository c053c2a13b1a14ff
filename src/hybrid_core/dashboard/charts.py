"""Plotly figures for the dashboard (SVG traces only, so a browser test can wait for them)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import plotly.graph_objects as go

from hybrid_core.ops.report import Breakdown

GAIN, LOSS, NEUTRAL = "#21c354", "#ff4b4b", "#4c9be8"


def _layout(fig: go.Figure, title: str, height: int = 320) -> go.Figure:
    fig.update_layout(title=title, height=height, margin={"l": 10, "r": 10, "t": 40, "b": 10},
                      showlegend=False, hovermode="x unified")
    return fig


def cumulative_pnl_figure(cumulative: pd.DataFrame) -> go.Figure:
    """Step line of cumulative realised PnL, one point per round trip."""
    colour = GAIN if cumulative.empty or cumulative["cumulative"].iloc[-1] >= 0 else LOSS
    fig = go.Figure(go.Scatter(
        x=cumulative["time"], y=cumulative["cumulative"], mode="lines+markers", line_shape="hv",
        line={"color": colour, "width": 2}, fill="tozeroy", customdata=cumulative[["symbol", "pnl"]],
        hovertemplate="%{x|%Y-%m-%d %H:%M}<br>cumulative %{y:,.2f}<br>%{customdata[0]}: "
                      "%{customdata[1]:+,.2f}<extra></extra>",
    ))
    fig.add_hline(y=0, line_width=1, line_color="grey")
    return _layout(fig, "Cumulative realised P&L")


def symbol_pnl_figure(by_symbol: Sequence[Breakdown]) -> go.Figure:
    """Horizontal bars of realised PnL per symbol, gains green and losses red."""
    rows = sorted(by_symbol, key=lambda b: b.realised_pnl)
    fig = go.Figure(go.Bar(
        x=[b.realised_pnl for b in rows], y=[b.key for b in rows], orientation="h",
        marker_color=[GAIN if b.realised_pnl > 0 else LOSS if b.realised_pnl < 0 else NEUTRAL
                      for b in rows],
        text=[f"{b.realised_pnl:+,.2f}" for b in rows], textposition="auto",
        hovertemplate="%{y}: %{x:+,.2f}<extra></extra>",
    ))
    return _layout(fig, "Realised P&L by symbol", height=max(240, 60 + 32 * len(rows)))


def equity_figure(equity: pd.DataFrame) -> go.Figure:
    """Backtest portfolio value over time."""
    fig = go.Figure(go.Scatter(x=equity.index, y=equity["value"], mode="lines",
                               line={"color": NEUTRAL, "width": 2}, name="value"))
    return _layout(fig, "Backtest equity")


def drawdown_figure(equity: pd.DataFrame) -> go.Figure:
    """Backtest drawdown from the running peak, in percent."""
    fig = go.Figure(go.Scatter(x=equity.index, y=100 * equity["drawdown"], mode="lines",
                               fill="tozeroy", line={"color": LOSS, "width": 1}, name="drawdown",
                               hovertemplate="%{x|%Y-%m-%d}: %{y:.2f}%<extra></extra>"))
    fig.update_yaxes(ticksuffix="%")
    return _layout(fig, "Backtest drawdown", height=240)
