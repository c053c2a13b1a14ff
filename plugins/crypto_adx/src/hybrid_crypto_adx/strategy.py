"""CryptoAdxReversion: the ADX-gated crypto mean reversion of STRATEGIES.md, vectorised per symbol.

Indicators are computed on each symbol's own bars: a row without a positive high, low and
close is not a bar, so it counts in no indicator window; results are realigned on the
panel's dates (NaN where the symbol has no bar, hence no signal there).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np
import pandas as pd
from loguru import logger

from hybrid_core.contracts import Panel, Signals, Strategy, is_crypto
from hybrid_core.errors import ProfileError

from .indicators import adx, rolling_mean_std

ADX_MEMORY_PERIODS = 28
"""Live lookback in ADX periods. TA-Lib's ADX is a double Wilder smoothing that forgets its
start as roughly (1 - 1/period) ** bars; on BTC/ETH 2015-2021 a 400-bar window gives the
full-history ADX within 1e-9 (120 bars: 0.18, 300 bars: 1.5e-6)."""


def _whole_number_at_least_2(instance: Any, attribute: attrs.Attribute, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 2:
        raise ValueError(f"{attribute.name} must be a whole number >= 2, got {value!r}")


def _finite_number(instance: Any, attribute: attrs.Attribute, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{attribute.name} must be a finite number, got {value!r}")


def _adx_level(instance: Any, attribute: attrs.Attribute, value: float) -> None:
    _finite_number(instance, attribute, value)
    if not 0 < value <= 100:
        raise ValueError(f"{attribute.name} must be in (0, 100] (ADX is a 0-100 index), got {value!r}")


def _negative(instance: Any, attribute: attrs.Attribute, value: float) -> None:
    _finite_number(instance, attribute, value)
    if not value < 0:
        raise ValueError(f"{attribute.name} must be negative (a close below its mean), got {value!r}")


class CryptoAdxReversion(Strategy):
    """Buys a crypto pair closing 2 std under its 20-bar mean while ADX(14) < 25; sells at the mean again.

    - Indicators at close t, on the symbol's own bars: ``ADX(14)`` from TA-Lib on
      high/low/close, ``SMA(20)`` and the 20-bar population std of close,
      ``z = (close - SMA20) / std20``.
    - Entry (the engine adds "not in a position"): ``ADX < adx_max`` and ``z < z_entry``,
      with weight ``allocation / len(universe)``.
    - Exit (the engine adds "in a position"): ``close >= SMA20``; ``exit_reason = "signal"``.
    - ``decided`` is True on every date where a universe pair has a bar.
    """

    name = "crypto_adx"

    @attrs.define(kw_only=True)
    class Params:
        """Parameters of :class:`CryptoAdxReversion` (defaults from STRATEGIES.md)."""

        adx_period: int = attrs.field(default=14, validator=_whole_number_at_least_2)
        """TA-Lib ADX period (bars); its first value comes on bar 2 * adx_period."""
        adx_max: float = attrs.field(default=25.0, validator=_adx_level)
        """Regime gate: new entries only while ADX < adx_max (a ranging market)."""
        sma_period: int = attrs.field(default=20, validator=_whole_number_at_least_2)
        """Bars of the mean and population std of close behind the z-score and the exit."""
        z_entry: float = attrs.field(default=-2.0, validator=_negative)
        """Entry when z = (close - SMA) / std is below this (strictly)."""

    def __init__(self, params: Any = None, *, name: str = "", universe: Sequence[str] | None = None,
                 allocation: float = 0.3) -> None:
        super().__init__(params, name=name or self.name, universe=universe, allocation=allocation)
        equities = [s for s in self.universe if not is_crypto(s)]
        if equities:
            raise ProfileError(f"strategy {self.name!r} trades crypto pairs written BASE/QUOTE (BTC/USD), "
                               f"but its universe holds {', '.join(equities[:5])}; fix the symbols or move "
                               f"them to an equity strategy")

    def default_universe(self) -> Sequence[str]:
        """Bitcoin and Ether against the US dollar."""
        return ["BTC/USD", "ETH/USD"]

    def lookback(self) -> int:
        """Bars for one live decision whose ADX matches the full-history ADX (see ADX_MEMORY_PERIODS)."""
        return ADX_MEMORY_PERIODS * self.params.adx_period + self.params.sma_period

    # -- signals -------------------------------------------------------------------------

    def signals(self, panel: Panel) -> Signals:
        """Entry/exit flags on every date of ``panel``; decided wherever a universe pair has a bar.

        Errors in here reach the engine as a StrategyError naming the strategy (the core wraps it)."""
        symbols = sorted(set(self.universe))
        index = panel.dates
        prices = {f: getattr(panel, f).reindex(columns=symbols).to_numpy(dtype="float64")
                  for f in ("high", "low", "close")}
        with np.errstate(invalid="ignore"):
            is_bar = np.logical_and.reduce([np.isfinite(v) & (v > 0) for v in prices.values()])
        shape = (len(index), len(symbols))
        adx_v, sma, std = np.full(shape, np.nan), np.full(shape, np.nan), np.full(shape, np.nan)
        for col, symbol in enumerate(symbols):  # one TA-Lib call per symbol, vectorised over its bars
            rows = np.flatnonzero(is_bar[:, col])
            adx_v[rows, col] = adx(prices["high"][rows, col], prices["low"][rows, col],
                                   prices["close"][rows, col], self.params.adx_period)
            sma[rows, col], std[rows, col] = rolling_mean_std(prices["close"][rows, col],
                                                              self.params.sma_period)
            self._log_warm_up(symbol, index[rows], adx_v[rows, col], sma[rows, col])
        close = np.where(is_bar, prices["close"], np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = (close - sma) / std
            entry = (adx_v < self.params.adx_max) & (z < self.params.z_entry)
            exit_ = close >= sma
        weight = np.where(entry, self.allocation / len(symbols), 0.0) if symbols else np.zeros(shape)

        def frame(values: np.ndarray) -> pd.DataFrame:
            return pd.DataFrame(values, index=index, columns=pd.Index(symbols, name="symbol"))

        decided = pd.Series(is_bar.any(axis=1), index=index, name="decided")
        return Signals(entry=frame(entry), exit=frame(exit_), keep=frame(np.zeros(shape, bool)),
                       weight=frame(weight), decided=decided, exit_reason="signal",
                       info={"adx": frame(adx_v), "z": frame(z), "sma": frame(sma), "close": frame(close)})

    def _log_warm_up(self, symbol: str, dates: pd.DatetimeIndex, adx_values: np.ndarray,
                     sma_values: np.ndarray) -> None:
        """One log line for a symbol whose first bars cannot be judged yet.

        A warning when even its latest bar has no indicators (too short a history to decide);
        a debug line for the ordinary warm-up at the start of the panel.
        """
        unknown = np.isnan(adx_values) | np.isnan(sma_values)
        if not unknown.any():
            return
        need = 2 * self.params.adx_period
        if unknown[-1]:
            logger.warning("{strategy}: {symbol} has {n} bar(s) up to {last}: ADX({p}) needs {need} bars; no "
                           "signal until then", strategy=self.name, symbol=symbol, n=len(dates),
                           last=dates[-1].date(), p=self.params.adx_period, need=need)
        else:  # the normal warm-up at the start of a backtest or of a live lookback window
            logger.debug("{strategy}: {symbol}: no signal on its first {n} bar(s) ({first}..{last}): "
                         "ADX({p}) and SMA({s}) warming up", strategy=self.name, symbol=symbol,
                         n=int(unknown.sum()), first=dates[0].date(), last=dates[unknown][-1].date(),
                         p=self.params.adx_period, s=self.params.sma_period)

    # -- explain -------------------------------------------------------------------------

    def explain(self, panel: Panel, signals: Signals, date: pd.Timestamp) -> list[str]:
        """One line per pair: the gate (ADX vs adx_max), the z-score vs z_entry and the exit test."""
        date = pd.Timestamp(date)
        lines = []
        for symbol in signals.entry.columns:
            lines.append(f"{self.name}: {symbol} " + self._explain_one(signals, date, str(symbol)))
        return lines

    def _explain_one(self, signals: Signals, date: pd.Timestamp, symbol: str) -> str:
        if date not in signals.entry.index or np.isnan(signals.info["close"].at[date, symbol]):
            return f"has no bar on {date.date()}: no decision"
        value = {k: float(v.at[date, symbol]) for k, v in signals.info.items()}
        if np.isnan(value["adx"]) or np.isnan(value["sma"]):
            return (f"not enough history on {date.date()} for ADX({self.params.adx_period}) and "
                    f"SMA({self.params.sma_period}): no signal")
        limit = f"{self.params.adx_max:g}"
        mean = f"SMA{self.params.sma_period} {value['sma']:.2f}"
        exit_part = (f"close {value['close']:.2f} >= {mean}: exit if held" if value["close"] >= value["sma"]
                     else f"close {value['close']:.2f} < {mean}: hold if held")
        if value["adx"] >= self.params.adx_max:
            return f"ADX {value['adx']:.1f} >= {limit}, gate closed; {exit_part}"
        z_entry = f"{self.params.z_entry:g}"
        z_part = (f"z {value['z']:.2f} < {z_entry}: entry" if signals.entry.at[date, symbol]
                  else f"z {value['z']:.2f} >= {z_entry}: no entry")
        return f"ADX {value['adx']:.1f} < {limit}, gate open; {z_part}; {exit_part}"
