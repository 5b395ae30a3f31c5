"""FUSE shadow filesystem figures, all in one run, against a real bridge on the local PostgreSQL/Redis.

    eval "$(hack/services.sh env)" && .venv/bin/python benchmarks/fuse_bench.py [--files 10000]

Measures (printed, and appended to benchmarks/RESULTS.md with the command):
  - cached stat p50 on the mount vs the same file on the native filesystem;
  - FUSE requests per uncached stat (counted by the filesystem's own Operations, debug/performance.json);
  - sequential read GB/s of a large file: first read (through FUSE) and re-read (kernel page cache);
  - grep -r over a generated N-file project vs the same tree on the native filesystem (ratio).
Everything runs on 127.0.0.1, in a fresh database, a temporary directory and mount point; it stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.integration.fs.harness import Bridge, Mount  # noqa: E402

WORDS = ("def class return import self value result config request handler cache event stream token "
         "path file read write open close error retry timeout buffer index").split()


def gen_project(n: int, seed: int = 7) -> dict[str, bytes]:
    rng = random.Random(seed)
    files = {}
    for i in range(n):
        lines = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 12))) for _ in range(rng.randint(20, 120))]
        files[f"pkg{i % 100:03d}/sub{i % 7}/mod{i:05d}.py"] = ("\n".join(lines) + "\n").encode()
    return files


async def create_db(base_url: str) -> str:
    import asyncpg

    name = f"fsbench_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(base_url)
    try:
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    return base_url.rsplit("/", 1)[0] + "/" + name


async def drop_db(url: str, base_url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(base_url)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)")
    finally:
        await conn.close()


def stat_p50_ns(path: Path, n: int) -> float:
    os.stat(path)
    samples = []
    for _ in range(n):
        t = time.perf_counter_ns()
        os.stat(path)
        samples.append(time.perf_counter_ns() - t)
    return statistics.median(samples)


def read_gbps(path: Path, bufsize: int = 1 << 20, drop_page_cache: bool = False) -> float:
    fd = os.open(path, os.O_RDONLY)
    if drop_page_cache:  # the next read must go through FUSE read requests again
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    total = 0
    t = time.perf_counter()
    try:
        while chunk := os.read(fd, bufsize):
            total += len(chunk)
    finally:
        os.close(fd)
    return total / (time.perf_counter() - t) / 1e9


def timed(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - t


def wait_for_prefetch(m: Mount, timeout: float = 600) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in m.log().splitlines():
            if "Prefetched blobs" in line:
                return line.split("Prefetched blobs ", 1)[1].strip()
        time.sleep(0.2)
    return "prefetch did not finish"


def perf(m: Mount) -> dict[str, int]:
    return dict(json.loads((m / "debug/performance.json").read_text())["requests"])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=10000)
    ap.add_argument("--big-mib", type=int, default=64)
    ap.add_argument("--no-record", action="store_true", help="print only; do not append to RESULTS.md")
    args = ap.parse_args()
    base = os.environ.get("LIGHTHOUSE_DATABASE_URL")
    if not base:
        print("LIGHTHOUSE_DATABASE_URL is not set: run `eval \"$(hack/services.sh env)\"` first", file=sys.stderr)
        return 2
    load_at_start = " ".join(f"{x:.1f}" for x in os.getloadavg())  # other work on the machine skews every figure
    db = asyncio.run(create_db(base))
    tmp = Path(tempfile.mkdtemp(prefix="fuse-bench-"))
    big = args.big_mib << 20
    bridge = Bridge(db, os.environ.get("LIGHTHOUSE_REDIS_URL"), tmp / "bridge.log",
                    LIGHTHOUSE_REDIS_PREFIX=f"fsbench:{uuid.uuid4().hex[:6]}:",
                    LIGHTHOUSE_MAX_LIST_FILES=str(args.files + 100), LIGHTHOUSE_MAX_FILE_BYTES=str(big),
                    LIGHTHOUSE_MAX_REQUEST_BYTES=str(big + (1 << 20)), LIGHTHOUSE_LOG_LEVEL="warning")
    mount: Mount | None = None
    try:
        print(f"Generating {args.files} files and a {args.big_mib} MiB file ...", flush=True)
        files = gen_project(args.files)
        files["big/blob.bin"] = random.Random(1).randbytes(big)
        native = tmp / "native"
        for p, c in files.items():
            (native / p).parent.mkdir(parents=True, exist_ok=True)
            (native / p).write_bytes(c)
        t = time.perf_counter()
        bridge.batch(files, chunk=2000)
        print(f"Loaded into the bridge in {time.perf_counter() - t:.1f}s", flush=True)
        mount = Mount(bridge.url, tmp)
        cur = mount / "current"
        prefetch_line = wait_for_prefetch(mount)
        project_bytes = sum(len(c) for p, c in files.items() if not p.startswith("big/"))
        subprocess.run(["grep", "-rq", "zzz-no-match-zzz", str(native)], check=False)  # native: warm page cache

        # grep -r: first run on the mount goes through FUSE for everything, later runs hit the kernel caches.
        grep_args = ["grep", "-r", "-c", "zzz-no-match-zzz"]
        before = perf(mount)
        fuse_cold = timed([*grep_args, str(cur)])
        after = perf(mount)
        reqs_grep = {k: after.get(k, 0) - before.get(k, 0) for k in after if after.get(k, 0) != before.get(k, 0)}
        fuse_warm = statistics.median(timed([*grep_args, str(cur)]) for _ in range(3))
        native_t = statistics.median(timed([*grep_args, str(native)]) for _ in range(3))

        # cached stat: the same file again and again (kernel attribute cache, no userspace request).
        target_rel = "pkg001/sub1/mod00001.py"
        fuse_stat = stat_p50_ns(cur / target_rel, 20000)
        native_stat = stat_p50_ns(native / target_rel, 20000)

        # uncached stat: paths never looked up before, in a fresh mount (nothing in the kernel caches).
        mount.stop()
        mount = Mount(bridge.url, tmp)
        cur = mount / "current"
        wait_for_prefetch(mount)
        sample = [p for p in files if p.startswith("pkg05")][:200]
        for d in {str(Path(p).parent) for p in sample}:
            os.stat(cur / d)  # parents first: count only the leaf lookups
        perf(mount)
        b0 = perf(mount)
        b1 = perf(mount)
        overhead = sum(b1.values()) - sum(b0.values())  # what reading performance.json itself costs
        for p in sample:
            os.stat(cur / p)
        a = perf(mount)
        delta = {k: a.get(k, 0) - b1.get(k, 0) for k in a if a.get(k, 0) != b1.get(k, 0)}
        per_stat = (sum(a.values()) - sum(b1.values()) - overhead) / len(sample)

        # sequential read of the big file: first through FUSE, then again from the page cache.
        fuse_read_cold = read_gbps(cur / "big/blob.bin")
        fuse_read_fuse = statistics.median(read_gbps(cur / "big/blob.bin", drop_page_cache=True) for _ in range(3))
        fuse_read_warm = statistics.median(read_gbps(cur / "big/blob.bin") for _ in range(3))
        before = perf(mount)
        read_gbps(cur / "big/blob.bin", drop_page_cache=True)
        reads_per_file = perf(mount).get("read", 0) - before.get("read", 0)
        native_read = statistics.median(read_gbps(native / "big/blob.bin") for _ in range(3))
    finally:
        if mount is not None:
            mount.stop()
        bridge.stop()
        asyncio.run(drop_db(db, base))
        subprocess.run(["rm", "-rf", str(tmp)], check=False)

    rows = [
        ("cached stat p50", f"{fuse_stat / 1000:.2f} us", f"{native_stat / 1000:.2f} us",
         f"{fuse_stat / native_stat:.2f}x native (target <= 2x)"),
        ("FUSE requests per uncached stat", f"{per_stat:.2f}", "-",
         f"requests {json.dumps(delta, sort_keys=True)} for {len(sample)} stats, minus {overhead} for reading "
         "performance.json (target <= 1)"),
        ("sequential read, first (HTTP fetch + FUSE)", f"{fuse_read_cold:.2f} GB/s", f"{native_read:.2f} GB/s",
         f"{args.big_mib} MiB file, 1 MiB reads; includes fetching the blob from the bridge"),
        ("sequential read, via FUSE requests (blob cached)", f"{fuse_read_fuse:.2f} GB/s", f"{native_read:.2f} GB/s",
         f"page cache dropped with fadvise(DONTNEED); {reads_per_file} read requests for the file"),
        ("sequential read, re-read (page cache)", f"{fuse_read_warm:.2f} GB/s", f"{native_read:.2f} GB/s",
         "target >= 1.5 GB/s"),
        (f"grep -r, {args.files} files, first run", f"{fuse_cold:.3f} s", f"{native_t:.3f} s",
         f"{fuse_cold / native_t:.1f}x native; kernel caches cold, blobs prefetched ({prefetch_line}); "
         f"{project_bytes / 1e6:.1f} MB; requests {json.dumps(reqs_grep, sort_keys=True)}"),
        (f"grep -r, {args.files} files, warm", f"{fuse_warm:.3f} s", f"{native_t:.3f} s",
         f"{fuse_warm / native_t:.1f}x native (target <= 3x)"),
    ]
    cmd = "eval \"$(hack/services.sh env)\" && .venv/bin/python benchmarks/fuse_bench.py " + " ".join(
        shlex.quote(a) for a in sys.argv[1:])
    lines = [
        f"\n## FUSE shadow filesystem ({datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}, {os.cpu_count()} CPUs, "
        f"kernel {os.uname().release}, load average at start {load_at_start})\n",
        f"Command: `{cmd.strip()}`\n",
        "| figure | mount | native | notes |",
        "|---|---|---|---|",
        *[f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows],
        "",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_record:
        with open(REPO / "benchmarks/RESULTS.md", "a") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
