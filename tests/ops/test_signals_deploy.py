"""Monitoring files: the alert rules (promtool), the Grafana board and the docs name only real metrics."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from hybrid_core.live.cycle import CycleResult
from hybrid_core.ops.metrics import METRICS, RUN_LABELS, RunMetrics
from hybrid_core.ops.observer import RunInfo

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "deploy" / "prometheus-rules.yaml"
DASHBOARD = REPO / "deploy" / "grafana-dashboard.json"
SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}
SELECTOR = re.compile(r"\b(hybrid_[a-z0-9_]+)\s*(\{[^}]*\})?")
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
DASHBOARD_VARIABLES = {"$profile": ".*", "$mode": ".*", "$window": "1d"}


def promtool() -> str:
    path = shutil.which("promtool")
    assert path, "promtool is missing: install Debian's prometheus package (scripts/setup.sh --test does)"
    return path


@pytest.fixture(scope="module")
def exposed() -> dict[str, set[str]]:
    """Every series name the metrics module exposes, with its label names."""
    metrics = RunMetrics()
    metrics.run_started(RunInfo(profile="demo", mode="paper", broker="paper", strategies=("equity_reversal",),
                                risk_rules=("max_order_value", "kill_switch")))
    metrics.cycle_finished(CycleResult(cycle=1, as_of=None, portfolio_value=1.0))
    names: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        labels = {*RUN_LABELS, *METRICS[family.name if family.name in METRICS else family.name + "_total"][2]}
        for suffix in SUFFIXES[family.type]:
            name = family.name + suffix if not family.name.endswith(suffix) else family.name
            names[name] = labels | ({"le"} if suffix == "_bucket" else set())
    return names


def test_every_declared_family_is_exposed_with_its_type(exposed) -> None:
    for name, (kind, _help, _labels) in METRICS.items():
        assert any(n == name + s for s in SUFFIXES[kind] for n in exposed), name
    assert len(METRICS) == 20


def check_expression(expr: str, exposed: dict[str, set[str]]) -> list[str]:
    """Problems of a PromQL expression: unknown metrics, labels no selected metric has."""
    problems = []
    used = SELECTOR.findall(expr)
    labels: set[str] = set()
    for name, braces in used:
        if name not in exposed:
            problems.append(f"unknown metric {name}")
            continue
        labels |= exposed[name]
        for label in re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", braces):
            if label not in exposed[name]:
                problems.append(f"{name} has no label {label}")
    for group in GROUPING.findall(expr):
        for label in filter(None, (g.strip() for g in group.split(","))):
            if label not in labels:
                problems.append(f"grouping by {label}, which none of {[n for n, _ in used]} has")
    if not used:
        problems.append("no hybrid metric")
    return problems


def dashboard_expressions() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    exprs += [v["definition"] for v in board["templating"]["list"] if v.get("type") == "query"]
    return exprs


def test_the_dashboard_references_only_metrics_and_labels_that_exist(exposed) -> None:
    exprs = dashboard_expressions()
    problems = {e: check_expression(e, exposed) for e in exprs}
    assert not {e: p for e, p in problems.items() if p}
    shown = {name for e in exprs for name, _ in SELECTOR.findall(e)}
    # the board the issue asks for: value, PnL, orders, refusals, cycle time, staleness
    assert {"hybrid_portfolio_value", "hybrid_realised_pnl", "hybrid_orders_total", "hybrid_refusals_total",
            "hybrid_cycle_duration_seconds_bucket", "hybrid_data_stale_symbols"} <= shown


def test_the_checker_catches_a_wrong_name_and_a_wrong_label(exposed) -> None:
    assert check_expression("hybrid_portfolio_valu", exposed) == ["unknown metric hybrid_portfolio_valu"]
    assert check_expression('sum by (rule) (hybrid_orders_total{side="buy"})', exposed) == [
        "grouping by rule, which none of ['hybrid_orders_total'] has"]


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    rules = []
    for i, expr in enumerate(e for e in dashboard_expressions() if not e.startswith("label_values")):
        for var, value in DASHBOARD_VARIABLES.items():
            expr = expr.replace(var, value)
        rules.append({"record": f"dashboard:panel_{i}", "expr": expr})
    file = tmp_path / "dashboard-rules.yaml"
    file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run([promtool(), "check", "rules", str(file)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rules_pass_promtool_and_their_unit_tests(exposed) -> None:
    check = subprocess.run([promtool(), "check", "rules", str(RULES)], capture_output=True, text=True)
    assert check.returncode == 0 and "SUCCESS: 6 rules found" in check.stdout, check.stdout + check.stderr
    test = subprocess.run([promtool(), "test", "rules", str(RULES.with_suffix(".test.yaml"))],
                          capture_output=True, text=True)
    assert test.returncode == 0, test.stdout + test.stderr
    rules = yaml.safe_load(RULES.read_text())["groups"][0]["rules"]
    assert {r["alert"] for r in rules} >= {"HybridNoCycle", "HybridGuardTripped", "HybridErrors", "HybridStaleData"}
    assert not {r["alert"]: p for r in rules if (p := check_expression(r["expr"], exposed))}


def test_the_operations_guide_shows_the_rules_file_and_every_metric() -> None:
    guide = (REPO / "docs" / "operations.md").read_text()
    blocks = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", guide, re.S)]
    assert yaml.safe_load(RULES.read_text()) in blocks
    documented = set(re.findall(r"`(hybrid_[a-z_]+)`", guide))
    declared = {name + ("_total" if kind == "counter" else "") for name, (kind, _h, _l) in METRICS.items()}
    assert declared == documented
