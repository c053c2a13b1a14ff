"""plan_orders: the order of decisions at one close (STRATEGIES.md), on hand-made cases."""

from __future__ import annotations

import pandas as pd

from hybrid_core.account.planner import plan_orders
from hybrid_core.builtin.risk_rules import StopLoss, TimeStop
from hybrid_core.contracts import Decision, OrderIntent, Position, RiskRule

D = pd.Timestamp("2021-01-08")
RULES = (StopLoss(), TimeStop())


def pos(sym: str, bars: int = 1, strategy: str = "eq", qty: float = 10.0) -> Position:
    return Position(symbol=sym, qty=qty, entry_price=100.0, entry_date=pd.Timestamp("2021-01-04"),
                    strategy=strategy, bars_held=bars, stop_price=95.0)


WEEK_AGO = D - pd.Timedelta(days=7)


def buy(sym: str, strategy: str = "eq", when: pd.Timestamp = WEEK_AGO) -> OrderIntent:
    return OrderIntent(symbol=sym, side="buy", qty=5, strategy=strategy, reason="entry", decision_date=when,
                       ref_price=10.0)


def test_entries_are_sized_on_close_and_portfolio_value_and_skip_zero_held_and_pending():
    decision = Decision(D, True, entries={"A": 0.35, "B": 0.35, "C": 0.35, "BIG": 0.0001, "BTC/USD": 0.15},
                        strategy="eq")
    plan = plan_orders(D, [decision], {"B": pos("B")}, {"C": buy("C", when=D - pd.Timedelta(days=7))},
                       {"A": 33.0, "B": 1.0, "C": 1.0, "BIG": 5000.0, "BTC/USD": 31234.5},
                       1_000_000.0, RULES)
    qty = {o.symbol: o.qty for o in plan.orders}
    # 350000 / 33 shares; 150000 / 31234.5 = 4.8023819... BTC rounded down to 1e-6
    assert qty == {"A": float(350_000 // 33), "BTC/USD": 4.802381}
    assert all(o.side == "buy" and o.reason == "entry" for o in plan.orders)
    assert plan.orders[0].ref_price == 33.0
    assert plan.cancel == []  # C is pending and entered again: kept


def test_exits_keep_only_own_positions_and_come_before_buys():
    decision = Decision(D, True, entries={"N": 0.5}, exits=["A", "X", "C"], keeps=["B"],
                        exit_reason="rebalance", strategy="eq")
    positions = {"A": pos("A"), "B": pos("B", bars=5), "C": pos("C", strategy="other")}
    plan = plan_orders(D, [decision], positions, {}, {"A": 1.0, "B": 1.0, "C": 1.0, "N": 2.0}, 100.0, RULES)
    assert [(o.symbol, o.side, o.reason) for o in plan.orders] == [("A", "sell", "rebalance"),
                                                                    ("N", "buy", "entry")]
    assert plan.restart == ["B"]  # B reached 5 bars but was re-selected: no time stop


def test_time_stop_after_strategy_and_not_for_exiting_positions():
    decision = Decision(D, False, exits=["A"], exit_reason="signal", strategy="eq")
    positions = {"A": pos("A", bars=5), "B": pos("B", bars=5), "C": pos("C", bars=4)}
    pending = {"D": [OrderIntent("D", "sell", 10, "eq", "signal", D - pd.Timedelta(days=1), 1.0)]}
    positions["D"] = pos("D", bars=9)
    plan = plan_orders(D, [decision], positions, pending, {}, 100.0, RULES)
    assert [(o.symbol, o.reason) for o in plan.orders] == [("A", "signal"), ("B", "time_stop")]


def test_pending_buys_not_reselected_on_a_decided_date_are_cancelled():
    old = D - pd.Timedelta(days=7)
    pending = {"P": buy("P", when=old), "Q": [buy("Q", when=old)], "R": buy("R", strategy="crypto", when=old)}
    plan = plan_orders(D, [Decision(D, True, entries={"Q": 0.1}, strategy="eq")], {}, pending,
                       {"Q": 1.0}, 100.0, RULES)
    assert plan.cancel == ["P"]  # Q entered again, R belongs to another strategy
    assert plan.orders == []  # Q already has a pending buy
    undecided = plan_orders(D, [Decision(D, False, strategy="eq")], {}, pending, {}, 100.0, RULES)
    assert undecided.cancel == []


def test_planner_does_not_mutate_positions():
    positions = {"B": pos("B", bars=5)}
    plan_orders(D, [Decision(D, True, keeps=["B"], strategy="eq")], positions, {}, {"B": 1.0}, 10.0, RULES)
    assert positions["B"].bars_held == 5


def test_no_time_rule_means_no_time_stop():
    plan = plan_orders(D, [], {"A": pos("A", bars=50)}, {}, {"A": 1.0}, 10.0, (StopLoss(),))
    assert plan.orders == []


class AgeLog(RiskRule):
    """Exits at 3 bars and records every position it is asked about."""

    name = "age_log"

    def __init__(self, floor: int | None) -> None:
        self.floor = floor
        self.asked: list[tuple[str, int]] = []

    def time_exit(self, position: Position) -> str | None:
        self.asked.append((position.symbol, position.bars_held))
        return "aged" if position.bars_held >= 3 else None

    def time_exit_bars(self) -> int | None:
        return self.floor


def test_time_stop_asks_only_positions_from_the_rules_lowest_floor_in_holding_order():
    positions = {s: pos(s, bars=b) for s, b in (("A", 1), ("B", 6), ("C", 2), ("D", 3), ("E", 5))}
    decision = Decision(D, True, keeps=["E"], strategy="eq")
    asked_all = AgeLog(None)
    everyone = plan_orders(D, [decision], positions, {}, {}, 100.0, (asked_all,))
    assert [s for s, _ in asked_all.asked] == ["A", "B", "C", "D", "E"]
    one = AgeLog(3)
    alone = plan_orders(D, [decision], positions, {}, {}, 100.0, (one,))
    assert one.asked == [("B", 6), ("D", 3), ("E", 0)]  # E is re-selected: asked with its restarted count
    late, early = AgeLog(5), AgeLog(3)  # the lowest floor of the two decides who is asked
    both = plan_orders(D, [decision], positions, {}, {}, 100.0, (late, early))
    assert late.asked == [("B", 6), ("D", 3), ("E", 0)] and early.asked == [("E", 0)]
    assert ([(o.symbol, o.reason) for o in everyone.orders] == [(o.symbol, o.reason) for o in alone.orders]
            == [(o.symbol, o.reason) for o in both.orders] == [("B", "aged"), ("D", "aged")])
    assert everyone.restart == alone.restart == both.restart == ["E"]
    assert AgeLog(None).time_exit_bars() is None and RiskRule().time_exit_bars() is None


def test_time_stop_rule_states_its_floor():
    assert TimeStop(TimeStop.Params(bars=7)).time_exit_bars() == 7
