"""The operator's memory: freed heap given back, and a report of where it goes.

`trim_forever` gives glibc's free heap pages back to the kernel once a minute (malloc_trim). Python frees the
large buffers of a busy spell (LIST pages, watch events, their JSON text) but glibc keeps the pages for later, so
without it the RSS of an idle leader stays at the peak of its busiest moment.

The report, for a benchmark or a bug report: off unless LIGHTHOUSE_OPERATOR_MEMORY_DUMP names a file; then each
SIGUSR2 writes a JSON report to it (replacing the last one):

- rss: VmRSS and VmHWM (the peak) of the process;
- malloc: glibc's heap in use and free (free but kept heap is RSS that no Python object holds);
- pymalloc: CPython's arenas for small objects, and the bytes live objects fill in them;
- gc: the objects the garbage collector tracks, by type, with their shallow sizes (str, bytes and int are not
  tracked: they show in `cache` and `tracemalloc`);
- cache: the watch cache's entries and stored bytes per kind;
- tracemalloc: the top allocations by line, if tracing (start the process with PYTHONTRACEMALLOC=1; it costs memory
  and CPU of its own, so not in a run whose figures count).

Nothing is counted before the signal, so a run's figures stay its own; the dump itself holds the main thread (and
the event loop) for a moment.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import json
import logging
import os
import signal
import sys
import tempfile
import tracemalloc
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

ENV = "LIGHTHOUSE_OPERATOR_MEMORY_DUMP"
TOP = 40
MALLINFO2 = "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()


def rss() -> dict[str, int]:
    out = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    key, value = line.split(":", 1)
                    out[key] = int(value.split()[0]) * 1024
    except OSError:
        pass
    return out


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in MALLINFO2]


TRIM_SECONDS = 60.0


def _libc() -> Any:
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def trim() -> bool:
    """malloc_trim(0): glibc returns the free pages of every heap to the kernel. False where there is no glibc, or
    nothing was returned."""
    libc = _libc()
    fn = getattr(libc, "malloc_trim", None)
    return bool(fn(0)) if fn is not None else False


async def trim_forever(interval: float = TRIM_SECONDS) -> None:
    """Until cancelled. On a thread: a trim walks the whole heap (tens of ms at 100 MiB), and the loop need not wait."""
    while True:
        await asyncio.sleep(interval)
        await asyncio.to_thread(trim)


def malloc() -> dict[str, int]:
    """glibc's view (mallinfo2, glibc >= 2.33): the main heap, mmapped blocks, in use and free."""
    libc = _libc()
    try:
        libc.mallinfo2.restype = _Mallinfo2
        m = libc.mallinfo2()
    except AttributeError:  # no glibc (None), or older than 2.33
        return {}
    return {"heap": m.arena, "mmapped": m.hblkhd, "in_use": m.uordblks, "free": m.fordblks}


def pymalloc() -> dict[str, int]:
    """CPython's small-object allocator (sys._debugmallocstats, which prints to fd 2: redirected for the moment):
    its arenas, and how much of them live objects fill; the rest is RSS kept for later allocations."""
    fields = {"# arenas allocated current": "arenas", "# arenas highwater mark": "arenas_peak",
              "# bytes in allocated blocks": "allocated", "# bytes in available blocks": "available"}  # fmt: skip
    out: dict[str, int] = {}
    with tempfile.TemporaryFile("w+") as tmp:
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            os.dup2(tmp.fileno(), 2)
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        tmp.seek(0)
        for line in tmp:
            key, _, value = line.partition("=")
            if key.strip() in fields:
                out[fields[key.strip()]] = int(value.strip().replace(",", ""))
    return out


def gc_census() -> list[dict[str, Any]]:
    counts: dict[str, list[int]] = {}
    for obj in gc.get_objects():
        t = type(obj)
        key = f"{t.__module__}.{t.__qualname__}"
        c = counts.setdefault(key, [0, 0])
        c[0] += 1
        c[1] += sys.getsizeof(obj)
    top = sorted(counts.items(), key=lambda kv: -kv[1][1])[:TOP]
    return [{"type": k, "count": n, "bytes": b} for k, (n, b) in top]


def cache_census(cache: Any) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    if cache is None:
        return out
    for inf in [*cache.informers.values(), cache.bridges]:
        row = out.setdefault(inf.kind, {"objects": 0, "blob_bytes": 0})
        row["objects"] += len(inf.entries)
        row["blob_bytes"] += sum(len(e.blob) for e in inf.entries.values())
    return out


def traced() -> list[dict[str, Any]]:
    if not tracemalloc.is_tracing():
        return []
    stats = tracemalloc.take_snapshot().statistics("lineno")[:TOP]
    return [{"where": str(s.traceback), "bytes": s.size, "count": s.count} for s in stats]


def report(cache: Any) -> dict[str, Any]:
    return {
        "rss": rss(),
        "malloc": malloc(),
        "pymalloc": pymalloc(),
        "cache": cache_census(cache),
        "gc": gc_census(),
        "tracemalloc": traced(),
    }


def install(cache: Callable[[], Any]) -> None:
    """With ENV set: SIGUSR2 writes report(cache()) to that file."""
    path = os.environ.get(ENV)
    if not path:
        return

    def dump(signum: int, frame: Any) -> None:
        try:
            data = report(cache())
            tmp = f"{path}.tmp"
            with open(tmp, "w") as f:
                json.dump(data, f, indent=1)
            os.replace(tmp, path)
            log.info("Wrote memory report path=%s rss=%s", path, data["rss"].get("VmRSS"))
        except Exception:
            log.exception("Memory report failed path=%s", path)

    signal.signal(signal.SIGUSR2, dump)
    log.info("Memory report on SIGUSR2 path=%s tracemalloc=%s", path, tracemalloc.is_tracing())
