"""Fixtures for the core tests: a clean environment, a temp work folder, the CLI in-process."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from core_helpers import ENV_KEYS, CliResult, demo_profile_data


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No trading-mode or plugin switches leak in from the developer's shell."""
    for key in ENV_KEYS:
        monkeypatch.delenv(key, raising=False)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temp working folder (the CLI writes nothing into the repo)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def write_profile(workdir: Path) -> Callable[..., Path]:
    """Write a (modified) demo profile into the work folder; returns its path."""

    def write(data: dict[str, Any] | None = None, name: str = "profile.yaml") -> Path:
        path = workdir / name
        path.write_text(yaml.safe_dump(data if data is not None else demo_profile_data(workdir)))
        return path

    return write


@pytest.fixture
def run_cli(capfd: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """Run ``hybrid ARGS`` in-process through :func:`hybrid_core.cli.main` (its error handling included),
    with a fresh CLI each call; ``plugins=[(name, module), ...]`` loads extra in-process plugins."""
    from hybrid_core.cli import build_cli, main

    def run(*args: str, plugins: list[tuple[str, Any]] | None = None) -> CliResult:
        capfd.readouterr()
        try:
            main([str(a) for a in args], cli=build_cli(extra_plugins=plugins))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out, err = capfd.readouterr()
        return CliResult(code, out, err)

    return run
