"""The YAML run profile: attrs classes, strict structuring and component building.

Validation runs in two passes, both before anything trades:

1. the file itself (:mod:`hybrid_core.profile_yaml`: a regular UTF-8 file, valid YAML, no
   duplicate keys, no alias bombs) and the profile's own shape (:class:`RunProfile`): unknown
   keys, missing keys, types and ranges of every field, secrets;
2. each component's ``params`` against that component's attrs ``Params`` class, found in
   the plugin registry, then the components are built (universe files read).

Every problem is reported as one line naming the file and the full path of the value, e.g.
``profiles/p.yaml: strategies[0].params.decile: expected a number, got 'ten'``; all problems
of a pass are collected and raised together in one :class:`~hybrid_core.errors.ProfileError`
(``.lines``). :func:`offline_problems` adds what ``hybrid validate`` checks beyond the profile
(files the components name, output folders, the trading mode).
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from .contracts import Broker, Component, DataSource, RiskRule, Strategy
from .errors import ComponentError, HybridError, ProfileError
from .ops.notify_targets import NotifySpec, env_reference
from .paths import resolve_path
from .profile_yaml import read_profile_yaml
from .registry import ComponentRegistry
from .structuring import describe, join, make_converter, structure, structure_fields

__all__ = ["BacktestSpec", "ComponentRef", "Components", "DataSpec", "Outputs", "QUALITY_POLICIES",
           "RunProfile", "Schedule", "StrategySpec", "all_symbols", "build_components", "load_profile",
           "Problem", "make_converter", "offline_problems", "problem_lines", "profile_error", "resolve_universe",
           "structure", "validate"]

SECRET_KEY_PATTERN = re.compile(r"(secret|password|passwd|token|api_key|apikey)", re.IGNORECASE)
QUALITY_POLICIES = ("refuse", "drop", "warn")
MAX_LOOKBACK_DAYS = 36_500


# ---------------------------------------------------------------- field checks

def _in_range(low: float | None = None, high: float | None = None, *, low_open: bool = False,
              high_open: bool = False, what: str = "") -> Any:
    """A validator: ``low <= value <= high`` (open ends excluded), named in the message."""
    def check(_instance: Any, _attribute: attrs.Attribute, value: Any) -> None:
        if value is None:
            return
        too_low = low is not None and (value <= low if low_open else value < low)
        too_high = high is not None and (value >= high if high_open else value > high)
        if too_low or too_high:
            left = "" if low is None else f"{'>' if low_open else '>='} {low:g}"
            right = "" if high is None else f"{'<' if high_open else '<='} {high:g}"
            bounds = " and ".join(b for b in (left, right) if b)
            raise ValueError(f"must be {bounds}{f' ({what})' if what else ''}, got {describe(value)}")
    return check


def _at_least(low: int, message: str) -> Any:
    """A validator: ``value >= low``, else ``message, got VALUE``."""
    def check(_instance: Any, _attribute: attrs.Attribute, value: Any) -> None:
        if value is not None and value < low:
            raise ValueError(f"{message}, got {describe(value)}")
    return check


def _not_empty(_instance: Any, _attribute: attrs.Attribute, value: Any) -> None:
    if isinstance(value, str) and not value.strip():
        raise ValueError("must not be empty")


def _symbols(_instance: Any, _attribute: attrs.Attribute, value: Any) -> None:
    if isinstance(value, list):
        blank = [i for i, s in enumerate(value) if not str(s).strip()]
        if blank:
            raise ValueError(f"symbol [{blank[0]}] is empty")
        if not value:
            raise ValueError("the universe list is empty; name at least one symbol or leave it out")
    elif isinstance(value, str) and not value.strip():
        raise ValueError("must not be empty: a list of symbols or the path of a universe file")


def _hh_mm(_instance: Any, _attribute: attrs.Attribute, value: str) -> None:
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", value)
    if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise ValueError(f"expected a time HH:MM (00:00 to 23:59), got {value!r}")


def _time_zone(_instance: Any, _attribute: attrs.Attribute, value: str) -> None:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"unknown time zone {value!r} (use an IANA name such as America/New_York)") from None


def _one_of(*choices: str) -> Any:
    def check(_instance: Any, _attribute: attrs.Attribute, value: Any) -> None:
        if value is not None and value not in choices:
            raise ValueError(f"expected {' or '.join(choices)}, got {describe(value)}")
    return check


def _date_text(_instance: Any, _attribute: attrs.Attribute, value: str | None) -> None:
    if value is None:
        return
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
        raise ValueError(f"expected a date YYYY-MM-DD, got {value!r}")
    import datetime as dt

    try:
        dt.date.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"expected a date YYYY-MM-DD, got {value!r} (no such day)") from None


# ---------------------------------------------------------------- the profile's shape

@attrs.define(kw_only=True)
class ComponentRef:
    """A component named in the profile, with its raw parameters."""

    name: str = attrs.field(validator=_not_empty)
    params: dict[str, Any] = attrs.field(factory=dict)


@attrs.define(kw_only=True)
class DataSpec:
    """``data:`` which data source gives bars, its parameters and the bar quality policy."""

    source: str = attrs.field(default="local", validator=_not_empty)
    params: dict[str, Any] = attrs.field(factory=dict)
    lookback_days: int = attrs.field(default=400, validator=_in_range(1, MAX_LOOKBACK_DAYS))
    """Calendar days of history the live cycle loads (at least every strategy's lookback)."""
    quality: str | None = attrs.field(default=None, validator=_one_of(*QUALITY_POLICIES))
    """What the quality gate does with bad bars: ``refuse`` (stop with one line), ``drop``
    (leave them out, one summary line per kind) or ``warn`` (keep them, one warning per kind).
    None: ``refuse`` for backtests and replays, and for live cycles the bad bars are left out
    and new entries halted for the cycle (exits and stops still run)."""


@attrs.define(kw_only=True)
class StrategySpec:
    """``strategies[i]``: a strategy, its share of capital, its universe and parameters."""

    name: str = attrs.field(validator=_not_empty)
    """The component's name, bare (``equity_reversal``) or qualified (``equity_reversal:equity_reversal``)."""
    allocation: float = attrs.field(default=1.0, validator=_in_range(0, 1, low_open=True,
                                                                       what="a share of capital"))
    universe: list[str] | str | None = attrs.field(default=None, validator=_symbols)
    """A list of symbols, or a file (.csv with a Symbol column, or .txt one per line)."""
    params: dict[str, Any] = attrs.field(factory=dict)
    id: str | None = attrs.field(default=None, validator=attrs.validators.optional(_not_empty))
    """Name used in logs, trade log and client order ids (default: the strategy's bare name)."""

    @property
    def label(self) -> str:
        """The strategy's name in this run: the same whether the profile qualifies the name or not."""
        return self.id or self.name.rpartition(":")[2]


@attrs.define(kw_only=True)
class Schedule:
    """``schedule:`` when the loop runs a cycle (``hybrid run`` without ``--once``)."""

    at: str = attrs.field(default="16:10", validator=_hh_mm)
    """Local time of the daily cycle, HH:MM, after the NYSE close."""
    timezone: str = attrs.field(default="America/New_York", validator=_time_zone)
    days: str = attrs.field(default="daily", validator=_one_of("daily", "weekdays"))
    """``daily`` (crypto trades every day) or ``weekdays``."""
    interval_seconds: float | None = attrs.field(default=None, validator=_in_range(0, None, low_open=True))
    """Run every N seconds instead of daily at ``at`` (rehearsals and tests)."""
    max_failed_cycles: int = attrs.field(default=3, validator=_at_least(1, "expected 1 or more"))
    """Failed cycles in a row after which the heartbeat says ``error`` (``hybrid health`` fails);
    fewer say ``degraded``. The loop keeps running either way."""
    settle_seconds: float = attrs.field(default=10.0, validator=_in_range(0, None, what="seconds"))
    """Seconds a cycle keeps looking up orders whose outcome the broker did not confirm (waits
    of 0.5, 1, 2, 4 s...) before it ends; still unknown, they are looked up at every cycle's start."""


@attrs.define(kw_only=True)
class Outputs:
    """``outputs:`` where the run writes; relative paths are taken from the working folder."""

    trade_log: str = attrs.field(default="order_events.csv", validator=_not_empty)
    """The order-events audit log (one row per order event; not a round-trip table)."""
    health_file: str = attrs.field(factory=lambda: _default_health_file(), validator=_not_empty)
    """Default: $HYBRID_HEALTH_FILE, else /tmp/hybrid_trader.health (where `hybrid health` looks)."""
    state_db: str = attrs.field(default="state/hybrid.sqlite", validator=_not_empty)
    log_file: str | None = attrs.field(default=None, validator=attrs.validators.optional(_not_empty))


@attrs.define(kw_only=True)
class BacktestSpec:
    """``backtest:`` defaults for ``hybrid backtest``."""

    cash: float = attrs.field(default=1_000_000.0, validator=_in_range(0, None, low_open=True))
    slippage_bps: float = attrs.field(default=0.0, validator=_in_range(0, 10_000, high_open=True))
    commission: float = attrs.field(default=0.0, validator=_in_range(0, 1, high_open=True,
                                                                      what="a fraction of each fill's value"))
    start: str | None = attrs.field(default=None, validator=_date_text)
    end: str | None = attrs.field(default=None, validator=_date_text)
    warmup: int | None = attrs.field(default=None, validator=_at_least(0, "expected 0 (cold start) or more sessions"))
    """Sessions of history loaded before the start date so strategies start warm (no order is
    decided before the start). Default: the longest ``lookback()`` of the profile's strategies;
    0 is a cold start (how the reference cases were made). Used by backtest and replay."""
    benchmark: str = attrs.field(default="universe", validator=_not_empty)
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

    name: str = attrs.field(default="default", validator=_not_empty)
    data: DataSpec = attrs.field(factory=DataSpec)
    strategies: list[StrategySpec]
    risk: list[ComponentRef] = attrs.field(factory=_default_risk)
    broker: ComponentRef = attrs.field(factory=lambda: ComponentRef(name="paper"))
    schedule: Schedule = attrs.field(factory=Schedule)
    outputs: Outputs = attrs.field(factory=Outputs)
    backtest: BacktestSpec = attrs.field(factory=BacktestSpec)
    notify: list[NotifySpec] = attrs.field(factory=list)
    """Channels to notify (Apprise URLs from the environment) and the events each wants."""
    path: Path | None = attrs.field(default=None, init=False)
    """The file the profile was read from (absolute); None for a profile built in code."""
    shown_as: str | None = attrs.field(default=None, init=False)
    """The file as the user named it, prefixed to every problem line (None: :attr:`path`; ``""``:
    no prefix, for a profile made in memory such as a sweep's variant, whose lines name the set)."""

    @property
    def base_dir(self) -> Path:
        """The profile's folder."""
        return self.path.parent if self.path else Path.cwd()


# ---------------------------------------------------------------- errors

def profile_error(lines: Sequence[str], where: str | Path | None = None) -> ProfileError:
    """One :class:`ProfileError` for several problems, each line prefixed with ``where`` (the file)."""
    prefix = f"{where}: " if where else ""
    return ProfileError(lines=[f"{prefix}{line}" for line in lines])


def problem_lines(exc: ProfileError) -> list[str]:
    """The problems of a :class:`ProfileError`, one per line."""
    return list(getattr(exc, "lines", None) or [str(exc)])


def _shown(profile: RunProfile) -> str:
    if profile.shown_as is not None:
        return profile.shown_as
    return str(profile.path) if profile.path else "profile"


# ---------------------------------------------------------------- loading

def load_profile(path: str | Path, registry: ComponentRegistry | None = None) -> RunProfile:
    """Read and check the profile (pass 1; with ``registry`` also pass 2, the components'
    params), reporting every problem of both passes together. :func:`build_components` runs
    pass 2 when it was not run here."""
    shown = str(path)
    path = Path(path)
    raw = read_profile_yaml(path)
    if raw is None:
        raise ProfileError(f"{shown}: the profile is empty; see docs/profile.md for the keys")
    if not isinstance(raw, dict):
        raise ProfileError(f"{shown}: expected a mapping of keys to values at the top level, "
                           f"got {describe(raw)}; see docs/profile.md")
    errors = _secrets(raw, "")
    data = dict(raw)
    if isinstance(data.get("strategies"), list) and not data["strategies"]:
        errors.append("strategies: name at least one strategy")
        data.pop("strategies")
    values = structure_fields(data, RunProfile, "", errors)
    errors.extend(_across_fields(values))
    if registry is not None:
        errors.extend(_component_params(values, registry))
    if "strategies" not in data and "strategies: name at least one strategy" in errors:
        errors = [e for e in errors if e != "strategies: required key is missing"]
    secret_paths = {e.split(": ", 1)[0] for e in errors if "profiles must not hold secrets" in e}
    errors = [e for e in errors if not (e.split(": ", 1)[0] in secret_paths and ": unknown key" in e)]
    if errors:
        raise profile_error(_explain_unknown_keys(errors, raw), shown)
    profile = RunProfile(**values)
    profile.path = path.resolve()
    profile.shown_as = shown
    return profile


def _across_fields(values: dict[str, Any]) -> list[str]:
    """Checks that look at several fields: allocations, strategy labels, the backtest window."""
    errors: list[str] = []
    strategies = values.get("strategies") or []
    total = sum(s.allocation for s in strategies)
    if total > 1.0 + 1e-9:
        errors.append(f"strategies: allocations add up to {total:.2f}, more than 1.0 of capital")
    labels: set[str] = set()
    for i, strat in enumerate(strategies):
        if strat.label in labels:
            errors.append(f"strategies[{i}]: strategy {strat.label!r} appears twice; give one an `id`")
        labels.add(strat.label)
    spec = values.get("backtest")
    if spec is not None and spec.start and spec.end and spec.end.strip() < spec.start.strip():
        errors.append(f"backtest.end: {spec.end} is before backtest.start {spec.start}")
    return errors


def _component_params(values: dict[str, Any], registry: ComponentRegistry) -> list[str]:
    """Pass 2 over whatever part of the profile structured: each component's name and params."""
    errors: list[str] = []
    data = values.get("data", DataSpec())
    _params(registry, "data_source", data.source, data.params, "data", errors)
    for i, strat in enumerate(values.get("strategies") or []):
        _params(registry, "strategy", strat.name, strat.params, f"strategies[{i}]", errors)
    for i, ref in enumerate(values.get("risk", _default_risk())):
        _params(registry, "risk_rule", ref.name, ref.params, f"risk[{i}]", errors)
    broker = values.get("broker", ComponentRef(name="paper"))
    _params(registry, "broker", broker.name, broker.params, "broker", errors)
    return errors


def _explain_unknown_keys(errors: list[str], raw: dict[str, Any]) -> list[str]:
    """A file whose top-level keys are all unknown is probably not a run profile: say so."""
    known = {a.name for a in attrs.fields(RunProfile) if a.init}
    if raw and not any(k in known for k in raw):
        return [*errors, "none of the top-level keys is a run profile key: is this a run profile? "
                         "(see docs/profile.md)"]
    return errors


def _secrets(node: Any, path: str) -> list[str]:
    """One line per key that holds a secret (the data is bounded: see profile_yaml)."""
    found: list[str] = []
    stack: list[tuple[Any, str]] = [(node, path)]
    seen: set[int] = set()
    while stack:
        item, where = stack.pop()
        if id(item) in seen:  # a value shared through an alias is checked once
            continue
        if isinstance(item, dict):
            seen.add(id(item))
            for key, value in item.items():
                sub = join(where, str(key))
                if (SECRET_KEY_PATTERN.search(str(key)) and not str(key).endswith("_env")
                        and isinstance(value, str) and value):
                    found.append(f"{sub}: profiles must not hold secrets; put the value in an environment "
                                 f"variable (or .env) and name it with `{key}_env: VARIABLE_NAME`")
                elif (re.fullmatch(r"notify\[\d+\]", where) and key == "url" and isinstance(value, str)
                      and env_reference(value) is None):
                    found.append(f"{sub}: profiles must not hold notification URLs (they carry tokens); put "
                                 f"the Apprise URL in an environment variable (or .env) and write "
                                 f"`url: $HYBRID_NOTIFY_...` naming it")
                stack.append((value, sub))
        elif isinstance(item, list):
            seen.add(id(item))
            stack.extend((value, f"{where}[{i}]") for i, value in enumerate(item))
    return sorted(found)


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
        return [str(s).strip() for s in spec.universe]
    file = resolve_path(spec.universe, base_dir)
    where = f"strategies[{spec.label}].universe"
    if not file.exists():
        raise ProfileError(f"{where}: file not found: {file} (relative paths are taken from the "
                           f"profile's folder {base_dir})")
    if not file.is_file():
        raise ProfileError(f"{where}: {file} is not a regular file; give a .txt or .csv file of symbols")
    try:
        text = decode_universe(file)
    except OSError as exc:
        raise ProfileError(f"{where}: cannot read {file}: {exc.strerror or exc}") from None
    if file.suffix.lower() == ".csv":
        symbols = _csv_symbols(text, file, where)
    else:
        symbols = [line.split("#", 1)[0].strip() for line in text.splitlines()]
        symbols = [s for s in symbols if s]
    if not symbols:
        raise ProfileError(f"{where}: {file} lists no symbol")
    return symbols


def decode_universe(file: Path) -> str:
    """A universe file's text (UTF-8, BOM-aware), or ProfileError naming the file and the byte."""
    from .profile_yaml import MAX_BYTES, decode_text

    with open(file, "rb") as handle:
        raw = handle.read(16 * MAX_BYTES + 1)
    if len(raw) > 16 * MAX_BYTES:
        raise ProfileError(f"universe file {file} is larger than {16 * MAX_BYTES:,} bytes; is it the right file?")
    return decode_text(raw, file, "universe file")


def _csv_symbols(text: str, file: Path, where: str) -> list[str]:
    import csv
    import io

    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        raise ProfileError(f"{where}: {file} is empty")
    header = [c.strip().lower() for c in rows[0]]
    column = next((i for i, c in enumerate(header) if c in {"symbol", "ticker"}), None)
    if column is None:
        raise ProfileError(f"{where}: universe CSV {file} needs a Symbol (or Ticker) column; "
                           f"found {', '.join(rows[0][:5]) or 'nothing'}")
    return [r[column].strip() for r in rows[1:] if len(r) > column and r[column].strip()]


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
    values = {a.name: getattr(profile, a.name) for a in attrs.fields(RunProfile) if a.init}
    return _across_fields(values) + _component_params(values, registry)


def build_components(profile: RunProfile, registry: ComponentRegistry) -> Components:
    """Validate (pass 2) and instantiate every component the profile names.

    Every problem of every component is reported together: ProfileError (a parameter, a
    universe file) or, when a component's own constructor fails, ComponentError naming it.
    """
    errors = validate(profile, registry)
    if errors:
        raise profile_error(errors, _shown(profile))
    failures: list[str] = []

    def make(kind: str, name: str, params: dict[str, Any], path: str, /, **extra: Any) -> Component | None:
        spec = registry.get(kind, name)
        parsed = structure(params or {}, spec.params_cls, f"{path}.params")
        try:
            obj = spec.factory(parsed, **extra)
        except ProfileError as exc:
            errors.extend(f"{path}: {line}" for line in problem_lines(exc))
            return None
        except HybridError:
            raise
        except Exception as exc:
            first = str(exc).splitlines()[0] if str(exc) else ""
            failures.append(f"{path}: {kind.replace('_', ' ')} {name!r} failed to start: "
                            f"{type(exc).__name__}: {first}")
            return None
        obj.profile_dir = profile.base_dir
        obj.plugin = spec.plugin
        return obj

    data_source = make("data_source", profile.data.source, profile.data.params, "data")
    strategies = []
    for i, strat in enumerate(profile.strategies):
        try:
            universe = resolve_universe(strat, profile.base_dir)
        except ProfileError as exc:
            errors.extend(problem_lines(exc))
            continue
        obj = make("strategy", strat.name, strat.params, f"strategies[{i}]", name=strat.label,
                   universe=universe, allocation=strat.allocation)
        if obj is not None:
            strategies.append(obj)
    rules = [make("risk_rule", r.name, r.params, f"risk[{i}]") for i, r in enumerate(profile.risk)]
    broker = make("broker", profile.broker.name, profile.broker.params, "broker")
    if errors:
        raise profile_error(errors, _shown(profile))
    if failures:
        raise ComponentError("; ".join(failures))
    return Components(data_source, strategies, rules, broker)  # type: ignore[arg-type]


@attrs.frozen
class Problem:
    """One problem :func:`offline_problems` found, with the exit code a run would end with."""

    line: str
    exit_code: int


def offline_problems(profile: RunProfile, components: Components) -> list[Problem]:
    """What would stop a run or backtest at set-up, found without network or orders.

    Each component's own :meth:`~hybrid_core.contracts.Component.offline_check` (files it reads,
    configuration it needs), the output folders (writable, or creatable), and the trading
    mode of the environment. Every problem carries the exit code the run would end with.
    """
    from .safety import resolve_mode

    problems: list[Problem] = []
    named = [("data", components.data_source), ("broker", components.broker)]
    named += [(f"strategies[{i}]", s) for i, s in enumerate(components.strategies)]
    named += [(f"risk[{i}]", r) for i, r in enumerate(components.risk_rules)]
    for where, component in named:
        try:
            found = list(component.offline_check())
        except HybridError as exc:
            found = [exc]
        except Exception as exc:  # a plugin's check must not take validate down
            found = [ComponentError(f"{type(component).__name__}.offline_check() failed: {type(exc).__name__}: {exc}")]
        problems.extend(Problem(f"{where}: {p}", p.exit_code) for p in found)
    outputs = profile.outputs
    for key in ("trade_log", "health_file", "state_db", "log_file"):
        value = getattr(outputs, key)
        if value:
            line = writable_file_problem(Path(value).expanduser())
            if line:
                problems.append(Problem(f"outputs.{key}: {line}", ProfileError.exit_code))
    try:
        resolve_mode()
    except HybridError as exc:
        problems.append(Problem(str(exc), exc.exit_code))
    return problems


def writable_file_problem(path: Path) -> str | None:
    """Why a run could not write the file ``path`` (None when it can: the file or its folder)."""
    import os

    if path.is_dir():
        return f"{path} is a folder; give a file path"
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        return f"{folder} is not a folder, so {path} cannot be created"
    target = path if path.exists() else folder
    if not os.access(target, os.W_OK):
        return f"{target} is not writable"
    return None


def all_symbols(strategies: Sequence[Strategy]) -> list[str]:
    """Every symbol any strategy trades, sorted, without duplicates."""
    return sorted({s for strat in strategies for s in strat.universe})
