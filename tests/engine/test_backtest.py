"""run_backtest and its outputs on a synthetic hybrid panel (NYSE sessions + 24/7 crypto)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hybrid_core.account.decisions import DecisionTable, RowPrices
from hybrid_core.account.ledger import ROUND_TRIP_COLUMNS as TRADE_COLUMNS
from hybrid_core.builtin.risk_rules import MaxOrderValue, StopLoss, TimeStop
from hybrid_core.calendars import nyse_sessions
from hybrid_core.contracts import Panel, Signals
from hybrid_core.engine import stats
from hybrid_core.engine.backtest import (
    compute_signals,
    float_texts,
    lookahead_check,
    run_backtest,
    survivorship_warnings,
    write_csv,
    write_outputs,
)
from hybrid_core.engine.book import PortfolioBook
from hybrid_core.errors import StrategyError

from .minimal_strategies import MiniCryptoAdx, MiniEquityReversal

EQUITIES = [f"S{i:02d}" for i in range(30)]
CRYPTO = ["BTC/USD", "ETH/USD"]


def synthetic_panel(seed: int = 7) -> Panel:
    """Random walks: equities on NYSE sessions (one listing late, one with a gap), crypto every day."""
    rng = np.random.default_rng(seed)
    rows = []
    for symbols, dates in ((EQUITIES, nyse_sessions("2020-01-02", "2020-12-31")),
                           (CRYPTO, pd.date_range("2020-01-01", "2020-12-31", freq="D"))):
        for sym in symbols:
            close = 50.0 * np.exp(np.cumsum(rng.normal(0, 0.03, len(dates))))
            open_ = close * np.exp(rng.normal(0, 0.02, len(dates)))
            low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.02, len(dates))))
            high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.02, len(dates))))
            frame = pd.DataFrame({"symbol": sym, "date": dates, "open": open_, "high": high, "low": low,
                                  "close": close, "volume": 1e6})
            if sym == "S03":
                frame = frame[frame["date"] >= "2020-06-01"]
            if sym in ("S05", "ETH/USD"):
                frame = frame.drop(frame.index[100:104])
            rows.append(frame)
    return Panel.from_long(pd.concat(rows, ignore_index=True))


@pytest.fixture(scope="module")
def panel() -> Panel:
    return synthetic_panel()


def strategies():
    return [MiniEquityReversal(name="eq", universe=EQUITIES, allocation=0.7),
            MiniCryptoAdx(name="cx", universe=CRYPTO, allocation=0.3)]


def test_decision_table_equals_signals_row(panel: Panel) -> None:
    for strat in strategies():
        sig = compute_signals(strat, panel)
        table = DecisionTable(sig, strat.name, panel.dates)
        bare = DecisionTable(sig, strat.name, panel.dates, with_info=False)
        seen = 0
        for i, date in enumerate(panel.dates):
            got = table.at(i)
            want = sig.row(date) if date in sig.entry.index else None
            if got is None:
                assert want is None or not (want.decided or want.entries or want.exits or want.keeps)
                continue
            want.strategy = strat.name
            assert got == want
            without = bare.at(i)
            assert without.info == {} and (without.entries, without.exits) == (want.entries, want.exits)
            seen += 1
        assert seen > 20


def test_hybrid_account_values_and_trade_pnl_reconcile(panel: Panel) -> None:
    result = run_backtest(panel, strategies(), [StopLoss(), TimeStop()], cash=100_000.0, slippage_bps=5.0,
                          commission=0.0005, progress=False)
    eq = result.equity
    assert eq.index.equals(panel.dates)  # every UTC day: crypto trades on weekends
    assert (eq.index.day_of_week >= 5).any()
    trades = result.trades
    assert set(trades["strategy"]) == {"eq", "cx"}
    assert {"rebalance", "stop_loss", "signal"} <= set(trades["exit_reason"])
    assert eq["value"].iloc[-1] - 100_000.0 == pytest.approx(trades["pnl"].sum(), rel=1e-9)
    contributions = stats.strategy_pnl(trades, panel.close, eq.index)
    np.testing.assert_allclose(contributions.sum(axis=1), eq["value"] - 100_000.0, rtol=0, atol=1e-6)
    crypto = trades[trades["symbol"].isin(CRYPTO)]
    units = crypto["qty"].to_numpy() * 1e6
    assert len(units) and np.abs(units - np.round(units)).max() < 1e-6  # multiples of 1e-6
    equity_trades = trades[~trades["symbol"].isin(CRYPTO)]
    assert (equity_trades["qty"] == equity_trades["qty"].round()).all()
    assert (pd.DatetimeIndex(equity_trades["entry_date"]).day_of_week < 5).all()


def test_the_loop_trades_as_a_book_shown_every_price_of_each_day(panel: Panel) -> None:
    """run_backtest hands the book only the prices it reads (held, pending, stop-hit and entered
    symbols) and screens stops with arrays: the same book shown whole rows, checking every stop
    itself, makes the same fills, refusals and values (gaps, late listings and weekends included)."""
    rules = [StopLoss(), TimeStop(), MaxOrderValue(MaxOrderValue.Params(value=30_000.0))]
    result = run_backtest(panel, strategies(), rules, cash=100_000.0, slippage_bps=5.0, commission=0.0005,
                          progress=False)
    book = PortfolioBook(100_000.0, risk_rules=rules, slippage_bps=5.0, commission=0.0005)
    tables = [DecisionTable(compute_signals(s, panel), s.name, panel.dates, with_info=False) for s in strategies()]
    index = {str(s): j for j, s in enumerate(panel.close.columns)}
    opens, lows, closes = (f.to_numpy(dtype="float64", na_value=np.nan) for f in (panel.open, panel.low, panel.close))
    fills, refused, values = [], [], []
    for i, date in enumerate(panel.dates):
        fills += book.on_open(date, RowPrices(opens[i], index), RowPrices(lows[i], index))
        decisions = [d for d in (t.at(i, book.positions) for t in tables) if d is not None]
        book.on_close(date, RowPrices(closes[i], index), decisions, refused=refused)
        values.append(book.last_value)
    assert {f.reason for f in fills} >= {"stop_loss", "time_stop", "rebalance", "entry"} and refused
    assert result.fills == fills
    assert result.refused == refused
    assert result.equity["value"].tolist() == values


def test_equity_positions_keep_their_friday_close_over_the_weekend(panel: Panel) -> None:
    result = run_backtest(panel, strategies()[:1], [StopLoss(), TimeStop()], cash=100_000.0, progress=False)
    eq = result.equity
    assert eq.index.equals(panel.dates)
    weekend = eq[eq.index.day_of_week >= 5]
    assert len(weekend) > 50
    friday = eq.loc[weekend.index - pd.to_timedelta(weekend.index.day_of_week - 4, unit="D")]
    np.testing.assert_array_equal(weekend["value"].to_numpy(), friday["value"].to_numpy())


def test_outputs_are_written(panel: Panel, tmp_path: Path) -> None:
    result = run_backtest(panel, strategies(), [StopLoss(), TimeStop()], cash=100_000.0, progress=False)
    summary = write_outputs(tmp_path, result, panel, title="synthetic", meta={"profile": "synthetic"},
                            notes=["a note"])
    trades = pd.read_csv(tmp_path / "round_trips.csv")
    assert list(trades.columns) == TRADE_COLUMNS and len(trades) == len(result.trades)
    pandas_text = result.trades[TRADE_COLUMNS].to_csv(index=False, date_format="%Y-%m-%d")
    assert (tmp_path / "round_trips.csv").read_text() == pandas_text  # the fast writer writes what pandas would
    equity = pd.read_csv(tmp_path / "equity.csv")
    assert list(equity.columns) == ["date", "value", "cash", "exposure"]
    data = json.loads((tmp_path / "summary.json").read_text())
    assert data["total"]["final_value"] == pytest.approx(result.equity["value"].iloc[-1])
    assert set(data["strategies"]) == {"eq", "cx"}
    assert data["total"]["trades"] == data["strategies"]["eq"]["trades"] + data["strategies"]["cx"]["trades"]
    assert sum(s["pnl"] for s in data["strategies"].values()) == pytest.approx(data["total"]["pnl"])
    for key in ("cagr", "annual_volatility", "sharpe", "sortino", "max_drawdown", "peak_date", "win_rate",
                "profit_factor", "average_holding_days", "annual_turnover", "trades_by_exit_reason"):
        assert key in data["total"] and key in data["strategies"]["eq"]
    assert summary["periods_per_year"] == 365
    page = (tmp_path / "report.html").read_text()
    assert "<script src=" not in page and len(page) > 1_000_000  # plotly.js inlined
    for fig in ("equity", "drawdown", "monthly", "contribution"):
        assert f'id="fig-{fig}"' in page


class Peeking(MiniCryptoAdx):
    """Enters the day before a rise: reads tomorrow's close."""

    def signals(self, panel: Panel) -> Signals:
        sig = super().signals(panel)
        rising = panel.close.shift(-1) > panel.close
        return Signals(entry=rising.reindex_like(sig.entry).fillna(False), exit=sig.exit, keep=sig.keep,
                       weight=sig.weight, decided=sig.decided, exit_reason=sig.exit_reason)


def test_lookahead_check_refuses_a_peeking_strategy(panel: Panel) -> None:
    assert len(lookahead_check(strategies(), panel, n_cuts=2)) == 2
    with pytest.raises(StrategyError, match=r"'peek'.*first differing date 20\d\d-\d\d-\d\d"):
        lookahead_check([Peeking(name="peek", universe=CRYPTO, allocation=0.3)], panel, n_cuts=2)


class Counted(MiniEquityReversal):
    """Counts its runs."""

    runs = 0

    def signals(self, panel: Panel) -> Signals:
        type(self).runs += 1
        return super().signals(panel)


def test_lookahead_check_on_the_backtests_own_signals(panel: Panel) -> None:
    """Given the signals the backtest trades on (the whole window's, info left out), the check runs
    only the cuts and finds what it finds without them: nothing for honest strategies, the peek at
    the same cell."""
    honest = strategies()
    given = {s.name: compute_signals(s, panel, with_info=False) for s in honest}
    assert all(not sig.info for sig in given.values())
    assert lookahead_check(honest, panel, n_cuts=2, signals=given) == lookahead_check(honest, panel, n_cuts=2)
    counted = Counted(name="counted", universe=EQUITIES, allocation=0.5)
    traded = {"counted": compute_signals(counted, panel, with_info=False)}
    Counted.runs = 0
    lookahead_check([counted], panel, n_cuts=2, signals=traded)
    assert Counted.runs == 2  # the cuts only
    peek = Peeking(name="peek", universe=CRYPTO, allocation=0.3)
    with pytest.raises(StrategyError) as alone:
        lookahead_check([peek], panel, n_cuts=2)
    with pytest.raises(StrategyError) as reused:
        lookahead_check([peek], panel, n_cuts=2, signals={"peek": compute_signals(peek, panel, with_info=False)})
    assert str(reused.value) == str(alone.value)


def test_native_engine_trades_the_signals_it_is_given(panel: Panel) -> None:
    """BacktestRequest.signals stand for the strategies' runs: same result, no run of the strategy."""
    from hybrid_core.builtin.native_engine import NativeEngine
    from hybrid_core.contracts import BacktestRequest

    counted = Counted(name="counted", universe=EQUITIES, allocation=0.5)
    rules = [StopLoss(), TimeStop()]
    alone = NativeEngine().run(BacktestRequest(panel, [counted], rules))
    given = {"counted": compute_signals(counted, panel, with_info=False)}
    Counted.runs = 0
    reused = NativeEngine().run(BacktestRequest(panel, [counted], rules, signals=given))
    assert Counted.runs == 0
    assert len(alone.trades) > 10 and reused.trades.equals(alone.trades) and reused.equity.equals(alone.equity)


def test_survivorship_warning_for_fixed_equity_lists_only(panel: Panel) -> None:
    (warning,) = survivorship_warnings(strategies(), panel)
    assert "'eq'" in warning and "30 equities" in warning
    assert "1 of them list only during the window" in warning


def test_csv_writer_quotes_like_pandas(tmp_path: Path) -> None:
    frame = pd.DataFrame({"symbol": ["A", "B,C", 'q"x'], "day": pd.to_datetime(["2020-01-02", "2021-03-04",
                                                                                 "2021-03-05"]),
                          "price": [0.1 + 0.2, 1e-17, np.nan], "qty": [4335.0, 1.5, 2.0]})
    write_csv(tmp_path / "x.csv", frame)
    assert (tmp_path / "x.csv").read_text() == frame.to_csv(index=False, date_format="%Y-%m-%d")
    frame["note"] = pd.Series(["x", None, "y,z"], dtype=object)  # a missing text
    write_csv(tmp_path / "x.csv", frame, rows_per_part=2)
    assert (tmp_path / "x.csv").read_text() == frame.to_csv(index=False, date_format="%Y-%m-%d")


class PanelSource:
    """A data source over a panel (what `local` does with a file)."""

    kind = "data_source"

    def __init__(self, panel: Panel) -> None:
        self.long = panel.to_long()

    def fetch(self, symbols, start, end):  # type: ignore[no-untyped-def]
        rows = self.long[self.long["symbol"].isin(symbols)]
        if start is not None:
            rows = rows[rows["date"] >= start]
        return rows[rows["date"] <= end] if end is not None else rows


def test_warm_up_loads_sessions_before_the_start_and_trades_only_from_it(panel: Panel) -> None:
    from hybrid_core.engine.backtest import load_window

    start = pd.Timestamp("2020-07-01")
    strats = strategies()
    cold = load_window(PanelSource(panel), strats, start, None, warmup=0)
    assert cold.panel.dates[0] == start and cold.note is None
    warm = load_window(PanelSource(panel), strats, start, None, warmup=30)
    before = warm.panel.dates[warm.panel.dates < start]
    # 30 sessions of each strategy's own calendar: 30 NYSE sessions reach further back than 30 crypto days
    equity_days = warm.panel.select(EQUITIES, end=start - pd.Timedelta(days=1)).dates
    assert len(equity_days) == 30 and before[0] == equity_days[0] and len(before) > 30
    short = load_window(PanelSource(panel), strats, pd.Timestamp("2020-01-10"), None, warmup=30)
    assert short.note is not None and "fewer" in short.note  # the data starts too late: said, not hidden

    rules = [StopLoss(), TimeStop()]
    hot = run_backtest(warm.panel, strats, rules, cash=100_000.0, start=start, progress=False)
    assert hot.equity.index[0] == start and hot.equity.index.equals(cold.panel.dates)
    assert (hot.trades["entry_date"] > start).all()  # decided at the start's close at the earliest
    frozen = run_backtest(cold.panel, strats, rules, cash=100_000.0, progress=False)
    # warm indicators trade from the first days; a cold start waits for its windows to fill
    assert hot.trades["entry_date"].min() < frozen.trades["entry_date"].min()


def test_backtest_vets_orders_like_the_live_cycle(panel: Panel) -> None:
    from hybrid_core.builtin.guards import MaxOpenPositions

    free = run_backtest(panel, strategies(), [StopLoss(), TimeStop()], cash=100_000.0, progress=False)
    limited = run_backtest(panel, strategies(), [StopLoss(), TimeStop(), MaxOrderValue(MaxOrderValue.Params(
        value=20_000)), MaxOpenPositions(MaxOpenPositions.Params(limit=1))], cash=100_000.0, progress=False)
    assert limited.refused and len(limited.trades) < len(free.trades)
    assert any("max_order_value" in line for line in limited.refused)
    assert any("max_open_positions" in line for line in limited.refused)
    opened = limited.trades
    assert (opened["qty"] * opened["entry_price"] <= 20_000 * 1.5).all()  # entries vetted at the decision close


def test_a_bug_in_a_rule_stops_the_backtest_with_one_line_naming_it(panel: Panel) -> None:
    from hybrid_core.contracts import RiskRule
    from hybrid_core.errors import ComponentError

    class Buggy(RiskRule):
        name = "buggy"
        plugin = "acme"

        def vet(self, order, context):  # type: ignore[no-untyped-def]
            return {}["missing"]

    with pytest.raises(ComponentError) as failed:
        run_backtest(panel, strategies(), [StopLoss(), TimeStop(), Buggy()], cash=100_000.0, progress=False)
    message = str(failed.value)
    assert message.startswith("risk rule 'buggy' (Buggy, plugin acme) failed in vet(): KeyError")
    assert "\n" not in message


def test_float_texts_are_repr_for_every_kind_of_double() -> None:
    """The CSV writer's floats (orjson's digits, repr's notation) are repr's, byte for byte."""
    rng = np.random.default_rng(14)
    bits = rng.integers(0, 2**64, size=200_000, dtype=np.uint64).view("float64")  # any double, NaN and inf too
    scale = 10.0 ** rng.integers(0, 9, 100_000)
    prices = np.round(rng.lognormal(3.0, 2.0, 100_000) * scale) / scale  # values of a few digits
    edges = np.array([0.0, -0.0, 1e-4, 9.999999999999999e-05, 1e-5, 1.5e-7, 1e16, 9999999999999998.0, 1e22,
                      5e-324, 1.7976931348623157e308, np.inf, -np.inf, np.nan, 0.1 + 0.2, 4335.0, -1e-300])
    for numbers in (bits, prices, edges, prices[::3]):  # a strided column too
        assert float_texts(numbers) == ["" if v != v else repr(v) for v in numbers.tolist()]
    assert float_texts(np.zeros(0)) == []
