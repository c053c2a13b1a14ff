"""A third-party strategy package, made in a temp folder, installed with pip and named in a profile.

This is how users add strategies: ``pip install`` a package that declares an entry point of
the group ``hybrid``, then name its strategy in a run profile. Three variants:

- in-process: the package's ``.dist-info`` on ``sys.path`` (fast, the host and CLI in this process);
- a real ``pip install`` of the package's wheel into an isolated folder, then the installed
  ``hybrid`` script in fresh processes (``hybrid plugins --json``, ``hybrid run``);
- (slow) ``pip install`` of the source folder itself, built by setuptools from its pyproject.toml.
"""

from __future__ import annotations

import json
import os
import textwrap
import tomllib
from pathlib import Path

import pytest
import yaml
from core_helpers import demo_profile_data, run_hybrid_process
from wheels import pip_install, pure_wheel

from hybrid_core.ops.audit import read_trade_log

PACKAGE = "hybrid-golden-cross"
MODULE = "hybrid_golden_cross"
STRATEGY_SOURCE = '''
"""A throwaway third-party strategy for hybrid."""

import attrs
import pandas as pd

from hybrid_core import hookimpl
from hybrid_core.contracts import Panel, Signals, Strategy

HYBRID_CONTRACT = "1.0"


class WeeklyLosers(Strategy):
    """Buys the `n` worst 5-session losers at each Friday close; sells the rest (test plugin)."""

    name = "weekly_losers"

    @attrs.define(kw_only=True)
    class Params:
        n: int = 2
        """How many names to hold."""

    def signals(self, panel: Panel) -> Signals:
        close = panel.close
        score = close / close.shift(5) - 1
        decided = pd.Series(close.index.day_of_week == 4, index=close.index) & close.notna().any(axis=1)
        chosen = (score.rank(axis=1, method="first") <= self.params.n) & decided.to_numpy()[:, None]
        weight = pd.DataFrame(self.allocation / self.params.n, index=close.index, columns=close.columns)
        exit_ = ~chosen & close.notna() & decided.to_numpy()[:, None]
        return Signals(entry=chosen, exit=exit_, keep=chosen & False, weight=weight, decided=decided,
                       exit_reason="rebalance", info={"score": score})


@hookimpl
def hybrid_register_strategies(register):
    """Register the test strategy."""
    register(WeeklyLosers)
'''


def make_source_package(root: Path) -> Path:
    """The package as its author writes it: pyproject.toml with the entry point, and the module."""
    src = root / "golden_cross"
    (src / MODULE).mkdir(parents=True)
    (src / MODULE / "__init__.py").write_text(textwrap.dedent(STRATEGY_SOURCE))
    (src / "pyproject.toml").write_text(textwrap.dedent(f"""
        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "{PACKAGE}"
        version = "0.3.1"
        description = "A third-party hybrid strategy"
        dependencies = ["hybrid-core"]

        [project.entry-points.hybrid]
        golden_cross = "{MODULE}"

        [tool.setuptools]
        packages = ["{MODULE}"]
        """))
    return src


def dist_info_files(src: Path) -> dict[str, str]:
    """METADATA and entry_points.txt of the package, from its pyproject.toml (what a backend writes)."""
    project = tomllib.loads((src / "pyproject.toml").read_text())["project"]
    metadata = f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n"
    points = "".join(f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items())
                     for group, eps in project["entry-points"].items())
    return {"METADATA": metadata, "entry_points.txt": points}


def build_wheel(src: Path, out: Path) -> Path:
    """A pure-Python wheel of the package, no build backend needed."""
    project = tomllib.loads((src / "pyproject.toml").read_text())["project"]
    return pure_wheel(out, project["name"], project["version"],
                      {f"{MODULE}/__init__.py": (src / MODULE / "__init__.py").read_bytes()}, project["entry-points"])


def profile_using_it(workdir: Path) -> Path:
    data = demo_profile_data(workdir)
    data["strategies"] = [{"name": "weekly_losers", "allocation": 0.5, "params": {"n": 3},
                           "universe": ["AAPL", "MSFT", "XOM", "INTC", "F", "KO"]}]
    path = workdir / "third_party.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def check_plugin_listed(info: dict) -> None:
    (plugin,) = [p for p in info["plugins"] if p["name"] == "golden_cross"]
    assert (plugin["package"], plugin["version"], plugin["builtin"]) == (PACKAGE, "0.3.1", False)
    assert plugin["components"] == [{
        "kind": "strategy", "name": "weekly_losers", "qualified_name": "golden_cross:weekly_losers", "params": ["n"],
        "summary": "Buys the `n` worst 5-session losers at each Friday close; sells the rest (test plugin)."}]
    assert plugin["contract"] == "1.0"
    assert info["errors"] == [] and info["conflicts"] == []


def check_dry_run_rows(workdir: Path) -> None:
    rows = read_trade_log(workdir / "trades.csv")
    assert len(rows) == 3 and set(rows["status"]) == {"dry_run"}
    assert set(rows["strategy"]) == {"weekly_losers"} and set(rows["side"]) == {"buy"}


def test_in_process_entry_point(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_cli,  # type: ignore[no-untyped-def]
                                workdir: Path) -> None:
    src = make_source_package(tmp_path / "pkg")
    site = tmp_path / "site"
    (site / f"{MODULE}-0.3.1.dist-info").mkdir(parents=True)
    for name, text in dist_info_files(src).items():
        (site / f"{MODULE}-0.3.1.dist-info" / name).write_text(text)
    (site / MODULE).mkdir()
    (site / MODULE / "__init__.py").write_text((src / MODULE / "__init__.py").read_text())
    monkeypatch.syspath_prepend(str(site))

    result = run_cli("plugins", "--json")
    assert result.code == 0, result.err
    check_plugin_listed(json.loads(result.out))

    from hybrid_core.testing import check_strategy, sample_panel

    module = __import__(MODULE)
    check_strategy(module.WeeklyLosers, sample_panel(["AAPL", "MSFT", "XOM", "INTC", "F", "KO"]))

    result = run_cli("run", profile_using_it(workdir), "--once", "--dry-run", "--as-of", "2021-04-16")
    assert result.code == 0, result.err
    check_dry_run_rows(workdir)


def run_installed(site: Path, workdir: Path) -> None:
    """`hybrid plugins --json` and `hybrid run` in fresh processes that see ``site``."""
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH", "")]))}
    result = run_hybrid_process("plugins", "--json", cwd=workdir, env=env)
    assert result.code == 0, result.err
    check_plugin_listed(json.loads(result.out))
    result = run_hybrid_process("run", profile_using_it(workdir), "--once", "--dry-run",
                                "--as-of", "2021-04-16", cwd=workdir, env=env)
    assert result.code == 0, result.err
    assert "3 order(s)" in result.out and "(dry run: nothing sent)" in result.out
    check_dry_run_rows(workdir)
    # without the folder on the path, the profile names a strategy that is not installed
    result = run_hybrid_process("validate", profile_using_it(workdir), cwd=workdir)
    assert result.code == 2 and "unknown strategy 'weekly_losers'" in result.err


def test_pip_installed_wheel_in_fresh_processes(tmp_path: Path) -> None:
    src = make_source_package(tmp_path / "pkg")
    wheel = build_wheel(src, tmp_path)
    site = tmp_path / "site"
    pip_install("--target", str(site), str(wheel))
    assert (site / MODULE / "__init__.py").exists()
    workdir = tmp_path / "work"
    workdir.mkdir()
    run_installed(site, workdir)


def setuptools_builds_wheels() -> str | None:
    """Why pip cannot build the source package offline here, or None if it can."""
    try:
        import setuptools
    except ImportError:
        return "setuptools is not installed (pip needs it to build a source package offline)"
    major = int(setuptools.__version__.split(".")[0])
    if major < 70:
        try:
            import wheel  # noqa: F401
        except ImportError:
            return f"setuptools {setuptools.__version__} needs the `wheel` package to build wheels offline"
    return None


@pytest.mark.slow
def test_pip_install_of_the_source_folder(tmp_path: Path) -> None:
    reason = setuptools_builds_wheels()
    if reason:
        pytest.fail(f"{reason}; install the test extras: pip install -e '.[test]'")
    src = make_source_package(tmp_path / "pkg")
    site = tmp_path / "site"
    pip_install("--no-build-isolation", "--target", str(site), str(src))
    workdir = tmp_path / "work"
    workdir.mkdir()
    run_installed(site, workdir)
