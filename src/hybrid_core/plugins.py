"""The plugin host: hybrid-core's built-in plugins and entry-point plugins, loaded into a fresh registry.

Built with :func:`build_plugin_host` (a factory, never a global), so every CLI call and every
test gets its own. hybrid's own commands and components are plugins too (:data:`BUILTIN_MODULES`),
registered through the same hooks as a third party's. Each plugin is loaded in its own
``try``/``except``: a broken plugin is recorded in :attr:`PluginHost.errors` (the CLI prints one
warning line for it, ``hybrid plugins`` the details) unless ``HYBRID_STRICT_PLUGINS=1`` makes it
fatal. ``HYBRID_DISABLE_PLUGINS=name1,name2`` skips plugins by plugin or package name.

A plugin loads only if it declares the contract version it was built for (``HYBRID_CONTRACT``
in its entry-point module) and that version is compatible with
:data:`hybrid_core.contracts.CONTRACT_VERSION`. Two packages declaring one plugin name, or a
package taking the name of a built-in plugin, are load errors: the qualified component names
``<plugin>:<name>`` must stay unambiguous.

Importing this module and loading the built-in ``commands`` plugin do not import pandas.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import os
import re
from collections.abc import Callable, Iterable, Sequence
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import attrs
import click
import pluggy

from . import __version__, hookspecs
from .errors import PluginLoadError
from .registry import QUALIFIER, ComponentRegistry, NameConflict, make_register

ENTRY_POINT_GROUP = "hybrid"
STRICT_ENV = "HYBRID_STRICT_PLUGINS"
DISABLE_ENV = "HYBRID_DISABLE_PLUGINS"
CONTRACT_ATTRIBUTE = "HYBRID_CONTRACT"
"""The module attribute in which a plugin declares the contract version it was built for."""
CORE_PACKAGE = "hybrid-core"

COMMANDS_MODULE = "hybrid_core.commands"
BUILTIN_MODULES = (
    COMMANDS_MODULE,
    "hybrid_core.builtin.local_data",
    "hybrid_core.builtin.sample_data",
    "hybrid_core.builtin.yfinance_data",
    "hybrid_core.builtin.paper_broker",
    "hybrid_core.builtin.risk_rules",
    "hybrid_core.builtin.guards",
    "hybrid_core.builtin.native_engine",
)
"""hybrid-core's own plugins; each one's plugin name is the last part of its module name."""

_HOOK_KINDS = {
    "hybrid_register_data_sources": "data_source",
    "hybrid_register_strategies": "strategy",
    "hybrid_register_risk_rules": "risk_rule",
    "hybrid_register_brokers": "broker",
    "hybrid_register_backtest_engines": "backtest_engine",
}
_CONTRACT_PATTERN = re.compile(r"(\d+)\.(\d+)")


def builtin_name(module_name: str) -> str:
    """The plugin name of a built-in module (``hybrid_core.builtin.paper_broker`` -> ``paper_broker``)."""
    return module_name.rsplit(".", 1)[-1]


@attrs.define
class PluginInfo:
    """A loaded plugin: its name, the distribution it came from, its version and its contract."""

    name: str
    package: str
    version: str
    builtin: bool
    contract: str | None
    """The contract version it was built for; None for hybrid-core's own plugins (always the current one)."""


@attrs.define
class PluginError:
    """A plugin that failed to load or register, with the reason."""

    name: str
    package: str
    error: str

    @property
    def warning(self) -> str:
        """The one line every command that loads plugins prints for this failure."""
        return (f"warning: plugin {self.name!r} ({self.package}) failed to load: {self.error} "
                f"(details: hybrid plugins)")


@attrs.frozen
class CommandSpec:
    """A CLI command and the plugin that provides it."""

    name: str
    command: click.Command
    plugin: str
    package: str


class CommandRegistrar:
    """The ``cli`` handed to one plugin's ``hybrid_register_commands``: the click group's ways to add a
    command (``add_command``, ``@cli.command()``, ``@cli.group()``), recording which plugin added it."""

    def __init__(self, commands: list[CommandSpec], plugin: str, package: str) -> None:
        self._commands = commands
        self._plugin = plugin
        self._package = package

    def add_command(self, command: click.Command, name: str | None = None) -> None:
        """Add ``command`` (under ``name``, default its own name)."""
        from .commands import CORE_COMMANDS

        if not isinstance(command, click.Command):
            raise PluginLoadError(f"plugin {self._plugin!r} added {command!r}, which is not a click command")
        name = name or command.name
        if not name:
            raise PluginLoadError(f"plugin {self._plugin!r} added a command without a name")
        if name in CORE_COMMANDS and self._plugin != builtin_name(COMMANDS_MODULE):
            raise PluginLoadError(f"command {name!r} is one of hybrid's own commands; give the plugin's "
                                  f"command another name")
        if any(c.name == name and c.plugin == self._plugin for c in self._commands):
            raise PluginLoadError(f"plugin {self._plugin!r} adds two commands named {name!r}")
        self._commands.append(CommandSpec(name, command, self._plugin, self._package))

    def command(self, *args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], click.Command]:
        """``@cli.command(...)``: make a click command of the function and add it."""
        return self._adding(click.command(*args, **kwargs))

    def group(self, *args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], click.Command]:
        """``@cli.group(...)``: make a click group of the function and add it."""
        return self._adding(click.group(*args, **kwargs))

    def _adding(self, make: Callable[[Callable[..., Any]], click.Command]) -> Callable[..., click.Command]:
        def decorate(function: Callable[..., Any]) -> click.Command:
            command = make(function)
            self.add_command(command)
            return command

        return decorate


class PluginHost:
    """Loaded plugins, their components (``registry``), their commands and their load errors.

    Loading may go in steps (the CLI loads the built-in ``commands`` plugin first, the rest only
    when a command needs it); a plugin already loaded is never loaded again.
    """

    def __init__(self) -> None:
        self.manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.manager.add_hookspecs(hookspecs)
        self.registry = ComponentRegistry()
        self.commands: list[CommandSpec] = []
        self.plugins: list[PluginInfo] = []
        self.errors: list[PluginError] = []
        self._disabled = _disabled()

    # ------------------------------------------------------------------ loading
    def load_builtins(self, modules: Sequence[str] = BUILTIN_MODULES) -> None:
        """Load hybrid-core's own plugins (those not loaded or disabled yet)."""
        for module_name in modules:
            name = builtin_name(module_name)
            if name in self._disabled or module_name in self._disabled or self.manager.has_plugin(name):
                continue
            self._load(name, CORE_PACKAGE, __version__, True, functools.partial(importlib.import_module, module_name))
        self.manager.check_pending()

    def load_entry_points(self) -> None:
        """Load every plugin of the entry-point group ``hybrid``, in its own try/except."""
        _strict()  # a bad value is refused now, not only once a plugin fails
        by_name: dict[str, list[tuple[EntryPoint, str, str]]] = {}
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            dist = getattr(ep, "dist", None)
            package = dist.metadata["Name"] if dist is not None else "?"
            version = dist.version if dist is not None else "?"
            if {ep.name, package, _normalise(package)} & self._disabled:
                continue
            by_name.setdefault(ep.name, []).append((ep, package, version))
        reserved = {builtin_name(m) for m in BUILTIN_MODULES}
        for name, declared in sorted(by_name.items()):
            packages = sorted({f"{package} {version}" for _, package, version in declared})
            if name in reserved:
                for _, package, _version in declared:
                    self._record(name, package, f"PluginLoadError: plugin name {name!r} belongs to a built-in "
                                                f"plugin of {CORE_PACKAGE}; the package must use another "
                                                f"entry-point name", None)
            elif len(packages) > 1:
                for _, package, _version in declared:
                    self._record(name, package, f"PluginLoadError: plugin name {name!r} is declared by "
                                                f"{len(packages)} packages ({', '.join(packages)}); uninstall "
                                                f"one, or disable one by package name "
                                                f"({DISABLE_ENV}=<package>)", None)
            else:
                ep, package, version = declared[0]
                self._load(name, package, version, False, ep.load)
        self.manager.check_pending()

    def load_objects(self, plugins: Iterable[tuple[str, Any]]) -> None:
        """Load in-process plugins given as (name, module-or-object) pairs (handy in tests)."""
        for name, obj in plugins:
            if name in self._disabled:
                continue
            self._load(name, getattr(obj, "__name__", name), "0", False, functools.partial(_same, obj))
        self.manager.check_pending()

    def _load(self, name: str, package: str, version: str, builtin: bool, loader: Callable[[], Any]) -> None:
        if self.manager.has_plugin(name):  # never unregister the first plugin of that name below
            self._record(name, package, f"PluginLoadError: another plugin named {name!r} is already loaded; "
                                        f"uninstall one of them", None)
            return
        try:
            if QUALIFIER in name:
                raise PluginLoadError(f"plugin name {name!r} may not contain {QUALIFIER!r}")
            plugin = loader()
            contract = _check_contract(plugin, name, package, version, builtin)
            self.manager.register(plugin, name=name)
            _check_hook_names(self.manager, name)
            self._call_hooks(name, package, version)
            self.plugins.append(PluginInfo(name, package, version, builtin, contract))
        except Exception as exc:  # one broken plugin must not take the CLI down
            if self.manager.has_plugin(name):
                self.manager.unregister(name=name)
            self.registry.remove_plugin(name)  # no half-registered plugin
            self.commands[:] = [c for c in self.commands if c.plugin != name]
            self._record(name, package, f"{type(exc).__name__}: {exc}".splitlines()[0], exc)

    def _call_hooks(self, name: str, package: str, version: str) -> None:
        """Call this one plugin's hook implementations (components, then commands)."""
        for hook_name, kind in _HOOK_KINDS.items():
            for impl in getattr(self.manager.hook, hook_name).get_hookimpls():
                if impl.plugin_name == name:
                    impl.function(register=make_register(self.registry, kind, name, package, version))
        for impl in self.manager.hook.hybrid_register_commands.get_hookimpls():
            if impl.plugin_name == name:
                impl.function(cli=CommandRegistrar(self.commands, name, package))

    def _record(self, name: str, package: str, message: str, exc: Exception | None) -> None:
        """Keep a plugin's load error; raise it in strict mode."""
        if _strict():
            raise PluginLoadError(f"plugin {name!r} ({package}) failed to load: {message}") from exc
        self.errors.append(PluginError(name, package, message))

    # ---------------------------------------------------------------- reading
    def command_conflicts(self) -> dict[str, list[CommandSpec]]:
        """Command names added by more than one plugin (none of them is used)."""
        by_name: dict[str, list[CommandSpec]] = {}
        for spec in self.commands:
            by_name.setdefault(spec.name, []).append(spec)
        return {name: specs for name, specs in sorted(by_name.items()) if len(specs) > 1}

    def describe(self) -> dict[str, Any]:
        """The content of ``hybrid plugins --json``."""
        from .contracts import CONTRACT_VERSION

        out = []
        for info in self.plugins:
            specs = self.registry.by_plugin(info.name)
            out.append({
                "name": info.name,
                "package": info.package,
                "version": info.version,
                "builtin": info.builtin,
                "contract": info.contract or CONTRACT_VERSION,
                "components": [
                    {"kind": s.kind, "name": s.name, "qualified_name": s.qualified_name, "summary": s.summary,
                     "params": [a.name for a in attrs.fields(s.params_cls)]}
                    for s in sorted(specs, key=lambda s: (s.kind, s.name))
                ],
                "commands": sorted(c.name for c in self.commands if c.plugin == info.name),
            })
        conflicts = [_conflict_json(c) for c in self.registry.conflicts()]
        conflicts += [{"kind": "command", "name": name,
                       "providers": [{"plugin": c.plugin, "package": c.package} for c in specs],
                       "message": f"command {name!r} is added by plugins "
                                  f"{' and '.join(f'{c.plugin!r} ({c.package})' for c in specs)}; "
                                  f"neither is used: uninstall one"}
                      for name, specs in self.command_conflicts().items()]
        return {"contract": CONTRACT_VERSION, "plugins": out, "conflicts": conflicts,
                "errors": [attrs.asdict(e) for e in self.errors]}


def _conflict_json(conflict: NameConflict) -> dict[str, Any]:
    return {"kind": conflict.kind, "name": conflict.name,
            "providers": [{"plugin": s.plugin, "package": s.package, "version": s.version,
                           "qualified_name": s.qualified_name} for s in conflict.providers],
            "message": conflict.message}


def _same(obj: Any) -> Any:
    return obj


def build_plugin_host(*, load_entry_points: bool = True,
                      extra_plugins: list[tuple[str, Any]] | None = None) -> PluginHost:
    """A new host with the built-ins, then every entry point of the ``hybrid`` group, loaded.

    ``extra_plugins`` (name, module-or-object) pairs are loaded too (handy in tests).
    Raises :class:`PluginLoadError` in strict mode when any plugin fails.
    """
    host = PluginHost()
    host.load_builtins()
    if load_entry_points:
        host.load_entry_points()
    host.load_objects(extra_plugins or [])
    return host


def _strict() -> bool:
    from .env import env_flag

    return env_flag(STRICT_ENV)  # "maybe" is refused naming the variable, not read as "no"


def _disabled() -> set[str]:
    raw = os.environ.get(DISABLE_ENV, "")
    return {part.strip() for part in raw.split(",") if part.strip()} | {
        _normalise(part) for part in raw.split(",") if part.strip()}


def _normalise(package: str) -> str:
    """A distribution name as pip compares them (``Hybrid_Foo`` -> ``hybrid-foo``)."""
    return re.sub(r"[-_.]+", "-", package).lower()


def parse_contract(value: object) -> tuple[int, int] | None:
    """``"MAJOR.MINOR"`` as a pair of ints, or None when ``value`` is not such a string."""
    match = _CONTRACT_PATTERN.fullmatch(value) if isinstance(value, str) else None
    return (int(match.group(1)), int(match.group(2))) if match else None


def contract_compatible(built_for: tuple[int, int], core: tuple[int, int]) -> bool:
    """A plugin built for ``built_for`` runs on contracts ``core``: same major, minor not newer."""
    return built_for[0] == core[0] and built_for[1] <= core[1]


def _check_contract(plugin: Any, name: str, package: str, version: str, builtin: bool) -> str | None:
    """The contract version ``plugin`` declares (None for hybrid-core's own plugins, built with these very
    contracts); a :class:`PluginLoadError` if it declares none or an incompatible one."""
    if builtin:
        return None
    from .contracts import CONTRACT_VERSION
    declared = getattr(plugin, CONTRACT_ATTRIBUTE, None)
    where = getattr(plugin, "__name__", type(plugin).__name__)
    if declared is None:
        raise PluginLoadError(f"{package} {version} does not declare the hybrid contract it was built for; "
                              f"add {CONTRACT_ATTRIBUTE} = \"{CONTRACT_VERSION}\" to {where} (this hybrid-core "
                              f"implements contract {CONTRACT_VERSION})")
    built_for = parse_contract(declared)
    if built_for is None:
        raise PluginLoadError(f"{where}.{CONTRACT_ATTRIBUTE} must be a \"MAJOR.MINOR\" string such as "
                              f"\"{CONTRACT_VERSION}\", got {declared!r}")
    core = parse_contract(CONTRACT_VERSION)
    assert core is not None
    if not contract_compatible(built_for, core):
        raise PluginLoadError(f"{package} {version} was built for hybrid contract {declared}, but this "
                              f"hybrid-core {__version__} implements contract {CONTRACT_VERSION} (a plugin needs "
                              f"the same major and a minor no newer); install a release of {package} built "
                              f"for contract {core[0]}.x")
    return str(declared)


def _check_hook_names(manager: pluggy.PluginManager, name: str) -> None:
    """Refuse a plugin implementing a hook hybrid does not define (a misspelt name would be ignored)."""
    known = sorted(n for n in dir(hookspecs) if n.startswith("hybrid_register_"))
    plugin = manager.get_plugin(name)
    for caller in manager.get_hookcallers(plugin) or []:
        if caller.spec is None:
            close = difflib.get_close_matches(caller.name, known, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known hooks: {', '.join(known)}"
            raise PluginLoadError(f"unknown hook {caller.name!r}; {hint}")
