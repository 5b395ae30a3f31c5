"""Mount configuration, the mount status file and mount point housekeeping (no pyfuse3: `run` uses it too)."""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lighthouse_bridge.core import config

log = logging.getLogger(__name__)

DEFAULT_MOUNT_POINT = config.FuseSettings.model_fields["mount_point"].default
DEFAULT_STATUS_FILE = str(config.DEFAULT_STATUS_FILE)  # the bridge's LIGHTHOUSE_FUSE_STATUS_FILE default


@dataclass
class MountConfig:
    mountpoint: str = DEFAULT_MOUNT_POINT
    bridge_url: str = config.DEFAULT_BRIDGE_URL
    writable: bool = False
    status_file: str | None = None
    token: str | None = None
    cache_dir: str | None = None
    agent_id: str | None = None
    cache_bytes: int = 256 << 20
    prefetch_bytes: int = 128 << 20
    fd_socket: str | None = None  # fuse.mode csi: the node plugin mounts; this process serves /dev/fd/N

    @classmethod
    def from_settings(cls, settings: config.FuseSettings, **overrides: Any) -> MountConfig:
        cfg = cls(
            mountpoint=settings.mount_point,
            bridge_url=settings.url,
            writable=settings.fuse_writable,
            status_file=str(settings.fuse_status_file),
            token=settings.token_or_admin,
            cache_dir=settings.fuse_cache_dir,
            agent_id=settings.fuse_agent_id,
            cache_bytes=settings.fuse_cache_bytes,
            prefetch_bytes=settings.fuse_prefetch_bytes,
            fd_socket=settings.fuse_fd_socket,
        )
        for k, v in overrides.items():
            if v is not None:
                setattr(cfg, k, v)
        return cfg


def write_status(path: str | None, mounted: bool, mountpoint: str, error: str | None) -> None:
    """{"mounted", "mountpoint", "error"}: read by the API's /readyz and /status. Written atomically."""
    if not path:
        return
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"mounted": mounted, "mountpoint": mountpoint, "error": error}) + "\n")
        tmp.replace(target)
    except OSError as exc:  # the mount itself matters more than reporting it
        log.warning("Cannot write the FUSE status file path=%s error=%s", path, exc)


def fusermount_unmount(mountpoint: str, lazy: bool = True) -> bool:
    binary = shutil.which("fusermount3") or shutil.which("fusermount")
    cmd = [binary, "-u", "-z", mountpoint] if binary else ["umount", "-l", mountpoint]
    if not lazy:
        cmd = [c for c in cmd if c not in ("-z", "-l")]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        log.warning("Unmount failed mountpoint=%s command=%s stderr=%s", mountpoint, " ".join(cmd),
                    res.stderr.strip())
    return res.returncode == 0


def prepare_mountpoint(mountpoint: str) -> None:
    """Create the directory. A mount left by a crashed process fails with ENOTCONN: lazily unmount it.

    statvfs() is the probe because it always reaches the FUSE daemon; stat() may be answered from the kernel's
    attribute cache even when the daemon is gone.
    """
    try:
        os.makedirs(mountpoint, exist_ok=True)
        if not os.path.ismount(mountpoint):
            return
        os.statvfs(mountpoint)
    except OSError as exc:
        if exc.errno not in (errno.ENOTCONN, errno.ECONNABORTED, errno.EEXIST):
            raise
        log.warning("Recovering stale mount mountpoint=%s reason=%s", mountpoint, errno.errorcode[exc.errno])
        if not fusermount_unmount(mountpoint, lazy=True):
            raise RuntimeError(f"stale mount at {mountpoint} could not be unmounted") from exc
        log.info("Unmounted stale mount mountpoint=%s", mountpoint)
        return
    raise RuntimeError(f"{mountpoint} is already a mount point (another process serves it)")


def allow_other_permitted(fuse_conf: str = "/etc/fuse.conf") -> bool:
    """allow_other lets the pod's other users (agents) read the mount: root may always set it, others only when
    /etc/fuse.conf has user_allow_other (the bridge image enables it)."""
    if os.getuid() == 0:
        return True
    try:
        with open(fuse_conf) as f:
            return any(line.strip() == "user_allow_other" for line in f)
    except OSError:
        return False


def usable_status_file(path: str) -> str:
    """The status file must be writable by the FUSE process and readable by the API: when the default directory
    (/run/lighthouse) cannot be created, as for a non-root container without that volume, use the temp dir."""
    parent = Path(path).parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        if os.access(parent, os.W_OK):
            return path
    except OSError:
        pass
    fallback = str(Path(tempfile.gettempdir()) / "lighthouse-fuse-status.json")
    log.warning("FUSE status file directory is not writable path=%s using=%s", path, fallback)
    return fallback
