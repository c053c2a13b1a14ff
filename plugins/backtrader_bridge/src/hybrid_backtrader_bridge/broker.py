"""Backtrader's BackBroker with the three changes the trading contract (STRATEGIES.md) needs.

Each change is a documented difference from the stock broker, not a compatibility shim
(Backtrader 1.9.78 runs unchanged on Python 3.11-3.13 with numpy 2 and pandas 3):

1. **An order only executes on a new bar of its own data.** Cerebro steps through the union
   of all feeds' dates and the stock broker tries every pending order at every step. A market
   order waits for a bar newer than its creation, but a stop order does not: a NYSE stock's
   stop would be tried again on a Saturday (a crypto-only step) against Friday's bar, and one
   placed on Saturday would fill on Friday's low. The contract checks a stop only on bars of
   its own symbol.
2. **No order is refused for cash.** The stock broker cancels a buy the cash cannot pay
   (status ``Margin``); the contract lets cash go slightly negative between the sells and the
   buys of one open (sizing is on the previous close, the fill on the open).
3. **Sells execute before buys at one open**, whatever order they were sent in (a crypto sell
   sent on Sunday and an equity buy sent on Friday both fill on Monday's open); protective
   stops come last, as in the native engine.

Fill prices are the stock broker's: market orders at the open, a sell stop at the open when
the open gaps through it, else at the stop price; slippage ``slip_perc`` moves each fill
against the trader, also outside the bar's range (``slip_out``), as the native engine does.
"""

from __future__ import annotations

import collections
from typing import Any

import backtrader as bt


def _rank(order: bt.Order) -> int:
    """Execution order at one open: market sells, market buys, then stops."""
    if order.exectype != bt.Order.Market:
        return 2
    return 1 if order.isbuy() else 0


class ContractBroker(bt.brokers.BackBroker):
    """A ``BackBroker`` that fills as STRATEGIES.md says (see the module docstring for the three changes).

    Build it with :func:`contract_broker`, which also sets commission and slippage.
    """

    params = (
        ("checksubmit", False),  # no cash check when an order is sent
        ("slip_open", True),  # slippage applies to fills at the open too
        ("slip_out", True),  # and may go outside the bar's high/low
    )
    pending: collections.deque[Any]

    def next(self) -> None:
        if len(self.pending) > 1:
            self.pending = collections.deque(sorted(self.pending, key=_rank))
        super().next()

    def _try_exec(self, order: bt.Order) -> None:
        if order.data.datetime[0] <= order.created.dt:  # no bar of its own since the order was made
            return
        super()._try_exec(order)

    def _execute(self, order: bt.Order, ago: Any = None, price: Any = None, cash: Any = None,
                 position: Any = None, dtcoc: Any = None) -> Any:
        if ago is None or price is None or not order.isbuy():
            return super()._execute(order, ago=ago, price=price, cash=cash, position=position, dtcoc=dtcoc)
        comminfo = self.getcommissioninfo(order.data)
        size = order.executed.remsize
        need = comminfo.getoperationcost(size, price) + comminfo.getcommission(size, price)
        shortfall = need - self.cash
        if shortfall <= 0:
            return super()._execute(order, ago=ago, price=price, cash=cash, position=position, dtcoc=dtcoc)
        # The stock broker refuses a buy that leaves cash below 0; lend it the shortfall for
        # the fill and take it back after, so cash ends negative instead.
        loan = shortfall + 1.0
        self.cash += loan
        try:
            return super()._execute(order, ago=ago, price=price, cash=cash, position=position, dtcoc=dtcoc)
        finally:
            self.cash -= loan


def contract_broker(cash: float, *, slippage_bps: float = 0.0, commission: float = 0.0) -> ContractBroker:
    """A :class:`ContractBroker` with ``cash``, slippage in basis points and a commission that is a
    fraction of each fill's value (hybrid's ``backtest`` settings)."""
    broker = ContractBroker(cash=float(cash), slip_perc=float(slippage_bps) / 1e4)
    broker.setcommission(commission=float(commission), commtype=bt.CommInfoBase.COMM_PERC, percabs=True,
                         stocklike=True)
    return broker
