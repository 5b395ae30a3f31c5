"""The second API server's start: started again only after Kubernetes' own start-up IP repair race, never for other
exits (a fake server: a shell script standing in for kube-apiserver)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness.apiserver import IP_REPAIR_RACE, STARTS, SecondApiserver

pytestmark = pytest.mark.unit


def fake(tmp_path: Path, script: str) -> SecondApiserver:
    api = SecondApiserver.__new__(SecondApiserver)
    api.log, api.proc, api.cwd, api.env = tmp_path / "apiserver.log", None, str(tmp_path), {"PATH": "/usr/bin:/bin"}
    api.cmd = ["sh", "-c", script]
    return api


def test_started_again_after_the_ip_repair_race(tmp_path: Path) -> None:
    # Fails its first start as kube-apiserver does when it loses the race, then serves.
    script = (
        f"if [ ! -e {tmp_path}/tried ]; then touch {tmp_path}/tried; echo '{IP_REPAIR_RACE.decode()}: x'; exit 255; fi;"
        f"touch {tmp_path}/up; sleep 30"
    )
    api = fake(tmp_path, script)
    try:
        api.start(lambda: (tmp_path / "up").exists(), timeout=20)
        assert api.proc is not None and api.proc.poll() is None
    finally:
        api.stop()


def test_other_exits_are_reported_at_once(tmp_path: Path) -> None:
    api = fake(tmp_path, f"echo started >> {tmp_path}/starts; echo 'some other failure'; exit 255")
    with pytest.raises(RuntimeError, match="exited with 255"):
        api.start(lambda: False, timeout=20)
    assert (tmp_path / "starts").read_text().count("started") == 1


def test_the_race_is_retried_a_bounded_number_of_times(tmp_path: Path) -> None:
    script = f"echo started >> {tmp_path}/starts; echo '{IP_REPAIR_RACE.decode()}'; exit 255"
    with pytest.raises(RuntimeError, match="exited with 255"):
        fake(tmp_path, script).start(lambda: False, timeout=20)
    assert (tmp_path / "starts").read_text().count("started") == STARTS
