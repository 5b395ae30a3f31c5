"""`--wait-for-database`: a database that starts accepting connections only after the tool started (the operator's
restore Job races a new PostgreSQL StatefulSet; its backup Jobs' pods are admitted by PostgreSQL's NetworkPolicy a
moment after they start). Real PostgreSQL behind a loopback TCP forwarder that opens late."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from tests.integration.backup.conftest import BackupTool, fingerprint, seed


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


@contextmanager
def late_forwarder(target_host: str, target_port: int, refuse_for: float) -> Iterator[int]:
    """A port on 127.0.0.1 that turns connections away (accepts and closes them) until `refuse_for` seconds after
    the first one, then forwards to the target. Counting from the first attempt, not from the start, keeps the test
    independent of how long the tool takes to start on a busy machine."""
    port = _free_port()
    stop = threading.Event()
    conns: list[socket.socket] = []
    first_refused: list[float] = []

    def serve() -> None:
        with socket.create_server(("127.0.0.1", port)) as srv:
            srv.settimeout(0.2)
            while not stop.is_set():
                try:
                    client, _ = srv.accept()
                except TimeoutError:
                    continue
                if not first_refused or time.monotonic() - first_refused[0] < refuse_for:
                    first_refused[:] = first_refused or [time.monotonic()]
                    client.close()  # the client sees its connection dropped: PostgreSQL is not up yet
                    continue
                upstream = socket.create_connection((target_host, target_port), timeout=10)
                conns.extend((client, upstream))
                for a, b in ((client, upstream), (upstream, client)):
                    threading.Thread(target=_pipe, args=(a, b), daemon=True).start()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield port
    finally:
        stop.set()
        t.join(timeout=10)
        for c in conns:
            c.close()


def _via(url: str, port: int) -> str:
    parts = urlsplit(url)
    userinfo = parts.netloc.rsplit("@", 1)[0]
    return urlunsplit((parts.scheme, f"{userinfo}@127.0.0.1:{port}", parts.path, parts.query, ""))


def test_restore_waits_for_a_database_that_starts_late(
    backup_tool: BackupTool, postgres_url: str, target_url: str, tmp_path: Path
) -> None:
    seed(postgres_url, events=120)
    manifest = json.loads(backup_tool.ok("backup", "--json").stdout)
    target = urlsplit(target_url)
    result_file = tmp_path / "termination-log"
    with late_forwarder(target.hostname or "127.0.0.1", target.port or 5432, refuse_for=3.0) as port:
        r = backup_tool.run(
            "restore",
            "--from",
            "latest",
            "--wait-for-database",
            "60",
            timeout=180,
            LIGHTHOUSE_DATABASE_URL=_via(target_url, port),
            LIGHTHOUSE_RESTORE_RESULT_FILE=str(result_file),
        )
    assert r.returncode == 0, r.stderr
    assert "Waiting for PostgreSQL" in r.stderr and "PostgreSQL is ready" in r.stderr
    assert f"restored {manifest['id']}" in r.stdout
    assert fingerprint(target_url) == fingerprint(postgres_url)
    # The one-line result the operator reads from the pod's termination message.
    result = json.loads(result_file.read_text())
    assert result["id"] == manifest["id"] and result["high_water"] == 120 and result["replaced"] is False


def test_restore_wait_is_bounded_and_says_why(backup_tool: BackupTool, postgres_url: str, tmp_path: Path) -> None:
    seed(postgres_url, events=5)
    backup_tool.ok("backup")
    closed = f"postgresql://lighthouse:x@127.0.0.1:{_free_port()}/nothing"
    result_file = tmp_path / "termination-log"
    r = backup_tool.run(
        "restore",
        "--from",
        "latest",
        timeout=120,
        LIGHTHOUSE_DATABASE_URL=closed,
        LIGHTHOUSE_DATABASE_WAIT_SECONDS="3",
        LIGHTHOUSE_RESTORE_RESULT_FILE=str(result_file),
    )
    assert r.returncode == 1
    assert "did not accept connections within 3s" in r.stderr and "Traceback" not in r.stderr
    assert "Waiting for PostgreSQL" in r.stderr
    assert not result_file.exists()


def test_restore_does_not_wait_on_a_wrong_password(backup_tool: BackupTool, postgres_url: str, target_url: str) -> None:
    seed(postgres_url, events=5)
    backup_tool.ok("backup")
    parts = urlsplit(target_url)
    wrong = urlunsplit(
        (parts.scheme, f"{parts.username}:wrong-password@{parts.hostname}:{parts.port}", parts.path, "", "")
    )
    r = backup_tool.run(
        "restore", "--from", "latest", "--wait-for-database", "300", LIGHTHOUSE_DATABASE_URL=wrong, timeout=120
    )
    assert r.returncode == 1
    assert "cannot connect to PostgreSQL" in r.stderr and "password" in r.stderr
    assert "Waiting for PostgreSQL" not in r.stderr


def test_backup_waits_for_a_database_that_refuses_it_at_first(
    backup_tool: BackupTool, postgres_url: str, tmp_path: Path
) -> None:
    seed(postgres_url, events=30)
    with late_forwarder("127.0.0.1", urlsplit(postgres_url).port or 5432, refuse_for=3.0) as port:
        r = backup_tool.run(
            "backup",
            "--json",
            "--wait-for-database",
            "60",
            timeout=180,
            LIGHTHOUSE_DATABASE_URL=_via(postgres_url, port),
        )
    assert r.returncode == 0, r.stderr
    assert "Waiting for PostgreSQL" in r.stderr and "PostgreSQL is ready" in r.stderr
    assert json.loads(r.stdout)["database"]["high_water"] == 30
