"""Fixtures of the research tests: the demo profile with absolute paths, and sweep files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from research_helpers import demo_profile_data


@pytest.fixture
def demo_profile(tmp_path: Path) -> Callable[..., Path]:
    """Write the demo profile (optionally changed by ``edit``) into tmp_path; returns its path."""

    def write(edit: Callable[[dict[str, Any]], None] | None = None, name: str = "profile.yaml") -> Path:
        data = demo_profile_data()
        if edit is not None:
            edit(data)
        path = tmp_path / name
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    return write


@pytest.fixture
def sweep_file(tmp_path: Path) -> Callable[..., Path]:
    """Write a sweep file from a mapping into tmp_path; returns its path."""

    def write(content: dict[str, Any], name: str = "grid.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(content, sort_keys=False))
        return path

    return write
