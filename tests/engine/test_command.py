"""`hybrid backtest` command line: options, defaults from the profile, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from hybrid_core.cli import build_cli

REPO = Path(__file__).resolve().parents[2]
EQ50 = REPO / "bench" / "profiles" / "eq50_2015.yaml"


def invoke(*args: str):
    return CliRunner().invoke(build_cli(), ["backtest", *args], catch_exceptions=True)


def test_window_cash_and_costs_from_the_command_line(tmp_path: Path) -> None:
    result = invoke(str(EQ50), "--start", "2020-01-01", "--end", "2020-06-30", "--out", str(tmp_path),
                    "--cash", "250000", "--slippage-bps", "5", "--commission", "0.001", "--no-progress",
                    "--lookahead-cuts", "1")
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert (summary["start"], summary["end"], summary["initial_cash"]) == ("2020-01-02", "2020-06-30", 250000.0)
    assert summary["total"]["trades"] > 0 and "equity_reversal" in summary["strategies"]
    assert any("survivorship bias" in n for n in summary["notes"])
    assert any("no lookahead found" in n for n in summary["notes"])
    assert {"setup", "load", "lookahead", "signals", "loop", "engine", "write", "total"} <= set(summary["timings"])
    assert "wrote" in result.output and "CAGR" in result.output


@pytest.mark.parametrize(("args", "message"), [
    (["--start", "2021-01-01", "--end", "2020-01-01"], "is before --start"),
    (["--start", "someday"], "is not a date"),
])
def test_bad_dates_give_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    result = invoke(str(EQ50), *args, "--out", str(tmp_path))
    assert result.exit_code != 0
    assert message in str(result.exception)
    assert not (tmp_path / "summary.json").exists()


def test_out_is_required() -> None:
    result = invoke(str(EQ50))
    assert result.exit_code == 2 and "--out" in result.output
