"""Heartbeat file and `hybrid health` exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from hybrid_core.commands.health import command
from hybrid_core.ops.heartbeat import HeartbeatFile, check_health


def _invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(command, list(args), env=env)
    return result.exit_code, result.output


def test_write_then_read_round_trip(tmp_path: Path) -> None:
    beat = HeartbeatFile(tmp_path / "sub" / "hb.json")
    written = beat.write(cycle=3, mode="paper", signals=2)
    got = beat.read()
    assert got == written
    assert got["pid"] == os.getpid() and got["cycle"] == 3 and got["signals"] == 2
    assert got["time"].endswith("Z") and got["last_error"] is None and got["status"] == "ok"
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["hb.json"]  # no temp file left


def test_read_missing_or_garbage_is_none(tmp_path: Path) -> None:
    assert HeartbeatFile(tmp_path / "nope").read() is None
    (tmp_path / "bad").write_text("{half")
    assert HeartbeatFile(tmp_path / "bad").read() is None


def test_health_ok_exit_0(tmp_path: Path) -> None:
    path = tmp_path / "hb"
    HeartbeatFile(path).write(cycle=7, mode="live", status="waiting")
    code, out = _invoke("--file", str(path))
    assert code == 0 and out.startswith("OK:") and "cycle 7" in out and len(out.splitlines()) == 1


def test_health_missing_exit_1(tmp_path: Path) -> None:
    code, out = _invoke("--file", str(tmp_path / "absent"))
    assert code == 1 and "missing" in out and len(out.splitlines()) == 1


def test_health_stale_exit_1(tmp_path: Path) -> None:
    path = tmp_path / "hb"
    HeartbeatFile(path).write(cycle=1, mode="paper")
    old = datetime.now(UTC) - timedelta(seconds=900)
    data = json.loads(path.read_text())
    data["time"] = old.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    path.write_text(json.dumps(data))
    code, out = _invoke("--file", str(path))
    assert code == 1 and "stale" in out
    code, out = _invoke("--file", str(path), "--max-age", "1000")
    assert code == 0, out


@pytest.mark.parametrize("kwargs, needle", [
    ({"status": "error", "last_error": "BrokerError: 401 unauthorized"}, "BrokerError: 401"),
    ({"last_error": "DataError: no bars"}, "DataError: no bars"),
    ({"status": "stopped"}, "'stopped'"),
])
def test_health_reports_error_exit_1(tmp_path: Path, kwargs: dict, needle: str) -> None:
    path = tmp_path / "hb"
    HeartbeatFile(path).write(cycle=2, mode="paper", **kwargs)
    code, out = _invoke("--file", str(path))
    assert code == 1 and needle in out


def test_health_unreadable_exit_1(tmp_path: Path) -> None:
    path = tmp_path / "hb"
    path.write_text("not json at all")
    code, out = _invoke("--file", str(path))
    assert code == 1 and "not a JSON object" in out
    path.write_text(json.dumps({"cycle": 1}))
    code, out = _invoke("--file", str(path))
    assert code == 1 and "no valid 'time'" in out


def test_health_future_time_is_clock_skew(tmp_path: Path) -> None:
    path = tmp_path / "hb"
    future = datetime.now(UTC) + timedelta(hours=1)
    path.write_text(json.dumps({"time": future.isoformat(), "cycle": 1}))
    result = check_health(path, 600)
    assert not result.ok and "future" in result.line


def test_health_json_and_env_default(tmp_path: Path) -> None:
    path = tmp_path / "hb"
    HeartbeatFile(path).write(cycle=5, mode="paper")
    code, out = _invoke("--json", env={"HYBRID_HEALTH_FILE": str(path)})
    payload = json.loads(out)
    assert code == 0 and payload["ok"] is True and payload["heartbeat"]["cycle"] == 5
    assert payload["file"] == str(path)


def test_health_exit_codes_in_a_real_process(tmp_path: Path) -> None:
    """What a probe sees: the process exit status, not a click test result."""
    path = tmp_path / "hb"
    probe = [sys.executable, "-m", "hybrid_core.cli", "health", "--file", str(path)]
    missing = subprocess.run(probe, capture_output=True, text=True, timeout=60)
    HeartbeatFile(path).write(cycle=1, mode="paper")
    healthy = subprocess.run(probe, capture_output=True, text=True, timeout=60)
    assert (missing.returncode, healthy.returncode) == (1, 0)
    assert healthy.stdout.startswith("OK:")
