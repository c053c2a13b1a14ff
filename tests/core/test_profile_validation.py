"""Run profile validation: one line per problem with its path, and `hybrid validate` exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from core_helpers import SAMPLE_BARS, demo_profile_data

from hybrid_core.errors import ProfileError
from hybrid_core.plugins import build_plugin_host
from hybrid_core.profile import RunProfile, build_components, load_profile, problem_lines, validate


@pytest.fixture(scope="module")
def registry():  # type: ignore[no-untyped-def]
    return build_plugin_host().registry


def write(tmp_path: Path, data: dict | str) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def minimal(**extra: object) -> dict:
    return {"name": "t", "data": {"source": "local", "params": {"path": str(SAMPLE_BARS)}},
            "strategies": [{"name": "crypto_adx", "allocation": 0.3}], **extra}


def problems(tmp_path: Path, data: dict | str, registry) -> list[str]:  # type: ignore[no-untyped-def]
    """Every problem of the profile, both passes, without the file name each line starts with."""
    path = write(tmp_path, data)
    try:
        profile = load_profile(path, registry)
    except ProfileError as exc:
        lines = problem_lines(exc)
        assert all(line.startswith(f"{path}: ") for line in lines), lines  # every line names the file
        return [line[len(f"{path}: "):] for line in lines]
    return validate(profile, registry)


def test_the_demo_profile_is_valid(tmp_path: Path, registry) -> None:  # type: ignore[no-untyped-def]
    profile = load_profile(write(tmp_path, demo_profile_data(tmp_path)))
    assert validate(profile, registry) == []
    components = build_components(profile, registry)
    assert [s.name for s in components.strategies] == ["equity_reversal", "crypto_adx"]
    assert [s.allocation for s in components.strategies] == [0.7, 0.3]
    assert components.strategies[1].universe == ["BTC/USD", "ETH/USD"]
    assert len(components.strategies[0].universe) == 40  # read from the universe file
    assert components.broker.params.initial_cash == 1_000_000


def test_defaults_fill_every_optional_section(tmp_path: Path) -> None:
    profile = load_profile(write(tmp_path, minimal()))
    assert isinstance(profile, RunProfile)
    assert profile.broker.name == "paper"
    assert {r.name for r in profile.risk} >= {"stop_loss", "time_stop", "max_order_value"}
    assert (profile.schedule.at, profile.outputs.trade_log) == ("16:10", "order_events.csv")
    assert profile.data.lookback_days == 400
    assert (profile.backtest.warmup, profile.schedule.max_failed_cycles) == (None, 3)


def test_warmup_and_failed_cycle_limits_are_checked(tmp_path: Path, registry) -> None:  # type: ignore[no-untyped-def]
    lines = problems(tmp_path, minimal(backtest={"warmup": -1}, schedule={"max_failed_cycles": 0}), registry)
    assert any(line.startswith("backtest.warmup: expected 0 (cold start)") for line in lines), lines
    assert any(line.startswith("schedule.max_failed_cycles: expected 1 or more") for line in lines), lines


def test_wrong_param_type_names_its_path(tmp_path: Path, registry) -> None:  # type: ignore[no-untyped-def]
    data = minimal(strategies=[{"name": "equity_reversal", "allocation": 0.7, "params": {"decile": "ten"}}])
    assert problems(tmp_path, data, registry) == [
        "strategies[0].params.decile: expected a number, got 'ten'"]


def test_every_problem_is_reported_one_per_line(tmp_path: Path, registry) -> None:  # type: ignore[no-untyped-def]
    data = minimal(strategies=[
        {"name": "equity_reversal", "allocation": 0.5, "params": {"decile": "ten", "bogus": 1}},
        {"name": "nosuch", "allocation": 0.2}],
        broker={"name": "paper", "params": {"initial_cash": "lots"}},
        risk=[{"name": "time_stop", "params": {"bars": 2.5}}])
    lines = problems(tmp_path, data, registry)
    assert "strategies[0].params.decile: expected a number, got 'ten'" in lines
    assert any(line.startswith("strategies[0].params.bogus: unknown key (allowed: decile,") for line in lines)
    assert any(line.startswith("strategies[1].name: unknown strategy 'nosuch'; installed: crypto_adx, ")
               for line in lines)
    assert "risk[0].params.bars: expected a whole number, got 2.5" in lines
    assert "broker.params.initial_cash: expected a number, got 'lots'" in lines
    assert len(lines) == 5


def test_unknown_top_level_and_section_keys(tmp_path: Path, registry) -> None:  # type: ignore[no-untyped-def]
    lines = problems(tmp_path, minimal(stratgies=[], outputs={"trade_log": "t.csv", "helth_file": "x"}),
                     registry)
    assert "stratgies: unknown key (did you mean 'strategies'? allowed: name, data, strategies, risk, " \
           "broker, schedule, outputs, backtest, notify)" in lines
    assert "outputs.helth_file: unknown key (did you mean 'health_file'? allowed: trade_log, health_file, " \
           "state_db, log_file)" in lines


def test_missing_keys(tmp_path: Path, registry) -> None:  # type: ignore[no-untyped-def]
    assert problems(tmp_path, {"name": "t"}, registry) == ["strategies: required key is missing"]
    assert problems(tmp_path, "foo: 1\nbar: 2\n", registry) == [
        "foo: unknown key (allowed: name, data, strategies, risk, broker, schedule, outputs, backtest, notify)",
        "bar: unknown key (allowed: name, data, strategies, risk, broker, schedule, outputs, backtest, notify)",
        "strategies: required key is missing",
        "none of the top-level keys is a run profile key: is this a run profile? (see docs/profile.md)"]
    assert problems(tmp_path, minimal(strategies=[{"allocation": 0.5}]), registry) == [
        "strategies[0].name: required key is missing"]
    assert problems(tmp_path, minimal(strategies=[]), registry) == ["strategies: name at least one strategy"]


def test_allocations_and_schedule_are_checked(tmp_path: Path, registry) -> None:  # type: ignore[no-untyped-def]
    data = minimal(strategies=[{"name": "crypto_adx", "allocation": 0.6},
                               {"name": "equity_reversal", "allocation": 0.6, "universe": ["AAPL"]}],
                   schedule={"at": "25h", "days": "sundays"})
    lines = problems(tmp_path, data, registry)
    assert "strategies: allocations add up to 1.20, more than 1.0 of capital" in lines
    assert "schedule.at: expected a time HH:MM (00:00 to 23:59), got '25h'" in lines
    assert "schedule.days: expected daily or weekdays, got 'sundays'" in lines


def test_param_validators_reject_out_of_range(tmp_path: Path, registry) -> None:  # type: ignore[no-untyped-def]
    lines = problems(tmp_path, minimal(risk=[{"name": "stop_loss", "params": {"pct": 2}}]), registry)
    assert len(lines) == 1 and lines[0].startswith("risk[0].params")
    assert lines[0] == "risk[0].params.pct: must be between 0 and 1 (exclusive), got 2.0"


@pytest.mark.parametrize("key", ["api_key", "secret_key", "password", "ALPACA_SECRET_KEY", "token"])
def test_secrets_are_refused(tmp_path: Path, registry, key: str) -> None:  # type: ignore[no-untyped-def]
    lines = problems(tmp_path, minimal(broker={"name": "alpaca", "params": {key: "AKXXXXXXXX"}}), registry)
    assert len(lines) == 1
    assert lines[0].startswith(f"broker.params.{key}: profiles must not hold secrets")
    assert f"{key}_env: VARIABLE_NAME" in lines[0]


def test_naming_an_environment_variable_is_fine(tmp_path: Path, registry) -> None:  # type: ignore[no-untyped-def]
    data = minimal(broker={"name": "alpaca",
                           "params": {"api_key_env": "MY_KEY", "secret_key_env": "MY_SECRET"}})
    assert problems(tmp_path, data, registry) == []


def test_yaml_syntax_error_gives_the_line(tmp_path: Path, registry) -> None:  # type: ignore[no-untyped-def]
    text = "name: t\nstrategies:\n  - name: crypto_adx\n    allocation: [0.3\n"
    (line,) = problems(tmp_path, text, registry)
    assert "line 5, column 1" in line and "not valid YAML" in line


@pytest.mark.parametrize("text, expected", [
    ("", "the profile is empty"),
    ("- a\n- b\n", "expected a mapping of keys to values at the top level, got a list"),
])
def test_empty_or_non_mapping_profile(tmp_path: Path, registry, text: str, expected: str) -> None:  # type: ignore[no-untyped-def]
    (line,) = problems(tmp_path, text, registry)
    assert expected in line


def test_validate_command_exit_codes(tmp_path: Path, run_cli, workdir) -> None:  # type: ignore[no-untyped-def]
    good = write(tmp_path, demo_profile_data(tmp_path))
    result = run_cli("validate", good)
    assert result.code == 0, result.err
    assert result.out.strip() == f"{good}: OK (2 strategies, broker paper, data local)"

    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(minimal(strategies=[
        {"name": "equity_reversal", "allocation": 0.7, "params": {"decile": "ten"}},
        {"name": "crypto_adx", "allocation": 0.3, "params": {"adx_max": "high"}}])))
    result = run_cli("validate", bad)
    assert result.code == 2
    assert result.err.splitlines() == [
        f"error: {bad}: strategies[0].params.decile: expected a number, got 'ten'",
        f"error: {bad}: strategies[1].params.adx_max: expected a number, got 'high'"]
    assert result.out == ""

    result = run_cli("validate", tmp_path / "missing.yaml")
    assert result.code == 2
    assert result.err.startswith("error: profile not found:")
