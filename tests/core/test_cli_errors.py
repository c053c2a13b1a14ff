"""Bad input anywhere gives one clear line and a non-zero exit code, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from core_helpers import demo_profile_data, error_lines, run_hybrid_process

INTERNAL_ERROR_EXIT = 70  # what cli.main uses for bugs; bad input must never end there


def assert_one_clear_line(result, code: int, *needles: str) -> None:  # type: ignore[no-untyped-def]
    assert result.code == code, (result.code, result.err)
    lines = error_lines(result.err)
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: "), lines
    for needle in needles:
        assert needle in lines[0]
    assert "Traceback" not in result.err and "internal error" not in result.err


def test_missing_profile(run_cli, workdir: Path) -> None:  # type: ignore[no-untyped-def]
    result = run_cli("run", "nope.yaml", "--once", "--dry-run")
    assert_one_clear_line(result, 2, "profile not found: nope.yaml", "profiles/demo.yaml")


def test_unknown_plugin_name(run_cli, write_profile, workdir: Path) -> None:  # type: ignore[no-untyped-def]
    data = demo_profile_data(workdir)
    data["strategies"][1]["name"] = "crypto_adxx"
    result = run_cli("run", write_profile(data), "--once", "--dry-run")
    assert_one_clear_line(result, 2, "strategies[1].name: unknown strategy 'crypto_adxx'",
                          "installed: crypto_adx, equity_reversal")


def test_unknown_broker_name(run_cli, write_profile, workdir: Path) -> None:  # type: ignore[no-untyped-def]
    data = demo_profile_data(workdir)
    data["broker"] = {"name": "robinhood"}
    result = run_cli("run", write_profile(data), "--once", "--dry-run")
    assert_one_clear_line(result, 2, "broker.name: unknown broker 'robinhood'", "paper")


@pytest.mark.parametrize("content, needle", [
    (b"this is not parquet", "ArrowInvalid"),
    (b"", "cannot read data file"),
])
def test_unreadable_parquet(run_cli, write_profile, workdir: Path, content: bytes,  # type: ignore[no-untyped-def]
                            needle: str) -> None:
    bars = workdir / "bars.parquet"
    bars.write_bytes(content)
    data = demo_profile_data(workdir)
    data["data"]["params"]["path"] = str(bars)
    for extra in ([], ["--as-of", "2021-04-16"]):
        result = run_cli("run", write_profile(data), "--once", "--dry-run", *extra)
        assert_one_clear_line(result, 7, f"cannot read data file {bars}", needle)


def test_missing_data_file(run_cli, write_profile, workdir: Path) -> None:  # type: ignore[no-untyped-def]
    data = demo_profile_data(workdir)
    data["data"]["params"]["path"] = str(workdir / "none.parquet")
    result = run_cli("run", write_profile(data), "--once", "--dry-run", "--as-of", "2021-04-16")
    assert_one_clear_line(result, 7, "data file not found", "none.parquet", "data.params.path")


def test_csv_holding_an_api_error_message(run_cli, write_profile, workdir: Path) -> None:  # type: ignore[no-untyped-def]
    bars = workdir / "bars.csv"
    bars.write_text('{"Error Message": "Invalid API call"}\n')
    data = demo_profile_data(workdir)
    data["data"]["params"]["path"] = str(bars)
    result = run_cli("run", write_profile(data), "--once", "--dry-run", "--as-of", "2021-04-16")
    assert_one_clear_line(result, 7, str(bars), "re-download")


@pytest.mark.parametrize("value", ["maybe", "REAL", "1"])
def test_bad_trading_mode(run_cli, write_profile, workdir: Path, monkeypatch, value: str) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("TRADING_MODE", value)
    result = run_cli("run", write_profile(), "--once", "--dry-run")
    assert_one_clear_line(result, 5, "TRADING_MODE must be PAPER or LIVE", repr(value.upper()))
    assert not (workdir / "trades.csv").exists()


def test_bad_log_level(run_cli, write_profile, workdir: Path) -> None:  # type: ignore[no-untyped-def]
    result = run_cli("run", write_profile(), "--once", "--dry-run", "--log-level", "LOUD")
    assert_one_clear_line(result, 2, "unknown log level 'LOUD'")


def test_invalid_param_stops_run_before_anything(run_cli, write_profile, workdir: Path) -> None:  # type: ignore[no-untyped-def]
    data = demo_profile_data(workdir)
    data["strategies"][0]["params"] = {"decile": "ten"}
    result = run_cli("run", write_profile(data), "--once")
    assert_one_clear_line(result, 2, "strategies[0].params.decile: expected a number, got 'ten'")
    assert not (workdir / "trades.csv").exists() and not (workdir / "state").exists()


def test_bad_as_of_date(run_cli, write_profile, workdir: Path) -> None:  # type: ignore[no-untyped-def]
    result = run_cli("run", write_profile(), "--once", "--dry-run", "--as-of", "notadate")
    assert result.code not in (0, INTERNAL_ERROR_EXIT)
    assert_one_clear_line(result, result.code, "notadate")


def test_unknown_command_is_a_usage_error(run_cli, workdir: Path) -> None:  # type: ignore[no-untyped-def]
    result = run_cli("frobnicate")
    assert result.code == 2
    assert "No such command 'frobnicate'" in result.err and "Traceback" not in result.err


def test_installed_script_never_prints_a_traceback(tmp_path: Path) -> None:
    """The real `hybrid` process: a missing profile, and LIVE mode asked for in a .env file."""
    result = run_hybrid_process("run", "missing.yaml", "--once", cwd=tmp_path)
    assert (result.code, result.err.strip()) == (2, "error: profile not found: missing.yaml (give the path "
                                                    "of a YAML run profile, e.g. profiles/demo.yaml)")
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(demo_profile_data(tmp_path)))
    (tmp_path / ".env").write_text("TRADING_MODE=LIVE\n")  # the .env file is read by the CLI
    result = run_hybrid_process("run", "p.yaml", "--once", cwd=tmp_path)
    assert result.code == 5, result.err
    assert "Traceback" not in result.err
    assert error_lines(result.err) == [
        "error: TRADING_MODE=LIVE but LIVE_TRADING_ENABLED is not 'true': live trading with real money is "
        "locked; set LIVE_TRADING_ENABLED=true to enable it, or unset TRADING_MODE for paper"]
