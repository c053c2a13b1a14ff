"""ContractBroker: the three changes to Backtrader's BackBroker, each shown against the stock broker."""

from __future__ import annotations

from typing import Any

import backtrader as bt
import pandas as pd
import pytest
from hybrid_backtrader_bridge import ContractBroker, contract_broker, to_feeds

FRIDAY, SATURDAY, SUNDAY, MONDAY = "2021-01-08", "2021-01-09", "2021-01-10", "2021-01-11"


def bars(eq: dict[str, tuple[float, float, float, float]] | None = None) -> pd.DataFrame:
    """EQ on weekdays and BTC/USD every day, 2021-01-04..15, flat at 100 unless ``eq`` says (o, h, l, c)."""
    rows = []
    for day in pd.date_range("2021-01-04", "2021-01-15", freq="D"):
        rows.append(("BTC/USD", day, 100.0, 101.0, 99.0, 100.0, 1.0))
        if day.day_of_week < 5:
            o, h, low, c = (eq or {}).get(str(day.date()), (100.0, 101.0, 99.0, 100.0))
            rows.append(("EQ", day, o, h, low, c, 1.0))
    return pd.DataFrame(rows, columns=["symbol", "date", "open", "high", "low", "close", "volume"])


class Script(bt.Strategy):
    """Sends the orders ``actions[date]`` at that close and records every order event."""

    params = (("actions", {}),)

    def __init__(self) -> None:
        self.events: list[tuple[str, str, str, str, float]] = []

    def next(self) -> None:
        day = bt.num2date(self.datetime[0]).date().isoformat()
        for side, symbol, size, kwargs in self.p.actions.get(day, []):
            data = self.getdatabyname(symbol)
            (self.buy if side == "buy" else self.sell)(data=data, size=size, **kwargs)

    prenext = next

    def notify_order(self, order: bt.Order) -> None:
        if order.status in (order.Submitted, order.Accepted):
            return
        when = bt.num2date(self.datetime[0]).date().isoformat()
        bar = bt.num2date(order.executed.dt).date().isoformat() if order.executed.dt else ""
        price = order.executed.exbits[0].price if order.executed.exbits else float("nan")
        self.events.append((when, order.data._name, order.getstatusname(), bar, price))


def run(broker: Any, actions: dict[str, list[Any]], eq: dict[str, Any] | None = None) -> tuple[Script, Any]:
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.broker = broker
    for feed in to_feeds(bars(eq)):
        cerebro.adddata(feed)
    cerebro.addstrategy(Script, actions=actions)
    return cerebro.run()[0], cerebro.broker


def stock(cash: float = 10_000.0) -> bt.brokers.BackBroker:
    return bt.brokers.BackBroker(cash=cash, checksubmit=False)


STOP = {"exectype": bt.Order.Stop, "price": 95.0}


def test_a_stop_is_tried_only_on_new_bars_of_its_own_symbol() -> None:
    """A stop sent at Friday's close: the stock broker fills it on the Saturday step against Friday's
    own low (dated Friday); the contract broker waits for Monday's bar of EQ."""
    eq = {FRIDAY: (100.0, 101.0, 90.0, 100.0), MONDAY: (99.0, 100.0, 98.0, 99.0)}
    actions = {"2021-01-04": [("buy", "EQ", 10, {})], FRIDAY: [("sell", "EQ", 10, STOP)]}
    strat, _ = run(stock(), actions, eq)
    assert (SATURDAY, "EQ", "Completed", FRIDAY, 95.0) in strat.events
    strat, broker = run(contract_broker(10_000.0), actions, eq)
    assert [e for e in strat.events if e[2] == "Completed" and e[3] >= FRIDAY] == []
    assert broker.getposition(strat.getdatabyname("EQ")).size == 10  # never triggered (lows 98 and up)


def test_a_stop_fills_at_the_open_on_a_gap_else_at_its_price_with_slippage_outside_the_bar() -> None:
    actions = {"2021-01-04": [("buy", "EQ", 10, {})], FRIDAY: [("sell", "EQ", 10, STOP)]}
    gap = {MONDAY: (94.0, 96.0, 93.0, 95.0)}
    strat, _ = run(contract_broker(10_000.0), actions, gap)
    assert strat.events[-1] == (MONDAY, "EQ", "Completed", MONDAY, 94.0)
    touch = {MONDAY: (99.0, 100.0, 94.5, 99.0)}
    strat, _ = run(contract_broker(10_000.0), actions, touch)
    assert strat.events[-1] == (MONDAY, "EQ", "Completed", MONDAY, 95.0)
    strat, _ = run(contract_broker(10_000.0, slippage_bps=100), actions, touch)
    assert strat.events[-1][4] == pytest.approx(95.0 * 0.99, rel=1e-15)  # 94.05, below the low of 94.5
    stock_slip = bt.brokers.BackBroker(cash=10_000.0, checksubmit=False, slip_perc=0.01, slip_open=True)
    strat, _ = run(stock_slip, actions, touch)
    assert strat.events[-1][4] == 94.5  # the stock broker caps slippage at the bar's low


def test_no_buy_is_refused_for_cash() -> None:
    actions = {"2021-01-04": [("buy", "EQ", 110, {})]}  # 11,000 of stock with 10,000 of cash
    strat, _ = run(stock(), actions)
    assert [e[2] for e in strat.events] == ["Margin"]
    strat, broker = run(contract_broker(10_000.0, commission=0.001), actions)
    assert [e[2] for e in strat.events] == ["Completed"]
    assert broker.getcash() == pytest.approx(10_000.0 - 110 * 100.0 * 1.001, abs=1e-9)  # -1,011.0
    assert broker.getvalue() == pytest.approx(broker.getcash() + 110 * 100.0, abs=1e-9)


def test_sells_fill_before_buys_at_one_open_whatever_order_they_were_sent_in() -> None:
    """An EQ buy sent on Friday and a BTC sell sent on Sunday both fill at Monday's open."""
    actions = {"2021-01-04": [("buy", "BTC/USD", 50, {})], FRIDAY: [("buy", "EQ", 50, {})],
               SUNDAY: [("sell", "BTC/USD", 50, {})]}
    monday = [e[1] for e in run(stock(), actions)[0].events if e[0] == MONDAY]
    assert monday == ["EQ", "BTC/USD"]
    monday = [e[1] for e in run(contract_broker(10_000.0), actions)[0].events if e[0] == MONDAY]
    assert monday == ["BTC/USD", "EQ"]


def test_the_broker_keeps_backtraders_defaults_otherwise() -> None:
    broker = contract_broker(5_000.0, slippage_bps=2.5, commission=0.0005)
    assert isinstance(broker, bt.brokers.BackBroker) and isinstance(broker, ContractBroker)
    assert (broker.getcash(), broker.p.slip_perc, broker.p.checksubmit) == (5_000.0, 0.00025, False)
    info = broker.comminfo[None]  # the default scheme, for every data
    assert info.getcommission(10, 100.0) == pytest.approx(0.5)
