"""The kernel's no-open mode on real mounts: read-only mounts with the patched pyfuse3 answer OPEN and OPENDIR with
ENOSYS once, the kernel then serves opens, re-reads and listings from its caches, and every change from the event
stream still shows (precise invalidation). Writable mounts and a stock pyfuse3 keep the open/release path.

Requests are counted by the filesystem itself (debug/performance.json), so "no OPEN" is what the kernel sent.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.integration.fs.harness import REPO, Bridge, Mount, wait_until

FILES = {
    "README.md": b"# demo project\n",
    "src/app.py": b"print('hello')\n",
    "src/util/helpers.py": b"def helper():\n    return 42\n",
    **{f"pkg/mod{i:02d}.py": f"# module {i}\n".encode() * (i + 1) for i in range(30)},
}
PER_OPEN = ("open", "release", "opendir", "releasedir")


def perf(m: Mount) -> dict[str, Any]:
    return dict(json.loads((m / "debug/performance.json").read_bytes()))


def health(m: Mount) -> dict[str, Any]:
    return dict(json.loads((m / "debug/health.json").read_bytes()))


def mount_options(m: Mount) -> list[str]:
    target = os.path.realpath(m.path)
    with open("/proc/self/mountinfo") as f:
        line = next(line for line in f if line.split()[4] == target)
    return line.split()[5].split(",")


def tree(root: Path) -> dict[str, bytes]:
    """Every file under `root` by relative path: a full listing walk and a read of each file."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_read_only_mount_sends_no_open_and_serves_from_kernel_caches(
    bridge: Bridge, mount_factory: Callable[..., Mount]
) -> None:
    bridge.batch(FILES)
    m = mount_factory()
    cur = m / "current"
    assert health(m)["no_open"] is True
    assert "ro" in mount_options(m)
    assert tree(cur) == FILES  # first pass: LOOKUP/READDIRPLUS/READ, one OPEN and one OPENDIR answered ENOSYS
    before = perf(m)["requests"]
    for _ in range(3):
        assert tree(cur) == FILES
    after = perf(m)
    delta = {k: n - before.get(k, 0) for k, n in after["requests"].items() if n != before.get(k, 0)}
    # Three walks over 33 files: no request per open, re-read or listing. Reading performance.json itself costs a
    # LOOKUP, a GETATTR or two and one READ (debug files are snapshots with no cache lifetime).
    assert {k: n for k, n in delta.items() if k in (*PER_OPEN, "readdir")} == {}
    assert delta.get("read", 0) <= 1
    assert (after["requests"]["open"], after["errors"]["open"]) == (1, 1)  # the one ENOSYS
    assert (after["requests"]["opendir"], after["errors"]["opendir"]) == (1, 1)
    assert "release" not in after["requests"] and "releasedir" not in after["requests"]


def test_no_open_mode_shows_every_change(bridge: Bridge, mount_factory: Callable[..., Mount], tmp_path: Path) -> None:
    bridge.batch(FILES)
    m = mount_factory()
    cur = m / "current"
    assert tree(cur) == FILES  # everything now in the kernel's page, attribute, entry and listing caches
    app = cur / "src/app.py"

    longer = b"print('a longer hello than before')\n"
    bridge.update("modify", "src/app.py", longer)
    wait_until(lambda: app.read_bytes() == longer, 5, what="modified content")
    assert app.stat().st_size == len(longer)
    bridge.update("modify", "src/app.py", b"short\n")  # a smaller file: no stale tail from the cached pages
    wait_until(lambda: app.read_bytes() == b"short\n", 5, what="shrunk content")
    assert app.stat().st_size == 6

    bridge.update("delete", "README.md")
    wait_until(lambda: "README.md" not in os.listdir(cur), 5, what="deleted file unlisted")
    assert not (cur / "README.md").exists()

    bridge.update("move", "src/util/helpers.py", new_path="lib/helpers.py")
    wait_until(lambda: sorted(os.listdir(cur / "src")) == ["app.py"], 5, what="emptied directory gone")
    # The model changes first and the kernel drops its cached names next (the notification thread): src/'s listing
    # was not cached (the changes above dropped it), so a listing built in between is new while the cached name
    # src/util still resolves, for the moment the thread takes to wake.
    wait_until(lambda: not (cur / "src/util/helpers.py").exists(), 5, what="the old path gone")
    assert (cur / "lib/helpers.py").read_bytes() == FILES["src/util/helpers.py"]

    bridge.update("create", "pkg/new.py", b"x = 1\n")  # a new name in a directory listed before
    wait_until(lambda: "new.py" in os.listdir(cur / "pkg"), 5, what="new file listed")
    assert (cur / "pkg/new.py").read_bytes() == b"x = 1\n"

    # Nothing stale anywhere: the whole tree equals an export, and the kernel still sent no OPEN.
    export = tmp_path / "export"
    bridge.export(export)
    res = subprocess.run(["diff", "-r", str(export), str(cur)], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    requests = perf(m)["requests"]
    assert (requests["open"], requests["opendir"]) == (1, 1) and "release" not in requests


def test_no_open_mode_generated_files_and_history(bridge: Bridge, mount_factory: Callable[..., Mount]) -> None:
    bridge.batch(FILES)
    m = mount_factory()
    # Debug files: a fresh snapshot per open, and always whole JSON (size and bytes from the same snapshot).
    totals = [json.loads((m / "debug/performance.json").read_bytes())["requests_total"] for _ in range(3)]
    assert totals == sorted(totals) and len(set(totals)) == 3
    stream = m / "streams/file_changes.ndjson"
    manifest = m / "context/manifest.json"
    first_lines = stream.read_bytes().splitlines()
    assert json.loads(manifest.read_bytes())["file_count"] == len(FILES)
    history = m / "history"
    listed = set(os.listdir(history))
    # A history/<time>/ view that is not settled yet (a time ahead) changes with every event: its listing must not
    # come from a stale kernel cache.
    ahead = (datetime.now(UTC) + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert "late.txt" not in os.listdir(history / ahead)

    position = bridge.update("create", "late.txt", b"late\n")["position"]
    wait_until(lambda: len(stream.read_bytes().splitlines()) == len(first_lines) + 1, 5, what="stream grown")
    last = json.loads(stream.read_bytes().splitlines()[-1])
    assert (last["event_type"], last["aggregate_id"]) == ("file_created", "late.txt")
    wait_until(lambda: json.loads(manifest.read_bytes())["file_count"] == len(FILES) + 1, 5, what="manifest")
    wait_until(lambda: str(position) in os.listdir(history), 5, what="the new position in history/")
    assert str(position) not in listed  # (history/ lists the last 20 positions: older ones drop out)
    wait_until(lambda: "late.txt" in os.listdir(history / ahead), 5, what="the file in an unsettled time view")
    assert (history / str(position) / "late.txt").read_bytes() == b"late\n"


def test_writable_mounts_and_stock_pyfuse3_keep_the_open_path(
    bridge: Bridge, mount_factory: Callable[..., Mount], stock_pyfuse3: Path
) -> None:
    bridge.batch(FILES)
    stock = mount_factory(extra_env={"PYTHONPATH": f"{stock_pyfuse3}:{REPO}"})
    assert "pyfuse3=3.5.0 " in stock.log()  # the released build, not ours
    assert "reason='pyfuse3 without inode_as_fh" in stock.log()
    writable = mount_factory(writable=True)
    assert "rw" in mount_options(writable) and "ro" in mount_options(stock)
    for m in (stock, writable):
        assert health(m)["no_open"] is False
        cur = m / "current"
        assert tree(cur) == FILES
        before = perf(m)["requests"]
        assert (cur / "src/app.py").read_bytes() == FILES["src/app.py"]
        assert (cur / "README.md").read_bytes() == FILES["README.md"]
        after = perf(m)["requests"]
        # An OPEN and a RELEASE per open (plus those of reading performance.json before).
        assert after["open"] - before["open"] >= 2 and after["release"] - before["release"] >= 2, m.path
    bridge.update("modify", "src/app.py", b"changed\n")
    for m in (stock, writable):
        app = m / "current/src/app.py"
        wait_until(lambda: app.read_bytes() == b"changed\n", 5, what="the change")  # noqa: B023 (called at once)
        assert tree(m / "current") == {**FILES, "src/app.py": b"changed\n"}


def test_a_listed_directory_has_its_files_stored_in_the_page_cache(
    bridge: Bridge, mount_factory: Callable[..., Mount]
) -> None:
    files = {f"many/f{i:03d}.txt": f"file {i}\n".encode() * 50 for i in range(60)}
    bridge.batch(files)
    m = mount_factory()
    wait_until(lambda: "Prefetched blobs" in m.log(), 60, what="the blob prefetch")
    listed = os.listdir(m / "current/many")
    assert sorted(listed) == sorted(p.split("/")[1] for p in files)
    # The end of the listing made the filesystem push each file's content into the kernel's page cache.
    wait_until(lambda: perf(m)["kernel_notifications"].get("store", 0) >= len(files), 10, what="stored files")
    before = perf(m)["requests"]
    assert {p: (m / "current" / p).read_bytes() for p in files} == files
    after = perf(m)["requests"]
    assert after.get("read", 0) - before.get("read", 0) <= 1  # that of reading performance.json: no file READ
