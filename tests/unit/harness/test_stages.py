"""The kwok pod stages (hack/cluster/stages/pod.yaml): one fate per pod, and no two stages for the same pod."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

STAGES = Path(__file__).resolve().parents[3] / "hack" / "cluster" / "stages"
FATES = {"ready", "crashloop", "pullfail", "flapping", "job-succeed", "job-fail"}
PHASES = {"Pending", "Running", "Succeeded", "Failed"}


def pod_stages() -> list[dict[str, Any]]:
    docs = list(yaml.safe_load_all((STAGES / "pod.yaml").read_text()))
    assert all(d["kind"] == "Stage" and d["spec"]["resourceRef"]["kind"] == "Pod" for d in docs)
    return docs


def selector(stage: dict[str, Any], pattern: str) -> dict[str, Any] | None:
    for expr in stage["spec"]["selector"]["matchExpressions"]:
        if re.search(pattern, expr["jq"]["key"]):
            return expr["jq"]
    return None


def allowed(sel: dict[str, Any] | None, universe: set[str]) -> set[str]:
    if sel is None:
        return set(universe)
    values = set(sel.get("values", []))
    return values if sel["operator"] == "In" else universe - values


def fate_expression() -> str:
    expressions = {selector(s, r"tagged\(")["key"] for s in live()}
    assert len(expressions) == 1, "every pod stage must use the same fate expression"
    return expressions.pop()


def live() -> list[dict[str, Any]]:
    """Stages for pods without a deletionTimestamp (all but pod-delete)."""
    return [s for s in pod_stages() if selector(s, r"deletionTimestamp")["operator"] == "DoesNotExist"]


def test_only_pod_delete_handles_terminating_pods() -> None:
    terminating = [s["metadata"]["name"] for s in pod_stages() if s not in live()]
    assert terminating == ["pod-delete"]


def test_live_stages_never_overlap() -> None:
    """For any fate and phase, at most one stage matches (the pull stages split further on the waiting reason, the
    flapping ones on the Ready condition)."""
    reasons = {"ErrImagePull", "ImagePullBackOff", "other"}
    readiness = {"True", "other"}
    slots: dict[str, set[tuple[str, str, str, str]]] = {}
    for stage in live():
        fates = allowed(selector(stage, r"tagged\("), FATES)
        phases = allowed(selector(stage, r"^\.status\.phase$"), PHASES)
        waiting = allowed(selector(stage, r"waiting\.reason"), reasons)
        ready = allowed(selector(stage, r'select\(\.type == "Ready"\)'), readiness)
        assert fates <= FATES and phases <= PHASES
        slots[stage["metadata"]["name"]] = set(itertools.product(fates, phases, waiting, ready))
    for (a, sa), (b, sb) in itertools.combinations(slots.items(), 2):
        assert not sa & sb, f"stages {a} and {b} both match {sorted(sa & sb)[:3]}"
    covered = set().union(*slots.values())
    # Every fate has a way out of Pending.
    assert {f for f, p, w, r in covered if p == "Pending" and w == "other" and r == "other"} == FATES
    # A flapping pod always has a next step: Ready -> NotReady -> Ready ...
    assert {r for f, p, w, r in covered if f == "flapping" and p == "Running" and w == "other"} == readiness


def test_templates_use_the_selector_tag_pattern() -> None:
    """The Go templates decide per container with the same regexp the selectors use per pod."""
    text = (STAGES / "pod.yaml").read_text()
    assert '":[^:/@]*" + w + "[^:/@]*(@|$)"' in fate_expression()
    templates = re.findall(r'\{\{ \$(\w+) := "(:[^"]*)" \}\}', text)
    # Every regexp assignment in a template is one this test reads: one written another way must not slip past.
    assert len(templates) == text.count(' := ":'), "a template regexp is written in a shape this test does not read"
    for word in ("broken", "pullfail", "flapping"):
        mine = [regexp for name, regexp in templates if name == word]
        assert mine, f"no template decides {word!r} any more: the stages changed, update this test with them"
        assert set(mine) == {f":[^:/@]*{word}[^:/@]*(@|$)"}


@pytest.mark.parametrize(
    ("images", "owner", "fate"),
    [
        (["registry.example/web:1.0"], None, "ready"),
        (["web"], None, "ready"),
        (["registry.example/web:2.0-broken"], None, "crashloop"),
        (["web:1.0", "sidecar:broken"], None, "crashloop"),
        (["web:1-broken@sha256:0123"], None, "crashloop"),
        (["registry:5000/broken/web"], None, "ready"),  # a path, not a tag
        (["registry:5000/web:1.0"], None, "ready"),
        (["web:pullfail"], None, "pullfail"),
        (["web:1-broken", "db:x-pullfail"], None, "pullfail"),
        (["task:1.0"], "Job", "job-succeed"),
        (["task:1.0-broken"], "Job", "job-fail"),
        (["task:1.0-broken"], "ReplicaSet", "crashloop"),
        (["task:pullfail"], "Job", "pullfail"),
        (["registry.example/web:2.0-flapping"], None, "flapping"),
        (["web:flapping", "sidecar:1.0"], None, "flapping"),
        (["web:flapping-broken"], None, "crashloop"),
        (["web:flapping", "db:pullfail"], None, "pullfail"),
        (["registry:5000/flapping/web:1.0"], None, "ready"),  # a path, not a tag
        (["task:flapping"], "Job", "job-succeed"),
    ],
)
def test_fate_of_a_pod(images: list[str], owner: str | None, fate: str) -> None:
    jq = shutil.which("jq")
    if jq is None:
        pytest.skip("jq is not installed (hack/bootstrap.sh apt installs it)")
    pod = {
        "metadata": {"ownerReferences": [{"kind": owner, "name": "x"}] if owner else []},
        "spec": {"containers": [{"name": f"c{i}", "image": image} for i, image in enumerate(images)]},
    }
    out = subprocess.run(
        [jq, "-r", fate_expression()], input=json.dumps(pod), capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == fate
