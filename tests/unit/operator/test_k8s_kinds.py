"""Every kind the operator reads or writes by name is in k8s.KINDS (its static table instead of discovery): a kind
missing there fails the whole reconcile with ValueError, which only shows in the mode that reads it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from lighthouse_operator import k8s

pytestmark = pytest.mark.unit

PACKAGE = Path(k8s.__file__).parent
METHODS = {"get", "list", "list_page", "watch", "delete", "patch", "informer", "_get_by_name"}


def kinds_used() -> set[tuple[str, str, str]]:
    """(file:line, apiVersion, kind) of each call `x.METHOD("apiVersion", "Kind", ...)` in the operator's package."""
    found = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            args = node.args[:2]
            if (
                node.func.attr in METHODS
                and len(args) == 2
                and all(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in args)
            ):
                api_version, kind = args[0].value, args[1].value  # type: ignore[attr-defined]
                if re.fullmatch(r"(v1|[a-z0-9.]+/v[0-9a-z]+)", api_version) and re.fullmatch(r"[A-Z][A-Za-z]+", kind):
                    found.add((f"{path.name}:{node.lineno}", api_version, kind))  # not dict.get("key", "default")
    return found


def test_every_kind_the_operator_reads_is_in_the_table() -> None:
    used = kinds_used()
    assert len(used) >= 10, used  # the scan finds the calls (a scan that finds none proves nothing)
    missing = sorted(u for u in used if (u[1], u[2]) not in k8s.KINDS)
    assert not missing, missing


def test_nodes_are_cluster_scoped() -> None:
    # FuseAvailable in mode userNamespaces reads the pods' Nodes (their container runtime).
    assert k8s.object_path("v1", "Node", None, "n1") == "/api/v1/nodes/n1"
