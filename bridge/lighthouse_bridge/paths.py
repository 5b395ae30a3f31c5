"""Project-relative path validation: the only gate between client strings and the shadow tree."""

from __future__ import annotations

import unicodedata

from lighthouse_bridge.errors import InvalidPath

DEFAULT_MAX_BYTES = 1024


def validate_path(path: str, max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    """Return the path if it is a clean relative POSIX path, else raise InvalidPath.

    Rejected: empty, absolute, `..` or `.` segments, empty segments (`a//b`, trailing `/`), backslashes,
    NUL/control characters (C0, DEL, C1 and Unicode line/paragraph separators), and more than max_bytes of UTF-8.
    """
    if not isinstance(path, str) or path == "":
        raise InvalidPath("path is empty")
    try:
        encoded = path.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidPath("path is not valid UTF-8") from None
    if len(encoded) > max_bytes:
        raise InvalidPath(f"path is {len(encoded)} bytes; the limit is {max_bytes}")
    for ch in path:
        if ord(ch) < 0x20 or ord(ch) == 0x7F or 0x80 <= ord(ch) < 0xA0 or unicodedata.category(ch) in ("Zl", "Zp"):
            raise InvalidPath(f"path contains a control character (U+{ord(ch):04X})")
    if path.startswith("/"):
        raise InvalidPath("path must be relative (no leading '/')")
    if "\\" in path:
        raise InvalidPath("path must use '/' separators")
    for segment in path.split("/"):
        if segment == "":
            raise InvalidPath("path has an empty segment")
        if segment in (".", ".."):
            raise InvalidPath(f"path segment {segment!r} is not allowed")
    return path


def validate_prefix(prefix: str, max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    """A listing prefix: empty, or a path optionally ending in '/'."""
    if prefix == "":
        return prefix
    validate_path(prefix[:-1] if prefix.endswith("/") else prefix, max_bytes)
    return prefix
