"""The audit file: one JSON object per line, appended, never interleaved; an unwritable path does not raise."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from lighthouse_bridge.agents.audit import AuditLog, tail


def test_lines_are_whole_and_appended(tmp_path: Path) -> None:
    path = tmp_path / "events" / "audit.log"
    path.parent.mkdir()
    path.write_text('{"action":"earlier"}\n')
    log = AuditLog(path)

    def writer(k: int) -> None:
        for i in range(200):
            log.write("token_minted", "ok", f"admin-{k}", jti=f"{k}-{i}", padding="x" * 3000)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.close()
    lines = path.read_text().splitlines()
    assert json.loads(lines[0]) == {"action": "earlier"}
    records = [json.loads(line) for line in lines[1:]]
    assert len(records) == 800 and {r["action"] for r in records} == {"token_minted"}
    assert len({r["jti"] for r in records}) == 800 and all(r["ts"] and r["replica"] for r in records)
    assert [r["jti"] for r in tail(path, 3)] == [r["jti"] for r in records[-3:]]


def test_unwritable_path_is_reported_not_raised(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    log = AuditLog(blocker / "sub" / "audit.log")  # parent is a file: mkdir fails
    record = log.write("auth_failed", "denied", None, reason="x")
    assert record["action"] == "auth_failed"
    assert tail(tmp_path / "missing.log", 5) == []
