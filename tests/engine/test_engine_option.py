"""`hybrid backtest --engine NAME`: engines are components, found through the plugin host.

The built-in ``native`` engine registers through ``hybrid_register_backtest_engines`` like any
plugin's engine; the core never imports an engine's dependencies to list it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from hybrid_core import hookimpl
from hybrid_core.builtin.native_engine import NativeEngine
from hybrid_core.cli import build_cli, main
from hybrid_core.contracts import CONTRACT_VERSION, BacktestEngine, BacktestRequest
from hybrid_core.errors import ProfileError
from hybrid_core.plugins import build_plugin_host

REPO = Path(__file__).resolve().parents[2]
EQ50 = REPO / "bench" / "profiles" / "eq50_2015.yaml"
WINDOW = ["--start", "2020-01-01", "--end", "2020-03-31", "--no-progress", "--lookahead-cuts", "0"]


class RecordingEngine(BacktestEngine):
    """An engine from "another package": the native run, with what it was asked recorded."""

    name = "recording"
    requests: list[BacktestRequest] = []
    refuse: str | None = None

    def check(self, strategies: Any, risk_rules: Any) -> None:
        if RecordingEngine.refuse:
            raise ProfileError(RecordingEngine.refuse)

    def run(self, request: BacktestRequest) -> Any:
        RecordingEngine.requests.append(request)
        return NativeEngine().run(request)


class RecordingPlugin:
    HYBRID_CONTRACT = CONTRACT_VERSION

    @hookimpl
    def hybrid_register_backtest_engines(self, register: Any) -> None:
        register(RecordingEngine)


@pytest.fixture
def with_recording_engine() -> Any:
    """A ``hybrid`` CLI whose plugin host also holds the recording engine's plugin."""
    RecordingEngine.requests = []
    RecordingEngine.refuse = None
    return build_cli(extra_plugins=[("recording", RecordingPlugin())])


def test_native_is_a_builtin_engine_registered_through_the_hook() -> None:
    spec = build_plugin_host().registry.get("backtest_engine", "native")
    assert (spec.factory, spec.plugin, spec.package) == (NativeEngine, "native_engine", "hybrid-core")


def test_native_is_the_default(tmp_path: Path) -> None:
    result = CliRunner().invoke(build_cli(), ["backtest", str(EQ50), *WINDOW, "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "summary.json").read_text())["engine"] == "native"
    assert "native engine" in result.output


def test_a_plugin_engine_runs_the_profile_with_its_settings(tmp_path: Path, with_recording_engine: Any) -> None:
    args = ["backtest", str(EQ50), *WINDOW, "--out", str(tmp_path), "--engine", "recording", "--cash", "250000",
            "--slippage-bps", "3"]
    result = CliRunner().invoke(with_recording_engine, args)
    assert result.exit_code == 0, result.output
    (request,) = RecordingEngine.requests
    assert (request.cash, request.slippage_bps, request.commission) == (250000.0, 3.0, 0.0)
    assert [s.name for s in request.strategies] == ["equity_reversal"]
    assert [type(r).__name__ for r in request.risk_rules] == ["StopLoss", "TimeStop"]
    dates = request.panel.dates  # the bench profile is a cold start (warmup: 0)
    assert (str(request.start.date()), str(dates[0].date()), str(dates[-1].date())) == (
        "2020-01-01", "2020-01-02", "2020-03-31")
    assert len(request.panel.symbols) == 50 and request.profile_name == "eq50_2015"
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["engine"] == "recording" and summary["total"]["trades"] > 0


def test_an_engine_refuses_before_any_bar_is_loaded(tmp_path: Path, with_recording_engine: Any,
                                                     capfd: pytest.CaptureFixture[str]) -> None:
    RecordingEngine.refuse = "risk rule 'x' cannot be applied by this engine; remove it"
    with pytest.raises(SystemExit) as exc:
        main(["backtest", str(EQ50), *WINDOW, "--out", str(tmp_path / "out"), "--engine", "recording"],
             cli=with_recording_engine)
    err = capfd.readouterr().err
    assert exc.value.code == 2 and err.strip() == f"error: {RecordingEngine.refuse}"
    assert RecordingEngine.requests == [] and not (tmp_path / "out").exists()


def test_an_unknown_engine_is_one_line_listing_the_installed_ones(tmp_path: Path,
                                                                  capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["backtest", str(EQ50), *WINDOW, "--out", str(tmp_path / "out"), "--engine", "nope"])
    err = capfd.readouterr().err
    assert exc.value.code == 2
    assert len(err.strip().splitlines()) == 1
    assert "unknown backtest engine 'nope'; installed: " in err and "native" in err
    assert not (tmp_path / "out").exists()
