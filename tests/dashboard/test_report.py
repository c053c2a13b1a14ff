"""FIFO report numbers against hand-worked examples."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from dashboard_support import write_state_db
from sample_log import COLUMNS, EXPECTED, sample_rows, write_log

from hybrid_core.commands.report import command as report_command
from hybrid_core.errors import DataError
from hybrid_core.ops.report import build_report, load_report, read_state_marks


def _fills(*trades: tuple) -> pd.DataFrame:
    """Raw filled rows from (symbol, side, qty, price[, strategy]) in time order."""
    rows = []
    for i, trade in enumerate(trades):
        symbol, side, qty, price, *rest = trade
        rows.append({"timestamp": f"2026-02-{i + 1:02d}T21:00:00Z", "symbol": symbol, "side": side,
                     "qty": qty, "price": price, "order_id": f"o{i}", "status": "filled",
                     "client_order_id": f"c{i}", "strategy": rest[0] if rest else "s",
                     "reason": "signal", "signal": "{}"})
    return pd.DataFrame(rows, columns=COLUMNS)


MARKS = {"BTC/USD": 42000.0}  # the close the last cycle saw


def test_sample_log_totals(sample_log: Path) -> None:
    report = build_report(sample_log, MARKS)
    assert report.problems == ()
    assert report.realised_pnl == pytest.approx(EXPECTED["realised_pnl"])
    assert report.unrealised_pnl == pytest.approx(EXPECTED["unrealised_pnl"])
    assert report.win_rate == pytest.approx(EXPECTED["win_rate"])
    assert (report.fills, report.round_trips, report.wins) == (10, 5, 2)
    assert list(report.symbols) == EXPECTED["symbols"]
    assert report.volume == pytest.approx(EXPECTED["volume"])
    assert list(report.cumulative_pnl()["cumulative"]) == pytest.approx(EXPECTED["cumulative"])
    assert report.status_counts["filled"] == 10 and report.status_counts["refused"] == 1


def test_sample_log_breakdowns(sample_log: Path) -> None:
    report = build_report(sample_log)
    for got, expected in ((report.by_symbol, EXPECTED["by_symbol"]),
                          (report.by_strategy, EXPECTED["by_strategy"])):
        table = {b.key: (b.realised_pnl, b.round_trips, b.wins, b.fills, b.volume) for b in got}
        assert table.keys() == expected.keys()
        for key, numbers in expected.items():
            assert table[key] == pytest.approx(numbers), key


def test_open_position_left_after_partial_sell(sample_log: Path) -> None:
    unmarked = build_report(sample_log)
    (btc,) = unmarked.open_positions
    assert (btc.symbol, btc.strategy) == ("BTC/USD", "crypto_adx")
    assert btc.qty == pytest.approx(0.3) and btc.entry_price == 40000
    # no market data: never marked at a price from the log (fills, reference closes, stops)
    assert btc.mark is None and unmarked.unrealised_pnl is None
    assert "no market close for BTC/USD" in unmarked.notes[0]
    marked = build_report(sample_log, {"BTC/USD": 39000}).open_positions[0]
    assert marked.mark == 39000 and marked.unrealised_pnl == pytest.approx(-300.0)


def test_multiple_buys_then_one_sell_is_one_round_trip() -> None:
    report = build_report(_fills(("XOM", "buy", 10, 50), ("XOM", "buy", 20, 53), ("XOM", "sell", 30, 52)))
    # 10*(52-50) + 20*(52-53) = 20 - 20 = 0: not a win
    (trip,) = report.closed
    assert trip.pnl == pytest.approx(0.0) and trip.qty == 30
    assert trip.entry_price == pytest.approx((10 * 50 + 20 * 53) / 30)
    assert report.win_rate == 0.0 and report.open_positions == ()


def test_partial_lots_across_sells() -> None:
    report = build_report(_fills(("KO", "buy", 10, 60), ("KO", "buy", 10, 62),
                                 ("KO", "sell", 4, 61), ("KO", "sell", 10, 63)))
    # sell 4 @61 vs lot1: 4*1 = 4; sell 10 @63: 6 left of lot1 -> 6*3 = 18, 4 of lot2 -> 4*1 = 4
    assert [t.pnl for t in report.closed] == pytest.approx([4.0, 22.0])
    (left,) = report.open_positions
    assert left.qty == pytest.approx(6) and left.entry_price == 62
    assert report.win_rate == 1.0


def test_crypto_fractional_quantities_close_exactly() -> None:
    report = build_report(_fills(("ETH/USD", "buy", 0.1, 3000), ("ETH/USD", "buy", 0.2, 3100),
                                 ("ETH/USD", "sell", 0.3, 3200)))
    # 0.1*200 + 0.2*100 = 40; 0.1 + 0.2 != 0.3 in binary floats, yet nothing must stay open
    assert report.realised_pnl == pytest.approx(40.0)
    assert report.open_positions == ()
    assert report.volume == pytest.approx(300 + 620 + 960)


def test_sell_first_opens_a_short_closed_by_a_buy() -> None:
    report = build_report(_fills(("SPY", "sell", 2, 500), ("SPY", "buy", 3, 490)))
    (trip,) = report.closed
    assert trip.pnl == pytest.approx(20.0)
    (left,) = report.open_positions
    assert left.qty == pytest.approx(1) and left.entry_price == 490


def test_malformed_rows_are_reported_with_line_numbers_and_skipped(tmp_path: Path) -> None:
    bad = ("2026-01-20T21:10:00Z,AAPL,buy,ten,100,o9,filled,c9,equity_reversal,signal,{}\n"
           "2026-01-20T21:11:00Z,AAPL,hold,1,100,o10,filled,c10,equity_reversal,signal,{}\n"
           "2026-01-20T21:12:00Z,AAPL,buy\n"
           "not-a-date,AAPL,buy,1,100,o11,filled,c11,equity_reversal,signal,{}\n")
    path = write_log(tmp_path / "t.csv", extra_lines=bad)
    report = build_report(path)
    first_bad = len(sample_rows()) + 2
    assert [p.line for p in report.problems] == [first_bad, first_bad + 1, first_bad + 2, first_bad + 3]
    assert "qty" in report.problems[0].message and "side" in report.problems[1].message
    assert report.realised_pnl == pytest.approx(EXPECTED["realised_pnl"])


def test_repeated_fill_of_one_client_order_id_counts_once() -> None:
    frame = _fills(("KO", "buy", 10, 60), ("KO", "sell", 10, 61))
    frame = pd.concat([frame, frame.iloc[[1]]], ignore_index=True)
    report = build_report(frame)
    assert report.realised_pnl == pytest.approx(10.0) and report.fills == 2
    assert "repeated fill" in report.problems[0].message and report.problems[0].line == 4


def test_missing_and_empty_logs(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        build_report(tmp_path / "nope.csv")
    (tmp_path / "empty.csv").write_text("")
    assert build_report(tmp_path / "empty.csv").is_empty
    header_only = write_log(tmp_path / "h.csv", rows=[])
    report = build_report(header_only)
    assert report.is_empty and report.fills == 0 and report.win_rate == 0.0
    assert report.cumulative_pnl().empty
    (tmp_path / "odd.csv").write_text("a,b,c\n1,2,3\n")
    with pytest.raises(DataError, match="lacks column"):
        build_report(tmp_path / "odd.csv")


def test_to_dict_is_json(sample_log: Path) -> None:
    data = json.loads(json.dumps(build_report(sample_log, MARKS).to_dict()))
    assert data["realised_pnl"] == pytest.approx(875.0)
    assert data["cumulative_pnl"][-1]["time"] == "2026-01-13T21:10:30Z"
    assert data["open_positions"][0]["symbol"] == "BTC/USD"


def test_marks_come_from_the_state_database_read_only(sample_log: Path, tmp_path: Path) -> None:
    db = write_state_db(tmp_path / "s.sqlite", MARKS)
    before = db.read_bytes()
    assert read_state_marks(db) == ("2026-01-13", {"BTC/USD": (42000.0, "2026-01-13")})
    report = load_report(sample_log, db)
    assert report.unrealised_pnl == pytest.approx(600.0) and report.marks_as_of == "2026-01-13"
    assert db.read_bytes() == before
    with pytest.raises(DataError, match="not found"):
        read_state_marks(tmp_path / "none.sqlite")
    (tmp_path / "empty.sqlite").write_bytes(b"")
    with pytest.raises(DataError, match="marks"):
        read_state_marks(tmp_path / "empty.sqlite")


def test_report_reads_a_backtest_round_trip_table(tmp_path: Path) -> None:
    folder = tmp_path / "bt"
    folder.mkdir()
    pd.DataFrame({"symbol": ["A", "B"], "entry_date": ["2026-01-02", "2026-01-05"], "entry_price": [10.0, 20.0],
                  "exit_date": ["2026-01-06", "2026-01-09"], "exit_price": [12.0, 19.0], "qty": [5.0, 3.0],
                  "exit_reason": ["rebalance", "end_of_data"], "pnl": [10.0, -3.0], "return": [0.2, -0.05],
                  "strategy": ["s", "s"]}).to_csv(folder / "round_trips.csv", index=False)
    report = load_report(folder)
    assert (report.round_trips, report.realised_pnl, report.fills) == (1, 10.0, 3)
    (b,) = report.open_positions
    assert (b.symbol, b.mark, b.unrealised_pnl) == ("B", 19.0, pytest.approx(-3.0))
    with pytest.raises(DataError, match="neither"):
        load_report(tmp_path)


def test_report_command_json_and_table(sample_log: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(report_command, ["--file", str(sample_log), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["volume"] == pytest.approx(52075.0)
    table = runner.invoke(report_command, ["--file", str(sample_log)])
    assert table.exit_code == 0 and "875.00" in table.output and "BTC/USD" in table.output
    missing = runner.invoke(report_command, ["--file", str(tmp_path / "x.csv")])
    assert isinstance(missing.exception, DataError) and "not found" in str(missing.exception)  # cli.main maps it


def test_hybrid_report_exit_code_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hybrid_core.cli import main

    with pytest.raises(SystemExit) as exited:
        main(["report", "--file", str(tmp_path / "x.csv")])
    assert exited.value.code == DataError.exit_code
    assert capsys.readouterr().err.startswith(f"error: trade log not found: {tmp_path / 'x.csv'}")
    with pytest.raises(SystemExit) as exited:
        main(["report", str(tmp_path), "--file", str(tmp_path / "x.csv")])
    assert exited.value.code == 2 and "error: give PATH or --file, not both" in capsys.readouterr().err


def test_torn_last_line_and_unpriced_refusal_are_not_problems(tmp_path: Path) -> None:
    extra = ("2026-01-20T21:10:00Z,NVDA,buy,5,,,refused,c-r,equity_reversal,signal,{}\n"
             "2026-01-20T21:11:00Z,AAPL,sell,5,105,o-x,fil")  # a write in progress: no newline yet
    report = build_report(write_log(tmp_path / "t.csv", extra_lines=extra))
    assert report.problems == ()
    assert report.status_counts["refused"] == 2 and report.fills == EXPECTED["trades"]


def test_a_log_price_never_marks_a_position(tmp_path: Path) -> None:
    rows = [  # a replay: fills stamped with simulated time, other events with wall time
        ("2026-11-25T20:21:08Z", "BA", "buy", "10", "244.87", "submitted", "entry"),
        ("2021-03-29T00:00:00Z", "BA", "buy", "10", "251.30", "filled", "entry"),
        ("2026-11-25T20:21:09Z", "BA", "sell", "10", "238.735", "submitted", "stop_loss"),
    ]
    frame = pd.DataFrame([{"timestamp": t, "symbol": s, "side": d, "qty": q, "price": p, "order_id": "",
                           "status": st, "client_order_id": f"c{i}", "strategy": "er", "reason": r,
                           "signal": "{}"} for i, (t, s, d, q, p, st, r) in enumerate(rows)])
    report = build_report(frame)
    (ba,) = report.open_positions
    assert ba.mark is None and report.unrealised_pnl is None
    assert build_report(frame, {"BA": 250.0}).unrealised_pnl == pytest.approx(10 * (250.0 - 251.30))
    assert list(report.recent_events()["status"]) == ["submitted", "filled", "submitted"][::-1]
