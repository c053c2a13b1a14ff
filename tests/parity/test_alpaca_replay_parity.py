"""The live cycle replayed through the Alpaca broker and the real alpaca-py client matches the backtest.

The plugin's local Alpaca-compatible server runs in-process, loaded with the window's bars
from ../shared/data. Each session it plays that day (``exchange.advance``: queued market orders
fill at the open, broker-side stops crossed by the low fill, prices move to the close), then
the real live cycle runs at that close (``RunSession`` + ``cycle.run`` as ``hybrid replay`` does)
with the ``alpaca`` broker talking HTTP to the server. Its round trips (from the state
database) are compared with ``run_backtest`` on the same window, strategies and risk rules.

How the server is set up, and why:
- ``fill_at_next_open``: a crypto market order waits for the next bar's open, as the backtest
  assumes. The server's default fills crypto at once at the last price, i.e. at the close the
  decision was taken on, and crypto's next open is not that close in the data (BTC/USD's
  open equals the previous close on 0.3% of the days of 2019-09..2020-06).
- ``multiplier=4`` (a margin account with day-trading buying power, as Alpaca paper accounts
  over $25k have): the cycle sends a rebalance's sells and buys at the same close and the
  buys count on the sells' cash. With a cash account (buying power = cash) Alpaca refuses
  those buys with 403 "insufficient buying power" (2020-02-21, 15 names: the 698k AAL buy
  against ~300k of cash) and the replay misses trades the backtest makes; with Reg T's 2x the
  same happens once crypto (not marginable) is held too (2019-07-19: the 744k ABC buy). The
  server does not reserve buying power for open buy orders (Alpaca does); each buy here is
  checked alone.
- Crypto ``min_trade_increment`` 1e-9 (Alpaca's current BTC/ETH increment): the contract's
  1e-6 quantities go through unchanged.
- Stop prices. Alpaca takes equity stops in whole cents (a sub-penny stop is refused), so the
  broker rounds ``entry * 0.95`` to the cent and a stop filled at its stop price differs from
  the backtest's by up to half a cent (AAL 2020-02-25: 24.68 at Alpaca, 24.681 in the
  backtest); the cash difference then moves later share counts (AAL 79179 vs 79172 shares on
  2020-04-20). The exact tests give the server's assets a 1e-9 tick to take that rounding
  out; ``test_with_alpaca_cent_ticks_...`` keeps real cents and matches exactly a backtest
  whose stops sit on the same cent.
- Crypto stops are ``stop_limit`` orders with the limit 1% under the stop (Alpaca has no plain
  crypto stop). When the open gaps below the limit the order does not fill, where the backtest
  sells at that open: ETH/USD bought 2019-11-22 at 161.50589, stop 153.43, limit 151.90, next
  open 150.212219 (backtest exit); at Alpaca the order filled a day later, 2019-11-24 at
  153.430527. That trade and the later ones differ (``test_a_crypto_stop_gapping_...`` pins it); windows without
  such a gap match exactly.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import hybrid_alpaca_broker.order_rules as order_rules  # noqa: E402  (scripts/setup.sh installs the plugin)
import hybrid_alpaca_broker.testing as testing  # noqa: E402
import pandas as pd
import pytest
import yaml
from parity_support import SHARED_DATA, equity_symbols

from hybrid_core.contracts import Panel, Position, RiskRule
from hybrid_core.engine.backtest import run_backtest
from hybrid_core.engine.replay import compare_trades, replay_round_trips
from hybrid_core.live.runner import RunOptions, RunSession
from hybrid_core.plugins import build_plugin_host
from hybrid_core.profile import load_profile

CASH = 1_000_000.0
CRYPTO = ["BTC/USD", "ETH/USD"]
SUB_PENNY = 1e-9


@attrs.define
class AlpacaReplay:
    """What one replay through the local Alpaca server produced."""

    trades: pd.DataFrame
    panel: Panel
    session: RunSession
    exchange: Any
    seconds: float

    def backtest(self, risk_rules: list[RiskRule] | None = None) -> pd.DataFrame:
        """``run_backtest`` on the replay's window, strategies and risk rules, from the same cash."""
        rules = self.session.components.risk_rules if risk_rules is None else risk_rules
        result = run_backtest(self.panel, self.session.components.strategies, rules, cash=CASH, progress=False)
        return result.trades


class CentStop(RiskRule):
    """A stop rule whose stop sits on Alpaca's tick, rounded by the broker's own ``round_price``."""

    name = "cent_stop"

    def __init__(self, rule: RiskRule) -> None:
        super().__init__(rule.params)
        self.rule = rule

    def stop_price(self, position: Position) -> float | None:
        stop = self.rule.stop_price(position)
        return None if stop is None else order_rules.round_price(stop, None)


@pytest.fixture
def alpaca_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Paper mode, paper-looking keys for the local server, the alpaca plugin enabled."""
    for var in ("TRADING_MODE", "LIVE_TRADING_ENABLED", "HYBRID_DISABLE_PLUGINS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("ALPACA_API_KEY", "PKLOCALREPLAY")
    monkeypatch.setenv("ALPACA_SECRET_KEY", "local")


@pytest.fixture
def alpaca_replay(tmp_path: Path, alpaca_env: None) -> Iterator[Any]:
    """Run a replay through the local Alpaca server; returns an :class:`AlpacaReplay`."""
    opened: list[tuple[Any, RunSession]] = []

    def run(equities: list[str], crypto: list[str], start: str, end: str, *, tick: float | None) -> AlpacaReplay:
        if not SHARED_DATA.exists():
            pytest.fail(f"shared data not found at {SHARED_DATA}; the repository expects ../shared beside it")
        exchange = testing.SimulatedExchange(cash=CASH, market_open=False, multiplier=4, fill_at_next_open=True)
        for symbol in crypto:
            exchange.add_asset(symbol, min_trade_increment=1e-9)
        if tick is not None:
            for symbol in equities + crypto:
                exchange.add_asset(symbol, price_increment=tick)
        server = testing.AlpacaTestServer(exchange).start()
        session = RunSession(load_profile(write_profile(tmp_path, server.url, equities, crypto)),
                             build_plugin_host().registry,
                             RunOptions(history_start=pd.Timestamp(start), durable=False, simulated_clock=True))
        opened.append((server, session))
        first, last = pd.Timestamp(start), pd.Timestamp(end)
        bars = session.components.data_source.fetch(session.cycle.symbols, first, last)
        panel = Panel.from_long(bars)
        exchange.load_bars(bars)
        session.preflight()
        assert session.components.broker.account().cash == CASH
        t0 = time.perf_counter()
        for day in panel.dates:
            exchange.advance(day)  # that session happens at the server
            session.cycle.run(day, panel.until(day))  # then the cycle at its close
        seconds = time.perf_counter() - t0
        return AlpacaReplay(replay_round_trips(session.state), panel, session, exchange, seconds)

    yield run
    for server, session in opened:
        session.close()
        server.stop()


def write_profile(folder: Path, url: str, equities: list[str], crypto: list[str]) -> Path:
    """A profile: local data over ../shared/data, both strategies, the alpaca broker at ``url``."""
    strategies: list[dict[str, Any]] = [{"name": "equity_reversal", "allocation": 0.7, "universe": equities}]
    paths = [str(SHARED_DATA / "sp500_daily.parquet")]
    if crypto:
        strategies.append({"name": "crypto_adx", "allocation": 0.3, "universe": crypto})
        paths.append(str(SHARED_DATA / "crypto_daily.parquet"))
    profile = {
        "name": "alpaca-parity",
        "data": {"source": "local", "params": {"path": paths}},
        "strategies": strategies,
        "risk": [{"name": "stop_loss"}, {"name": "time_stop"}],
        "broker": {"name": "alpaca", "params": {"base_url": url, "timeout": 2, "backoff": 0.01,
                                                "retry_budget": 2, "cancel_wait": 1}},
        "outputs": {"trade_log": str(folder / "trades.csv"), "state_db": str(folder / "state.sqlite"),
                    "health_file": str(folder / "hybrid.health")},
    }
    path = folder / "alpaca-parity.yaml"
    path.write_text(yaml.safe_dump(profile, sort_keys=False))
    return path


def assert_same_trades(replayed: pd.DataFrame, backtested: pd.DataFrame) -> None:
    """Same symbols, dates, reasons and quantities; prices within 1e-9 relative."""
    difference = compare_trades(replayed, backtested)
    assert difference is None, difference.describe()
    assert len(replayed) == len(backtested)


def server_orders(replay: AlpacaReplay, **fields: str) -> list[dict[str, Any]]:
    return [o for o in replay.exchange.orders if all(o[k] == v for k, v in fields.items())]


def test_equity_replay_through_alpaca_matches_the_backtest(alpaca_replay):
    replay = alpaca_replay(equity_symbols(15), [], "2020-02-03", "2020-04-30", tick=SUB_PENNY)
    backtested = replay.backtest()
    assert {"rebalance", "stop_loss"} <= set(backtested["exit_reason"])
    assert_same_trades(replay.trades, backtested)
    # the exits really went through Alpaca orders: stops at the broker, rebalances at market
    assert server_orders(replay, type="stop", status="filled")
    assert server_orders(replay, type="market", side="sell", status="filled")
    assert replay.seconds < 40


def test_with_alpaca_cent_ticks_only_stop_fills_move_and_a_cent_stop_backtest_matches(alpaca_replay):
    replay = alpaca_replay(equity_symbols(15), [], "2020-02-03", "2020-04-30", tick=None)
    plain = replay.backtest()
    # against the contract's exact stops: the first difference is a stop filled at its stop
    # price, which Alpaca holds to the cent (24.68 where the backtest sells at 24.681)
    difference = compare_trades(replay.trades, plain)
    assert difference is not None and difference.field == "exit_price"
    assert difference.backtest["exit_reason"] == difference.replay["exit_reason"] == "stop_loss"
    stop = 0.95 * difference.backtest["entry_price"]
    assert difference.backtest["exit_price"] == pytest.approx(stop, rel=1e-12)
    assert difference.replay["exit_price"] == order_rules.round_price(stop, None) != pytest.approx(stop, rel=1e-9)
    # with the backtest's stops on the same cent, every trade matches exactly
    cent_rules = [CentStop(r) if type(r).stop_price is not RiskRule.stop_price else r
                  for r in replay.session.components.risk_rules]
    assert_same_trades(replay.trades, replay.backtest(cent_rules))


def test_hybrid_replay_with_crypto_stops_and_time_stops_through_alpaca_matches(alpaca_replay):
    replay = alpaca_replay(equity_symbols(15), CRYPTO, "2019-06-01", "2019-08-31", tick=SUB_PENNY)
    backtested = replay.backtest()
    crypto = backtested[backtested["symbol"].str.contains("/")]
    assert {"stop_loss", "time_stop"} <= set(crypto["exit_reason"])
    assert "stop_loss" in set(backtested.loc[~backtested["symbol"].str.contains("/"), "exit_reason"])
    assert_same_trades(replay.trades, backtested)
    # crypto stops lived at the broker as stop_limit orders, and one of them filled
    assert server_orders(replay, asset_class="crypto", type="stop_limit", status="filled")
    assert replay.seconds < 40


def test_a_crypto_stop_gapping_through_its_limit_is_where_alpaca_differs(alpaca_replay):
    replay = alpaca_replay(equity_symbols(15), CRYPTO, "2019-10-15", "2019-12-15", tick=SUB_PENNY)
    backtested = replay.backtest()
    difference = compare_trades(replay.trades, backtested)
    # every trade entered before it matches; the first difference is a crypto stop-loss whose
    # next open fell under the stop_limit's limit: the backtest sold at that open, Alpaca did not
    assert difference is not None, "no gap through a crypto stop's limit in this window any more"
    sold = difference.backtest
    assert "/" in difference.symbol and sold["exit_reason"] == "stop_loss"
    stop = 0.95 * sold["entry_price"]
    limit = 0.99 * stop
    exit_open = replay.panel.open.loc[pd.Timestamp(sold["exit_date"]), difference.symbol]
    assert sold["exit_price"] == exit_open < limit
    assert (difference.symbol, pd.Timestamp(difference.date)) == ("ETH/USD", pd.Timestamp("2019-11-22"))
    stop_order = next(o for o in server_orders(replay, symbol=difference.symbol, type="stop_limit")
                      if float(o["stop_price"]) == pytest.approx(stop, rel=1e-9))
    assert float(stop_order["limit_price"]) == pytest.approx(limit, rel=1e-9)
    # at Alpaca the stop_limit stayed open through that open and filled only once the price came
    # back between its limit and its stop (2019-11-24 at 153.430527, a day after the backtest's
    # 150.212219); from there on the two accounts hold different cash and size orders differently
    assert difference.field == "exit_date" and difference.replay is not None
    filled_at = pd.Timestamp(stop_order["filled_at"]).tz_localize(None).normalize()
    assert filled_at == pd.Timestamp(difference.replay["exit_date"]) > pd.Timestamp(sold["exit_date"])
    assert float(stop_order["filled_avg_price"]) >= limit


@pytest.mark.slow
def test_equity_replay_of_a_year_on_50_symbols_through_alpaca_matches_the_backtest(alpaca_replay):
    replay = alpaca_replay(equity_symbols(50), [], "2018-01-02", "2019-01-04", tick=SUB_PENNY)
    backtested = replay.backtest()
    assert len(backtested) > 150
    assert {"rebalance", "stop_loss"} <= set(backtested["exit_reason"])
    assert_same_trades(replay.trades, backtested)


def test_server_cash_account_refuses_a_rebalance_buy_that_a_margin_account_takes():
    # why the replays use multiplier=4: the cycle sends a rebalance's buy while its sell is queued
    def account(multiplier: int) -> Any:
        exchange = testing.SimulatedExchange(cash=300_000.0, market_open=False, multiplier=multiplier)
        exchange.positions["AAA"] = {"asset": exchange.asset("AAA"), "qty": 7_000.0, "avg": 100.0}
        exchange.prices.update(AAA=100.0, BBB=100.0)
        exchange.submit({"symbol": "AAA", "qty": 7_000, "side": "sell", "type": "market",
                         "time_in_force": "day", "client_order_id": "exit"})
        return exchange.submit({"symbol": "BBB", "qty": 6_990, "side": "buy", "type": "market",
                                "time_in_force": "day", "client_order_id": "entry"})
    status, body = account(1)
    assert status == 403 and body["message"] == "insufficient buying power"
    assert account(2)[0] == account(4)[0] == 200


def test_server_replaying_history_fills_crypto_at_the_next_open_not_at_the_decision_close():
    bars = pd.DataFrame({"symbol": "BTC/USD", "date": pd.to_datetime(["2020-01-01", "2020-01-02"]),
                         "open": [7200.0, 7205.5], "high": [7300.0, 7250.0], "low": [7100.0, 7150.0],
                         "close": [7201.0, 7190.0], "volume": [1.0, 1.0]})
    for next_open, expected in ((False, 7201.0), (True, 7205.5)):
        exchange = testing.SimulatedExchange(cash=CASH, fill_at_next_open=next_open)
        exchange.load_bars(bars)
        exchange.advance("2020-01-01")
        exchange.submit({"symbol": "BTC/USD", "qty": 1.5, "side": "buy", "type": "market",
                         "time_in_force": "gtc", "client_order_id": "btc"})
        exchange.advance("2020-01-02")
        order = exchange.by_client_id("btc")
        assert (order["status"], float(order["filled_avg_price"])) == ("filled", expected)
