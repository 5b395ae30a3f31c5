"""Two real bridge processes (uvicorn subprocesses) on one database."""

from __future__ import annotations

import concurrent.futures
import re
from pathlib import Path

import httpx

from tests.integration.bridge.support import bridges, wait_until


def make_project(root: Path, n: int) -> dict[str, str]:
    files = {f"pkg{i % 4}/mod{i}.py": f"# module {i}\nVALUE = {i}\n" for i in range(n)}
    files["README.md"] = "# project\n"
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")  # excluded from ingest
    return files


def listing(c: httpx.Client) -> tuple[int, list[tuple[str, str, int]]]:
    body = c.get("/shadow/list").json()
    return body["position"], [(f["path"], f["sha256"], f["version"]) for f in body["files"]]


def test_two_replicas_ingest_once_and_stay_consistent(tmp_path: Path, bridge_env: dict[str, str]) -> None:
    project = tmp_path / "project"
    files = make_project(project, 60)
    env = {**bridge_env, "LIGHTHOUSE_PROJECT_PATH": str(project), "LIGHTHOUSE_SNAPSHOT_INTERVAL": "100"}
    with bridges(tmp_path, env, n=2) as (a, b), a.client() as ca, b.client() as cb:
        # Started together, but the tree is ingested exactly once.
        created = ca.get("/event/query", params={"event_type": "file_created", "limit": 1000}).json()["events"]
        assert sorted(e["aggregate_id"] for e in created) == sorted(files)
        assert [e["position"] for e in created] == list(range(1, len(files) + 1))
        assert cb.get("/shadow/read/README.md").json()["content"] == "# project\n"

        # Concurrent writers on both replicas.
        def write(args: tuple[httpx.Client, int]) -> int:
            c, i = args
            path = f"pkg{i % 4}/mod{i % 60}.py"
            r = c.post("/shadow/update", json={"operation": "modify", "path": path, "content": f"# rev {i}\n"})
            assert r.status_code == 200, r.text
            return r.json()["position"]

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            positions = list(pool.map(write, [(ca if i % 2 else cb, i) for i in range(200)]))
        head = max(positions)
        assert sorted(positions) == list(range(len(files) + 1, head + 1))

        # Each replica follows the global position (NOTIFY) and ends with the identical tree.
        wait_until(lambda: ca.get("/status").json()["position"] == head, 30, what="replica a caught up")
        wait_until(lambda: cb.get("/status").json()["position"] == head, 30, what="replica b caught up")
        assert listing(ca) == listing(cb)

        # A write on A becomes visible on B without B being written to.
        r = ca.post("/shadow/update", json={"operation": "create", "path": "new/from_a.txt", "content": "A"})
        wait_until(lambda: cb.get("/shadow/read/new/from_a.txt").status_code == 200, 30, what="b sees a's write")
        assert cb.get("/shadow/read/new/from_a.txt").json()["position"] == r.json()["position"]
        metrics = cb.get("/metrics").text
        lag = re.search(r"^lighthouse_bridge_projection_lag_events (\S+)$", metrics, re.M)
        assert lag is not None and float(lag.group(1)) == 0.0
        snaps = ca.get("/snapshots").json()["snapshots"]
        assert sum(1 for s in snaps if s["position"] == 200) <= 1  # both replicas may try; one snapshot per name


def test_restart_rebuilds_from_snapshot_and_continues(tmp_path: Path, bridge_env: dict[str, str]) -> None:
    env = {**bridge_env, "LIGHTHOUSE_SNAPSHOT_INTERVAL": "50"}
    with bridges(tmp_path, env, n=1) as (a,), a.client() as c:
        for i in range(12):
            events = [{"operation": "create", "path": f"f{i}-{j}", "content": str(j)} for j in range(10)]
            for e in events:
                assert c.post("/shadow/update", json=e).status_code == 200
        before = listing(c)
        a.stop()
        a.start()
        assert listing(c) == before
        log = a.log_path.read_text()
        m = re.findall(r"Projection ready position=(\d+) files=(\d+) snapshot=(\d+) replayed=(\d+)", log)
        assert m[-1][0] == "120" and int(m[-1][2]) >= 100 and int(m[-1][3]) <= 20, m
        assert (
            c.post("/event/store", json={"event_type": "x", "aggregate_id": "a", "aggregate_type": "t"}).json()[
                "position"
            ]
            == 121
        )


def test_separate_metrics_port(tmp_path: Path, bridge_env: dict[str, str]) -> None:
    from tests.integration.bridge.support import free_port

    port = free_port()
    with bridges(tmp_path, {**bridge_env, "LIGHTHOUSE_METRICS_PORT": str(port)}) as (b,), b.client() as c:
        c.get("/health")
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        assert "lighthouse_bridge_requests_total" in text and "lighthouse_bridge_memory_usage_bytes" in text
