"""Ports for servers a test starts itself.

A server listening on a fixed port must keep that port out of the kernel's ephemeral range (32768-60999 here):
outgoing connections take their local ports from that range at random, and `hack/services.sh`/`hack/cluster.sh`
refuse such a port. `free_listen_port` picks a free port below the range.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

LOW = 20000  # above the well-known and registered ports the machine's own daemons use


def ephemeral_range() -> tuple[int, int]:
    lo, hi = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    return int(lo), int(hi)


def free_listen_port() -> int:
    """A port below the ephemeral range that nothing listens on now (random, so parallel tests rarely collide)."""
    top = ephemeral_range()[0] - 1
    for _ in range(200):
        port = random.randint(LOW, top)
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {LOW}-{top}")
