"""No-open mode without a mount: the mode decision, reads by inode, snapshots of generated files, what a change or a
forgotten inode makes the kernel drop, and the adapter's ENOSYS answers and listings by inode."""

from __future__ import annotations

import errno
import json
import threading
from collections.abc import Callable
from typing import Any

import pyfuse3
import pytest
from lighthouse_bridge.fs import ops as ops_module
from lighthouse_bridge.fs.model import ROOT_INO, FsError, FsModel, Invalidation
from lighthouse_bridge.fs.nodes import Store
from lighthouse_bridge.fs.ops import Operations, choose_no_open
from lighthouse_bridge.fs.tree import ROOT_KEY, Inodes, parent_key

from tests.unit.fs.fake_source import FakeSource
from tests.unit.fs.test_model import resolve


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


async def make(no_open: bool = True, **files: bytes) -> tuple[FsModel, FakeSource, Clock]:
    src, clock = FakeSource(), Clock()
    for path, content in files.items():
        src.put(path.replace("__", "/"), content)
    model = FsModel(src, no_open=no_open, clock=clock)
    await model.load()
    return model, src, clock


async def read_all(model: FsModel, ino: int, chunk: int = 7) -> bytes:
    out = b""
    while data := await model.read_inode(ino, len(out), chunk):
        out += bytes(data)
    return out


@pytest.mark.parametrize(
    ("writable", "release", "inode_as_fh", "expected"),
    [
        (False, "6.18.44-fc-v1272", True, True),
        (False, "5.1.0", True, True),
        (False, "5.0.21", True, False),  # zero-message opendir came with 5.1
        (False, "6.1.0", False, False),  # a stock pyfuse3 hands read() only the (zero) handle
        (True, "6.18.0", True, False),  # writes need per-open handles and OPEN's O_TRUNC
        (False, "weird", True, False),
    ],
)
def test_no_open_only_for_read_only_mounts_on_the_patched_binding(
    writable: bool, release: str, inode_as_fh: bool, expected: bool
) -> None:
    chosen, why = choose_no_open(writable, release, inode_as_fh)
    assert chosen is expected and why


def test_parent_keys_and_forgotten_inode_numbers() -> None:
    assert parent_key(("current", "", "a/b.txt")) == ("current", "", "a")
    assert parent_key(("current", "", "a")) == ("current", "", "")
    assert parent_key(("history", "12", "")) == ("history", "", "")
    assert parent_key(("history", "", "")) == ROOT_KEY
    assert parent_key(ROOT_KEY) is None
    inodes = Inodes()
    ino = inodes.ino(("current", "", "a"))
    inodes.ref(ino, 2)
    assert inodes.forget(ino, 1) is None
    assert inodes.forget(ino, 1) == ("current", "", "a")


async def test_reads_by_inode_cover_every_area() -> None:
    model, src, _ = await make(**{"src__app.py": b"print('hi')\n"})
    assert await read_all(model, await resolve(model, "current/src/app.py")) == b"print('hi')\n"
    assert await read_all(model, await resolve(model, "history/1/src/app.py")) == b"print('hi')\n"
    src.annotation_items["src/app.py"] = [{"id": "a1", "line": 1}]
    shadow = await resolve(model, "shadows/src/app.py.annotations.json")
    assert json.loads(await read_all(model, shadow))["annotations"] == [{"id": "a1", "line": 1}]
    manifest = await resolve(model, "context/manifest.json")
    assert json.loads(await read_all(model, manifest))["file_count"] == 1
    stream = await resolve(model, "streams/events.ndjson")
    model.apply_event(src.put("b.txt", b"b"))
    assert json.loads(await read_all(model, stream))["aggregate_id"] == "b.txt"
    for directory in ("debug", "shadows/src", "history/1"):
        with pytest.raises(FsError) as exc:
            await model.read_inode(await resolve(model, directory), 0, 10)
        assert exc.value.errno == errno.EISDIR


async def test_debug_files_are_snapshots_taken_at_lookup() -> None:
    model, _, _ = await make(**{"a.txt": b"a"})
    perf = await resolve(model, "debug/performance.json")
    attr = await model.getattr(perf)
    model.stats.record("read", 0.001)  # the numbers move on between the kernel's GETATTR and its READs
    model.stats.record("lookup", 0.001)
    content = await read_all(model, perf)
    assert len(content) == attr.size and (await model.getattr(perf)).size == attr.size
    assert "read" not in json.loads(content)["requests"]
    again = await resolve(model, "debug/performance.json")  # the next open() looks it up again: a new snapshot
    assert again == perf
    fresh = await model.getattr(perf)
    assert fresh.mtime_ns > attr.mtime_ns  # the kernel drops the old snapshot's pages when the mtime changes
    assert json.loads(await read_all(model, perf))["requests"]["read"] == 1


async def test_old_path_generates_debug_files_per_open() -> None:
    model, _, _ = await make(no_open=False, **{"a.txt": b"a"})
    perf = await resolve(model, "debug/performance.json")
    size = (await model.getattr(perf)).size
    model.stats.record("read", 0.001)
    assert (await model.getattr(perf)).size > size


async def test_history_listing_and_unsettled_views_are_invalidated() -> None:
    model, src, clock = await make(**{"a.txt": b"a"})
    history = await resolve(model, "history")
    assert model.apply_event(src.put("b.txt", b"b")).count(Invalidation(history)) == 1  # a new position listed
    assert model.note_high_water(model.high_water) == []
    assert model.note_high_water(model.high_water + 5) == [Invalidation(history)]
    snap = {"position": model.high_water, "event_type": "snapshot_created", "aggregate_type": "snapshot", "data": {}}
    assert Invalidation(history) in model.apply_event(snap)
    # A time view that is not settled yet can change without an event: its mtime moves, so the kernel drops a
    # listing it cached; a settled one keeps its mtime (and its cached listing).
    ahead = await resolve(model, "history/2027-01-15T08:00:00Z")
    first = (await model.getattr(ahead)).mtime_ns
    clock.now += 1
    assert (await model.getattr(ahead)).mtime_ns > first
    settled = await resolve(model, "history/1")
    first = (await model.getattr(settled)).mtime_ns
    clock.now += 1
    assert (await model.getattr(settled)).mtime_ns == first


async def test_a_forgotten_inode_invalidates_the_listing_naming_it() -> None:
    model, _, _ = await make(**{"src__a.txt": b"a"})
    src_dir = await resolve(model, "current/src")
    a = await resolve(model, "current/src/a.txt")
    assert model.forget(a, 1) == [Invalidation(src_dir)]
    old, _, _ = await make(no_open=False, **{"src__a.txt": b"a"})
    assert old.forget(await resolve(old, "current/src/a.txt"), 1) == []


async def test_adapter_answers_enosys_and_lists_by_inode(monkeypatch: pytest.MonkeyPatch) -> None:
    model, src, _ = await make(**{f"d__f{i}.txt": b"x" * i for i in range(5)})
    ops = Operations(model)
    assert ops.inode_as_fh is True  # read by pyfuse3.init
    current = await ops.lookup(ROOT_INO, b"current")
    d = await ops.lookup(current.st_ino, b"d")
    for call in (ops.open(d.st_ino, 0, None), ops.opendir(d.st_ino, None)):
        with pytest.raises(pyfuse3.FUSEError) as exc:
            await call
        assert exc.value.errno == errno.ENOSYS
    f3 = await ops.lookup(d.st_ino, b"f3.txt")
    assert bytes(await ops.read(f3.st_ino, 0, 100)) == b"xxx"

    sent: list[bytes] = []
    room = 2

    def reply(token: object, name: bytes, attr: pyfuse3.EntryAttributes, next_id: int) -> bool:
        nonlocal room
        if room == 0:
            return False
        room -= 1
        sent.append(name)
        return True

    monkeypatch.setattr(pyfuse3, "readdir_reply", reply)
    await ops.readdir(d.st_ino, 0, None)  # the kernel's buffer holds two entries
    model.apply_event(src.put("d/a0.txt", b"new"))  # a change between two parts of one listing
    room = 10
    await ops.readdir(d.st_ino, 2, None)
    assert sent == [b"f0.txt", b"f1.txt", b"f2.txt", b"f3.txt", b"f4.txt"]  # one consistent listing
    sent.clear()
    await ops.readdir(d.st_ino, 0, None)  # the next listing (after the kernel was told to drop its copy)
    assert sent[0] == b"a0.txt" and len(sent) == 6


async def test_listed_directories_push_their_small_cached_files_once() -> None:
    model, src, _ = await make(**{"d__a.txt": b"a" * 10, "d__b.txt": b"b" * 20, "d__big.bin": b"x" * (300 << 10),
                                  "d__sub__c.txt": b"c"})
    d = await resolve(model, "current/d")
    a, b, _big = [await resolve(model, f"current/d/{n}") for n in ("a.txt", "b.txt", "big.bin")]
    for meta in model.live.files.values():
        await model.blobs.get(meta.sha256)  # prefetched
    # Files the kernel has an inode for (it listed the directory), small, with their blob in memory.
    assert {(s.ino, bytes(s.data)) for s in model.pages_to_push(d)} == {(a, b"a" * 10), (b, b"b" * 20)}
    assert model.pages_to_push(d) == []  # once per directory and tree generation
    assert model.pages_to_push(a) == []  # a READ of one of them: already pushed
    model.apply_event(src.put("d/b.txt", b"new b"))
    await model.blobs.get(model.live.files["d/b.txt"].sha256)
    assert [(s.ino, bytes(s.data)) for s in model.pages_to_push(a)] == [(b, b"new b")]  # only what changed
    model.apply_event(src.put("d/a.txt", b"new a"))
    model.blobs = type(model.blobs)(src.read_blob)  # a cold blob cache: nothing to push without a fetch
    assert model.pages_to_push(d) == []


async def test_history_views_push_only_when_settled_and_at_hand() -> None:
    model, _, _clock = await make(**{"d__a.txt": b"a"})
    for meta in model.live.files.values():
        await model.blobs.get(meta.sha256)
    settled = await resolve(model, "history/1/d")
    await resolve(model, "history/1/d/a.txt")
    assert len(model.pages_to_push(settled)) == 1
    ahead = await resolve(model, "history/2030-01-01T00:00:00Z/d")
    await resolve(model, "history/2030-01-01T00:00:00Z/d/a.txt")
    assert model.pages_to_push(ahead) == []  # may still change: read through READ only


async def test_only_inodes_the_kernel_holds_take_a_store() -> None:
    model, _, _ = await make(**{"d__a.txt": b"a", "d__b.txt": b"b"})
    for meta in model.live.files.values():
        await model.blobs.get(meta.sha256)
    d = await resolve(model, "current/d")
    a = await resolve(model, "current/d/a.txt")
    b = model.inodes.ino(("current", "", "d/b.txt"))  # numbered (a listing prepared ahead) but never looked up
    assert [s.ino for s in model.pages_to_push(d)] == [a]  # a store for b would find no inode in the kernel
    assert b != a


async def test_a_listing_answered_whole_starts_its_stores_and_its_end_waits_only_for_refused_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model, src, _ = await make(**{"d__a.txt": b"a" * 10, "d__b.txt": b"b" * 20})
    for meta in model.live.files.values():
        await model.blobs.get(meta.sha256)
    ops = Operations(model)
    d = await resolve(model, "current/d")
    a, b = model.inodes.ino(("current", "", "d/a.txt")), model.inodes.ino(("current", "", "d/b.txt"))
    batches: list[tuple[list[tuple[int, bytes]], bool]] = []
    dones: list[Callable[[list[Any]], None]] = []

    def notify(items: Any, done: Any = None, early: bool = False) -> None:
        batches.append(([(s.ino, bytes(s.data)) for s in items], early))
        if early:
            dones.append(done)  # the notification thread answers later
        elif done is not None:
            done([])

    monkeypatch.setattr(ops_module, "notify_kernel", notify)
    monkeypatch.setattr(pyfuse3, "readdir_reply", lambda token, name, attr, next_id: True)
    await ops.readdir(d, 0, None)  # the whole listing in one answer: its stores start now, marked early
    assert batches == [([(a, b"a" * 10), (b, b"b" * 20)], True)]
    dones.pop()([Store(b, b"b" * 20)])  # the kernel refused b's store: the reader had not parsed the listing yet
    await ops.readdir(d, 2, None)  # the end of the listing: b once more
    assert batches[1:] == [([(b, b"b" * 20)], False)]

    batches.clear()  # the directory listed again in a later generation
    for path, content in (("d/a.txt", b"new a"), ("d/c.txt", b"c")):
        model.apply_event(src.put(path, content))
        await model.blobs.get(model.live.files[path].sha256)
    c = model.inodes.ino(("current", "", "d/c.txt"))
    await ops.readdir(d, 0, None)
    assert batches == [([(a, b"new a"), (c, b"c")], True)]  # what the kernel has already (b) is not stored again
    dones.pop()([Store(a, b"new a")])
    model.apply_event(src.put("d/a.txt", b"newer a"))  # a changed before the end of the listing
    await model.blobs.get(model.live.files["d/a.txt"].sha256)
    await ops.readdir(d, 3, None)
    assert batches[1:] == [([(a, b"newer a")], False)]  # worked out again: never the content it refused

    batches.clear()
    model.apply_event(src.put("d/e.txt", b"e"))
    await model.blobs.get(model.live.files["d/e.txt"].sha256)
    await ops.readdir(d, 0, None)
    dones.pop()([])
    await ops.readdir(d, 4, None)  # nothing refused: the end of the listing sends nothing more
    assert len(batches) == 1


def test_an_early_batch_tries_one_refused_store_again_and_hands_the_rest_back(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    refuse = {2: 1, 3: 10**9, 7: 10**9, 9: 1}  # ino -> how many times the kernel refuses it

    def notify_store(ino: int, offset: int, data: bytes) -> None:
        calls.append(ino)
        if refuse.get(ino, 0) > 0:
            refuse[ino] -= 1
            raise OSError(errno.ENOENT, "no such inode")

    monkeypatch.setattr(pyfuse3, "notify_store", notify_store)

    def send(stores: list[Store], early: bool) -> list[Any]:
        finished = threading.Event()
        refused: list[Any] = []
        ops_module.notify_kernel(stores, lambda failed: (refused.extend(failed), finished.set()), early)
        assert finished.wait(10)
        return refused

    # The first refused store of an early batch is tried once more (the reader may still be parsing the listing) ...
    assert send([Store(4, b"y"), Store(2, b"x"), Store(6, b"z")], early=True) == [] and calls == [4, 2, 2, 6]
    calls.clear()
    # ... and a refusal after that hands the rest back: the kernel creates a listing's inodes in order.
    assert send([Store(5, b"x"), Store(3, b"y"), Store(6, b"z")], early=True) == [Store(3, b"y"), Store(6, b"z")]
    assert calls == [5, 3, 3]
    calls.clear()
    # Other batches try every store once.
    assert send([Store(7, b"x"), Store(9, b"y"), Store(8, b"z")], early=False) == [Store(7, b"x"), Store(9, b"y")]
    assert calls == [7, 9, 8]
