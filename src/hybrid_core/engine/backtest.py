"""The backtester: the live run's strategies and risk rules, driven over history by one book.

Each strategy's :meth:`~hybrid_core.contracts.Strategy.signals` runs ONCE over its slice of
the panel; its wide frames become sparse per-date :class:`~hybrid_core.contracts.Decision`
lists (numpy, no per-date pandas). The loop then walks the union of all session dates
(NYSE sessions and 24/7 crypto days in one account) and, per date, lets the
:class:`~hybrid_core.engine.book.PortfolioBook` fill pending orders and stops at the open
and plan new orders at the close. Per-date work touches only held and pending symbols.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pandas as pd
from loguru import logger

from ..contracts import (
    Decision,
    Fill,
    Panel,
    RiskRule,
    Signals,
    Strategy,
    _plain,  # the same conversion as Signals.row
    is_crypto,
)
from ..errors import DataError, StrategyError
from .book import PortfolioBook, Trade

TRADE_COLUMNS = ["symbol", "entry_date", "entry_price", "exit_date", "exit_price", "qty", "exit_reason",
                 "pnl", "return", "strategy"]
EQUITY_COLUMNS = ["date", "value", "cash", "exposure"]


class RowPrices(Mapping[str, float]):
    """A read-only view of one row of a wide price array as ``{symbol: price}``; NaN reads as absent."""

    __slots__ = ("_row", "_index")

    def __init__(self, row: Sequence[float], index: Mapping[str, int]) -> None:
        self._row = row
        self._index = index

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        j = self._index.get(key)
        if j is None:
            return default
        value = float(self._row[j])
        return default if value != value else value

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
        return sum(1 for _ in self)


class DecisionTable:
    """A strategy's signals as numpy arrays aligned on the backtest's dates, read one date at a time.

    Built once per run; :meth:`at` gives the same :class:`Decision` as ``signals.row(date)``
    (with ``strategy`` set), except that exits and keeps can be limited to held symbols, which
    is all the planner looks at (a weekly strategy "exits" hundreds of unheld names).
    ``with_info=False`` leaves ``Decision.info`` empty (the backtest does not log signals).
    """

    def __init__(self, signals: Signals, strategy: str, dates: pd.DatetimeIndex, *,
                 with_info: bool = True) -> None:
        index = pd.DatetimeIndex(signals.entry.index)
        self.strategy = strategy
        self.exit_reason = signals.exit_reason
        self.symbols = [str(s) for s in signals.entry.columns]
        self.column = {s: j for j, s in enumerate(self.symbols)}
        self.dates = list(index)
        self.entry = _bool_array(signals.entry, index, self.symbols)
        self.exit = _bool_array(signals.exit, index, self.symbols)
        self.keep = _bool_array(signals.keep, index, self.symbols)
        self.weight = signals.weight.reindex(index=index, columns=self.symbols).to_numpy(
            dtype="float64", na_value=np.nan)
        self.decided = signals.decided.reindex(index).fillna(False).to_numpy(dtype=bool)
        self.info = ({k: _array(v.reindex(index=index, columns=self.symbols)) for k, v in signals.info.items()}
                     if with_info else None)
        active = self.decided | self.entry.any(axis=1) | self.exit.any(axis=1) | self.keep.any(axis=1)
        where = pd.DatetimeIndex(dates).get_indexer(index)
        self.row_of = np.full(len(dates), -1, dtype=np.int64)
        ok = (where >= 0) & active
        self.row_of[where[ok]] = np.flatnonzero(ok)

    def at(self, i: int, held: Mapping[str, Any] | None = None) -> Decision | None:
        """The decision at position ``i`` of the run's dates, or None when the strategy did nothing.

        With ``held``, exits and keeps list only symbols in ``held``.
        """
        r = int(self.row_of[i])
        if r < 0:
            return None
        symbols = self.symbols
        entry_cols = np.flatnonzero(self.entry[r]).tolist()
        if held is None:
            exit_cols = np.flatnonzero(self.exit[r]).tolist()
            keep_cols = np.flatnonzero(self.keep[r]).tolist()
        else:
            cols = [j for j in map(self.column.get, held) if j is not None]
            exit_row, keep_row = self.exit[r], self.keep[r]
            exit_cols = [j for j in cols if exit_row[j]]
            keep_cols = [j for j in cols if keep_row[j]]
        weight = self.weight[r]
        info: dict[str, dict[str, Any]] = {}
        if self.info is not None:
            rows = {k: a[r] for k, a in self.info.items()}
            info = {symbols[j]: {k: _plain(row[j]) for k, row in rows.items()}
                    for j in {*entry_cols, *exit_cols, *keep_cols}}
        return Decision(date=self.dates[r], decided=bool(self.decided[r]),
                        entries={symbols[j]: float(weight[j]) for j in entry_cols},
                        exits=[symbols[j] for j in exit_cols], keeps=[symbols[j] for j in keep_cols],
                        exit_reason=self.exit_reason, info=info, strategy=self.strategy)


def _array(frame: pd.DataFrame) -> np.ndarray:
    if _numeric(frame):
        return frame.to_numpy(dtype="float64", na_value=np.nan)
    return frame.to_numpy()


def _numeric(frame: pd.DataFrame) -> bool:
    return all(pd.api.types.is_numeric_dtype(t) or pd.api.types.is_bool_dtype(t) for t in frame.dtypes)


def _bool_array(frame: pd.DataFrame, index: pd.DatetimeIndex, symbols: list[str]) -> np.ndarray:
    aligned = frame.reindex(index=index, columns=symbols)
    if aligned.isna().any().any():
        aligned = aligned.fillna(False)
    return aligned.to_numpy(dtype=bool)


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
    return strategy.signals(panel.select(strategy.universe))  # Strategy wraps failures in StrategyError


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
        raise StrategyError(f"two strategies share a name in {names}; "
                            f"give each a distinct `id` in the profile")
    tables = []
    for strategy in strategies:
        given = signals.get(strategy.name) if signals else None
        sig = given if given is not None else compute_signals(strategy, panel)
        tables.append(DecisionTable(sig, strategy.name, dates, with_info=False))
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
    stops = np.full(len(symbols), -np.inf)  # stop of each held symbol, -inf: none
    for i in _progress(range(n), progress, "backtest"):
        date = date_list[i]
        if book.pending or book.positions:
            hit = np.flatnonzero((opens[i] <= stops) | (lows[i] <= stops)).tolist()  # NaN: no bar, False
            today = book.on_open(date, RowPrices(opens[i], index), RowPrices(lows[i], index),
                                 stop_candidates=[symbols[j] for j in hit])
            for fill in today:
                pos = book.positions.get(fill.symbol)
                stop = pos.stop_price if pos is not None else None
                stops[index[fill.symbol]] = -np.inf if stop is None else stop
            fills.extend(today)
        decisions = [d for d in (t.at(i, book.positions) for t in tables) if d is not None]
        if decisions:
            book.on_close(date, RowPrices(closes[i], index), decisions)
        else:
            held = list(book.positions)
            book.on_close(date, dict(zip(held, closes[i, [index[s] for s in held]].tolist(), strict=True)),
                          decisions)
        values[i] = book.last_value
        cash_col[i] = book.cash
    t_loop = time.perf_counter()

    equity = pd.DataFrame({"value": values, "cash": cash_col, "exposure": values - cash_col},
                          index=pd.DatetimeIndex(dates, name="date"))
    trades = trades_frame([*book.trades, *book.open_trades("end_of_data")])
    bars = int(np.count_nonzero(~np.isnan(closes)))
    timings = {"signals": t_signals - t0, "loop": t_loop - t_signals, "engine": time.perf_counter() - t0}
    logger.bind(**timings).debug("backtest done: {n} dates, {t} trades", n=n, t=len(trades))
    return BacktestResult(equity=equity, trades=trades, fills=fills, strategies=names,
                          initial_cash=float(cash), timings=timings, bars=bars)


def trades_frame(trades: Sequence[Trade]) -> pd.DataFrame:
    """Trades as a frame: :data:`TRADE_COLUMNS` plus the ``commission`` paid (of which
    ``entry_commission`` at entry), sorted by entry date, symbol and exit date."""
    entry = np.array([t.entry_price for t in trades], dtype="float64")
    exit_ = np.array([t.exit_price for t in trades], dtype="float64")
    qty = np.array([t.qty for t in trades], dtype="float64")
    fees = np.array([t.commission for t in trades], dtype="float64")
    pnl = (exit_ - entry) * qty - fees
    cost = entry * qty
    with np.errstate(divide="ignore", invalid="ignore"):
        ret = np.where(cost != 0, pnl / cost, 0.0)
    frame = pd.DataFrame({
        "symbol": [t.symbol for t in trades],
        "entry_date": pd.DatetimeIndex([t.entry_date for t in trades]),
        "entry_price": entry,
        "exit_date": pd.DatetimeIndex([t.exit_date for t in trades]),
        "exit_price": exit_,
        "qty": qty,
        "exit_reason": [t.exit_reason for t in trades],
        "pnl": pnl,
        "return": ret,
        "strategy": [t.strategy for t in trades],
        "commission": fees,
        "entry_commission": np.array([t.entry_commission for t in trades], dtype="float64"),
    }, columns=[*TRADE_COLUMNS, "commission", "entry_commission"])
    return frame.sort_values(["entry_date", "symbol", "exit_date"], kind="stable", ignore_index=True)


def _progress(iterable: range, enabled: bool | None, desc: str) -> Any:
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, unit="day", file=sys.stderr, delay=1.0, mininterval=0.25, leave=False)



# ---------------------------------------------------------------------------- whole runs

def load_window(data_source: Any, strategies: Sequence[Strategy], start: pd.Timestamp | None,
                end: pd.Timestamp | None) -> Panel:
    """Bars of every strategy's universe in [start, end] (nothing before ``start``: warm-up is inside)."""
    symbols = sorted({s for strat in strategies for s in strat.universe})
    if not symbols:
        raise StrategyError("no strategy names any symbol; give each strategy a universe in the profile")
    bars = data_source.fetch(symbols, start, end)
    if bars.empty:
        raise DataError(f"no bars for the {len(symbols)} symbol(s) of the profile between {start} and {end}")
    return Panel.from_long(bars)


def survivorship_warnings(strategies: Sequence[Strategy], panel: Panel) -> list[str]:
    """One warning per strategy trading a fixed list of equities (today's names, chosen in hindsight)."""
    out = []
    for strat in strategies:
        equities = [s for s in strat.universe if not is_crypto(s)]
        if not equities:
            continue
        present = [s for s in equities if s in panel.close.columns]
        has_bar = panel.close[present].notna()
        has_bar = has_bar.loc[has_bar.any(axis=1)]
        late = int((has_bar.idxmax() > has_bar.index[0]).sum()) if len(has_bar) else 0
        missing = len(equities) - int(has_bar.any().sum()) if len(has_bar) else len(equities)
        detail = f"; {late} of them list only during the window" if late else ""
        detail += f"; {missing} {'has' if missing == 1 else 'have'} no bars at all" if missing else ""
        out.append(f"survivorship bias: strategy {strat.name!r} trades a fixed list of {len(equities)} "
                   f"equities picked today (e.g. current index constituents){detail}; names that were "
                   f"delisted or dropped from the index during the window are absent, which flatters results")
    return out


def lookahead_check(strategies: Sequence[Strategy], panel: Panel, n_cuts: int = 3,
                    span: float = 0.5) -> list[str]:
    """Quick no-lookahead check of each strategy; raises :class:`StrategyError` on the first failure.

    Signals of the panel's first ``span`` of dates are compared with signals recomputed on that
    panel cut at ``n_cuts`` dates (a strategy that reads future bars differs). Returns one line
    per strategy saying what was checked.
    """
    try:
        from ..testing.lookahead import check_no_lookahead, truncate_panel
    except ImportError:  # the check ships with hybrid_core.testing
        return ["lookahead check not available (hybrid_core.testing.lookahead missing)"]
    dates = panel.dates
    if len(dates) < 10:
        return [f"lookahead check skipped: only {len(dates)} date(s) in the window"]
    checked = truncate_panel(panel, dates[max(2, int(len(dates) * span)) - 1])
    lines = []
    for strat in strategies:
        report = check_no_lookahead(strat, checked.select(strat.universe), n_cuts=n_cuts)
        if not report.ok:
            day = report.date.date() if report.date is not None else "?"
            raise StrategyError(f"strategy {strat.name!r} failed the lookahead check (first differing date "
                                f"{day}): {report.message}; results are not reported")
        lines.append(report.message)
    return lines


def write_csv(path: Path, frame: pd.DataFrame) -> None:
    """Write ``frame`` as CSV: dates as YYYY-MM-DD, floats in shortest round-trip form (``repr``).

    The same text as ``DataFrame.to_csv`` for these columns, several times faster.
    """
    columns = []
    for name in frame.columns:
        col = frame[name]
        if pd.api.types.is_datetime64_any_dtype(col.dtype):
            days = pd.DatetimeIndex(col).to_numpy(dtype="datetime64[D]")
            columns.append(np.datetime_as_string(days, unit="D").tolist())
        elif pd.api.types.is_float_dtype(col.dtype):
            columns.append(["" if v != v else repr(v) for v in col.to_numpy(dtype="float64").tolist()])
        else:
            texts = ["" if v is None else str(v) for v in col.tolist()]
            if any(_needs_quotes(t) for t in set(texts)):
                texts = [f'"{t.replace(chr(34), chr(34) * 2)}"' if _needs_quotes(t) else t for t in texts]
            columns.append(texts)
    lines = [",".join(str(c) for c in frame.columns)]
    lines.extend(",".join(row) for row in zip(*columns, strict=True))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _needs_quotes(text: str) -> bool:
    return "," in text or '"' in text or "\n" in text


def write_outputs(out_dir: Path, result: BacktestResult, panel: Panel, *, title: str,
                  meta: Mapping[str, Any], notes: Sequence[str] = (),
                  started: float | None = None) -> dict[str, Any]:
    """Write trades.csv, equity.csv, report.html and summary.json into ``out_dir``; returns the summary.

    ``started`` (a ``time.perf_counter()`` value) adds ``write`` and ``total`` to ``meta["timings"]``.
    """
    t0 = time.perf_counter()
    from . import stats
    from .report_html import render_report

    out_dir.mkdir(parents=True, exist_ok=True)
    write_csv(out_dir / "trades.csv", result.trades[TRADE_COLUMNS])
    write_csv(out_dir / "equity.csv", result.equity.reset_index()[EQUITY_COLUMNS])
    contributions = stats.strategy_pnl(result.trades, panel.close, result.equity.index)
    for name in result.strategies:  # strategies without trades contribute 0
        if name not in contributions.columns:
            contributions[name] = 0.0
    summary = stats.summarize(result.equity, result.trades, result.fills, result.initial_cash, contributions)
    summary = {**meta, **summary, "notes": list(notes)}
    render_report(out_dir / "report.html", title=title, equity=result.equity, contributions=contributions,
                  summary=summary, notes=list(notes))
    if started is not None and isinstance(summary.get("timings"), dict):
        now = time.perf_counter()
        summary["timings"] = {**summary["timings"], "write": now - t0, "total": now - started}
    (out_dir / "summary.json").write_text(json.dumps(stats.json_ready(summary), indent=2) + "\n",
                                          encoding="utf-8")
    return summary
