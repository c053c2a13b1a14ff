"""Real packages pip-installed as wheels beside the genuine plugins, used by the ``hybrid`` script in
fresh processes: an impostor never replaces a component silently, and a broken plugin is named by
every command that loads plugins."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import yaml
from core_helpers import CliResult, demo_profile_data, run_hybrid_process
from wheels import pip_install, pure_wheel

from hybrid_core.cli import main
from hybrid_core.contracts import CONTRACT_VERSION

IMPOSTOR_SOURCE = '''
"""Registers a strategy named like the genuine equity_reversal, which never trades."""

from hybrid_core import hookimpl
from hybrid_core.contracts import Signals, Strategy

HYBRID_CONTRACT = "1.0"


class NeverTrades(Strategy):
    """Named equity_reversal; never trades."""

    name = "equity_reversal"

    def signals(self, panel):
        false = panel.close.notna() & False
        return Signals(entry=false, exit=false, keep=false, weight=panel.close * 0.0, decided=false.any(axis=1))


@hookimpl
def hybrid_register_strategies(register):
    """Register the impostor."""
    register(NeverTrades)
'''

BROKEN_SOURCE = '''
"""A plugin whose dependency is not installed."""

import missing_dependency  # noqa: F401

HYBRID_CONTRACT = "1.0"
'''

GENUINE = "'equity_reversal:equity_reversal' (package hybrid-equity-reversal "
BACKTEST = ("--start", "2021-01-04", "--end", "2021-04-21", "--lookahead-cuts", "0", "--log-level", "ERROR")


def install(root: Path, project: str, module: str, source: str, entry_point: str) -> dict[str, str]:
    """Install a one-module package into ``root/site``; the environment of processes that see it."""
    wheel = pure_wheel(root / "dist", project, "6.6.6", {f"{module}/__init__.py": source},
                       {"hybrid": {entry_point: module}})
    pip_install("--target", str(root / "site"), str(wheel))
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(root / "site"), os.environ.get("PYTHONPATH", "")]))}


def write_profile(workdir: Path, name: str, strategy: str = "equity_reversal") -> Path:
    data = demo_profile_data(workdir / name)
    data["strategies"][0]["name"] = strategy
    path = workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def hybrid(workdir: Path, *args: str | Path, env: dict[str, str] | None = None) -> CliResult:
    return run_hybrid_process(*map(str, args), cwd=workdir, env=env)


def trades(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "round_trips.csv")


def test_an_impostor_whose_entry_point_sorts_first_replaces_nothing(tmp_path: Path) -> None:
    env = install(tmp_path, "hybrid-impostor", "hybrid_impostor", IMPOSTOR_SOURCE, "aaa_equity")
    work = tmp_path / "work"
    work.mkdir()

    listed = hybrid(work, "plugins", "--json", env=env)
    info = json.loads(listed.out)
    assert info["errors"] == [] and {"aaa_equity", "equity_reversal"} <= {p["name"] for p in info["plugins"]}
    (conflict,) = info["conflicts"]
    assert (conflict["kind"], conflict["name"]) == ("strategy", "equity_reversal")
    assert [(p["qualified_name"], p["package"]) for p in conflict["providers"]] == [
        ("aaa_equity:equity_reversal", "hybrid-impostor"),
        ("equity_reversal:equity_reversal", "hybrid-equity-reversal")]

    bare = write_profile(work, "bare")
    expected = ("strategies[0].name: strategy name 'equity_reversal' is provided by 2 plugins: "
                "'aaa_equity:equity_reversal' (package hybrid-impostor 6.6.6) and " + GENUINE)
    for args in (("validate", bare), ("backtest", bare, "--out", work / "bare-bt", *BACKTEST)):
        result = hybrid(work, *args, env=env)
        assert result.code == 2, result.err
        assert expected in result.err and "name the one you mean by its qualified name" in result.err
    assert not (work / "bare-bt" / "round_trips.csv").exists()  # never a silent backtest of the impostor

    qualified = write_profile(work, "qualified", "equity_reversal:equity_reversal")
    result = hybrid(work, "backtest", qualified, "--out", work / "with", *BACKTEST, env=env)
    assert result.code == 0, result.err
    # the same backtest without the impostor installed (in this process, which does not see it)
    main(["backtest", str(write_profile(work, "alone")), "--out", str(work / "alone-bt"), *BACKTEST])
    assert len(trades(work / "with")) > 20
    pd.testing.assert_frame_equal(trades(work / "with"), trades(work / "alone-bt"))


def test_an_impostor_taking_the_plugin_name_fails_closed(tmp_path: Path) -> None:
    env = install(tmp_path, "hybrid-impostor", "hybrid_impostor", IMPOSTOR_SOURCE, "equity_reversal")
    work = tmp_path / "work"
    work.mkdir()
    result = hybrid(work, "validate", write_profile(work, "demo"), env=env)
    assert result.code == 2
    declared = ("plugin name 'equity_reversal' is declared by 2 packages (hybrid-equity-reversal 0.1.0, "
                "hybrid-impostor 6.6.6); uninstall one, or disable one by package name")
    warnings = [line for line in result.err.splitlines() if line.startswith("warning: plugin")]
    assert len(warnings) == 2 and all(declared in line for line in warnings)
    assert {w.split(" failed")[0] for w in warnings} == {
        "warning: plugin 'equity_reversal' (hybrid-equity-reversal)",
        "warning: plugin 'equity_reversal' (hybrid-impostor)"}
    assert ": strategies[0].name: unknown strategy 'equity_reversal'" in result.err  # after "error: <file>"
    chosen = hybrid(work, "validate", write_profile(work, "demo"),
                    env={**env, "HYBRID_DISABLE_PLUGINS": "hybrid-impostor"})
    assert chosen.code == 0 and "warning" not in chosen.err, chosen.err


def test_broken_and_incompatible_installed_plugins_are_named_in_one_line_each(tmp_path: Path) -> None:
    """An import error and a plugin built for contract 2.0: one warning line each, and exit 3 in strict mode.
    (validate, backtest and run all print them: tests/core/test_cli_commands.py.)"""
    env = install(tmp_path / "broken", "hybrid-broken", "hybrid_broken", BROKEN_SOURCE, "broken_one")
    future = IMPOSTOR_SOURCE.replace('HYBRID_CONTRACT = "1.0"', 'HYBRID_CONTRACT = "2.0"').replace(
        '"equity_reversal"', '"future"')
    more = install(tmp_path / "future", "hybrid-future", "hybrid_future", future, "future")
    env = {"PYTHONPATH": os.pathsep.join([more["PYTHONPATH"], env["PYTHONPATH"]])}
    work = tmp_path / "work"
    work.mkdir()
    profile = write_profile(work, "demo")
    result = hybrid(work, "run", profile, "--once", "--dry-run", "--as-of", "2021-04-16", "--log-level", "ERROR",
                    env=env)
    assert result.code == 0, result.err
    assert [line for line in result.err.splitlines() if line.startswith("warning: plugin")] == [
        "warning: plugin 'broken_one' (hybrid-broken) failed to load: ModuleNotFoundError: "
        "No module named 'missing_dependency' (details: hybrid plugins)",
        "warning: plugin 'future' (hybrid-future) failed to load: PluginLoadError: hybrid-future 6.6.6 was built "
        f"for hybrid contract 2.0, but this hybrid-core 0.1.0 implements contract {CONTRACT_VERSION} (a plugin "
        "needs the same major and a minor no newer); install a release of hybrid-future built for contract 1.x "
        "(details: hybrid plugins)"]
    strict = hybrid(work, "validate", profile, env={**env, "HYBRID_STRICT_PLUGINS": "1"})
    assert strict.code == 3 and strict.err.strip() == (
        "error: plugin 'broken_one' (hybrid-broken) failed to load: ModuleNotFoundError: "
        "No module named 'missing_dependency'")
