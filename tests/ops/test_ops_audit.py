"""Trade audit CSV: format, header checks, torn-line repair, no duplicates, full disk, SIGKILL."""

from __future__ import annotations

import csv
import errno
import os
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from loguru import logger

from hybrid_core.errors import HybridError
from hybrid_core.ops import audit
from hybrid_core.ops.audit import TRADE_LOG_COLUMNS, TradeAuditLog, TradeLogError, read_trade_log

EXPECTED_HEADER = ("timestamp,symbol,side,qty,price,order_id,status,client_order_id,"
                   "strategy,reason,signal,commission")


def _row(i: int, **over: object) -> dict:
    row = {"timestamp": pd.Timestamp("2024-01-05 21:10", tz="UTC") + pd.Timedelta(seconds=i),
           "symbol": "BTC/USD" if i % 2 else "AAPL", "side": "buy" if i % 3 else "sell",
           "qty": 0.001234 if i % 2 else 10.0, "price": 101.25 + i, "order_id": f"brk-{i}",
           "status": "filled", "client_order_id": f"hy-{i:05d}", "strategy": "equity_reversal",
           "reason": "signal", "signal": {"score": -0.0123, "rank": i, "adx": float("nan")}}
    row.update(over)
    return row


def test_columns_match_the_brief() -> None:
    assert ",".join(TRADE_LOG_COLUMNS) == EXPECTED_HEADER


def test_append_and_read_typed(tmp_path: Path) -> None:
    path = tmp_path / "out" / "trades.csv"
    log = TradeAuditLog(path)
    assert log.append(_row(1))
    assert log.append_many([_row(2), _row(3, status="refused", price=None, order_id="")]) == 2
    lines = path.read_text().splitlines()
    assert lines[0] == EXPECTED_HEADER and len(lines) == 4
    first = next(csv.DictReader(path.open()))
    assert first["timestamp"] == "2024-01-05T21:10:01.000000Z"
    assert first["signal"] == '{"adx":null,"rank":1,"score":-0.0123}'
    frame = read_trade_log(path)
    assert list(frame.columns) == TRADE_LOG_COLUMNS
    assert str(frame["timestamp"].dt.tz) == "UTC"
    assert frame["qty"].dtype == "float64" and frame["price"].dtype == "float64"
    assert frame["qty"].tolist() == [0.001234, 10.0, 0.001234]
    assert pd.isna(frame["price"].iloc[2]) and frame["status"].tolist() == ["filled", "filled", "refused"]


def test_a_log_of_the_previous_format_is_still_appended_in_its_own_format(tmp_path: Path) -> None:
    path = tmp_path / "trades.csv"
    legacy = EXPECTED_HEADER.removesuffix(",commission")
    path.write_text(legacy + "\n")
    TradeAuditLog(path).append(_row(1, commission=0.5))
    lines = path.read_text().splitlines()
    assert lines[0] == legacy and len(lines) == 2
    assert len(next(csv.reader([lines[1]]))) == len(TRADE_LOG_COLUMNS) - 1  # no commission cell
    frame = read_trade_log(path)
    assert frame["commission"].isna().all() and frame["client_order_id"].tolist() == ["hy-00001"]


def test_header_written_once_across_reopens(tmp_path: Path) -> None:
    path = tmp_path / "trades.csv"
    TradeAuditLog(path).append(_row(1))
    TradeAuditLog(path).append(_row(2))
    text = path.read_text()
    assert text.count("timestamp,symbol") == 1 and len(text.splitlines()) == 3


def test_duplicate_event_not_written_again(tmp_path: Path) -> None:
    path = tmp_path / "trades.csv"
    TradeAuditLog(path).append(_row(1))
    log = TradeAuditLog(path)
    assert log.append(_row(1)) is False
    assert log.append(_row(1, status="canceled")) is True
    assert log.append_many([_row(5), _row(5)]) == 1
    ids = read_trade_log(path)[["client_order_id", "status"]].apply(tuple, axis=1).tolist()
    assert ids == [("hy-00001", "filled"), ("hy-00001", "canceled"), ("hy-00005", "filled")]


def test_rows_without_client_id_are_never_deduplicated(tmp_path: Path) -> None:
    log = TradeAuditLog(tmp_path / "t.csv")
    assert log.append(_row(1, client_order_id="", status="refused"))
    assert log.append(_row(1, client_order_id="", status="refused"))
    assert len(read_trade_log(tmp_path / "t.csv")) == 2


def test_torn_last_line_is_repaired_and_logged(tmp_path: Path) -> None:
    path = tmp_path / "trades.csv"
    TradeAuditLog(path).append(_row(1))
    with open(path, "ab") as fh:
        fh.write(b"2024-01-05T21:10:02.000000Z,AAPL,buy,10.0,1")
    assert len(read_trade_log(path)) == 1  # reading ignores the torn line
    messages: list[str] = []
    sink = logger.add(lambda m: messages.append(str(m)), level="WARNING")
    try:
        log = TradeAuditLog(path)
    finally:
        logger.remove(sink)
    assert any("torn last line" in m for m in messages)
    log.append(_row(2))
    assert read_trade_log(path)["client_order_id"].tolist() == ["hy-00001", "hy-00002"]
    assert path.read_text().endswith("\n") and "21:10:02.000000Z,AAPL,buy,10.0,1\n" not in path.read_text()


def test_torn_header_is_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "trades.csv"
    path.write_bytes(b"timestamp,sym")
    TradeAuditLog(path).append(_row(1))
    assert path.read_text().splitlines()[0] == EXPECTED_HEADER


def test_wrong_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "trades.csv"
    path.write_text("time,ticker,qty\n1,2,3\n")
    with pytest.raises(TradeLogError, match=r"has header 'time,ticker,qty'.*move that file aside"):
        TradeAuditLog(path)
    assert path.read_text() == "time,ticker,qty\n1,2,3\n"
    assert issubclass(TradeLogError, HybridError)


@pytest.mark.parametrize("bad, needle", [
    ({"status": "done"}, "status 'done'"),
    ({"side": "short"}, "side 'short'"),
    ({"symbol": ""}, "missing ['symbol']"),
    ({"colour": "red"}, "unknown column(s) ['colour']"),
    ({"reason": "a\nb"}, "line break"),
])
def test_bad_rows_are_refused_without_writing(tmp_path: Path, bad: dict, needle: str) -> None:
    path = tmp_path / "trades.csv"
    log = TradeAuditLog(path)
    with pytest.raises(TradeLogError) as info:
        log.append(_row(1, **bad))
    assert needle in str(info.value)
    assert path.read_text() == EXPECTED_HEADER + "\n"


def test_real_full_disk_is_one_clear_line() -> None:
    with pytest.raises(TradeLogError) as info:
        TradeAuditLog("/dev/full")  # writes fail with ENOSPC
    message = str(info.value)
    assert "disk full" in message and "/dev/full" in message and "\n" not in message


def test_short_write_leaves_no_partial_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "trades.csv"
    log = TradeAuditLog(path)
    log.append(_row(1))
    before = path.read_bytes()
    real_write = os.write

    def half_write(fd: int, data: bytes) -> int:
        return real_write(fd, data[: len(data) // 2])

    monkeypatch.setattr(audit.os, "write", half_write)
    with pytest.raises(TradeLogError, match="disk full writing the trade log"):
        log.append(_row(2))
    assert path.read_bytes() == before
    monkeypatch.setattr(audit.os, "write", real_write)
    assert log.append(_row(2))  # not marked as written by the failed attempt


def test_enospc_from_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = TradeAuditLog(tmp_path / "trades.csv")

    def no_space(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(audit.os, "write", no_space)
    with pytest.raises(TradeLogError, match=r"trades\.csv: the 1 row\(s\) was not written; free space"):
        log.append(_row(1))


def test_missing_file_read_error(tmp_path: Path) -> None:
    with pytest.raises(TradeLogError, match="not found"):
        read_trade_log(tmp_path / "none.csv")


ROWS = 400
WRITER = textwrap.dedent(f"""
    import sys
    from hybrid_core.ops.audit import TradeAuditLog
    log = TradeAuditLog(sys.argv[1])
    stop_at = int(sys.argv[2]) if len(sys.argv) > 2 else None
    print("ready", flush=True)
    i = 0
    while i < {ROWS}:
        if i % 7 == 3:  # some events arrive in batches
            batch = range(i, min(i + 3, {ROWS}))
        else:
            batch = range(i, i + 1)
        log.append_many([{{"symbol": "AAPL", "side": "buy", "qty": 1, "price": 100 + k,
                           "status": "filled", "client_order_id": f"id-{{k:05d}}",
                           "signal": {{"k": k, "text": "a, \\"quoted\\" value"}}}} for k in batch])
        i = batch[-1] + 1
        if stop_at is not None and i >= stop_at:  # test hook: report, then wait to be killed
            print(f"wrote {{i}}", flush=True)
            sys.stdin.read()
    print("done", flush=True)
    """)


def _ids_in(path: Path) -> list[int]:
    frame = read_trade_log(path)
    assert (frame["status"] == "filled").all() and frame["signal"].str.startswith('{"k":').all()
    return [int(c.split("-")[1]) for c in frame["client_order_id"]]


def test_sigkill_at_random_moments_never_leaves_partial_or_duplicate_rows(tmp_path: Path) -> None:
    """Kill a writer 20 times at random rows it reports; each restart replays every event from the start."""
    path = tmp_path / "trades.csv"
    rng = random.Random(7)
    for _ in range(20):
        stop_at = rng.randrange(1, ROWS)
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(stop_at)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        wrote = int(proc.stdout.readline().split()[1])
        assert stop_at <= wrote < ROWS
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        ids = _ids_in(path)
        assert ids == list(range(len(ids))), "rows must be a gap-free prefix, each exactly once"
        assert len(ids) >= wrote
    final = subprocess.run([sys.executable, "-c", WRITER, str(path)], capture_output=True, text=True,
                           timeout=120)
    assert final.returncode == 0, final.stderr
    assert _ids_in(path) == list(range(ROWS))
    assert path.read_text().count(EXPECTED_HEADER) == 1
