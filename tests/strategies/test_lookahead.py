"""No-lookahead check: the bundled strategies pass it on real data, peeking strategies are caught."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hybrid_crypto_adx import CryptoAdxReversion
from hybrid_equity_reversal import EquityReversal

from hybrid_core.builtin.local_data import LocalBars
from hybrid_core.contracts import Panel, Signals, Strategy
from hybrid_core.errors import StrategyError
from hybrid_core.testing import shared_data_dir
from hybrid_core.testing.lookahead import assert_no_lookahead, check_no_lookahead, default_cut_dates

DATA = shared_data_dir()
FILES = [str(DATA / "sp500_daily.parquet"), str(DATA / "crypto_daily.parquet")]
EQUITIES = ["AAPL", "AMZN", "BA", "CARR", "CVX", "F", "GE", "JPM", "KO", "MSFT", "OTIS", "PFE", "T", "XOM"]
PAIRS = ["BTC/USD", "ETH/USD"]


@pytest.fixture(scope="module")
def hybrid_panel() -> Panel:
    """14 equities (CARR and OTIS list in 2020) + BTC/ETH, 2019-01-01..2021-04-21, weekends included."""
    if not DATA.exists():
        pytest.fail(f"shared data missing: {DATA} (the tests need ../shared/data next to the repo)")
    bars = LocalBars(LocalBars.Params(path=FILES)).fetch(EQUITIES + PAIRS, pd.Timestamp("2019-01-01"),
                                                          pd.Timestamp("2021-04-21"))
    return Panel.from_long(bars)


TRICKY_CUTS = ["2019-04-18",  # Thursday before Good Friday: the week's rebalance day
               "2019-04-17",  # the Wednesday before it
               "2020-03-20", "2020-03-25",  # CARR/OTIS first days
               "2020-04-17", "2020-10-12",  # lost crypto days (no crypto row)
               "2020-11-28", "2021-04-20"]  # a Saturday; the day before the data ends


@pytest.mark.parametrize("strategy", [EquityReversal(universe=EQUITIES), CryptoAdxReversion()],
                         ids=["equity_reversal", "crypto_adx"])
def test_bundled_strategies_do_not_look_ahead(hybrid_panel, strategy):
    report = assert_no_lookahead(strategy, hybrid_panel, cut_dates=TRICKY_CUTS)
    assert report.ok and len(report.cut_dates) == len(TRICKY_CUTS)
    assert check_no_lookahead(strategy, hybrid_panel, n_cuts=8).ok
    assert report.message == f"{strategy.name}: no lookahead found ({len(TRICKY_CUTS)} cut date(s))"


def test_the_cut_runs_really_decide_on_the_cut_dates(hybrid_panel):
    """Guards the test above: the cut runs must contain decisions near the cuts, not just empty frames."""
    equity = EquityReversal(universe=EQUITIES).signals(hybrid_panel)
    assert equity.decided[pd.Timestamp("2019-04-18")] and equity.entry.loc["2019-04-18"].any()
    crypto = CryptoAdxReversion().signals(hybrid_panel)
    assert crypto.decided[pd.Timestamp("2020-11-28")] and not crypto.decided[pd.Timestamp("2020-04-17")]


class PeekingStrategy(Strategy):
    """Buys when TOMORROW's close is higher (uses close.shift(-1): lookahead on purpose)."""

    name = "peeking"

    def signals(self, panel: Panel) -> Signals:
        close = panel.close.reindex(columns=self.universe)
        entry = close.shift(-1) > close
        none = entry & False
        return Signals(entry=entry, exit=none, keep=none, weight=entry * 0.5,
                       decided=pd.Series(True, index=close.index))


class DataEndRebalance(Strategy):
    """Treats the last date of its data as a rebalance day (depends on where the data stops)."""

    name = "data_end_rebalance"

    def signals(self, panel: Panel) -> Signals:
        close = panel.close.reindex(columns=self.universe)
        decided = pd.Series(close.index.day_of_week == 4, index=close.index)
        decided.iloc[-1] = True
        flags = pd.DataFrame(False, index=close.index, columns=close.columns)
        return Signals(entry=flags, exit=flags, keep=flags, weight=flags * 0.0, decided=decided)


class WeightFromHistoryLength(Strategy):
    """Enters every day with a weight that depends on how much data there is (a subtle peek)."""

    name = "weight_from_length"

    def signals(self, panel: Panel) -> Signals:
        close = panel.close.reindex(columns=self.universe)
        entry = close.notna()
        weight = entry * (1.0 / len(close))
        return Signals(entry=entry, exit=entry & False, keep=entry & False, weight=weight,
                       decided=pd.Series(True, index=close.index))


def test_a_strategy_peeking_at_tomorrow_is_caught_at_the_first_cut(hybrid_panel):
    cuts = ["2019-06-03", "2020-01-06"]
    report = check_no_lookahead(PeekingStrategy(universe=["AAPL"]), hybrid_panel, cut_dates=cuts)
    assert not report.ok and report.field == "entry" and report.symbol == "AAPL"
    cut = pd.Timestamp(cuts[0])
    close = hybrid_panel.close["AAPL"].dropna()
    assert close.loc[close.index > cut].iloc[0] > close.loc[cut]  # AAPL rose next session
    assert report.cut_date == cut and report.date == cut
    assert (report.full_value, report.cut_value) == (True, False)
    with pytest.raises(AssertionError, match=r"peeking: lookahead: entry on 2019-06-03 AAPL is True"):
        assert_no_lookahead(PeekingStrategy(universe=["AAPL"]), hybrid_panel, cut_dates=cuts)


def test_rebalancing_on_the_last_row_of_the_data_is_caught_on_decided(hybrid_panel):
    wednesday = pd.Timestamp("2019-04-17")
    report = check_no_lookahead(DataEndRebalance(universe=["AAPL"]), hybrid_panel, cut_dates=[wednesday])
    assert not report.ok and report.field == "decided" and report.date == wednesday
    assert (report.full_value, report.cut_value) == (False, True)


def test_a_weight_that_depends_on_later_data_is_caught(hybrid_panel):
    report = check_no_lookahead(WeightFromHistoryLength(universe=["MSFT"]), hybrid_panel, n_cuts=3)
    assert not report.ok and report.field == "weight" and report.symbol == "MSFT"
    assert report.date == hybrid_panel.close["MSFT"].first_valid_index()


def test_a_strategy_that_raises_is_reported_as_strategy_error(hybrid_panel):
    class Broken(Strategy):
        """Always fails."""

        name = "broken"

        def signals(self, panel: Panel) -> Signals:
            raise ZeroDivisionError("boom")

    expected = r"broken: signals\(\) raised on the full panel: ZeroDivisionError: boom"
    with pytest.raises(StrategyError, match=expected):
        check_no_lookahead(Broken(universe=["AAPL"]), hybrid_panel)


def test_default_cut_dates_are_distinct_inner_dates(hybrid_panel):
    cuts = default_cut_dates(hybrid_panel, n_cuts=8)
    dates = hybrid_panel.dates
    assert len(cuts) == 8 and len(set(cuts)) == 8 and cuts == sorted(cuts)
    assert all(c in dates for c in cuts) and cuts[-1] < dates[-1] and cuts[0] > dates[0]
    assert {c.day_of_week for c in cuts} != {4}  # not only Fridays: mid-week cuts are the hard ones
    assert default_cut_dates(Panel(*(hybrid_panel.close.iloc[:2],) * 5)) == []
    assert np.all(np.diff([dates.get_loc(c) for c in cuts]) > 0)


def test_first_difference_is_the_earliest_compared_cell() -> None:
    """The comparison reports the earliest date, then the first column, among the cells it compares:
    weights only where the mask (an entry in either run) is set, and within the weight tolerance."""
    from hybrid_core.testing.lookahead import _first_difference

    index = pd.date_range("2021-01-04", periods=4)
    full = pd.DataFrame(np.zeros((4, 3)), index=index, columns=["A", "B", "C"])
    cut = full.copy()
    cut.iloc[3, 0] = 1.0
    cut.iloc[2, 2] = 1.0
    cut.iloc[2, 1] = 1.0
    assert _first_difference(full.astype(bool), cut.astype(bool)) == (2, 1)
    mask = np.zeros((4, 3), dtype=bool)
    mask[3, 0] = mask[2, 2] = True
    assert _first_difference(full, cut, mask=mask, weights=True) == (2, 2)
    assert _first_difference(full, full.copy(), weights=True) is None
    near = full + 0.5
    assert _first_difference(near, near * (1 + 1e-14), mask=np.ones((4, 3), bool), weights=True) is None
    nan = full.copy()
    nan.iloc[1, 0] = np.nan
    assert _first_difference(nan, nan.copy(), mask=np.ones((4, 3), bool), weights=True) is None
    assert _first_difference(nan, full, mask=np.ones((4, 3), bool), weights=True) == (1, 0)
