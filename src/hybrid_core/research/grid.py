"""The sweep file: which profile values a sweep varies, over what values, and how it samples them.

::

    method: grid                 # grid | random | optuna
    metric: sharpe               # what "best" means (maximised)
    parameters:                  # profile paths -> a list of values, or a range
      strategies[equity_reversal].params.decile: [0.05, 0.10, 0.15, 0.20]
      risk[stop_loss].params.pct: {low: 0.03, high: 0.09, step: 0.02}
      risk[time_stop].params.bars: [3, 5, 10, 20]
    n: 20                        # random: how many sets
    seed: 0                      # random and optuna
    n_trials: 40                 # optuna: how many sets
    batch: 8                     # optuna: sets asked for at once
    pbo_partitions: 16           # CSCV partitions of the PBO

A path names a value of the run profile: keys separated by dots, list entries selected by
position (``risk[0]``) or by name (``strategies[equity_reversal]`` matches a strategy's ``id``
or ``name``, ``risk[stop_loss]`` a rule's ``name``). A range ``{low, high, step}`` includes both
ends; without ``step`` it is continuous (``random`` and ``optuna`` only).
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from ..errors import ProfileError

METHODS = ("grid", "random", "optuna")
METRICS = ("sharpe", "sortino", "cagr", "total_return", "max_drawdown", "win_rate", "excess_return",
           "information_ratio", "alpha")
"""Metrics a sweep can maximise (max_drawdown is negative: the shallowest drawdown is best)."""

_SEGMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:\[([^\[\]]+)\])?")


@attrs.define(kw_only=True)
class SweepFile:
    """The sweep file's keys (validated like a profile: unknown keys refused, no coercion)."""

    parameters: dict[str, Any]
    method: str = "grid"
    metric: str = "sharpe"
    n: int | None = None
    seed: int = 0
    n_trials: int | None = None
    batch: int = 8
    pbo_partitions: int = 16


@attrs.frozen
class ProfilePath:
    """A parsed profile path: ``(key, selector)`` segments; the selector is a position or a name."""

    text: str
    segments: tuple[tuple[str, str | int | None], ...]

    @classmethod
    def parse(cls, text: str) -> ProfilePath:
        """Parse ``strategies[equity_reversal].params.decile``; raises ValueError when it is not a path."""
        parts = text.split(".")
        segments: list[tuple[str, str | int | None]] = []
        for part in parts:
            match = _SEGMENT.fullmatch(part)
            if match is None:
                raise ValueError(f"{text!r} is not a profile path (e.g. strategies[equity_reversal].params.decile)")
            key, selector = match.group(1), match.group(2)
            segments.append((key, int(selector) if selector is not None and selector.isdigit() else selector))
        if segments[-1][1] is not None:
            raise ValueError(f"{text!r} must end with a key, not a list entry")
        return cls(text, tuple(segments))

    @property
    def short(self) -> str:
        """``equity_reversal.decile``: the last named entry (or first key) and the last key."""
        names = [str(sel) for _, sel in self.segments if isinstance(sel, str)]
        head = names[-1] if names else self.segments[0][0]
        return f"{head}.{self.segments[-1][0]}" if len(self.segments) > 1 else head


@attrs.frozen
class Dimension:
    """One varied profile value: discrete ``choices``, or a continuous range ``[low, high]``."""

    path: ProfilePath
    label: str
    choices: tuple[Any, ...] | None = None
    low: float | None = None
    high: float | None = None
    step: float | None = None
    integer: bool = False

    @property
    def discrete(self) -> bool:
        """True for a list or a range with a step."""
        return self.choices is not None

    def sample(self, rng: np.random.Generator) -> Any:
        """One random value."""
        if self.choices is not None:
            return self.choices[int(rng.integers(len(self.choices)))]
        assert self.low is not None and self.high is not None
        if self.integer:
            return int(rng.integers(int(self.low), int(self.high) + 1))
        return _tidy(float(rng.uniform(self.low, self.high)), 6)

    def suggest(self, trial: Any) -> Any:
        """The value an Optuna trial suggests for this dimension."""
        name = self.path.text
        if self.low is None or self.high is None:
            return trial.suggest_categorical(name, list(self.choices or ()))
        if self.integer:
            return int(trial.suggest_int(name, int(self.low), int(self.high), step=int(self.step or 1)))
        return _tidy(float(trial.suggest_float(name, float(self.low), float(self.high), step=self.step)))

    def edge_values(self) -> list[Any]:
        """Values checked before a sweep starts: every choice, or both ends of a continuous range."""
        return list(self.choices) if self.choices is not None else [self.low, self.high]


@attrs.frozen
class ParameterSet:
    """One set of values, by profile path; ``key`` identifies it across reruns."""

    id: int
    values: dict[str, Any] = attrs.field(eq=False)
    key: str

    @classmethod
    def make(cls, set_id: int, values: dict[str, Any]) -> ParameterSet:
        """A set with its canonical key (JSON of the values sorted by path)."""
        return cls(set_id, dict(values), set_key(values))

    def describe(self, dimensions: Sequence[Dimension]) -> str:
        """``equity_reversal.decile=0.1, stop_loss.pct=0.05``."""
        return ", ".join(f"{d.label}={self.values[d.path.text]!r}" for d in dimensions if d.path.text in self.values)


def set_key(values: dict[str, Any]) -> str:
    """The canonical identity of a parameter set (rerun skips sets whose key is finished)."""
    return json.dumps(values, sort_keys=True, separators=(",", ":"), default=str)


@attrs.frozen
class SweepPlan:
    """A validated sweep file: its settings and its dimensions."""

    spec: SweepFile
    dimensions: tuple[Dimension, ...]
    source: str = ""

    @property
    def grid_size(self) -> int | None:
        """Number of sets of the full grid (None when a dimension is continuous)."""
        if not all(d.discrete for d in self.dimensions):
            return None
        return math.prod(len(d.choices or ()) for d in self.dimensions)

    def sets(self) -> list[ParameterSet]:
        """Every set of a ``grid`` or ``random`` sweep, in a fixed order (ids 0, 1, ...)."""
        if self.spec.method == "grid":
            combos: Iterator[tuple[Any, ...]] = itertools.product(*(d.choices or () for d in self.dimensions))
            return [ParameterSet.make(i, dict(zip(self._paths, combo, strict=True)))
                    for i, combo in enumerate(combos)]
        if self.spec.method == "random":
            return self._random_sets()
        raise ValueError("optuna sweeps ask for their sets one batch at a time")

    @property
    def _paths(self) -> list[str]:
        return [d.path.text for d in self.dimensions]

    def _random_sets(self) -> list[ParameterSet]:
        rng = np.random.default_rng(self.spec.seed)
        n = int(self.spec.n or 0)
        size = self.grid_size
        if size is not None:  # draw distinct sets of the grid
            picks = rng.choice(size, size=n, replace=False)
            radices = [len(d.choices or ()) for d in self.dimensions]
            out = []
            for i, flat in enumerate(picks.tolist()):
                digits = []
                for radix in reversed(radices):
                    flat, digit = divmod(flat, radix)
                    digits.append(digit)
                combo = [d.choices[k] for d, k in zip(self.dimensions, reversed(digits), strict=True)]  # type: ignore[index]
                out.append(ParameterSet.make(i, dict(zip(self._paths, combo, strict=True))))
            return out
        sets: list[ParameterSet] = []
        seen: set[str] = set()
        while len(sets) < n:
            values = {d.path.text: d.sample(rng) for d in self.dimensions}
            if set_key(values) not in seen:
                seen.add(set_key(values))
                sets.append(ParameterSet.make(len(sets), values))
        return sets


def _tidy(value: float, digits: int = 12) -> float:
    """A float without binary noise (0.15000000000000002 -> 0.15)."""
    return float(f"{value:.{digits}g}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _dimension(path: ProfilePath, raw: Any, method: str, where: str) -> tuple[Dimension | None, list[str]]:
    if isinstance(raw, list):
        if not raw:
            return None, [f"{where}: an empty list; give at least one value"]
        if len({json.dumps(v, sort_keys=True, default=str) for v in raw}) != len(raw):
            return None, [f"{where}: a value appears twice in {raw}"]
        return Dimension(path, path.short, choices=tuple(raw)), []
    if not isinstance(raw, dict):
        return None, [f"{where}: expected a list of values or a range {{low, high, step}}, got {raw!r}"]
    extra = sorted(set(raw) - {"low", "high", "step"})
    if extra:
        return None, [f"{where}.{key}: unknown key (allowed: low, high, step)" for key in extra]
    problems = [f"{where}.{key}: required key is missing" for key in ("low", "high") if key not in raw]
    problems += [f"{where}.{key}: expected a number, got {raw[key]!r}" for key in ("low", "high", "step")
                 if key in raw and not _is_number(raw[key])]
    if problems:
        return None, problems
    low, high, step = raw["low"], raw["high"], raw.get("step")
    if not low < high:
        return None, [f"{where}: low {low} must be below high {high}"]
    integer = all(isinstance(v, int) for v in (low, high, step) if v is not None)
    if step is None:
        if method == "grid":
            return None, [f"{where}: a range needs a step for method grid (or use method random or optuna)"]
        return Dimension(path, path.short, low=low, high=high, integer=integer), []
    if not step > 0:
        return None, [f"{where}.step: expected a positive number, got {step}"]
    count = int(math.floor((high - low) / step + 1e-9)) + 1
    if integer:
        values: list[Any] = [low + k * step for k in range(count)]
    else:
        values = [_tidy(low + k * step) for k in range(count)]
    return Dimension(path, path.short, choices=tuple(values), low=low, high=high, step=step, integer=integer), []


def plan_from_mapping(raw: Any, source: str = "sweep file") -> SweepPlan:
    """Validate a sweep file's content; raises one :class:`ProfileError` with a line per problem,
    each starting with ``source``."""
    from ..profile import problem_lines, profile_error, structure

    try:
        spec: SweepFile = structure(raw, SweepFile, "")
    except ProfileError as exc:
        raise profile_error([f"{source}: {line}" for line in problem_lines(exc)]) from None
    errors: list[str] = []
    if spec.method not in METHODS:
        errors.append(f"method: expected {', '.join(METHODS[:-1])} or {METHODS[-1]}, got {spec.method!r}")
    if spec.metric not in METRICS:
        errors.append(f"metric: expected one of {', '.join(METRICS)}, got {spec.metric!r}")
    if not spec.parameters:
        errors.append("parameters: name at least one profile value to vary, e.g. "
                      "strategies[equity_reversal].params.decile: [0.05, 0.1]")
    dimensions: list[Dimension] = []
    for text, values in spec.parameters.items():
        where = f"parameters.{text}"
        try:
            path = ProfilePath.parse(str(text))
        except ValueError as exc:
            errors.append(f"{where}: {exc}")
            continue
        dim, problems = _dimension(path, values, spec.method, where)
        errors.extend(problems)
        if dim is not None:
            dimensions.append(dim)
    labels = [d.label for d in dimensions]
    dimensions = [attrs.evolve(d, label=d.path.text) if labels.count(d.label) > 1 else d for d in dimensions]
    if spec.method == "random":
        if spec.n is None or spec.n < 1:
            errors.append(f"n: method random needs the number of sets, a whole number >= 1, got {spec.n}")
    if spec.method == "optuna" and (spec.n_trials is None or spec.n_trials < 1):
        errors.append(f"n_trials: method optuna needs the number of sets, a whole number >= 1, got {spec.n_trials}")
    if spec.batch < 1:
        errors.append(f"batch: expected a whole number >= 1, got {spec.batch}")
    if spec.pbo_partitions < 2 or spec.pbo_partitions % 2:
        errors.append(f"pbo_partitions: expected an even number >= 2, got {spec.pbo_partitions}")
    plan = SweepPlan(spec, tuple(dimensions), source)
    if not errors and spec.method == "random" and plan.grid_size is not None and (spec.n or 0) > plan.grid_size:
        errors.append(f"n: {spec.n} sets asked for, but the grid has only {plan.grid_size}; use method grid")
    if errors:
        raise profile_error([f"{source}: {line}" for line in errors])
    return plan


def load_plan(path: str | Path) -> SweepPlan:
    """Read and validate a sweep file (YAML), with the run profile's safe reader: a duplicate
    key, an alias bomb, a non-UTF-8 file or a named pipe is one line naming the file."""
    from ..profile_yaml import read_yaml_file

    path = Path(path)
    raw = read_yaml_file(path, "sweep file", missing_hint="give the path of a YAML sweep file; see docs/sweeps.md")
    if not isinstance(raw, dict):
        from ..structuring import describe

        raise ProfileError(f"{path}: expected a mapping with a `parameters` key, got {describe(raw)}; "
                           f"see docs/sweeps.md")
    return plan_from_mapping(raw, str(path))
