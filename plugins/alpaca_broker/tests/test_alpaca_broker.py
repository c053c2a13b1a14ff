"""The alpaca broker against the local Alpaca-compatible server: health, orders, stops, sync."""

from __future__ import annotations

import pandas as pd
import pytest
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, TimeInForce
from alpaca.trading.requests import MarketOrderRequest
from hybrid_alpaca_broker.broker import AlpacaBroker, AlpacaParams
from hybrid_alpaca_broker.order_rules import OrderRefused
from hybrid_alpaca_broker.testing import Fault, html_500, ignored_cancel

from hybrid_core.contracts import OrderRequest
from hybrid_core.errors import BrokerError, OrderRejected, OrderUnconfirmed

NOW = pd.Timestamp.now()


def orders_at_server(server, cid: str) -> list[dict]:
    return [o for o in server.exchange.orders if o["client_order_id"] == cid]


def test_health_ok_reads_account_and_clock(broker, server):
    report = broker.health_check()
    assert report.ok, report.reason
    assert report.details["account_number"] == "PA1TESTACCT"
    assert report.details["is_open"] is True
    assert server.count("GET", "/v2/account") == 1 and server.count("GET", "/v2/clock") == 1


def test_live_key_in_paper_mode_is_reported(make_broker, monkeypatch, server):
    monkeypatch.setenv("ALPACA_API_KEY", "AKLIVE123")
    report = make_broker().health_check()
    assert not report.ok
    assert "key/mode mismatch" in report.reason and "paper mode" in report.reason
    assert server.count("GET", "/v2/account") == 0


def test_paper_key_in_live_mode_is_reported(make_broker):
    report = make_broker(mode="live").health_check()
    assert not report.ok and "a paper key (PK...) used in live mode" in report.reason


def test_account_endpoint_of_the_wrong_environment_is_reported(make_broker, monkeypatch):
    monkeypatch.setenv("ALPACA_API_KEY", "AKLIVE123")
    report = make_broker(mode="live").health_check()
    assert not report.ok and "URL/mode mismatch" in report.reason and "PA1TESTACCT" in report.reason


def test_live_account_answering_in_paper_mode_is_reported(make_broker, exchange):
    exchange.account_number = "123456789"
    report = make_broker().health_check()
    assert not report.ok and "paper mode but the account endpoint answered with live account" in report.reason


def test_inactive_or_blocked_account_fails_health(make_broker, exchange):
    exchange.account_status = "ACCOUNT_CLOSED"
    assert "not ACTIVE" in make_broker().health_check().reason
    exchange.account_status = "ACTIVE"
    exchange.trading_blocked = True
    assert "trading is blocked" in make_broker().health_check().reason


def test_rejected_keys_fail_health_with_a_hint(make_broker, exchange, server):
    exchange.api_key = "PKOTHER"
    report = make_broker().health_check()
    assert not report.ok and "HTTP 401" in report.reason and "keys rejected" in report.reason
    assert server.count("GET", "/v2/account") == 1  # a 401 is an answer: not retried


def test_an_unreadable_clock_fails_health(make_broker, server):
    server.faults.add(html_500(times=10, method="GET", path="/v2/clock"))
    report = make_broker(retry_budget=0.2).health_check()
    assert not report.ok and report.reason.startswith("alpaca GET /v2/clock failed")
    assert "HTTP 500: HTML error page" in report.reason


@pytest.mark.parametrize(("mode", "url", "key", "other"), [
    ("paper", "https://api.alpaca.markets", "PKTEST0000", "live"),
    ("live", "https://paper-api.alpaca.markets/", "AKLIVE0000", "paper"),
])
def test_a_url_of_the_other_environment_is_refused_before_any_request(monkeypatch, tmp_path, mode, url, key,
                                                                      other):
    monkeypatch.setenv("ALPACA_API_KEY", key)
    monkeypatch.setenv("ALPACA_SECRET_KEY", "s")
    broker = AlpacaBroker(AlpacaParams(base_url=url, timeout=0.2))
    broker.configure(mode=mode, state_dir=str(tmp_path))
    report = broker.health_check()  # no network here: an attempted request would time out, not say this
    assert not report.ok and report.reason.startswith(f"URL/mode mismatch: {url.rstrip('/')} is Alpaca's "
                                                      f"{other} URL but the run is in {mode} mode")
    with pytest.raises(BrokerError, match="nothing sent: URL/mode mismatch"):
        broker.submit(OrderRequest("x-1", "AAPL", "buy", 1))


def test_paper_keys_against_the_live_url_name_the_key_first(monkeypatch, tmp_path):
    monkeypatch.setenv("ALPACA_API_KEY", "PKTEST0000")
    monkeypatch.setenv("ALPACA_SECRET_KEY", "s")
    broker = AlpacaBroker(AlpacaParams(base_url="https://api.alpaca.markets"))
    broker.configure(mode="live", state_dir=str(tmp_path))
    assert broker.health_check().reason.startswith("key/mode mismatch: a paper key (PK...) used in live mode")


def test_one_environment_variable_points_broker_and_data_at_one_server(server, keys, monkeypatch, tmp_path,
                                                                     exchange):
    from hybrid_alpaca_broker.data_source import AlpacaDataSource

    monkeypatch.setenv("ALPACA_BASE_URL", server.url + "/")
    broker = AlpacaBroker(AlpacaParams(timeout=0.5))
    broker.configure(mode="paper", state_dir=str(tmp_path))
    assert broker.url == server.url and broker.health_check().ok
    exchange.load_bars(pd.DataFrame({"symbol": ["AAPL"], "date": [pd.Timestamp("2024-01-03")], "open": [1.0],
                                     "high": [1.0], "low": [1.0], "close": [1.0], "volume": [1.0]}))
    source = AlpacaDataSource()
    assert source.url == server.url
    assert len(source.fetch(["AAPL"], pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-05"))) == 1
    assert server.count("GET", "/v2/stocks/bars") == 1
    monkeypatch.setenv("ALPACA_BASE_URL", "https://paper-api.alpaca.markets")
    assert AlpacaDataSource().url is None  # Alpaca's trading URL: data comes from data.alpaca.markets


def test_mode_picks_the_alpaca_url_when_no_base_url_is_given(keys, tmp_path, monkeypatch):
    monkeypatch.delenv("ALPACA_BASE_URL", raising=False)
    for mode, url in (("paper", "https://paper-api.alpaca.markets"), ("live", "https://api.alpaca.markets")):
        broker = AlpacaBroker()
        broker.configure(mode=mode, state_dir=str(tmp_path))
        assert broker.url == url
    with pytest.raises(BrokerError, match="mode must be paper or live"):
        AlpacaBroker().configure(mode="backtest", state_dir=str(tmp_path))  # type: ignore[arg-type]


def test_missing_keys_name_the_variable(server, monkeypatch, tmp_path):
    monkeypatch.delenv("ALPACA_API_KEY", raising=False)
    monkeypatch.setenv("ALPACA_SECRET_KEY", "s")
    with pytest.raises(BrokerError, match="set ALPACA_API_KEY"):
        AlpacaBroker(AlpacaParams(base_url=server.url)).configure(mode="paper", state_dir=str(tmp_path))


def test_equity_and_crypto_orders_fill_and_positions_use_pair_symbols(broker, server):
    a = broker.submit(OrderRequest("eq-1", "AAPL", "buy", 10))
    b = broker.submit(OrderRequest("cr-1", "BTC/USD", "buy", 0.123456))
    assert (a.status, a.qty, b.status, b.qty, b.symbol) == ("new", 10, "new", 0.1234, "BTC/USD")
    a, b = broker.get_order("eq-1"), broker.get_order("cr-1")  # Alpaca fills just after answering
    assert (a.status, a.filled_qty, b.status, b.filled_qty) == ("filled", 10, "filled", 0.1234)
    assert orders_at_server(server, "cr-1")[0]["time_in_force"] == "gtc"
    held = {p.symbol: p.qty for p in broker.positions()}
    assert held == {"AAPL": 10.0, "BTC/USD": 0.1234}
    assert {p["symbol"] for p in server.exchange.positions_json()[1]} == {"AAPL", "BTCUSD"}


def test_too_small_crypto_order_is_refused_without_sending(broker, server, logs):
    with pytest.raises(OrderRefused, match="below Alpaca's min_order_size 0.0001"):
        broker.submit(OrderRequest("cr-small", "BTC/USD", "buy", 0.00005))
    assert "min_order_size" in broker.refusals["cr-small"]
    assert server.count("POST", "/v2/orders") == 0
    assert any("cr-small not sent" in line and "min_order_size" in line for line in logs)


def test_crypto_sell_is_capped_at_what_fees_left(make_broker, server, exchange):
    exchange.crypto_fee_bps = 25
    broker = make_broker()
    broker.submit(OrderRequest("cr-buy", "BTC/USD", "buy", 0.1))
    assert exchange.positions["BTCUSD"]["qty"] == pytest.approx(0.09975)
    sold = broker.submit(OrderRequest("cr-sell", "BTC/USD", "sell", 0.1))
    assert sold.qty == pytest.approx(0.0997) and broker.get_order("cr-sell").status == "filled"


def test_crypto_short_sale_refused(broker, server):
    with pytest.raises(OrderRefused, match="crypto shorting is not allowed"):
        broker.submit(OrderRequest("cr-short", "BTC/USD", "sell", 0.1))
    assert server.count("POST", "/v2/orders") == 0


def test_equity_when_market_closed_is_queued_as_day(broker, server, exchange):
    exchange.market_open = False
    status = broker.submit(OrderRequest("eq-q", "AAPL", "buy", 5, time_in_force="gtc"))
    assert status.status == "accepted"
    assert orders_at_server(server, "eq-q")[0]["time_in_force"] == "day"
    exchange.load_bars(pd.DataFrame({"symbol": ["AAPL"], "date": [pd.Timestamp("2024-01-03")],
                                     "open": [101.0], "high": [102.0], "low": [99.0], "close": [100.5],
                                     "volume": [1e6]}))
    exchange.advance("2024-01-03")
    filled = broker.get_order("eq-q")
    assert filled.status == "filled" and filled.filled_avg_price == 101.0


def test_equity_when_market_closed_skip_sends_nothing(make_broker, server, exchange):
    exchange.market_open = False
    broker = make_broker(equity_when_closed="skip", clock_ttl=0)
    with pytest.raises(OrderRefused, match="market closed and equity_when_closed=skip"):
        broker.submit(OrderRequest("eq-s", "AAPL", "buy", 5))
    assert server.count("POST", "/v2/orders") == 0


def test_a_refused_exit_leaves_the_stop_in_place(make_broker, server, exchange):
    broker = make_broker(equity_when_closed="skip", clock_ttl=0)
    broker.submit(OrderRequest("eq-in", "AAPL", "buy", 10))
    broker.submit(OrderRequest("eq-stop", "AAPL", "sell", 10, order_type="stop", stop_price=95))
    exchange.market_open = False
    with pytest.raises(OrderRefused, match="equity_when_closed=skip"):
        broker.submit(OrderRequest("eq-out", "AAPL", "sell", 10))
    assert broker.get_order("eq-stop").status == "new"


def test_crypto_asset_found_under_either_symbol_form(broker, server, exchange):
    server.faults.add(Fault("status", 404, method="GET", path="/v2/assets/ETH/USD",
                            body='{"code":40410000,"message":"asset not found"}'))
    assert broker.submit(OrderRequest("eth-1", "ETH/USD", "buy", 1.0)).qty == 1.0
    asked = [r[1] for r in exchange.requests if "assets" in r[1]]
    assert asked == ["/v2/assets/ETH/USD", "/v2/assets/ETHUSD"]


def test_fractional_equity_goes_as_day(broker, server):
    status = broker.submit(OrderRequest("eq-f", "AAPL", "buy", 2.5, time_in_force="gtc"))
    assert status.qty == 2.5 and broker.get_order("eq-f").status == "filled"
    assert orders_at_server(server, "eq-f")[0]["time_in_force"] == "day"


def test_server_refuses_a_market_exit_while_a_stop_reserves_the_shares(broker, server):
    """The failure the broker avoids: 403 insufficient qty while a stop holds the shares."""
    broker.submit(OrderRequest("eq-in", "AAPL", "buy", 10))
    broker.submit(OrderRequest("eq-stop", "AAPL", "sell", 10, order_type="stop", stop_price=95))
    raw = TradingClient("PKTEST0000", "secret", url_override=server.url)
    with pytest.raises(APIError) as err:
        raw.submit_order(MarketOrderRequest(symbol="AAPL", qty=10, side=OrderSide.SELL,
                                            time_in_force=TimeInForce.DAY))
    assert err.value.status_code == 403 and "insufficient qty" in str(err.value)


def test_an_exit_waits_for_the_stop_cancel_the_core_asks_for(broker, server, logs):
    """The broker never cancels on its own: an exit while the stop holds the shares is refused
    before any POST; once :meth:`cancel` confirms the stop canceled, the exit sells everything."""
    broker.submit(OrderRequest("eq-in", "AAPL", "buy", 10))
    stop = broker.submit(OrderRequest("eq-stop", "AAPL", "sell", 10, order_type="stop", stop_price=95))
    assert (stop.status, stop.order_type, stop.stop_price) == ("new", "stop", 95.0)
    assert orders_at_server(server, "eq-stop")[0]["time_in_force"] == "gtc"
    assert [o.client_order_id for o in broker.open_orders()] == ["eq-stop"]
    posts = server.count("POST", "/v2/orders")
    with pytest.raises(OrderRejected, match="only 0 of 10 held is available: the rest is reserved by open orders"):
        broker.submit(OrderRequest("eq-out", "AAPL", "sell", 10, reason="time_stop"))
    assert server.count("POST", "/v2/orders") == posts
    assert broker.cancel("eq-stop").status == "canceled"
    out = broker.submit(OrderRequest("eq-out2", "AAPL", "sell", 10, reason="time_stop"))
    assert broker.get_order(out.client_order_id).status == "filled"
    assert broker.positions() == [] and broker.open_orders() == []


def test_a_403_from_alpaca_is_an_explicit_refusal_sent_once(broker, server):
    broker.submit(OrderRequest("eq-in", "AAPL", "buy", 10))
    server.faults.add(Fault("status", 403, method="POST", path="/v2/orders", body=(
        '{"code":40310000,"message":"insufficient qty available for order (requested: 10, available: 0)"}')))
    with pytest.raises(OrderRejected, match="Alpaca refused the order: HTTP 403: .*insufficient qty"):
        broker.submit(OrderRequest("eq-out", "AAPL", "sell", 10))
    assert server.count("POST", "/v2/orders") == 2  # the buy, and the exit once


def test_cancel_is_confirmed_by_alpaca_before_it_is_reported(broker, server):
    broker.submit(OrderRequest("eq-in", "AAPL", "buy", 10))
    broker.submit(OrderRequest("eq-stop", "AAPL", "sell", 10, order_type="stop", stop_price=95))
    server.faults.add(ignored_cancel())  # 204, and nothing happens
    started = pd.Timestamp.now()
    still = broker.cancel("eq-stop")
    assert still.status == "new" and orders_at_server(server, "eq-stop")[0]["status"] == "new"
    assert (pd.Timestamp.now() - started).total_seconds() >= 1.0  # cancel_wait
    assert broker.cancel("eq-stop").status == "canceled"


def test_a_cancel_whose_delete_keeps_failing_is_unconfirmed_within_the_budget(make_broker, server):
    broker = make_broker(retry_budget=1.0)
    broker.submit(OrderRequest("eq-in", "AAPL", "buy", 10))
    broker.submit(OrderRequest("eq-stop", "AAPL", "sell", 10, order_type="stop", stop_price=95))
    server.faults.add(html_500(times=100, method="DELETE", path="/v2/orders/"))
    started = pd.Timestamp.now()
    with pytest.raises(OrderUnconfirmed, match="cancel of order eq-stop not confirmed .*HTML error page"):
        broker.cancel("eq-stop")
    assert (pd.Timestamp.now() - started).total_seconds() < 2.0
    assert orders_at_server(server, "eq-stop")[0]["status"] == "new"


def test_a_stop_that_filled_before_its_cancel_says_so(broker, server, exchange):
    broker.submit(OrderRequest("eq-in", "AAPL", "buy", 10))
    broker.submit(OrderRequest("eq-stop", "AAPL", "sell", 10, order_type="stop", stop_price=95))
    exchange.set_price("AAPL", 94.0)
    done = broker.cancel("eq-stop")
    assert (done.status, done.filled_qty, done.filled_avg_price) == ("filled", 10, 94.0)
    assert server.count("DELETE", f"/v2/orders/{done.broker_order_id}") == 0
    assert broker.cancel("never-sent") is None


def test_times_are_the_brokers_in_utc_and_the_stop_is_as_rounded(broker, server, exchange):
    broker.submit(OrderRequest("eq-in", "AAPL", "buy", 10))
    stop = broker.submit(OrderRequest("eq-stop", "AAPL", "sell", 10, order_type="stop", stop_price=95.1234))
    held = orders_at_server(server, "eq-stop")[0]
    assert stop.stop_price == 95.12 and held["stop_price"] == "95.12"
    assert stop.submitted_at == held["submitted_at"] and stop.submitted_at.endswith("Z")
    filled = broker.get_order("eq-in")
    assert filled.filled_at == orders_at_server(server, "eq-in")[0]["filled_at"] and filled.filled_at.endswith("Z")


def test_fee_dust_is_a_position_below_the_smallest_order(make_broker, exchange):
    """Crypto fees are taken in the asset: the sell is capped at what is held, and what the
    increment leaves behind is reported with the floor that makes it dust."""
    exchange.crypto_fee_bps = 25
    exchange.set_price("ETH/USD", 2000.0)
    broker = make_broker()
    broker.submit(OrderRequest("eth-in", "ETH/USD", "buy", 0.5))
    broker.submit(OrderRequest("eth-out", "ETH/USD", "sell", 0.5))
    [dust] = broker.positions()
    assert (dust.symbol, dust.min_order_qty) == ("ETH/USD", 0.001)
    assert dust.qty == pytest.approx(0.00075) and dust.qty < dust.min_order_qty
    with pytest.raises(OrderRejected, match="below Alpaca's min_order_size 0.001"):
        broker.submit(OrderRequest("eth-dust", "ETH/USD", "sell", dust.qty))


def test_crypto_stop_is_a_stop_limit_at_the_broker_and_triggers(broker, server, exchange):
    exchange.set_price("BTC/USD", 30000.0)
    broker.submit(OrderRequest("cr-in", "BTC/USD", "buy", 0.5))
    stop = broker.submit(OrderRequest("cr-stop", "BTC/USD", "sell", 0.5, order_type="stop", stop_price=28500))
    sent = orders_at_server(server, "cr-stop")[0]
    assert (sent["type"], sent["time_in_force"], sent["stop_price"], sent["limit_price"]) == \
        ("stop_limit", "gtc", "28500", "28215")
    assert stop.order_type == "stop_limit"
    broker.sync(None, NOW)
    exchange.set_price("BTC/USD", 28400.0)
    fills = broker.sync(None, NOW)
    assert [(f.client_order_id, f.filled_avg_price) for f in fills] == [("cr-stop", 28400.0)]


def test_sync_reports_each_fill_once_across_restarts(make_broker, tmp_path):
    first = make_broker(state_dir=tmp_path / "s")
    first.submit(OrderRequest("eq-a", "AAPL", "buy", 1))
    assert [f.client_order_id for f in first.sync(None, NOW)] == ["eq-a"]
    assert first.sync(None, NOW) == []
    restarted = make_broker(state_dir=tmp_path / "s")
    assert restarted.sync(None, NOW) == []
    restarted.submit(OrderRequest("eq-b", "AAPL", "buy", 1))
    assert [f.client_order_id for f in restarted.sync(None, NOW)] == ["eq-b"]


def test_sync_finds_a_stop_submitted_before_the_lookback_window(make_broker, exchange):
    """Alpaca filters closed orders by submission time; an old gtc stop is watched by id."""
    broker = make_broker(sync_lookback_days=0)
    broker.submit(OrderRequest("eq-in", "AAPL", "buy", 10))
    broker.submit(OrderRequest("eq-stop", "AAPL", "sell", 10, order_type="stop", stop_price=95))
    later = pd.Timestamp.now() + pd.Timedelta(minutes=1)
    assert [f.client_order_id for f in broker.sync(None, later)] == []  # both outside the window
    exchange.set_price("AAPL", 94.0)
    fills = broker.sync(None, later)
    assert [(f.client_order_id, f.status, f.filled_avg_price) for f in fills] == [("eq-stop", "filled", 94.0)]
    assert broker.sync(None, later) == []


def test_account_get_order_and_cancel(broker, exchange):
    assert broker.account().cash == 100_000.0
    assert broker.get_order("never-sent") is None
    assert broker.cancel("never-sent") is None
    broker.submit(OrderRequest("eq-in", "AAPL", "buy", 10))
    assert broker.cancel("eq-in").status == "filled"  # nothing to cancel, no error
    broker.submit(OrderRequest("eq-stop", "AAPL", "sell", 10, order_type="stop", stop_price=90))
    assert broker.cancel("eq-stop").status == "canceled"
    assert broker.get_order("eq-stop").status == "canceled"
    assert broker.account().cash == pytest.approx(99_000.0)


def test_resubmitting_a_known_id_returns_the_order(broker, server):
    first = broker.submit(OrderRequest("eq-1", "AAPL", "buy", 10))
    again = broker.submit(OrderRequest("eq-1", "AAPL", "buy", 10))
    assert again.broker_order_id == first.broker_order_id
    assert server.count("POST", "/v2/orders") == 1


def test_unknown_symbol_is_refused(broker):
    with pytest.raises(OrderRefused, match="DOGE/EUR: unknown at Alpaca"):
        broker.submit(OrderRequest("x-1", "DOGE/EUR", "buy", 1))


def test_an_order_alpaca_refuses_is_one_line_and_not_retried(broker, server):
    server.exchange.cash = 50.0
    with pytest.raises(OrderRefused, match="Alpaca refused the order: HTTP 403: .*insufficient buying power"):
        broker.submit(OrderRequest("eq-big", "AAPL", "buy", 10))
    assert server.count("POST", "/v2/orders") == 1
