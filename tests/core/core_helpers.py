"""Shared helpers of the core tests (paths, the demo profile in a temp folder, CLI runners)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import attrs
import yaml

from hybrid_core.testing import sample_bars_path

REPO = Path(__file__).resolve().parents[2]
DEMO_PROFILE = REPO / "profiles" / "demo.yaml"
SAMPLE_BARS = sample_bars_path()
HYBRID = Path(sys.executable).with_name("hybrid")
ENV_KEYS = ("TRADING_MODE", "LIVE_TRADING_ENABLED", "HYBRID_STRICT_PLUGINS", "HYBRID_DISABLE_PLUGINS",
            "HYBRID_KILL_SWITCH", "HYBRID_DEBUG", "ALPACA_API_KEY", "ALPACA_SECRET_KEY")


@attrs.define
class CliResult:
    """Exit code and captured output of one ``hybrid`` invocation."""

    code: int
    out: str
    err: str


def demo_profile_data(out_dir: Path) -> dict[str, Any]:
    """The demo profile with absolute data paths and every output redirected into ``out_dir``."""
    data = yaml.safe_load(DEMO_PROFILE.read_text())
    data["data"]["params"]["path"] = str(SAMPLE_BARS)
    for strat in data["strategies"]:
        if isinstance(strat.get("universe"), str):
            strat["universe"] = str((DEMO_PROFILE.parent / strat["universe"]).resolve())
    data["outputs"] = {"trade_log": str(out_dir / "trades.csv"),
                       "health_file": str(out_dir / "hybrid.health"),
                       "state_db": str(out_dir / "state" / "hybrid.sqlite")}
    for rule in data["risk"]:
        if rule["name"] == "kill_switch":
            rule["params"] = {"path": str(out_dir / "KILL_SWITCH")}
    return data


def run_hybrid_process(*args: str, cwd: Path, env: dict[str, str] | None = None,
                       executable: Path = HYBRID, timeout: float = 120) -> CliResult:
    """Run the installed ``hybrid`` script in a subprocess (a whole process, as a user would)."""
    full_env = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
    full_env.update(env or {})
    proc = subprocess.run([str(executable), *map(str, args)], cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=timeout)
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def error_lines(err: str) -> list[str]:
    """Lines of stderr that are not log records (log lines carry a ``| LEVEL |`` column)."""
    return [line for line in err.splitlines() if line.strip() and " | " not in line]
