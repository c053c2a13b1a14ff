"""The paper account between two syncs: orders taken and canceled are journalled, and an account
opened again (a killed run restarting mid-cycle) is the very account the running one holds."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pandas as pd

from hybrid_core.builtin.paper_broker import PaperBroker
from hybrid_core.contracts import OrderRequest
from hybrid_core.testing.samples import sample_panel


def opened(folder: Path) -> PaperBroker:
    broker = PaperBroker()
    broker.configure(mode="paper", state_dir=str(folder))
    return broker


def buy(symbol: str, day: str, qty: float = 10.0) -> OrderRequest:
    return OrderRequest(client_order_id=f"hy-{symbol}-{day}", symbol=symbol, side="buy", qty=qty, strategy="s",
                        reason="entry", decision_date=day, ref_price=100.0)


def test_an_account_reopened_between_syncs_is_the_running_one(tmp_path: Path) -> None:
    panel = sample_panel(["AAPL", "KO", "XOM", "MSFT"], "2021-01-04", "2021-01-29")
    days = panel.dates
    broker = opened(tmp_path)
    broker.sync(panel.until(days[0]), days[0])
    for sym in ("AAPL", "KO", "XOM"):
        broker.submit(buy(sym, str(days[0].date())))
    broker.sync(panel.until(days[1]), days[1])  # the buys fill at the next open: a snapshot
    assert set(broker.book.positions) == {"AAPL", "KO", "XOM"}
    # between two syncs: a stop set, a stop canceled, a buy taken and one canceled, a sell taken
    broker.submit(OrderRequest(client_order_id="hy-AAPL-stop", symbol="AAPL", side="sell", qty=10.0,
                               order_type="stop", stop_price=90.0))
    broker.submit(OrderRequest(client_order_id="hy-KO-stop", symbol="KO", side="sell", qty=10.0,
                               order_type="stop", stop_price=40.0))
    broker.cancel("hy-KO-stop")
    broker.submit(buy("MSFT", str(days[1].date()), 5.0))
    broker.submit(buy("KO", str(days[1].date()), 3.0))
    broker.cancel(f"hy-KO-{days[1].date()}")
    broker.submit(OrderRequest(client_order_id="hy-XOM-exit", symbol="XOM", side="sell", qty=10.0,
                               decision_date=str(days[1].date()), ref_price=50.0))
    with sqlite3.connect(tmp_path / "paper_account.sqlite") as conn:
        assert conn.execute("SELECT COUNT(*) FROM journal").fetchone()[0] == 7
    again = opened(tmp_path)
    assert json.loads(again.book.state_json()) == json.loads(broker.book.state_json())
    assert again.book.positions["AAPL"].stop_price == 90.0 and again.book.positions["KO"].stop_price is None
    assert [o.client_order_id for o in again.open_orders()] == [o.client_order_id for o in broker.open_orders()]
    # both go on alike, and the next sync leaves a snapshot and an empty journal
    fills = [sorted((o.client_order_id, o.filled_avg_price) for o in b.sync(panel.until(days[2]), days[2]))
             for b in (broker, again)]
    assert fills[0] == fills[1] and len(fills[0]) == 2
    with sqlite3.connect(tmp_path / "paper_account.sqlite") as conn:
        assert conn.execute("SELECT COUNT(*) FROM journal").fetchone()[0] == 0
    assert pd.Timestamp(days[2]) == again._synced_through


def test_a_batch_writes_the_account_once_when_it_ends(tmp_path: Path) -> None:
    """A replay's session: nothing reaches the file until the batch ends; then the file holds the
    very account the broker holds (book, open orders, every order's last state)."""
    panel = sample_panel(["AAPL", "KO", "XOM", "MSFT"], "2021-01-04", "2021-01-29")
    days = panel.dates
    broker = opened(tmp_path)

    def journal_and_orders() -> tuple[int, int]:
        with sqlite3.connect(tmp_path / "paper_account.sqlite") as conn:
            return (conn.execute("SELECT COUNT(*) FROM journal").fetchone()[0],
                    conn.execute("SELECT COUNT(*) FROM orders").fetchone()[0])

    with broker.batch():
        broker.sync(panel.until(days[0]), days[0])
        for sym in ("AAPL", "KO", "XOM"):
            broker.submit(buy(sym, str(days[0].date())))
        assert journal_and_orders() == (0, 0)
    assert journal_and_orders() == (0, 3)
    with broker.batch():
        broker.sync(panel.until(days[1]), days[1])  # the buys fill
        broker.submit(OrderRequest(client_order_id="hy-AAPL-stop", symbol="AAPL", side="sell", qty=10.0,
                                   order_type="stop", stop_price=90.0))
        broker.submit(OrderRequest(client_order_id="hy-KO-stop", symbol="KO", side="sell", qty=10.0,
                                   order_type="stop", stop_price=40.0))
        broker.cancel("hy-KO-stop")
        assert broker.get_order("hy-KO-stop").status == "canceled"  # type: ignore[union-attr]
        broker.submit(buy("MSFT", str(days[1].date()), 5.0))
        broker.submit(OrderRequest(client_order_id="hy-XOM-exit", symbol="XOM", side="sell", qty=10.0,
                                   decision_date=str(days[1].date()), ref_price=50.0))
        assert broker.submit(buy("MSFT", str(days[1].date()), 5.0)).status == "accepted"  # the same order
        assert journal_and_orders() == (0, 3)
    assert journal_and_orders() == (0, 7)
    again = opened(tmp_path)
    assert json.loads(again.book.state_json()) == json.loads(broker.book.state_json())
    assert again._synced_through == broker._synced_through == pd.Timestamp(days[1])
    assert [o.client_order_id for o in again.open_orders()] == [o.client_order_id for o in broker.open_orders()]
    for cid in ("hy-AAPL-stop", "hy-KO-stop", "hy-XOM-exit", f"hy-AAPL-{days[0].date()}", "hy-none"):
        assert again.get_order(cid) == broker.get_order(cid)
    fills = [sorted((o.client_order_id, o.filled_avg_price) for o in b.sync(panel.until(days[2]), days[2]))
             for b in (broker, again)]
    assert fills[0] == fills[1] and len(fills[0]) == 2
