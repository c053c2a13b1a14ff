"""Alpaca's order rules applied before sending (pure functions)."""

from __future__ import annotations

import pytest
from hybrid_alpaca_broker.order_rules import (
    AssetRules,
    OrderPolicy,
    OrderRefused,
    plan_order,
    round_down,
    round_price,
)
from hybrid_alpaca_broker.symbols import to_pair, to_position_symbol

from hybrid_core.contracts import OrderRequest

BTC = AssetRules("BTC/USD", crypto=True, fractionable=True, min_order_size=0.0001,
                 min_trade_increment=0.0001, price_increment=0.01)
AAPL = AssetRules("AAPL", crypto=False, fractionable=True)
WHOLE = AssetRules("XYZ", crypto=False, fractionable=False)
POLICY = OrderPolicy()


def plan(req: OrderRequest, rules: AssetRules, held: float = 0.0, market_open: bool = True,
         policy: OrderPolicy = POLICY):
    return plan_order(req, rules, held_qty=held, market_open=market_open, policy=policy)


def test_round_down_is_exact_decimal():
    assert round_down(0.30000000000000004, 0.1) == 0.3
    assert round_down(0.123456, 0.0001) == 0.1234
    assert round_down(1.99999, 1.0) == 1.0
    assert round_price(95.126, None) == 95.13
    assert round_price(0.123456, None) == 0.1235


def test_crypto_qty_rounds_down_to_increment_and_tif_becomes_gtc():
    p = plan(OrderRequest("c", "BTC/USD", "buy", 0.123456, time_in_force="day"), BTC)
    assert (p.qty, p.time_in_force, p.order_type) == (0.1234, "gtc", "market")


def test_crypto_below_min_order_size_refused_with_reason():
    with pytest.raises(OrderRefused, match="min_order_size 0.0001"):
        plan(OrderRequest("c", "BTC/USD", "buy", 0.00009), BTC)


def test_crypto_sell_capped_at_available_and_no_shorting():
    p = plan(OrderRequest("c", "BTC/USD", "sell", 0.1), BTC, held=0.09975)
    assert p.qty == 0.0997
    with pytest.raises(OrderRefused, match="crypto shorting"):
        plan(OrderRequest("c", "BTC/USD", "sell", 0.1), BTC, held=0.0)


def test_crypto_stop_becomes_stop_limit_below_the_stop():
    p = plan(OrderRequest("c", "BTC/USD", "sell", 0.5, order_type="stop", stop_price=30000.123),
             BTC, held=0.5, policy=OrderPolicy(crypto_stop_limit_offset=0.02))
    assert (p.order_type, p.time_in_force, p.stop_price) == ("stop_limit", "gtc", 30000.12)
    assert p.limit_price == round(30000.123 * 0.98, 2)


def test_equity_not_fractionable_rounds_down_and_refuses_under_one_share():
    assert plan(OrderRequest("c", "XYZ", "buy", 7.9), WHOLE).qty == 7.0
    with pytest.raises(OrderRefused, match="not fractionable"):
        plan(OrderRequest("c", "XYZ", "buy", 0.5), WHOLE)


def test_fractional_equity_uses_day():
    p = plan(OrderRequest("c", "AAPL", "buy", 2.5, time_in_force="gtc"), AAPL)
    assert (p.qty, p.time_in_force) == (2.5, "day")


def test_equity_market_closed_queue_or_skip():
    queued = plan(OrderRequest("c", "AAPL", "buy", 3, time_in_force="gtc"), AAPL, market_open=False)
    assert queued.time_in_force == "day"
    with pytest.raises(OrderRefused, match="equity_when_closed=skip"):
        plan(OrderRequest("c", "AAPL", "buy", 3), AAPL, market_open=False,
             policy=OrderPolicy(equity_when_closed="skip"))


def test_equity_stop_is_gtc_for_whole_shares_and_needs_a_price():
    p = plan(OrderRequest("c", "AAPL", "sell", 10, order_type="stop", stop_price=95.004), AAPL, held=10)
    assert (p.order_type, p.time_in_force, p.stop_price) == ("stop", "gtc", 95.0)
    with pytest.raises(OrderRefused, match="needs a stop_price"):
        plan(OrderRequest("c", "AAPL", "sell", 10, order_type="stop"), AAPL, held=10)


def test_equity_sell_capped_at_position():
    assert plan(OrderRequest("c", "AAPL", "sell", 12), AAPL, held=10).qty == 10


def test_symbol_forms_both_ways():
    assert to_pair("BTCUSD", crypto=True) == "BTC/USD"
    assert to_pair("ETHBTC", crypto=True) == "ETH/BTC"
    assert to_pair("BTC/USD", crypto=True) == "BTC/USD"
    assert to_pair("AAPL", crypto=False) == "AAPL"
    assert to_position_symbol("ETH/USD") == "ETHUSD"
