"""Deterministic YAML output that passes yamllint: indented sequences, `---` per document, no key sorting.

Key order is the order the renderer built (the Kubernetes convention apiVersion, kind, metadata, spec), so the
same input gives the same bytes and diffs stay small.
"""

from __future__ import annotations

from typing import Any

import yaml

_WIDTH = 80
_FOLD_AT = 60


class _Dumper(yaml.SafeDumper):
    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    """Multi-line text as a literal block; long one-line text (PromQL, commands) folded at spaces."""
    style = None
    if "\n" in value:
        style = "|"
    elif len(value) > _FOLD_AT and " " in value and value == value.strip():
        style = ">"
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump(value: Any) -> str:
    """One YAML document, starting with `---`."""
    return "---\n" + yaml.dump(value, Dumper=_Dumper, sort_keys=False, width=_WIDTH, allow_unicode=True)


def dump_all(values: list[Any]) -> str:
    """Several documents, each starting with `---`."""
    return "".join(dump(v) for v in values)
