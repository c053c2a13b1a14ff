"""Profile variants: the base profile with one parameter set applied, validated like any profile.

The base profile is turned back into plain data (the converter that reads profiles also writes
them), each set's values are written at their paths, and the result goes through the profile's
own validation: :func:`~hybrid_core.profile.structure` (pass 1), then
:func:`~hybrid_core.profile.build_components` (pass 2, every component built). So a value a
profile would refuse is refused with the profile's own one-line message, before anything runs.

A variant travels to the workers as plain data with every strategy's universe written out as
a list of symbols, so workers need the bar data but not the universe files.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import HybridError, ProfileError
from ..profile import RunProfile, build_components, make_converter, problem_lines, resolve_universe, structure
from ..registry import ComponentRegistry
from .grid import Dimension, ParameterSet, ProfilePath, SweepPlan

MAX_SET_ERRORS = 20
"""Invalid sets reported one per line before the rest are counted."""


def profile_data(profile: RunProfile) -> dict[str, Any]:
    """A profile as plain data (what its YAML would hold), every strategy's universe as a symbol list."""
    data: dict[str, Any] = make_converter().unstructure(profile)
    data.pop("path", None)
    for spec, raw in zip(profile.strategies, data["strategies"], strict=True):
        universe = resolve_universe(spec, profile.base_dir)
        if universe is not None:
            raw["universe"] = universe
    return data


def assign(data: dict[str, Any], path: ProfilePath, value: Any) -> None:
    """Write ``value`` at ``path`` in profile data; raises ValueError naming what is not there."""
    node: Any = data
    where = "the profile"
    for i, (key, selector) in enumerate(path.segments):
        if not isinstance(node, dict):
            raise ValueError(f"{where}: holds {node!r}, not a mapping of keys")
        where = key if where == "the profile" else f"{where}.{key}"
        if i == len(path.segments) - 1:
            node[key] = copy.deepcopy(value)
            return
        if node.get(key) is None:
            if selector is not None:
                raise ValueError(f"{where}: the profile has no list here")
            node[key] = {}
        node = node[key]
        if selector is not None:
            node = _entry(node, selector, where)
            where = f"{where}[{selector}]"


def _entry(items: Any, selector: str | int, where: str) -> Any:
    if not isinstance(items, list):
        raise ValueError(f"{where}: the profile has no list here")
    if isinstance(selector, int):
        if selector >= len(items):
            raise ValueError(f"{where}[{selector}]: the profile's list has {len(items)} entries")
        return items[selector]
    matches = [item for item in items if isinstance(item, dict)
               and selector in (item.get("id"), item.get("name"))]
    if not matches:
        names = [str(item.get("id") or item.get("name")) for item in items if isinstance(item, dict)]
        raise ValueError(f"{where}[{selector}]: no entry named {selector!r} (the profile has: {', '.join(names)})")
    if len(matches) > 1:
        raise ValueError(f"{where}[{selector}]: {len(matches)} entries are named {selector!r}; select one by "
                         f"position, e.g. {where}[0]")
    return matches[0]


class ProfileVariants:
    """Builds and validates the variants of one base profile."""

    def __init__(self, profile: RunProfile, registry: ComponentRegistry) -> None:
        self.profile = profile
        self.registry = registry
        self.base = profile_data(profile)

    def variant(self, values: dict[str, Any]) -> dict[str, Any]:
        """The base profile's data with ``values`` (by path text) written in; raises ValueError."""
        data = copy.deepcopy(self.base)
        for text, value in values.items():
            assign(data, ProfilePath.parse(text), value)
        return data

    def problems(self, data: dict[str, Any]) -> list[str]:
        """The profile's own error lines for variant ``data`` (none when it is valid)."""
        try:
            profile = self.load(data)
            components = build_components(profile, self.registry)
        except ProfileError as exc:
            return problem_lines(exc)
        except HybridError as exc:
            return [str(exc)]
        for spec, raw, strategy in zip(profile.strategies, data["strategies"], components.strategies, strict=True):
            if not isinstance(spec.universe, list):  # a universe file named by the set: ship its symbols
                raw["universe"] = strategy.universe
        return []

    def load(self, data: dict[str, Any]) -> RunProfile:
        """Variant ``data`` as a :class:`RunProfile` (pass 1), relative paths from the base profile's folder."""
        return load_variant(data, self.profile.path)

    def check_plan(self, plan: SweepPlan) -> list[str]:
        """Error lines for every dimension value the profile refuses on its own, and for paths that
        do not exist; checked one value at a time so each bad value is named once."""
        lines = []
        for dim in plan.dimensions:
            for value in dim.edge_values():
                where = f"parameters.{dim.path.text}"
                try:
                    data = self.variant({dim.path.text: value})
                except ValueError as exc:
                    lines.append(f"{where}: {exc}")
                    break
                lines.extend(f"{where}: {value!r}: {line}" for line in self.problems(data))
        return lines

    def check(self, item: ParameterSet) -> tuple[dict[str, Any] | None, list[str]]:
        """One set's variant data, or None and the profile's error lines."""
        data = self.variant(item.values)
        problems = self.problems(data)
        return (None, problems) if problems else (data, [])

    def check_sets(self, sets: Sequence[ParameterSet], dimensions: Sequence[Dimension]
                   ) -> tuple[dict[str, dict[str, Any]], list[str]]:
        """Each valid set's variant data by set key, and error lines for the invalid sets."""
        variants: dict[str, dict[str, Any]] = {}
        lines: list[str] = []
        bad = reported = 0
        for item in sets:
            data, problems = self.check(item)
            if data is not None:
                variants[item.key] = data
                continue
            bad += 1
            if len(lines) < MAX_SET_ERRORS:
                reported += 1
                lines.extend(f"set {item.id} ({item.describe(dimensions)}): {p}" for p in problems)
        if bad > reported:
            lines.append(f"... and {bad - reported} more invalid set(s), {bad} in all")
        return variants, lines


def load_variant(data: dict[str, Any], profile_path: Path | str | None) -> RunProfile:
    """Profile data as a :class:`RunProfile` (validated, pass 1) whose relative paths are taken
    from the folder of ``profile_path`` (the base profile's file)."""
    profile: RunProfile = structure(data, RunProfile, "")
    profile.path = Path(profile_path) if profile_path is not None else None
    profile.shown_as = ""  # its problems are the set's (named by the caller), not the file's
    return profile
