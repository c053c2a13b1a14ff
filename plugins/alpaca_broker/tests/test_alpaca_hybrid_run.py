"""`hybrid run PROFILE --once` against the local Alpaca server, and every safety layer of the core.

The real CLI, the real alpaca broker and data source, both strategies, the repo's sample bars
(hybrid_core.testing.sample_bars_path()) served by the local server. Nothing of alpaca-py is patched.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from hybrid_alpaca_broker.testing import AlpacaTestServer, Fault, SimulatedExchange
from hybrid_alpaca_broker.testing.rehearsal import hybrid
from hybrid_alpaca_broker.testing.server import read_bars_file

from hybrid_core.errors import SafetyError
from hybrid_core.live.runner import RunOptions, RunSession
from hybrid_core.plugins import build_plugin_host
from hybrid_core.profile import load_profile
from hybrid_core.testing import sample_bars_path

REPO = Path(__file__).resolve().parents[3]
SAMPLE_BARS = sample_bars_path()
UNIVERSE = "[AAPL, BA, BAC, C, F, GM, INTC, MSFT, T, TSLA, WFC, XOM]"
"""A dozen of the sample's equities keep each cycle quick (decile 0.25: three names a week)."""
ORDERS = "/v2/orders"

PROFILE = """\
name: alpaca-rehearsal
data:
  source: alpaca
  params: {{timeout: 5}}
  lookback_days: 90
strategies:
  - {{name: equity_reversal, allocation: 0.7, universe: {universe}, params: {{decile: 0.25}}}}
  - {{name: crypto_adx, allocation: 0.3, universe: [BTC/USD, ETH/USD], params: {{adx_max: 25}}}}
risk:
  - {{name: stop_loss, params: {{pct: 0.05}}}}
  - {{name: time_stop, params: {{bars: 5}}}}
  - {{name: max_order_value, params: {{value: 500000}}}}
broker:
  name: alpaca
  params: {{timeout: 2, backoff: 0.01}}
outputs:
  trade_log: {out}/trades.csv
  health_file: {out}/hybrid.health
  state_db: {out}/state/hybrid.sqlite
"""


@pytest.fixture(scope="module")
def sample_bars() -> pd.DataFrame:
    return read_bars_file(str(SAMPLE_BARS))


@pytest.fixture
def rehearsal(sample_bars, tmp_path, monkeypatch):
    """A closed-market server with the sample bars, a profile pointing at it, paper keys."""
    exchange = SimulatedExchange(cash=1_000_000.0, market_open=False)
    exchange.load_bars(sample_bars)
    monkeypatch.chdir(tmp_path)
    for var in ("TRADING_MODE", "LIVE_TRADING_ENABLED"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("ALPACA_API_KEY", "PKLOCALTEST")
    monkeypatch.setenv("ALPACA_SECRET_KEY", "secret")
    with AlpacaTestServer(exchange) as server:
        monkeypatch.setenv("ALPACA_BASE_URL", server.url)  # one URL for the broker and the data source
        profile = tmp_path / "alpaca.yaml"
        profile.write_text(PROFILE.format(universe=UNIVERSE, out=tmp_path / "out"))
        yield server, profile, tmp_path / "out"


def server_orders(server: AlpacaTestServer) -> list[dict]:
    return list(server.exchange.orders)


def test_hybrid_run_once_trades_both_strategies_through_alpaca(rehearsal, capsys):
    server, profile, out = rehearsal
    ex = server.exchange
    ex.advance("2021-03-25")  # prices = that close; nothing pending yet

    # Thursday: crypto_adx enters ETH/USD (crypto fills at once, 24/7); the cycle asks for its
    # order before it ends, records the fill and places the position's stop (a stop_limit) at once
    assert hybrid("run", str(profile), "--once", "--as-of", "2021-03-25") == 0
    eth = [o for o in server_orders(server) if o["symbol"] == "ETH/USD"]
    assert [(o["side"], o["type"], o["time_in_force"], o["status"]) for o in eth] == \
        [("buy", "market", "gtc", "filled"), ("sell", "stop_limit", "gtc", "new")]

    # Friday: equity_reversal rebalances (market closed: queued as day orders)
    ex.advance("2021-03-26")
    assert hybrid("run", str(profile), "--once", "--as-of", "2021-03-26") == 0
    equities = [o for o in server_orders(server) if "/" not in o["symbol"] and o["side"] == "buy"]
    assert len(equities) == 3
    assert {(o["type"], o["time_in_force"], o["status"]) for o in equities} == \
        {("market", "day", "accepted")}
    eth_stop = [o for o in server_orders(server) if o["symbol"] == "ETH/USD" and o["side"] == "sell"]
    assert [(o["type"], o["time_in_force"], o["status"]) for o in eth_stop] == [("stop_limit", "gtc", "new")]
    entry_price = float(eth[0]["filled_avg_price"])
    assert float(eth_stop[0]["stop_price"]) == pytest.approx(0.95 * entry_price, rel=1e-3)
    assert float(eth_stop[0]["limit_price"]) == pytest.approx(0.99 * 0.95 * entry_price, rel=1e-3)

    # Monday's open fills the equities; the next cycle syncs them and places their stops
    ex.advance("2021-03-29")
    assert all(o["status"] == "filled" for o in equities)
    assert hybrid("run", str(profile), "--once", "--as-of", "2021-03-29") == 0
    stops = {o["symbol"] for o in server_orders(server) if o["type"] == "stop" and o["status"] == "new"}
    held = {p["symbol"] for p in ex.positions_json()[1]}
    assert stops == held - {"ETHUSD"}

    # the same cycle again sends nothing; every client_order_id exists exactly once
    posts = server.count("POST", ORDERS)
    assert hybrid("run", str(profile), "--once", "--as-of", "2021-03-29") == 0
    assert server.count("POST", ORDERS) == posts
    ids = [o["client_order_id"] for o in server_orders(server)]
    assert len(ids) == len(set(ids))

    # Thursday 2021-04-01 (Good Friday follows): the next rebalance exits the names not
    # re-selected; each exit cancels its stop first, so no 403 for shares held by a stop
    for day in ("2021-03-30", "2021-03-31", "2021-04-01"):
        ex.advance(day)
    assert hybrid("run", str(profile), "--once", "--as-of", "2021-04-01") == 0
    exits = [o for o in server_orders(server) if o["type"] == "market" and o["side"] == "sell"
             and "/" not in o["symbol"]]
    assert exits, "the rebalance sold nothing"
    for sell in exits:
        stop = next(o for o in server_orders(server) if o["symbol"] == sell["symbol"] and o["type"] == "stop")
        assert stop["status"] == "canceled" and stop["canceled_at"] <= sell["submitted_at"]
        assert sell["status"] == "accepted" and float(sell["qty"]) == float(stop["qty"])

    trades = pd.read_csv(out / "trades.csv")
    filled = trades[trades.status == "filled"]
    assert set(filled.symbol) == {o["symbol"] for o in server_orders(server) if o["status"] == "filled"}
    assert set(filled.timestamp.str[:10]) <= {"2021-03-25", "2021-03-29", "2021-03-30", "2021-03-31",
                                              "2021-04-01"}  # the server's simulated sessions
    assert set(trades[trades.status == "canceled"].symbol) >= {o["symbol"] for o in exits}
    assert "cycle 5 at 2021-04-01" in capsys.readouterr().out


def test_paper_is_the_default_and_a_live_account_url_stops_the_run(rehearsal, capsys):
    server, profile, _ = rehearsal
    server.exchange.account_number = "123456789"  # the endpoint answers like a live account
    code = hybrid("run", str(profile), "--once", "--as-of", "2021-03-26")
    err = capsys.readouterr().err
    assert code == SafetyError.exit_code
    assert "API health check failed on startup: URL/mode mismatch: paper mode" in err
    assert server.count("POST", ORDERS) == 0


def test_live_without_live_trading_enabled_is_refused_before_any_request(rehearsal, monkeypatch, capsys):
    server, profile, _ = rehearsal
    monkeypatch.setenv("TRADING_MODE", "LIVE")
    code = hybrid("run", str(profile), "--once", "--as-of", "2021-03-26")
    assert code == SafetyError.exit_code
    assert "LIVE_TRADING_ENABLED is not 'true'" in capsys.readouterr().err
    assert server.exchange.requests == []


def test_live_enabled_with_paper_keys_fails_the_health_check(rehearsal, monkeypatch):
    server, profile, _ = rehearsal
    monkeypatch.setenv("TRADING_MODE", "LIVE")
    monkeypatch.setenv("LIVE_TRADING_ENABLED", "true")
    loaded = load_profile(str(profile))
    with RunSession(loaded, build_plugin_host().registry, RunOptions(banner_seconds=0)) as session:
        assert session.components.broker.mode == "live"
        with pytest.raises(SafetyError, match="API health check failed on startup: key/mode mismatch: "
                                              "a paper key"):
            session.run_cycle(pd.Timestamp("2021-03-26"))
    assert server.count("POST", ORDERS) == 0


def test_dry_run_sends_nothing(rehearsal):
    server, profile, out = rehearsal
    assert hybrid("run", str(profile), "--once", "--dry-run", "--as-of", "2021-03-26") == 0
    assert server.count("POST", ORDERS) == 0
    assert not any(m == "DELETE" for m, _, _ in server.exchange.requests)
    trades = pd.read_csv(out / "trades.csv")
    assert len(trades) > 0 and set(trades.status) == {"dry_run"}


def test_health_check_failure_stops_the_run(rehearsal, capsys):
    server, profile, _ = rehearsal
    server.exchange.trading_blocked = True
    code = hybrid("run", str(profile), "--once", "--as-of", "2021-03-26")
    assert code == SafetyError.exit_code
    err = capsys.readouterr().err
    assert "API health check failed on startup: account PA1TESTACCT: trading is blocked" in err
    assert server.count("POST", ORDERS) == 0
    assert server.count("GET", "/v2/stocks/bars") == 0  # stopped before the cycle started


def test_a_post_that_times_out_during_a_run_still_opens_the_position(rehearsal):
    """The order is accepted but the answer never arrives: the broker reconciles it by id, and
    the next cycle records its fill and protects it with a stop (no second order)."""
    server, profile, _ = rehearsal
    ex = server.exchange
    ex.advance("2021-03-25")
    server.faults.add(Fault("hang", method="POST", path=ORDERS, after_accept=True, hang_seconds=4))
    assert hybrid("run", str(profile), "--once", "--as-of", "2021-03-25") == 0
    ex.advance("2021-03-26")
    assert hybrid("run", str(profile), "--once", "--as-of", "2021-03-26") == 0
    eth = [o for o in server_orders(server) if o["symbol"] == "ETH/USD"]
    assert [(o["side"], o["type"]) for o in eth] == [("buy", "market"), ("sell", "stop_limit")]


def test_a_position_the_state_does_not_know_is_reported_not_sold(rehearsal, capsys):
    server, profile, _ = rehearsal
    ex = server.exchange
    ex.market_open = True
    ex.submit({"symbol": "MSFT", "qty": 5, "side": "buy", "type": "market", "time_in_force": "day",
               "client_order_id": "bought-by-hand"})
    ex.market_open = False
    assert hybrid("run", str(profile), "--once", "--as-of", "2021-03-26") == 0
    assert "Broker holds 5.0 MSFT that the state database does not know" in capsys.readouterr().err
    assert not [o for o in server_orders(server) if o["symbol"] == "MSFT" and o["side"] == "sell"]
    assert ex.positions["MSFT"]["qty"] == 5


def test_the_example_rehearsal_profile_validates(capsys, monkeypatch):
    example = REPO / "plugins" / "alpaca_broker" / "examples" / "local_rehearsal.yaml"
    assert hybrid("validate", str(example)) == 6  # the run would stop without keys: validate says so
    assert "Alpaca keys missing" in capsys.readouterr().err
    monkeypatch.setenv("ALPACA_API_KEY", "PKTESTKEY")  # what the rehearsal's README has the user set
    monkeypatch.setenv("ALPACA_SECRET_KEY", "secret")
    assert hybrid("validate", str(example)) == 0
    assert "OK (2 strategies, broker alpaca, data alpaca)" in capsys.readouterr().out


def test_hybrid_run_killed_mid_order_then_restarted_sends_it_once(rehearsal, capsys):
    """`hybrid run` is SIGKILLed while its POST hangs (the order was accepted); the next run
    adopts the order by its client_order_id instead of sending it again."""
    server, profile, _ = rehearsal
    ex = server.exchange
    ex.advance("2021-03-25")
    profile.write_text(profile.read_text().replace("timeout: 2,", "timeout: 60,"))
    server.faults.add(Fault("hang", method="POST", path=ORDERS, after_accept=True, hang_seconds=60))
    child = subprocess.Popen([sys.executable, "-m", "hybrid_core.cli", "run", str(profile), "--once",
                              "--as-of", "2021-03-25"], cwd=profile.parent, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
    try:
        deadline = time.monotonic() + 60
        while not ex.orders and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.05)
        assert ex.orders, "the run never sent its order"
        child.send_signal(signal.SIGKILL)
        out, _ = child.communicate(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
    assert "cycle 1" not in out  # killed before it could report
    server.faults.clear()
    assert hybrid("run", str(profile), "--once", "--as-of", "2021-03-25") == 0
    err = capsys.readouterr().err  # the interrupted run's order, still intended, is found by id and adopted
    assert "ETH/USD buy" in err and "(entry): intended -> filled" in err
    # one buy at the broker (adopted, not resent); its fill is recorded and its stop placed at once
    eth = [(o["side"], o["type"]) for o in ex.orders if o["symbol"] == "ETH/USD"]
    assert eth == [("buy", "market"), ("sell", "stop_limit")]
    assert server.count("POST", ORDERS) == len(ex.orders) == 2
    ex.advance("2021-03-26")
    assert hybrid("run", str(profile), "--once", "--as-of", "2021-03-26") == 0
    eth = [(o["side"], o["type"]) for o in ex.orders if o["symbol"] == "ETH/USD"]
    assert server.count("POST", ORDERS) == len(ex.orders)
    assert eth == [("buy", "market"), ("sell", "stop_limit")]
