"""The equity_reversal plugin as hybrid sees it: entry point, parameters, universe, errors."""

from __future__ import annotations

import csv

import attrs
import pandas as pd
import pytest
from equity_data import SP500
from hybrid_equity_reversal import EquityReversal
from hybrid_equity_reversal.strategy import default_sp500_universe

from hybrid_core.contracts import Panel
from hybrid_core.errors import ProfileError, StrategyError
from hybrid_core.plugins import build_plugin_host
from hybrid_core.testing import check_strategy, sample_panel


def test_registered_through_the_hybrid_entry_point_with_a_one_line_summary():
    host = build_plugin_host()
    spec = host.registry.get("strategy", "equity_reversal")
    assert spec.factory is EquityReversal
    assert spec.plugin == "equity_reversal" and spec.package == "hybrid-equity-reversal"
    assert "buys" in spec.summary.lower() and "sells" in spec.summary.lower()
    assert not [e for e in host.errors if e.name == "equity_reversal"]


def test_params_defaults_follow_the_contract():
    params = EquityReversal.Params()
    assert (params.decile, params.lookback_sessions, params.calendar) == (0.10, 5, "XNYS")
    strategy = EquityReversal()
    assert strategy.allocation == 0.7 and strategy.name == "equity_reversal"
    assert strategy.lookback() >= params.lookback_sessions + 1


@pytest.mark.parametrize("field, value", [("decile", 0.0), ("decile", 1.5), ("decile", "ten"),
                                          ("lookback_sessions", 0), ("lookback_sessions", 2.5),
                                          ("calendar", "NOT_A_CALENDAR")])
def test_invalid_params_are_refused_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        EquityReversal.Params(**{field: value})


def test_params_refuse_unknown_keys():
    with pytest.raises(TypeError):
        EquityReversal.Params(decil=0.2)  # type: ignore[call-arg]
    names = [a.name for a in attrs.fields(EquityReversal.Params)]
    assert names == ["decile", "lookback_sessions", "calendar"]


def test_profile_mistakes_are_profile_errors_naming_the_strategy():
    with pytest.raises(ProfileError, match="'equity_reversal'.*BTC/USD"):
        EquityReversal(universe=["AAPL", "BTC/USD"])
    with pytest.raises(ProfileError, match="allocation"):
        EquityReversal(universe=["AAPL"], allocation=0.0)


def test_default_universe_is_the_shipped_sp500_list_cut_from_the_shared_csv():
    with (SP500.parent / "sp500_constituents.csv").open(newline="") as handle:
        expected = sorted(row["Symbol"] for row in csv.DictReader(handle))
    assert default_sp500_universe() == expected
    assert EquityReversal().universe == expected and len(expected) == 505


def test_a_strategy_crash_surfaces_as_strategy_error_naming_it():
    dates = pd.DatetimeIndex(["2021-03-01", "2021-03-02"])
    garbage = pd.DataFrame({"AAPL": ["not", "a price"]}, index=dates, dtype=object)
    panel = Panel(garbage, garbage, garbage, garbage, garbage)
    with pytest.raises(StrategyError, match="'equity_reversal'"):
        EquityReversal(universe=["AAPL"]).signals(panel)


def test_empty_panel_and_unknown_symbols_give_no_decision():
    columns = ["symbol", "date", "open", "high", "low", "close", "volume"]
    empty = Panel.from_long(pd.DataFrame(columns=columns))
    signals = EquityReversal(universe=["AAPL"]).signals(empty)
    assert signals.entry.empty and not signals.decided.any()
    dates = pd.bdate_range("2021-03-01", "2021-03-19")
    close = pd.DataFrame({"MSFT": 100.0}, index=dates)
    signals = EquityReversal(universe=["AAPL"]).signals(Panel(close, close, close, close, close))
    assert not signals.decided.any() and list(signals.entry.columns) == ["AAPL"]


def test_honours_the_strategy_contract_on_the_bundled_sample_panel():
    """hybrid's own contract check: shapes, dtypes, weights, explain(), lookahead on 4 cuts."""
    check_strategy(EquityReversal, sample_panel())
