"""EquityReversal signals on real bars, checked against values computed here from the raw parquet."""

from __future__ import annotations

import math

import exchange_calendars as xcals
import numpy as np
import pandas as pd
import pytest
from equity_data import SP500, all_symbols, load_panel, raw_adj_close
from hybrid_equity_reversal import EquityReversal
from hybrid_equity_reversal.strategy import closes_at, select_lowest

from hybrid_core.contracts import Panel

FIRST_50 = all_symbols()[:50]  # A .. AVGO, the universe of the reference case eq50


def xnys_sessions(start: str, end: str) -> pd.DatetimeIndex:
    """NYSE sessions straight from exchange_calendars (independent of the plugin's helpers)."""
    sessions = xcals.get_calendar("XNYS", start="1999-01-01").sessions_in_range(start, end)
    sessions = pd.DatetimeIndex(sessions)
    return sessions.tz_localize(None) if sessions.tz is not None else sessions


def last_session_per_iso_week(sessions: pd.DatetimeIndex) -> list[pd.Timestamp]:
    weeks: dict[tuple[int, int], pd.Timestamp] = {}
    for day in sessions:
        iso = day.isocalendar()
        weeks[(iso[0], iso[1])] = max(day, weeks.get((iso[0], iso[1]), day))
    return sorted(weeks.values())


def expected_selection(adj: pd.DataFrame, sessions: pd.DatetimeIndex, day: pd.Timestamp,
                       decile: float = 0.10) -> tuple[dict[str, float], list[str]]:
    """Scores close_t / close_{t-5} - 1 (t-5 = 5th session before t) and the selected names."""
    earlier = sessions[sessions.get_loc(day) - 5]
    scores = {}
    for symbol in adj.columns:
        now, before = adj.at[day, symbol], adj.at[earlier, symbol]
        if not (np.isnan(now) or np.isnan(before)):
            scores[symbol] = now / before - 1.0
    n = max(1, math.floor(len(scores) * decile))
    ranked = sorted(scores, key=lambda s: (scores[s], s))
    return scores, ranked[:n]


@pytest.fixture(scope="module")
def spring_2019():  # type: ignore[no-untyped-def]
    """50 symbols over 2019-03..2019-05 (Good Friday 2019-04-19, Presidents/Memorial days nearby)."""
    start, end = "2019-03-01", "2019-05-31"
    return load_panel(FIRST_50, start, end), raw_adj_close(FIRST_50, start, end)


def test_rebalance_days_are_calendar_week_ends_and_good_friday_moves_it_to_thursday(spring_2019):
    panel, _ = spring_2019
    signals = EquityReversal(universe=FIRST_50).signals(panel)
    sessions = xnys_sessions("2019-03-01", "2019-05-31")
    expected = [d for d in last_session_per_iso_week(sessions) if d >= sessions[5]]
    assert list(signals.decided.index[signals.decided]) == expected
    assert pd.Timestamp("2019-04-18") in expected  # Thursday: Good Friday 2019-04-19 is a holiday
    assert not signals.decided.get(pd.Timestamp("2019-04-19"), False)
    off = ~signals.decided
    for frame in (signals.entry, signals.exit, signals.keep):
        assert not frame[off].to_numpy().any()


def test_scores_selection_and_weights_match_hand_computed_returns(spring_2019):
    panel, adj = spring_2019
    signals = EquityReversal(universe=FIRST_50, allocation=0.7).signals(panel)
    sessions = xnys_sessions("2019-03-01", "2019-05-31")
    for day in signals.decided.index[signals.decided]:
        scores, chosen = expected_selection(adj, sessions, day)
        got = signals.info["score"].loc[day].dropna()
        assert sorted(got.index) == sorted(scores)
        assert np.allclose(got[list(scores)].to_numpy(), list(scores.values()), rtol=1e-12, atol=0)
        assert sorted(signals.entry.columns[signals.entry.loc[day].to_numpy()]) == sorted(chosen)
        assert (signals.keep.loc[day] == signals.entry.loc[day]).all()
        assert (signals.exit.loc[day] == ~signals.entry.loc[day]).all()
        assert np.allclose(signals.weight.loc[day, chosen], 0.7 / len(chosen))
        ranks = signals.info["rank"].loc[day, chosen]
        assert sorted(ranks) == list(range(1, len(chosen) + 1))
    assert signals.exit_reason == "rebalance"


def test_good_friday_score_reaches_back_five_calendar_sessions(spring_2019):
    panel, adj = spring_2019
    signals = EquityReversal(universe=FIRST_50).signals(panel)
    thursday, five_back = pd.Timestamp("2019-04-18"), pd.Timestamp("2019-04-11")
    expected = adj.loc[thursday, "AAPL"] / adj.loc[five_back, "AAPL"] - 1.0
    assert signals.info["score"].at[thursday, "AAPL"] == pytest.approx(expected, rel=1e-12)


def test_score_uses_the_calendar_session_not_the_symbols_own_previous_bar(spring_2019):
    panel, adj = spring_2019
    friday = pd.Timestamp("2019-05-10")
    sessions = xnys_sessions("2019-03-01", "2019-05-31")
    five_back = sessions[sessions.get_loc(friday) - 5]
    gap_in_between = sessions[sessions.get_loc(friday) - 2]
    close = panel.close.copy()
    close.loc[gap_in_between, "AAPL"] = np.nan  # AAPL loses a bar between t-5 and t
    close.loc[five_back, "ABT"] = np.nan  # ABT has no bar on t-5 itself
    holed = Panel(panel.open, panel.high, panel.low, close, panel.volume)
    signals = EquityReversal(universe=FIRST_50).signals(holed)
    assert signals.info["score"].at[friday, "AAPL"] == pytest.approx(
        adj.at[friday, "AAPL"] / adj.at[five_back, "AAPL"] - 1.0, rel=1e-12)
    assert np.isnan(signals.info["score"].at[friday, "ABT"])
    assert not signals.entry.at[friday, "ABT"] and signals.exit.at[friday, "ABT"]


def test_late_listings_carr_and_otis_join_after_five_sessions_and_are_logged(log_lines):
    universe = ["AAPL", "CARR", "MSFT", "OTIS", "XOM"]
    panel = load_panel(universe, "2020-02-03", "2020-05-29")
    adj = raw_adj_close(universe, "2020-02-03", "2020-05-29")
    signals = EquityReversal(universe=universe).signals(panel)
    sessions = xnys_sessions("2020-02-03", "2020-05-29")
    for symbol in ("CARR", "OTIS"):
        first_bar = adj[symbol].first_valid_index()
        assert first_bar == pd.Timestamp("2020-03-19")
        can_score = sessions[sessions.get_loc(first_bar) + 5]
        scored = signals.info["score"][symbol].dropna().index
        assert scored[0] == min(d for d in signals.decided.index[signals.decided] if d >= can_score)
        before = signals.decided & (signals.decided.index < scored[0])
        # not scored -> never bought, but sold on every rebalance (in case it is held)
        assert not signals.entry.loc[before, symbol].any()
        assert signals.exit.loc[before, symbol].all()
        assert sum(symbol in line and "not scored" in line for line in log_lines) == 1
    assert not any("AAPL" in line and "not scored" in line for line in log_lines)


def test_real_tie_at_the_cut_is_broken_by_symbol_name():
    """2000-12-29: ED and GL both returned exactly 0.0 and share ranks 37/38 with n = 37."""
    panel = load_panel(None, "2000-12-18", "2000-12-29")
    adj = raw_adj_close(None, "2000-12-18", "2000-12-29")
    day, five_back = pd.Timestamp("2000-12-29"), pd.Timestamp("2000-12-21")
    for symbol in ("ED", "GL"):
        assert adj.at[day, symbol] / adj.at[five_back, symbol] - 1.0 == 0.0
    scores = (adj.loc[day] / adj.loc[five_back] - 1.0).dropna()
    n = max(1, math.floor(len(scores) * 0.10))
    lower = int((scores < 0.0).sum())
    assert lower < n < lower + 2 + int((scores == 0.0).sum())  # the cut falls inside the 0.0 tie
    signals = EquityReversal(universe=list(adj.columns)).signals(panel)
    tied = sorted(scores.index[scores == 0.0])
    expected_in = tied[: n - lower]
    chosen = set(signals.entry.columns[signals.entry.loc[day].to_numpy()])
    assert len(chosen) == n
    assert set(expected_in) <= chosen and not (set(tied) - set(expected_in)) & chosen
    assert "ED" in chosen and "GL" not in chosen


def test_synthetic_ties_are_broken_by_symbol_name_whatever_the_universe_order():
    dates = xnys_sessions("2021-03-01", "2021-03-12")
    symbols = ["ZZZ", "MMM", "AAA", "BBB", "CCC", "DDD", "EEE", "FFF", "GGG", "HHH", "III", "JJJ"]
    close = pd.DataFrame(100.0, index=dates, columns=sorted(symbols))
    close.loc[dates[-1]] = 95.0  # every symbol returns exactly -5%
    close.loc[dates[-1], "ZZZ"] = 90.0  # except ZZZ, the clear loser
    panel = Panel(close, close, close, close, close * 0)
    signals = EquityReversal(universe=symbols, params=EquityReversal.Params(decile=0.25)).signals(panel)
    friday = dates[-1]
    chosen = list(signals.entry.columns[signals.entry.loc[friday].to_numpy()])
    assert sorted(chosen) == ["AAA", "BBB", "ZZZ"]  # n = floor(12 * 0.25) = 3
    assert signals.info["rank"].at[friday, "ZZZ"] == 1 and signals.info["rank"].at[friday, "AAA"] == 2


def test_ranks_are_a_stable_sort_of_scores_on_rows_full_of_ties():
    """Ranks 1..n in score order, equal scores in column order: what a stable sort gives, row by row."""
    rng = np.random.default_rng(7)
    scores = rng.integers(-3, 4, size=(60, 40)).astype("float64") / 100  # 7 values: ties in every row
    scores[rng.random(scores.shape) < 0.2] = np.nan
    scores[5] = np.nan  # a row without any score
    scores[6] = 0.01  # a row of one tie
    scores[7, 0], scores[7, 1] = -0.0, 0.0  # equal for a sort too
    selected, ranks, n = select_lowest(scores, 0.25)
    for row, rank, chosen, count in zip(scores, ranks, selected, n, strict=True):
        valid = np.flatnonzero(~np.isnan(row))
        expected = np.full(len(row), np.nan)
        expected[valid[np.argsort(row[valid], kind="stable")]] = np.arange(1, len(valid) + 1)
        assert np.array_equal(rank, expected, equal_nan=True)
        assert count == (max(1, math.floor(len(valid) * 0.25)) if len(valid) else 0)
        assert np.array_equal(chosen, expected <= count)


@pytest.mark.parametrize("layout", ["F", "C"])
def test_closes_at_gathers_the_rows_and_symbols_asked_for(layout):
    """Any rows (-1: none) and symbols (absent: NaN) in the order asked, whatever the panel's layout;
    a close that is not positive is no close."""
    dates = xnys_sessions("2021-03-01", "2021-03-12")
    values = np.asarray(np.arange(1.0, 1 + 10 * 4).reshape(10, 4), order=layout)
    values[2, 1], values[3, 2], values[4, 3] = np.nan, 0.0, -1.0
    close = pd.DataFrame(values, index=dates, columns=["AAA", "BBB", "CCC", "DDD"])
    panel = Panel(close, close, close, close, close)
    rows = np.array([4, -1, 2, 3, 0])
    expected = np.array([[values[r, c] if r >= 0 and c >= 0 else np.nan for c in (3, -1, 1, 2, 0)] for r in rows])
    expected[~(expected > 0)] = np.nan
    got = closes_at(panel, rows, ["DDD", "XXX", "BBB", "CCC", "AAA"])
    assert np.array_equal(got, expected, equal_nan=True)
    assert np.array_equal(closes_at(panel, rows, close.columns), np.array(
        [[values[r, c] if r >= 0 and values[r, c] > 0 else np.nan for c in range(4)] for r in rows]), equal_nan=True)


def test_first_eq50_reference_rebalance_matches_the_independent_engine():
    """Reference eq50 (data from 2015-01-01): first buys on 2015-01-12 are ADM, AES, AIG, ATVI."""
    panel = load_panel(FIRST_50, "2015-01-01", "2015-01-16")
    signals = EquityReversal(universe=FIRST_50).signals(panel)
    first = signals.decided.index[signals.decided][0]
    assert first == pd.Timestamp("2015-01-09")  # 2015-01-02 has no 5 earlier sessions in the window
    assert sorted(signals.entry.columns[signals.entry.loc[first].to_numpy()]) == ["ADM", "AES", "AIG", "ATVI"]
    assert signals.info["score"].loc[first].notna().sum() == 49  # AMCR has no bars in 2015
    opening_friday = pd.Timestamp("2015-01-02")
    assert EquityReversal(universe=FIRST_50).explain(panel, signals, opening_friday) == [
        "equity_reversal: 2015-01-02 is a rebalance day but no symbol has a bar on it and 5 sessions "
        "earlier: no decision"]


def test_panel_with_weekend_crypto_dates_gives_the_same_decisions(spring_2019):
    panel, _ = spring_2019
    days = pd.date_range("2019-03-01", "2019-05-31", freq="D")
    widen = {name: getattr(panel, name).reindex(days) for name in ("open", "high", "low", "close", "volume")}
    widen["close"]["BTC/USD"] = 5000.0  # a crypto column with bars every day
    hybrid = Panel(**widen)
    on_equity = EquityReversal(universe=FIRST_50).signals(panel)
    on_hybrid = EquityReversal(universe=FIRST_50).signals(hybrid)
    assert list(on_hybrid.entry.index) == list(days)
    assert "BTC/USD" not in on_hybrid.entry.columns
    for name in ("entry", "exit", "keep"):
        assert np.array_equal(getattr(on_hybrid, name).loc[panel.dates].to_numpy(),
                              getattr(on_equity, name).to_numpy())
    assert on_hybrid.decided.sum() == on_equity.decided.sum()


def test_data_ending_mid_week_does_not_rebalance_and_explain_names_the_next_friday():
    panel = load_panel(FIRST_50, "2021-03-29", "2021-04-21")  # 2021-04-21 is a Wednesday
    strategy = EquityReversal(universe=FIRST_50)
    signals = strategy.signals(panel)
    last = panel.dates[-1]
    assert not signals.decided[last] and not signals.exit.loc[last].any()
    expected = ["equity_reversal: not a rebalance day (next: 2021-04-23)"]
    assert strategy.explain(panel, signals, last) == expected
    friday = pd.Timestamp("2021-04-16")
    n_scored = int(signals.info["score"].loc[friday].notna().sum())
    line = strategy.explain(panel, signals, friday)[0]
    assert line.startswith(f"equity_reversal: rebalance on 2021-04-16: {n_scored // 10} of {n_scored} scored")


def test_live_window_of_lookback_sessions_decides_like_the_full_history():
    full_panel = load_panel(FIRST_50, "2020-01-01", "2020-12-31")
    strategy = EquityReversal(universe=FIRST_50)
    full = strategy.signals(full_panel)
    for day in full.decided.index[full.decided][-10:]:
        window = full_panel.select(FIRST_50, start=None, end=day)
        cut = pd.DatetimeIndex(window.dates[-strategy.lookback():])
        live = strategy.signals(window.select(FIRST_50, start=cut[0]))
        assert live.decided[day]
        for name in ("entry", "exit", "keep", "weight"):
            pd.testing.assert_series_equal(getattr(live, name).loc[day], getattr(full, name).loc[day])


def test_union_of_equity_dates_is_exactly_the_xnys_sessions_and_weeks_end_on_their_last_one():
    """The whole shared file: 5,402 dates = XNYS sessions 1999-11-01..2021-04-21 (no gaps, no extras)."""
    dates = pd.DatetimeIndex(sorted(pd.read_parquet(SP500, columns=["date"])["date"].unique()))
    sessions = xnys_sessions("1999-11-01", "2021-04-21")
    assert len(dates) == 5402 and dates.equals(sessions)
    close = pd.DataFrame({"AAPL": np.linspace(10.0, 20.0, len(dates))}, index=dates)
    signals = EquityReversal(universe=["AAPL"]).signals(Panel(close, close, close, close, close))
    decided = list(signals.decided.index[signals.decided])
    week_ends = last_session_per_iso_week(xnys_sessions("1999-11-01", "2021-05-07"))  # past the data end
    weekly = [d for d in week_ends if sessions[5] <= d <= sessions[-1]]
    assert decided == weekly and len(decided) == 1119
    assert pd.Timestamp("2021-04-21") not in decided  # the data ends on a Wednesday


def test_week_ends_of_the_whole_calendar_are_the_last_session_of_each_iso_week():
    """The core's last_sessions_of_weeks over every NYSE session (ISO weeks across year ends, weeks 53,
    holiday Fridays), in any order and with repeats, against isocalendar() grouping here."""
    from hybrid_core.calendars import last_sessions_of_weeks, nyse_sessions

    sessions = nyse_sessions()
    expected = pd.DatetimeIndex(last_session_per_iso_week(sessions))
    assert last_sessions_of_weeks(sessions).equals(expected)
    shuffled = sessions[np.random.default_rng(3).permutation(len(sessions))].append(sessions[:40])
    assert last_sessions_of_weeks(shuffled).equals(expected)
    assert pd.Timestamp("2020-12-31") in expected and pd.Timestamp("2021-01-01") not in expected  # a holiday


def test_every_eq50_reference_entry_and_rebalance_exit_follows_a_decision_here():
    """Reference eq50_2015 (Backtrader, 1,326 trades): each buy and each `rebalance` sell at an
    open follows this strategy's entry / exit on the previous session."""
    trades = pd.read_csv(SP500.parents[1] / "reference" / "eq50_2015_trades.csv",
                         parse_dates=["entry_date", "exit_date"])
    panel = load_panel(FIRST_50, "2015-01-01", "2021-04-21")
    signals = EquityReversal(universe=FIRST_50).signals(panel)
    dates = panel.dates
    decided_before = dates[dates.get_indexer(pd.DatetimeIndex(trades["entry_date"])) - 1]
    assert signals.decided.loc[decided_before].all()
    entered = signals.entry.stack()
    assert all(entered[(d, s)] for d, s in zip(decided_before, trades["symbol"], strict=True))
    sold = trades[trades["exit_reason"] == "rebalance"]
    sold_before = dates[dates.get_indexer(pd.DatetimeIndex(sold["exit_date"])) - 1]
    exited = signals.exit.stack()
    assert len(sold) > 900 and all(exited[(d, s)] for d, s in zip(sold_before, sold["symbol"], strict=True))
