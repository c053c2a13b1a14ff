"""Bad inputs a new user or a careless operator would try: bar files, profiles, a profile for them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from core_helpers import SAMPLE_BARS

SYMBOLS = ["AAPL", "JPM", "MSFT", "BTC/USD"]
START, END = "2020-06-01", "2020-12-31"
BAD_DAY = pd.Timestamp("2020-09-15")


def good_bars() -> pd.DataFrame:
    """Adjusted bars of three equities and BTC/USD, mid to end 2020 (no adj_close column)."""
    from hybrid_core.data.files import read_bars_file
    from hybrid_core.data.quality import gate_bars

    raw = read_bars_file(SAMPLE_BARS, SYMBOLS, START, END)
    bars = gate_bars(raw, policy="drop", log=False).bars
    bars["symbol"] = bars["symbol"].astype(str)
    return bars.reset_index(drop=True)


def _at(bars: pd.DataFrame, symbol: str = "AAPL", day: pd.Timestamp = BAD_DAY) -> Any:
    return bars.index[(bars["symbol"] == symbol) & (bars["date"] == day)][0]


def _set(column: str, value: Any) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def edit(bars: pd.DataFrame) -> pd.DataFrame:
        bars.loc[_at(bars), column] = value
        return bars
    return edit


def _high_below_low(bars: pd.DataFrame) -> pd.DataFrame:
    i = _at(bars)
    bars.loc[i, "high"] = bars.loc[i, "low"] * 0.9
    return bars


def _close_above_high(bars: pd.DataFrame) -> pd.DataFrame:
    i = _at(bars)
    bars.loc[i, "close"] = bars.loc[i, "high"] * 1.05
    return bars


def _split(bars: pd.DataFrame) -> pd.DataFrame:
    later = (bars["symbol"] == "AAPL") & (bars["date"] >= BAD_DAY)
    for column in ("open", "high", "low", "close"):
        bars.loc[later, column] = bars.loc[later, column] / 10.0
    bars.loc[later, "volume"] = bars.loc[later, "volume"] * 10.0
    return bars


def _future(bars: pd.DataFrame) -> pd.DataFrame:
    extra = bars[bars["symbol"] == "AAPL"].tail(3).copy()
    extra["date"] = pd.to_datetime(["2031-01-06", "2031-01-07", "2031-01-08"])
    return pd.concat([bars, extra], ignore_index=True)


def _conflicting_duplicate(bars: pd.DataFrame) -> pd.DataFrame:
    row = bars.loc[[_at(bars)]].copy()
    row["close"] = row["close"] * 1.02
    return pd.concat([bars, row], ignore_index=True)


def _weekend_bar(bars: pd.DataFrame) -> pd.DataFrame:
    row = bars.loc[[_at(bars)]].copy()
    row["date"] = pd.Timestamp("2020-09-19")  # a Saturday
    return pd.concat([bars, row], ignore_index=True)


BAR_PROBLEMS: dict[str, tuple[Callable[[pd.DataFrame], pd.DataFrame], str]] = {
    "high_below_low": (_high_below_low, "AAPL 2020-09-15: high_below_low"),
    "close_outside_range": (_close_above_high, "AAPL 2020-09-15: outside_range"),
    "negative_volume": (_set("volume", -100.0), "AAPL 2020-09-15: negative_volume"),
    "empty_symbol": (_set("symbol", ""), "(blank symbol) 2020-09-15: empty_symbol"),
    "unadjusted_split": (_split, "AAPL 2020-09-15: unadjusted_split"),
    "future_dates": (_future, "AAPL 2031-01-06: future_date"),
    "conflicting_duplicate": (_conflicting_duplicate, "AAPL 2020-09-15: conflicting_duplicate"),
    "nan_price": (_set("open", np.nan), "AAPL 2020-09-15: missing_price"),
    "zero_price": (_set("low", 0.0), "AAPL 2020-09-15: non_positive_price"),
    "negative_price": (_set("close", -5.0), "AAPL 2020-09-15: non_positive_price"),
    "inf_price": (_set("high", np.inf), "AAPL 2020-09-15: absurd_value"),
    "absurd_magnitude": (_set("close", 1e300), "AAPL 2020-09-15: absurd_value"),
    "weekend_bar": (_weekend_bar, "AAPL 2020-09-19: off_calendar"),
}
"""Each bar-level problem of the issue: how to make it, and what the refusal line names."""


def write_csv(bars: pd.DataFrame, path: Path) -> Path:
    """``bars`` as a CSV file with YYYY-MM-DD dates."""
    out = bars.copy()
    out["date"] = pd.DatetimeIndex(out["date"]).strftime("%Y-%m-%d")
    out.to_csv(path, index=False)
    return path


def bars_profile(out_dir: Path, bars_path: Path | str, **data: Any) -> dict[str, Any]:
    """A profile trading ``SYMBOLS`` from ``bars_path``, every output in ``out_dir``."""
    return {
        "name": "fail-loud",
        "data": {"source": "local", "params": {"path": str(bars_path)}, **data},
        "strategies": [{"name": "equity_reversal", "allocation": 0.7, "universe": SYMBOLS[:3]},
                       {"name": "crypto_adx", "allocation": 0.3, "universe": ["BTC/USD"]}],
        "risk": [{"name": "stop_loss"}, {"name": "time_stop"},
                 {"name": "kill_switch", "params": {"path": str(out_dir / "KILL_SWITCH")}}],
        "outputs": {"trade_log": str(out_dir / "trades.csv"), "health_file": str(out_dir / "hybrid.health"),
                    "state_db": str(out_dir / "state" / "hybrid.sqlite")},
    }


def write_yaml(data: Any, path: Path) -> Path:
    """``data`` as YAML at ``path``."""
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


BILLION_LAUGHS = "\n".join(
    [f"{chr(97 + i)}: &{chr(97 + i)} [{', '.join(['*' + chr(96 + i)] * 9)}]" if i else
     'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]' for i in range(9)]
    + ["strategies: [{name: crypto_adx, allocation: 0.3}]"]) + "\n"
"""Nine levels of nine aliases: 387 million strings once expanded."""

UNIVERSE_BOMB = ('x: &x ["BTC/USD", "ETH/USD", "BTC/USD", "ETH/USD", "BTC/USD", "ETH/USD", "BTC/USD", "ETH/USD"]\n'
                 + "".join(f"{c}: &{c} [{', '.join(['*' + p] * 8)}]\n"
                           for p, c in zip("xyzuvw", "yzuvwq", strict=True))
                 + "strategies: [{name: crypto_adx, allocation: 0.3, universe: *q}]\n")
"""An alias bomb inside a strategy's universe."""
