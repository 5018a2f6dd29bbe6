"""The smallest RFC 6902 JSON Patch that turns one manifest into another (for Kustomize overlays).

Lists of equal length are patched item by item (a container's resources, not the whole pod); lists whose
length
changed are replaced whole, which keeps the patch exact without guessing how items moved.
"""

from __future__ import annotations

from typing import Any

Op = dict[str, Any]


def _escape(key: str | int) -> str:
    return str(key).replace("~", "~0").replace("/", "~1")


def diff(old: Any, new: Any, path: str = "") -> list[Op]:
    """Operations that make `old` equal to `new`; [] when they are equal. Pure and deterministic."""
    if isinstance(old, dict) and isinstance(new, dict):
        ops: list[Op] = [{"op": "remove", "path": f"{path}/{_escape(k)}"} for k in old if k not in new]
        for key, value in new.items():
            where = f"{path}/{_escape(key)}"
            if key not in old:
                ops.append({"op": "add", "path": where, "value": value})
            else:
                ops.extend(diff(old[key], value, where))
        return ops
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [op for i, (a, b) in enumerate(zip(old, new, strict=True)) for op in diff(a, b, f"{path}/{i}")]
    if old == new and type(old) is type(new):
        return []
    return [{"op": "replace", "path": path, "value": new}]


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def apply(doc: Any, ops: list[Op]) -> Any:
    """Apply operations made by `diff` (add, remove, replace) to a copy of `doc`; used to check patches."""
    import copy

    result = copy.deepcopy(doc)
    for op in ops:
        if op["path"] == "":
            result = copy.deepcopy(op["value"])
            continue
        tokens = [_unescape(t) for t in op["path"].split("/")[1:]]
        parent = result
        for token in tokens[:-1]:
            parent = parent[int(token)] if isinstance(parent, list) else parent[token]
        last: Any = int(tokens[-1]) if isinstance(parent, list) else tokens[-1]
        if op["op"] == "remove":
            del parent[last]
        else:
            parent[last] = copy.deepcopy(op["value"])
    return result
