"""The system calls the plugin makes: open /dev/fuse, mount it with `fd=N`, detach a mount, read mountinfo."""

from __future__ import annotations

import ctypes
import ctypes.util
import os

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MNT_DETACH = 0x2

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


def _check(res: int, what: str, path: str) -> None:
    if res != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}", path)


def fuse_options(fd: int, uid: int, gid: int) -> str:
    """The kernel's FUSE mount options. allow_other: the pod's other users (agents) read the mount;
    default_permissions: the kernel checks modes, as in the bridge's own mounts (pyfuse3.default_options)."""
    return f"fd={fd},rootmode=40000,user_id={uid},group_id={gid},allow_other,default_permissions"


def mount_fuse(target: str, uid: int, gid: int, readonly: bool, device: str = "/dev/fuse") -> int:
    """Opens the FUSE device and mounts it on `target` (nosuid, nodev; ro when asked). Returns the descriptor: the
    process it is handed to serves the mount, and the mount dies with the last copy of it."""
    fd = os.open(device, os.O_RDWR | os.O_CLOEXEC)
    flags = MS_NOSUID | MS_NODEV | (MS_RDONLY if readonly else 0)
    try:
        res = _libc.mount(
            b"lighthouse", os.fsencode(target), b"fuse.lighthouse", flags, fuse_options(fd, uid, gid).encode()
        )
        _check(res, "mount", target)
    except BaseException:
        os.close(fd)
        raise
    return fd


def detach(target: str) -> None:
    """umount2(MNT_DETACH): never blocks, whatever state the FUSE server of the mount is in."""
    _check(_libc.umount2(os.fsencode(target), MNT_DETACH), "umount", target)


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \\ooo.
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and len(field[i + 1 : i + 4]) == 3 and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mount_points(mountinfo: str = "/proc/self/mountinfo") -> list[tuple[str, str]]:
    """(mount point, filesystem type) of every mount this process sees. No stat() of any of them: a FUSE mount
    whose server hangs would hang the caller."""
    out = []
    with open(mountinfo) as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            out.append((_unescape(fields[4]), fields[sep + 1]))
    return out


def fuse_mounted_at(path: str, mountinfo: str = "/proc/self/mountinfo") -> bool:
    return any(p == path and t.startswith("fuse") for p, t in mount_points(mountinfo))
