"""Session fixtures of the packaging tests: the core's wheel, and the folder of its dependencies."""

from __future__ import annotations

from pathlib import Path

import pytest
from clean_venv import TEST_RUNNER, build_wheels, core_sources, dependency_folder, requirements


@pytest.fixture(scope="session")
def core_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """hybrid-core built as a wheel from a copy of this checkout."""
    root = tmp_path_factory.mktemp("core")
    (wheel,) = build_wheels([core_sources(root / "src")], root / "dist")
    return wheel


@pytest.fixture(scope="session")
def dependencies(core_wheel: Path) -> Path:
    """The core's third-party dependencies and pytest, installed once (cached across sessions)."""
    return dependency_folder([*requirements(core_wheel), *TEST_RUNNER])
