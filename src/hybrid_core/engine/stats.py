"""Performance statistics of a backtest: returns, risk, drawdown, trades, per strategy and in total.

Return statistics use empyrical's definitions (CAGR over ``len(returns) / periods_per_year``
years, volatility and Sharpe with ``ddof=1``, Sortino over the root mean square of negative
returns, drawdown from a starting value); ``tests/engine/test_stats.py`` checks them against
empyrical-reloaded. They are re-implemented here because importing empyrical costs seconds.

``periods_per_year`` is 252 for a run on exchange sessions and 365 when the run's dates
include weekends (24/7 crypto in the account).

Against a benchmark (:func:`relative_stats`): excess return, beta and alpha (empyrical's
``beta`` / ``alpha``, zero risk-free rate), tracking error (annualised volatility of the
active returns) and information ratio (empyrical's ``excess_sharpe``, annualised); the
rolling Sharpe ratio is empyrical's ``roll_sharpe_ratio`` over a window of half a year.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..contracts import Fill

EXIT_REASONS = ("signal", "rebalance", "stop_loss", "time_stop", "end_of_data")


def periods_per_year(dates: pd.DatetimeIndex) -> int:
    """252 for exchange sessions only, 365 when any date falls on a weekend."""
    return 365 if len(dates) and bool((pd.DatetimeIndex(dates).day_of_week >= 5).any()) else 252


def daily_returns(values: pd.Series, initial: float) -> pd.Series:
    """Close-to-close returns of an equity curve; the first one is relative to ``initial``."""
    prev = np.concatenate([[initial], values.to_numpy(dtype="float64")[:-1]])
    with np.errstate(divide="ignore", invalid="ignore"):
        out = values.to_numpy(dtype="float64") / prev - 1.0
    return pd.Series(out, index=values.index)


def cagr(returns: np.ndarray, ppy: int) -> float:
    """Compound annual growth rate (empyrical ``annual_return``)."""
    if len(returns) < 1:
        return math.nan
    growth = float(np.prod(1.0 + returns))
    years = len(returns) / ppy
    return growth ** (1.0 / years) - 1.0 if growth > 0 else -1.0


def annual_volatility(returns: np.ndarray, ppy: int) -> float:
    """Annualised standard deviation of returns (ddof=1)."""
    if len(returns) < 2:
        return math.nan
    return float(np.nanstd(returns, ddof=1) * math.sqrt(ppy))


def sharpe(returns: np.ndarray, ppy: int) -> float:
    """Annualised Sharpe ratio with a zero risk-free rate (empyrical ``sharpe_ratio``)."""
    if len(returns) < 2:
        return math.nan
    std = float(np.nanstd(returns, ddof=1))
    return float(np.nanmean(returns) / std * math.sqrt(ppy)) if std > 0 else math.nan


def sortino(returns: np.ndarray, ppy: int) -> float:
    """Annualised Sortino ratio with a zero required return (empyrical ``sortino_ratio``)."""
    if len(returns) < 2:
        return math.nan
    downside = math.sqrt(float(np.nanmean(np.square(np.minimum(returns, 0.0))))) * math.sqrt(ppy)
    if downside == 0:
        return math.inf if np.nanmean(returns) > 0 else math.nan
    return float(np.nanmean(returns) * ppy / downside)


def drawdown_series(values: pd.Series, initial: float | None = None) -> pd.Series:
    """Drawdown of an equity curve from its running peak (0 at a new high, negative below it)."""
    arr = values.to_numpy(dtype="float64")
    peak = np.maximum.accumulate(arr if initial is None else np.maximum(arr, initial))
    return pd.Series(arr / peak - 1.0, index=values.index)


def max_drawdown(values: pd.Series, initial: float) -> dict[str, Any]:
    """Largest peak-to-trough fall: depth, peak date, trough date and recovery date (None if not yet)."""
    if values.empty:
        return {"max_drawdown": math.nan, "peak_date": None, "trough_date": None, "recovery_date": None}
    dd = drawdown_series(values, initial)
    arr = values.to_numpy(dtype="float64")
    trough = int(np.argmin(dd.to_numpy()))
    depth = float(dd.iloc[trough])
    if depth >= 0:
        return {"max_drawdown": 0.0, "peak_date": None, "trough_date": None, "recovery_date": None}
    running = np.maximum.accumulate(np.maximum(arr, initial))
    peak_value = running[trough]
    before = np.flatnonzero(arr[: trough + 1] >= peak_value)
    peak_date = _iso(values.index[before[-1]]) if len(before) else None
    after = np.flatnonzero(arr[trough:] >= peak_value)
    recovery = _iso(values.index[trough + after[0]]) if len(after) else None
    return {"max_drawdown": depth, "peak_date": peak_date, "trough_date": _iso(values.index[trough]),
            "recovery_date": recovery}


def return_stats(values: pd.Series, initial: float, ppy: int,
                 returns: pd.Series | None = None) -> dict[str, Any]:
    """CAGR, volatility, Sharpe, Sortino and max drawdown of an equity curve starting at ``initial``."""
    rets = (daily_returns(values, initial) if returns is None else returns).to_numpy(dtype="float64")
    out: dict[str, Any] = {
        "final_value": float(values.iloc[-1]) if len(values) else initial,
        "total_return": float(values.iloc[-1] / initial - 1.0) if len(values) and initial else math.nan,
        "cagr": cagr(rets, ppy),
        "annual_volatility": annual_volatility(rets, ppy),
        "sharpe": sharpe(rets, ppy),
        "sortino": sortino(rets, ppy),
    }
    out.update(max_drawdown(values, initial))
    return out


def trade_stats(trades: pd.DataFrame) -> dict[str, Any]:
    """Trade counts (total and by exit reason), win rate, profit factor, average holding days, PnL."""
    n = len(trades)
    pnl = trades["pnl"].to_numpy(dtype="float64") if n else np.zeros(0)
    gains = float(pnl[pnl > 0].sum())
    losses = float(-pnl[pnl < 0].sum())
    held = (pd.DatetimeIndex(trades["exit_date"]) - pd.DatetimeIndex(trades["entry_date"])).days if n else []
    counts = trades["exit_reason"].value_counts().to_dict() if n else {}
    by_reason = {r: int(counts.get(r, 0)) for r in EXIT_REASONS}
    by_reason.update({str(r): int(c) for r, c in counts.items() if r not in by_reason})
    return {
        "trades": n,
        "trades_by_exit_reason": by_reason,
        "win_rate": float((pnl > 0).mean()) if n else math.nan,
        "profit_factor": (gains / losses if losses > 0 else (math.inf if gains > 0 else math.nan)),
        "average_holding_days": float(np.mean(held)) if n else math.nan,
        "pnl": float(pnl.sum()),
        "gross_profit": gains,
        "gross_loss": -losses,
    }


def turnover(fills: Sequence[Fill] | float, values: pd.Series, ppy: int) -> dict[str, float]:
    """Traded value and annual turnover: (buys + sells) / 2 / mean portfolio value, per year.

    ``fills`` may be given as the traded value already summed.
    """
    if isinstance(fills, (int, float)):
        traded = float(fills)
    else:
        traded = float(sum(abs(f.qty * f.price) for f in fills))
    mean_value = float(values.mean()) if len(values) else math.nan
    years = len(values) / ppy if len(values) else math.nan
    annual = traded / 2.0 / mean_value / years if mean_value and years else math.nan
    return {"traded_value": traded, "annual_turnover": annual}


class LatestCloses:
    """Each symbol's latest close at each of ``dates``: the values of
    ``closes.reindex(index=dates).ffill()`` (rows of ``closes`` on other dates are not seen; NaN
    before a symbol's first close among ``dates``), without the panel-sized copies pandas makes.

    Kept symbol by symbol like the panel's own array, and a view of it when ``dates`` are a run
    of its rows; only the symbols with a missing or non-finite close are copied, filled forward.
    """

    def __init__(self, closes: pd.DataFrame, dates: pd.DatetimeIndex) -> None:
        rows = closes.index.get_indexer(pd.DatetimeIndex(dates))
        values = closes.to_numpy(dtype="float64").T
        if len(rows) and rows[0] >= 0 and bool((np.diff(rows) == 1).all()):
            self._by_symbol = values[:, rows[0]:rows[0] + len(rows)]  # read only, never written
        else:
            found = rows >= 0
            self._by_symbol = values.take(np.where(found, rows, 0), axis=1)
            self._by_symbol[:, ~found] = np.nan
        self._gaps = np.flatnonzero(~np.isfinite(self._by_symbol).all(axis=1))
        self._filled = self._by_symbol[self._gaps]
        steps = np.arange(self._filled.shape[1])
        for row in self._filled:
            latest = np.where(np.isnan(row), 0, steps)
            np.maximum.accumulate(latest, out=latest)
            row[:] = row[latest]
        self.shape = (len(rows), values.shape[0])
        """(dates, symbols)"""

    def rows(self, start: int, stop: int, out: np.ndarray | None = None) -> np.ndarray:
        """The (stop - start) x symbols closes of dates ``start`` to ``stop`` (in ``out``, symbols x
        dates, when given)."""
        if out is None:
            out = np.empty((self.shape[1], stop - start))
        np.copyto(out, self._by_symbol[:, start:stop])
        out[self._gaps] = self._filled[:, start:stop]
        return out.T


def latest_closes(closes: pd.DataFrame, dates: pd.DatetimeIndex) -> np.ndarray:
    """:class:`LatestCloses` as a new dates x symbols array."""
    marks = LatestCloses(closes, dates)
    return marks.rows(0, marks.shape[0])


def strategy_pnl(trades: pd.DataFrame, closes: pd.DataFrame, dates: pd.DatetimeIndex) -> pd.DataFrame:
    """Each strategy's cumulative PnL at every close (realised + open positions at their latest close).

    Built from the trades alone: a position counts at the closes of [entry date, exit date), is
    marked at the symbol's latest close; its entry and exit fills (with their commissions) move cash.
    Needs the ``commission`` and ``entry_commission`` columns of
    :func:`~hybrid_core.account.ledger.round_trips_frame`.
    The columns (one per strategy) add up to ``value - initial_cash``.
    """
    dates = pd.DatetimeIndex(dates)
    marks_columns = pd.Index(closes.columns, dtype=object)
    marks = LatestCloses(closes, dates)
    out = {}
    for name, group in trades.groupby("strategy", sort=True):
        flow = np.zeros(len(dates))
        entry_row = dates.get_indexer(pd.DatetimeIndex(group["entry_date"]))
        exit_row = dates.get_indexer(pd.DatetimeIndex(group["exit_date"]))
        final = group["exit_reason"].to_numpy() == "end_of_data"
        exit_row = np.where(final | (exit_row < 0), len(dates), exit_row)
        cols = marks_columns.get_indexer(group["symbol"].astype(object))
        if (cols < 0).any():
            raise KeyError(str(group["symbol"].iloc[int(np.flatnonzero(cols < 0)[0])]))
        qty = group["qty"].to_numpy(dtype="float64")
        entry_cost = group["entry_price"].to_numpy(dtype="float64") * qty
        proceeds = group["exit_price"].to_numpy(dtype="float64") * qty
        entry_fee = group["entry_commission"].to_numpy(dtype="float64")
        exit_fee = group["commission"].to_numpy(dtype="float64") - entry_fee
        held_value = _held_value(np.concatenate([entry_row, exit_row]), np.concatenate([cols, cols]),
                                 np.concatenate([qty, -qty]), marks)
        np.add.at(flow, entry_row, -entry_cost - entry_fee)
        closed = exit_row < len(dates)
        np.add.at(flow, exit_row[closed], proceeds[closed] - exit_fee[closed])
        out[str(name)] = np.cumsum(flow) + held_value
    return pd.DataFrame(out, index=dates)


def _held_value(rows: np.ndarray, cols: np.ndarray, changes: np.ndarray, marks: LatestCloses,
                block: int = 64) -> np.ndarray:
    """Value at ``marks`` (missing closes as 0) of the holdings that ``changes`` (quantity added
    at ``rows``, ``cols``; a row outside ``marks``: never) build up, summed over symbols for each date.

    Holdings and marks are taken ``block`` dates at a time in small reused arrays instead of
    dates x symbols ones (each a fresh 38 MB at 3,000 symbols); each value is the same sum of the
    same terms (changes added in the order given, dates accumulated one after the other, each
    date's row of ``held * mark`` summed over all symbols by numpy's pairwise sum).
    """
    dates, width = marks.shape
    rows = np.where(rows < 0, dates, rows)  # the whole-table version sent -1 to its spare last row
    order = np.argsort(rows, kind="stable")
    rows, cols, changes = rows[order], cols[order], changes[order]
    bounds = np.searchsorted(rows, np.minimum(np.arange(0, dates + block, block), dates))
    out = np.empty(dates)
    held = np.zeros((min(block, dates), width))
    mark_buffer = np.empty((width, min(block, dates)))
    carry = None
    for k, start in enumerate(range(0, dates, block)):
        stop = min(start + block, dates)
        part = held[: stop - start]
        part.fill(0.0)
        lo, hi = bounds[k], bounds[k + 1]
        np.add.at(part, (rows[lo:hi] - start, cols[lo:hi]), changes[lo:hi])
        if carry is not None:
            np.add(carry, part[0], out=part[0])
        np.cumsum(part, axis=0, out=part)
        carry = part[-1].copy()
        mark = np.nan_to_num(marks.rows(start, stop, out=mark_buffer[:, : stop - start]), copy=False)
        out[start:stop] = np.multiply(part, mark, out=part).sum(axis=1)
    return out


def total_return(returns: np.ndarray) -> float:
    """Compounded return of a series of period returns."""
    return float(np.prod(1.0 + returns) - 1.0) if len(returns) else math.nan


def relative_stats(returns: np.ndarray, benchmark: np.ndarray, ppy: int) -> dict[str, float]:
    """Excess return, beta, alpha, tracking error and information ratio of ``returns`` against
    ``benchmark`` (period returns on the same dates, zero risk-free rate).

    - ``excess_return``: compounded return minus the benchmark's.
    - ``beta``: cov(r, b) / var(b) (empyrical ``beta``); NaN for a flat benchmark.
    - ``alpha``: ``(1 + mean(r - beta * b)) ** ppy - 1`` (empyrical ``alpha``).
    - ``tracking_error``: annualised standard deviation (ddof=1) of ``r - b``.
    - ``information_ratio``: ``mean(r - b) / std(r - b) * sqrt(ppy)`` (empyrical ``excess_sharpe``, annualised).
    """
    r = np.asarray(returns, dtype="float64")
    b = np.asarray(benchmark, dtype="float64")
    out = {"excess_return": total_return(r) - total_return(b), "beta": math.nan, "alpha": math.nan,
           "tracking_error": math.nan, "information_ratio": math.nan}
    if len(r) < 2:
        return out
    centred = b - b.mean()
    variance = float(np.mean(centred * centred))
    beta = float(np.mean(centred * r)) / variance if variance >= 1e-30 else math.nan
    active = r - b
    spread = float(np.std(active, ddof=1))
    out["beta"] = beta
    out["alpha"] = (float(np.mean(r - beta * b)) + 1.0) ** ppy - 1.0 if beta == beta else math.nan
    out["tracking_error"] = spread * math.sqrt(ppy)
    out["information_ratio"] = float(np.mean(active)) / spread * math.sqrt(ppy) if spread > 0 else math.nan
    return out


def rolling_window(ppy: int, months: int = 6) -> int:
    """Periods in ``months`` months: 126 sessions for 6 months of exchange days, 182 for 24/7 days."""
    return ppy * months // 12


def rolling_sharpe(returns: pd.Series, window: int, ppy: int) -> pd.Series:
    """Annualised Sharpe ratio over the trailing ``window`` periods (NaN until the window is full)."""
    roll = returns.astype("float64").rolling(window, min_periods=window)
    std = roll.std(ddof=1)
    return (roll.mean() / std.where(std > 0) * math.sqrt(ppy)).rename("rolling_sharpe")


def benchmark_summary(name: str, values: pd.Series, initial: float, ppy: int,
                      returns: pd.Series) -> tuple[dict[str, Any], dict[str, Any]]:
    """The benchmark's own statistics and the strategy's statistics relative to it.

    ``values`` is the benchmark's value curve starting from ``initial`` on the strategy's dates;
    ``returns`` are the strategy's period returns on those dates. Returns ``(benchmark block,
    relative block)``: the latter (excess return, beta, alpha, tracking error, information ratio,
    latest rolling 6-month Sharpe) goes into the summary's ``total``.
    """
    bench_returns = daily_returns(values, initial)
    window = rolling_window(ppy)
    block: dict[str, Any] = {"name": name, **return_stats(values, initial, ppy, returns=bench_returns),
                             "rolling_sharpe_6m": _last(rolling_sharpe(bench_returns, window, ppy))}
    relative: dict[str, Any] = relative_stats(returns.to_numpy(dtype="float64"),
                                              bench_returns.to_numpy(dtype="float64"), ppy)
    relative["rolling_sharpe_6m"] = _last(rolling_sharpe(returns, window, ppy))
    return block, relative


def _last(series: pd.Series) -> float:
    return float(series.iloc[-1]) if len(series) else math.nan


def summarize(equity: pd.DataFrame, trades: pd.DataFrame, fills: Sequence[Fill], initial_cash: float,
              contributions: pd.DataFrame | None = None,
              benchmark: tuple[str, pd.Series] | None = None) -> dict[str, Any]:
    """The ``summary.json`` content: total and per-strategy statistics.

    ``benchmark`` (its name and value curve from ``initial_cash`` on the equity's dates) adds a
    ``benchmark`` block and the relative statistics of :func:`benchmark_summary` to ``total``.
    """
    values = equity["value"]
    ppy = periods_per_year(pd.DatetimeIndex(equity.index))
    traded: dict[str, float] = {}
    for fill in fills:
        traded[fill.strategy] = traded.get(fill.strategy, 0.0) + abs(fill.qty * fill.price)
    total: dict[str, Any] = {**return_stats(values, initial_cash, ppy), **trade_stats(trades),
                             **turnover(sum(traded.values()), values, ppy)}
    exposure = equity["exposure"] / equity["value"]
    total["average_exposure"] = float(exposure.mean()) if len(equity) else math.nan
    per: dict[str, Any] = {}
    if contributions is not None and len(values):
        prev_total = np.concatenate([[initial_cash], values.to_numpy()[:-1]])
        for name in contributions.columns:
            pnl_curve = contributions[name]
            step = np.diff(np.concatenate([[0.0], pnl_curve.to_numpy()]))
            contrib_returns = pd.Series(step / prev_total, index=values.index)
            own = pnl_curve + initial_cash
            stats = return_stats(own, initial_cash, ppy, returns=contrib_returns)
            stats["final_value"] = float(initial_cash + pnl_curve.iloc[-1])
            stats["contribution"] = float(pnl_curve.iloc[-1] / initial_cash)
            stats.update(trade_stats(trades[trades["strategy"] == name]))
            stats.update(turnover(traded.get(str(name), 0.0), values, ppy))
            per[str(name)] = stats
    out: dict[str, Any] = {"periods_per_year": ppy, "initial_cash": initial_cash, "total": total,
                           "strategies": per}
    if benchmark is not None and len(values):
        name, bench_values = benchmark
        block, relative = benchmark_summary(name, bench_values, initial_cash, ppy,
                                            daily_returns(values, initial_cash))
        total.update(relative)
        out["benchmark"] = block
    return out


def _iso(date: Any) -> str:
    return pd.Timestamp(date).strftime("%Y-%m-%d")


def json_ready(value: Any) -> Any:
    """Replace NaN/inf by None (JSON has neither) and numpy scalars by Python ones, recursively."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, (np.floating, float)):
        f = float(value)
        return f if math.isfinite(f) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, pd.Timestamp):
        return _iso(value)
    return value
