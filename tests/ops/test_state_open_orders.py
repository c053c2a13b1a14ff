"""The state database keeps its unfinished orders in memory: what it answers is what the file
holds (a second store opened on the same file reads the same), and a caller's copy is its own."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hybrid_core.ops.state import StateStore, StoredOrder


def order(cid: str, symbol: str, kind: str = "market") -> StoredOrder:
    return StoredOrder(client_order_id=cid, symbol=symbol, side="buy" if kind == "market" else "sell", qty=10.0,
                       order_type=kind, status="intended", strategy="s", reason="entry",
                       decision_date="2021-01-04", ref_price=np.float64(12.5), signal={"score": np.float64(-0.1)},
                       stop_price=9.0 if kind == "stop" else None)


def test_open_orders_in_memory_read_as_the_file_does(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.sqlite")
    store.record_order(order("a", "AAPL"))
    assert [o.client_order_id for o in store.orders(open_only=True)] == ["a"]  # read once, now kept
    for cid, symbol, kind in [("b", "KO", "market"), ("c", "KO", "stop"), ("d", "XOM", "market")]:
        store.record_order(order(cid, symbol, kind))
    store.update_order("a", status="submitted", broker_order_id="x-a")
    store.update_order("a", status="accepted", qty=np.float64(9.0))
    store.update_order("b", status="filled", filled_qty=10.0, filled_avg_price=np.float64(12.6),
                       filled_at="2021-01-05T14:30:00Z")
    store.update_order("c", status="accepted", stop_price=8.99)
    store.update_order("d", status="unknown")
    with store.batch():
        store.update_order("d", status="canceled")
        store.record_order(order("e", "MSFT"))
    fresh = StateStore(tmp_path / "state.sqlite")
    for kwargs in ({"open_only": True}, {"open_only": True, "symbol": "KO"}, {"status": "accepted"},
                   {"status": "unknown"}, {}):
        assert store.orders(**kwargs) == fresh.orders(**kwargs), kwargs
    assert [o.client_order_id for o in store.orders(open_only=True)] == ["a", "c", "e"]
    for cid in "abcdez":
        assert store.get_order(cid) == fresh.get_order(cid)
    mine = store.get_order("a")
    assert mine is not None
    mine.signal["score"] = 99.0
    mine.status = "filled"
    assert store.get_order("a") == fresh.get_order("a")


def test_positions_in_memory_read_as_the_file_does(tmp_path: Path) -> None:
    from hybrid_core.ops.state import StoredPosition

    store = StateStore(tmp_path / "state.sqlite")
    assert store.positions() == {}  # read once, now kept
    for symbol in ("XOM", "AAPL", "KO"):
        store.open_position(StoredPosition(symbol=symbol, qty=np.float64(10), entry_price=np.float64(12.5),
                                           entry_date="2021-01-04T00:00:00", strategy="s", opened_by="hy-1"))
    store.set_stop("KO", "hy-stop", np.float64(11.0))
    store.set_stop("AAPL", "hy-stop2", float("nan"))  # NaN is stored as NULL
    store.restart_positions(["KO", "XOM", "MSFT"], "2021-01-08")
    with store.batch():
        store.close_position("XOM")
        store.open_position(StoredPosition(symbol="BA", qty=3, entry_price=200, entry_date="2021-01-05",
                                           strategy="s"))
    store.set_stop("ZZZ", "hy-none", 1.0)  # no such position: nothing changes
    fresh = StateStore(tmp_path / "state.sqlite")
    assert store.positions() == fresh.positions()
    assert list(store.positions()) == ["AAPL", "BA", "KO"]
    for symbol in ("AAPL", "KO", "XOM", "ZZZ"):
        assert store.position(symbol) == fresh.position(symbol)
    mine = store.position("KO")
    assert mine is not None
    mine.qty = 99.0
    assert store.position("KO") == fresh.position("KO")


def test_a_callers_own_transaction_is_read_back_from_the_file(tmp_path: Path) -> None:
    from hybrid_core.ops.state import StoredPosition

    store = StateStore(tmp_path / "state.sqlite")
    store.open_position(StoredPosition(symbol="KO", qty=1.0, entry_price=5.0, entry_date="2021-01-04", strategy="s"))
    store.record_order(order("a", "KO"))
    assert store.positions() and store.orders(open_only=True)
    with store.transaction() as db:
        db.execute("DELETE FROM positions")
        db.execute("UPDATE orders SET status = 'canceled'")
    assert store.positions() == {} and store.orders(open_only=True) == []


def test_what_the_store_knows_it_does_not_ask_or_write_again(tmp_path: Path) -> None:
    """A new client id is told apart without a query; a position's stop set again as it is
    writes nothing; what is answered stays what the file holds."""
    from hybrid_core.ops.state import StoredPosition

    store = StateStore(tmp_path / "state.sqlite")
    store.open_position(StoredPosition(symbol="KO", qty=1.0, entry_price=5.0, entry_date="2021-01-04", strategy="s"))
    store.record_order(order("a", "KO"))
    store.update_order("a", status="filled")
    assert store.get_order("new") is None and store.get_order("a") is not None  # ids read once here
    store.set_stop("KO", "hy-stop", 4.5)
    statements: list[str] = []
    store._conn.set_trace_callback(statements.append)
    assert store.get_order("never-used") is None
    store.set_stop("KO", "hy-stop", np.float64(4.5))
    assert statements == []
    assert store.record_order(order("b", "KO")) and not store.record_order(order("b", "KO"))
    store.update_order("b", status="canceled")
    assert store.get_order("b") == StateStore(tmp_path / "state.sqlite").get_order("b")
    store.set_stop("KO", None, None)
    assert StateStore(tmp_path / "state.sqlite").position("KO") == store.position("KO")
    assert store.position("KO").stop_client_order_id is None  # type: ignore[union-attr]


def test_a_reader_may_see_the_kept_records_without_copies(tmp_path: Path) -> None:
    """copy=False hands out what the store keeps (the cycle reads its open orders and positions
    several times a session): the same values as the copies, and they follow the store's writes."""
    from hybrid_core.ops.state import StoredPosition

    store = StateStore(tmp_path / "state.sqlite")
    store.open_position(StoredPosition(symbol="KO", qty=1.0, entry_price=5.0, entry_date="2021-01-04", strategy="s"))
    store.record_order(order("a", "KO"))
    kept, copies = store.orders(open_only=True, copy=False), store.orders(open_only=True)
    assert kept == copies and kept[0] is not copies[0]
    assert store.positions(copy=False) == store.positions()
    store.update_order("a", status="accepted")
    store.set_stop("KO", "hy-stop", 4.5)
    assert kept[0].status == "accepted" and copies[0].status == "intended"
    assert store.positions(copy=False)["KO"].stop_client_order_id == "hy-stop"
    assert store.orders(open_only=True, copy=False) == StateStore(tmp_path / "state.sqlite").orders(open_only=True)
