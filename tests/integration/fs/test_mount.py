"""Real FUSE mounts of a real bridge (`lighthouse-bridge serve` on PostgreSQL + Redis), driven with Unix tools.

Skipped, with the reason, only when /dev/fuse is absent. Mount points live under pytest's tmp_path.
"""

from __future__ import annotations

import errno
import json
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.integration.fs.harness import Bridge, Mount, is_mounted, wait_until

SEED = {
    "README.md": b"# demo project\n",
    "src/app.py": b"import os\nPASSWORD = 'hunter2hunter2'\nprint('hello')\n",
    "src/util/helpers.py": b"def helper():\n    return 42\n",
    "docs/guide.md": b"Use the helper.\n" * 100,
    "data/blob.bin": bytes(range(256)) * 64,
}


def seed(bridge: Bridge, files: dict[str, bytes] = SEED) -> int:
    position = 0
    for path, content in files.items():
        position = bridge.update("create", path, content)["position"]
    return position


def run(*cmd: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, timeout=60, check=False)


def test_unix_tools_see_the_live_tree(bridge: Bridge, mount_factory: Callable[..., Mount]) -> None:
    seed(bridge)
    m = mount_factory()
    cur = m / "current"
    assert sorted(os.listdir(m.path)) == ["context", "current", "debug", "history", "shadows", "streams"]
    assert run("ls", str(cur)).stdout.split() == ["README.md", "data", "docs", "src"]
    assert run("cat", str(cur / "src/app.py")).stdout.encode() == SEED["src/app.py"]
    for path, content in SEED.items():
        st = os.stat(cur / path)
        assert st.st_size == len(content), path  # exact sizes
        assert (st.st_uid, st.st_gid) == (os.getuid(), os.getgid())
        assert st.st_mode & 0o777 == 0o444
    assert run("stat", "-c", "%s %F", str(cur / "docs/guide.md")).stdout.strip() == "1600 regular file"
    grep = run("grep", "-rn", "helper", str(cur))
    assert grep.returncode == 0
    hits = sorted(line.split(":", 2)[0].removeprefix(str(cur) + "/") for line in grep.stdout.splitlines())
    assert hits == ["docs/guide.md"] * 100 + ["src/util/helpers.py"]
    found = run("find", str(cur), "-type", "f").stdout.split()
    assert sorted(p.removeprefix(str(cur) + "/") for p in found) == sorted(SEED)
    assert (cur / "data/blob.bin").read_bytes() == SEED["data/blob.bin"]


def test_diff_r_against_an_export(bridge: Bridge, mount_factory: Callable[..., Mount], tmp_path: Path) -> None:
    first = seed(bridge)
    bridge.update("modify", "src/app.py", b"changed\n")
    bridge.update("delete", "README.md")
    m = mount_factory()
    now_export, then_export = tmp_path / "export-now", tmp_path / "export-then"
    position = bridge.export(now_export)
    bridge.export(then_export, at=first)
    res = run("diff", "-r", str(now_export), str(m / "current"))
    assert res.returncode == 0, res.stdout + res.stderr
    res = run("diff", "-r", str(then_export), str(m / f"history/{first}"))
    assert res.returncode == 0, res.stdout + res.stderr
    res = run("diff", "-r", str(now_export), str(m / f"history/{position}"))
    assert res.returncode == 0, res.stdout + res.stderr
    assert run("diff", "-r", str(then_export), str(m / "current")).returncode == 1  # and diff does see changes


def test_history_equals_time_travel(bridge: Bridge, mount_factory: Callable[..., Mount]) -> None:
    positions = [bridge.update("create", "a.txt", b"v1")["position"]]
    time.sleep(0.05)
    between = datetime.now(UTC)
    time.sleep(0.05)
    positions.append(bridge.update("modify", "a.txt", b"version two")["position"])
    positions.append(bridge.update("create", "dir/b.txt", b"b")["position"])
    positions.append(bridge.update("delete", "a.txt")["position"])
    bridge.http.post("/snapshots", json={"name": "before-delete"}).raise_for_status()
    m = mount_factory()
    for p in positions:
        listing = bridge.listing(at=p)
        view = m / f"history/{p}"
        on_mount = sorted(str(f.relative_to(view)) for f in view.rglob("*") if f.is_file())
        assert on_mount == sorted(f["path"] for f in listing["files"]), p
        for f in listing["files"]:
            assert (view / f["path"]).read_bytes() == bridge.read(f["path"], at=p)
            assert os.stat(view / f["path"]).st_size == f["size"]
    label = between.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert (m / f"history/{label}/a.txt").read_bytes() == bridge.read("a.txt", at=label) == b"v1"
    listed = os.listdir(m / "history")
    assert {str(p) for p in positions} <= set(listed)
    assert "before-delete" in listed
    assert os.readlink(m / "history/before-delete") == str(positions[-1])
    assert not (m / "history/before-delete/a.txt").exists()
    with pytest.raises(OSError) as exc:
        (m / "history/999999").stat()
    assert exc.value.errno == errno.ENOENT


def test_api_changes_reach_the_mount_within_a_second(bridge: Bridge, mount_factory: Callable[..., Mount]) -> None:
    seed(bridge)
    m = mount_factory()
    app = m / "current/src/app.py"
    assert app.read_bytes() == SEED["src/app.py"]  # now in the kernel's page and attribute caches
    os.listdir(m / "current/src")
    bridge.update("modify", "src/app.py", b"new content, longer than before\n")
    wait_until(lambda: app.read_bytes() == b"new content, longer than before\n", 1.0, what="modified content")
    assert app.stat().st_size == len(b"new content, longer than before\n")
    bridge.update("create", "src/fresh.py", b"x = 1\n")
    wait_until(lambda: (m / "current/src/fresh.py").read_bytes() == b"x = 1\n", 1.0, what="created file")
    bridge.update("delete", "README.md")
    wait_until(lambda: not (m / "current/README.md").exists(), 1.0, what="deleted file gone")
    bridge.update("move", "src/fresh.py", new_path="moved/fresh.py")
    wait_until(lambda: (m / "current/moved/fresh.py").exists() and not (m / "current/src/fresh.py").exists(), 1.0,
               what="moved file")


def test_listings_and_debug_files_stay_fresh(bridge: Bridge, mount_factory: Callable[..., Mount]) -> None:
    # A read-only mount reuses directory listings across opendir calls: every change must still show within 1 s.
    seed(bridge)
    m = mount_factory()
    src = m / "current/src"
    assert sorted(os.listdir(src)) == sorted(os.listdir(src)) == ["app.py", "util"]

    def sizes() -> dict[str, int]:
        return {e.name: e.stat().st_size for e in os.scandir(src) if e.is_file()}

    bridge.update("create", "src/new.py", b"0123456789")
    wait_until(lambda: sizes() == {"app.py": len(SEED["src/app.py"]), "new.py": 10}, 1.0, what="created file listed")
    assert (src / "new.py").read_bytes() == b"0123456789"
    bridge.update("modify", "src/new.py", b"0123")
    wait_until(lambda: sizes().get("new.py") == 4 and (src / "new.py").read_bytes() == b"0123", 1.0,
               what="new size in the listing and new content")
    bridge.update("delete", "src/new.py")
    wait_until(lambda: sorted(os.listdir(src)) == ["app.py", "util"], 1.0, what="deleted file unlisted")
    # debug files are generated on every open: no cached page or size survives to the next read.
    perf = m / "debug/performance.json"
    first = json.loads(perf.read_bytes())["requests"].get("readdir", 0)
    os.listdir(m / "current")
    os.listdir(m / "current/docs")
    assert json.loads(perf.read_bytes())["requests"].get("readdir", 0) > first


def test_writes_through_the_mount_reach_the_api(bridge: Bridge, mount_factory: Callable[..., Mount]) -> None:
    seed(bridge)
    m = mount_factory(writable=True)
    cur = m / "current"
    assert (cur / "README.md").stat().st_mode & 0o777 == 0o644
    events_before = len(bridge.http.get("/event/query", params={"event_type": "file_modified"}).json()["events"])
    res = subprocess.run(f"echo 'edited' > {cur / 'README.md'}", shell=True, check=False)
    assert res.returncode == 0
    assert bridge.read("README.md") == b"edited\n"
    modified = bridge.http.get("/event/query", params={"event_type": "file_modified"}).json()["events"]
    assert len(modified) == events_before + 1  # one file_modified per written handle
    with open(cur / "src/app.py", "ab") as f:
        f.write(b"# appended\n")
    assert bridge.read("src/app.py") == SEED["src/app.py"] + b"# appended\n"
    (cur / "newdir").mkdir()
    (cur / "newdir/n.txt").write_text("new file\n")
    assert bridge.read("newdir/n.txt") == b"new file\n"
    os.rename(cur / "newdir/n.txt", cur / "renamed.txt")
    os.truncate(cur / "renamed.txt", 3)
    assert bridge.read("renamed.txt") == b"new"
    os.unlink(cur / "docs/guide.md")
    paths = {f["path"] for f in bridge.listing()["files"]}
    assert "renamed.txt" in paths and "newdir/n.txt" not in paths and "docs/guide.md" not in paths
    assert (cur / "renamed.txt").stat().st_size == 3


def test_write_conflict_is_eio_and_logged(bridge: Bridge, mount_factory: Callable[..., Mount]) -> None:
    seed(bridge)
    m = mount_factory(writable=True)
    f = open(m / "current/README.md", "r+b")
    f.write(b"ours")
    f.flush()
    bridge.update("modify", "README.md", b"theirs\n")  # someone else wins the race
    with pytest.raises(OSError) as exc:
        f.close()
    assert exc.value.errno == errno.EIO
    assert bridge.read("README.md") == b"theirs\n"
    wait_until(lambda: "reason=conflict" in m.log() and "path=README.md" in m.log(), 5, what="conflict log line")
    # The same race on a new file: our create loses, and the mount shows the winner's file, not a ghost.
    g = open(m / "current/race.txt", "wb")
    g.write(b"ours")
    bridge.update("create", "race.txt", b"theirs")
    with pytest.raises(OSError) as exc:
        g.close()
    assert exc.value.errno == errno.EIO
    wait_until(lambda: (m / "current/race.txt").read_bytes() == b"theirs", 5, what="the winning create")


def test_read_only_outside_current_and_without_the_flag(bridge: Bridge, mount_factory: Callable[..., Mount]) -> None:
    p = seed(bridge)
    ro, rw = mount_factory(), mount_factory(writable=True)
    for target in (ro / "current/README.md", ro / "current/new.txt", rw / f"history/{p}/README.md",
                   rw / "context/x.json", rw / "streams/events.ndjson", rw / "shadows/x"):
        with pytest.raises(OSError) as exc:
            target.open("ab").close()
        assert exc.value.errno in (errno.EROFS, errno.EACCES), target
        assert exc.value.errno == errno.EROFS or os.getuid() != 0
    with pytest.raises(OSError) as exc:
        (rw / "debug/newdir").mkdir()
    assert exc.value.errno == errno.EROFS


def test_shadows_context_debug(bridge: Bridge, mount_factory: Callable[..., Mount]) -> None:
    seed(bridge)
    m = mount_factory()
    shadow = m / "shadows/src/app.py.annotations.json"

    def ids_in_api() -> list[str]:
        return [a["id"] for a in bridge.http.get("/annotations", params={"path": "src/app.py"}).json()["annotations"]]

    def ids_in_shadow() -> list[str]:
        return [a["id"] for a in json.loads(shadow.read_text())["annotations"]]

    # The bridge's own rule-based experts may annotate the seed (it holds a password): settle on what the API says.
    wait_until(lambda: ids_in_shadow() == ids_in_api(), 5, what="shadow file equal to GET /annotations")
    r = bridge.http.post("/annotations", json={"path": "src/app.py", "line": 3, "message": "print in library code",
                                              "category": "style", "severity": "low", "author": "style-expert"})
    r.raise_for_status()
    wait_until(lambda: r.json()["id"] in ids_in_shadow(), 5, what="new annotation in the shadow file")
    assert sorted(ids_in_shadow()) == sorted(ids_in_api())
    body = shadow.read_bytes()
    assert shadow.stat().st_size == len(body)
    mine = [a for a in json.loads(body)["annotations"] if a["id"] == r.json()["id"]]
    assert mine[0]["message"] == "print in library code" and mine[0]["path"] == "src/app.py"
    manifest = json.loads((m / "context/manifest.json").read_text())
    assert manifest["file_count"] == len(SEED)
    files = json.loads((m / "context/files.json").read_text())["files"]
    assert sorted(f["path"] for f in files) == sorted(SEED)
    json.loads((m / "context/context.json").read_text())
    stats = json.loads((m / "debug/cache_stats.json").read_text())
    assert 0 <= stats["cache_hit_rate"] <= 1
    assert json.loads((m / "debug/health.json").read_text())["stream_connected"] is True
    assert json.loads((m / "debug/performance.json").read_text())["requests"]["lookup"] > 0


def test_tail_f_on_a_stream(bridge: Bridge, mount_factory: Callable[..., Mount]) -> None:
    seed(bridge)
    m = mount_factory()
    stream = m / "streams/file_changes.ndjson"
    assert len(stream.read_bytes().splitlines()) == len(SEED)  # the backlog is there before the mount is reported
    tail = subprocess.Popen(["tail", "-n", "0", "-f", str(stream)],
                            stdout=subprocess.PIPE)
    try:
        time.sleep(0.5)  # let tail reach the end of the file before the change
        bridge.update("create", "tailed.txt", b"t")
        bridge.update("modify", "tailed.txt", b"tt")
        lines: list[dict[str, object]] = []
        deadline = time.monotonic() + 15
        buf = b""
        assert tail.stdout is not None
        while len(lines) < 2 and time.monotonic() < deadline:
            ready, _, _ = select.select([tail.stdout], [], [], 0.2)
            if ready:
                buf += os.read(tail.stdout.fileno(), 65536)
                *complete, buf = buf.split(b"\n")
                lines += [json.loads(line) for line in complete if line]
        assert [(e["event_type"], e["aggregate_id"]) for e in lines] == [
            ("file_created", "tailed.txt"), ("file_modified", "tailed.txt")]
    finally:
        tail.terminate()
        tail.wait(10)


def test_parallel_readers(bridge: Bridge, mount_factory: Callable[..., Mount]) -> None:
    files = {f"pkg{i % 7}/mod{i}.py": (f"# module {i}\n" * (1 + i * 37)).encode() for i in range(200)}
    bridge.batch(files)
    m = mount_factory()
    errors: list[str] = []

    def reader(seed_: int) -> None:
        order = sorted(files, key=lambda p: hash((p, seed_)))
        for path in order:
            data = (m / "current" / path).read_bytes()
            if data != files[path]:
                errors.append(f"{path}: {len(data)} bytes, expected {len(files[path])}")

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(8)]
    greps = [subprocess.Popen(["grep", "-rc", "module", str(m / "current")], stdout=subprocess.PIPE, text=True)
             for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    for g in greps:
        out, _ = g.communicate(timeout=120)
        counts = {line.rsplit(":", 1)[0].removeprefix(str(m / "current") + "/"): int(line.rsplit(":", 1)[1])
                  for line in out.splitlines()}
        assert counts == {p: c.count(b"module") for p, c in files.items()}
    assert errors == []


def test_sigterm_unmounts_cleanly(bridge: Bridge, mount_factory: Callable[..., Mount]) -> None:
    seed(bridge)
    m = mount_factory()
    assert (m / "current/README.md").read_bytes() == SEED["README.md"]
    m.proc.send_signal(signal.SIGTERM)
    assert m.proc.wait(20) == 0
    assert not is_mounted(m.path)
    assert m.status() == {"mounted": False, "mountpoint": str(m.path), "error": None}
    assert "Unmounted shadow filesystem" in m.log()


def test_recovery_after_kill_9(bridge: Bridge, mount_factory: Callable[..., Mount]) -> None:
    seed(bridge)
    first = mount_factory()
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(10)
    with pytest.raises(OSError) as exc:
        os.listdir(first.path)
    assert exc.value.errno == errno.ENOTCONN  # the stale mount a crash leaves behind
    second = mount_factory(mountpoint=first.path)
    assert "Recovering stale mount" in second.log()
    assert (second / "current/README.md").read_bytes() == SEED["README.md"]


def test_follows_the_bridge_across_a_restart(bridge: Bridge, mount_factory: Callable[..., Mount]) -> None:
    seed(bridge)
    m = mount_factory()
    bridge.crash_and_restart()  # the event stream breaks; the mount keeps serving what it has and reconnects
    assert (m / "current/README.md").read_bytes() == SEED["README.md"]
    bridge.update("create", "after-restart.txt", b"still following\n")
    wait_until(lambda: (m / "current/after-restart.txt").read_bytes() == b"still following\n", 15,
               what="a change made after the bridge restarted")
    assert json.loads((m / "debug/health.json").read_text())["reconnects"] >= 1

