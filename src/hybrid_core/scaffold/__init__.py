"""``hybrid plugin new``: write a ready plugin package from the templates in ``templates/``.

The package has a ``pyproject.toml`` declaring the entry point (group ``hybrid``), the component
with the hook that registers it and its ``HYBRID_CONTRACT``, tests written with
:mod:`hybrid_core.testing`, a README, a ``tox.ini`` and (strategies) an ``example.yaml``
profile on the bundled sample. Its tests pass as generated.
"""

from __future__ import annotations

import re
from importlib.resources import files
from pathlib import Path

import attrs

from .. import __version__
from ..errors import HybridError

TEMPLATES = files(__name__).joinpath("templates")
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


@attrs.frozen
class Kind:
    """One kind of plugin the generator writes."""

    label: str
    """What the component is called in prose (``risk rule``)."""
    summary: str
    """The package's one-line description."""
    extra: tuple[str, ...] = ()
    """Templates of this kind written at the package's root besides the common ones."""


KINDS = {
    "strategy": Kind("strategy", "A mean-reversion strategy for hybrid: buys closes far below their rolling mean.",
                     ("example.yaml",)),
    "risk": Kind("risk rule", "A risk rule for hybrid: blocked symbols, a stop under each entry and a time exit."),
    "data": Kind("data source", "A data source for hybrid: daily bars from a folder of CSV files, one a symbol."),
    "broker": Kind("broker", "A broker for hybrid: an in-memory skeleton to connect to a broker's API."),
}
NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]*")


@attrs.frozen
class PluginNames:
    """The names of one plugin: entry point and component, distribution, module, class."""

    name: str
    dist: str
    module: str
    cls: str


def plugin_names(raw: str) -> PluginNames:
    """Names from what the user typed (``my-strategy`` -> ``my_strategy``, ``hybrid-my-strategy``...)."""
    from ..plugins import BUILTIN_MODULES, builtin_name

    name = raw.strip().lower().replace("-", "_")
    if not NAME_PATTERN.fullmatch(name):
        raise HybridError(f"plugin name {raw!r}: use letters, digits and underscores, starting with a letter "
                          f"(e.g. weekly_losers)")
    if name in {builtin_name(m) for m in BUILTIN_MODULES}:
        raise HybridError(f"plugin name {name!r} belongs to a built-in plugin of hybrid-core; choose another")
    base = name.removeprefix("hybrid_") or name
    return PluginNames(name=name, dist=f"hybrid-{base.replace('_', '-')}", module=f"hybrid_{base}",
                       cls="".join(part.capitalize() for part in base.split("_") if part))


def render(template: str, values: dict[str, str]) -> str:
    """``template`` with every ``{{key}}`` replaced; an unknown key is a bug in the templates."""
    def value(match: re.Match[str]) -> str:
        return values[match.group(1)]

    return _PLACEHOLDER.sub(value, template)


def _template(folder: str, name: str) -> str:
    return TEMPLATES.joinpath(folder, f"{name}.tmpl").read_text(encoding="utf-8")


def write_plugin(raw_name: str, kind: str, parent: Path) -> Path:
    """Write the package of a new ``kind`` plugin named ``raw_name`` into ``parent``; returns its folder."""
    from ..contracts import CONTRACT_VERSION

    if kind not in KINDS:
        raise HybridError(f"unknown plugin kind {kind!r}; one of {', '.join(KINDS)}")
    names = plugin_names(raw_name)
    spec = KINDS[kind]
    root = parent / names.dist
    if root.exists():
        raise HybridError(f"{root} already exists; choose another name or folder (--dir)")
    values = {"name": names.name, "dist": names.dist, "module": names.module, "class": names.cls, "kind": kind,
              "kind_label": spec.label, "summary": spec.summary, "contract": CONTRACT_VERSION,
              "core_version": __version__}
    values["usage"] = render(_template(kind, "usage.md"), values).strip()
    targets = {
        "pyproject.toml": _template("common", "pyproject.toml"),
        "README.md": _template("common", "README.md"),
        "tox.ini": _template("common", "tox.ini"),
        ".gitignore": _template("common", "gitignore"),
        f"src/{names.module}/__init__.py": _template("common", "__init__.py"),
        f"src/{names.module}/plugin.py": _template(kind, "plugin.py"),
        f"tests/test_{names.name}.py": _template(kind, "test_plugin.py"),
        **{extra: _template(kind, extra) for extra in spec.extra},
    }
    for relative, template in targets.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(template, values), encoding="utf-8")
    return root
