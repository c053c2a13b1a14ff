"""The live cycle replayed over history gives exactly the backtest's trades.

Both sides run from the same profile: the replay through `hybrid replay` (the real cycle,
state database, trade audit and paper simulator), the backtest through `hybrid backtest`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
from parity_support import equity_symbols

HYBRID = [sys.executable, "-m", "hybrid_core.cli"]
ENV = {**os.environ, "TRADING_MODE": "PAPER", "HYBRID_DISABLE_PLUGINS": "alpaca"}


def hybrid(*args: str, check: bool = True, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([*HYBRID, *args], capture_output=True, text=True, env=ENV, cwd=cwd, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"hybrid {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def read_trades(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path, parse_dates=["entry_date", "exit_date"])
    return frame.sort_values(["entry_date", "symbol", "exit_date"], ignore_index=True)


def assert_same_trades(replayed: pd.DataFrame, backtested: pd.DataFrame) -> None:
    keys = ["symbol", "entry_date", "exit_date", "exit_reason"]
    pd.testing.assert_frame_equal(replayed[keys], backtested[keys])
    pd.testing.assert_series_equal(replayed["qty"], backtested["qty"], check_exact=True)
    for col in ("entry_price", "exit_price"):
        pd.testing.assert_series_equal(replayed[col], backtested[col], rtol=1e-9, atol=0)


def replay_and_backtest(tmp_path: Path, profile: Path, start: str, end: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    hybrid("replay", str(profile), "--start", start, "--end", end, "--out", str(tmp_path / "replay"),
           "--log-level", "ERROR")
    hybrid("backtest", str(profile), "--start", start, "--end", end, "--out", str(tmp_path / "bt"))
    return read_trades(tmp_path / "replay" / "round_trips.csv"), read_trades(tmp_path / "bt" / "round_trips.csv")


def test_equity_replay_of_a_year_on_50_symbols_matches_the_backtest(tmp_path, make_profile):
    profile = make_profile("eq50", equity_symbols(50))
    replayed, backtested = replay_and_backtest(tmp_path, profile, "2018-01-02", "2019-01-04")
    assert len(backtested) > 150
    assert {"rebalance", "stop_loss"} <= set(backtested["exit_reason"])
    assert_same_trades(replayed, backtested)
    # the trade log holds a filled row for every fill of the round trips (entries and exits)
    log = pd.read_csv(tmp_path / "replay" / "order_events.csv")
    fills = log[log["status"] == "filled"]
    closed = backtested[backtested["exit_reason"] != "end_of_data"]
    assert (fills["side"] == "buy").sum() == len(backtested)
    assert (fills["side"] == "sell").sum() == len(closed)


def test_hybrid_replay_with_crypto_stops_and_time_stops_matches_the_backtest(tmp_path, make_profile):
    profile = make_profile("hyb", equity_symbols(20), ["BTC/USD", "ETH/USD"])
    replayed, backtested = replay_and_backtest(tmp_path, profile, "2019-09-02", "2020-06-30")
    crypto = backtested[backtested["symbol"].str.contains("/")]
    assert len(crypto) >= 3
    assert {"stop_loss", "time_stop"} <= set(backtested["exit_reason"])
    # crypto sessions run on weekends too: some crypto fill lands on a Saturday or Sunday
    assert (pd.DatetimeIndex(crypto["entry_date"]).day_of_week >= 5).any() or (
        pd.DatetimeIndex(crypto["exit_date"]).day_of_week >= 5).any()
    assert_same_trades(replayed, backtested)


def test_compare_backtest_reports_a_match(tmp_path, make_profile):
    profile = make_profile("cmp", equity_symbols(15), ["BTC/USD"])
    proc = hybrid("replay", str(profile), "--start", "2020-02-03", "--end", "2020-04-30", "--out",
                  str(tmp_path / "r"), "--compare-backtest", "--log-level", "ERROR")
    assert "replay matches the backtest" in proc.stdout


def replay_killed_at(args: list[str], marker: str, count: int) -> int:
    """Start a replay and SIGKILL it as soon as its log has shown ``marker`` ``count`` times (a
    point the replay reports, never a sleep); returns the exit status (-9 when killed)."""
    proc = subprocess.Popen([*HYBRID, *args, "--log-level", "INFO"], env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    seen = 0
    for line in proc.stderr:
        if marker in line:
            seen += 1
            if seen == count:
                proc.send_signal(signal.SIGKILL)
                break
    proc.stderr.close()
    return proc.wait()


def test_killed_replay_resumes_and_still_matches_the_backtest(tmp_path, make_profile):
    profile = make_profile("kill", equity_symbols(25), ["BTC/USD", "ETH/USD"])
    start, end = "2020-01-02", "2020-05-29"  # 150 sessions (crypto trades every day)
    out = tmp_path / "replay"
    state = out / "state.sqlite"
    args = ["replay", str(profile), "--start", start, "--end", end, "--out", str(out)]
    for after in (15, 25, 35):  # each run resumes, then is killed inside the cycle after that many more sessions
        assert replay_killed_at(args, "Replayed session", after) == -signal.SIGKILL
    assert state.exists()
    resumed = hybrid("replay", str(profile), "--start", start, "--end", end, "--out", str(out),
                     "--log-level", "ERROR")
    assert "resumed" in resumed.stdout
    hybrid("backtest", str(profile), "--start", start, "--end", end, "--out", str(tmp_path / "bt"))
    assert_same_trades(read_trades(out / "round_trips.csv"), read_trades(tmp_path / "bt" / "round_trips.csv"))
    # nothing doubled in the audit trail either: one submitted and at most one filled row per order id
    log = pd.read_csv(out / "order_events.csv")
    for status in ("submitted", "filled"):
        ids = log.loc[log["status"] == status, "client_order_id"]
        assert not ids.duplicated().any(), f"duplicated {status} rows: {ids[ids.duplicated()].tolist()[:5]}"
    json.loads((out / "hybrid.health").read_text())


def test_a_replay_killed_mid_session_loses_no_audit_row(tmp_path, make_profile):
    """A replay writes a session's audit rows, paper account and state together at the session's
    end: killed between two order moves, then resumed, its audit log holds exactly the rows
    (order id, status) of a replay that was never interrupted."""
    profile = make_profile("midkill", equity_symbols(40))
    start, end = "2020-01-02", "2020-03-31"
    out = tmp_path / "killed"
    args = ["replay", str(profile), "--start", start, "--end", end, "--out", str(out)]
    for after in (30, 45):  # rebalances move ~16 orders each: these land inside a session
        assert replay_killed_at(args, "-> accepted", after) == -signal.SIGKILL  # between two order moves
    assert "resumed" in hybrid(*args, "--log-level", "ERROR").stdout
    hybrid("replay", str(profile), "--start", start, "--end", end, "--out", str(tmp_path / "whole"),
           "--log-level", "ERROR")
    rows = [pd.read_csv(folder / "order_events.csv") for folder in (out, tmp_path / "whole")]
    killed, whole = (sorted(zip(r["client_order_id"], r["status"], strict=True)) for r in rows)
    assert len(whole) > 100 and killed == whole
    assert_same_trades(read_trades(out / "round_trips.csv"), read_trades(tmp_path / "whole" / "round_trips.csv"))
