"""Optional Redis snapshot of the bridge's keys (labelled ``cache``: never authoritative, not restored by default).

Streams one JSON line per key under the bridge's prefix: ``{"key", "ttl_ms", "dump"}`` with DUMP's serialized value
(base64), so a restore could RESTORE them; memory stays at one SCAN batch.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

BATCH = 500


def glob_escape(prefix: str) -> str:
    """SCAN MATCH treats * ? [ ] and backslash as patterns; a prefix must match literally."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in prefix)


def dump_keys(redis_url: str, prefix: str, sink: Callable[[bytes], None]) -> int:
    import redis

    client = redis.Redis.from_url(redis_url, socket_timeout=30, socket_connect_timeout=5)
    count = 0
    try:
        batch: list[bytes] = []

        def flush() -> None:
            nonlocal count
            pipe = client.pipeline(transaction=False)
            for key in batch:
                pipe.pttl(key)
                pipe.dump(key)
            out = pipe.execute()
            lines = []
            for i, key in enumerate(batch):
                ttl, value = out[2 * i], out[2 * i + 1]
                if value is None:
                    continue  # expired between SCAN and DUMP
                lines.append(
                    json.dumps(
                        {"key": base64.b64encode(key).decode(), "ttl_ms": ttl, "dump": base64.b64encode(value).decode()}
                    )
                )
            if lines:
                sink(("\n".join(lines) + "\n").encode())
                count += len(lines)
            batch.clear()

        for key in client.scan_iter(match=f"{glob_escape(prefix)}*", count=BATCH):
            batch.append(key)
            if len(batch) >= BATCH:
                flush()
        if batch:
            flush()
    finally:
        client.close()
    return count
