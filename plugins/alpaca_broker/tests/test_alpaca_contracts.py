"""The core's contract kit (hybrid_core.testing.contracts_check) passes for both components."""

from __future__ import annotations

import pandas as pd
import pytest
from hybrid_alpaca_broker.data_source import AlpacaDataParams, AlpacaDataSource

from hybrid_core.testing.contracts_check import broker_problems, check_data_source


@pytest.mark.parametrize("market_open", [True, False], ids=["fills", "queued-then-canceled"])
def test_broker_meets_the_contract(make_broker, server, exchange, market_open):
    exchange.market_open = market_open
    assert broker_problems(make_broker()) == []
    assert server.count("POST", "/v2/orders") == 1
    assert exchange.orders[0]["status"] == ("filled" if market_open else "canceled")


def test_data_source_meets_the_contract(server, exchange, keys):
    dates = pd.bdate_range("2024-01-01", "2024-02-29")
    exchange.load_bars(pd.DataFrame({"symbol": "AAPL", "date": dates, "open": 10.0, "high": 11.0,
                                     "low": 9.0, "close": 10.5, "volume": 100.0}))
    days = pd.date_range("2024-01-01", "2024-02-29")
    exchange.load_bars(pd.DataFrame({"symbol": "BTC/USD", "date": days, "open": 4e4, "high": 4.1e4,
                                     "low": 3.9e4, "close": 4.05e4, "volume": 5.0}))
    source = AlpacaDataSource(AlpacaDataParams(base_url=server.url))
    check_data_source(source, ["AAPL", "BTC/USD"], "2024-01-15", "2024-02-15")
