"""The component registry: every component class by kind and name, with its origin."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import attrs

from .contracts import Broker, Component, DataSource, RiskRule, Strategy
from .errors import PluginLoadError, ProfileError

KINDS: dict[str, type[Component]] = {
    "data_source": DataSource,
    "strategy": Strategy,
    "risk_rule": RiskRule,
    "broker": Broker,
}


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
    def params_cls(self) -> type:
        """The attrs class declaring this component's parameters."""
        return self.factory.Params

    @property
    def summary(self) -> str:
        """First line of the component's docstring."""
        doc = (self.factory.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""


class ComponentRegistry:
    """Components by (kind, name). Registering a name twice is an error naming both plugins."""

    def __init__(self) -> None:
        self._specs: dict[tuple[str, str], ComponentSpec] = {}

    def add(self, spec: ComponentSpec) -> None:
        """Add a component; raises :class:`PluginLoadError` on a duplicate name."""
        key = (spec.kind, spec.name)
        if key in self._specs:
            other = self._specs[key]
            raise PluginLoadError(
                f"duplicate {spec.kind} name {spec.name!r}: provided by plugin {other.plugin!r} "
                f"({other.package}) and by plugin {spec.plugin!r} ({spec.package}); "
                f"uninstall or disable one (HYBRID_DISABLE_PLUGINS={spec.plugin})")
        self._specs[key] = spec

    def get(self, kind: str, name: str) -> ComponentSpec:
        """The spec for ``name``; raises :class:`ProfileError` listing the known names."""
        try:
            return self._specs[(kind, name)]
        except KeyError:
            known = ", ".join(sorted(n for k, n in self._specs if k == kind)) or "none"
            raise ProfileError(
                f"unknown {kind.replace('_', ' ')} {name!r}; installed: {known} "
                f"(see `hybrid plugins`)") from None

    def remove_plugin(self, plugin: str) -> None:
        """Forget every component of ``plugin`` (used when its registration fails half-way)."""
        for key in [k for k, s in self._specs.items() if s.plugin == plugin]:
            del self._specs[key]

    def of_kind(self, kind: str) -> list[ComponentSpec]:
        """Specs of one kind, sorted by name."""
        return sorted((s for (k, _), s in self._specs.items() if k == kind), key=lambda s: s.name)

    def by_plugin(self, plugin: str) -> list[ComponentSpec]:
        """Specs a plugin provides."""
        return [s for s in self._specs.values() if s.plugin == plugin]

    def __iter__(self) -> Iterator[ComponentSpec]:
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)


def make_register(registry: ComponentRegistry, kind: str, plugin: str, package: str,
                  version: str) -> Any:
    """The ``register`` callback handed to one plugin's hook for one kind."""
    base = KINDS[kind]

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
        if not attrs.has(component.Params):
            raise PluginLoadError(
                f"plugin {plugin!r}: {component.__name__}.Params must be an attrs class")
        registry.add(ComponentSpec(kind, comp_name, component, plugin, package, version))

    return register
