"""Experts: built-in reviewers annotate a seeded vulnerable file; external experts use the work queue."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.integration.agents.conftest import Bridge, wait_for

VULNERABLE = """import os
API_KEY = "sk_live_0123456789abcdef"

def find(db, name):
    return db.execute("SELECT id FROM users WHERE name = '" + name + "'")

def report(db, users):
    for u in users:
        rows = db.fetch("SELECT id FROM orders WHERE user_id = $1", u.id)
    os.system("tar czf out.tgz " + name)
"""


async def test_builtin_experts_annotate_a_vulnerable_file(bridge: Bridge) -> None:
    builder = await bridge.as_role("builder-1", "builder")
    r = await builder.post("/shadow/update", json={"operation": "create", "path": "src/app.py", "content": VULNERABLE})
    assert r.status_code == 200, r.text

    async def annotations() -> list[dict[str, Any]] | None:
        got = (await builder.get("/annotations", params={"path": "src/app.py"})).json()["annotations"]
        return got if {a["author"] for a in got} == {"expert:security", "expert:performance"} else None

    got = await wait_for(annotations, 20, what="expert annotations")
    found = {(a["author"], a["category"], a["line"]) for a in got}
    assert ("expert:security", "secrets", 2) in found
    assert ("expert:security", "sql-injection", 5) in found
    assert ("expert:security", "shell", 10) in found
    assert ("expert:performance", "n-plus-one", 9) in found
    assert {a["severity"] for a in got} >= {"critical", "error", "warning"}
    evs = (
        await builder.get(
            "/event/query", params={"event_type": "shadow_annotation_created", "agent_id": "expert:security"}
        )
    ).json()["events"]
    assert len(evs) == sum(1 for a in got if a["author"] == "expert:security")
    # fixing the file replaces the findings
    r = await builder.post(
        "/shadow/update",
        json={"operation": "modify", "path": "src/app.py", "content": "import os\nAPI_KEY = os.environ['API_KEY']\n"},
    )
    assert r.status_code == 200

    async def cleared() -> bool:
        got = (await builder.get("/annotations", params={"path": "src/app.py"})).json()["annotations"]
        return not [a for a in got if a["author"].startswith("expert:")]

    await wait_for(cleared, 20, what="annotations cleared after fix")
    experts = (await builder.get("/experts")).json()["experts"]
    assert {e["agent_id"] for e in experts if e["builtin"]} == {"expert:security", "expert:performance"}


async def test_external_expert_work_queue(bridge: Bridge) -> None:
    builder = await bridge.as_role("builder-1", "builder")
    lint = await bridge.as_role("linter-1", "expert")
    other = await bridge.as_role("linter-2", "expert")
    assert (await lint.post("/tasks/claim", json={})).status_code == 404  # not registered yet
    r = await lint.post("/expert/register", json={"agent_type": "linter", "capabilities": ["lint", "style"]})
    assert r.status_code == 200 and r.json()["agent_id"] == "linter-1"
    assert (
        await other.post("/expert/register", json={"agent_id": "linter-1", "agent_type": "x", "capabilities": ["lint"]})
    ).status_code == 403
    assert (
        await other.post("/expert/register", json={"agent_type": "linter", "capabilities": ["lint"]})
    ).status_code == 200
    assert (
        await lint.post(
            "/expert/register", json={"agent_id": "expert:security", "agent_type": "x", "capabilities": ["x"]}
        )
    ).status_code == 403
    t1 = (await builder.post("/expert/delegate", json={"capability": "lint", "payload": {"path": "src/a.py"}})).json()
    t2 = (
        await builder.post(
            "/expert/delegate", json={"capability": "lint", "payload": {"path": "src/b.py"}, "max_attempts": 1}
        )
    ).json()
    assert t1["status"] == "pending"
    # two experts claiming at once get different tasks
    c1, c2 = await asyncio.gather(lint.post("/tasks/claim", json={}), other.post("/tasks/claim", json={}))
    claimed = {c1.json()["task"]["id"], c2.json()["task"]["id"]}
    assert claimed == {t1["id"], t2["id"]}
    assert (await lint.post("/tasks/claim", json={})).json() == {"task": None}
    mine = c1.json()["task"]
    theirs = c2.json()["task"]
    assert (await other.post(f"/tasks/{mine['id']}/complete", json={"result": {}})).status_code == 409
    done = await lint.post(f"/tasks/{mine['id']}/complete", json={"result": {"issues": 0}})
    assert done.status_code == 200 and done.json()["status"] == "completed" and done.json()["result"] == {"issues": 0}
    assert (await lint.post(f"/tasks/{mine['id']}/complete", json={"result": {}})).status_code == 409
    failed = await other.post(f"/tasks/{theirs['id']}/fail", json={"error": "parser crashed"})
    expected = "failed" if theirs["max_attempts"] == 1 else "pending"
    assert failed.json()["status"] == expected
    assert (await lint.post("/tasks/claim", json={"capabilities": ["deploy"]})).status_code == 403
    assert (await lint.post("/tasks/unknown/complete", json={})).status_code == 404
    evs = (await builder.get("/event/query", params={"aggregate_id": f"task:{mine['id']}"})).json()["events"]
    assert [e["event_type"] for e in evs] == ["expert_task_created", "expert_task_completed"]


async def test_expired_lease_returns_the_task(bridge: Bridge) -> None:
    builder = await bridge.as_role("builder-1", "builder")
    ex = await bridge.as_role("slow-1", "expert")
    await ex.post("/expert/register", json={"agent_type": "slow", "capabilities": ["review"]})
    t = (await builder.post("/expert/delegate", json={"capability": "review"})).json()
    first = (await ex.post("/tasks/claim", json={"lease_seconds": 0.5})).json()["task"]
    assert first["id"] == t["id"] and first["attempts"] == 1

    async def back() -> bool:
        return (await builder.get(f"/tasks/{t['id']}")).json()["status"] == "pending"

    await wait_for(back, 15, what="lease expiry")
    again = (await ex.post("/tasks/claim", json={})).json()["task"]
    assert again["id"] == t["id"] and again["attempts"] == 2
