"""PortfolioBook: fills at the next open, stops, time stops, restarts, state, bar by bar."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from hybrid_core.builtin.risk_rules import StopLoss, TimeStop
from hybrid_core.contracts import Decision
from hybrid_core.engine.book import PortfolioBook

DAYS = pd.date_range("2021-01-04", periods=12, freq="B")


def entry(day: pd.Timestamp, sym: str = "A", weight: float = 0.5, strategy: str = "s") -> Decision:
    return Decision(day, True, entries={sym: weight}, strategy=strategy)


def book_with_entry(open_price: float = 11.0) -> PortfolioBook:
    book = PortfolioBook(1000.0, [StopLoss(), TimeStop()])
    book.on_close(DAYS[0], {"A": 10.0}, [entry(DAYS[0])])
    fills = book.on_open(DAYS[1], {"A": open_price}, {"A": 1.0})  # low far below: no stop on entry bar
    assert [(f.side, f.qty, f.price) for f in fills] == [("buy", 50.0, open_price)]
    return book


def test_entry_fills_at_next_open_with_stop_from_entry_fill_not_on_entry_bar():
    book = book_with_entry()
    pos = book.positions["A"]
    assert pos.stop_price == pytest.approx(11.0 * 0.95)
    assert book.cash == pytest.approx(1000.0 - 550.0)
    book.on_close(DAYS[1], {"A": 12.0})
    assert book.value() == pytest.approx(450.0 + 600.0)


def test_stop_fills_at_stop_when_low_touches_and_at_open_on_a_gap():
    book = book_with_entry()
    book.on_close(DAYS[1], {"A": 11.0})
    fills = book.on_open(DAYS[2], {"A": 10.6}, {"A": 10.45})
    assert [(f.reason, f.price) for f in fills] == [("stop_loss", pytest.approx(10.45))]
    gap = book_with_entry()
    gap.on_close(DAYS[1], {"A": 11.0})
    fills = gap.on_open(DAYS[2], {"A": 9.0}, {"A": 8.0})
    assert [(f.reason, f.price) for f in fills] == [("stop_loss", 9.0)]
    assert gap.ledger.closed[0].exit_date == DAYS[2] and gap.ledger.closed[0].pnl == pytest.approx(50 * (9.0 - 11.0))


def test_market_exit_takes_precedence_over_stop_at_same_open():
    book = book_with_entry()
    book.on_close(DAYS[1], {"A": 11.0}, [Decision(DAYS[1], True, exits=["A"], exit_reason="signal",
                                                  strategy="s")])
    fills = book.on_open(DAYS[2], {"A": 9.0}, {"A": 8.0})
    assert [(f.reason, f.price) for f in fills] == [("signal", 9.0)]


def test_time_stop_after_fifth_own_bar_and_days_without_bar_do_not_count():
    book = book_with_entry()
    closes = [{"A": 11.0}, {"A": 11.0}, {}, {"A": 11.0}, {"A": 11.0}, {"A": 11.0}]  # DAYS[3]: no bar
    for day, close in zip(DAYS[1:7], closes, strict=True):
        if day != DAYS[1]:
            assert book.on_open(day, {"A": 11.0} if close else {}, {"A": 11.0} if close else {}) == []
        orders = book.on_close(day, close)
        if day != DAYS[6]:
            assert orders == []
    assert book.positions["A"].bars_held == 5
    assert [(o.side, o.reason) for o in orders] == [("sell", "time_stop")]
    fills = book.on_open(DAYS[7], {"A": 12.0}, {"A": 12.0})
    assert [(f.reason, f.price) for f in fills] == [("time_stop", 12.0)]


def test_reselection_restarts_the_count_at_that_close():
    book = book_with_entry()
    for day in DAYS[1:5]:
        book.on_open(day, {"A": 11.0}, {"A": 11.0})
        book.on_close(day, {"A": 11.0})
    book.on_open(DAYS[5], {"A": 11.0}, {"A": 11.0})
    keep = Decision(DAYS[5], True, entries={"A": 0.5}, keeps=["A"], strategy="s")
    assert book.on_close(DAYS[5], {"A": 11.0}, [keep]) == []  # 5th bar, but re-selected
    assert book.positions["A"].bars_held == 0
    assert book.positions["A"].entry_price == 11.0


def test_sells_fill_before_buys_and_cash_may_go_negative_in_between():
    book = PortfolioBook(100.0)
    book.on_close(DAYS[0], {"A": 10.0}, [entry(DAYS[0], "A", 1.0)])
    book.on_open(DAYS[1], {"A": 10.0}, {"A": 10.0})
    decision = Decision(DAYS[1], True, entries={"B": 1.0}, exits=["A"], exit_reason="rebalance", strategy="s")
    book.on_close(DAYS[1], {"A": 10.0, "B": 5.0}, [decision])
    fills = book.on_open(DAYS[2], {"B": 5.0, "A": 12.0}, {"A": 12.0, "B": 5.0})
    assert [f.side for f in fills] == ["sell", "buy"]
    assert book.cash == pytest.approx(100.0 - 100.0 + 120.0 - 100.0)


def test_pending_buy_without_a_bar_waits_for_the_symbols_next_bar_then_is_cancelled_at_rebalance():
    book = PortfolioBook(1000.0)
    book.on_close(DAYS[0], {"A": 10.0}, [entry(DAYS[0])])
    assert book.on_open(DAYS[1], {}, {}) == []
    assert "A" in book.pending
    book.on_close(DAYS[1], {"B": 5.0}, [Decision(DAYS[1], True, entries={"B": 0.5}, strategy="s")])
    assert "A" not in book.pending and "B" in book.pending


def test_slippage_and_commission_move_fills_and_cash():
    book = PortfolioBook(1000.0, slippage_bps=10.0, commission=0.001)
    book.on_close(DAYS[0], {"A": 10.0}, [entry(DAYS[0])])
    (fill,) = book.on_open(DAYS[1], {"A": 10.0}, {"A": 10.0})
    assert fill.price == pytest.approx(10.01) and fill.commission == pytest.approx(50 * 10.01 * 0.001)
    book.on_close(DAYS[1], {"A": 10.0}, [Decision(DAYS[1], True, exits=["A"], strategy="s")])
    (sell,) = book.on_open(DAYS[2], {"A": 10.0}, {"A": 10.0})
    assert sell.price == pytest.approx(9.99)
    trade = book.ledger.closed[0]
    assert trade.pnl == pytest.approx(50 * (9.99 - 10.01) - 50 * 10.01 * 0.001 - 50 * 9.99 * 0.001)
    assert book.cash == pytest.approx(1000.0 + trade.pnl)


def test_state_round_trip_is_json_and_keeps_behaviour():
    book = book_with_entry()
    book.on_close(DAYS[1], {"A": 11.0}, [entry(DAYS[1], "B")])
    state = json.loads(json.dumps(book.to_state()))
    again = PortfolioBook.from_state(state, risk_rules=[StopLoss(), TimeStop()])
    assert again.to_state() == book.to_state()
    for b in (book, again):
        b.on_open(DAYS[2], {"A": 10.0, "B": 20.0}, {"A": 10.0, "B": 20.0})
    assert again.to_state() == book.to_state()
    assert [t.exit_reason for t in again.ledger.closed] == ["stop_loss"]


def test_open_positions_are_marked_at_own_last_close_and_bar_date():
    book = book_with_entry()
    book.on_close(DAYS[1], {"A": 11.5})
    book.on_close(DAYS[2], {})
    (trade,) = book.round_trips()
    assert (trade.exit_date, trade.exit_price, trade.exit_reason) == (DAYS[1], 11.5, "end_of_data")
    assert book.positions  # marked, not sold


def test_state_json_is_the_state_as_json_after_every_change():
    """The paper account saves ``state_json()``: parts remembered from an earlier save must never
    hide a change (a stop moved, a bar held, a lot sold, an order added or filled)."""
    book = book_with_entry()
    seen = []
    for step in range(4):
        seen.append(json.loads(book.state_json()))
        assert seen[-1] == json.loads(json.dumps(book.to_state()))
        if step == 0:
            book.on_close(DAYS[1], {"A": 11.0}, [entry(DAYS[1], "B")])
        elif step == 1:
            book.positions["A"].stop_price = 9.5
            book.positions["A"].bars_held += 1
        elif step == 2:
            book.on_open(DAYS[2], {"A": 10.0, "B": 20.0}, {"A": 9.0, "B": 20.0})
    assert len({json.dumps(s, sort_keys=True) for s in seen}) == len(seen)
