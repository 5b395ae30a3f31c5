"""The bridge image as a container: PostgreSQL and Redis on loopback, /readyz, and the FUSE mount inside it."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import httpx
import pytest

from tests.e2e.containers import Container, Images, running_container, wait_for

MOUNT_POINT = "/mnt/lighthouse/project"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def project_tree(root: Path) -> Path:
    """A tiny project the bridge ingests on its first start; readable by the container's non-root user."""
    project = root / "project"
    (project / "src").mkdir(parents=True)
    (project / "README.md").write_text("# e2e\n")
    (project / "src" / "main.py").write_text("print('lighthouse e2e')\n")
    for path in [root, project, *project.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return project


def bridge_flags(port: int, postgres_url: str, redis_url: str, project: Path, fuse_mode: str) -> list[str]:
    # Host network: PostgreSQL and Redis listen on the host's 127.0.0.1 only, and so does the bridge.
    return [
        "--network", "host",
        "-v", f"{project}:/project:ro",
        "-e", "LIGHTHOUSE_HOST=127.0.0.1",
        "-e", f"LIGHTHOUSE_PORT={port}",
        "-e", f"LIGHTHOUSE_BRIDGE_URL=http://127.0.0.1:{port}",
        "-e", f"LIGHTHOUSE_DATABASE_URL={postgres_url}",
        "-e", f"LIGHTHOUSE_REDIS_URL={redis_url}",
        "-e", "LIGHTHOUSE_PROJECT_PATH=/project",
        "-e", f"LIGHTHOUSE_FUSE_MODE={fuse_mode}",
    ]  # fmt: skip


def ready(port: int) -> dict | None:
    r = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
    return r.json() if r.status_code == 200 else None


def wait_ready(container: Container, port: int) -> dict:
    def check() -> dict | None:
        assert container.running(), f"bridge container exited:\n{container.logs()}"
        return ready(port)

    return wait_for(check, timeout=180, what="bridge /readyz")


def test_bridge_container_is_ready_with_postgres_and_redis(
    images: Images, postgres_url: str, redis_url: str, tmp_path: Path
) -> None:
    port = free_port()
    flags = bridge_flags(port, postgres_url, redis_url, project_tree(tmp_path), "disabled")
    with running_container(images.bridge, flags=flags) as bridge:
        body = wait_ready(bridge, port)
        assert body["status"] == "ready"
        assert body["checks"]["postgres"]["status"] == "connected"
        assert body["checks"]["redis"]["status"] == "connected"
        assert body["checks"]["fuse"]["status"] == "disabled"
        # Runs as the image's non-root user when FUSE is off.
        assert bridge.exec("id", "-u").stdout.strip() == "65532"
        # The initial ingest of the mounted project reached PostgreSQL through the container.
        files = httpx.get(f"http://127.0.0.1:{port}/shadow/list", timeout=10)
        assert files.status_code == 200
        assert "src/main.py" in files.text


def fuse_user() -> list[str]:
    """FUSE needs /dev/fuse opened by the bridge. Where the host's node is 0600 (as on these machines) only root in
    the container can open it; root there still has only the default capabilities plus SYS_ADMIN."""
    mode = os.stat("/dev/fuse").st_mode
    return [] if mode & stat.S_IROTH and mode & stat.S_IWOTH else ["--user", "0"]


@pytest.mark.skipif(not os.path.exists("/dev/fuse"), reason="/dev/fuse is not available on this host")
def test_bridge_container_mounts_fuse_with_dev_fuse_and_sys_admin(
    images: Images, postgres_url: str, redis_url: str, tmp_path: Path
) -> None:
    port = free_port()
    flags = [
        *bridge_flags(port, postgres_url, redis_url, project_tree(tmp_path), "enabled"),
        "--device", "/dev/fuse",
        "--cap-add", "SYS_ADMIN",
        *fuse_user(),
    ]  # fmt: skip
    with running_container(images.bridge, flags=flags) as bridge:
        wait_ready(bridge, port)
        # Ready comes first: a bridge whose mount is not up yet is degraded, not unready (the API serves meanwhile),
        # and the FUSE process mounts once it reaches the API.
        body = wait_for(
            lambda: (b := ready(port)) and b["checks"]["fuse"]["status"] == "mounted" and b,
            timeout=120,
            what="the FUSE check to report mounted",
        )
        assert body["checks"]["fuse"]["status"] == "mounted"
        mounts = bridge.exec("cat", "/proc/self/mounts").stdout
        assert any(
            line.split()[1] == MOUNT_POINT and line.split()[2].startswith("fuse") for line in mounts.splitlines()
        )
        # The ingested project is visible through the mount inside the container.
        found = wait_for(
            lambda: "main.py" in bridge.exec("find", MOUNT_POINT, "-maxdepth", "4", "-name", "main.py").stdout,
            timeout=30,
            what="src/main.py in the FUSE view",
        )
        assert found
        listing = bridge.exec("find", MOUNT_POINT, "-maxdepth", "4", "-name", "main.py").stdout.split()
        content = bridge.exec("cat", listing[0]).stdout
        assert content == "print('lighthouse e2e')\n"
    # After the container is gone nothing is left mounted on the host.
    with open("/proc/self/mounts") as f:
        assert MOUNT_POINT not in f.read()
