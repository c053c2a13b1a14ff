"""The crypto_adx plugin as hybrid sees it: entry point, parameters, universe, errors."""

from __future__ import annotations

import attrs
import numpy as np
import pandas as pd
import pytest
from hybrid_crypto_adx import CryptoAdxReversion

from hybrid_core.contracts import Panel
from hybrid_core.errors import ProfileError, StrategyError
from hybrid_core.plugins import build_plugin_host
from hybrid_core.testing import check_strategy, sample_panel


def test_registered_through_the_hybrid_entry_point_with_a_one_line_summary():
    host = build_plugin_host()
    spec = host.registry.get("strategy", "crypto_adx")
    assert spec.factory is CryptoAdxReversion
    assert spec.plugin == "crypto_adx" and spec.package == "hybrid-crypto-adx"
    assert "buys" in spec.summary.lower() and "sells" in spec.summary.lower()
    assert not [e for e in host.errors if e.name == "crypto_adx"]


def test_params_defaults_follow_the_contract():
    params = CryptoAdxReversion.Params()
    assert (params.adx_period, params.adx_max, params.sma_period, params.z_entry) == (14, 25.0, 20, -2.0)
    names = [a.name for a in attrs.fields(CryptoAdxReversion.Params)]
    assert names == ["adx_period", "adx_max", "sma_period", "z_entry"]
    strategy = CryptoAdxReversion()
    assert strategy.universe == ["BTC/USD", "ETH/USD"] and strategy.allocation == 0.3
    assert strategy.lookback() == 28 * 14 + 20


@pytest.mark.parametrize("field, value", [("adx_period", 1), ("adx_period", 14.5), ("adx_max", 0.0),
                                          ("adx_max", 150.0), ("adx_max", float("nan")), ("sma_period", 0),
                                          ("z_entry", 0.5), ("z_entry", "low")])
def test_invalid_params_are_refused_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        CryptoAdxReversion.Params(**{field: value})


def test_profile_mistakes_are_profile_errors_naming_the_strategy():
    with pytest.raises(ProfileError, match="'crypto_adx'.*AAPL"):
        CryptoAdxReversion(universe=["BTC/USD", "AAPL"])
    with pytest.raises(ProfileError, match="allocation"):
        CryptoAdxReversion(allocation=1.5)


def test_weight_is_the_allocation_split_over_the_whole_universe():
    days = pd.date_range("2021-01-01", periods=60, freq="D")
    falling = pd.Series(100.0, index=days)
    falling.iloc[-1] = 80.0  # a sharp drop after a flat month: z far below -2
    close = pd.DataFrame({"BTC/USD": falling, "ETH/USD": 100.0 + (days.day_of_year % 2), "SOL/USD": 50.0})
    high, low = close * 1.01, close * 0.99
    strategy = CryptoAdxReversion(universe=["BTC/USD", "ETH/USD", "SOL/USD"], allocation=0.3)
    signals = strategy.signals(Panel(close, high, low, close, close * 0))
    assert signals.entry.at[days[-1], "BTC/USD"]
    assert signals.weight.at[days[-1], "BTC/USD"] == pytest.approx(0.1)


def test_a_strategy_crash_surfaces_as_strategy_error_naming_it():
    days = pd.date_range("2021-01-01", periods=3, freq="D")
    garbage = pd.DataFrame({"BTC/USD": ["x", "y", "z"]}, index=days, dtype=object)
    with pytest.raises(StrategyError, match="'crypto_adx'"):
        CryptoAdxReversion().signals(Panel(garbage, garbage, garbage, garbage, garbage))


def test_non_positive_prices_are_not_bars():
    days = pd.date_range("2021-01-01", periods=40, freq="D")
    close = pd.DataFrame({"BTC/USD": 100.0 + (days.day % 3)}, index=days)
    close.iloc[35, 0] = 0.0
    panel = Panel(close, close + 1, close - 1, close, close)
    signals = CryptoAdxReversion(universe=["BTC/USD"]).signals(panel)
    assert not signals.decided.iloc[35] and np.isnan(signals.info["sma"].iat[35, 0])


def test_honours_the_strategy_contract_on_the_bundled_sample_panel():
    """hybrid's own contract check: shapes, dtypes, weights, explain(), lookahead on 4 cuts."""
    check_strategy(CryptoAdxReversion, sample_panel())
