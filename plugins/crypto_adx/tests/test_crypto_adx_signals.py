"""CryptoAdxReversion signals on real BTC/ETH bars, checked against TA-Lib and pandas called here."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import talib
from crypto_data import HYBRID_REFERENCE_TRADES, PAIRS, load_panel, raw_rows
from hybrid_crypto_adx import CryptoAdxReversion

from hybrid_core.contracts import Panel

MISSING_DAYS = pd.DatetimeIndex(["2020-04-17", "2020-10-09", "2020-10-12", "2020-10-13"])


def expected_indicators(symbol: str, start: str | None = None, end: str | None = None) -> pd.DataFrame:
    """ADX(14), SMA(20), std(20, ddof=0) and z on the pair's rows that have prices."""
    rows = raw_rows(symbol, start, end).dropna(subset=["high", "low", "close"])
    out = pd.DataFrame(index=rows.index)
    out["close"] = rows["close"]
    out["adx"] = talib.ADX(rows["high"].to_numpy(), rows["low"].to_numpy(), rows["close"].to_numpy(), 14)
    out["sma"] = rows["close"].rolling(20).mean()
    out["z"] = (rows["close"] - out["sma"]) / rows["close"].rolling(20).std(ddof=0)
    return out


@pytest.fixture(scope="module")
def window_2016():  # type: ignore[no-untyped-def]
    """The hybrid reference window: bars from 2016-01-01 only (indicators warm up inside it)."""
    panel = load_panel("2016-01-01", "2021-04-21")
    return panel, CryptoAdxReversion(allocation=0.3).signals(panel)


@pytest.mark.parametrize("symbol", PAIRS)
def test_indicators_and_flags_match_talib_and_pandas(window_2016, symbol):
    _, signals = window_2016
    expected = expected_indicators(symbol, "2016-01-01", "2021-04-21")
    for name in ("close", "adx", "sma", "z"):
        got = signals.info[name][symbol].loc[expected.index]
        np.testing.assert_allclose(got.to_numpy(), expected[name].to_numpy(), rtol=1e-9, atol=1e-9,
                                   equal_nan=True, err_msg=name)
    entry = (expected["adx"] < 25.0) & (expected["z"] < -2.0)
    exit_ = expected["close"] >= expected["sma"]
    assert entry.sum() > 5 and exit_.sum() > 500  # the test exercises both signals
    assert (signals.entry[symbol].loc[expected.index] == entry).all()
    assert (signals.exit[symbol].loc[expected.index] == exit_).all()
    assert np.allclose(signals.weight[symbol][signals.entry[symbol]], 0.3 / 2)
    assert signals.decided.loc[expected.index].all() and signals.exit_reason == "signal"
    assert not signals.keep.to_numpy().any()


def test_the_eight_lost_rows_are_not_bars(window_2016):
    panel, _ = window_2016
    days = pd.date_range("2016-01-01", "2021-04-21", freq="D")
    daily = Panel(**{n: getattr(panel, n).reindex(days) for n in ("open", "high", "low", "close", "volume")})
    signals = CryptoAdxReversion().signals(daily)
    assert not signals.decided.loc[MISSING_DAYS].any()
    for frame in (signals.entry, signals.exit):
        assert not frame.loc[MISSING_DAYS].to_numpy().any()
    for symbol in PAIRS:
        rows = raw_rows(symbol, "2016-01-01", "2021-04-21")
        assert rows.loc[MISSING_DAYS, "close"].isna().all()
        closes = rows["close"].dropna()
        after = pd.Timestamp("2020-10-14")  # three lost days just before: the window spans 23 days
        last_20 = closes.loc[:after].iloc[-20:]
        assert last_20.index[0] == pd.Timestamp("2020-09-22")
        assert signals.info["sma"].at[after, symbol] == pytest.approx(last_20.mean(), rel=1e-12)
        expected = expected_indicators(symbol, "2016-01-01", "2021-04-21")
        assert signals.info["adx"].at[after, symbol] == pytest.approx(expected.at[after, "adx"], rel=1e-12)


def test_a_gap_in_one_pair_only_leaves_the_other_deciding():
    panel = load_panel("2019-01-01", "2019-12-31")
    gap = pd.Timestamp("2019-06-05")
    frames = {n: getattr(panel, n).copy() for n in ("open", "high", "low", "close", "volume")}
    for frame in frames.values():
        frame.loc[gap, "BTC/USD"] = np.nan
    signals = CryptoAdxReversion().signals(Panel(**frames))
    assert signals.decided[gap]
    assert np.isnan(signals.info["adx"].at[gap, "BTC/USD"]) and not signals.exit.at[gap, "BTC/USD"]
    assert not np.isnan(signals.info["adx"].at[gap, "ETH/USD"])
    rows = raw_rows("BTC/USD", "2019-01-01", "2019-12-31").drop(index=gap)
    adx = talib.ADX(rows["high"].to_numpy(), rows["low"].to_numpy(), rows["close"].to_numpy(), 14)
    following = pd.Timestamp("2019-06-06")
    assert signals.info["adx"].at[following, "BTC/USD"] == pytest.approx(adx[rows.index.get_loc(following)])


def test_warm_up_gives_no_signal_and_one_log_line_per_pair(log_lines):
    panel = load_panel("2015-08-07", "2015-09-30")  # ETH's first bars; BTC starts warming up too
    signals = CryptoAdxReversion().signals(panel)
    for symbol in PAIRS:
        adx = signals.info["adx"][symbol]
        assert adx.isna().sum() == 27 and adx.iloc[27:].notna().all()
        assert not signals.entry[symbol].iloc[:27].any()
        assert not signals.exit[symbol].iloc[:19].any()
        assert sum(symbol in line and "warming up" in line for line in log_lines) == 1


def test_too_short_history_never_crashes_and_warns(log_lines):
    panel = load_panel("2021-01-01", "2021-01-10")
    signals = CryptoAdxReversion().signals(panel)
    assert not signals.entry.to_numpy().any() and not signals.exit.to_numpy().any()
    assert signals.decided.all()
    assert sum("needs 28 bars" in line for line in log_lines) == 2


def test_live_lookback_window_gives_the_full_history_adx_and_decisions():
    full_panel = load_panel()  # from 2014-09-17
    strategy = CryptoAdxReversion()
    full = strategy.signals(full_panel)
    bars = strategy.lookback()
    assert bars >= 400
    for day in full_panel.dates[800::97]:
        window = full_panel.select(PAIRS, end=day)
        live = strategy.signals(window.select(PAIRS, start=window.dates[-bars]))
        for symbol in PAIRS:
            assert abs(live.info["adx"].at[day, symbol] - full.info["adx"].at[day, symbol]) < 1e-6
            assert live.info["sma"].at[day, symbol] == full.info["sma"].at[day, symbol]
        assert (live.entry.loc[day] == full.entry.loc[day]).all()
        assert (live.exit.loc[day] == full.exit.loc[day]).all()


def test_hybrid_reference_crypto_trades_start_and_end_on_these_signals(window_2016):
    """The independent engine's crypto trades (hybrid_2016): each entry/exit follows a signal."""
    panel, signals = window_2016
    reference = pd.read_csv(HYBRID_REFERENCE_TRADES, parse_dates=["entry_date", "exit_date"])
    crypto = reference[reference["symbol"].isin(PAIRS)]
    assert len(crypto) == 45
    for trade in crypto.itertuples():
        bars = panel.close[trade.symbol].dropna().index
        decided_at = bars[bars.get_loc(trade.entry_date) - 1]
        assert signals.entry.at[decided_at, trade.symbol], trade
        if trade.exit_reason == "signal":
            assert signals.exit.at[bars[bars.get_loc(trade.exit_date) - 1], trade.symbol], trade


def test_explain_states_the_gate_and_the_z_score(window_2016):
    panel, signals = window_2016
    strategy = CryptoAdxReversion()
    adx = signals.info["adx"]["BTC/USD"]
    closed_day = adx[adx >= 25].index[0]
    line = strategy.explain(panel, signals, closed_day)[0]
    assert line.startswith(f"crypto_adx: BTC/USD ADX {adx[closed_day]:.1f} >= 25, gate closed")
    entry_day = signals.entry.index[signals.entry["ETH/USD"].to_numpy()][0]
    line = strategy.explain(panel, signals, entry_day)[1]
    assert re.match(r"crypto_adx: ETH/USD ADX \d+\.\d < 25, gate open; z -\d+\.\d\d < -2: entry", line)
    lost = strategy.explain(panel, signals, pd.Timestamp("2020-04-17"))
    assert lost == ["crypto_adx: BTC/USD has no bar on 2020-04-17: no decision",
                    "crypto_adx: ETH/USD has no bar on 2020-04-17: no decision"]


def test_hybrid_panel_with_equity_sessions_gives_the_same_crypto_decisions(window_2016):
    panel, signals = window_2016
    days = pd.date_range("2016-01-01", "2021-04-21", freq="D")
    frames = {n: getattr(panel, n).reindex(days) for n in ("open", "high", "low", "close", "volume")}
    weekdays = days[days.day_of_week < 5]
    frames["close"]["AAPL"] = pd.Series(100.0, index=weekdays)  # an equity with bars on weekdays
    hybrid = CryptoAdxReversion().signals(Panel(**frames))
    assert list(hybrid.entry.columns) == PAIRS
    assert not hybrid.decided.loc[MISSING_DAYS].any()  # equity-only dates: no crypto decision
    on_bars = signals.entry.index
    assert (hybrid.entry.loc[on_bars] == signals.entry).all().all()
    assert (hybrid.exit.loc[on_bars] == signals.exit).all().all()
