"""The safety layers with the paper broker, and the offline demo traded for two sessions."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from core_helpers import SAMPLE_BARS, demo_profile_data, error_lines

from hybrid_core import safety
from hybrid_core.builtin.paper_broker import PaperBroker
from hybrid_core.contracts import HealthReport
from hybrid_core.errors import SafetyError
from hybrid_core.ops.audit import read_trade_log

PREVIOUS_FRIDAY, FRIDAY, MONDAY = "2021-04-09", "2021-04-16", "2021-04-19"


def trade_rows(workdir: Path) -> pd.DataFrame:
    path = workdir / "trades.csv"
    return read_trade_log(path) if path.exists() else pd.DataFrame(columns=["status"])


def account_content(workdir: Path) -> list[tuple]:
    """Every row of the paper account database (its logical content, WAL included)."""
    path = workdir / "state" / "paper_account.sqlite"
    if not path.exists():
        return []
    with sqlite3.connect(path) as conn:
        return [*conn.execute("SELECT * FROM account"), *conn.execute("SELECT * FROM orders ORDER BY 1")]


def adjusted_opens(day: str) -> pd.Series:
    """Adjusted opens of the sample on ``day``, computed here from the raw file (STRATEGIES.md rule)."""
    raw = pd.read_parquet(SAMPLE_BARS)
    raw = raw[raw["date"] == pd.Timestamp(day)].set_index("symbol")
    return raw["open"] * raw["adj_close"] / raw["close"]


# ------------------------------------------------------------------ 1, 2: the trading mode

@pytest.mark.parametrize("env, mode", [
    ({}, "paper"), ({"TRADING_MODE": ""}, "paper"), ({"TRADING_MODE": "paper"}, "paper"),
    ({"TRADING_MODE": "PAPER", "LIVE_TRADING_ENABLED": "true"}, "paper"),
    ({"TRADING_MODE": "live", "LIVE_TRADING_ENABLED": "true"}, "live"),
    ({"TRADING_MODE": "LIVE", "LIVE_TRADING_ENABLED": "TRUE"}, "live"),
])
def test_resolve_mode(env: dict[str, str], mode: str) -> None:
    assert safety.resolve_mode(env) == mode


@pytest.mark.parametrize("enabled", [None, "", "false", "yes", "1"])
def test_live_without_enabling_is_refused(enabled: str | None) -> None:
    env = {"TRADING_MODE": "LIVE"} | ({"LIVE_TRADING_ENABLED": enabled} if enabled is not None else {})
    with pytest.raises(SafetyError, match="set LIVE_TRADING_ENABLED=true to enable it") as info:
        safety.resolve_mode(env)
    assert info.value.exit_code == 5


def test_paper_is_the_default_of_a_run(run_cli, write_profile, workdir: Path) -> None:  # type: ignore[no-untyped-def]
    result = run_cli("run", write_profile(), "--once", "--dry-run", "--as-of", FRIDAY)
    assert result.code == 0, result.err
    assert "mode=paper" in result.err
    assert '"mode": "paper"' in (workdir / "hybrid.health").read_text()


def test_live_run_without_enabling_exits_5(run_cli, write_profile, workdir: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("TRADING_MODE", "LIVE")
    result = run_cli("run", write_profile(), "--once", "--as-of", FRIDAY)
    assert result.code == 5
    (line,) = error_lines(result.err)
    assert line.startswith("error: TRADING_MODE=LIVE but LIVE_TRADING_ENABLED is not 'true'")
    assert "set LIVE_TRADING_ENABLED=true" in line
    assert account_content(workdir) == [] and trade_rows(workdir).empty


# ------------------------------------------------------------------ 3: the LIVE banner

def test_live_banner_waits_five_seconds() -> None:
    slept: list[float] = []
    out = io.StringIO()
    safety.live_banner(out=out, sleep=slept.append)
    assert slept == [5.0]
    assert "LIVE TRADING: REAL MONEY" in out.getvalue() and "Ctrl-C" in out.getvalue()


def ctrl_c(_seconds: float) -> None:
    """A sleep interrupted by the user."""
    raise KeyboardInterrupt


def test_live_banner_is_interruptible() -> None:
    with pytest.raises(SafetyError, match="aborted by the user during the warning countdown"):
        safety.live_banner(out=io.StringIO(), sleep=ctrl_c)


def test_live_run_shows_the_banner_before_the_first_order(run_cli, write_profile, workdir: Path,  # type: ignore[no-untyped-def]
                                                          monkeypatch) -> None:
    import hybrid_core.live.runner as runner

    events: list[str] = []
    real_submit = PaperBroker.submit
    monkeypatch.setattr(runner, "live_banner", lambda seconds: events.append(f"banner {seconds}"))
    def submit(self, order):  # type: ignore[no-untyped-def]
        events.append("submit")
        return real_submit(self, order)

    monkeypatch.setattr(PaperBroker, "submit", submit)
    monkeypatch.setenv("TRADING_MODE", "LIVE")
    monkeypatch.setenv("LIVE_TRADING_ENABLED", "true")
    result = run_cli("run", write_profile(), "--once", "--as-of", FRIDAY)
    assert result.code == 0, result.err
    assert events[0] == "banner 5.0" and events.count("banner 5.0") == 1
    assert "submit" in events[1:]


def test_interrupting_the_live_banner_sends_nothing(run_cli, write_profile, workdir: Path,  # type: ignore[no-untyped-def]
                                                    monkeypatch) -> None:
    import hybrid_core.live.runner as runner

    def interrupted(seconds: float) -> None:
        safety.live_banner(seconds, out=io.StringIO(), sleep=ctrl_c)

    monkeypatch.setattr(runner, "live_banner", interrupted)
    monkeypatch.setenv("TRADING_MODE", "LIVE")
    monkeypatch.setenv("LIVE_TRADING_ENABLED", "true")
    result = run_cli("run", write_profile(), "--once", "--as-of", FRIDAY)
    assert result.code == 5
    assert error_lines(result.err) == ["error: live run aborted by the user during the warning countdown"]
    assert trade_rows(workdir).empty
    assert [r for r in account_content(workdir) if len(r) == 2] == []  # no order reached the broker


# ------------------------------------------------------------------ 4: max order value

def test_max_order_value_refuses_and_logs(run_cli, write_profile, workdir: Path) -> None:  # type: ignore[no-untyped-def]
    data = demo_profile_data(workdir)
    for rule in data["risk"]:
        if rule["name"] == "max_order_value":
            rule["params"] = {"value": 100_000}
    result = run_cli("run", write_profile(data), "--once", "--as-of", FRIDAY)
    assert result.code == 0, result.err
    rows = trade_rows(workdir)
    # 0.7 / 4 of 1,000,000 = 175,000 per entry: every entry is above 100,000
    assert len(rows) == 4 and set(rows["status"]) == {"refused"}
    for _, row in rows.iterrows():
        assert row["qty"] * row["price"] > 100_000  # refused whole, never resized
        assert "exceeds max_order_value 100,000.00; order refused, not resized" in row["signal"]
    assert [r for r in account_content(workdir) if len(r) == 2] == []  # the broker saw no order


# ------------------------------------------------------------------ 5: --dry-run

def test_dry_run_never_reaches_the_broker(run_cli, write_profile, workdir: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def forbidden(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("a dry run called the broker")

    for method in ("submit", "cancel", "sync"):
        monkeypatch.setattr(PaperBroker, method, forbidden)
    result = run_cli("run", write_profile(), "--once", "--dry-run", "--as-of", FRIDAY)
    assert result.code == 0, result.err
    assert "(dry run: nothing sent)" in result.out
    rows = trade_rows(workdir)
    assert sorted(rows["symbol"]) == ["BAC", "F", "GM", "INTC"]
    assert set(rows["status"]) == {"dry_run"} and set(rows["order_id"].fillna("")) == {""}


def test_dry_run_leaves_the_paper_account_unchanged(run_cli, write_profile, workdir: Path) -> None:  # type: ignore[no-untyped-def]
    """Orders of a real run on one Friday, then a dry run on the next Friday's rebalance."""
    profile = write_profile()
    assert run_cli("run", profile, "--once", "--as-of", PREVIOUS_FRIDAY).code == 0
    before_account, before_rows = account_content(workdir), len(trade_rows(workdir))
    assert len([r for r in before_account if len(r) == 2]) == 4
    result = run_cli("run", profile, "--once", "--dry-run", "--as-of", FRIDAY)
    assert result.code == 0, result.err
    assert account_content(workdir) == before_account
    new = trade_rows(workdir).iloc[before_rows:]
    assert len(new) > 0 and set(new["status"]) == {"dry_run"}


# ------------------------------------------------------------------ 6: the health check

@pytest.mark.parametrize("failure", ["report", "exception"])
def test_failed_health_check_stops_before_any_order(run_cli, write_profile, workdir: Path,  # type: ignore[no-untyped-def]
                                                    monkeypatch, failure: str) -> None:
    def unhealthy(self):  # type: ignore[no-untyped-def]
        if failure == "exception":
            raise ConnectionError("connection refused")
        return HealthReport(False, "account is blocked")

    monkeypatch.setattr(PaperBroker, "health_check", unhealthy)
    result = run_cli("run", write_profile(), "--once", "--as-of", FRIDAY)
    assert result.code == 5
    reason = "connection refused" if failure == "exception" else "account is blocked"
    assert error_lines(result.err) == [f"error: API health check failed on startup: {reason}"]
    assert trade_rows(workdir).empty


def test_require_healthy_broker_passes_a_healthy_paper_broker(tmp_path: Path) -> None:
    broker = PaperBroker()
    broker.configure(mode="paper", state_dir=str(tmp_path))
    safety.require_healthy_broker(broker)  # no exception
    broker.close()


# ------------------------------------------------------------------ the demo, two sessions

def test_demo_friday_orders_then_monday_fills_at_the_open(run_cli, write_profile, workdir: Path) -> None:  # type: ignore[no-untyped-def]
    profile = write_profile()
    first = run_cli("run", profile, "--once", "--as-of", FRIDAY)
    assert first.code == 0, first.err
    assert first.out.startswith(f"cycle 1 at {FRIDAY}:")
    rows = trade_rows(workdir)
    submitted = rows[rows["status"] == "submitted"]
    # equity rebalance: buys of the week's worst losers, each submitted then accepted by the broker
    assert len(submitted) > 0 and list(rows["status"]) == ["submitted", "accepted"] * len(submitted)
    assert set(submitted["side"]) == {"buy"} and set(submitted["strategy"]) == {"equity_reversal"}
    # the weight is 0.7 / n of the portfolio at the Friday close, in whole shares
    n = len(submitted)
    for _, row in submitted.iterrows():
        assert row["qty"] == int(0.7 / n * 1_000_000 / row["price"])

    second = run_cli("run", profile, "--once", "--as-of", MONDAY)
    assert second.code == 0, second.err
    rows = trade_rows(workdir)
    filled = rows[rows["status"] == "filled"].set_index("symbol")
    assert sorted(filled.index) == sorted(submitted["symbol"])
    opens = adjusted_opens(MONDAY)
    for symbol, row in filled.iterrows():
        assert row["price"] == pytest.approx(opens[symbol], rel=1e-12), symbol
        assert row["client_order_id"] == submitted.set_index("symbol").at[symbol, "client_order_id"]
    # each filled buy got its protective stop at 95% of the fill (stop_loss pct 0.05)
    stops = rows[(rows["status"] == "submitted") & (rows["reason"] == "stop_loss")].set_index("symbol")
    for symbol in filled.index:
        assert stops.at[symbol, "price"] == pytest.approx(filled.at[symbol, "price"] * 0.95, rel=1e-12)
