"""The shipped Argo CD health script, run by a real Lua interpreter (lupa) on status objects captured from the real
control plane (tests/integration/operator with CAPTURE_ARGOCD_FIXTURES=1 writes fixtures/argocd/*.json)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from lupa import LuaRuntime

REPO = Path(__file__).resolve().parents[3]
SCRIPT = REPO / "manifests" / "gitops" / "argocd-health.lua"
FIXTURES = sorted((Path(__file__).parent / "fixtures" / "argocd").glob("*.json"))


def health(obj: dict[str, Any]) -> dict[str, str]:
    lua = LuaRuntime(unpack_returned_tuples=True)
    # Argo CD runs the script with the object bound to the global `obj`; a function wrapper does the same here.
    fn = lua.eval("function(obj) " + SCRIPT.read_text() + " end")
    return dict(fn(lua.table_from(obj, recursive=True)))


def test_fixtures_were_captured() -> None:
    assert {p.stem for p in FIXTURES} >= {"ready", "stalled-invalid-spec", "paused", "deleting-snapshot-refused"}


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_captured_status(path: Path) -> None:
    case = json.loads(path.read_text())
    out = health(case["object"])
    assert out["status"] == case["expect"], out
    assert out["message"]


def _load(name: str) -> dict[str, Any]:
    return copy.deepcopy(
        json.loads((Path(__file__).parent / "fixtures" / "argocd" / f"{name}.json").read_text())["object"]
    )


def test_stale_generation_is_progressing_not_healthy() -> None:
    obj = _load("ready")
    obj["metadata"]["generation"] += 1  # Git changed the spec; the operator has not seen it yet
    out = health(obj)
    assert out["status"] == "Progressing" and "generation" in out["message"]


def test_rolled_back_is_degraded() -> None:
    obj = _load("ready")
    gen = obj["metadata"]["generation"]
    obj["status"]["conditions"].append(
        {
            "type": "RolledBack",
            "status": "True",
            "reason": "RolloutFailed",
            "message": "revision abc crashed",
            "observedGeneration": gen,
        }
    )
    out = health(obj)
    assert out["status"] == "Degraded" and "revision abc crashed" in out["message"]


def test_no_status_yet_is_progressing() -> None:
    obj = _load("ready")
    del obj["status"]
    assert health(obj)["status"] == "Progressing"
