"""The liveness endpoint (/healthz), served by a thread so that it answers on a standby (before kopf runs) and can tell
a stalled event loop: the loop beats every second, and a beat older than STALL seconds answers 503.

The body says what this process is doing: {"role": "leader"|"standby"|"starting", "bridges": N, "lastBeat": s}.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

STALL = 30.0


class Health:
    def __init__(self) -> None:
        self.beat = time.monotonic()
        self.role = "starting"
        self.details: Callable[[], dict[str, Any]] = dict

    async def heartbeat(self) -> None:
        while True:
            self.beat = time.monotonic()
            await asyncio.sleep(1)

    def report(self) -> tuple[int, dict[str, Any]]:
        age = time.monotonic() - self.beat
        body = {"role": self.role, "lastBeat": round(age, 1), **self.details()}
        return (200 if age < STALL else 503), body

    def serve(self, host: str, port: int) -> ThreadingHTTPServer:
        health = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] not in ("/healthz", "/"):
                    self.send_error(404)
                    return
                code, body = health.report()
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # probes every few seconds: no access log
                return

        server = ThreadingHTTPServer((host, port), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, name="healthz", daemon=True).start()
        return server


__all__ = ["Health"]
