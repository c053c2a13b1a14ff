"""Portfolio guards: circuit breakers, position cap, kill switch, registration and defaults."""

from __future__ import annotations

from pathlib import Path

import attrs
import pandas as pd
import pytest

from hybrid_core.builtin.guards import KillSwitch, MaxDailyLoss, MaxDrawdown, MaxOpenPositions
from hybrid_core.contracts import CycleContext, OrderIntent, Position, RiskRule
from hybrid_core.plugins import build_plugin_host

NOW = pd.Timestamp("2024-03-08")


def _order(symbol: str = "AAPL", side: str = "buy") -> OrderIntent:
    return OrderIntent(symbol=symbol, side=side, qty=10, strategy="equity_reversal",  # type: ignore[arg-type]
                       reason="signal", decision_date=NOW, ref_price=100.0)


def _context(value: float = 1_000_000.0, *, day_start: float = 1_000_000.0, peak: float = 1_000_000.0,
             held: int = 0, now: pd.Timestamp = NOW) -> CycleContext:
    positions = {f"S{i}": Position(f"S{i}", 1, 10.0, NOW, "equity_reversal") for i in range(held)}
    return CycleContext(now=now, mode="paper", portfolio_value=value, positions=positions,
                        peak_value=peak, day_start_value=day_start)


def test_defaults_are_the_documented_ones() -> None:
    assert MaxDailyLoss().params.pct == 0.05
    assert MaxDrawdown().params.pct == 0.25
    assert MaxOpenPositions().params.limit == 60
    assert KillSwitch().params.path == ""


def test_daily_loss_stops_entries_not_exits() -> None:
    rule = MaxDailyLoss()
    assert rule.vet(_order(), _context(960_000)) is None  # down 4%
    refusal = rule.vet(_order(), _context(950_000))  # down exactly 5%
    assert refusal is not None and "down 5.00% from the day start" in refusal
    assert "exits still allowed" in refusal
    assert rule.vet(_order(side="sell"), _context(500_000)) is None
    assert rule.vet(_order(), _context(100, day_start=0)) is None  # no reference yet: nothing to compare
    assert MaxDailyLoss(MaxDailyLoss.Params(pct=0.02)).vet(_order(), _context(975_000)) is not None


def test_drawdown_from_peak_stops_entries_not_exits() -> None:
    rule = MaxDrawdown()
    ctx_ok = _context(800_000, day_start=800_000, peak=1_000_000)  # 20% below peak
    ctx_bad = _context(740_000, day_start=740_000, peak=1_000_000)  # 26% below peak
    assert rule.vet(_order(), ctx_ok) is None
    refusal = rule.vet(_order(), ctx_bad)
    assert refusal is not None and "26.00% below its peak 1,000,000.00" in refusal
    assert rule.vet(_order(side="sell"), ctx_bad) is None


def test_open_positions_cap_counts_admitted_buys_in_the_cycle() -> None:
    rule = MaxOpenPositions(MaxOpenPositions.Params(limit=3))
    ctx = _context(held=1)
    assert rule.vet(_order("A"), ctx) is None
    assert rule.vet(_order("A"), ctx) is None  # same symbol again does not count twice
    assert rule.vet(_order("B"), ctx) is None
    refusal = rule.vet(_order("C"), ctx)
    assert refusal is not None and "3 positions held or being bought, limit 3" in refusal
    assert rule.vet(_order("S0"), ctx) is None  # adding to a held symbol
    assert rule.vet(_order("C", side="sell"), ctx) is None
    next_cycle = _context(held=1, now=NOW + pd.Timedelta(days=1))
    assert rule.vet(_order("C"), next_cycle) is None  # the count restarts each cycle


def test_kill_switch_stops_every_order_and_quotes_the_reason(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HYBRID_KILL_SWITCH", raising=False)
    rule = KillSwitch()
    assert rule.vet(_order(), _context()) is None
    (tmp_path / "KILL_SWITCH").write_text("broker incident\nmore\n")
    for side in ("buy", "sell"):
        refusal = rule.vet(_order(side=side), _context())
        assert refusal is not None and "(broker incident)" in refusal and "remove the file" in refusal
    (tmp_path / "KILL_SWITCH").unlink()
    assert rule.vet(_order(side="sell"), _context()) is None


def test_kill_switch_path_from_env_and_params(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    env_switch = tmp_path / "env_switch"
    monkeypatch.setenv("HYBRID_KILL_SWITCH", str(env_switch))
    (tmp_path / "KILL_SWITCH").touch()  # ignored: the env var names another file
    assert KillSwitch().vet(_order(), _context()) is None
    env_switch.touch()
    assert str(env_switch) in (KillSwitch().vet(_order(), _context()) or "")
    param_switch = tmp_path / "p"
    rule = KillSwitch(KillSwitch.Params(path=str(param_switch)))
    assert rule.vet(_order(), _context()) is None
    param_switch.touch()
    assert rule.vet(_order(), _context()) is not None


@pytest.mark.parametrize("cls, field, bad", [
    (MaxDailyLoss, "pct", 0.0), (MaxDailyLoss, "pct", 1.5), (MaxDrawdown, "pct", -0.1),
    (MaxOpenPositions, "limit", 0),
])
def test_bad_params_refused(cls: type[RiskRule], field: str, bad: float) -> None:
    with pytest.raises(ValueError, match=field):
        cls.Params(**{field: bad})


def test_guards_register_as_builtin_risk_rules() -> None:
    host = build_plugin_host(load_entry_points=False)
    names = {s.name for s in host.registry.by_plugin("guards")}
    assert names == {"max_daily_loss", "max_drawdown", "max_open_positions", "kill_switch"}
    for name in names:
        spec = host.registry.get("risk_rule", name)
        assert spec.summary and attrs.has(spec.params_cls)
    assert not [e for e in host.errors if e.name == "guards"]


def test_profile_validation_names_a_bad_guard_parameter(tmp_path: Path) -> None:
    import subprocess
    import sys

    import yaml

    profile = {"name": "g", "data": {"source": "local", "params": {"path": "bars.parquet"}},
               "strategies": [{"name": "crypto_adx", "allocation": 0.3, "universe": ["BTC/USD"]}],
               "risk": [{"name": "max_daily_loss", "params": {"pct": 2}},
                        {"name": "max_open_positions", "params": {"limit": 10, "colour": 1}}]}
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(profile))
    result = subprocess.run([sys.executable, "-m", "hybrid_core.cli", "validate", str(path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "risk[0].params.pct: must be between 0 and 1 (exclusive), got 2.0" in result.stderr
    assert "risk[1].params.colour: unknown key (allowed: limit)" in result.stderr
