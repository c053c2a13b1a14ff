"""A self-contained HTML report of a backtest: Plotly charts with plotly.js inlined.

Figures are written as Plotly JSON specs (no import of the plotly Python package, which is
slow to load); the page works offline, from a file, with nothing else beside it.
"""

from __future__ import annotations

import html
import importlib.util
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..ops.atomic import atomic_replace
from .stats import daily_returns, drawdown_series, periods_per_year, rolling_sharpe, rolling_window

MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def plotly_js() -> str:
    """The plotly.js bundle shipped with the plotly package (read from disk, not imported)."""
    return _plotly_js_path().read_text(encoding="utf-8")


def _plotly_js_utf8() -> bytes:
    """:func:`plotly_js` as UTF-8, the file's own bytes when reading it as text changes nothing
    (no carriage return: the 4.8 MB bundle is not decoded and encoded again)."""
    data = _plotly_js_path().read_bytes()
    return plotly_js().encode("utf-8") if b"\r" in data else data


def _plotly_js_path() -> Path:
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("plotly is not installed; `pip install plotly` to write report.html")
    return Path(next(iter(spec.submodule_search_locations))) / "package_data" / "plotly.min.js"


def monthly_returns(values: pd.Series, initial: float) -> pd.DataFrame:
    """Monthly returns as a years x 12 table (NaN for months outside the run)."""
    if values.empty:
        return pd.DataFrame(columns=range(1, 13), dtype="float64")
    month_end = values.groupby([values.index.year, values.index.month]).last()
    prev = np.concatenate([[initial], month_end.to_numpy()[:-1]])
    rets = pd.Series(month_end.to_numpy() / prev - 1.0, index=month_end.index)
    table = rets.unstack(level=1).reindex(columns=range(1, 13))
    table.index.name = "year"
    return table


def _dates(index: pd.Index) -> list[str]:
    return np.datetime_as_string(pd.DatetimeIndex(index).to_numpy(dtype="datetime64[D]"), unit="D").tolist()


def _floats(values: Any) -> list[float | None]:
    return [None if not math.isfinite(v) else float(v) for v in np.asarray(values, dtype="float64")]


BASE_LAYOUT = {"margin": {"l": 60, "r": 20, "t": 40, "b": 40}, "hovermode": "x unified", "template": None}
BENCHMARK_LINE = {"width": 1.5, "color": "#7f8c8d"}


def equity_figure(values: pd.Series, benchmark: pd.Series | None = None, *, name: str = "portfolio value",
                  title: str = "Equity curve") -> dict[str, Any]:
    """An equity curve with the benchmark's value curve beside it."""
    x = _dates(values.index)
    data: list[dict[str, Any]] = [{"type": "scatter", "mode": "lines", "name": name, "x": x,
                                   "y": _floats(values)}]
    if benchmark is not None:
        data.append({"type": "scatter", "mode": "lines", "name": "benchmark", "x": _dates(benchmark.index),
                     "y": _floats(benchmark), "line": BENCHMARK_LINE})
    return {"data": data, "layout": {**BASE_LAYOUT, "title": {"text": title},
                                     "yaxis": {"title": {"text": "value"}}}}


def rolling_sharpe_figure(values: pd.Series, initial: float, benchmark: pd.Series | None = None) -> dict[str, Any]:
    """The rolling 6-month Sharpe ratio of an equity curve (and of the benchmark)."""
    ppy = periods_per_year(pd.DatetimeIndex(values.index))
    window = rolling_window(ppy)
    curves: list[tuple[str, pd.Series, dict[str, Any]]] = [("strategy", values, {})]
    if benchmark is not None:
        curves.append(("benchmark", benchmark, {"line": BENCHMARK_LINE}))
    data = [{"type": "scatter", "mode": "lines", "name": name, "x": _dates(curve.index),
             "y": _floats(rolling_sharpe(daily_returns(curve, initial), window, ppy)), **extra}
            for name, curve, extra in curves]
    return {"data": data, "layout": {**BASE_LAYOUT, "title": {"text": f"Rolling 6-month Sharpe ({window} periods)"},
                                     "yaxis": {"title": {"text": "Sharpe"}}}}


def figures(equity: pd.DataFrame, contributions: pd.DataFrame, initial_cash: float,
            benchmark: pd.Series | None = None) -> dict[str, dict[str, Any]]:
    """Plotly figure specs: equity curve (with the benchmark), drawdown, rolling 6-month Sharpe,
    monthly returns heat map, strategy contribution."""
    x = _dates(equity.index)
    values = equity["value"]
    base_layout = BASE_LAYOUT
    equity_fig = equity_figure(values, benchmark)
    equity_fig["data"].insert(1, {"type": "scatter", "mode": "lines", "name": "cash", "x": x,
                                  "y": _floats(equity["cash"]), "line": {"width": 1, "dash": "dot"},
                                  "visible": "legendonly"})
    dd = drawdown_series(values, initial_cash)
    drawdown_fig = {
        "data": [{"type": "scatter", "mode": "lines", "fill": "tozeroy", "name": "drawdown", "x": x,
                  "y": _floats(dd * 100.0), "line": {"color": "#c0392b"}}],
        "layout": {**base_layout, "title": {"text": "Drawdown"},
                   "yaxis": {"title": {"text": "% below peak"}}},
    }
    table = monthly_returns(values, initial_cash)
    z = [[None if not math.isfinite(v) else round(v * 100.0, 2) for v in row]
         for row in table.to_numpy(float)]
    labels = [[("" if v is None else f"{v:.1f}%") for v in row] for row in z]
    heat_fig = {
        "data": [{"type": "heatmap", "z": z, "x": MONTHS, "y": [str(y) for y in table.index],
                  "colorscale": [[0.0, "#b03a2e"], [0.5, "#f7f7f7"], [1.0, "#1e8449"]], "zmid": 0,
                  "text": labels,
                  "texttemplate": "%{text}", "hovertemplate": "%{y} %{x}: %{z:.2f}%<extra></extra>",
                  "colorbar": {"title": {"text": "%"}}}],
        "layout": {**base_layout, "title": {"text": "Monthly returns"}, "hovermode": "closest",
                   "yaxis": {"autorange": "reversed", "type": "category"}},
    }
    contrib_fig = {
        "data": [{"type": "scatter", "mode": "lines", "name": str(name), "x": _dates(contributions.index),
                  "y": _floats(contributions[name])} for name in contributions.columns],
        "layout": {**base_layout, "title": {"text": "Cumulative PnL by strategy"},
                   "yaxis": {"title": {"text": "PnL"}}},
    }
    return {"equity": equity_fig, "drawdown": drawdown_fig,
            "rolling_sharpe": rolling_sharpe_figure(values, initial_cash, benchmark), "monthly": heat_fig,
            "contribution": contrib_fig}


PERCENT_KEYS = {"total_return", "cagr", "annual_volatility", "max_drawdown", "win_rate", "contribution",
                "excess_return", "alpha", "tracking_error", "average_exposure", "exposure"}


def format_value(value: Any, key: str = "") -> str:
    """A summary value as table text: n/a for missing, percentages for the PERCENT_KEYS."""
    if value is None:
        return "n/a"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "n/a"
        if key in PERCENT_KEYS:
            return f"{value * 100:.2f}%"
        return f"{value:,.2f}"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items() if v)
    return html.escape(str(value))


SUMMARY_ROWS = [("final_value", "Final value (initial cash + PnL)"), ("pnl", "PnL (trades)"),
                ("total_return", "Total return"), ("contribution", "PnL / initial cash"), ("cagr", "CAGR"),
                ("annual_volatility", "Annual volatility"), ("sharpe", "Sharpe"), ("sortino", "Sortino"),
                ("max_drawdown", "Max drawdown"), ("peak_date", "Drawdown peak"),
                ("trough_date", "Drawdown trough"), ("recovery_date", "Recovered"), ("trades", "Trades"),
                ("win_rate", "Win rate"), ("profit_factor", "Profit factor"),
                ("average_holding_days", "Average holding days"), ("annual_turnover", "Annual turnover"),
                ("trades_by_exit_reason", "Exits by reason"),
                ("excess_return", "Excess return vs benchmark"), ("beta", "Beta"), ("alpha", "Alpha (annual)"),
                ("tracking_error", "Tracking error"), ("information_ratio", "Information ratio"),
                ("rolling_sharpe_6m", "Rolling 6-month Sharpe (latest)")]


def summary_table(summary: dict[str, Any]) -> str:
    """An HTML table of the summary: one column for the total, one per strategy, one for the benchmark."""
    columns = [("total", summary["total"])] + list(summary.get("strategies", {}).items())
    if summary.get("benchmark"):
        columns.append(("benchmark", summary["benchmark"]))
    head = "".join(f"<th>{html.escape(name)}</th>" for name, _ in columns)
    rows = []
    for key, label in SUMMARY_ROWS:
        cells = "".join(f"<td>{format_value(stats.get(key), key)}</td>" for _, stats in columns)
        rows.append(f"<tr><th>{label}</th>{cells}</tr>")
    return f"<table><tr><th></th>{head}</tr>{''.join(rows)}</table>"


def plot_script(figs: dict[str, dict[str, Any]]) -> tuple[str, str]:
    """The ``<div>`` placeholders and the JavaScript drawing ``figs`` (Plotly specs by name)."""
    divs = "".join(f'<div id="fig-{name}" class="fig"></div>' for name in figs)
    script = "".join(
        f"Plotly.newPlot('fig-{name}', {json.dumps(fig['data'])}, {json.dumps(fig['layout'])}, "
        f"{{responsive: true, displaylogo: false}});" for name, fig in figs.items())
    return divs, script


def render_report(path: Path, *, title: str, equity: pd.DataFrame, contributions: pd.DataFrame,
                  summary: dict[str, Any], notes: list[str] | None = None,
                  benchmark: pd.Series | None = None) -> Path:
    """Write the report page to ``path`` and return it; ``benchmark`` is drawn beside the equity curve."""
    figs = figures(equity, contributions, float(summary["initial_cash"]), benchmark)
    divs, script = plot_script(figs)
    bench = summary.get("benchmark")
    if bench:
        notes = [*(notes or []), f"benchmark: {bench['name']} over the same window and data"]
    note_html = "".join(f"<li>{html.escape(n)}</li>" for n in (notes or []))
    head = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; }}
table {{ border-collapse: collapse; margin: 1rem 0; }}
th, td {{ border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: right; }}
th {{ background: #f4f4f4; }}
.fig {{ height: 420px; margin-bottom: 1rem; }}
</style>
<script>"""
    tail = f"""</script>
</head><body>
<h1>{html.escape(title)}</h1>
<ul>{note_html}</ul>
{summary_table(summary)}
{divs}
<script>{script}</script>
</body></html>
"""
    with atomic_replace(path, sync_dir=False) as handle:  # a reader never sees half a report
        handle.write(head.encode("utf-8"))
        handle.write(_plotly_js_utf8())  # written as it is, not copied into the page's text
        handle.write(tail.encode("utf-8"))
    return path
