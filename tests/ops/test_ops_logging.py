"""Log sinks: JSON line shape, rotated file, stdlib routing and secret redaction."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from loguru import logger

from hybrid_core.errors import HybridError
from hybrid_core.ops.logging_setup import Redactor, configure_logging, secrets_from_env

REPO = Path(__file__).resolve().parents[2]
API_KEY = "PKTESTKEY9f3a1c77"
SECRET_KEY = "sk_live_5ecretValue/with+chars=="
OTHER_TOKEN = "tok-abcdef123456"

# A small "run": hybrid's own loguru calls, bound extras, an exception and stdlib loggers
# (as alpaca-py, urllib3 and yfinance log), each leaking the secrets in a different way.
RUN_SCRIPT = textwrap.dedent(f"""
    import logging, sys
    from loguru import logger
    from hybrid_core.ops.logging_setup import configure_logging
    configure_logging(json_logs=sys.argv[1] == "json", log_file=sys.argv[2], level="DEBUG",
                      secrets=["explicit-secret-value"])
    logger.info("Cycle completed", cycle=42, signals_count=3)
    logger.bind(api_key="{API_KEY}").info("auth with {{}}", "{SECRET_KEY}")
    logger.info("headers", headers={{"APCA-API-KEY-ID": "{API_KEY}", "nested": ["{OTHER_TOKEN}"]}})
    logger.warning("explicit-secret-value leaked?")
    logging.getLogger("urllib3.connectionpool").warning("GET /v2/account?key=%s", "{API_KEY}")
    logging.getLogger("alpaca.trading").error("secret %s", "{SECRET_KEY}")
    try:
        raise RuntimeError("401 for key {API_KEY}")
    except RuntimeError:
        logger.exception("broker call failed")
    """)


@pytest.fixture(autouse=True)
def _restore_logging():
    """Give later tests loguru's default sink and the stdlib root handlers back."""
    root_handlers = list(logging.getLogger().handlers)
    yield
    logger.remove()
    logger.add(sys.stderr)
    logger.configure(patcher=lambda record: None)
    logging.getLogger().handlers[:] = root_handlers


def _run(tmp_path: Path, mode: str) -> tuple[list[str], list[str]]:
    env = dict(os.environ, ALPACA_API_KEY=API_KEY, ALPACA_SECRET_KEY=SECRET_KEY,
               SOME_SERVICE_TOKEN=OTHER_TOKEN)
    log_file = tmp_path / "logs" / "hybrid.log"
    proc = subprocess.run([sys.executable, "-c", RUN_SCRIPT, mode, str(log_file)], env=env,
                          capture_output=True, text=True, timeout=60, check=True)
    return proc.stderr.splitlines(), log_file.read_text(encoding="utf-8").splitlines()


@pytest.mark.parametrize("mode", ["json", "text"])
def test_no_secret_in_any_log_line(tmp_path: Path, mode: str) -> None:
    stderr_lines, file_lines = _run(tmp_path, mode)
    lines = stderr_lines + file_lines
    assert len(stderr_lines) >= 7 and len(file_lines) >= 7
    for line in lines:
        for secret in (API_KEY, SECRET_KEY, OTHER_TOKEN, "explicit-secret-value"):
            assert secret not in line, f"{secret!r} leaked in: {line}"
    assert sum("***" in line for line in lines) >= 2 * 6


def test_json_lines_shape(tmp_path: Path) -> None:
    stderr_lines, file_lines = _run(tmp_path, "json")
    records = [json.loads(line) for line in stderr_lines]
    assert [json.loads(line) for line in file_lines] == records
    for rec in records:
        assert {"timestamp", "level", "logger", "message"} <= set(rec)
        assert rec["timestamp"].endswith("Z") and "T" in rec["timestamp"]
    cycle = next(r for r in records if r["message"] == "Cycle completed")
    assert cycle["cycle"] == 42 and cycle["signals_count"] == 3 and cycle["level"] == "INFO"
    stdlib = next(r for r in records if r["logger"] == "urllib3.connectionpool")
    assert stdlib["level"] == "WARNING" and stdlib["message"] == "GET /v2/account?key=***"
    failed = next(r for r in records if r["message"] == "broker call failed")
    assert "RuntimeError: 401 for key ***" in failed["exception"]
    assert next(r for r in records if r["message"] == "headers")["headers"]["nested"] == ["***"]


def test_reserved_extra_names_do_not_overwrite_fields(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(json_logs=True)
    try:
        logger.bind(message="spoof", level="X").info("real")
        rec = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    finally:
        logger.remove()
    assert rec["message"] == "real" and rec["level"] == "INFO"
    assert rec["extra_message"] == "spoof" and rec["extra_level"] == "X"


def test_configure_twice_keeps_one_stderr_sink(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(json_logs=True)
    configure_logging(json_logs=True, level="WARNING")
    try:
        logger.info("hidden")
        logger.warning("shown")
        err = capsys.readouterr().err.strip().splitlines()
    finally:
        logger.remove()
    assert [json.loads(line)["message"] for line in err] == ["shown"]


def test_unknown_level_is_one_clear_error() -> None:
    with pytest.raises(HybridError, match="unknown log level 'LOUD'"):
        configure_logging(level="loud")


def test_secret_collection_and_short_values() -> None:
    env = {"ALPACA_API_KEY": "PKAAAA1111", "MY_SECRET": "hush-hush", "GH_TOKEN": "ghp_x12345",
           "PATH": "/usr/bin", "TINY_KEY": "1"}
    found = secrets_from_env(env)
    assert set(found) == {"PKAAAA1111", "hush-hush", "ghp_x12345", "1"}
    redactor = Redactor(found)
    assert redactor.text("a PKAAAA1111 b hush-hush 1 2") == "a *** b *** 1 2"


def _demo_profile_with_name(tmp_path: Path, name: str) -> Path:
    """The demo profile (outputs under tmp_path, via the core tests' helper) with another name."""
    import importlib.util

    import yaml

    spec = importlib.util.spec_from_file_location("core_helpers", REPO / "tests" / "core" / "core_helpers.py")
    assert spec is not None and spec.loader is not None
    helpers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helpers)
    profile = helpers.demo_profile_data(tmp_path)
    profile["name"] = name
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump(profile))
    return path


def test_a_real_run_never_logs_the_keys(tmp_path: Path) -> None:
    """`hybrid run --once --dry-run --json-logs --log-file` with the keys set; the key is also in the
    profile name (which the run logs), so a missing redaction makes this test fail."""
    profile = _demo_profile_with_name(tmp_path, f"demo-{API_KEY}")
    log_file = tmp_path / "logs" / "run.log"
    env = dict(os.environ, ALPACA_API_KEY=API_KEY, ALPACA_SECRET_KEY=SECRET_KEY, TRADING_MODE="PAPER")
    argv = ["run", str(profile), "--once", "--dry-run", "--json-logs", "--log-file", str(log_file)]
    proc = subprocess.run([sys.executable, "-m", "hybrid_core.cli", *argv], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stderr.splitlines() + log_file.read_text().splitlines()
    assert len(lines) > 10
    for line in lines:
        assert API_KEY not in line and SECRET_KEY not in line, line
    records = [json.loads(line) for line in proc.stderr.splitlines()]
    assert any(r.get("profile") == "demo-***" for r in records)
    assert any(r["message"] == "Cycle completed" and "cycle" in r for r in records)


def test_log_file_rotates_by_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hybrid_core.ops import logging_setup

    monkeypatch.setattr(logging_setup, "ROTATION", "2 KB")
    monkeypatch.setattr(logging_setup, "RETENTION", 2)
    log_file = tmp_path / "logs" / "hybrid.log"
    configure_logging(json_logs=True, log_file=str(log_file), level="WARNING")
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    for i in range(200):
        logger.warning("line {i} " + "x" * 40, i=i)
    logger.remove()
    files = sorted((tmp_path / "logs").iterdir())
    assert log_file in files and 2 <= len(files) <= 3, files  # current file + at most 2 rotated
    for path in files:
        assert path.stat().st_size < 4096
        for line in path.read_text().splitlines():
            assert json.loads(line)["level"] == "WARNING"
    assert json.loads(log_file.read_text().splitlines()[-1])["i"] == 199
