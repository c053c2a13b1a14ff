"""The files of a sweep folder, written from a :class:`~hybrid_core.research.sweep.SweepResult`.

- ``results.parquet`` / ``results.csv``: one row per set: ``set_id``, one column per varied
  value (named like ``equity_reversal.decile``), ``status`` (``ok``/``failed``), ``error``, and
  the statistics of :data:`~hybrid_core.research.variant_backtest.METRIC_COLUMNS`;
- ``returns.parquet``: daily returns of every set that ran (the input of the overfitting
  statistics), columns ``set_<id>``;
- ``sweep.json``: the sweep's settings, counts, best set, DSR, PBO, benchmark, workers, timings;
- ``report.html``: see :mod:`.report`;
- with ``--walk-forward``: ``walk_forward.csv`` (one row per fold) and ``oos_equity.csv``.

``sweep.sqlite`` (the journal) is written while the sweep runs; every file here can be made
again from it by rerunning the sweep into the same folder.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..engine import stats
from ..engine.backtest import write_csv
from ..ops.atomic import atomic_replace
from .sweep import SweepResult, best_metric
from .variant_backtest import METRIC_COLUMNS


def results_table(result: SweepResult) -> pd.DataFrame:
    """One row per set, sorted by set id (see the module docstring)."""
    dims = result.request.plan.dimensions
    rows = []
    for item in result.sets:
        outcome = result.outcomes[item.id]
        row: dict[str, Any] = {"set_id": item.id}
        row.update({d.label: _cell(item.values.get(d.path.text)) for d in dims})
        row["status"] = "ok" if outcome.ok else "failed"
        row["error"] = outcome.error
        row.update({name: outcome.metrics.get(name, math.nan) for name in METRIC_COLUMNS})
        rows.append(row)
    columns = ["set_id", *(d.label for d in dims), "status", "error", *METRIC_COLUMNS]
    table = pd.DataFrame(rows, columns=columns)
    for name in METRIC_COLUMNS:
        table[name] = pd.to_numeric(table[name], errors="coerce").astype("float64")
    for name in ("trades", "refused_orders"):  # counts: whole numbers, empty for a failed set
        table[name] = pd.Series([None if v != v else int(v) for v in table[name]], dtype=object)
    return table.sort_values("set_id", ignore_index=True)


def _cell(value: Any) -> Any:
    if isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True)
    return value


def sweep_summary(result: SweepResult) -> dict[str, Any]:
    """The content of ``sweep.json``."""
    request = result.request
    spec = request.plan.spec
    best = result.best
    dates = result.dates
    bench_name, bench = result.benchmark
    ppy = stats.periods_per_year(dates)
    bench_block = {"name": bench_name, **stats.return_stats(bench, float(bench.iloc[0]), ppy)} if len(bench) else {}
    summary: dict[str, Any] = {
        "profile": result.profile_name, "profile_path": str(request.profile_path),
        "sweep_file": request.plan.source, "method": spec.method, "metric": spec.metric,
        "start": str(dates[0].date()) if len(dates) else None, "end": str(dates[-1].date()) if len(dates) else None,
        "sessions": len(dates), "parameters": {d.label: d.path.text for d in request.plan.dimensions},
        "counts": result.counts,
        "best": None if best is None else {
            "set_id": best.set_id, spec.metric: best_metric(result),
            "parameters": _labelled(result, best.set_id), "metrics": best.metrics},
        "deflated_sharpe": None, "pbo": None, "overfitting_note": result.overfitting_note,
        "benchmark": bench_block, "notes": list(result.facts.notes),
        "cluster": {"scheduler": request.scheduler or "embedded LocalCluster",
                    "workers_requested": request.workers, "workers": result.workers},
        "timings": result.timings,
    }
    if result.deflated is not None:
        d = result.deflated
        annual = math.sqrt(ppy)
        summary["deflated_sharpe"] = {
            "dsr": d.dsr, "sharpe_annualised": d.sharpe * annual, "expected_max_sharpe_annualised":
            d.expected_max_sharpe * annual, "sharpe_per_period": d.sharpe, "expected_max_sharpe_per_period":
            d.expected_max_sharpe, "sharpe_variance_per_period": d.sharpe_variance, "trials": d.trials,
            "observations": d.observations, "skewness": d.skewness, "kurtosis": d.kurtosis}
    if result.overfitting is not None:
        o = result.overfitting
        summary["pbo"] = {"pbo": o.pbo, "partitions": o.partitions, "combinations": o.combinations,
                          "rows_used": o.rows_used, "median_logit": float(np.median(o.logits))}
    if result.walk_forward is not None:
        summary["walk_forward"] = result.walk_forward.summary
    return stats.json_ready(summary)


def _labelled(result: SweepResult, set_id: int) -> dict[str, Any]:
    """A set's values by column label (``equity_reversal.decile``)."""
    values = next(s.values for s in result.sets if s.id == set_id)
    return {d.label: values.get(d.path.text) for d in result.request.plan.dimensions}


def write_sweep_outputs(result: SweepResult) -> dict[str, Any]:
    """Write every file of the sweep folder; returns the ``sweep.json`` content."""
    from .report import render_sweep_report

    out = result.request.out_dir
    out.mkdir(parents=True, exist_ok=True)
    table = results_table(result)
    _write_bytes(out / "results.parquet", _parquet(table))
    write_csv(out / "results.csv", table)
    _write_bytes(out / "returns.parquet", _parquet(result.returns_matrix().reset_index(names="date")))
    summary = sweep_summary(result)
    if result.walk_forward is not None:
        walk = result.walk_forward
        write_csv(out / "walk_forward.csv", walk.folds)
        write_csv(out / "oos_equity.csv", walk.equity.reset_index(names="date"))
    _write_bytes(out / "sweep.json", (json.dumps(summary, indent=2) + "\n").encode())
    render_sweep_report(out / "report.html", result, table, summary)
    return summary


def _parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def _write_bytes(path: Path, content: bytes) -> None:
    with atomic_replace(path) as handle:
        handle.write(content)


