"""Contract checks a plugin's own test suite calls on its components.

Each ``check_*`` function raises :class:`ContractViolation` (an ``AssertionError``, so pytest
shows it as a test failure) listing every problem found, one line each; the matching
``*_problems`` function returns those lines instead. For example::

    from hybrid_core.testing import check_strategy, check_broker, sample_panel

    def test_strategy_contract():
        check_strategy(MyStrategy, sample_panel(), universe=["AAPL", "MSFT", "XOM"])

    def test_broker_contract(tmp_path):
        check_broker(MyBroker(), state_dir=tmp_path)      # places and cancels one order!

Run :func:`check_broker` against a paper or simulated account only: it submits one small
market order and cancels it.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pandas as pd

from ..contracts import (
    BAR_COLUMNS,
    AccountSnapshot,
    Broker,
    BrokerPosition,
    Component,
    CycleContext,
    DataSource,
    HealthReport,
    OrderIntent,
    OrderRequest,
    OrderStatus,
    Panel,
    Position,
    RiskRule,
    Signals,
    Strategy,
    is_crypto,
)
from ..errors import StrategyError

CANONICAL_COLUMNS = ("symbol", "date", *BAR_COLUMNS)
EXIT_REASONS = ("signal", "rebalance")


class ContractViolation(AssertionError):
    """A component does not honour its contract; the message lists every problem, one a line."""


def _raise_if(problems: list[str], what: str) -> None:
    if problems:
        raise ContractViolation(f"{what} breaks the contract:\n  - " + "\n  - ".join(problems))


def _fmt(exc: BaseException) -> str:
    if isinstance(exc, StrategyError) and exc.__cause__ is not None:  # the strategy's own error
        exc = exc.__cause__
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# ------------------------------------------------------------------ common

def class_problems(cls: type, base: type[Component]) -> list[str]:
    """What every component class needs: the base class, a name, a docstring, a defaulted attrs Params."""
    problems: list[str] = []
    if not (isinstance(cls, type) and issubclass(cls, base)):
        return [f"{cls!r} does not subclass hybrid_core.contracts.{base.__name__}"]
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        problems.append(f"{cls.__name__}: set a class attribute `name = \"...\"` (the name profiles use)")
    if not (cls.__doc__ or "").strip():
        problems.append(f"{cls.__name__}: add a class docstring "
                        f"(its first line is shown by `hybrid plugins`)")
    params_cls = getattr(cls, "Params", None)
    if params_cls is None or not attrs.has(params_cls):
        problems.append(f"{cls.__name__}.Params must be an attrs class (@attrs.define(kw_only=True))")
        return problems
    no_default = [a.name for a in attrs.fields(params_cls) if a.default is attrs.NOTHING]
    if no_default:
        problems.append(f"{cls.__name__}.Params: give every field a default "
                        f"(missing: {', '.join(no_default)})")
    else:
        try:
            params_cls()
        except Exception as exc:
            problems.append(f"{cls.__name__}.Params() with its defaults raises {_fmt(exc)}")
    return problems


def _split(component: Any) -> tuple[Any, Any]:
    """(class, instance or None) of a component given as a class or an instance."""
    return (component, None) if isinstance(component, type) else (type(component), component)


def params_for(cls: type[Component], params: Any) -> tuple[Any, list[str]]:
    """``cls.Params`` from what a test gives: None (the defaults), a ``Params`` instance, or a mapping
    checked exactly as a profile's ``params:`` block is (same messages). Returns (params, problems)."""
    if params is None or isinstance(params, cls.Params):
        return params, []
    if isinstance(params, Mapping):
        from ..errors import ProfileError
        from ..profile import problem_lines, structure

        try:
            return structure(dict(params), cls.Params, "params"), []
        except ProfileError as exc:
            return None, problem_lines(exc)
    return None, [f"params must be a mapping or a {cls.__name__}.Params instance, got {type(params).__name__}"]


# ---------------------------------------------------------------- strategy

def strategy_problems(strategy: type[Strategy] | Strategy, panel: Panel | None = None, *,
                      universe: Sequence[str] | None = None, params: Any = None,
                      lookahead: bool = True, n_cuts: int = 4) -> list[str]:
    """Every way ``strategy`` (a class or an instance) breaks the Strategy contract on ``panel``, all
    found in one pass (a lookahead is reported beside any other problem of the signals).

    A class is built as ``cls(params, name=cls.name, universe=..., allocation=0.5)``; ``params`` is
    a mapping (checked as a profile's ``params:``), a ``Params`` instance, or None for the defaults.
    The universe defaults to the strategy's own default universe (kept to symbols the panel has),
    else the panel's symbols. ``panel`` defaults to :func:`hybrid_core.testing.sample_panel`.
    """
    cls, instance = _split(strategy)
    problems = class_problems(cls, Strategy)
    if problems and not (isinstance(cls, type) and issubclass(cls, Strategy)):
        return problems
    if panel is None:
        from .samples import sample_panel

        panel = sample_panel()
    if instance is None:
        parsed, bad_params = params_for(cls, params)
        if bad_params:
            return [*problems, *bad_params]
        try:
            probe = cls(parsed, name=getattr(cls, "name", ""))
            symbols = list(universe) if universe is not None else _default_symbols(probe.universe, panel)
            instance = cls(parsed, name=getattr(cls, "name", ""), universe=symbols, allocation=0.5)
        except Exception as exc:
            return [*problems, f"{cls.__name__}(params, name=, universe=, allocation=) raises {_fmt(exc)}"]
    symbols = instance.universe
    if not symbols:
        return [*problems, f"{cls.__name__}: empty universe; pass universe=[...] to the check"]
    sub = panel.select(symbols)
    if not len(sub.dates):
        return [*problems, f"{cls.__name__}: the panel has no bars for the universe {symbols[:5]}"]
    try:
        lookback = instance.lookback()
        if isinstance(lookback, bool) or not isinstance(lookback, (int, np.integer)) or lookback < 1:
            problems.append(f"lookback() must return a positive whole number of sessions, got {lookback!r}")
    except Exception as exc:
        problems.append(f"lookback() raises {_fmt(exc)}")
    before = sub.close.copy()
    try:
        signals = instance.signals(sub)
    except Exception as exc:
        return [*problems, f"signals(panel) raises {_fmt(exc)}"]
    if not sub.close.equals(before):
        problems.append("signals() modified the panel it was given; work on copies")
    if not isinstance(signals, Signals):
        return [*problems, f"signals() must return hybrid_core.contracts.Signals, "
                           f"got {type(signals).__name__}"]
    problems += signals_problems(signals, sub, symbols)
    if not _frames_present(signals):
        return problems  # nothing below can read signals without its frames
    try:
        signals.row(sub.dates[-1])
    except Exception as exc:
        problems.append(f"Signals.row(last date) raises {_fmt(exc)}")
    try:
        lines = instance.explain(sub, signals, sub.dates[-1])
        if not isinstance(lines, list) or not all(isinstance(x, str) for x in lines):
            problems.append(f"explain() must return a list of str, got {lines!r:.80}")
    except Exception as exc:
        problems.append(f"explain() raises {_fmt(exc)}")
    if lookahead:
        problems += _lookahead_problems(instance, sub, n_cuts)
    return problems


def _frames_present(signals: Signals) -> bool:
    """The flags and weights are frames and ``decided`` a Series: enough to compare runs."""
    return (all(isinstance(getattr(signals, f), pd.DataFrame) for f in ("entry", "exit", "keep", "weight"))
            and isinstance(signals.decided, pd.Series))


def _lookahead_problems(strategy: Strategy, panel: Panel, n_cuts: int) -> list[str]:
    from .lookahead import check_no_lookahead

    try:
        report = check_no_lookahead(strategy, panel, n_cuts=n_cuts)
    except StrategyError as exc:  # the strategy raised on a cut panel: the message says where
        return [str(exc)]
    except Exception as exc:
        return [f"the lookahead check could not compare the signals: {_fmt(exc)}"]
    return [] if report.ok else [report.message]


def _default_symbols(default: Sequence[str], panel: Panel) -> list[str]:
    """The strategy's default universe within the panel, else the panel's symbols of the same kind."""
    present = [s for s in default if s in set(panel.symbols)]
    if present or not default:
        return present or panel.symbols
    kinds = {is_crypto(s) for s in default}
    return [s for s in panel.symbols if is_crypto(s) in kinds]


def signals_problems(signals: Signals, panel: Panel, universe: Sequence[str]) -> list[str]:
    """Shape and dtype problems of ``signals`` computed on ``panel`` for ``universe``."""
    problems: list[str] = []
    index = panel.dates
    wanted = set(universe)
    for field in ("entry", "exit", "keep", "weight"):
        frame = getattr(signals, field)
        if not isinstance(frame, pd.DataFrame):
            problems.append(f"signals.{field} must be a DataFrame, got {type(frame).__name__}")
            continue
        if not frame.index.equals(index):
            problems.append(f"signals.{field}: index must be the panel's dates ({len(index)} dates), "
                            f"got {len(frame.index)} rows")
        if set(map(str, frame.columns)) != wanted:
            extra = sorted(set(map(str, frame.columns)) - wanted)[:5]
            missing = sorted(wanted - set(map(str, frame.columns)))[:5]
            problems.append(f"signals.{field}: columns must be the universe "
                            f"(extra {extra}, missing {missing})")
        if field != "weight":
            bad = [str(c) for c, dt in frame.dtypes.items() if dt != np.dtype(bool)]
            if bad:
                problems.append(f"signals.{field} must hold bool columns (not bool: {', '.join(bad[:5])})")
    if problems:
        return problems
    weight = signals.weight.reindex(columns=signals.entry.columns)
    try:
        w = weight.to_numpy(dtype="float64")
    except (TypeError, ValueError):
        return [*problems, "signals.weight must hold numbers"]
    entered = signals.entry.to_numpy(dtype=bool)
    if (~np.isfinite(w[entered])).any():
        problems.append("signals.weight must be finite wherever entry is True")
    elif (w[entered] <= 0).any() or (w[entered] > 1).any():
        problems.append("signals.weight must be in (0, 1] wherever entry is True "
                        "(a share of portfolio value)")
    if (signals.entry.to_numpy(dtype=bool) & signals.exit.to_numpy(dtype=bool)).any():
        problems.append("entry and exit are both True on the same date and symbol")
    decided = signals.decided
    if not isinstance(decided, pd.Series):
        problems.append(f"signals.decided must be a bool Series, got {type(decided).__name__}")
    else:
        if decided.dtype != np.dtype(bool):
            problems.append(f"signals.decided must have dtype bool, got {decided.dtype}")
        if not decided.index.equals(index):
            problems.append("signals.decided: index must be the panel's dates")
        else:
            undecided = ~decided.to_numpy(dtype=bool)
            if entered[undecided].any():
                problems.append("entries on a date where decided is False; "
                                "set decided on every decision date")
    if signals.exit_reason not in EXIT_REASONS:
        problems.append(f"signals.exit_reason must be one of {EXIT_REASONS}, got {signals.exit_reason!r}")
    if not isinstance(signals.info, dict):
        problems.append("signals.info must be a dict of wide DataFrames")
    else:
        for key, frame in signals.info.items():
            if not isinstance(frame, pd.DataFrame) or not frame.index.equals(index):
                problems.append(f"signals.info[{key!r}] must be a DataFrame indexed by the panel's dates")
    return problems


def check_strategy(strategy: type[Strategy] | Strategy, panel: Panel | None = None, *,
                   universe: Sequence[str] | None = None, params: Any = None, lookahead: bool = True,
                   n_cuts: int = 4) -> None:
    """Raise :class:`ContractViolation` listing :func:`strategy_problems`, if any."""
    cls = strategy if isinstance(strategy, type) else type(strategy)
    _raise_if(strategy_problems(strategy, panel, universe=universe, params=params, lookahead=lookahead,
                                n_cuts=n_cuts), f"strategy {getattr(cls, 'name', cls.__name__)!r}")


# --------------------------------------------------------------- risk rule

def _sample_positions() -> list[Position]:
    day = pd.Timestamp("2021-04-19")
    return [Position(symbol=sym, qty=qty, entry_price=price, entry_date=day, strategy="kit", bars_held=held)
            for sym, qty, price in (("AAPL", 100.0, 134.5), ("BTC/USD", 0.5, 56_000.0))
            for held in (0, 1, 4, 5, 20)]


def risk_rule_problems(rule: type[RiskRule] | RiskRule, *, params: Any = None) -> list[str]:
    """Every way ``rule`` breaks the RiskRule contract (stop below entry, str-or-None answers).

    A class is built as ``cls(params)``; ``params`` as for :func:`strategy_problems`.
    """
    cls, instance = _split(rule)
    problems = class_problems(cls, RiskRule)
    if problems and not (isinstance(cls, type) and issubclass(cls, RiskRule)):
        return problems
    if instance is None:
        parsed, bad_params = params_for(cls, params)
        if bad_params:
            return [*problems, *bad_params]
        try:
            instance = cls(parsed if parsed is not None else cls.Params())
        except Exception as exc:
            return [*problems, f"{cls.__name__}(Params()) raises {_fmt(exc)}"]
    context = CycleContext(now=pd.Timestamp("2021-04-19"), mode="paper", portfolio_value=1_000_000.0,
                           peak_value=1_000_000.0, day_start_value=1_000_000.0)
    try:
        floor = instance.time_exit_bars()
        if floor is not None and not (isinstance(floor, int) and not isinstance(floor, bool)):
            problems.append(f"time_exit_bars() must return None or a whole number of bars, got {floor!r}")
            floor = None
    except Exception as exc:
        problems.append(f"time_exit_bars() raises {_fmt(exc)}")
        floor = None
    for pos in _sample_positions():
        try:
            stop = instance.stop_price(pos)
            if stop is not None and not (isinstance(stop, (int, float)) and math.isfinite(stop)
                                         and 0 < stop < pos.entry_price):
                problems.append(f"stop_price({pos.symbol} @ {pos.entry_price}) must be None or a price "
                                f"between 0 and the entry price, got {stop!r}")
        except Exception as exc:
            problems.append(f"stop_price() raises {_fmt(exc)}")
        try:
            reason = instance.time_exit(pos)
            if reason is not None and not (isinstance(reason, str) and reason):
                problems.append(f"time_exit() must return None or a reason string, got {reason!r}")
            if reason is not None and floor is not None and pos.bars_held < floor:
                problems.append(f"time_exit() exits a position held {pos.bars_held} bar(s), below its "
                                f"time_exit_bars() {floor}: the planner would never ask about it")
        except Exception as exc:
            problems.append(f"time_exit() raises {_fmt(exc)}")
        order = OrderIntent(symbol=pos.symbol, side="buy", qty=pos.qty, strategy="kit", reason="entry",
                            decision_date=context.now, ref_price=pos.entry_price)
        try:
            refusal = instance.vet(order, context)
            if refusal is not None and not (isinstance(refusal, str) and refusal):
                problems.append(f"vet() must return None or a one-line refusal, got {refusal!r}")
        except Exception as exc:
            problems.append(f"vet() raises {_fmt(exc)}")
    return sorted(set(problems), key=problems.index)


def check_risk_rule(rule: type[RiskRule] | RiskRule, *, params: Any = None) -> None:
    """Raise :class:`ContractViolation` if ``rule`` breaks the RiskRule contract."""
    cls = rule if isinstance(rule, type) else type(rule)
    _raise_if(risk_rule_problems(rule, params=params), f"risk rule {getattr(cls, 'name', cls.__name__)!r}")


# ------------------------------------------------------------- data source

def data_source_problems(source: DataSource, symbols: Sequence[str], start: Any, end: Any) -> list[str]:
    """Every way ``source.fetch(symbols, start, end)`` breaks the canonical long frame contract."""
    start_ts = pd.Timestamp(start) if start is not None else None
    end_ts = pd.Timestamp(end) if end is not None else None
    try:
        bars = source.fetch(list(symbols), start_ts, end_ts)
    except Exception as exc:
        return [f"fetch() raises {_fmt(exc)}"]
    if not isinstance(bars, pd.DataFrame):
        return [f"fetch() must return a DataFrame, got {type(bars).__name__}"]
    problems: list[str] = []
    if tuple(bars.columns) != CANONICAL_COLUMNS:
        return [f"columns must be {list(CANONICAL_COLUMNS)} in that order, "
                f"got {list(map(str, bars.columns))}"]
    if bars.empty:
        return [f"fetch() returned no rows for {list(symbols)[:5]} between {start} and {end}"]
    for col in BAR_COLUMNS:
        if bars[col].dtype != np.dtype("float64"):
            problems.append(f"column {col} must be float64, got {bars[col].dtype}")
    dates = bars["date"]
    if not pd.api.types.is_datetime64_dtype(dates.dtype):
        problems.append(f"column date must be tz-naive datetime64, got {dates.dtype}")
    else:
        if not (dates == dates.dt.normalize()).all():
            problems.append("dates must be normalised (midnight, no time of day)")
        if start_ts is not None and (dates < start_ts).any():
            problems.append(f"rows before start {start_ts.date()}")
        if end_ts is not None and (dates > end_ts).any():
            problems.append(f"rows after end {end_ts.date()}")
    names = bars["symbol"].astype(str)
    unknown = sorted(set(names) - set(symbols))
    if unknown:
        problems.append(f"symbols not asked for: {unknown[:5]}")
    if bars.duplicated(["symbol", "date"]).any():
        problems.append("duplicated (symbol, date) rows")
    order = pd.DataFrame({"symbol": names, "date": dates}).reset_index(drop=True)
    if not order.equals(order.sort_values(["symbol", "date"], kind="stable").reset_index(drop=True)):
        problems.append("rows must be sorted by (symbol, date)")
    prices = bars[["open", "high", "low", "close"]].to_numpy(dtype="float64", na_value=np.nan)
    if not (np.isfinite(prices) & (prices > 0)).all():
        problems.append("every open/high/low/close must be a positive finite price (drop rows without one)")
    return problems


def check_data_source(source: DataSource, symbols: Sequence[str], start: Any, end: Any) -> None:
    """Raise :class:`ContractViolation` if ``source.fetch`` breaks the canonical frame contract."""
    _raise_if(data_source_problems(source, symbols, start, end),
              f"data source {getattr(source, 'name', type(source).__name__)!r}")


# ------------------------------------------------------------------ broker

def broker_problems(broker: Broker, *, state_dir: str | Path | None = None, symbol: str = "AAPL",
                    qty: float = 1.0, ref_price: float = 100.0) -> list[str]:
    """Every way ``broker`` breaks the Broker contract; submits one market buy and cancels it.

    With ``state_dir`` the broker is first configured in paper mode there.
    """
    problems: list[str] = []
    if state_dir is not None:
        try:
            broker.configure(mode="paper", state_dir=str(state_dir))
        except Exception as exc:
            return [f"configure(mode='paper', state_dir=...) raises {_fmt(exc)}"]
    checks: list[tuple[str, Any, Any]] = [("health_check()", broker.health_check, HealthReport),
                                          ("account()", broker.account, AccountSnapshot)]
    for label, call, kind in checks:
        try:
            value = call()
            if not isinstance(value, kind):
                problems.append(f"{label} must return {kind.__name__}, got {type(value).__name__}")
        except Exception as exc:
            problems.append(f"{label} raises {_fmt(exc)}")
    for label, call, kind in (("positions()", broker.positions, BrokerPosition),
                              ("open_orders()", broker.open_orders, OrderStatus)):
        try:
            value = call()
            if not isinstance(value, list) or not all(isinstance(v, kind) for v in value):
                problems.append(f"{label} must return a list of {kind.__name__}")
        except Exception as exc:
            problems.append(f"{label} raises {_fmt(exc)}")
    unknown = f"hy-kit-unknown-{uuid.uuid4().hex[:16]}"
    try:
        found = broker.get_order(unknown)
        if found is not None:
            problems.append(f"get_order(unknown id) must return None, got {found!r:.80}")
    except Exception as exc:
        problems.append(f"get_order(unknown id) raises {_fmt(exc)}")
    try:
        broker.cancel(unknown)
    except Exception as exc:
        problems.append(f"cancel(unknown id) must do nothing, raises {_fmt(exc)}")
    if problems:
        return problems
    return problems + _order_round_trip(broker, symbol, qty, ref_price)


def _order_round_trip(broker: Broker, symbol: str, qty: float, ref_price: float) -> list[str]:
    problems: list[str] = []
    cid = f"hy-kit-{uuid.uuid4().hex[:24]}"
    request = OrderRequest(client_order_id=cid, symbol=symbol, side="buy", qty=qty, strategy="kit",
                           reason="entry", decision_date=pd.Timestamp.now().strftime("%Y-%m-%d"),
                           ref_price=ref_price)
    try:
        first = broker.submit(request)
        second = broker.submit(request)
    except Exception as exc:
        return [f"submit() of a {qty} {symbol} market buy raises {_fmt(exc)}"]
    for label, status in (("submit()", first), ("a second submit() of the same id", second)):
        if not isinstance(status, OrderStatus) or status.client_order_id != cid:
            problems.append(f"{label} must return the OrderStatus of client_order_id {cid}")
    if problems:
        return problems
    if second.broker_order_id != first.broker_order_id:
        problems.append("submit() is not idempotent: the same client_order_id gave two broker orders "
                        f"({first.broker_order_id}, {second.broker_order_id})")
    same = [o for o in broker.open_orders() if o.client_order_id == cid]
    if len(same) > 1:
        problems.append(f"open_orders() lists client_order_id {cid} {len(same)} times after two submits")
    found = broker.get_order(cid)
    if found is None or found.client_order_id != cid:
        problems.append("get_order(id of a submitted order) must return its OrderStatus")
    try:
        broker.cancel(cid)
        broker.cancel(cid)
    except Exception as exc:
        problems.append(f"cancel() of a submitted order (twice) raises {_fmt(exc)}")
    after = broker.get_order(cid)
    if after is not None and after.status not in {"canceled", "filled", "expired", "rejected"}:
        problems.append(f"after cancel(), the order is still {after.status!r}")
    if any(o.client_order_id == cid for o in broker.open_orders()):
        problems.append("after cancel(), open_orders() still lists the order")
    return problems


def check_broker(broker: Broker, *, state_dir: str | Path | None = None, symbol: str = "AAPL",
                 qty: float = 1.0, ref_price: float = 100.0) -> None:
    """Raise :class:`ContractViolation` listing :func:`broker_problems`, if any."""
    _raise_if(broker_problems(broker, state_dir=state_dir, symbol=symbol, qty=qty, ref_price=ref_price),
              f"broker {getattr(broker, 'name', type(broker).__name__)!r}")
