"""The plugin host: built-in components and entry-point plugins, loaded into a fresh registry.

Built with :func:`build_plugin_host` (a factory, never a global), so every CLI call and every
test gets its own. Each entry point of the group ``hybrid`` is loaded in its own
``try``/``except``: a broken plugin is recorded in :attr:`PluginHost.errors` and shown by
``hybrid plugins``, unless ``HYBRID_STRICT_PLUGINS=1`` makes it fatal.
``HYBRID_DISABLE_PLUGINS=name1,name2`` skips plugins by name.
"""

from __future__ import annotations

import difflib
import importlib
import os
from importlib.metadata import entry_points
from typing import Any

import attrs
import pluggy

from . import __version__, hookspecs
from .errors import PluginLoadError
from .registry import ComponentRegistry, make_register

ENTRY_POINT_GROUP = "hybrid"
STRICT_ENV = "HYBRID_STRICT_PLUGINS"
DISABLE_ENV = "HYBRID_DISABLE_PLUGINS"

BUILTIN_MODULES = (
    "hybrid_core.builtin.local_data",
    "hybrid_core.builtin.sample_data",
    "hybrid_core.builtin.yfinance_data",
    "hybrid_core.builtin.paper_broker",
    "hybrid_core.builtin.risk_rules",
    "hybrid_core.builtin.guards",
)

_HOOK_KINDS = {
    "hybrid_register_data_sources": "data_source",
    "hybrid_register_strategies": "strategy",
    "hybrid_register_risk_rules": "risk_rule",
    "hybrid_register_brokers": "broker",
}


@attrs.define
class PluginInfo:
    """A loaded plugin: its name, the distribution it came from and its version."""

    name: str
    package: str
    version: str
    builtin: bool


@attrs.define
class PluginError:
    """A plugin that failed to load or register, with the reason."""

    name: str
    package: str
    error: str


@attrs.define
class PluginHost:
    """Loaded plugins, their components (``registry``) and their load errors."""

    manager: pluggy.PluginManager
    registry: ComponentRegistry
    plugins: list[PluginInfo]
    errors: list[PluginError]

    def describe(self) -> dict[str, Any]:
        """The content of ``hybrid plugins --json``."""
        out = []
        for info in self.plugins:
            specs = self.registry.by_plugin(info.name)
            out.append({
                "name": info.name,
                "package": info.package,
                "version": info.version,
                "builtin": info.builtin,
                "components": [
                    {"kind": s.kind, "name": s.name, "summary": s.summary,
                     "params": [a.name for a in attrs.fields(s.params_cls)]}
                    for s in sorted(specs, key=lambda s: (s.kind, s.name))
                ],
            })
        return {"plugins": out, "errors": [attrs.asdict(e) for e in self.errors]}


def _strict() -> bool:
    return os.environ.get(STRICT_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def _disabled() -> set[str]:
    raw = os.environ.get(DISABLE_ENV, "")
    return {part.strip() for part in raw.split(",") if part.strip()}


def build_plugin_host(*, load_entry_points: bool = True,
                      extra_plugins: list[tuple[str, Any]] | None = None) -> PluginHost:
    """Load the built-ins, then every entry point of the ``hybrid`` group, into a new host.

    ``extra_plugins`` (name, module-or-object) pairs are registered too (handy in tests).
    Raises :class:`PluginLoadError` in strict mode when any plugin fails.
    """
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    host = PluginHost(manager, ComponentRegistry(), [], [])
    disabled = _disabled()

    for module_name in BUILTIN_MODULES:
        short = module_name.rsplit(".", 1)[-1]
        if short in disabled or module_name in disabled:
            continue
        _load(host, short, "hybrid-core", __version__, True,
              lambda m=module_name: importlib.import_module(m))

    if load_entry_points:
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            if ep.name in disabled:
                continue
            dist = getattr(ep, "dist", None)
            package = dist.metadata["Name"] if dist is not None else "?"
            version = dist.version if dist is not None else "?"
            _load(host, ep.name, package, version, False, ep.load)

    for name, obj in extra_plugins or []:
        _load(host, name, getattr(obj, "__name__", name), "0", False, lambda o=obj: o)

    manager.check_pending()
    return host


def _load(host: PluginHost, name: str, package: str, version: str, builtin: bool,
          loader: Any) -> None:
    if host.manager.has_plugin(name):  # never unregister the first plugin of that name below
        _record(host, name, package, f"PluginLoadError: another plugin named {name!r} is already "
                                     f"loaded; uninstall one of them", None)
        return
    try:
        host.manager.register(loader(), name=name)
        _check_hook_names(host.manager, name)
        for hook_name, kind in _HOOK_KINDS.items():
            for impl in getattr(host.manager.hook, hook_name).get_hookimpls():
                if impl.plugin_name == name:
                    impl.function(register=make_register(host.registry, kind, name, package, version))
        host.plugins.append(PluginInfo(name, package, version, builtin))
    except Exception as exc:  # one broken plugin must not take the CLI down
        if host.manager.has_plugin(name):
            host.manager.unregister(name=name)
        host.registry.remove_plugin(name)  # no half-registered plugin
        _record(host, name, package, f"{type(exc).__name__}: {exc}".splitlines()[0], exc)


def _record(host: PluginHost, name: str, package: str, message: str, exc: Exception | None) -> None:
    """Keep a plugin's load error for ``hybrid plugins``; raise it in strict mode."""
    if _strict():
        raise PluginLoadError(f"plugin {name!r} ({package}) failed to load: {message}") from exc
    host.errors.append(PluginError(name, package, message))


def _check_hook_names(manager: pluggy.PluginManager, name: str) -> None:
    """Refuse a plugin implementing a hook hybrid does not define (a misspelt name would be ignored)."""
    known = sorted(n for n in dir(hookspecs) if n.startswith("hybrid_register_"))
    plugin = manager.get_plugin(name)
    for caller in manager.get_hookcallers(plugin) or []:
        if caller.spec is None:
            close = difflib.get_close_matches(caller.name, known, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known hooks: {', '.join(known)}"
            raise PluginLoadError(f"unknown hook {caller.name!r}; {hint}")
