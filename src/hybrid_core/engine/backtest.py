"""The backtester: the live run's strategies and risk rules, driven over history by one book.

Each strategy's :meth:`~hybrid_core.contracts.Strategy.signals` runs ONCE over its slice of
the panel (warm-up bars included); its wide frames become sparse per-date decisions
(:class:`~hybrid_core.account.decisions.DecisionTable`). The loop then walks the union of all
session dates from the start date on (NYSE sessions and 24/7 crypto days in one account)
and, per date, lets the :class:`~hybrid_core.engine.book.PortfolioBook` fill pending orders
and stops at the open and decide at the close: plan, then every ``vet()`` rule and guard
with the same :class:`~hybrid_core.contracts.CycleContext` as the live cycle. Per-date work
touches only held and pending symbols.
"""

from __future__ import annotations

import contextlib
import gc
import json
import math
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pandas as pd
from loguru import logger

from ..account.boundary import call
from ..account.decisions import DecisionTable
from ..account.ledger import ROUND_TRIP_COLUMNS, round_trips_frame
from ..contracts import Fill, Panel, RiskRule, Signals, Strategy, is_crypto
from ..errors import DataError, StrategyError
from ..ops.atomic import atomic_replace
from ..ops.memory import release_freed_memory
from .book import PortfolioBook

EQUITY_COLUMNS = ["date", "value", "cash", "exposure"]
ROUND_TRIPS_FILE = "round_trips.csv"
"""The round-trip table of a backtest or replay output folder (one row per round trip)."""


@attrs.define
class BacktestResult:
    """What a backtest produced: the daily equity curve, the round trips, the fills and timings."""

    equity: pd.DataFrame
    """Indexed by date from the start date: ``value`` (cash + positions at latest close), ``cash``,
    ``exposure``."""
    trades: pd.DataFrame
    """The round-trip table: one row per round trip, columns :data:`ROUND_TRIP_COLUMNS` plus
    commissions (open positions as ``end_of_data``, marked at their last close)."""
    fills: list[Fill]
    strategies: list[str]
    initial_cash: float
    timings: dict[str, float] = attrs.field(factory=dict)
    bars: int = 0
    """Number of (symbol, date) bars in the window (warm-up bars excluded)."""
    refused: list[str] = attrs.field(factory=list)
    """Orders the risk rules refused, one line each (``date symbol side: rule: reason``)."""


def compute_signals(strategy: Strategy, panel: Panel, *, with_info: bool = True) -> Signals:
    """Run a strategy over its own universe; its failures become a ComponentError naming it.

    ``with_info=False`` leaves out ``info``, the numbers behind the decisions, which a backtest
    does not carry (often as many wide frames as the decisions)."""
    signals: Signals = call(strategy, "signals", panel.select(strategy.universe))
    return signals if with_info else attrs.evolve(signals, info={})


def run_backtest(panel: Panel, strategies: Sequence[Strategy], risk_rules: Sequence[RiskRule] = (), *,
                 cash: float = 1_000_000.0, slippage_bps: float = 0.0, commission: float = 0.0,
                 signals: Mapping[str, Signals] | None = None, start: pd.Timestamp | None = None,
                 profile_name: str = "default", progress: bool | None = None) -> BacktestResult:
    """Backtest ``strategies`` (with ``risk_rules``) over the dates of ``panel`` from ``start``, from ``cash``.

    Bars before ``start`` (the warm-up, see :func:`load_window`) feed the strategies' signals
    only: no order is decided before ``start``; without ``start`` every date trades (a cold
    start). ``signals`` may pass precomputed signals by strategy name. ``progress``: show a
    progress bar on stderr (default: when stderr is a terminal; shown only if the run lasts
    over a second).
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
        del sig, given  # the tables hold what the loop reads: the signals' frames go now, not after the run
    release_freed_memory()  # what the signals freed waits in the heap (ops/memory.py): not in the loop's peak
    t_signals = time.perf_counter()

    first = 0 if start is None else int(dates.searchsorted(pd.Timestamp(start)))
    opens = panel.open.to_numpy(dtype="float64", na_value=np.nan)
    lows = panel.low.to_numpy(dtype="float64", na_value=np.nan)
    closes = panel.close.to_numpy(dtype="float64", na_value=np.nan)
    book = PortfolioBook(cash, risk_rules=risk_rules, slippage_bps=slippage_bps, commission=commission,
                         context={"mode": "backtest", "profile_name": profile_name})
    n = len(dates) - first
    values = np.empty(n)
    cash_col = np.empty(n)
    fills: list[Fill] = []
    refused: list[str] = []
    date_list = list(dates)
    stops = np.full(len(symbols), -np.inf)  # stop of each held symbol, -inf: none
    with _collector_paused():
        for i in _progress(range(first, len(dates)), progress, "backtest"):
            date = date_list[i]
            if book.pending or book.positions:
                guarded = np.flatnonzero(stops > -np.inf)
                limits = stops[guarded]  # NaN (no bar) compares False: no hit
                hit = [symbols[j] for j in guarded[(opens[i, guarded] <= limits)
                                                   | (lows[i, guarded] <= limits)].tolist()]
                today = book.on_open(date, _prices(opens[i], [*book.pending, *hit], index),
                                     _prices(lows[i], hit, index), stop_candidates=hit)
                if today:
                    positions = book.positions
                    for fill in today:  # a buy's new stop, or none after a sell
                        pos = positions.get(fill.symbol)
                        stops[index[fill.symbol]] = -np.inf if pos is None or pos.stop_price is None else pos.stop_price
                    fills.extend(today)
            decisions = [d for d in (t.at(i, book.positions) for t in tables) if d is not None]
            wanted = [*book.positions, *(s for d in decisions for s in d.entries if s in index)]
            book.on_close(date, _prices(closes[i], wanted, index), decisions, refused=refused)
            values[i - first] = book.last_value
            cash_col[i - first] = book.cash
    t_loop = time.perf_counter()

    equity = pd.DataFrame({"value": values, "cash": cash_col, "exposure": values - cash_col},
                          index=pd.DatetimeIndex(dates[first:], name="date"))
    trades = round_trips_frame(book.round_trips())
    bars = int(np.count_nonzero(~np.isnan(closes[first:])))
    timings = {"signals": t_signals - t0, "loop": t_loop - t_signals, "engine": time.perf_counter() - t0}
    logger.bind(**timings).debug("backtest done: {n} dates, {t} trades", n=n, t=len(trades))
    return BacktestResult(equity=equity, trades=trades, fills=fills, strategies=names,
                          initial_cash=float(cash), timings=timings, bars=bars, refused=refused)


def _prices(row: np.ndarray, wanted: list[str], index: Mapping[str, int]) -> dict[str, float]:
    """``{symbol: price}`` of one row of a wide price array, for the ``wanted`` symbols only (NaN: no
    bar). The book and the planner read only held, pending, stop-hit and entered symbols, so a
    plain dict of those, read off the row at once, replaces a lookup per symbol into numpy."""
    columns = np.fromiter(map(index.__getitem__, wanted), dtype=np.intp, count=len(wanted))
    return dict(zip(wanted, row[columns].tolist(), strict=True))


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while the loop runs: the book's objects hold no cycles, but
    its ~100,000 round trips and fills kept alive made the collector walk them again and again
    (a fifth of the loop's time at 3,000 symbols). Back on (if it was) when the loop ends, so a
    cycle a plugin's rule makes is collected then."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


def _progress(iterable: range, enabled: bool | None, desc: str) -> Any:
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, unit="day", file=sys.stderr, delay=1.0, mininterval=0.25, leave=False)



# ---------------------------------------------------------------------------- whole runs

def default_warmup(strategies: Sequence[Strategy]) -> int:
    """Sessions of warm-up when the profile does not say: the longest ``lookback()``."""
    return max((int(call(s, "lookback")) for s in strategies), default=0)


@attrs.frozen
class Window:
    """Bars of a run: the warm-up sessions before ``start``, then ``start`` .. ``end``."""

    panel: Panel
    start: pd.Timestamp
    warmup: int
    """Warm-up sessions asked for."""
    note: str | None = None
    """Set when the data holds fewer warm-up sessions than asked for."""

    @property
    def trading(self) -> Panel:
        """The bars from ``start`` on (the panel itself on a cold start)."""
        return self.panel if self.panel.dates[0] >= self.start else self.panel.select(start=self.start)


def load_window(data_source: Any, strategies: Sequence[Strategy], start: pd.Timestamp | None,
                end: pd.Timestamp | None, warmup: int = 0, quality: str = "refuse") -> Window:
    """Bars of every strategy's universe up to ``end``, from ``warmup`` sessions before ``start``.

    A session counts for a strategy when one of its symbols has a bar; the window opens at the
    earliest of the strategies' ``warmup``-th session before ``start`` (the equity sessions of
    an equity strategy, every UTC day of a crypto one). ``warmup=0`` is a cold start: nothing
    before ``start``. Backtest and replay call this same function, so they see the same bars,
    through the data quality gate under policy ``quality`` (:func:`hybrid_core.data.loading.load_bars`).
    """
    from ..data.loading import load_bars

    symbols = sorted({s for strat in strategies for s in strat.universe})
    if not symbols:
        raise StrategyError("no strategy names any symbol; give each strategy a universe in the profile")
    if warmup < 0:
        raise DataError(f"backtest.warmup must be 0 (cold start) or more sessions, got {warmup}")
    fetch_from = start
    if start is not None and warmup:
        fetch_from = pd.Timestamp(start) - pd.Timedelta(days=math.ceil(warmup * 7 / 5 * 1.1) + 14)
    bars = load_bars(data_source, symbols, fetch_from, end, policy=quality).bars
    if bars.empty:
        raise DataError(f"no bars for the {len(symbols)} symbol(s) of the profile between {start} and {end}")
    panel = Panel.from_long(bars, consume=True)  # the long frame is emptied as the panel fills
    del bars
    release_freed_memory()  # the load's freed arrays wait in the heap (ops/memory.py): give them back
    first = pd.Timestamp(start) if start is not None else panel.dates[0]
    note = None
    if start is not None and warmup:
        opens = []
        short = []
        for strat in strategies:
            before = panel.select(strat.universe, end=first - pd.Timedelta(days=1)).dates
            if len(before):
                opens.append(before[max(0, len(before) - warmup)])
            if len(before) < warmup:
                short.append(f"{strat.name} {len(before)}")
        panel = panel.select(start=min(opens)) if opens else panel.select(start=first)
        if short:
            note = (f"warm-up: {warmup} session(s) asked for, the data before {first.date()} holds fewer "
                    f"({', '.join(short)}); indicators start partly cold")
    elif start is not None and len(panel.dates) and panel.dates[0] < first:
        panel = panel.select(start=first)
    return Window(panel=panel, start=first, warmup=warmup, note=note)


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
                    span: float = 0.5, signals: Mapping[str, Signals] | None = None) -> list[str]:
    """Quick no-lookahead check of each strategy; raises :class:`StrategyError` on the first failure.

    Signals of the panel's first ``span`` of dates are compared with signals recomputed on that
    panel cut at ``n_cuts`` dates (a strategy that reads future bars differs). ``signals`` (by
    strategy name, :func:`compute_signals` on ``panel``: the ones the backtest trades on) stand
    for the run on the first ``span``, which is then not made. Returns one line per strategy
    saying what was checked.

    The memory the check frees stays in the heap (ops/memory.py) for what runs the strategies
    next, arrays of the same kinds and sizes (an engine not given ``signals``), and
    :func:`run_backtest` gives it back after the signals: given back here, every page of those
    signals would be a fresh one, zeroed by the kernel (3,000 symbols: ~0.13 s).
    """
    from ..testing.lookahead import check_no_lookahead, truncate_panel

    dates = panel.dates
    if len(dates) < 10:
        return [f"lookahead check skipped: only {len(dates)} date(s) in the window"]
    checked = truncate_panel(panel, dates[max(2, int(len(dates) * span)) - 1])
    lines = []
    for strat in strategies:
        report = check_no_lookahead(strat, checked.select(strat.universe), n_cuts=n_cuts,
                                    full=signals.get(strat.name) if signals else None)
        if not report.ok:
            day = report.date.date() if report.date is not None else "?"
            raise StrategyError(f"strategy {strat.name!r} failed the lookahead check (first differing date "
                                f"{day}): {report.message}; results are not reported")
        lines.append(report.message)
    return lines


def write_csv(path: Path, frame: pd.DataFrame, rows_per_part: int = 4096) -> None:
    """Write ``frame`` as CSV (atomically): dates as YYYY-MM-DD, floats in shortest round-trip
    form (``repr``).

    The same text as ``DataFrame.to_csv`` for these columns, several times faster: each column
    becomes its cells at once, ``rows_per_part`` rows at a time, and each part of the file is one
    join of its cells, row by row (so the cells of the whole table never exist at once: at 91,000
    round trips they were ~60 MB of fresh memory, mostly page faults).
    """
    columns = [_csv_column(frame[name]) for name in frame.columns]
    width = len(columns)
    with atomic_replace(path, sync_dir=False) as handle:
        handle.write((",".join(str(c) for c in frame.columns) + "\n").encode("utf-8"))
        if not width:
            handle.write(b"\n" * len(frame))
            return
        for start in range(0, len(frame), rows_per_part):
            stop = min(start + rows_per_part, len(frame))
            cells = [","] * (2 * width * (stop - start))  # cell, separator, cell, ...; a row ends in "\n"
            for j, cells_of in enumerate(columns):
                cells[2 * j::2 * width] = cells_of(start, stop)
            cells[2 * width - 1::2 * width] = ["\n"] * (stop - start)
            handle.write("".join(cells).encode("utf-8"))


def _csv_column(col: pd.Series) -> Callable[[int, int], list[str]]:
    """The CSV text of the values of ``col`` from row ``start`` to ``stop``: quoted where needed,
    "" for a missing number."""
    if pd.api.types.is_datetime64_any_dtype(col.dtype):  # each distinct day formatted once
        codes, days = pd.factorize(pd.DatetimeIndex(col).to_numpy(dtype="datetime64[D]"), use_na_sentinel=False)
        day_texts = np.datetime_as_string(days, unit="D").tolist()
        return lambda start, stop: list(map(day_texts.__getitem__, codes[start:stop].tolist()))
    if pd.api.types.is_float_dtype(col.dtype):
        numbers = col.to_numpy(dtype="float64")
        return lambda start, stop: float_texts(numbers[start:stop])
    if col.dtype != object and pd.api.types.is_string_dtype(col.dtype) and not col.hasnans:
        codes, uniques = pd.factorize(col)  # strings: each distinct one quoted once (91,000 symbols: 3,000)
        unique_texts = _quoted(list(map(str, uniques)))
        return lambda start, stop: list(map(unique_texts.__getitem__, codes[start:stop].tolist()))
    texts = _quoted(["" if v is None else str(v) for v in col.tolist()])
    return lambda start, stop: texts[start:stop]


def _quoted(texts: list[str]) -> list[str]:
    if any(_needs_quotes(t) for t in set(texts)):
        return [f'"{t.replace(chr(34), chr(34) * 2)}"' if _needs_quotes(t) else t for t in texts]
    return texts


def float_texts(numbers: np.ndarray) -> list[str]:
    """``repr`` of each float ("" for NaN), as ``DataFrame.to_csv`` writes them.

    orjson formats the whole array in one call with the same shortest round-trip digits as
    ``repr`` (about 9x faster than ``repr`` per value); only its notation differs, for
    magnitudes below 1e-4 (``1e-5`` where ``repr`` says ``1e-05``), and it writes NaN and
    infinity as ``null``. Those values, and any from 1e16 up, are written by ``repr``.
    """
    import orjson

    if not len(numbers):
        return []
    numbers = np.ascontiguousarray(numbers, dtype="float64")
    texts = orjson.dumps(numbers, option=orjson.OPT_SERIALIZE_NUMPY)[1:-1].decode("ascii").split(",")
    with np.errstate(invalid="ignore"):
        size = np.abs(numbers)
        other = ~((size >= 1e-4) & (size < 1e16)) & (size != 0)  # NaN compares False: other
    for i in np.flatnonzero(other).tolist():
        value = float(numbers[i])
        texts[i] = "" if value != value else repr(value)
    return texts


def write_text_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text``: a reader (or a kill) sees the old file or the new, never half."""
    with atomic_replace(path, sync_dir=False) as handle:
        handle.write(text.encode("utf-8"))


def _needs_quotes(text: str) -> bool:
    return "," in text or '"' in text or "\n" in text


def write_outputs(out_dir: Path, result: BacktestResult, panel: Panel, *, title: str,
                  meta: Mapping[str, Any], notes: Sequence[str] = (),
                  started: float | None = None,
                  benchmark: tuple[str, pd.Series] | None = None) -> dict[str, Any]:
    """Write round_trips.csv, equity.csv, report.html and summary.json into ``out_dir`` (each file
    atomically); returns the summary.

    ``started`` (a ``time.perf_counter()`` value) adds ``write`` and ``total`` to ``meta["timings"]``.
    ``benchmark`` (name, value curve on the equity's dates, see engine/benchmark.py) is shown
    beside the results and adds the relative statistics to the summary.
    """
    t0 = time.perf_counter()
    from . import stats
    from .report_html import render_report

    out_dir.mkdir(parents=True, exist_ok=True)
    write_csv(out_dir / ROUND_TRIPS_FILE, result.trades[ROUND_TRIP_COLUMNS])
    write_csv(out_dir / "equity.csv", result.equity.reset_index()[EQUITY_COLUMNS])
    contributions = stats.strategy_pnl(result.trades, panel.close, result.equity.index)
    for name in result.strategies:  # strategies without trades contribute 0
        if name not in contributions.columns:
            contributions[name] = 0.0
    summary = stats.summarize(result.equity, result.trades, result.fills, result.initial_cash, contributions,
                              benchmark=benchmark)
    summary = {**meta, **summary, "notes": list(notes)}
    render_report(out_dir / "report.html", title=title, equity=result.equity, contributions=contributions,
                  summary=summary, notes=list(notes), benchmark=benchmark[1] if benchmark else None)
    if started is not None and isinstance(summary.get("timings"), dict):
        now = time.perf_counter()
        summary["timings"] = {**summary["timings"], "write": now - t0, "total": now - started}
    write_text_atomically(out_dir / "summary.json", json.dumps(stats.json_ready(summary), indent=2) + "\n")
    return summary
