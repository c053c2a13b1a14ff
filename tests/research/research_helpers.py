"""Helpers of the research tests: the demo profile with absolute paths."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from hybrid_core.sample import sample_file

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "profiles" / "demo.yaml"


def demo_profile_data() -> dict[str, Any]:
    """profiles/demo.yaml with its data and universe paths made absolute."""
    data = yaml.safe_load(DEMO.read_text())
    data["data"]["params"]["path"] = str(sample_file("bars.parquet"))
    data["strategies"][0]["universe"] = str(sample_file("universe_equities.txt"))
    return data
