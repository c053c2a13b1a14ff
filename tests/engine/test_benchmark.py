"""The benchmark beside every backtest: equal-weight buy-and-hold of the universe, or one symbol."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from hybrid_core.cli import build_cli
from hybrid_core.contracts import Panel
from hybrid_core.engine.benchmark import benchmark_curve, buy_and_hold
from hybrid_core.errors import ProfileError
from hybrid_core.sample import sample_file

from .minimal_strategies import MiniEquityReversal

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "profiles" / "demo.yaml"


def test_equal_weight_buy_and_hold_by_hand() -> None:
    days = pd.date_range("2021-01-04", periods=4, freq="B")
    closes = pd.DataFrame({"A": [10.0, 11.0, np.nan, 12.0],     # a gap keeps the last close
                           "B": [np.nan, 50.0, 40.0, 60.0],     # lists on day 2: cash until then
                           "C": [np.nan] * 4}, index=days)      # never trades in the window: left out
    values = buy_and_hold(closes, days, 1000.0)
    # 500 in A from day 1; 500 waits in cash and buys B at 50 on day 2
    expected = [1000.0, 500 * 1.1 + 500, 500 * 1.1 + 500 * 0.8, 500 * 1.2 + 500 * 1.2]
    np.testing.assert_allclose(values.to_numpy(), expected)
    assert values.index.equals(days)


class FixedSource:
    """A data source answering from a long frame (the benchmark fetches symbols outside the panel)."""

    def __init__(self, bars: pd.DataFrame) -> None:
        self.bars = bars
        self.asked: list[list[str]] = []

    def fetch(self, symbols, start, end):  # type: ignore[no-untyped-def]
        self.asked.append(list(symbols))
        rows = self.bars[self.bars["symbol"].isin(symbols) & (self.bars["date"] >= start)
                         & (self.bars["date"] <= end)]
        return rows.reset_index(drop=True)


def _long(symbol: str, closes: list[float], days: pd.DatetimeIndex) -> pd.DataFrame:
    c = np.asarray(closes)
    return pd.DataFrame({"symbol": symbol, "date": days, "open": c, "high": c, "low": c, "close": c,
                         "volume": 1.0})


def test_universe_or_a_symbol_of_the_data() -> None:
    days = pd.date_range("2021-01-04", periods=3, freq="B")
    panel = Panel.from_long(pd.concat([_long("AAA", [1.0, 2.0, 3.0], days), _long("BBB", [4.0, 4.0, 2.0], days)]))
    source = FixedSource(_long("SPY", [100.0, 110.0, 99.0], days))
    strategy = MiniEquityReversal(name="eq", universe=["AAA", "BBB"])

    name, values = benchmark_curve("universe", panel, [strategy], source, days, 100.0)
    assert name == "equal-weight buy-and-hold of the 2 universe symbols"
    np.testing.assert_allclose(values.to_numpy(), [100.0, 150.0, 175.0])
    assert source.asked == []  # the universe needs nothing beyond the panel

    name, values = benchmark_curve("SPY", panel, [strategy], source, days, 100.0)
    assert name == "buy-and-hold of SPY" and source.asked == [["SPY"]]
    np.testing.assert_allclose(values.to_numpy(), [100.0, 110.0, 99.0])

    name, values = benchmark_curve("BBB", panel, [strategy], source, days, 100.0)  # in the panel already
    np.testing.assert_allclose(values.to_numpy(), [100.0, 100.0, 50.0])

    with pytest.raises(ProfileError, match=r"^backtest.benchmark: no bars for 'QQQ' between 2021-01-04 and "
                                           r"2021-01-06 in the profile's data; name a symbol"):
        benchmark_curve("QQQ", panel, [strategy], source, days, 100.0)


def _demo_profile(tmp_path: Path, **backtest: object) -> Path:
    data = yaml.safe_load(DEMO.read_text())
    data["data"]["params"]["path"] = str(sample_file("bars.parquet"))
    data["strategies"][0]["universe"] = str(sample_file("universe_equities.txt"))
    data["backtest"].update(backtest)
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_backtest_report_and_summary_show_the_benchmark(tmp_path: Path) -> None:
    profile = _demo_profile(tmp_path, benchmark="BTC/USD")
    out = tmp_path / "out"
    result = CliRunner().invoke(build_cli(), ["backtest", str(profile), "--start", "2020-06-01", "--end", "2021-04-21",
                                      "--out", str(out), "--no-progress", "--lookahead-cuts", "0"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    bench = summary["benchmark"]
    assert bench["name"] == "buy-and-hold of BTC/USD"
    equity = pd.read_csv(out / "equity.csv", parse_dates=["date"], index_col="date")
    bars = pd.read_parquet(sample_file("bars.parquet"))
    btc = bars[bars["symbol"] == "BTC/USD"].set_index("date")["close"].reindex(equity.index).ffill()
    assert bench["total_return"] == pytest.approx(btc.iloc[-1] / btc.iloc[0] - 1.0, rel=1e-12)
    total = summary["total"]
    assert total["excess_return"] == pytest.approx(total["total_return"] - bench["total_return"], rel=1e-12)
    assert "benchmark (buy-and-hold of BTC/USD)" in result.output
    page = (out / "report.html").read_text()
    assert 'id="fig-rolling_sharpe"' in page and '"name": "benchmark"' in page
    assert "Information ratio" in page and "benchmark: buy-and-hold of BTC/USD over the same window" in page


def test_an_unknown_benchmark_symbol_is_refused_in_one_line(tmp_path: Path) -> None:
    profile = _demo_profile(tmp_path, benchmark="SPY")
    out = tmp_path / "out"
    result = CliRunner().invoke(build_cli(), ["backtest", str(profile), "--start", "2021-01-04", "--end", "2021-04-21",
                                      "--out", str(out), "--no-progress", "--lookahead-cuts", "0"])
    assert result.exit_code != 0 and isinstance(result.exception, ProfileError)
    assert str(result.exception).startswith("backtest.benchmark: no bars for 'SPY' between 2021-01-04 and 2021-04-21")
    assert not (out / "summary.json").exists()
