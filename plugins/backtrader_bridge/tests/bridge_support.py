"""Helpers of the bridge tests: profiles over the bundled demo bars, both engines through the CLI,
and the trade-for-trade comparison."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from click.testing import CliRunner

from hybrid_core.cli import build_cli
from hybrid_core.engine.backtest import ROUND_TRIPS_FILE
from hybrid_core.engine.replay import compare_trades
from hybrid_core.sample import bars_path, sample_file

REPO = Path(__file__).resolve().parents[3]
DEMO = REPO / "profiles" / "demo.yaml"
BENCH = REPO / "bench" / "profiles"
REFERENCE = REPO.parent / "shared" / "reference"


def demo_profile(folder: Path, *, equity: float = 0.7, crypto: float | None = 0.3, **backtest: Any) -> Path:
    """The demo's data and strategies with only the rules the bridge maps (stop-loss, time stop)."""
    strategies: list[dict[str, Any]] = [{"name": "equity_reversal", "allocation": equity,
                                         "universe": str(sample_file("universe_equities.txt"))}]
    if crypto:
        strategies.append({"name": "crypto_adx", "allocation": crypto, "universe": ["BTC/USD", "ETH/USD"]})
    profile = {
        "name": "demo_bridge",
        "data": {"source": "local", "params": {"path": str(bars_path())}},
        "strategies": strategies,
        "risk": [{"name": "stop_loss", "params": {"pct": 0.05}}, {"name": "time_stop", "params": {"bars": 5}}],
        "backtest": {"cash": 1_000_000, **backtest},
    }
    path = folder / "demo_bridge.yaml"
    path.write_text(yaml.safe_dump(profile, sort_keys=False))
    return path


def backtest(profile: Path, out: Path, engine: str, *args: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``hybrid backtest PROFILE --engine ENGINE``; returns round_trips.csv and equity.csv."""
    result = CliRunner().invoke(build_cli(), ["backtest", str(profile), "--out", str(out), "--engine", engine,
                                      "--no-progress", "--lookahead-cuts", "0", *args])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return (pd.read_csv(out / ROUND_TRIPS_FILE, parse_dates=["entry_date", "exit_date"]),
            pd.read_csv(out / "equity.csv", parse_dates=["date"]))


def assert_same_trades(ours: pd.DataFrame, theirs: pd.DataFrame, *, rel: float = 1e-9) -> None:
    """Trade for trade (hybrid's own comparison): same symbols, dates, quantities, reasons; prices
    within ``rel``. In a failure, "replay" is ``ours`` and "backtest" is ``theirs``."""
    assert len(ours) == len(theirs), f"{len(ours)} trades against {len(theirs)}"
    difference = compare_trades(ours, theirs, rel_tol=rel)
    assert difference is None, difference.describe()


def assert_same_values(ours: pd.DataFrame, theirs: pd.DataFrame, *, rel: float = 1e-6) -> None:
    """The same closes, and the portfolio value at each within ``rel``."""
    assert ours["date"].tolist() == theirs["date"].tolist()
    worst = float(np.max(np.abs(ours["value"].to_numpy() / theirs["value"].to_numpy() - 1.0)))
    assert worst <= rel, f"value differs by {worst:.3g}"
