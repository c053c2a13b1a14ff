"""Small stand-ins for the two bundled strategies, written from STRATEGIES.md for engine tests.

They let the engine tests run without the plugins installed; the reference comparison
prefers the real plugins when they are importable.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hybrid_core.calendars import nyse_week_end_sessions
from hybrid_core.contracts import Panel, Signals, Strategy


class MiniEquityReversal(Strategy):
    """Weekly bottom-decile 5-session reversal, equal weights of ``allocation / n``."""

    decile = 0.10

    def signals(self, panel: Panel) -> Signals:
        close = panel.close
        dates = close.index
        score = close / close.shift(5) - 1.0  # the panel's dates are NYSE sessions
        rebal = pd.Series(dates.isin(nyse_week_end_sessions(dates[0], dates[-1])), index=dates)
        rebal.iloc[:5] = False
        values = score.to_numpy()
        selected = np.zeros(values.shape, dtype=bool)
        weight = np.zeros(values.shape)
        for i in np.flatnonzero(rebal.to_numpy()):
            valid = np.flatnonzero(~np.isnan(values[i]))
            if len(valid) == 0:
                continue
            n = max(1, int(np.floor(len(valid) * self.decile)))
            order = np.lexsort((np.array(close.columns)[valid], values[i, valid]))
            chosen = valid[order[:n]]
            selected[i, chosen] = True
            weight[i, chosen] = self.allocation / n
        sel = pd.DataFrame(selected, index=dates, columns=close.columns)
        exit_ = (~sel) & rebal.to_numpy()[:, None]
        weights = pd.DataFrame(weight, index=dates, columns=close.columns)
        return Signals(entry=sel, exit=exit_, keep=sel, weight=weights, decided=rebal,
                       exit_reason="rebalance", info={"score": score})


class MiniCryptoAdx(Strategy):
    """ADX(14) < 25 gated z-score (SMA20, population std20) reversal; exit at close >= SMA20."""

    def signals(self, panel: Panel) -> Signals:
        import talib

        cols = panel.close.columns
        entry = pd.DataFrame(False, index=panel.close.index, columns=cols)
        exit_ = entry.copy()
        for sym in cols:
            own = panel.close[sym].notna()
            c = panel.close.loc[own, sym]
            adx = pd.Series(talib.ADX(panel.high.loc[own, sym].to_numpy(), panel.low.loc[own, sym].to_numpy(),
                                      c.to_numpy(), timeperiod=14), index=c.index)
            sma = c.rolling(20).mean()
            std = c.rolling(20).std(ddof=0)
            z = (c - sma) / std
            entry.loc[own, sym] = ((adx < 25) & (z < -2.0)).to_numpy()
            exit_.loc[own, sym] = (c >= sma).to_numpy()
        weight = pd.DataFrame(self.allocation / len(cols), index=entry.index, columns=cols)
        decided = pd.Series(True, index=entry.index)
        return Signals(entry=entry, exit=exit_, keep=entry & False, weight=weight, decided=decided,
                       exit_reason="signal")
