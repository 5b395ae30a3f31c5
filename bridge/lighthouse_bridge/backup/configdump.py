"""The bridge's configuration as a JSON document: LIGHTHOUSE_* settings (secrets redacted) and named files."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from .errors import ConfigError

MAX_FILE = 16 * 1024 * 1024
REDACTED = "<redacted>"
_SECRET = re.compile(r"(TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|PRIVATE|(^|_)KEY($|_)|AUTH)", re.IGNORECASE)


def is_secret(name: str) -> bool:
    return bool(_SECRET.search(name))


def redact_url(value: str) -> str:
    """Drops the password of ``scheme://user:password@host`` URLs; other values pass unchanged."""
    try:
        parts = urlsplit(value)
    except ValueError:
        return value
    if parts.scheme and parts.password is not None:
        host = parts.netloc.rsplit("@", 1)[-1]
        user = parts.username or ""
        return urlunsplit((parts.scheme, f"{user}:{REDACTED}@{host}", parts.path, parts.query, parts.fragment))
    return value


def snapshot(environ: Mapping[str, str], files: list[Path]) -> bytes:
    env: dict[str, str] = {}
    redacted: list[str] = []
    for name in sorted(environ):
        if not name.startswith("LIGHTHOUSE_"):
            continue
        if is_secret(name):
            env[name] = REDACTED
            redacted.append(name)
        else:
            env[name] = redact_url(environ[name])
    stored: dict[str, dict[str, object]] = {}
    for path in files:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read configuration file {path}: {exc.strerror or exc}") from None
        if len(data) > MAX_FILE:
            raise ConfigError(f"configuration file {path} is larger than {MAX_FILE} bytes")
        try:
            content, encoding = data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            content, encoding = base64.b64encode(data).decode(), "base64"
        stored[str(path)] = {
            "encoding": encoding,
            "content": content,
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        }
    doc = {"env": env, "redacted": redacted, "files": stored}
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()
