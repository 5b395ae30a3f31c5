"""FUSE without privilege: the wire protocol between the CSI node plugin (root, on the node) and the bridge's FUSE
process (unprivileged, in the pod). Standard library only: the bridge image and the plugin image both carry it.

The plugin publishes a volume as a directory holding a Unix socket (SOCKET_NAME) and an empty directory (MOUNT_DIR).
The FUSE process connects and sends one request line; the plugin opens /dev/fuse, mounts it on MOUNT_DIR with
`fd=N` (replacing a mount left by an earlier process of the pod), and answers with one line and the descriptor
attached (SCM_RIGHTS). The FUSE process then serves `/dev/fd/<fd>` (libfuse >= 3.3): it never calls mount(2).

    request:  {"op": "mount", "readonly": true}\\n
    answer:   {"ok": true, "mountpoint": "project"}\\n  + 1 descriptor
              {"ok": false, "error": "..."}\\n           (no descriptor)
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from typing import Any

SOCKET_NAME = ".lighthouse-fuse.sock"
MOUNT_DIR = "project"
MAX_LINE = 4096


class ProtocolError(Exception):
    """The peer broke the protocol or refused the request (the message says which)."""


@dataclass(frozen=True)
class MountRequest:
    readonly: bool = True

    def encode(self) -> bytes:
        return json.dumps({"op": "mount", "readonly": self.readonly}).encode() + b"\n"

    @classmethod
    def decode(cls, line: bytes) -> MountRequest:
        try:
            doc = json.loads(line)
        except ValueError as exc:
            raise ProtocolError(f"request is not JSON: {exc}") from None
        if not isinstance(doc, dict) or doc.get("op") != "mount":
            raise ProtocolError(f"unknown request {doc!r}: expected op=mount")
        readonly = doc.get("readonly", True)
        if not isinstance(readonly, bool):
            raise ProtocolError(f"readonly must be true or false, not {readonly!r}")
        return cls(readonly=readonly)


def _read_line(sock: socket.socket, with_fd: bool) -> tuple[bytes, list[int]]:
    """One newline-terminated message; with_fd: also the descriptors that came with it."""
    data, fds = b"", []
    while not data.endswith(b"\n"):
        if with_fd:
            chunk, got, _flags, _addr = socket.recv_fds(sock, MAX_LINE, 2)
            fds += got
        else:
            chunk = sock.recv(MAX_LINE)
        if not chunk:
            for fd in fds:
                _close(fd)
            raise ProtocolError("connection closed before a complete message")
        data += chunk
        if len(data) > MAX_LINE:
            for fd in fds:
                _close(fd)
            raise ProtocolError("message too long")
    return data, fds


def _close(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


SUN_PATH_MAX = 107  # sockaddr_un.sun_path holds 108 bytes with the terminating NUL


def short_path(dir_fd: int, name: str) -> str:
    """A path to `name` in the directory open as `dir_fd`, short enough for sun_path whatever the directory's
    own path: kubelet volume paths (/var/lib/kubelet/pods/<uid>/volumes/kubernetes.io~csi/<name>/mount) are longer."""
    return f"/proc/self/fd/{dir_fd}/{name}"


def connect(sock: socket.socket, path: str) -> None:
    if len(os.fsencode(path)) <= SUN_PATH_MAX:
        sock.connect(path)
        return
    dir_fd = os.open(os.path.dirname(path) or ".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        sock.connect(short_path(dir_fd, os.path.basename(path)))
    finally:
        os.close(dir_fd)


def request_mount(path: str, readonly: bool = True, timeout: float = 30.0) -> tuple[int, dict[str, Any]]:
    """Client side (the FUSE process): ask the plugin for a fresh mount. Returns (descriptor, answer).
    Raises OSError when the socket cannot be reached, ProtocolError when the plugin refuses."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        connect(sock, path)
        sock.sendall(MountRequest(readonly).encode())
        line, fds = _read_line(sock, with_fd=True)
    try:
        answer = json.loads(line)
    except ValueError as exc:
        for fd in fds:
            _close(fd)
        raise ProtocolError(f"answer is not JSON: {exc}") from None
    if not answer.get("ok"):
        for fd in fds:
            _close(fd)
        raise ProtocolError(str(answer.get("error") or "the plugin refused the mount"))
    if len(fds) != 1:
        for fd in fds:
            _close(fd)
        raise ProtocolError(f"expected one descriptor with the answer, got {len(fds)}")
    return fds[0], answer


def read_request(conn: socket.socket) -> MountRequest:
    """Server side (the plugin): the request of a connection."""
    line, _ = _read_line(conn, with_fd=False)
    return MountRequest.decode(line)


def send_mount(conn: socket.socket, fd: int, mountpoint: str = MOUNT_DIR) -> None:
    """Server side: the answer with the /dev/fuse descriptor attached (the caller closes its own copy)."""
    socket.send_fds(conn, [json.dumps({"ok": True, "mountpoint": mountpoint}).encode() + b"\n"], [fd])


def send_error(conn: socket.socket, error: str) -> None:
    conn.sendall(json.dumps({"ok": False, "error": error}).encode() + b"\n")


__all__ = [
    "MAX_LINE",
    "MOUNT_DIR",
    "SOCKET_NAME",
    "SUN_PATH_MAX",
    "MountRequest",
    "ProtocolError",
    "connect",
    "read_request",
    "request_mount",
    "send_error",
    "send_mount",
    "short_path",
]
