"""The issue's "done when": plugins written by `hybrid plugin new`, built as wheels and installed with
a wheel of hybrid-core into a clean venv outside the repository, pass their kit tests there; the
strategy is listed, validates, backtests and replays. Nothing of the checkout is visible."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from clean_venv import REPO, CleanVenv, build_wheels

from hybrid_core.contracts import CONTRACT_VERSION

KINDS = ("strategy", "risk", "data", "broker")

CHECK_ISOLATION = """
import importlib.metadata as md, json, sys
import hybrid_core
from hybrid_core.errors import DataError
from hybrid_core.testing import sample_panel, shared_data_dir
try:
    shared = shared_data_dir()
except DataError as exc:
    shared = str(exc)
direct = md.distribution("hybrid-core").read_text("direct_url.json")
print(json.dumps({"core": hybrid_core.__file__, "path": sys.path, "direct_url": direct, "shared": shared,
                  "sample": [len(sample_panel().symbols), str(sample_panel().dates[-1].date())]}))
"""


def ok(result) -> str:  # type: ignore[no-untyped-def]
    assert result.returncode == 0, f"{result.args}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def test_generated_plugins_from_wheels_in_a_clean_venv(tmp_path: Path, core_wheel: Path,
                                                       dependencies: Path) -> None:
    env = CleanVenv(tmp_path / "venv", dependencies)
    env.install(core_wheel)
    work = tmp_path / "work"
    work.mkdir()

    # the kit works from the wheel: sample bars as package data, no ../shared, no variables
    seen = json.loads(ok(env.run("python", "-c", CHECK_ISOLATION, cwd=work)))
    assert Path(seen["core"]).is_relative_to(env.path), seen["core"]
    assert not [p for p in seen["path"] if p and Path(p).resolve().is_relative_to(REPO)], seen["path"]
    assert seen["direct_url"] is None or '"editable": true' not in seen["direct_url"]
    assert "only found beside a hybrid source checkout; set HYBRID_SHARED_DATA" in seen["shared"]
    assert seen["sample"] == [42, "2021-04-21"]

    # `hybrid plugin new` of the installed core writes one package of each kind; wheels of them
    packages = []
    for kind in KINDS:
        ok(env.run("hybrid", "plugin", "new", f"wheel_{kind}", "--kind", kind, cwd=work))
        packages.append(work / f"hybrid-wheel-{kind}")
    wheels = build_wheels(packages, tmp_path / "dist")
    assert len(wheels) == len(KINDS)
    env.install(*wheels)

    # each package's own tests pass against the installed wheels (tests run from the package folder)
    for package in packages:
        out = ok(env.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=package))
        assert " passed" in out and "failed" not in out and "skipped" not in out, out

    info = json.loads(ok(env.run("hybrid", "plugins", "--json", cwd=work)))
    assert info["errors"] == [] and info["conflicts"] == []
    listed = {p["name"]: p for p in info["plugins"]}
    for kind in KINDS:
        plugin = listed[f"wheel_{kind}"]
        assert (plugin["package"], plugin["version"], plugin["contract"]) == (f"hybrid-wheel-{kind}", "0.1.0",
                                                                                     CONTRACT_VERSION)
    assert listed["wheel_strategy"]["components"][0]["qualified_name"] == "wheel_strategy:wheel_strategy"

    example = work / "hybrid-wheel-strategy" / "example.yaml"
    assert "OK (1 strategy" in ok(env.run("hybrid", "validate", example, cwd=work))
    backtest = ok(env.run("hybrid", "backtest", example, "--start", "2020-03-02", "--end", "2021-04-21",
                          "--out", work / "bt", "--no-progress", cwd=work))
    summary = json.loads((work / "bt" / "summary.json").read_text())
    assert summary["total"]["trades"] > 10, backtest
    replay = ok(env.run("hybrid", "replay", example, "--start", "2021-02-01", "--end", "2021-04-21",
                        "--out", work / "replay", "--compare-backtest", "--no-progress", cwd=work))
    assert "replayed " in replay and "round trip(s)" in replay and "replay matches the backtest" in replay


@pytest.mark.slow
def test_the_generated_tox_ini_runs_the_tests(tmp_path: Path, core_wheel: Path) -> None:
    """tox builds the package in isolation and installs it with hybrid-core (HYBRID_CORE: the wheel) and
    every dependency from the package index into its own environment, then runs its tests."""
    from hybrid_core.scaffold import write_plugin

    package = write_plugin("tox_strategy", "strategy", tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HYBRID_", "PYTHONPATH", "VIRTUAL_ENV"))}
    env["HYBRID_CORE"] = str(core_wheel)
    proc = subprocess.run([sys.executable, "-m", "tox", "-q", "--workdir", str(tmp_path / ".tox")], cwd=package,
                          env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "4 passed" in proc.stdout and "congratulations" in proc.stdout
