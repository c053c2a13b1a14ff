"""The gate judges many bars a block of rows at a time: a bar's verdict does not depend on the
block it falls in, and matches the rules of the gate's table written over whole columns."""

from __future__ import annotations

import numpy as np
import pandas as pd

from hybrid_core.contracts import SMALL_CHUNK
from hybrid_core.data.quality import MAX_PRICE, MAX_VOLUME, MIN_PRICE, RANGE_TOLERANCE, bar_flags, gate_bars


def messy_bars(n: int, seed: int = 7) -> pd.DataFrame:
    """``n`` bars of 40 symbols, sorted by symbol and date, with every kind of bad price and volume
    sprinkled over them (NaN, zero, negative, tiny, huge, inf, high below low, open outside the range)."""
    rng = np.random.default_rng(seed)
    symbols = np.sort(rng.integers(0, 40, n))
    close = 20 + rng.random(n) * 80
    frame = pd.DataFrame({"symbol": pd.Categorical.from_codes(symbols, [f"S{i:02d}" for i in range(40)]),
                          "date": pd.Timestamp("2000-01-03") + pd.to_timedelta(np.arange(n) % 5000, unit="D"),
                          "open": close * 1.001, "high": close * 1.02, "low": close * 0.98, "close": close,
                          "volume": rng.random(n) * 1e6})
    bad = {"open": [np.nan, 0.0, -1.0, 1e-12, 2e9, 500.0], "high": [np.nan, 1.0], "low": [np.nan, 1e9 + 1],
           "close": [np.nan, -3.0, 1e-10], "volume": [np.inf, -5.0, 2e15, np.nan]}
    for column, values in bad.items():
        rows = rng.choice(n, size=n // 50, replace=False)
        frame.loc[rows, column] = rng.choice(values, size=len(rows))
    frame = frame.sort_values(["symbol", "date"], kind="stable").reset_index(drop=True)
    edges = [k * SMALL_CHUNK + d for k in range(1, n // SMALL_CHUNK + 1) for d in (-1, 0)]  # each block's ends
    frame.loc[edges, "high"] = 1.0  # below the low, and open and close above the high
    frame.loc[edges[::2], "volume"] = -1.0
    return frame


def test_price_checks_by_blocks_are_the_rules_on_whole_columns() -> None:
    frame = messy_bars(3 * SMALL_CHUNK + 123)
    o, h, low, c, v = (frame[k].to_numpy() for k in ("open", "high", "low", "close", "volume"))
    codes = frame["symbol"].cat.codes.to_numpy()
    flags = bar_flags(frame, codes, today=pd.Timestamp("2030-01-01"))
    prices = np.vstack([o, h, low, c])
    with np.errstate(invalid="ignore"):
        smallest, largest = prices.min(axis=0), prices.max(axis=0)
        want = {"missing_price": np.isnan(prices).any(axis=0), "non_positive_price": smallest <= 0,
                "absurd_value": (largest > MAX_PRICE) | ((smallest > 0) & (smallest < MIN_PRICE)) | np.isinf(v)
                | (v > MAX_VOLUME),
                "high_below_low": h < low, "negative_volume": v < 0,
                "outside_range": (o > h * (1 + RANGE_TOLERANCE)) | (c > h * (1 + RANGE_TOLERANCE))
                | (o < low * (1 - RANGE_TOLERANCE)) | (c < low * (1 - RANGE_TOLERANCE))}
    for kind, mask in want.items():
        assert mask.any() and (~mask).any(), kind  # the bars test both answers of every check
        np.testing.assert_array_equal(flags[kind], mask, err_msg=kind)


def test_a_day_lost_is_found_in_any_block() -> None:
    frame = messy_bars(2 * SMALL_CHUNK + 50)
    lost = [5, SMALL_CHUNK - 1, SMALL_CHUNK, 2 * SMALL_CHUNK + 49]
    frame.loc[lost, ["open", "high", "low", "close"]] = np.nan
    frame.loc[lost, "volume"] = 0.0
    result = gate_bars(frame, policy="drop", today=pd.Timestamp("2030-01-01"), log=False)
    assert result.lost_days == len(lost)
    kept = result.bars.set_index(["symbol", "date"]).index
    assert not kept.isin(frame.loc[lost].set_index(["symbol", "date"]).index).any()


def test_off_calendar_bars_are_found_with_or_without_a_time_of_day() -> None:
    """A Saturday bar and a holiday bar (New Year's Day 2021) are off the NYSE calendar, and so is,
    among midnight session dates, a bar stamped 16:00 on a session (not a session date); a crypto
    bar on a Saturday is not."""
    holidays = {pd.Timestamp("2020-12-25"), pd.Timestamp("2021-01-01")}
    days = [d for d in pd.bdate_range("2020-12-21", "2021-01-15") if d not in holidays]
    odd = [pd.Timestamp("2021-01-01"), pd.Timestamp("2021-01-09")]
    frame = pd.DataFrame({"symbol": ["KO"] * (len(days) + 2) + ["BTC/USD"], "date": [*days, *odd, odd[1]],
                          "open": 10.0, "high": 11.0, "low": 9.0, "close": 10.0, "volume": 100.0})
    for stamped in (False, True):
        bars = frame.copy()
        if stamped:
            bars.loc[3, "date"] += pd.Timedelta(hours=16)
        result = gate_bars(bars, policy="drop", today=pd.Timestamp("2021-06-01"), log=False)
        found = [p for p in result.problems if p.kind == "off_calendar"]
        assert [(p.symbol, p.count) for p in found] == [("KO", 2 + stamped)]
        assert found[0].date == (bars.loc[3, "date"] if stamped else odd[0])
