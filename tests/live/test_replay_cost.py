"""What a replay does not pay for: fsyncs of files it can make again.

A live run syncs every write (state database, audit log, heartbeat, paper account) so a power
loss loses nothing; a replay writes the same files without syncing them (a killed replay still
leaves whole files and resumes, see tests/parity). Its speed itself is measured by bench/replay.py.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from hybrid_core.live.runner import RunOptions, RunSession
from hybrid_core.ops.audit import TradeAuditLog
from hybrid_core.ops.heartbeat import HeartbeatFile
from hybrid_core.plugins import build_plugin_host
from hybrid_core.profile import load_profile


@pytest.fixture
def fsyncs(monkeypatch):
    """Counts os.fsync calls (they still happen)."""
    calls: list[int] = []
    real = os.fsync

    def counting(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fsync", counting)
    return calls


ROW = {"symbol": "AAPL", "side": "buy", "qty": 1.0, "status": "submitted", "client_order_id": "hy-1",
       "timestamp": pd.Timestamp("2021-01-04 21:00", tz="UTC")}


def test_an_audit_log_syncs_each_row_unless_it_is_a_replays(tmp_path: Path, fsyncs: list[int]) -> None:
    live = TradeAuditLog(tmp_path / "live.csv")
    before = len(fsyncs)
    live.append(ROW)
    assert len(fsyncs) == before + 1
    replay = TradeAuditLog(tmp_path / "replay.csv", durable=False)
    before = len(fsyncs)
    replay.append(ROW)
    assert len(fsyncs) == before
    assert (tmp_path / "replay.csv").read_text().splitlines()[1].split(",")[1] == "AAPL"


def test_a_replays_heartbeat_is_replaced_whole_without_fsync(tmp_path: Path, fsyncs: list[int]) -> None:
    HeartbeatFile(tmp_path / "live.health").write(cycle=1, mode="paper")
    synced = len(fsyncs)
    assert synced >= 1
    beat = HeartbeatFile(tmp_path / "replay.health", durable=False)
    beat.write(cycle=2, mode="paper")
    assert len(fsyncs) == synced and beat.read()["cycle"] == 2
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.parametrize(("durable", "synchronous"), [(True, 2), (False, 1)])  # FULL, NORMAL
def test_the_paper_account_follows_the_runs_durability(demo_profile, tmp_path: Path, durable: bool,
                                                       synchronous: int) -> None:
    profile = load_profile(demo_profile())
    options = RunOptions(durable=durable, state_db=str(tmp_path / f"s{durable}" / "state.sqlite"))
    with RunSession(profile, build_plugin_host().registry, options) as session:
        broker = session.components.broker
        assert broker.durable is durable
        assert broker._conn.execute("PRAGMA synchronous").fetchone()[0] == synchronous
        assert session.state._conn.execute("PRAGMA synchronous").fetchone()[0] == synchronous
    with sqlite3.connect(tmp_path / f"s{durable}" / "paper_account.sqlite") as conn:
        assert conn.execute("SELECT COUNT(*) FROM account").fetchone()[0] == 1


def test_a_batch_commits_once_and_keeps_each_write_atomic(tmp_path: Path) -> None:
    """A replay's cycle writes in one transaction: another reader sees nothing of it until it
    ends; a write that fails inside is undone alone; a cycle that raises keeps what it wrote."""
    from hybrid_core.ops.state import StateStore, StoredPosition

    state = StateStore(tmp_path / "state.sqlite", durable=False)

    def reader_sees() -> int:
        with sqlite3.connect(tmp_path / "state.sqlite") as other:
            return int(other.execute("SELECT COUNT(*) FROM positions").fetchone()[0])

    def position(symbol: str) -> StoredPosition:
        return StoredPosition(symbol=symbol, qty=1.0, entry_price=10.0, entry_date="2021-01-04", strategy="s")

    with pytest.raises(RuntimeError), state.batch():
        state.open_position(position("AAPL"))
        assert reader_sees() == 0
        with pytest.raises(ZeroDivisionError), state.transaction() as db:
            db.execute("DELETE FROM positions")
            raise ZeroDivisionError
        state.open_position(position("KO"))
        raise RuntimeError("the cycle failed")
    assert reader_sees() == 2 and sorted(state.positions()) == ["AAPL", "KO"]


def test_a_replay_writes_its_heartbeat_once_a_second_and_at_its_end(demo_profile, tmp_path: Path,
                                                                     monkeypatch) -> None:
    """A replay runs many cycles a second: its heartbeat is not replaced after each one, but the
    last session's is there when it ends; a live run's is written after every cycle."""
    from hybrid_core.engine.replay import replay

    written: list[dict] = []
    real = HeartbeatFile.write

    def counting(self, **beat) -> None:
        written.append(beat)
        real(self, **beat)

    monkeypatch.setattr(HeartbeatFile, "write", counting)
    profile = load_profile(demo_profile())
    options = RunOptions(durable=False, simulated_clock=True, state_db=str(tmp_path / "r" / "state.sqlite"),
                         health_file=str(tmp_path / "r" / "h.health"), trade_log=str(tmp_path / "r" / "t.csv"))
    with RunSession(profile, build_plugin_host().registry, options) as session:
        result = replay(session, pd.Timestamp("2021-03-01"), pd.Timestamp("2021-03-31"), progress=False)
        beat = session.heartbeat.read()
    cycles = [b for b in written if "as_of" in b]
    assert len(result.sessions) > 20 and 1 <= len(cycles) < len(result.sessions) / 2
    assert beat is not None and beat["as_of"] == "2021-03-31" and beat["status"] == cycles[-1]["status"]
    written.clear()
    options = RunOptions(state_db=str(tmp_path / "l" / "state.sqlite"), health_file=str(tmp_path / "l" / "h.health"),
                         trade_log=str(tmp_path / "l" / "t.csv"), banner_seconds=0)
    with RunSession(profile, build_plugin_host().registry, options) as session:
        for day in ("2021-03-01", "2021-03-02", "2021-03-03"):
            session.run_cycle(pd.Timestamp(day))
    assert [b["as_of"] for b in written if "as_of" in b] == ["2021-03-01", "2021-03-02", "2021-03-03"]


def test_a_strategys_explanation_is_made_for_a_log_that_takes_it_only(demo_profile, tmp_path: Path,
                                                                      monkeypatch) -> None:
    from loguru import logger

    from hybrid_core.ops.logging_setup import configure_logging

    profile = load_profile(demo_profile())
    options = RunOptions(durable=False, simulated_clock=True, state_db=str(tmp_path / "state.sqlite"))
    lines: list[str] = []
    with RunSession(profile, build_plugin_host().registry, options) as session:
        strategy = session.components.strategies[0]
        explained: list[pd.Timestamp] = []
        real = type(strategy).explain

        def explain(self, panel, signals, date):  # type: ignore[no-untyped-def]
            explained.append(date)
            return real(self, panel, signals, date)

        monkeypatch.setattr(type(strategy), "explain", explain)
        configure_logging(level="WARNING")
        session.run_cycle(pd.Timestamp("2021-03-01"))
        assert explained == []
        sink = logger.add(lines.append, level="INFO")
        try:
            session.run_cycle(pd.Timestamp("2021-03-02"))
        finally:
            logger.remove(sink)
    assert explained == [pd.Timestamp("2021-03-02")]
    assert any(f"{strategy.name}: not a rebalance day" in line for line in lines)


def test_a_replays_audit_rows_reach_the_file_together_when_its_session_ends(tmp_path: Path) -> None:
    log = TradeAuditLog(tmp_path / "replay.csv", durable=False)

    def rows() -> list[str]:
        return (tmp_path / "replay.csv").read_text().splitlines()[1:]

    with log.batch():
        assert log.append(ROW) and not log.append(ROW)  # one row per (client id, status), in a batch too
        assert log.append({**ROW, "status": "accepted"})
        assert rows() == []
    assert [r.split(",")[6] for r in rows()] == ["submitted", "accepted"]
    with pytest.raises(RuntimeError), log.batch():
        assert not log.append(ROW)
        log.append({**ROW, "status": "filled"})
        raise RuntimeError("the cycle failed")
    assert [r.split(",")[6] for r in rows()] == ["submitted", "accepted", "filled"]
    assert not TradeAuditLog(tmp_path / "replay.csv", durable=False).append(ROW)  # reopened: known
