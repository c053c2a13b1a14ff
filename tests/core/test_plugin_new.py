"""`hybrid plugin new`: names, refusals and what is written (the packages' own tests run from wheels in
tests/packaging/test_clean_venv.py)."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest
import yaml

from hybrid_core.contracts import CONTRACT_VERSION
from hybrid_core.scaffold import KINDS, plugin_names


def test_names_of_a_new_plugin() -> None:
    names = plugin_names("Weekly-Losers")
    assert (names.name, names.dist, names.module, names.cls) == (
        "weekly_losers", "hybrid-weekly-losers", "hybrid_weekly_losers", "WeeklyLosers")
    assert plugin_names("hybrid_fx").dist == "hybrid-fx" and plugin_names("hybrid_fx").module == "hybrid_fx"


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_kind_writes_a_complete_package(run_cli, workdir: Path, kind: str) -> None:  # type: ignore[no-untyped-def]
    result = run_cli("plugin", "new", "my_thing", "--kind", kind, "--dir", "out")
    assert result.code == 0, result.err
    root = workdir / "out" / "hybrid-my-thing"
    assert result.out.startswith(f"wrote {Path('out') / 'hybrid-my-thing'}/")
    files = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
    expected = {"pyproject.toml", "README.md", "tox.ini", ".gitignore", "src/hybrid_my_thing/__init__.py",
                "src/hybrid_my_thing/plugin.py", "tests/test_my_thing.py"}
    assert files == expected | ({"example.yaml"} if kind == "strategy" else set())
    for path in root.rglob("*"):
        if path.is_file():
            assert "{{" not in path.read_text(), path  # every placeholder filled
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["hybrid"] == {"my_thing": "hybrid_my_thing.plugin"}
    assert project["dependencies"] == ["hybrid-core>=0.1.0"]
    plugin = ast.parse((root / "src/hybrid_my_thing/plugin.py").read_text())
    declared = [node.value.value for node in plugin.body if isinstance(node, ast.Assign)
                and [t.id for t in node.targets if isinstance(t, ast.Name)] == ["HYBRID_CONTRACT"]]
    assert declared == [CONTRACT_VERSION]
    ast.parse((root / "tests/test_my_thing.py").read_text())
    assert f"hybrid plugin new my_thing --kind {kind}" in (root / "README.md").read_text()
    if kind == "strategy":
        assert yaml.safe_load((root / "example.yaml").read_text())["strategies"][0]["name"] == "my_thing:my_thing"


@pytest.mark.parametrize(("args", "message"), [
    (("9lives",), "plugin name '9lives': use letters, digits and underscores, starting with a letter"),
    (("paper_broker",), "plugin name 'paper_broker' belongs to a built-in plugin of hybrid-core"),
    (("fine", "--kind", "signal"), "Invalid value for '--kind': 'signal' is not one of"),
])
def test_bad_requests_are_one_line(run_cli, workdir: Path, args: tuple[str, ...], message: str) -> None:  # type: ignore[no-untyped-def]
    result = run_cli("plugin", "new", *args)
    assert result.code in (1, 2) and message in result.err and len(result.err.strip().splitlines()) == 1


def test_an_existing_folder_is_never_overwritten(run_cli, workdir: Path) -> None:  # type: ignore[no-untyped-def]
    (workdir / "hybrid-mine").mkdir()
    (workdir / "hybrid-mine" / "keep.txt").write_text("mine")
    result = run_cli("plugin", "new", "mine")
    assert result.code == 2 and "hybrid-mine already exists; choose another name or folder (--dir)" in result.err
    assert [p.name for p in (workdir / "hybrid-mine").iterdir()] == ["keep.txt"]
