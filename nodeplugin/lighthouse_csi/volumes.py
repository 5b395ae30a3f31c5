"""Published volumes: each is a directory (the CSI target path, bind-mounted into the pod) with the socket of
lighthouse_fusefd and an empty mount directory. A thread per volume answers the pod's FUSE process: every request
gets a fresh mount (replacing the one an earlier process of the pod left behind, dead or not) and its descriptor.

State: one JSON file per volume under the state directory, so that a restarted plugin listens again on the sockets
of the volumes it published. The mounts themselves do not depend on the plugin: the pod's FUSE process holds their
descriptors, so a plugin restart leaves them serving.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from lighthouse_fusefd import (
    MOUNT_DIR,
    SOCKET_NAME,
    ProtocolError,
    read_request,
    send_error,
    send_mount,
    short_path,
)

from . import kernel

log = logging.getLogger(__name__)

ACCEPT_POLL = 0.5  # seconds: how soon a listener notices that its volume was unpublished
REQUEST_TIMEOUT = 10.0


@dataclass(frozen=True)
class Volume:
    volume_id: str
    target: str
    uid: int
    gid: int
    readonly: bool  # the pod mounts the volume read-only: every mount is ro, whatever the FUSE process asks
    pod: str = ""  # namespace/name, for logs

    @property
    def socket_path(self) -> str:
        return os.path.join(self.target, SOCKET_NAME)

    @property
    def mount_dir(self) -> str:
        return os.path.join(self.target, MOUNT_DIR)


@contextlib.contextmanager
def _dir_fd(path: str) -> Iterator[int]:
    fd = os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield fd
    finally:
        os.close(fd)


def listen(vol: Volume) -> socket.socket:
    """The volume's socket, owned by the pod's user. Bound through /proc/self/fd: kubelet target paths
    (/var/lib/kubelet/pods/<uid>/volumes/kubernetes.io~csi/<name>/mount/...) exceed the 107 bytes of sun_path."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        with _dir_fd(vol.target) as dfd:
            short = short_path(dfd, SOCKET_NAME)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(short)
            sock.bind(short)
            os.chown(short, vol.uid, vol.gid)
            os.chmod(short, 0o660)
        sock.listen(4)
        sock.settimeout(ACCEPT_POLL)
    except BaseException:
        sock.close()
        raise
    return sock


class Volumes:
    """The published volumes of this node, their listeners and their state files."""

    def __init__(self, state_dir: str, mount: Callable[[str, int, int, bool], int] = kernel.mount_fuse):
        self.state_dir = Path(state_dir)
        self.mount = mount
        self._lock = threading.Lock()
        self._listeners: dict[str, tuple[threading.Event, threading.Thread]] = {}
        self._volume_locks: dict[str, threading.Lock] = {}
        self.mounts_served = 0

    def _state_file(self, volume_id: str) -> Path:
        return self.state_dir / (hashlib.sha256(volume_id.encode()).hexdigest()[:32] + ".json")

    def published(self) -> list[Volume]:
        out = []
        for f in sorted(self.state_dir.glob("*.json")):
            try:
                out.append(Volume(**json.loads(f.read_text())))
            except (OSError, ValueError, TypeError) as exc:
                log.warning("Ignoring unreadable volume state file=%s error=%s", f, exc)
        return out

    def get(self, volume_id: str) -> Volume | None:
        f = self._state_file(volume_id)
        try:
            return Volume(**json.loads(f.read_text()))
        except FileNotFoundError:
            return None

    def publish(self, vol: Volume) -> bool:
        """Idempotent. Returns False when the volume is published at another target (the caller refuses)."""
        with self._lock:
            old = self.get(vol.volume_id)
            if old is not None and old.target != vol.target:
                return False
            os.makedirs(vol.target, mode=0o755, exist_ok=True)
            os.chmod(vol.target, 0o755)
            with contextlib.suppress(FileExistsError):
                os.mkdir(vol.mount_dir, 0o755)
            self.state_dir.mkdir(parents=True, exist_ok=True)
            tmp = self._state_file(vol.volume_id).with_suffix(".tmp")
            tmp.write_text(json.dumps(asdict(vol)))
            tmp.replace(self._state_file(vol.volume_id))
            if vol.volume_id not in self._listeners:
                self._start(vol)
        log.info(
            "Published volume volume_id=%s pod=%s target=%s uid=%d gid=%d readonly=%s",
            vol.volume_id,
            vol.pod,
            vol.target,
            vol.uid,
            vol.gid,
            vol.readonly,
        )
        return True

    def _start(self, vol: Volume) -> None:
        sock = listen(vol)
        stop = threading.Event()
        t = threading.Thread(
            target=self._serve, args=(vol, sock, stop), name=f"volume-{vol.volume_id[:12]}", daemon=True
        )
        self._listeners[vol.volume_id] = (stop, t)
        self._volume_locks.setdefault(vol.volume_id, threading.Lock())
        t.start()

    def recover(self) -> int:
        """After a restart: listen again on every volume still published; forget those whose target is gone."""
        n = 0
        for vol in self.published():
            if not os.path.isdir(vol.target):
                log.info("Forgetting volume whose target is gone volume_id=%s target=%s", vol.volume_id, vol.target)
                self._state_file(vol.volume_id).unlink(missing_ok=True)
                continue
            with self._lock:
                if vol.volume_id not in self._listeners:
                    self._start(vol)
            mounted = kernel.fuse_mounted_at(vol.mount_dir)
            log.info(
                "Recovered volume volume_id=%s pod=%s target=%s mounted=%s", vol.volume_id, vol.pod, vol.target, mounted
            )
            n += 1
        return n

    def unpublish(self, volume_id: str, target: str) -> None:
        """Idempotent: stops the listener, detaches the mount, removes what publish created (the target too)."""
        with self._lock:
            vol = self.get(volume_id)
            entry = self._listeners.pop(volume_id, None)
        if entry:
            entry[0].set()
            entry[1].join(timeout=ACCEPT_POLL * 4)
        if vol is not None and vol.target != target:
            log.warning(
                "Unpublish target differs from the published one volume_id=%s published=%s asked=%s",
                volume_id,
                vol.target,
                target,
            )
        mount_dir = os.path.join(target, MOUNT_DIR)
        if kernel.fuse_mounted_at(mount_dir):
            kernel.detach(mount_dir)
            log.info("Detached FUSE mount volume_id=%s mountpoint=%s", volume_id, mount_dir)
        for path, remove in ((os.path.join(target, SOCKET_NAME), os.unlink), (mount_dir, os.rmdir), (target, os.rmdir)):
            try:
                remove(path)
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning("Cannot remove path=%s error=%s", path, exc)
        self._state_file(volume_id).unlink(missing_ok=True)
        log.info("Unpublished volume volume_id=%s target=%s", volume_id, target)

    def stop(self) -> None:
        """Stops the listeners (the plugin exits); published volumes, their sockets and mounts stay."""
        with self._lock:
            entries = list(self._listeners.values())
            self._listeners.clear()
        for stop, _ in entries:
            stop.set()
        for _, t in entries:
            t.join(timeout=ACCEPT_POLL * 4)

    def _serve(self, vol: Volume, sock: socket.socket, stop: threading.Event) -> None:
        with sock:
            while not stop.is_set():
                try:
                    conn, _ = sock.accept()
                except TimeoutError:
                    continue
                except OSError as exc:
                    log.warning("Listener failed volume_id=%s error=%s", vol.volume_id, exc)
                    return
                with conn:
                    self._answer(vol, conn)

    def _answer(self, vol: Volume, conn: socket.socket) -> None:
        conn.settimeout(REQUEST_TIMEOUT)
        try:
            req = read_request(conn)
        except (OSError, ProtocolError) as exc:
            log.warning("Bad request volume_id=%s pod=%s error=%s", vol.volume_id, vol.pod, exc)
            with contextlib.suppress(OSError):
                send_error(conn, str(exc))
            return
        readonly = req.readonly or vol.readonly
        with self._volume_locks[vol.volume_id]:
            try:
                replaced = kernel.fuse_mounted_at(vol.mount_dir)
                if replaced:
                    # Left by an earlier FUSE process of the pod (dead: ENOTCONN; or alive, and being replaced).
                    kernel.detach(vol.mount_dir)
                fd = self.mount(vol.mount_dir, vol.uid, vol.gid, readonly)
            except OSError as exc:
                log.error(
                    "Mount failed volume_id=%s pod=%s mountpoint=%s error=%s",
                    vol.volume_id,
                    vol.pod,
                    vol.mount_dir,
                    exc,
                )
                with contextlib.suppress(OSError):
                    send_error(conn, f"mount failed on the node: {exc}")
                return
            try:
                send_mount(conn, fd)
                self.mounts_served += 1
                log.info(
                    "Mounted FUSE for the pod volume_id=%s pod=%s mountpoint=%s readonly=%s replaced=%s",
                    vol.volume_id,
                    vol.pod,
                    vol.mount_dir,
                    readonly,
                    replaced,
                )
            except OSError as exc:
                # Nobody will serve this mount: detach it rather than leave a dead one in the pod.
                log.warning("Could not hand over the descriptor volume_id=%s error=%s", vol.volume_id, exc)
                with contextlib.suppress(OSError):
                    kernel.detach(vol.mount_dir)
            finally:
                os.close(fd)
