"""The component registry: every component class by kind, plugin and name, with its origin.

A component has a bare name (``equity_reversal``) and a qualified name ``<plugin>:<name>``
(``equity_reversal:equity_reversal``), where the plugin is the entry-point name shown by
``hybrid plugins``. A profile may use either. When two plugins provide the same bare name for
one kind, the bare name is never resolved: using it is an error naming both packages and both
qualified names (no plugin wins by load order, built-ins included).

Importing this module does not import pandas (the CLI's liveness probe stays cheap).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import attrs

from .errors import PluginLoadError, ProfileError

if TYPE_CHECKING:  # pragma: no cover
    from .contracts import Component

KIND_BASES = {
    "data_source": "DataSource",
    "strategy": "Strategy",
    "risk_rule": "RiskRule",
    "broker": "Broker",
    "backtest_engine": "BacktestEngine",
}
"""Each kind and the :mod:`hybrid_core.contracts` base class its components subclass."""

QUALIFIER = ":"
"""Separates the plugin from the component in a qualified name."""


def base_class(kind: str) -> type[Component]:
    """The contract base class of ``kind`` (imports the contracts, hence pandas, on first use)."""
    from . import contracts

    return getattr(contracts, KIND_BASES[kind])  # type: ignore[no-any-return]


@attrs.frozen
class ComponentSpec:
    """One registered component class and the plugin (distribution) that provides it."""

    kind: str
    name: str
    factory: type[Component]
    plugin: str
    package: str
    version: str

    @property
    def qualified_name(self) -> str:
        """``<plugin>:<name>``: the name no other plugin can take."""
        return f"{self.plugin}{QUALIFIER}{self.name}"

    @property
    def params_cls(self) -> type:
        """The attrs class declaring this component's parameters."""
        return self.factory.Params

    @property
    def summary(self) -> str:
        """First line of the component's docstring."""
        doc = (self.factory.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""

    @property
    def origin(self) -> str:
        """``'<qualified name>' (package <package> <version>)`` for messages."""
        return f"{self.qualified_name!r} (package {self.package} {self.version})"


@attrs.frozen
class NameConflict:
    """A bare component name that two or more plugins provide for the same kind."""

    kind: str
    name: str
    providers: tuple[ComponentSpec, ...]

    @property
    def message(self) -> str:
        """One line naming every provider and the two ways out."""
        kind = self.kind.replace("_", " ")
        return (f"{kind} name {self.name!r} is provided by {len(self.providers)} plugins: "
                f"{' and '.join(s.origin for s in self.providers)}; name the one you mean by its "
                f"qualified name in the profile (e.g. {self.providers[0].qualified_name}), or uninstall "
                f"the other package")


class ComponentRegistry:
    """Components by (kind, plugin, name); looked up by bare or qualified name."""

    def __init__(self) -> None:
        self._specs: dict[tuple[str, str, str], ComponentSpec] = {}

    def add(self, spec: ComponentSpec) -> None:
        """Add a component; a plugin registering one (kind, name) twice is a :class:`PluginLoadError`."""
        key = (spec.kind, spec.plugin, spec.name)
        if key in self._specs:
            raise PluginLoadError(f"plugin {spec.plugin!r} registers two {spec.kind.replace('_', ' ')}s "
                                  f"named {spec.name!r}")
        self._specs[key] = spec

    def get(self, kind: str, name: str) -> ComponentSpec:
        """The spec a profile means by ``name`` (bare or ``plugin:name``).

        Raises :class:`ProfileError` when no plugin provides it (listing what is installed) or
        when a bare name is provided by several plugins (naming all of them).
        """
        plugin, sep, bare = name.rpartition(QUALIFIER)
        if sep:
            found = self._specs.get((kind, plugin, bare))
            if found is None:
                raise ProfileError(f"unknown {kind.replace('_', ' ')} {name!r}: no plugin {plugin!r} "
                                   f"providing {bare!r}; installed: {self._known(kind)} (see `hybrid plugins`)")
            return found
        matches = [s for s in self._specs.values() if s.kind == kind and s.name == name]
        if len(matches) > 1:
            raise ProfileError(NameConflict(kind, name, tuple(sorted(matches, key=_by_plugin))).message)
        if not matches:
            raise ProfileError(f"unknown {kind.replace('_', ' ')} {name!r}; installed: {self._known(kind)} "
                               f"(see `hybrid plugins`)")
        return matches[0]

    def _known(self, kind: str) -> str:
        """The names of ``kind`` a profile can use: bare where unique, qualified where shared."""
        specs = self.of_kind(kind)
        shared = {c.name for c in self.conflicts() if c.kind == kind}
        return ", ".join(s.qualified_name if s.name in shared else s.name for s in specs) or "none"

    def conflicts(self) -> list[NameConflict]:
        """Bare names provided by more than one plugin, by kind then name."""
        groups: dict[tuple[str, str], list[ComponentSpec]] = {}
        for spec in self._specs.values():
            groups.setdefault((spec.kind, spec.name), []).append(spec)
        return [NameConflict(kind, name, tuple(sorted(specs, key=_by_plugin)))
                for (kind, name), specs in sorted(groups.items()) if len(specs) > 1]

    def remove_plugin(self, plugin: str) -> None:
        """Forget every component of ``plugin`` (used when its registration fails half-way)."""
        for key in [k for k, s in self._specs.items() if s.plugin == plugin]:
            del self._specs[key]

    def of_kind(self, kind: str) -> list[ComponentSpec]:
        """Specs of one kind, sorted by name then plugin."""
        return sorted((s for s in self._specs.values() if s.kind == kind), key=lambda s: (s.name, s.plugin))

    def by_plugin(self, plugin: str) -> list[ComponentSpec]:
        """Specs a plugin provides."""
        return [s for s in self._specs.values() if s.plugin == plugin]

    def __iter__(self) -> Iterator[ComponentSpec]:
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)


def _by_plugin(spec: ComponentSpec) -> str:
    return spec.plugin


def make_register(registry: ComponentRegistry, kind: str, plugin: str, package: str,
                  version: str) -> Any:
    """The ``register`` callback handed to one plugin's hook for one kind."""
    base = base_class(kind)

    def register(component: type[Component], name: str | None = None) -> None:
        if not (isinstance(component, type) and issubclass(component, base)):
            raise PluginLoadError(
                f"plugin {plugin!r} registered {component!r} as a {kind}, but it does not "
                f"subclass hybrid_core.contracts.{base.__name__}")
        comp_name = name or getattr(component, "name", None)
        if not isinstance(comp_name, str) or not comp_name:
            raise PluginLoadError(
                f"plugin {plugin!r}: {component.__name__} has no `name`; set a class "
                f"attribute name = '...' or pass register(cls, name='...')")
        if QUALIFIER in comp_name:
            raise PluginLoadError(f"plugin {plugin!r}: component name {comp_name!r} may not contain "
                                  f"{QUALIFIER!r} (it separates plugin and component in qualified names)")
        if not attrs.has(component.Params):
            raise PluginLoadError(
                f"plugin {plugin!r}: {component.__name__}.Params must be an attrs class")
        registry.add(ComponentSpec(kind, comp_name, component, plugin, package, version))

    return register
