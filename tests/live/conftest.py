"""Fixtures for live-cycle tests: the demo profile copied into a temp folder, outputs redirected."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from hybrid_core.sample import EQUITY_UNIVERSE, sample_file
from hybrid_core.testing import sample_bars_path

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def demo_profile(tmp_path: Path):
    """Write a copy of profiles/demo.yaml into tmp_path with outputs there; returns a factory."""

    def make(**overrides) -> Path:
        profile = yaml.safe_load((REPO / "profiles" / "demo.yaml").read_text())
        profile["data"]["params"]["path"] = str(sample_bars_path())
        profile["strategies"][0]["universe"] = str(sample_file(EQUITY_UNIVERSE))
        profile["outputs"] = {"trade_log": str(tmp_path / "trades.csv"), "health_file": str(tmp_path / "h.health"),
                              "state_db": str(tmp_path / "state" / "state.sqlite")}
        profile["risk"] = [r for r in profile["risk"] if r["name"] != "kill_switch"] + [
            {"name": "kill_switch", "params": {"path": str(tmp_path / "KILL_SWITCH")}}]
        for key, value in overrides.items():
            profile[key] = value
        path = tmp_path / "profile.yaml"
        path.write_text(yaml.safe_dump(profile, sort_keys=False))
        return path

    return make
