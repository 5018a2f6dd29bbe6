"""YAML text -> plain data plus the line and column of every key and value.

PyYAML's composer keeps marks on every node; building the data from the node tree ourselves lets an
error about `environments.prod.replicas` point at the exact line and column. The same walk rejects what a
config file should not contain: duplicate keys, non-string keys, recursive aliases and alias bombs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

Path = tuple[str | int, ...]
_MAX_NODES = 200_000
_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass(frozen=True)
class Position:
    line: int
    col: int


@dataclass
class Located:
    """The document's data, and where each path's key and value start (1-based)."""

    data: Any
    keys: dict[Path, Position] = field(default_factory=dict)
    values: dict[Path, Position] = field(default_factory=dict)

    def value_at(self, path: Path) -> Position:
        """Where the value at `path` (or its nearest written ancestor) starts."""
        for cut in range(len(path), -1, -1):
            found = self.values.get(path[:cut])
            if found is not None:
                return found
        return Position(1, 1)

    def key_at(self, path: Path) -> Position:
        return self.keys.get(path) or self.value_at(path)


class YamlProblem(Exception):
    """A document that is not valid YAML or not a plain-data config, with where it went wrong."""

    def __init__(self, message: str, position: Position, path: Path = ()) -> None:
        super().__init__(message)
        self.message = message
        self.position = position
        self.path = path


def _pos(mark: yaml.Mark | None) -> Position:
    return Position(mark.line + 1, mark.column + 1) if mark is not None else Position(1, 1)


class _Builder:
    def __init__(self, located: Located) -> None:
        self.located = located
        self.count = 0
        self.active: set[int] = set()
        self.constructor = yaml.SafeLoader("")

    def build(self, node: yaml.Node, path: Path) -> Any:
        self.count += 1
        if self.count > _MAX_NODES:
            raise YamlProblem(
                f"document too large (more than {_MAX_NODES} values, aliases included)", _pos(node.start_mark)
            )
        if id(node) in self.active:
            raise YamlProblem("recursive alias: a value cannot contain itself", _pos(node.start_mark), path)
        self.located.values.setdefault(path, _pos(node.start_mark))
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, path)
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
            assert isinstance(node, yaml.MappingNode)
            return self._mapping(node, path)
        finally:
            self.active.discard(id(node))

    def _scalar(self, node: yaml.ScalarNode, path: Path) -> Any:
        try:
            return self.constructor.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or str(exc)
            raise YamlProblem(problem, _pos(node.start_mark), path) from None

    def _pairs(self, node: yaml.MappingNode, path: Path) -> list[tuple[yaml.Node, yaml.Node]]:
        """The mapping's pairs with `<<` merge keys expanded (explicit keys win over merged ones)."""
        own: list[tuple[yaml.Node, yaml.Node]] = []
        merged: list[tuple[yaml.Node, yaml.Node]] = []
        for key, value in node.value:
            if key.tag != _MERGE_TAG:
                own.append((key, value))
                continue
            sources = value.value if isinstance(value, yaml.SequenceNode) else [value]
            for source in sources:
                if not isinstance(source, yaml.MappingNode):
                    raise YamlProblem(
                        "a merge key (<<) expects a mapping or a list of mappings",
                        _pos(source.start_mark),
                        path,
                    )
                if id(source) in self.active:
                    raise YamlProblem(
                        "recursive alias: a value cannot contain itself", _pos(source.start_mark), path
                    )
                self.active.add(id(source))
                try:
                    merged.extend(self._pairs(source, path))
                finally:
                    self.active.discard(id(source))
        own_keys = {k.value for k, _ in own if isinstance(k, yaml.ScalarNode)}
        return own + [
            (k, v) for k, v in merged if not (isinstance(k, yaml.ScalarNode) and k.value in own_keys)
        ]

    def _mapping(self, node: yaml.MappingNode, path: Path) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in self._pairs(node, path):
            key = self._scalar(key_node, path) if isinstance(key_node, yaml.ScalarNode) else key_node
            if isinstance(key, bool | int | float) or key is None:
                key = key_node.value  # `1: x` or `on: x` still names a key the user wrote as text
            if not isinstance(key, str):
                raise YamlProblem(
                    "expected a plain text key, got a complex key", _pos(key_node.start_mark), path
                )
            child = (*path, key)
            if key in result:
                raise YamlProblem(f'duplicate key "{key}"', _pos(key_node.start_mark), child)
            self.located.keys[child] = _pos(key_node.start_mark)
            result[key] = self.build(value_node, child)
        return result


def locate(text: str) -> Located:
    """Parse one YAML document into plain data and positions; raises YamlProblem with a 1-based position."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        raise YamlProblem(problem, _pos(mark)) from None
    except yaml.YAMLError as exc:
        raise YamlProblem(str(exc).splitlines()[0] if str(exc) else "invalid YAML", Position(1, 1)) from None
    except RecursionError:
        raise YamlProblem("document nested too deeply", Position(1, 1)) from None
    located = Located(data=None)
    if node is None:
        return located
    try:
        located.data = _Builder(located).build(node, ())
    except RecursionError:
        raise YamlProblem("document nested too deeply", Position(1, 1)) from None
    return located
