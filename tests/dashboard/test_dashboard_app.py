"""The dashboard page under Streamlit's AppTest: tiles, messages, status, positions, backtest."""

from __future__ import annotations

import json
import re
import shlex
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from dashboard_support import tile_number, tile_tolerance, write_heartbeat, write_state_db
from sample_log import EXPECTED, write_log
from streamlit.testing.v1 import AppTest

from hybrid_core.commands.dashboard import APP
from hybrid_core.commands.dashboard import command as dashboard_command
from hybrid_core.dashboard.options import DashboardOptions, parse_options
from hybrid_core.dashboard.sources import OFFLINE, ONLINE, STALE, cached_report, system_status
from hybrid_core.ops.report import build_report


def run_app(monkeypatch: pytest.MonkeyPatch, *argv: str | Path) -> AppTest:
    """Run the real app script with ``argv`` after ``--``; fail on any exception."""
    monkeypatch.setattr("sys.argv", [str(APP), *map(str, argv)])
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def frame_with(at: AppTest, *columns: str) -> pd.DataFrame:
    """The first table on the page with all of ``columns``."""
    frames = [d.value for d in at.dataframe if set(columns) <= set(d.value.columns)]
    assert frames, f"no table with columns {columns}"
    return frames[0]


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def test_tiles_equal_build_report(monkeypatch, sample_log: Path, heartbeat_file: Path, tmp_path: Path) -> None:
    state = write_state_db(tmp_path / "state.sqlite", {"BTC/USD": 42000.0})
    at = run_app(monkeypatch, "--trades", sample_log, "--health", heartbeat_file, "--state", state)
    shown = {m.label: m.value for m in at.metric}
    tiles = {label: tile_number(text) for label, text in shown.items()}
    report = build_report(sample_log, {"BTC/USD": 42000.0})
    for label, number in (("Realised PnL", report.realised_pnl), ("Win rate", report.win_rate),
                          ("Round trips", report.round_trips), ("Open positions", len(report.open_positions)),
                          ("Unrealised PnL", report.unrealised_pnl), ("Fills", report.fills)):
        assert tiles[label] == pytest.approx(number, abs=tile_tolerance(shown[label])), label
    # and the report itself agrees with the hand-worked numbers
    assert (tiles["Realised PnL"], report.volume) == (EXPECTED["realised_pnl"], EXPECTED["volume"])
    assert tiles["Unrealised PnL"] == EXPECTED["unrealised_pnl"]
    assert "ONLINE" in texts(at.markdown) and "PAPER" in texts(at.markdown)
    assert not at.error and not at.warning


def test_trade_table_and_positions(monkeypatch, sample_log: Path, heartbeat_file: Path) -> None:
    at = run_app(monkeypatch, "--trades", sample_log, "--health", heartbeat_file)
    trades = frame_with(at, "status")
    assert list(trades.columns[:7]) == ["time", "symbol", "side", "qty", "price", "value", "status"]
    assert trades.iloc[0]["time"] == "2026-01-14 00:05:00"  # newest first
    filled = trades[trades["status"] == "filled"]
    assert len(filled) == EXPECTED["trades"]
    assert filled["value"].sum() == pytest.approx(EXPECTED["volume"])
    positions = frame_with(at, "unrealised_pnl")
    assert list(positions["symbol"]) == ["BTC/USD"]
    assert positions["unrealised_pnl"].isna().all()  # no state database: no market close to mark with
    assert "unmarked" in texts(at.caption)
    by_strategy = frame_with(at, "strategy", "round trips").set_index("strategy")
    assert by_strategy.loc["crypto_adx", "realised PnL"] == EXPECTED["by_strategy"]["crypto_adx"][0]
    assert by_strategy.loc["equity_reversal", "win rate"] == pytest.approx(100 / 3)


def test_missing_files_show_messages(monkeypatch, tmp_path: Path) -> None:
    at = run_app(monkeypatch, "--trades", tmp_path / "none.csv", "--health", tmp_path / "none.health")
    assert "OFFLINE" in texts(at.markdown)
    errors = texts(at.error)
    assert "No heartbeat file" in errors and "trade log not found" in errors
    assert not at.metric


def test_empty_log_and_malformed_row(monkeypatch, tmp_path: Path, heartbeat_file: Path) -> None:
    empty = write_log(tmp_path / "empty.csv", rows=[])
    at = run_app(monkeypatch, "--trades", empty, "--health", heartbeat_file)
    assert "no order events yet" in texts(at.info)
    assert {m.label: m.value for m in at.metric}["Round trips"] == "0"
    only_buys = write_log(tmp_path / "buys.csv", rows=[], extra_lines=(
        "2026-01-20T21:10:00Z,AAPL,buy,3,100,o,filled,c,equity_reversal,signal,{}\n"))
    at = run_app(monkeypatch, "--trades", only_buys, "--health", heartbeat_file)
    assert "No closed round trips yet" in texts(at.info) and not at.error
    assert list(frame_with(at, "unrealised_pnl")["symbol"]) == ["AAPL"]
    bad_row = "2026-01-20T21:10:00Z,AAPL,buy,oops,1,o,filled,c,s,r,{}\n"
    bad = write_log(tmp_path / "bad.csv", extra_lines=bad_row)
    at = run_app(monkeypatch, "--trades", bad, "--health", heartbeat_file)
    assert "line 27" in texts(at.error) and "bad qty" in texts(at.error)
    assert tile_number({m.label: m.value for m in at.metric}["Realised PnL"]) == EXPECTED["realised_pnl"]


def test_live_mode_is_unmistakable(monkeypatch, sample_log: Path, tmp_path: Path) -> None:
    beat = write_heartbeat(tmp_path / "live.health", mode="live", last_error="broker timeout")
    at = run_app(monkeypatch, "--trades", sample_log, "--health", beat)
    assert ":red[LIVE]" in texts(at.markdown).replace("**", "")
    assert "LIVE TRADING" in texts(at.error)
    assert "broker timeout" in texts(at.warning)


def test_stale_heartbeat(monkeypatch, sample_log: Path, tmp_path: Path) -> None:
    beat = write_heartbeat(tmp_path / "old.health", age_seconds=1200)
    at = run_app(monkeypatch, "--trades", sample_log, "--health", beat, "--max-age", "600")
    assert "STALE" in texts(at.markdown)
    assert re.search(r"Last heartbeat 120\d s ago \(limit 600 s\)", texts(at.warning))


def test_status_thresholds(tmp_path: Path) -> None:
    now = datetime(2026, 1, 5, 21, 0, tzinfo=UTC)
    beat = tmp_path / "hb"
    for age, expected in ((0, ONLINE), (600, ONLINE), (601, STALE), (3600, STALE), (3601, OFFLINE)):
        stamp = (now - timedelta(seconds=age)).strftime("%Y-%m-%dT%H:%M:%SZ")
        beat.write_text(json.dumps({"time": stamp, "mode": "paper", "cycle": 3}))
        assert system_status(beat, 600, now).state == expected, age
    beat.write_text(json.dumps({"time": now.isoformat(), "status": "stopped"}))
    assert system_status(beat, 600, now).state == OFFLINE
    beat.write_text("{not json")
    assert system_status(beat, 600, now).message.endswith("not a readable JSON object.")
    beat.write_text(json.dumps({"cycle": 1}))
    assert "no valid 'time'" in system_status(beat, 600, now).message


def test_positions_marked_from_the_state_database(monkeypatch, sample_log, heartbeat_file, tmp_path) -> None:
    db = write_state_db(tmp_path / "state.sqlite", {"BTC/USD": 41000.0, "MSFT": 380.0})
    at = run_app(monkeypatch, "--trades", sample_log, "--health", heartbeat_file, "--state", db)
    positions = frame_with(at, "unrealised_pnl").set_index("symbol")
    # the open lots of the ledger (the log's fills), marked at the cycle's closes, not at log prices
    assert list(positions.index) == ["BTC/USD"]
    assert positions.loc["BTC/USD", "unrealised_pnl"] == pytest.approx(0.3 * (41000 - 40000))
    assert "state database" in texts(at.caption)
    at = run_app(monkeypatch, "--trades", sample_log, "--health", heartbeat_file,
                 "--state", tmp_path / "no.db")
    assert "not found" in texts(at.info)
    assert list(frame_with(at, "unrealised_pnl")["symbol"]) == ["BTC/USD"]


def test_backtest_section(monkeypatch, sample_log, heartbeat_file, tmp_path) -> None:
    bt = tmp_path / "bt"
    bt.mkdir()
    pd.DataFrame({"date": ["2026-01-02", "2026-01-05", "2026-01-06", "2026-01-07"],
                  "value": [100.0, 120.0, 90.0, 110.0], "cash": [100.0, 20, 10, 10],
                  "exposure": [0, 0.8, 0.9, 0.9]}).to_csv(bt / "equity.csv", index=False)
    (bt / "summary.json").write_text(json.dumps({"cagr": 0.1, "sharpe": 1.5}))
    at = run_app(monkeypatch, "--trades", sample_log, "--health", heartbeat_file, "--backtest", bt)
    assert "Max drawdown -25.00%" in texts(at.caption)  # 90 / 120 - 1
    summary = frame_with(at, "metric")
    assert dict(zip(summary["metric"], summary["value"], strict=True)) == {"cagr": "0.1", "sharpe": "1.5"}
    at = run_app(monkeypatch, "--trades", sample_log, "--health", heartbeat_file,
                 "--backtest", tmp_path / "x")
    assert "Backtest directory" in texts(at.error)


def test_options_round_trip_and_command_line(tmp_path: Path) -> None:
    options = DashboardOptions(trades=tmp_path / "t.csv", health=tmp_path / "h", backtest=tmp_path / "b",
                               state=tmp_path / "s.db", refresh=5.0, max_age=90.0)
    assert parse_options(options.to_argv()) == options
    result = CliRunner().invoke(dashboard_command, [
        "--trades", str(tmp_path / "t.csv"), "--health", str(tmp_path / "h"), "--port", "9123",
        "--refresh", "5", "--print-command"])
    assert result.exit_code == 0, result.output
    argv = shlex.split(result.output)
    assert argv[1:5] == ["-m", "streamlit", "run", str(APP)]
    assert argv[argv.index("--server.port") + 1] == "9123"
    assert argv[argv.index("--server.headless") + 1] == "true"
    after = parse_options(argv[argv.index("--") + 1:])
    assert (after.trades, after.refresh) == (tmp_path / "t.csv", 5.0)


def test_report_cache_follows_the_file(tmp_path: Path) -> None:
    log = write_log(tmp_path / "t.csv")
    first = cached_report(log)
    assert cached_report(log) is first
    with log.open("a", encoding="utf-8") as handle:
        handle.write("2026-01-20T21:10:00Z,KO,buy,10,60,o,filled,c-ko,equity_reversal,signal,{}\n")
    assert cached_report(log).fills == EXPECTED["trades"] + 1


def test_bad_arguments_and_section_failures_show_one_line(monkeypatch, sample_log, heartbeat_file) -> None:
    at = run_app(monkeypatch, "--trades", sample_log, "--refresh", "-5")
    assert "dashboard arguments" in texts(at.error) and "--refresh" in texts(at.error)

    def broken(*_args, **_kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("hybrid_core.dashboard.page.load_report", broken)
    at = run_app(monkeypatch, "--trades", sample_log, "--health", heartbeat_file)
    assert "This section failed: RuntimeError: disk on fire" in texts(at.error)
    assert "ONLINE" in texts(at.markdown)  # the header before the failure still rendered


def test_big_money_fits_a_tile() -> None:
    from hybrid_core.dashboard.page import money_tile

    assert [money_tile(v) for v in (875.0, -52075.5, 15_802_827.66, -2_500_000_000)] == [
        "$875.00", "-$52,075.50", "$15.80M", "-$2.50B"]
    assert tile_number("$15.80M") == pytest.approx(15_800_000) and tile_tolerance("$15.80M") > 5000 - 1
    assert tile_number("-$52,075.50") == -52075.5 and tile_tolerance("40.0%") == pytest.approx(0.0005)
