"""Helpers of the research tests: the demo profile with absolute paths."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "profiles" / "demo.yaml"


def demo_profile_data() -> dict[str, Any]:
    """profiles/demo.yaml with its data and universe paths made absolute."""
    data = yaml.safe_load(DEMO.read_text())
    data["data"]["params"]["path"] = str(REPO / "data" / "sample" / "bars.parquet")
    data["strategies"][0]["universe"] = str(REPO / "data" / "sample" / "universe_equities.txt")
    return data
