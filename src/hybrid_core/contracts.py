"""Component contracts and the value types that flow between components.

Five kinds of component plug into hybrid: a :class:`DataSource` gives bars, a
:class:`Strategy` turns a :class:`Panel` of bars into :class:`Signals`, a
:class:`RiskRule` adds stops, time stops and order vetoes, a :class:`Broker`
executes orders, and a :class:`BacktestEngine` runs ``hybrid backtest``. Each is
built from an attrs ``Params`` class that the run profile fills in (unknown keys
are refused).

Dates are session labels: tz-naive, normalised ``pandas.Timestamp`` (UTC days for
crypto, NYSE sessions for equities).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import attrs
import numpy as np
import pandas as pd

from .errors import HybridError, ProfileError, StrategyError

CONTRACT_VERSION = "1.1"
"""The version of the contracts in this module, ``"MAJOR.MINOR"`` (1.1 added :class:`BacktestEngine`).

A plugin says which version it was built for with a string ``HYBRID_CONTRACT = "1.0"`` in the
module its entry point names. It loads when the majors are equal and its minor is not newer
than this one; otherwise loading it is an error naming both versions. The major changes when a
change can break a plugin written for the previous one (a method or field removed or renamed,
a meaning changed); the minor when something is only added.

1.1 also added, for brokers: ``OrderRejected`` / ``OrderUnconfirmed`` tell a refusal from an
unknown outcome, ``Broker.cancel`` may return the order as the broker then sees it,
``Broker.start_cycle``, ``OrderStatus.submitted_at`` and ``BrokerPosition.min_order_qty``.
"""

if TYPE_CHECKING:  # the engine module imports this one
    from .engine.backtest import BacktestResult

BAR_COLUMNS = ("open", "high", "low", "close", "volume")
"""Columns of a canonical long bar frame, after ``symbol`` and ``date``."""

Side = Literal["buy", "sell"]
ExitReason = Literal["signal", "rebalance", "stop_loss", "time_stop", "end_of_data"]


def is_crypto(symbol: str) -> bool:
    """True for crypto pairs written ``BASE/QUOTE`` (``BTC/USD``)."""
    return "/" in symbol


def lot_quantity(symbol: str, target_value: float, price: float) -> float:
    """Quantity for ``target_value`` at ``price``: whole shares, or crypto rounded down to 1e-6.

    Returns 0.0 when the price is not a positive number or the target buys less than one lot.
    """
    if not (price > 0) or not math.isfinite(price) or not (target_value > 0):
        return 0.0
    if is_crypto(symbol):
        return math.floor(target_value / price * 1e6) / 1e6
    return float(math.floor(target_value / price))


class _Deferred:
    """A panel field made on first use (:meth:`Panel.select`): a strategy reading only closes
    never pays for a copy of the opens, highs, lows and volumes of its universe."""

    __slots__ = ("make",)

    def __init__(self, make: Callable[[], pd.DataFrame]) -> None:
        self.make = make


@attrs.frozen
class Panel:
    """Bars of many symbols as wide frames: index = session dates, columns = symbols.

    A cell is NaN where the symbol has no bar on that date; ``has_bar`` says where
    there is one. Prices are adjusted (STRATEGIES.md): strategies never see raw prices.
    """

    _open: pd.DataFrame = attrs.field(alias="open")
    _high: pd.DataFrame = attrs.field(alias="high")
    _low: pd.DataFrame = attrs.field(alias="low")
    _close: pd.DataFrame = attrs.field(alias="close")
    _volume: pd.DataFrame = attrs.field(alias="volume")

    @property
    def open(self) -> pd.DataFrame:
        """Adjusted opens (dates x symbols)."""
        return self._field("_open")

    @property
    def high(self) -> pd.DataFrame:
        """Adjusted highs (dates x symbols)."""
        return self._field("_high")

    @property
    def low(self) -> pd.DataFrame:
        """Adjusted lows (dates x symbols)."""
        return self._field("_low")

    @property
    def close(self) -> pd.DataFrame:
        """Adjusted closes (dates x symbols)."""
        return self._field("_close")

    @property
    def volume(self) -> pd.DataFrame:
        """Volumes (dates x symbols)."""
        return self._field("_volume")

    def _field(self, name: str) -> pd.DataFrame:
        value = getattr(self, name)
        if isinstance(value, _Deferred):
            value = value.make()
            object.__setattr__(self, name, value)  # made once; the panel stays immutable to its users
        return value  # type: ignore[no-any-return]

    @classmethod
    def from_long(cls, bars: pd.DataFrame, *, consume: bool = False) -> Panel:
        """Build a panel from a canonical long frame (``symbol, date, open, high, low, close, volume``).

        Each field is filled straight into its final array (no intermediate frame). ``consume``:
        take each field's column out of ``bars`` once it is in the panel, for a caller that drops
        the long frame next (a run's load: the peak then holds one field twice, not all five)."""
        if bars.empty:
            index = pd.DatetimeIndex([], name="date")
            empty = pd.DataFrame(index=index, columns=symbol_index([]), dtype="float64")
            return cls(empty, empty.copy(), empty.copy(), empty.copy(), empty.copy())
        symbol = bars["symbol"]
        if isinstance(symbol.dtype, pd.CategoricalDtype):  # local files: codes without string hashing
            symbol = used_categories(symbol)
            if not symbol.categories.is_monotonic_increasing:
                symbol = symbol.reorder_categories(sorted(symbol.categories))
            sym_codes, symbols = np.asarray(symbol.codes), symbol.categories
        else:
            sym_codes, symbols = pd.factorize(symbol.astype(str), sort=True)
        date_codes, dates = session_codes(bars["date"])
        index = pd.DatetimeIndex(dates, name="date")
        columns = symbol_index(symbols)
        # one row per symbol: the layout of a frame's block, filled in file order (symbol, date)
        cells = sym_codes.astype(np.int64)  # made in place: one array of a cell per bar, no temporaries
        cells *= len(index)
        cells += date_codes
        del date_codes
        frames = {}
        for col in BAR_COLUMNS:
            grid = np.full((len(columns), len(index)), np.nan)
            grid.ravel()[cells] = (bars.pop(col) if consume else bars[col]).to_numpy(dtype="float64")
            frames[col] = pd.DataFrame(grid.T, index=index, columns=columns, copy=False)
        return cls(**frames)

    @property
    def dates(self) -> pd.DatetimeIndex:
        """All session dates present in the panel (union over symbols)."""
        index = self.close.index
        return index if isinstance(index, pd.DatetimeIndex) else pd.DatetimeIndex(index)

    @property
    def symbols(self) -> list[str]:
        """Symbols, sorted."""
        return [str(s) for s in self.close.columns]

    @property
    def has_bar(self) -> pd.DataFrame:
        """Boolean frame: True where the symbol has a bar on the date."""
        return self.close.notna()

    def select(self, symbols: Iterable[str] | None = None, end: pd.Timestamp | None = None,
               start: pd.Timestamp | None = None) -> Panel:
        """A sub-panel: the given symbols (missing ones become all-NaN columns), dates in [start, end].

        Dates on which none of the selected symbols has a bar are dropped, so an equity-only
        selection of a hybrid panel has exactly the equity sessions. A selection of every
        column, in order, over consecutive dates shares this panel's arrays (no copy); otherwise
        each field but ``close`` is copied out the first time it is read.
        """
        index = self.close.index
        lo = 0 if start is None else int(index.searchsorted(pd.Timestamp(start), side="left"))
        hi = len(index) if end is None else int(index.searchsorted(pd.Timestamp(end), side="right"))
        columns = self.close.columns
        cols = list(columns) if symbols is None else list(symbols)
        positions, selected = (np.arange(len(columns)), columns) if symbols is None else kept_columns(columns, cols)
        present = positions >= 0
        closes = self.close.to_numpy()[lo:hi]
        if len(cols) and len(cols) == len(columns) and (positions == np.arange(len(columns))).all():
            keep = ~np.isnan(closes).all(axis=1)
            if keep.all():
                if lo == 0 and hi == len(index):
                    return self
                return Panel(**{name: self.close.iloc[lo:hi] if name == "close" else
                                _Deferred(functools.partial(_rows_of, self, name, lo, hi)) for name in BAR_COLUMNS})
        new_columns = selected
        close = _gather(closes, positions, present)
        keep = ~np.isnan(close).all(axis=1) if len(cols) else np.zeros(hi - lo, bool)
        rows = None if keep.all() else np.flatnonzero(keep)
        new_index = index[lo:hi] if rows is None else index[lo:hi][rows]

        def frame(values: np.ndarray) -> pd.DataFrame:
            return pd.DataFrame(values if rows is None else values[rows], index=new_index, columns=new_columns,
                                copy=False)

        def make(name: str) -> pd.DataFrame:
            return frame(_gather(getattr(self, name).to_numpy()[lo:hi], positions, present))

        return Panel(**{name: frame(close) if name == "close" else _Deferred(functools.partial(make, name))
                        for name in BAR_COLUMNS})

    def until(self, end: pd.Timestamp) -> Panel:
        """The panel without the dates after ``end`` (nothing else changed, nothing copied): what
        a decision at the close of ``end`` may see."""
        cut = int(self.close.index.searchsorted(pd.Timestamp(end), side="right"))
        if cut == len(self.close.index):
            return self
        return Panel(**{name: self.close.iloc[:cut] if name == "close" else
                        _Deferred(functools.partial(_rows_of, self, name, 0, cut)) for name in BAR_COLUMNS})

    def to_long(self) -> pd.DataFrame:
        """The canonical long frame of this panel (rows without a bar dropped)."""
        parts = {name: getattr(self, name).stack() for name in BAR_COLUMNS}
        long = pd.DataFrame(parts).reset_index()
        long.columns = ["date", "symbol", *BAR_COLUMNS]
        long = long.loc[long[["open", "high", "low", "close"]].notna().any(axis=1)]  # pandas 3 stacks NaN too
        return long[["symbol", "date", *BAR_COLUMNS]].sort_values(["symbol", "date"], ignore_index=True)


def used_categories(values: pd.Categorical | pd.Series) -> pd.Categorical:
    """``values`` (a categorical or a categorical Series) without the categories no row uses, the
    others in their order: pandas' ``remove_unused_categories`` sorts every code to find them
    (0.1 s for a few million bars), a count of the codes does."""
    values = values.array if isinstance(values, pd.Series) else values
    codes = np.asarray(values.codes)
    n = len(values.categories)
    missing = bool(len(codes)) and int(codes.min()) < 0
    used = np.bincount(codes[codes >= 0] if missing else codes, minlength=n).astype(bool)
    if used.all():
        return values
    remap = np.full(n, -1, dtype=np.int64)
    remap[used] = np.arange(int(used.sum()))
    new_codes = remap[codes]
    if missing:
        new_codes[codes < 0] = -1
    return pd.Categorical.from_codes(new_codes, categories=values.categories[used], ordered=values.ordered,
                                     validate=False)


DAY_NS = 86_400 * 10**9
"""Nanoseconds in a day: a session date is a stamp divisible by it."""
MARKABLE_DAYS = 200_000
"""Most days between the first and last of a set of session dates still counted by marking each
day's number in an array of flags (a few hundred years), not by hashing every date."""
NAT_NS = int(np.iinfo(np.int64).min)
"""NaT's value in a datetime64[ns] array seen as int64."""
SMALL_CHUNK = 1 << 13
"""Elements of a temporary made piece by piece: 64 KiB of int64, under the process's mmap threshold
(:data:`hybrid_core.ops.memory.MMAP_THRESHOLD`), so the pieces reuse the heap instead of fresh pages."""


def at_midnight(stamps: np.ndarray) -> bool:
    """True when every int64 nanosecond stamp is a midnight (NaT is not), judged :data:`SMALL_CHUNK`
    stamps at a time: no stamp-sized temporary (a fresh 38 MB array costs ~0.05 s of page faults)."""
    return not any((stamps[i:i + SMALL_CHUNK] % DAY_NS).any() for i in range(0, len(stamps), SMALL_CHUNK))


def session_codes(dates: pd.Series | np.ndarray) -> tuple[np.ndarray, pd.DatetimeIndex]:
    """(code of each date, the distinct dates in order): ``pd.factorize(dates, sort=True)``, but for
    dates at midnight (session dates) counted by day number, without hashing every bar."""
    values = np.asarray(dates, dtype="datetime64[ns]")
    stamps = values.view(np.int64)
    day = DAY_NS
    if len(stamps) and not np.isnat(values).any():
        lo, hi = int(stamps.min()), int(stamps.max())
        if (hi - lo) // day < MARKABLE_DAYS and at_midnight(stamps):
            number = stamps - lo
            number //= day
            present = np.zeros((hi - lo) // day + 1, dtype=bool)
            present[number] = True
            code_of = np.cumsum(present) - 1
            distinct = (np.flatnonzero(present) * day + lo).view("datetime64[ns]")
            # each day number replaced by its code in place ('clip': element by element, unbuffered)
            return np.take(code_of, number, out=number, mode="clip"), pd.DatetimeIndex(distinct)
    codes, uniques = pd.factorize(pd.DatetimeIndex(values), sort=True)
    return codes, pd.DatetimeIndex(uniques)


def symbol_index(symbols: Iterable[Any]) -> pd.Index:
    """Symbols as the columns of wide frames: Python strings (``object``), not pandas' pyarrow
    strings, which a live cycle would turn back into Python strings on every walk over the
    columns (ten times slower for a few hundred labels, and it walks them many times a session)."""
    return pd.Index([str(s) for s in symbols], dtype=object, name="symbol")


def date_positions(sorted_dates: np.ndarray, dates: np.ndarray) -> np.ndarray:
    """Position of each of ``dates`` in the sorted distinct ``sorted_dates`` (both ``datetime64``),
    -1 where absent: ``DatetimeIndex.get_indexer`` without pandas' per-call cost."""
    rows = np.searchsorted(sorted_dates, dates)
    found = rows < len(sorted_dates)
    found[found] = sorted_dates[rows[found]] == dates[found]
    return np.where(found, rows, -1)


_POSITIONS: dict[tuple[str, ...], tuple[pd.Index, np.ndarray, pd.Index]] = {}
"""Kept answers of :func:`kept_columns`: a live loop asks for the same universe every cycle."""


def column_positions(columns: pd.Index, symbols: Sequence[str]) -> np.ndarray:
    """Position of each of ``symbols`` among ``columns`` (-1: absent), read-only (see :func:`kept_columns`)."""
    return kept_columns(columns, symbols)[0]


def kept_columns(columns: pd.Index, symbols: Sequence[str]) -> tuple[np.ndarray, pd.Index]:
    """(position of each of ``symbols`` among ``columns`` or -1, the columns of a selection of
    ``symbols``). Kept for the last few symbol lists asked for, as long as they are asked of the
    very same columns object: a replay's panels all share their columns, and its selections then
    share theirs, so a strategy's own lookups on them are kept answers too."""
    key = tuple(symbols)
    kept = _POSITIONS.get(key)
    if kept is not None and kept[0] is columns:
        return kept[1], kept[2]
    if len(key) == len(columns) and columns.tolist() == list(key):
        positions = np.arange(len(key))
    else:
        positions = np.asarray(columns.get_indexer(pd.Index(key, dtype=object)), dtype=np.int64)
    positions.setflags(write=False)
    selected = columns[positions] if bool((positions >= 0).all()) else symbol_index(key)
    if len(_POSITIONS) >= 8:
        _POSITIONS.pop(next(iter(_POSITIONS)))
    _POSITIONS[key] = (columns, positions, selected)
    return positions, selected


def _rows_of(panel: Panel, name: str, lo: int, hi: int) -> pd.DataFrame:
    return getattr(panel, name).iloc[lo:hi]  # type: ignore[no-any-return]


def _gather(values: np.ndarray, positions: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Columns ``positions`` of ``values`` (dates x symbols), NaN where a position is absent (-1)."""
    by_column = values.T  # a frame's float block is stored column by column: whole columns copy fast
    if present.all():
        return by_column.take(positions, axis=0).T  # type: ignore[no-any-return]
    out = np.empty((len(positions), len(values)))
    out[present] = by_column.take(positions[present], axis=0)
    out[~present] = np.nan
    return out.T


@attrs.define
class Signals:
    """What a strategy wants, for every (date, symbol) of its panel, as wide frames.

    All frames share the index (dates) and columns (the strategy's universe).

    - ``entry``: buy at the next open if the symbol is neither held nor already being bought.
    - ``exit``: sell the whole position at the next open if it is held.
    - ``keep``: the position is re-selected: restart its time-stop count at this close.
    - ``weight``: target value of an entry as a fraction of portfolio value at this close.
    - ``decided``: per date, True when the strategy took a decision (a rebalance day for
      weekly strategies, every bar for daily ones). A pending buy of this strategy whose
      symbol is not entered again on a decided date is cancelled.
    - ``exit_reason``: label written on trades that this strategy closes
      (``"rebalance"`` or ``"signal"``).
    - ``info``: the numbers behind each decision (score, rank, adx, z, sma...), wide
      frames, carried into the trade audit and logs.
    """

    entry: pd.DataFrame
    exit: pd.DataFrame
    keep: pd.DataFrame
    weight: pd.DataFrame
    decided: pd.Series
    exit_reason: str = "signal"
    info: dict[str, pd.DataFrame] = attrs.field(factory=dict)

    def row(self, date: pd.Timestamp) -> Decision:
        """The decision of one date, as the backtester and the live cycle read it
        (:func:`hybrid_core.account.decisions.decision_at`)."""
        from .account.decisions import decision_at

        return decision_at(self, date)


@attrs.define
class Decision:
    """One strategy's decision at one close: what to enter (with weights), exit and keep."""

    date: pd.Timestamp
    decided: bool
    entries: dict[str, float] = attrs.field(factory=dict)
    exits: list[str] = attrs.field(factory=list)
    keeps: list[str] = attrs.field(factory=list)
    exit_reason: str = "signal"
    info: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    strategy: str = ""


@attrs.define
class Position:
    """An open position as the engine tracks it (backtest book, live state database)."""

    symbol: str
    qty: float
    entry_price: float
    entry_date: pd.Timestamp
    strategy: str
    bars_held: int = 0
    """The symbol's own bars since entry (the entry bar is 1) or since the last restart."""
    stop_price: float | None = None


@attrs.define
class OrderIntent:
    """An order decided at a close, to be executed at the symbol's next open."""

    symbol: str
    side: Side
    qty: float
    strategy: str
    reason: str
    decision_date: pd.Timestamp
    ref_price: float
    """The close at which the order was decided (for sizing and max order value)."""
    signal: dict[str, Any] = attrs.field(factory=dict)

    @property
    def value(self) -> float:
        """Order value at the decision close."""
        return abs(self.qty * self.ref_price)


@attrs.define
class Fill:
    """An executed order (or a stop that triggered)."""

    symbol: str
    side: Side
    qty: float
    price: float
    date: pd.Timestamp
    strategy: str
    reason: str
    commission: float = 0.0


@attrs.frozen
class OrderRequest:
    """What the live cycle asks a broker to do. ``client_order_id`` makes it idempotent."""

    client_order_id: str
    symbol: str
    side: Side
    qty: float
    order_type: Literal["market", "stop", "stop_limit"] = "market"
    stop_price: float | None = None
    limit_price: float | None = None
    time_in_force: Literal["day", "gtc", "ioc", "opg"] = "day"
    strategy: str = ""
    reason: str = "signal"
    decision_date: str = ""
    ref_price: float = 0.0


OrderState = Literal["pending", "new", "accepted", "partially_filled", "filled", "canceled",
                     "rejected", "expired"]


@attrs.define
class OrderStatus:
    """A broker's confirmed view of one order (an unconfirmed one is
    :class:`~hybrid_core.errors.OrderUnconfirmed`, never a status)."""

    client_order_id: str
    broker_order_id: str
    symbol: str
    side: Side
    qty: float
    """Quantity as the broker holds the order (after its rounding)."""
    status: OrderState
    filled_qty: float = 0.0
    filled_avg_price: float | None = None
    filled_at: str | None = None
    """ISO time of the fill, UTC (``...Z``), as the broker reported it."""
    order_type: str = "market"
    stop_price: float | None = None
    """Stop price as the broker holds it (after rounding to the price tick)."""
    commission: float = 0.0
    """Commission charged on the fill (account currency)."""
    submitted_at: str | None = None
    """ISO time, UTC (``...Z``), at which the broker received the order."""


@attrs.define
class BrokerPosition:
    """A position as the broker reports it (symbols in hybrid's form: ``BTC/USD``)."""

    symbol: str
    qty: float
    avg_entry_price: float
    min_order_qty: float | None = None
    """Smallest quantity the exchange accepts in an order for this symbol (None: not known).
    A position below it cannot be sold: it is dust (crypto fees taken in the asset leave some)."""


@attrs.define
class AccountSnapshot:
    """Cash and status of the broker account."""

    cash: float
    equity: float
    buying_power: float
    status: str = "ACTIVE"
    trading_blocked: bool = False


@attrs.define
class HealthReport:
    """Result of a broker health check; ``ok`` False stops the run before the first order."""

    ok: bool
    reason: str = ""
    details: dict[str, Any] = attrs.field(factory=dict)


@attrs.define
class CycleContext:
    """What components may know about the cycle they run in."""

    now: pd.Timestamp
    mode: Literal["paper", "live", "backtest"]
    dry_run: bool = False
    profile_name: str = "default"
    portfolio_value: float = 0.0
    positions: Mapping[str, Position] = attrs.field(factory=dict)
    peak_value: float = 0.0
    day_start_value: float = 0.0
    state: Any = None


class Component:
    """Base of every component. ``Params`` declares the validated parameters."""

    kind: ClassVar[str] = ""
    plugin: str = ""
    """The plugin (distribution) that registered the component, for error messages."""
    Params: ClassVar[type] = attrs.make_class("NoParams", {})
    profile_dir: Path | None = None
    """Folder of the run profile; relative paths in params are taken from it."""

    def __init__(self, params: Any = None) -> None:
        self.params = params if params is not None else self.Params()

    def close(self) -> None:
        """Release resources (files, sessions). Called once when the run ends."""

    def offline_check(self) -> Sequence[HybridError]:
        """Offline self-check, run by ``hybrid validate``: what would stop a run at set-up.

        No network, no orders, nothing written. Return one error per problem, of the class a
        run would raise (a missing or unreadable file: :class:`~hybrid_core.errors.DataError`;
        incomplete configuration such as unset key variables: :class:`ProfileError`). Cheap:
        read a file's header or schema, never the whole file. Default: no problem.
        """
        return ()


class DataSource(Component):
    """Gives daily bars in the canonical long format, adjusted per STRATEGIES.md."""

    kind: ClassVar[str] = "data_source"

    def fetch(self, symbols: Sequence[str], start: pd.Timestamp | None,
              end: pd.Timestamp | None) -> pd.DataFrame:
        """Bars for ``symbols`` with ``start <= date <= end`` (None: unbounded).

        Returns the canonical long frame: ``symbol, date, open, high, low, close, volume``,
        float64 prices, tz-naive normalised dates, sorted by (symbol, date), no duplicates,
        rows without a positive price dropped. Raises :class:`~hybrid_core.errors.DataError`
        naming the file or symbols when nothing usable comes back.
        """
        raise NotImplementedError

    def fetch_unchecked(self, symbols: Sequence[str], start: pd.Timestamp | None,
                        end: pd.Timestamp | None) -> pd.DataFrame:
        """The bars as the source holds them, for the engine's quality gate to judge.

        Same columns as :meth:`fetch`, but duplicate or bad rows may still be there and the
        order is free; the gate (:mod:`hybrid_core.data.quality`) then refuses, drops or keeps
        them under the profile's ``data.quality``. Optional: the default is :meth:`fetch`
        (sources that clean their own bars lose nothing; the gate still checks them).
        """
        return self.fetch(symbols, start, end)

    def latest_date(self, symbols: Sequence[str]) -> pd.Timestamp | None:
        """The most recent session any of ``symbols`` has a bar for, if cheaply known.

        The live cycle uses it to pick the decision date when none is given; None (the
        default) means "today". File-backed sources return their last date.
        """
        return None


class Strategy(Component):
    """A strategy: one required method, :meth:`signals`, vectorised over a panel.

    The backtester calls ``signals`` once over the whole history; the live cycle calls it
    over a lookback window and acts on the last row. Path-dependent rules (stops, time
    stops, cash) are the engine's job, not the strategy's.
    """

    kind: ClassVar[str] = "strategy"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Wrap a subclass's own ``signals`` so that a failure in user code becomes a
        :class:`~hybrid_core.errors.StrategyError` naming the strategy (freqtrade-style)."""
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("signals")
        if own is None or getattr(own, "_wrapped_by_hybrid", False):
            return

        @functools.wraps(own)
        def signals(self: Strategy, panel: Panel) -> Signals:
            try:
                return own(self, panel)
            except HybridError:
                raise
            except Exception as exc:
                raise StrategyError(f"strategy {self.name!r} ({type(self).__name__}) failed in signals(): "
                                    f"{type(exc).__name__}: {exc}") from exc

        signals._wrapped_by_hybrid = True  # type: ignore[attr-defined]
        cls.signals = signals  # type: ignore[method-assign]

    def __init__(self, params: Any = None, *, name: str = "", universe: Sequence[str] | None = None,
                 allocation: float = 1.0) -> None:
        super().__init__(params)
        self.name = name or type(self).__name__
        if not 0 < allocation <= 1:
            raise ProfileError(f"strategy {self.name!r}: allocation must be in (0, 1], got {allocation!r}")
        self.allocation = allocation
        self._universe = list(universe) if universe else list(self.default_universe())

    def default_universe(self) -> Sequence[str]:
        """Symbols traded when the profile does not list any."""
        return []

    @property
    def universe(self) -> list[str]:
        """The symbols this strategy trades."""
        return list(self._universe)

    def lookback(self) -> int:
        """Sessions of history one live decision needs (the live cycle loads at least this)."""
        return 60

    def signals(self, panel: Panel) -> Signals:
        """Signals for every date and symbol of ``panel`` (only the strategy's universe).

        Must use, for a date t, only bars up to and including t (no lookahead).
        """
        raise NotImplementedError

    def explain(self, panel: Panel, signals: Signals, date: pd.Timestamp) -> list[str]:
        """Lines saying why the strategy did or did not signal at ``date`` (for logs)."""
        return []


class RiskRule(Component):
    """A risk rule. Each method has a safe default, so a rule overrides only what it needs.

    Every method applies in backtests, replays, paper and live runs alike, at the same point
    of the decision. ``vet`` sees new entries only: orders that reduce exposure (exits) pass
    every rule unless the rule sets ``sees_exits = True`` (the kill switch does); stop
    placements and cancels are never vetted. In a backtest ``context.mode`` is ``"backtest"``
    and ``context.state`` is None.
    """

    kind: ClassVar[str] = "risk_rule"
    sees_exits: ClassVar[bool] = False
    """True: ``vet`` also sees exits (a rule that must be able to stop every order)."""

    def stop_price(self, position: Position) -> float | None:
        """Price of a protective sell stop for a freshly opened position, or None."""
        return None

    def time_exit(self, position: Position) -> str | None:
        """At a close: the exit reason if ``position`` must be sold at the next open, else None."""
        return None

    def time_exit_bars(self) -> int | None:
        """The ``bars_held`` below which :meth:`time_exit` returns None for every position, or None
        (the default: any count may exit). With a number, the planner asks :meth:`time_exit` only
        about positions held that many bars or more, instead of every position at every close."""
        return None

    def vet(self, order: OrderIntent, context: CycleContext) -> str | None:
        """Before an order is sent: a one-line refusal reason, or None to let it through."""
        return None


class Broker(Component):
    """Executes orders. Implementations: the paper simulator (core) and Alpaca (plugin).

    ``submit`` must be idempotent on ``client_order_id``: submitting an id the broker
    already knows returns that order instead of creating a second one.

    Outcomes are told apart by what a method raises: :class:`~hybrid_core.errors.OrderRejected`
    is the broker's explicit refusal (the order does not exist there), and
    :class:`~hybrid_core.errors.OrderUnconfirmed` (or any other error) means the outcome is not
    known: the live cycle then records the order ``unknown`` and asks :meth:`get_order` again,
    never taking it for rejected. Retries of failed requests (rate limits, timeouts) are the
    broker's, within its own per-cycle budget; the live cycle does not repeat a call in the
    same breath.
    """

    kind: ClassVar[str] = "broker"
    simulated: ClassVar[bool] = False
    """True for brokers that fill from bars (the paper simulator)."""

    def configure(self, *, mode: Literal["paper", "live"], state_dir: str) -> None:
        """Called once before use with the mode chosen by the safety layer and a folder for state."""

    def start_cycle(self, now: pd.Timestamp) -> None:
        """A live cycle begins (before any other call of that cycle): reset per-cycle limits,
        such as a time budget for retries. Default: nothing."""

    def health_check(self) -> HealthReport:
        """Connectivity and account status; called before the first order of a run."""
        raise NotImplementedError

    def account(self) -> AccountSnapshot:
        """Cash, equity and status of the account."""
        raise NotImplementedError

    def positions(self) -> list[BrokerPosition]:
        """Open positions at the broker."""
        raise NotImplementedError

    def open_orders(self) -> list[OrderStatus]:
        """Orders not yet filled, cancelled or rejected."""
        raise NotImplementedError

    def submit(self, order: OrderRequest) -> OrderStatus:
        """Send an order (idempotent on ``client_order_id``); returns the broker's acknowledgement.

        Raises :class:`~hybrid_core.errors.OrderRejected` when the broker refused it (or it breaks
        the exchange's rules and was not sent), :class:`~hybrid_core.errors.OrderUnconfirmed` when
        it may or may not have reached the broker.
        """
        raise NotImplementedError

    def get_order(self, client_order_id: str) -> OrderStatus | None:
        """The order with this client id, or None when the broker answers that it has none.

        Raises :class:`~hybrid_core.errors.OrderUnconfirmed` when the broker could not be asked.
        """
        raise NotImplementedError

    def cancel(self, client_order_id: str) -> OrderStatus | None:
        """Ask the broker to cancel an order; returns the order as the broker then sees it.

        ``canceled`` confirms the cancel; ``filled`` (or another closed state) means it closed
        first; an open state means the cancel is not confirmed yet (ask again later). None: the
        broker has no such order. Raises :class:`~hybrid_core.errors.OrderUnconfirmed` when the
        request or its confirmation got no answer.
        """
        raise NotImplementedError

    def sync(self, panel: Panel, now: pd.Timestamp) -> list[OrderStatus]:
        """Bring the broker up to ``now``; return orders that filled since the last call.

        The paper simulator fills pending orders and stops from ``panel``'s bars here;
        a real broker reports fills it has seen.
        """
        return []


@attrs.frozen
class BacktestRequest:
    """What ``hybrid backtest`` hands a :class:`BacktestEngine`: one object, so that a new
    backtest option is one new field that every engine sees."""

    panel: Panel
    """Bars of every strategy's universe up to the end of the window, warm-up bars included."""
    strategies: Sequence[Strategy]
    risk_rules: Sequence[RiskRule] = ()
    cash: float = 1_000_000.0
    slippage_bps: float = 0.0
    commission: float = 0.0
    """A fraction of each fill's value."""
    start: pd.Timestamp | None = None
    """First session on which orders may be decided: bars before it only warm the signals up.
    None: every date of ``panel`` trades (a cold start)."""
    profile_name: str = "default"
    """The run profile's name, as risk rules see it in their :class:`CycleContext`."""
    progress: bool | None = None
    """Show a progress bar on stderr (None: when stderr is a terminal)."""
    signals: Mapping[str, Signals] | None = None
    """Each strategy's signals over ``panel`` by strategy name, when already computed (for the
    lookahead check): an engine takes them instead of running the strategy again. Their ``info``
    may be left out (a backtest does not carry it)."""


class BacktestEngine(Component):
    """Runs ``hybrid backtest``: a profile's strategies and risk rules over history, per STRATEGIES.md.

    ``native`` (hybrid's own backtester, the default) is built in; a plugin adds another through
    ``hybrid_register_backtest_engines`` and ``hybrid backtest --engine NAME`` picks it. The
    plugin host imports every engine's module to list it, so an engine imports its heavy
    dependencies inside :meth:`run`, never at module level.
    """

    kind: ClassVar[str] = "backtest_engine"

    def check(self, strategies: Sequence[Strategy], risk_rules: Sequence[RiskRule]) -> None:
        """Refuse, before any bar is loaded, what this engine cannot run faithfully: raise a
        :class:`~hybrid_core.errors.HybridError` whose one line names the problem and the fix."""

    def run(self, request: BacktestRequest) -> BacktestResult:
        """Backtest ``request`` and return the equity curve from ``start``, the round trips (the core's
        round-trip table, open positions as ``end_of_data``), the fills, the refused orders and the
        timings ``signals``, ``loop``, ``engine``."""
        raise NotImplementedError
