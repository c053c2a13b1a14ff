"""The sweep's self-contained ``report.html``: plotly.js inlined, the results embedded, no server.

Sections: the sweep and its best set against the benchmark; the overfitting statistics (DSR,
PBO and the distribution of the CSCV logits); a heat map of any metric over any two varied
values (chosen in the page; the other values are aggregated by max, mean or median); the top
sets; the distribution of the metric with the benchmark's value marked; the best set's equity
curve and rolling 6-month Sharpe beside the benchmark's; the walk-forward folds and the stitched
out-of-sample curve.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..engine.report_html import equity_figure, plot_script, plotly_js, rolling_sharpe_figure
from ..engine.report_html import format_value as fmt
from .sweep import SweepResult
from .variant_backtest import METRIC_COLUMNS

TOP_SETS = 15
HEATMAP_SCRIPT = """
(function() {
  const D = __DATA__;
  const sel = (id, options, value) => { const s = document.getElementById(id);
    s.innerHTML = options.map(o => `<option${o === value ? ' selected' : ''}>${o}</option>`).join('');
    s.onchange = draw; return s; };
  const x = sel('heat-x', D.params, D.params[0]);
  const y = sel('heat-y', [...D.params, '(none)'], D.params.length > 1 ? D.params[1] : '(none)');
  const m = sel('heat-metric', D.metrics, D.default);
  const a = sel('heat-agg', ['max', 'mean', 'median', 'min'], 'max');
  const key = v => (typeof v === 'number') ? v : String(v);
  const order = vs => [...new Set(vs.map(key))].sort((p, q) =>
      (typeof p === 'number' && typeof q === 'number') ? p - q : String(p).localeCompare(String(q)));
  const agg = (vs, how) => { if (!vs.length) return null; const s = [...vs].sort((p, q) => p - q);
    if (how === 'max') return s[s.length - 1]; if (how === 'min') return s[0];
    if (how === 'mean') return s.reduce((p, q) => p + q, 0) / s.length;
    const h = Math.floor(s.length / 2); return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2; };
  function draw() {
    const xs = order(D.rows.map(r => r[x.value]));
    const ys = y.value === '(none)' ? ['all'] : order(D.rows.map(r => r[y.value]));
    const z = ys.map(yv => xs.map(xv => agg(D.rows.filter(r => key(r[x.value]) === xv &&
        (y.value === '(none)' || key(r[y.value]) === yv)).map(r => r[m.value]).filter(v => v !== null),
        a.value)));
    Plotly.react('fig-heatmap', [{type: 'heatmap', x: xs.map(String), y: ys.map(String), z: z,
        colorscale: [[0, '#b03a2e'], [0.5, '#f7f7f7'], [1, '#1e8449']], texttemplate: '%{z:.3f}', hovertemplate:
        `${x.value}=%{x}<br>${y.value}=%{y}<br>${a.value} ${m.value}=%{z:.4f}<extra></extra>`}],
      {title: {text: `${a.value} of ${m.value} over the other values`}, margin: {l: 90, r: 20, t: 40, b: 60},
       xaxis: {title: {text: x.value}, type: 'category'}, yaxis: {title: {text: y.value}, type: 'category'}},
      {responsive: true, displaylogo: false});
  }
  draw();
})();
"""
"""Draws the heat map of the chosen metric over the chosen two values (the data replaces __DATA__)."""


def _benchmark_metrics(summary: dict[str, Any]) -> dict[str, Any]:
    """The benchmark's own value of each metric that is not relative to the benchmark."""
    block = dict(summary.get("benchmark") or {})
    out = {k: block.get(k) for k in ("total_return", "cagr", "sharpe", "sortino", "max_drawdown")}
    return out


def _curve(returns: np.ndarray, dates: pd.DatetimeIndex, initial: float) -> pd.Series:
    return pd.Series(initial * np.cumprod(1.0 + np.asarray(returns, dtype="float64")), index=dates)


def _table(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = "".join("<tr>" + "".join(f"<td>{fmt(_py(v), _metric_name(str(c)))}</td>" for c, v in row.items())
                   + "</tr>" for _, row in frame.iterrows())
    return f"<table><tr>{head}</tr>{body}</table>"


def _metric_name(column: str) -> str:
    """``test_cagr`` -> ``cagr`` (how walk-forward columns are formatted)."""
    for prefix in ("test_", "train_"):
        if column.startswith(prefix):
            return column[len(prefix):]
    return column


def _py(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, pd.Timestamp):
        return str(value.date())
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


def _overfitting_html(summary: dict[str, Any]) -> str:
    parts = []
    dsr = summary.get("deflated_sharpe")
    if dsr:
        verdict = "significant at 5%" if (dsr["dsr"] or 0) > 0.95 else "not significant at 5%"
        parts.append(
            f"<p><b>Deflated Sharpe Ratio {fmt(dsr['dsr'])}</b> ({verdict}): the probability that the best set's "
            f"true Sharpe ratio ({fmt(dsr['sharpe_annualised'])} annualised) beats the "
            f"{fmt(dsr['expected_max_sharpe_annualised'])} that the best of {dsr['trials']} unskilled sets would "
            f"show by luck over {dsr['observations']} sessions (skewness {fmt(dsr['skewness'])}, kurtosis "
            f"{fmt(dsr['kurtosis'])}). Bailey and Lopez de Prado (2014).</p>")
    pbo = summary.get("pbo")
    if pbo:
        parts.append(
            f"<p><b>Probability of Backtest Overfitting {fmt(pbo['pbo'] * 100)}%</b>: in {pbo['combinations']:,} "
            f"splits of the {pbo['rows_used']} sessions into {pbo['partitions']} blocks (half in-sample, half "
            f"out-of-sample), the share in which the in-sample best set ranked at or below the median "
            f"out-of-sample. Bailey, Borwein, Lopez de Prado and Zhu (2017), CSCV.</p>")
    if summary.get("overfitting_note"):
        parts.append(f"<p>{html.escape(summary['overfitting_note'])}</p>")
    return "".join(parts)


def figures(result: SweepResult, table: pd.DataFrame, summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The fixed Plotly figures of the page (the heat map is drawn by the page's own script)."""
    metric = result.request.plan.spec.metric
    figs: dict[str, dict[str, Any]] = {}
    ok = table[table["status"] == "ok"]
    values = pd.to_numeric(ok[metric], errors="coerce").dropna()
    bench = _benchmark_metrics(summary).get(metric)
    shapes = [] if bench is None or not math.isfinite(bench) else [
        {"type": "line", "x0": bench, "x1": bench, "yref": "paper", "y0": 0, "y1": 1,
         "line": {"color": "#7f8c8d", "dash": "dash"}}]
    figs["distribution"] = {
        "data": [{"type": "histogram", "x": values.tolist(), "name": metric, "nbinsx": 30}],
        "layout": {"title": {"text": f"Distribution of {metric} over {len(values)} sets"
                             + (" (dashed: benchmark)" if shapes else "")},
                   "shapes": shapes, "xaxis": {"title": {"text": metric}}, "yaxis": {"title": {"text": "sets"}},
                   "margin": {"l": 60, "r": 20, "t": 40, "b": 40}}}
    if result.overfitting is not None:
        figs["logits"] = {
            "data": [{"type": "histogram", "x": result.overfitting.logits, "nbinsx": 30, "name": "logit"}],
            "layout": {"title": {"text": "CSCV: logit of the in-sample best set's out-of-sample rank "
                                         "(left of 0: overfit)"},
                       "shapes": [{"type": "line", "x0": 0, "x1": 0, "yref": "paper", "y0": 0, "y1": 1,
                                   "line": {"color": "#c0392b"}}],
                       "margin": {"l": 60, "r": 20, "t": 40, "b": 40}}}
    best = result.best
    dates = result.dates
    _, bench_values = result.benchmark
    if best is not None and best.returns is not None and len(best.returns) == len(dates):
        cash = float(bench_values.iloc[0]) if len(bench_values) else 1.0
        curve = _curve(best.returns, dates, cash)
        figs["best_equity"] = equity_figure(curve, bench_values, name=f"set {best.set_id}",
                                            title=f"Best set ({best.set_id}) against the benchmark")
        figs["best_rolling_sharpe"] = rolling_sharpe_figure(curve, cash, bench_values)
    walk = result.walk_forward
    if walk is not None:
        figs["walk_forward"] = equity_figure(walk.equity["value"], walk.equity["benchmark"], name="out-of-sample",
                                             title=f"Walk-forward ({walk.spec.text()}): stitched out-of-sample "
                                                   f"equity")
    return figs


def _heatmap_script(table: pd.DataFrame, params: list[str], metrics: list[str], default: str) -> str:
    ok = table[table["status"] == "ok"]
    rows = [{c: _py(v) for c, v in row.items()} for _, row in ok[[*params, *metrics]].iterrows()]
    data = json.dumps({"rows": rows, "params": params, "metrics": metrics, "default": default})
    return HEATMAP_SCRIPT.replace("__DATA__", data)


def render_sweep_report(path: Path, result: SweepResult, table: pd.DataFrame, summary: dict[str, Any]) -> Path:
    """Write the sweep's report page to ``path``."""
    spec = result.request.plan.spec
    metric = spec.metric
    params = [d.label for d in result.request.plan.dimensions]
    figs = figures(result, table, summary)
    divs, script = plot_script(figs)
    ok = table[table["status"] == "ok"].copy()
    ok["_sort"] = pd.to_numeric(ok[metric], errors="coerce").fillna(-np.inf)
    top = ok.sort_values(["_sort", "set_id"], ascending=[False, True]).head(TOP_SETS).drop(columns=["_sort", "error"])
    bench_row = {"set_id": "benchmark", **{p: "" for p in params}, "status": "", **_benchmark_metrics(summary)}
    bench_row.update({k: None for k in METRIC_COLUMNS if k not in bench_row})
    top_html = _table(pd.concat([top, pd.DataFrame([bench_row])], ignore_index=True))
    failed = table[table["status"] != "ok"]
    failed_html = _table(failed[["set_id", *params, "error"]]) if len(failed) else ""
    counts = summary["counts"]
    best = summary.get("best")
    best_line = ("no set finished with a finite " + html.escape(metric)) if not best else (
        f"best set {best['set_id']} ({html.escape(', '.join(f'{k}={v!r}' for k, v in best['parameters'].items()))}): "
        f"{html.escape(metric)} {fmt(best[metric])}")
    walk_html = ""
    if result.walk_forward is not None:
        w = result.walk_forward.summary
        total = w["total"]
        walk_html = (f"<h2>Walk-forward {html.escape(w['walk_forward'])}</h2><p>{w['folds']} folds, out-of-sample "
                     f"{w['start']}..{w['end']} ({w['sessions']} sessions): total return "
                     f"{fmt(total['total_return'], 'total_return')}, CAGR {fmt(total['cagr'], 'cagr')}, Sharpe "
                     f"{fmt(total['sharpe'])}, max drawdown {fmt(total['max_drawdown'], 'max_drawdown')}; "
                     f"excess return over the benchmark {fmt(total.get('excess_return'), 'excess_return')}.</p>"
                     f"{_table(result.walk_forward.folds)}")
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in summary.get("notes", []))
    title = f"Sweep {result.profile_name} {summary['start']}..{summary['end']}"
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; max-width: 1400px; }}
table {{ border-collapse: collapse; margin: 1rem 0; font-size: 0.9rem; }}
th, td {{ border: 1px solid #ccc; padding: 0.2rem 0.5rem; text-align: right; }}
th {{ background: #f4f4f4; }}
.fig {{ height: 420px; margin-bottom: 1rem; }}
label {{ margin-right: 1rem; }}
</style>
<script>{plotly_js()}</script>
</head><body>
<h1>{html.escape(title)}</h1>
<p>{html.escape(spec.method)} sweep of {counts['sets']} sets ({counts['ran']} run now, {counts['skipped']} from an
earlier run, {counts['failed']} failed), metric {html.escape(metric)}; {best_line}.
Benchmark: {html.escape(summary['benchmark'].get('name', 'none'))}, same window and data.</p>
<ul>{notes}</ul>
<h2>Overfitting</h2>
{_overfitting_html(summary)}
<h2>Heat map</h2>
<label>x <select id="heat-x"></select></label><label>y <select id="heat-y"></select></label>
<label>metric <select id="heat-metric"></select></label><label>over the other values <select id="heat-agg"></select>
</label>
<div id="fig-heatmap" class="fig"></div>
<h2>Top sets by {html.escape(metric)}</h2>
{top_html}
<p>Last row: the benchmark, {html.escape(summary['benchmark'].get('name', 'none'))}.</p>
{divs}
{walk_html}
{"<h2>Failed sets</h2>" + failed_html if failed_html else ""}
<script>{script}{_heatmap_script(table, params, list(METRIC_COLUMNS), metric)}</script>
</body></html>
"""
    path.write_text(page, encoding="utf-8")
    return path

