"""The bridge's errors, free of any web framework: the store, the agents' logic and the services raise these.

Each carries a stable `kind` (the problem type's last segment), a `title` and a detail message; keyword arguments
become extra fields of the answer. How a front end shows them is its own business: the HTTP API maps them to RFC 9457
problems with a status code in one place (api/problems.py).
"""

from __future__ import annotations

from typing import Any


class BridgeError(Exception):
    """A request the bridge refuses; the base class is a malformed request."""

    kind = "bad-request"
    title = "Bad request"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class InvalidInput(BridgeError):
    kind, title = "invalid-input", "Invalid input"


class InvalidPath(BridgeError):
    kind, title = "invalid-path", "Invalid path"


class NotFound(BridgeError):
    kind, title = "not-found", "Not found"


class Conflict(BridgeError):
    kind, title = "conflict", "Conflict"


class TooLarge(BridgeError):
    kind, title = "too-large", "Too large"


class Unauthorized(BridgeError):
    kind, title = "unauthorized", "Unauthorized"

    def __init__(self, detail: str, reason: str = "invalid", **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.reason = reason  # a short fixed word: the label of lighthouse_bridge_auth_failures_total


class Forbidden(BridgeError):
    kind, title = "forbidden", "Forbidden"

    def __init__(self, detail: str, reason: str = "denied", **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.reason = reason


class RateLimited(BridgeError):
    kind, title = "rate-limited", "Too many requests"


class StoreUnavailable(BridgeError):
    """PostgreSQL cannot be reached: nothing was acknowledged, the client may retry (with the same event_id)."""

    kind, title = "postgres-unavailable", "Event store unavailable"
