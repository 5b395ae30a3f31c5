"""Differences between two API objects, for people: a unified diff and the list of changed paths. Pure."""

from __future__ import annotations

import difflib
import json
from typing import Any


def dump(obj: Any) -> list[str]:
    return (json.dumps(obj, indent=2, sort_keys=True) + "\n").splitlines(keepends=True)


def unified(before: Any, after: Any, before_name: str, after_name: str) -> str:
    """A unified diff of the two objects' sorted, indented JSON; empty when they are equal."""
    return "".join(difflib.unified_diff(dump(before), dump(after), before_name, after_name, n=3))


def _key(item: Any) -> str | None:
    return item.get("name") if isinstance(item, dict) and isinstance(item.get("name"), str) else None


def paths(before: Any, after: Any, prefix: str = "") -> list[str]:
    """Dotted paths where the objects differ. Lists of named items (containers, env) are compared by name."""
    if isinstance(before, dict) and isinstance(after, dict):
        out: list[str] = []
        for k in sorted(set(before) | set(after)):
            out += paths(before.get(k), after.get(k), f"{prefix}.{k}" if prefix else str(k))
        return out
    if isinstance(before, list) and isinstance(after, list):
        names_b, names_a = [_key(i) for i in before], [_key(i) for i in after]
        if all(names_b) and all(names_a) and len(set(names_b)) == len(names_b) and len(set(names_a)) == len(names_a):
            b_by, a_by = dict(zip(names_b, before, strict=True)), dict(zip(names_a, after, strict=True))
            out = []
            for n in sorted(set(b_by) | set(a_by), key=str):
                out += paths(b_by.get(n), a_by.get(n), f"{prefix}[{n}]")
            return out
    return [] if before == after else [prefix or "."]
