"""The YAML run profile: attrs classes, strict structuring and component building.

Validation runs in two passes, both before anything trades:

1. the profile's own shape (:class:`RunProfile`), unknown keys refused;
2. each component's ``params`` against that component's attrs ``Params`` class, found in
   the plugin registry.

Every problem is reported as one line with its path, e.g.
``strategies[0].params.decile: expected a number, got 'ten'``; all problems are collected
and raised together in one :class:`~hybrid_core.errors.ProfileError`.
"""

from __future__ import annotations

import functools
import re
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import cattrs
import yaml
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError, IterableValidationError

from .contracts import Broker, Component, DataSource, RiskRule, Strategy
from .errors import ProfileError
from .ops.notify_targets import NotifySpec, env_reference
from .registry import ComponentRegistry

SECRET_KEY_PATTERN = re.compile(r"(secret|password|passwd|token|api_key|apikey)", re.IGNORECASE)


@attrs.define(kw_only=True)
class ComponentRef:
    """A component named in the profile, with its raw parameters."""

    name: str
    params: dict[str, Any] = attrs.field(factory=dict)


@attrs.define(kw_only=True)
class DataSpec:
    """``data:`` which data source gives bars, and its parameters."""

    source: str = "local"
    params: dict[str, Any] = attrs.field(factory=dict)
    lookback_days: int = 400
    """Calendar days of history the live cycle loads (at least every strategy's lookback)."""


@attrs.define(kw_only=True)
class StrategySpec:
    """``strategies[i]``: a strategy, its share of capital, its universe and parameters."""

    name: str
    """The component's name, bare (``equity_reversal``) or qualified (``equity_reversal:equity_reversal``)."""
    allocation: float = 1.0
    universe: list[str] | str | None = None
    """A list of symbols, or a file (.csv with a Symbol column, or .txt one per line)."""
    params: dict[str, Any] = attrs.field(factory=dict)
    id: str | None = None
    """Name used in logs, trade log and client order ids (default: the strategy's bare name)."""

    @property
    def label(self) -> str:
        """The strategy's name in this run: the same whether the profile qualifies the name or not."""
        return self.id or self.name.rpartition(":")[2]


@attrs.define(kw_only=True)
class Schedule:
    """``schedule:`` when the loop runs a cycle (``hybrid run`` without ``--once``)."""

    at: str = "16:10"
    """Local time of the daily cycle, HH:MM, after the NYSE close."""
    timezone: str = "America/New_York"
    days: str = "daily"
    """``daily`` (crypto trades every day) or ``weekdays``."""
    interval_seconds: float | None = None
    """Run every N seconds instead of daily at ``at`` (rehearsals and tests)."""
    max_failed_cycles: int = 3
    """Failed cycles in a row after which the heartbeat says ``error`` (``hybrid health`` fails);
    fewer say ``degraded``. The loop keeps running either way."""
    settle_seconds: float = 10.0
    """Seconds a cycle keeps looking up orders whose outcome the broker did not confirm (waits
    of 0.5, 1, 2, 4 s...) before it ends; still unknown, they are looked up at every cycle's start."""


@attrs.define(kw_only=True)
class Outputs:
    """``outputs:`` where the run writes; relative paths are taken from the working folder."""

    trade_log: str = "order_events.csv"
    """The order-events audit log (one row per order event; not a round-trip table)."""
    health_file: str = attrs.field(factory=lambda: _default_health_file())
    """Default: $HYBRID_HEALTH_FILE, else /tmp/hybrid_trader.health (where `hybrid health` looks)."""
    state_db: str = "state/hybrid.sqlite"
    log_file: str | None = None


@attrs.define(kw_only=True)
class BacktestSpec:
    """``backtest:`` defaults for ``hybrid backtest``."""

    cash: float = 1_000_000.0
    slippage_bps: float = 0.0
    commission: float = 0.0
    start: str | None = None
    end: str | None = None
    warmup: int | None = None
    """Sessions of history loaded before the start date so strategies start warm (no order is
    decided before the start). Default: the longest ``lookback()`` of the profile's strategies;
    0 is a cold start (how the reference cases were made). Used by backtest and replay."""
    benchmark: str = "universe"
    """What results are compared with: ``universe`` (equal-weight buy-and-hold of the strategies'
    symbols) or one symbol of the data, e.g. ``SPY`` (see engine/benchmark.py)."""


def _default_health_file() -> str:
    from .ops.heartbeat import default_health_file

    return default_health_file()


def _default_risk() -> list[ComponentRef]:
    return [ComponentRef(name=n) for n in ("stop_loss", "time_stop", "max_order_value",
                                            "max_daily_loss", "max_drawdown", "max_open_positions",
                                            "kill_switch")]


@attrs.define(kw_only=True)
class RunProfile:
    """A whole run profile. ``path`` is where it was read from (for relative data paths)."""

    name: str = "default"
    data: DataSpec = attrs.field(factory=DataSpec)
    strategies: list[StrategySpec]
    risk: list[ComponentRef] = attrs.field(factory=_default_risk)
    broker: ComponentRef = attrs.field(factory=lambda: ComponentRef(name="paper"))
    schedule: Schedule = attrs.field(factory=Schedule)
    outputs: Outputs = attrs.field(factory=Outputs)
    backtest: BacktestSpec = attrs.field(factory=BacktestSpec)
    notify: list[NotifySpec] = attrs.field(factory=list)
    """Channels to notify (Apprise URLs from the environment) and the events each wants."""
    path: Path | None = None

    @property
    def base_dir(self) -> Path:
        """The profile's folder."""
        return self.path.parent if self.path else Path.cwd()


# ---------------------------------------------------------------- structuring

def _describe(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (dict, list)):
        return f"a {'mapping' if isinstance(value, dict) else 'list'}"
    return repr(value)


def _number(value: Any, _type: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"expected a number, got {_describe(value)}")
    return float(value)


def _integer(value: Any, _type: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise ValueError(f"expected a whole number, got {_describe(value)}")
    return int(value)


def _string(value: Any, _type: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected text, got {_describe(value)}")
    return value


def _boolean(value: Any, _type: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {_describe(value)}")
    return value


def _mapping(value: Any, _type: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"expected a mapping of keys to values, got {_describe(value)}")
    return dict(value)


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


@functools.lru_cache(maxsize=1)
def make_converter() -> cattrs.Converter:
    """A strict converter: unknown keys are errors, no silent type coercion.

    Built once per process: cattrs compiles a structuring function per class on first use,
    so a fresh converter per call re-did that work for every component of a profile.
    """
    conv = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    conv.register_structure_hook(float, _number)
    conv.register_structure_hook(int, _integer)
    conv.register_structure_hook(str, _string)
    conv.register_structure_hook(bool, _boolean)
    conv.register_structure_hook_func(lambda t: t == dict[str, Any], _mapping)
    conv.register_structure_hook(Path, lambda v, _t: Path(_string(v, str)))

    def union_hook(value: Any, tp: Any) -> Any:
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return conv.structure(value, arg)
            except Exception as exc:  # try the next member
                errors.append(exc)
        names = " or ".join(_type_name(a) for a in args if a is not type(None))
        raise ValueError(f"expected {names}, got {_describe(value)}")

    conv.register_structure_hook_func(_is_union, union_hook)

    def list_hook(value: Any, tp: Any) -> list[Any]:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"expected a list, got {_describe(value)}")
        (item,) = typing.get_args(tp) or (Any,)
        return [conv.structure(v, item) if item is not Any else v for v in value]

    conv.register_structure_hook_func(
        lambda t: typing.get_origin(t) is list and typing.get_args(t) in ((str,), (float,), (int,), ()),
        list_hook)
    return conv


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is list:
        return "a list"
    return {float: "a number", int: "a whole number", str: "text", bool: "true/false"}.get(
        tp, getattr(tp, "__name__", str(tp)))


def _messages(exc: BaseException, path: str) -> list[str]:
    """Flatten a cattrs error tree into ``path: message`` lines."""
    out: list[str] = []
    if isinstance(exc, ForbiddenExtraKeysError):
        allowed = ", ".join(a.name for a in attrs.fields(exc.cl)) if attrs.has(exc.cl) else ""
        for key in sorted(exc.extra_fields):
            out.append(f"{_join(path, key)}: unknown key (allowed: {allowed})")
        return out
    if isinstance(exc, (ClassValidationError, IterableValidationError)):
        for sub, note in _pairs(exc):
            out.extend(_messages(sub, _join(path, note)))
        return out
    if isinstance(exc, ExceptionGroup):
        for sub in exc.exceptions:
            out.extend(_messages(sub, path))
        return out
    if isinstance(exc, KeyError):
        return [f"{path}: required key is missing"]
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return [f"{path}: {text}"]


def _pairs(exc: Any) -> list[tuple[BaseException, str]]:
    pairs: list[tuple[BaseException, str]] = []
    with_notes, without = exc.group_exceptions()
    for sub, note in with_notes:
        name = getattr(note, "name", None)
        index = getattr(note, "index", None)
        if name is not None:
            pairs.append((sub, str(name)))
        elif index is not None:
            pairs.append((sub, f"[{index}]"))
        else:
            pairs.append((sub, ""))
    for sub in without:
        pairs.append((sub, ""))
    return pairs


def _join(path: str, key: str) -> str:
    if not key:
        return path
    if key.startswith("["):
        return f"{path}{key}"
    return f"{path}.{key}" if path else key


def profile_error(lines: Sequence[str]) -> ProfileError:
    """One :class:`ProfileError` for several problems; ``.lines`` keeps them one per line."""
    exc = ProfileError("; ".join(lines))
    exc.lines = list(lines)  # type: ignore[attr-defined]
    return exc


def problem_lines(exc: ProfileError) -> list[str]:
    """The problems of a :class:`ProfileError`, one per line."""
    return list(getattr(exc, "lines", None) or [str(exc)])


def structure(data: Any, cls: type, path: str) -> Any:
    """Structure ``data`` into ``cls``; raises ProfileError with one line per problem."""
    conv = make_converter()
    if not isinstance(data, dict):
        raise ProfileError(f"{path or 'profile'}: expected a mapping of keys to values, got {_describe(data)}")
    missing = [a.name for a in attrs.fields(cls)
               if a.default is attrs.NOTHING and a.name not in data and a.init]
    if missing:
        raise profile_error([f"{_join(path, m)}: required key is missing" for m in missing])
    try:
        return conv.structure(data, cls)
    except Exception as exc:
        raise profile_error(_messages(exc, path) or [f"{path}: {exc}"]) from None


# ---------------------------------------------------------------- loading

def load_profile(path: str | Path) -> RunProfile:
    """Read and validate the profile's own shape (pass 1). Components are checked by :func:`validate`."""
    path = Path(path)
    if not path.exists():
        raise ProfileError(f"profile not found: {path} (give the path of a YAML run profile, "
                           f"e.g. profiles/demo.yaml)")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ProfileError(f"{path}: {where}{problem} (the profile is not valid YAML)") from None
    except OSError as exc:
        raise ProfileError(f"cannot read profile {path}: {exc.strerror}") from None
    if raw is None:
        raise ProfileError(f"{path}: the profile is empty; see docs/profile.md for the keys")
    if not isinstance(raw, dict):
        raise ProfileError(f"{path}: expected a mapping at the top level, got {_describe(raw)}")
    raw = dict(raw)
    raw.pop("path", None)
    _refuse_secrets(raw, "")
    if "strategies" in raw and not raw["strategies"]:
        raise ProfileError("strategies: name at least one strategy")
    profile = structure(raw, RunProfile, "")
    profile.path = path.resolve()
    return profile


def _refuse_secrets(node: Any, path: str) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            sub = _join(path, str(key))
            if (SECRET_KEY_PATTERN.search(str(key)) and not str(key).endswith("_env")
                    and isinstance(value, str) and value):
                raise ProfileError(f"{sub}: profiles must not hold secrets; put the value in an "
                                   f"environment variable (or .env) and name it with "
                                   f"`{key}_env: VARIABLE_NAME`")
            if (re.fullmatch(r"notify\[\d+\]", path) and key == "url" and isinstance(value, str)
                    and env_reference(value) is None):
                raise ProfileError(f"{sub}: profiles must not hold notification URLs (they carry tokens); "
                                   f"put the Apprise URL in an environment variable (or .env) and write "
                                   f"`url: $HYBRID_NOTIFY_...` naming it")
            _refuse_secrets(value, sub)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _refuse_secrets(value, f"{path}[{i}]")


@attrs.define
class Components:
    """The components a profile names, built and ready."""

    data_source: DataSource
    strategies: list[Strategy]
    risk_rules: list[RiskRule]
    broker: Broker


def resolve_universe(spec: StrategySpec, base_dir: Path) -> list[str] | None:
    """The symbols of a strategy: a list, a file of symbols, or None (the strategy's default)."""
    if spec.universe is None:
        return None
    if isinstance(spec.universe, list):
        return [str(s) for s in spec.universe]
    file = Path(spec.universe).expanduser()
    file = file if file.is_absolute() else base_dir / file
    if not file.exists():
        raise ProfileError(f"strategies[{spec.label}].universe: file not found: {file}")
    if file.suffix.lower() == ".csv":
        import pandas as pd

        frame = pd.read_csv(file)
        column = next((c for c in frame.columns if str(c).lower() in {"symbol", "ticker"}), None)
        if column is None:
            raise ProfileError(f"{file}: universe CSV needs a Symbol column")
        return [str(s) for s in frame[column].dropna()]
    return [line.strip() for line in file.read_text().splitlines() if line.strip()
            and not line.startswith("#")]


def _params(registry: ComponentRegistry, kind: str, ref_name: str, params: dict[str, Any],
            path: str, errors: list[str]) -> tuple[Any, Any]:
    try:
        spec = registry.get(kind, ref_name)
    except ProfileError as exc:
        errors.append(f"{path}.name: {exc}")
        return None, None
    try:
        return spec, structure(params or {}, spec.params_cls, f"{path}.params")
    except ProfileError as exc:
        errors.extend(problem_lines(exc))
        return spec, None


def validate(profile: RunProfile, registry: ComponentRegistry) -> list[str]:
    """Pass 2: every component exists and its params fit its Params class. Returns error lines."""
    errors: list[str] = []
    _params(registry, "data_source", profile.data.source, profile.data.params, "data", errors)
    total = 0.0
    labels: set[str] = set()
    for i, strat in enumerate(profile.strategies):
        _params(registry, "strategy", strat.name, strat.params, f"strategies[{i}]", errors)
        if not 0 < strat.allocation <= 1:
            errors.append(f"strategies[{i}].allocation: expected a share of capital in (0, 1], "
                          f"got {strat.allocation}")
        total += strat.allocation
        if strat.label in labels:
            errors.append(f"strategies[{i}]: strategy {strat.label!r} appears twice; give one an `id`")
        labels.add(strat.label)
    if total > 1.0 + 1e-9:
        errors.append(f"strategies: allocations add up to {total:.2f}, more than 1.0 of capital")
    for i, ref in enumerate(profile.risk):
        _params(registry, "risk_rule", ref.name, ref.params, f"risk[{i}]", errors)
    _params(registry, "broker", profile.broker.name, profile.broker.params, "broker", errors)
    if not re.fullmatch(r"\d{1,2}:\d{2}", profile.schedule.at):
        errors.append(f"schedule.at: expected HH:MM, got {profile.schedule.at!r}")
    if profile.schedule.days not in {"daily", "weekdays"}:
        errors.append(f"schedule.days: expected daily or weekdays, got {profile.schedule.days!r}")
    if profile.schedule.max_failed_cycles < 1:
        errors.append(f"schedule.max_failed_cycles: expected 1 or more, got {profile.schedule.max_failed_cycles}")
    if not profile.schedule.settle_seconds >= 0:
        errors.append(f"schedule.settle_seconds: expected 0 or more seconds, got {profile.schedule.settle_seconds}")
    if profile.backtest.warmup is not None and profile.backtest.warmup < 0:
        errors.append(f"backtest.warmup: expected 0 (cold start) or more sessions, got {profile.backtest.warmup}")
    return errors


def build_components(profile: RunProfile, registry: ComponentRegistry) -> Components:
    """Validate (pass 2) and instantiate every component the profile names."""
    errors = validate(profile, registry)
    if errors:
        raise profile_error(errors)

    def make(kind: str, name: str, params: dict[str, Any], path: str) -> Component:
        spec = registry.get(kind, name)
        parsed = structure(params or {}, spec.params_cls, f"{path}.params")
        obj = _instantiate(spec.factory, parsed, profile.base_dir)
        obj.plugin = spec.plugin
        return obj

    data_source = make("data_source", profile.data.source, profile.data.params, "data")
    strategies = []
    for i, strat in enumerate(profile.strategies):
        spec = registry.get("strategy", strat.name)
        parsed = structure(strat.params or {}, spec.params_cls, f"strategies[{i}].params")
        universe = resolve_universe(strat, profile.base_dir)
        obj = spec.factory(parsed, name=strat.label, universe=universe,  # type: ignore[call-arg]
                           allocation=strat.allocation)
        obj.profile_dir = profile.base_dir
        obj.plugin = spec.plugin
        strategies.append(obj)
    rules = [make("risk_rule", r.name, r.params, f"risk[{i}]") for i, r in enumerate(profile.risk)]
    broker = make("broker", profile.broker.name, profile.broker.params, "broker")
    return Components(data_source, strategies, rules, broker)  # type: ignore[arg-type]


def _instantiate(factory: type[Component], params: Any, base_dir: Path) -> Component:
    obj = factory(params)
    obj.profile_dir = base_dir
    return obj


def all_symbols(strategies: Sequence[Strategy]) -> list[str]:
    """Every symbol any strategy trades, sorted, without duplicates."""
    return sorted({s for strat in strategies for s in strat.universe})
