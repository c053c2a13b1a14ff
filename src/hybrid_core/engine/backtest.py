"""The backtester: the live run's strategies and risk rules, driven over history by one book.

Each strategy's :meth:`~hybrid_core.contracts.Strategy.signals` runs ONCE over its slice of
the panel; its wide frames become sparse per-date :class:`~hybrid_core.contracts.Decision`
lists (numpy, no per-date pandas). The loop then walks the union of all session dates
(NYSE sessions and 24/7 crypto days in one account) and, per date, lets the
:class:`~hybrid_core.engine.book.PortfolioBook` fill pending orders and stops at the open
and plan new orders at the close. Per-date work touches only held and pending symbols.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import attrs
import numpy as np
import pandas as pd
from loguru import logger

from ..contracts import Decision, Fill, Panel, RiskRule, Signals, Strategy
from ..errors import StrategyError
from .book import PortfolioBook, Trade

TRADE_COLUMNS = ["symbol", "entry_date", "entry_price", "exit_date", "exit_price", "qty", "exit_reason",
                 "pnl", "return", "strategy"]
EQUITY_COLUMNS = ["date", "value", "cash", "exposure"]


class RowPrices(Mapping[str, float]):
    """A read-only view of one row of a wide price array as ``{symbol: price}``; NaN reads as absent."""

    __slots__ = ("_row", "_index")

    def __init__(self, row: np.ndarray, index: Mapping[str, int]) -> None:
        self._row = row
        self._index = index

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        j = self._index.get(key)
        if j is None:
            return default
        value = self._row[j]
        return default if value != value else float(value)

    def __getitem__(self, key: str) -> float:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        return self.get(key) is not None  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[str]:
        return (s for s, j in self._index.items() if self._row[j] == self._row[j])

    def __len__(self) -> int:
        return int(np.count_nonzero(~np.isnan(self._row)))


def sparse_decisions(signals: Signals, strategy: str, dates: pd.DatetimeIndex) -> dict[int, Decision]:
    """The strategy's decisions keyed by position in ``dates``, only where it decided or flagged anything.

    Equivalent to ``signals.row(date)`` (with ``strategy`` set) for those dates, built from numpy.
    """
    index = pd.DatetimeIndex(signals.entry.index)
    symbols = [str(s) for s in signals.entry.columns]
    entry = _bool_array(signals.entry, index, symbols)
    exit_ = _bool_array(signals.exit, index, symbols)
    keep = _bool_array(signals.keep, index, symbols)
    weight = signals.weight.reindex(index=index, columns=symbols).to_numpy(dtype="float64", na_value=np.nan)
    decided = signals.decided.reindex(index).fillna(False).to_numpy(dtype=bool)
    info = {k: v.reindex(index=index, columns=symbols) for k, v in signals.info.items()}
    info_arrays = {k: v.to_numpy(dtype="float64", na_value=np.nan) if _numeric(v) else v.to_numpy()
                   for k, v in info.items()}
    where = pd.DatetimeIndex(dates).get_indexer(index)
    active = decided | entry.any(axis=1) | exit_.any(axis=1) | keep.any(axis=1)
    out: dict[int, Decision] = {}
    for i in np.flatnonzero(active & (where >= 0)):
        entry_cols = np.flatnonzero(entry[i])
        exit_cols = np.flatnonzero(exit_[i])
        entries = {symbols[j]: float(weight[i, j]) for j in entry_cols}
        exits = [symbols[j] for j in exit_cols]
        keeps = [symbols[j] for j in np.flatnonzero(keep[i])]
        row_info: dict[str, dict[str, Any]] = {}
        if info_arrays:
            for j in (*entry_cols, *exit_cols):
                row_info[symbols[j]] = {k: _plain(a[i, j]) for k, a in info_arrays.items()}
        out[int(where[i])] = Decision(date=index[i], decided=bool(decided[i]), entries=entries, exits=exits,
                                      keeps=keeps, exit_reason=signals.exit_reason, info=row_info,
                                      strategy=strategy)
    return out


def _numeric(frame: pd.DataFrame) -> bool:
    return all(pd.api.types.is_numeric_dtype(t) or pd.api.types.is_bool_dtype(t) for t in frame.dtypes)


def _bool_array(frame: pd.DataFrame, index: pd.DatetimeIndex, symbols: list[str]) -> np.ndarray:
    aligned = frame.reindex(index=index, columns=symbols)
    return aligned.fillna(False).to_numpy(dtype=bool) if aligned.isna().any().any() else aligned.to_numpy(bool)


def _plain(value: Any) -> Any:
    if isinstance(value, (float, np.floating)):
        return None if value != value else float(value)
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


@attrs.define
class BacktestResult:
    """What a backtest produced: the daily equity curve, the trades, the fills and timings."""

    equity: pd.DataFrame
    """Indexed by date: ``value`` (cash + positions at latest close), ``cash``, ``exposure``."""
    trades: pd.DataFrame
    """One row per round trip, columns :data:`TRADE_COLUMNS` (open positions as ``end_of_data``)."""
    fills: list[Fill]
    strategies: list[str]
    initial_cash: float
    timings: dict[str, float] = attrs.field(factory=dict)
    bars: int = 0
    """Number of (symbol, date) bars in the panel."""


def compute_signals(strategy: Strategy, panel: Panel) -> Signals:
    """Run a strategy over its own universe; its failures become a :class:`StrategyError` naming it."""
    own = panel.select(strategy.universe)
    try:
        return strategy.signals(own)
    except Exception as exc:  # the strategy's own code failed
        raise StrategyError(f"strategy {strategy.name!r} failed in signals(): {type(exc).__name__}: {exc}") from exc


def run_backtest(panel: Panel, strategies: Sequence[Strategy], risk_rules: Sequence[RiskRule] = (), *,
                 cash: float = 1_000_000.0, slippage_bps: float = 0.0, commission: float = 0.0,
                 signals: Mapping[str, Signals] | None = None,
                 progress: bool | None = None) -> BacktestResult:
    """Backtest ``strategies`` (with ``risk_rules``) over every date of ``panel``, from ``cash``.

    ``panel`` must already be cut to the window (only bars from the start date are used).
    ``signals`` may pass precomputed signals by strategy name. ``progress``: show a progress bar
    on stderr (default: when stderr is a terminal; shown only if the run lasts over a second).
    """
    t0 = time.perf_counter()
    dates = pd.DatetimeIndex(panel.close.index)
    symbols = [str(s) for s in panel.close.columns]
    index = {s: j for j, s in enumerate(symbols)}
    names = [s.name for s in strategies]
    if len(set(names)) != len(names):
        raise StrategyError(f"two strategies share the name {names}; give each a distinct name in the profile")
    per_date: dict[int, list[Decision]] = {}
    for strategy in strategies:
        sig = signals[strategy.name] if signals and strategy.name in signals else compute_signals(strategy, panel)
        for i, decision in sparse_decisions(sig, strategy.name, dates).items():
            per_date.setdefault(i, []).append(decision)
    t_signals = time.perf_counter()

    opens = panel.open.to_numpy(dtype="float64", na_value=np.nan)
    lows = panel.low.to_numpy(dtype="float64", na_value=np.nan)
    closes = panel.close.to_numpy(dtype="float64", na_value=np.nan)
    book = PortfolioBook(cash, risk_rules=risk_rules, slippage_bps=slippage_bps, commission=commission)
    n = len(dates)
    values = np.empty(n)
    cash_col = np.empty(n)
    fills: list[Fill] = []
    date_list = list(dates)
    for i in _progress(range(n), progress, "backtest"):
        date = date_list[i]
        if book.pending or book.positions:
            fills.extend(book.on_open(date, RowPrices(opens[i], index), RowPrices(lows[i], index)))
        book.on_close(date, RowPrices(closes[i], index), per_date.get(i, ()))
        values[i] = book.last_value
        cash_col[i] = book.cash
    t_loop = time.perf_counter()

    equity = pd.DataFrame({"value": values, "cash": cash_col, "exposure": values - cash_col},
                          index=pd.DatetimeIndex(dates, name="date"))
    trades = trades_frame([*book.trades, *book.open_trades("end_of_data")])
    bars = int(np.count_nonzero(~np.isnan(closes)))
    timings = {"signals": t_signals - t0, "loop": t_loop - t_signals, "engine": time.perf_counter() - t0}
    logger.bind(**timings).debug("backtest done: {n} dates, {t} trades", n=n, t=len(trades))
    return BacktestResult(equity=equity, trades=trades, fills=fills, strategies=names, initial_cash=float(cash),
                          timings=timings, bars=bars)


def trades_frame(trades: Sequence[Trade]) -> pd.DataFrame:
    """Trades as a frame with :data:`TRADE_COLUMNS`, sorted by entry date, symbol and exit date."""
    frame = pd.DataFrame({
        "symbol": [t.symbol for t in trades],
        "entry_date": pd.DatetimeIndex([t.entry_date for t in trades]),
        "entry_price": np.array([t.entry_price for t in trades], dtype="float64"),
        "exit_date": pd.DatetimeIndex([t.exit_date for t in trades]),
        "exit_price": np.array([t.exit_price for t in trades], dtype="float64"),
        "qty": np.array([t.qty for t in trades], dtype="float64"),
        "exit_reason": [t.exit_reason for t in trades],
        "pnl": np.array([t.pnl for t in trades], dtype="float64"),
        "return": np.array([t.ret for t in trades], dtype="float64"),
        "strategy": [t.strategy for t in trades],
    }, columns=TRADE_COLUMNS)
    return frame.sort_values(["entry_date", "symbol", "exit_date"], kind="stable", ignore_index=True)


def _progress(iterable: range, enabled: bool | None, desc: str) -> Any:
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, unit="day", file=sys.stderr, delay=1.0, mininterval=0.25, leave=False)

