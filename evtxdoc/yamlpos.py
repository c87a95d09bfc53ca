"""Strict YAML: plain values plus the line of every key, and duplicate keys as errors.

PyYAML silently keeps the last of two equal keys; a rule author deserves to hear about it.
`load(text, where)` returns the data and a `Lines` map from a key path (a tuple of keys and
list indexes) to its 1-based line, so later checks can point at `file:line`.
"""

from __future__ import annotations

from typing import Any

import yaml

from evtxdoc.errors import SpecError

Path = tuple[str | int | float, ...]  # keys may be numbers in YAML


class YamlError(SpecError):
    """The text is not YAML we accept; carries the 1-based line."""


class Lines(dict[Path, int]):
    """key path → line; `at(path)` falls back to the nearest enclosing path."""

    def at(self, path: Path) -> int:
        while path and path not in self:
            path = path[:-1]
        return self.get(path, 1)


# libyaml's parser when PyYAML was built with it (wheels are): the same nodes and marks, 12x
# faster on the knowledge base (95 files: 0.42 -> 0.035 s), so that `rules` and `catalog`
# commands start quickly; the pure-Python one otherwise.
Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load(text: str) -> tuple[Any, Lines]:
    """Parse one YAML document (an empty one is None)."""
    loader = Loader(text)
    try:
        node = loader.get_single_node()
        lines = Lines()
        if node is None:
            return None, lines
        return _value(loader, node, (), lines), lines
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise YamlError(
            f"not valid YAML: {exc.problem or exc}", mark.line + 1 if mark else 1
        ) from exc
    except yaml.YAMLError as exc:
        raise YamlError(f"not valid YAML: {exc}", 1) from exc
    finally:
        loader.dispose()


def _value(loader: Any, node: yaml.Node, path: Path, lines: Lines) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # merge keys (<<) as PyYAML does
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | float | bool) or key is None:
                raise YamlError("a key must be a plain value", key_node.start_mark.line + 1)
            if key in out:
                raise YamlError(
                    f"duplicate key {key!r} (first at line {lines[(*path, key)]})",
                    key_node.start_mark.line + 1,
                )
            lines[(*path, key)] = key_node.start_mark.line + 1
            out[key] = _value(loader, value_node, (*path, key), lines)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [
            _value(loader, item, (*path, index), lines) for index, item in enumerate(node.value)
        ]
    return loader.construct_object(node, deep=True)
