"""Indicators of one symbol's own bars: TA-Lib ADX and a windowed mean / population std.

Each function takes the bars of ONE symbol with no gaps (rows without prices already
removed) and returns arrays of the same length, NaN during warm-up.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def adx(high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int) -> np.ndarray:
    """TA-Lib ``ADX(period)``: first value on bar ``2 * period`` (Wilder smoothing, long memory)."""
    if len(close) == 0:
        return np.empty(0)
    import talib  # on first use: every hybrid process loads this plugin, few compute an ADX (5 MiB)

    return talib.ADX(np.ascontiguousarray(high, dtype="float64"), np.ascontiguousarray(low, dtype="float64"),
                     np.ascontiguousarray(close, dtype="float64"), timeperiod=period)


def rolling_mean_std(values: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and population std (ddof=0) of the last ``window`` values, NaN before a full window.

    Each value is computed from its own window only (no running sums), so a short live
    lookback gives bit-for-bit the numbers of a 20-year backtest.
    """
    mean = np.full(len(values), np.nan)
    std = np.full(len(values), np.nan)
    if len(values) >= window:
        windows = sliding_window_view(np.asarray(values, dtype="float64"), window)
        mean[window - 1:] = windows.mean(axis=1)
        std[window - 1:] = windows.std(axis=1)
    return mean, std
