"""Reading a YAML run profile safely: one line naming the file for every way it can be wrong.

API::

    data = read_profile_yaml(path)    # a dict, or ProfileError (one line per problem)
    data = read_yaml_file(path, "sweep file", missing_hint="see docs/sweeps.md")  # other YAML inputs

Every YAML file a user gives hybrid (run profiles, sweep files) is read here, with the same limits.

What is refused, before anything is built from the profile:

- a path that is not a regular file (a folder, a named pipe: never opened), or one larger
  than :data:`MAX_BYTES`;
- text that is not UTF-8 (a byte-order mark for UTF-8, UTF-16 or UTF-32 is honoured), with
  the line and column of the first bad byte;
- YAML syntax errors (line and column), tags other than the standard ones;
- the same key twice in one mapping (both lines named): YAML would keep the last one, and a
  second ``risk: []`` would silently turn every risk rule off;
- alias bombs, deep nesting and huge files: more than :data:`MAX_ALIASES` aliases, a structure
  nested deeper than :data:`MAX_DEPTH`, more than :data:`MAX_NODES` values in the file or once
  aliases are expanded (counted without expanding them), or an alias that contains itself.
  Every refusal comes well within a second (libyaml's parser when PyYAML has it).

Dates are read as text (``start: 2021-01-04`` is the string ``"2021-01-04"``), so every
date of a profile goes through the same date check.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .errors import ProfileError
from .paths import bom_encoding, read_bounded

MAX_BYTES = 1 << 20
"""A profile is a page of settings; 1 MiB leaves room for universes of thousands of symbols."""
MAX_DEPTH = 64
MAX_ALIASES = 256
MAX_NODES = 50_000
"""Values (every key, list and scalar) in the file, and once aliases are expanded. A universe of
tens of thousands of symbols fits; counted while composing, so the slowest file to read takes
about half a second."""

_MERGE_TAG = "tag:yaml.org,2002:merge"

try:  # libyaml scans and parses in C (about 9x faster); the composing, with the limits, stays here
    from yaml._yaml import CParser as _LibYamlParser
    _HAS_LIBYAML = True
except ImportError:  # pragma: no cover - a PyYAML built without libyaml
    _HAS_LIBYAML = False


class _YamlLimit(yaml.YAMLError):
    """A limit of this loader was reached (message and mark as PyYAML's own errors)."""

    def __init__(self, problem: str, mark: Any) -> None:
        super().__init__(problem)
        self.problem = problem
        self.problem_mark = mark


class _ProfileResolver(yaml.resolver.Resolver):
    """YAML 1.1's implicit types without timestamps: ``2021-01-04`` stays text."""

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.resolver.Resolver.yaml_implicit_resolvers.items()
    }


class _BoundedComposer(yaml.composer.Composer):
    """PyYAML's composer with limits on aliases, depth and values, checked as each node is made."""

    _depth = 0
    _aliases = 0
    _nodes = 0

    if TYPE_CHECKING:  # the event stream: PyYAML's Parser or libyaml's CParser
        def check_event(self, *choices: Any) -> bool: ...
        def peek_event(self) -> Any: ...

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise _YamlLimit(f"more than {MAX_ALIASES} aliases (*name); a run profile needs few, "
                                 f"this looks like an alias bomb", self.peek_event().start_mark)
        else:
            self._nodes += 1
            if self._nodes > MAX_NODES:
                raise _YamlLimit(f"more than {MAX_NODES:,} values; a run profile is a page of settings: "
                                 f"is it the right file?", self.peek_event().start_mark)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _YamlLimit(f"values nested more than {MAX_DEPTH} levels deep",
                                 self.peek_event().start_mark)
            node: Node | None = super().compose_node(parent, index)
            return node
        finally:
            self._depth -= 1


class _PurePythonLoader(_BoundedComposer, yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser,
                        yaml.constructor.SafeConstructor, _ProfileResolver):
    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        yaml.composer.Composer.__init__(self)
        yaml.constructor.SafeConstructor.__init__(self)
        _ProfileResolver.__init__(self)


if _HAS_LIBYAML:
    class _LibYamlLoader(_BoundedComposer, _LibYamlParser, yaml.constructor.SafeConstructor,  # type: ignore[misc]
                         _ProfileResolver):
        def __init__(self, stream: str) -> None:
            _LibYamlParser.__init__(self, stream)
            yaml.composer.Composer.__init__(self)
            yaml.constructor.SafeConstructor.__init__(self)
            _ProfileResolver.__init__(self)

ProfileLoader: Any = _LibYamlLoader if _HAS_LIBYAML else _PurePythonLoader
"""PyYAML's safe loader without implicit timestamps, with limits on aliases, depth and values;
libyaml's parser when PyYAML has it."""


PROFILE_HINT = "give the path of a YAML run profile, e.g. profiles/demo.yaml"


def read_yaml_text(path: Path, what: str = "profile", missing_hint: str = PROFILE_HINT) -> str:
    """The text of the YAML file ``what`` at ``path``: a regular, readable file of at most
    MAX_BYTES, decoded (BOM-aware)."""
    try:
        raw = read_bounded(path, what, MAX_BYTES, missing_hint=missing_hint)
    except ValueError as exc:
        raise ProfileError(str(exc)) from None
    return decode_text(raw, path, what)


def decode_text(raw: bytes, path: Path | str, what: str) -> str:
    """``raw`` as text: the encoding of its byte-order mark, else strict UTF-8 (error names the place)."""
    encoding = bom_encoding(raw[:4])
    if encoding is not None:
        try:
            return raw.decode(encoding).lstrip("\ufeff")
        except UnicodeDecodeError as exc:
            raise ProfileError(f"{what} {path}: starts with a {encoding.upper()} byte-order mark but is "
                               f"not valid {encoding.upper()} (byte {exc.start}); save it as UTF-8") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        hint = ("it looks like UTF-16 without a byte-order mark" if b"\x00" in raw[:64]
                else "it looks like Latin-1 or Windows-1252 text")
        raise ProfileError(f"{what} {path}: line {line}, column {column}: byte 0x{raw[exc.start]:02x} is not "
                           f"UTF-8 ({hint}); save the file as UTF-8") from None


def _mark(node: Node) -> str:
    return f"line {node.start_mark.line + 1}"


def _check_graph(root: Node) -> list[str]:
    """Cycles, expanded size and depth of the node graph (aliases shared, never expanded);
    duplicate keys of every mapping. Returns problems, one line each.

    Only collections are walked (a scalar counts one value, one level), so the walk costs about
    one step per list or mapping, not per value."""
    problems: list[str] = []
    size: dict[int, int] = {}  # collections done: values once aliases are expanded
    depth: dict[int, int] = {}
    walking: set[int] = set()  # collections whose children are being walked (a cycle meets one)
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if isinstance(node, ScalarNode):
            continue
        key = id(node)
        if children_done:
            walking.discard(key)
            total, deepest = 1, 0
            for child in _children(node):
                total += size.get(id(child), 1)
                deepest = max(deepest, depth.get(id(child), 1))
            size[key], depth[key] = total, deepest + 1
            if total > MAX_NODES:
                return [f"{_mark(node)}: more than {MAX_NODES:,} values once aliases are expanded; "
                        f"this looks like an alias bomb"]
            if deepest + 1 > MAX_DEPTH:
                return [f"{_mark(node)}: values nested more than {MAX_DEPTH} levels deep once aliases "
                        f"are expanded"]
            continue
        if key in size:
            continue
        walking.add(key)
        if isinstance(node, MappingNode):
            problems.extend(_duplicate_keys(node))
        stack.append((node, True))
        for child in _children(node):
            if isinstance(child, ScalarNode) or id(child) in size:
                continue
            if id(child) in walking:
                return [f"{_mark(child)}: an alias refers to a value that contains it (a recursive "
                        f"structure); write the values out instead"]
            stack.append((child, False))
    return problems


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _duplicate_keys(node: MappingNode) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for key_node, _value in node.value:
        if not isinstance(key_node, ScalarNode) or key_node.tag == _MERGE_TAG:
            continue
        name = str(key_node.value)
        line = key_node.start_mark.line + 1
        if name in seen:
            out.append(f"line {line}: key {name!r} appears twice in one mapping (first on line {seen[name]}); "
                       f"YAML would silently keep the last one: remove one of them")
        else:
            seen[name] = line
    return out


def parse_profile_yaml(text: str, path: Path | str, what: str = "profile") -> Any:
    """The data of the YAML ``text`` of the file ``what`` (a profile, a sweep file) at ``path``;
    ProfileError (one line per problem) if unsafe or invalid."""
    if "\x00" in text:
        raise ProfileError(f"{path}: line {text.count(chr(10), 0, text.index(chr(0))) + 1}: holds NUL "
                           f"characters (UTF-16 without a byte-order mark, or not a text file); save it "
                           f"as UTF-8")
    loader = None
    try:
        loader = ProfileLoader(text)
        node = loader.get_single_node()
        if node is None:
            return None
        problems = _check_graph(node)
        if problems:
            raise ProfileError(lines=[f"{path}: {p}" for p in problems])
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise ProfileError(f"{path}: {_yaml_problem(exc)} (the {what} is not valid YAML)") from None
    except RecursionError:
        raise ProfileError(f"{path}: values nested too deeply to read (the {what} is not a plain "
                           f"YAML file of settings)") from None
    finally:
        if loader is not None:
            loader.dispose()


def _yaml_problem(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.reader.ReaderError):
        character = chr(exc.character) if isinstance(exc.character, int) else exc.character
        return (f"character {character!r} at position {exc.position} is not allowed in YAML "
                f"({exc.reason})")
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if problem == "exceeded maximum nesting depth":  # libyaml's own bound, met while looking ahead
        return f"{where}values nested more than {MAX_DEPTH} levels deep"
    context = getattr(exc, "context", None)
    context_mark = getattr(exc, "context_mark", None)
    if context and context_mark is not None and mark is not None and context_mark.line != mark.line:
        problem = f"{problem} ({context} on line {context_mark.line + 1})"
    elif context:
        problem = f"{context}: {problem}"
    return f"{where}{problem}"


def read_yaml_file(path: Path, what: str = "profile", missing_hint: str = PROFILE_HINT) -> Any:
    """Read, decode and parse the YAML file ``what`` at ``path`` (see the module docstring)."""
    return parse_profile_yaml(read_yaml_text(path, what, missing_hint), path, what)


def read_profile_yaml(path: Path) -> Any:
    """Read, decode and parse the run profile at ``path`` (see the module docstring)."""
    return read_yaml_file(path, "profile", PROFILE_HINT)
