"""Strict structuring of plain YAML data into attrs classes, every problem reported at once.

API::

    obj = structure(data, SomeAttrsClass, "strategies[0].params")   # or ProfileError(lines=[...])

One pass over the whole value collects, each as one line with its full path:

- every unknown key (with the closest allowed name when there is one);
- every missing required key;
- every type problem (``"10"`` is not a number, ``.inf`` is not a finite number);
- every failed validator of every field, each run on its own (so a type error in one field
  does not hide a range error in another, and ``'rsi_period' must be >= 2: 1`` becomes
  ``....params.rsi_period: must be >= 2, got 1``).

Only when all fields are right is the class built, so ``__attrs_post_init__`` and validators
that look at several fields run last (their failure is reported at the class's path).
Leaf values (numbers, text, unions, lists of scalars) go through one strict cattrs converter.
"""

from __future__ import annotations

import difflib
import functools
import math
import re
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import cattrs

from .errors import ProfileError


def describe(value: Any) -> str:
    """A short, user-facing rendering of a YAML value."""
    if isinstance(value, str):
        return repr(value) if len(value) <= 60 else repr(value[:57] + "...")
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, float) and not math.isfinite(value):
        return ".nan" if math.isnan(value) else (".inf" if value > 0 else "-.inf")
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _number(value: Any, _type: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"expected a number, got {describe(value)}")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise ValueError(f"expected a finite number, got {describe(value)}")
    return number


def _integer(value: Any, _type: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"expected a whole number, got {describe(value)}")
    if isinstance(value, float) and (not math.isfinite(value) or int(value) != value):
        raise ValueError(f"expected a whole number, got {describe(value)}")
    return int(value)


def _string(value: Any, _type: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected text, got {describe(value)}")
    return value


def _boolean(value: Any, _type: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {describe(value)}")
    return value


def _mapping(value: Any, _type: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"expected a mapping of keys to values, got {describe(value)}")
    return dict(value)


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is list:
        return "a list"
    if typing.get_origin(tp) is typing.Literal:
        return " or ".join(repr(a) for a in typing.get_args(tp))
    return {float: "a number", int: "a whole number", str: "text", bool: "true/false"}.get(
        tp, getattr(tp, "__name__", str(tp)))


@functools.lru_cache(maxsize=1)
def make_converter() -> cattrs.Converter:
    """The strict converter for leaf values: no silent type coercion, finite numbers only.

    Built once per process: cattrs compiles a structuring function per type on first use.
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
        lists = [a for a in args if typing.get_origin(a) is list]
        if isinstance(value, (list, tuple)) and len(lists) == 1:
            return conv.structure(value, lists[0])  # the list's own problem, with its index
        for arg in args:
            if arg is type(None):
                continue
            try:
                return conv.structure(value, arg)
            except Exception:  # try the next member
                continue
        names = " or ".join(_type_name(a) for a in args if a is not type(None))
        raise ValueError(f"expected {names}, got {describe(value)}")

    conv.register_structure_hook_func(_is_union, union_hook)

    def literal_hook(value: Any, tp: Any) -> Any:
        allowed = typing.get_args(tp)
        if isinstance(value, (str, int, float, bool)) and value in allowed:
            return value
        raise ValueError(f"expected one of {', '.join(map(str, allowed))}, got {describe(value)}")

    conv.register_structure_hook_func(lambda t: typing.get_origin(t) is typing.Literal, literal_hook)

    def list_hook(value: Any, tp: Any) -> list[Any]:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"expected a list, got {describe(value)}")
        (item,) = typing.get_args(tp) or (Any,)
        out = []
        for i, v in enumerate(value):
            try:
                out.append(conv.structure(v, item) if item is not Any else v)
            except Exception as exc:
                raise ValueError(f"[{i}]: {_first_line(exc)}") from None
        return out

    conv.register_structure_hook_func(
        lambda t: typing.get_origin(t) is list and typing.get_args(t) in ((str,), (float,), (int,), ()),
        list_hook)
    return conv


def join(path: str, key: str) -> str:
    """``path`` extended by a key (``a.b``) or an index (``a[0]``)."""
    if not key:
        return path
    if key.startswith("["):
        return f"{path}{key}"
    return f"{path}.{key}" if path else key


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    if isinstance(exc, cattrs.BaseValidationError) and exc.exceptions:
        return _first_line(exc.exceptions[0])
    return text.splitlines()[0] if text else type(exc).__name__


_ATTRS_MESSAGE = re.compile(r"^'(?P<name>[^']+)' (?P<rest>must .*?)(?:: (?P<value>.+))?$")


def validator_message(exc: BaseException, name: str) -> str:
    """A validator's message without the field name it starts with (the path names the field)."""
    text = _first_line(exc)
    match = _ATTRS_MESSAGE.match(text)
    if match and match.group("name") == name:
        rest = match.group("rest")
        value = match.group("value")
        return f"{rest}, got {value}" if value is not None else rest
    for prefix in (f"'{name}' ", f"{name} ", f"{name}: "):
        if text.startswith(prefix):
            return text[len(prefix):]
    return text


def _validators(attribute: attrs.Attribute) -> list[Any]:
    """The field's validators, each on its own (an ``and_`` validator is taken apart)."""
    found = attribute.validator
    if found is None:
        return []
    stack, out = [found], []
    while stack:
        item = stack.pop(0)
        inner = getattr(item, "_validators", None)
        if inner is not None:
            stack[:0] = list(inner)
        else:
            out.append(item)
    return out


def _field_types(cls: type) -> dict[str, Any]:
    try:
        attrs.resolve_types(cls)
    except Exception:  # unresolvable annotations: structure the field as it comes
        pass
    return {a.name: a.type for a in attrs.fields(cls)}


def _unknown_key_line(path: str, key: Any, allowed: Sequence[str]) -> str:
    close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.75)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"{join(path, str(key))}: unknown key ({hint}allowed: {', '.join(allowed) or 'none'})"


def structure_fields(data: dict[str, Any], cls: type, path: str, errors: list[str]) -> dict[str, Any]:
    """The fields of ``cls`` that structure and validate cleanly, by name; one line in ``errors``
    for every other problem (unknown keys, missing keys, types, validators), in file order."""
    fields = {a.name: a for a in attrs.fields(cls) if a.init}
    allowed = list(fields)
    types_ = _field_types(cls)
    values: dict[str, Any] = {}
    for key, raw in data.items():
        attribute = fields.get(key) if isinstance(key, str) else None
        if attribute is None:
            errors.append(_unknown_key_line(path, key, allowed))
            continue
        where = join(path, attribute.name)
        before = len(errors)
        ok, value = _structure_value(raw, types_.get(attribute.name, Any), where, errors)
        if not ok:
            continue
        for check in _validators(attribute):
            try:
                check(types.SimpleNamespace(**values), attribute, value)
            except AttributeError:  # it needs other fields: checked when the class is built
                continue
            except Exception as exc:
                errors.append(f"{where}: {validator_message(exc, attribute.name)}")
        if len(errors) == before:
            values[attribute.name] = value
    for name, attribute in fields.items():
        if name not in data and attribute.default is attrs.NOTHING:
            errors.append(f"{join(path, name)}: required key is missing")
    return values


def structure_into(data: Any, cls: type, path: str, errors: list[str]) -> Any:
    """Structure ``data`` into the attrs class ``cls``, appending one line per problem to
    ``errors``; returns the instance, or None when there was any problem."""
    if not isinstance(data, dict):
        errors.append(f"{path or 'profile'}: expected a mapping of keys to values, got {describe(data)}")
        return None
    before = len(errors)
    values = structure_fields(data, cls, path, errors)
    if len(errors) > before:
        return None
    fields = {a.name: a for a in attrs.fields(cls) if a.init}
    try:
        return cls(**{(fields[k].alias or k): v for k, v in values.items()})
    except Exception as exc:  # checks across fields, __attrs_post_init__
        errors.append(f"{path or 'profile'}: {validator_message(exc, '')}")
        return None


def _structure_value(value: Any, tp: Any, path: str, errors: list[str]) -> tuple[bool, Any]:
    """(True, structured) or (False, None) after appending the problems of ``value`` to ``errors``."""
    if tp is Any or tp is None:
        return True, value
    if isinstance(tp, type) and attrs.has(tp):
        before = len(errors)
        obj = structure_into(value, tp, path, errors)
        return len(errors) == before, obj
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is list and args and isinstance(args[0], type) and attrs.has(args[0]):
        if not isinstance(value, (list, tuple)):
            errors.append(f"{path}: expected a list, got {describe(value)}")
            return False, None
        before = len(errors)
        items = [structure_into(v, args[0], f"{path}[{i}]", errors) for i, v in enumerate(value)]
        return len(errors) == before, items
    try:
        return True, make_converter().structure(value, tp)
    except Exception as exc:
        text = _first_line(exc)
        if text.startswith("["):  # an item of a list: "[3]: expected text, got 5"
            index, _, rest = text.partition(": ")
            errors.append(f"{path}{index}: {rest}")
        else:
            errors.append(f"{path}: {text}")
        return False, None


def structure(data: Any, cls: type, path: str) -> Any:
    """Structure ``data`` into ``cls``; raises ProfileError with one line per problem."""
    errors: list[str] = []
    obj = structure_into(data, cls, path, errors)
    if errors:
        raise ProfileError(lines=errors)
    return obj
