"""The backup Job's report to the operator: LIGHTHOUSE_BACKUP_RESULT_FILE (the pod's termination message)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.integration.backup.conftest import BackupTool, seed


def test_result_file_names_the_backup_and_its_size(backup_tool: BackupTool, postgres_url: str, tmp_path: Path) -> None:
    seed(postgres_url, events=50)
    result = tmp_path / "termination-log"
    manifest = json.loads(backup_tool.ok("backup", "--json", LIGHTHOUSE_BACKUP_RESULT_FILE=str(result)).stdout)
    raw = result.read_text()
    assert len(raw) < 4096  # the kubelet keeps at most 4 KiB of a termination message
    reported = json.loads(raw)
    assert reported == {
        "id": manifest["id"],
        "time": manifest["completed_at"],
        "size": sum(o["size"] for o in manifest["objects"]),
    }
    listed = json.loads(backup_tool.ok("backup", "list", "--json").stdout)
    assert [(r["id"], r["complete"]) for r in listed] == [(reported["id"], True)]


def test_failed_backup_writes_no_result(backup_tool: BackupTool, tmp_path: Path) -> None:
    result = tmp_path / "termination-log"
    r = backup_tool.run(
        "backup",
        LIGHTHOUSE_BACKUP_RESULT_FILE=str(result),
        LIGHTHOUSE_DATABASE_URL="postgresql://nobody:x@127.0.0.1:1/none",
    )
    assert r.returncode != 0 and "error" in r.stderr
    assert not result.exists()  # the Job's FallbackToLogsOnError then reports the log tail instead
