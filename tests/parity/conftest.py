"""Fixtures for replay-versus-backtest parity: profiles over ../shared/data in a temp folder."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from parity_support import SHARED_DATA


@pytest.fixture
def make_profile(tmp_path: Path):
    """Write a profile over the shared data; returns its path."""

    def make(name: str, equities: list[str], crypto: list[str] | None = None, **extra) -> Path:
        if not SHARED_DATA.exists():
            pytest.fail(f"shared data not found at {SHARED_DATA}; the repository expects ../shared beside it")
        strategies = [{"name": "equity_reversal", "allocation": 0.7, "universe": equities}]
        paths = [str(SHARED_DATA / "sp500_daily.parquet")]
        if crypto:
            strategies.append({"name": "crypto_adx", "allocation": 0.3, "universe": crypto})
            paths.append(str(SHARED_DATA / "crypto_daily.parquet"))
        profile = {
            "name": name,
            "data": {"source": "local", "params": {"path": paths}},
            "strategies": strategies,
            "risk": [{"name": "stop_loss"}, {"name": "time_stop"}],
            "broker": {"name": "paper", "params": {"initial_cash": 1_000_000}},
            "outputs": {"trade_log": str(tmp_path / "trades.csv"), "state_db": str(tmp_path / "state.sqlite"),
                        "health_file": str(tmp_path / "hybrid.health")},
            **extra,
        }
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(profile, sort_keys=False))
        return path

    return make
