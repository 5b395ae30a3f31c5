"""Agent tokens: HMAC-signed claims plus a registry row per token id (jti) in PostgreSQL.

The signature makes a token verifiable without a lookup table of secrets; the row makes it revocable, and because it
lives in PostgreSQL every replica sees a revocation at once. Format: ``lh1.<base64url(claims)>.<base64url(hmac)>``
with claims ``{"jti", "sub", "role", "exp", "iat"}``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

ROLES = ("builder", "expert", "viewer", "admin")
ENROLMENT = "enrolment"
PREFIX = "lh1"


class TokenError(Exception):
    """The token is malformed, forged, expired, revoked or unknown; the message says which, `reason` in a word (the
    metric label)."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Claims:
    jti: str
    agent_id: str
    role: str
    expires_at: float
    issued_at: float


def signing_key(token_secret: str | None, admin_token: str | None) -> bytes | None:
    """The HMAC key: the explicit secret, else one derived from the admin token; None disables agent tokens."""
    base = token_secret or admin_token
    if not base:
        return None
    return hmac.new(base.encode(), b"lighthouse-agent-token-v1", hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(key: bytes, claims: Claims) -> str:
    body = json.dumps(
        {
            "jti": claims.jti,
            "sub": claims.agent_id,
            "role": claims.role,
            "exp": int(claims.expires_at),
            "iat": int(claims.issued_at),
        },
        separators=(",", ":"),
        sort_keys=True,
    ).encode()
    payload = _b64(body)
    sig = _b64(hmac.new(key, f"{PREFIX}.{payload}".encode(), hashlib.sha256).digest())
    return f"{PREFIX}.{payload}.{sig}"


def verify_signature(key: bytes, token: str, now: float | None = None) -> Claims:
    """Check format, signature and expiry (no I/O). Revocation is checked by `check_registry`."""
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != PREFIX or len(token) > 2048:
        raise TokenError("malformed token", "malformed")
    expected = hmac.new(key, f"{PREFIX}.{parts[1]}".encode(), hashlib.sha256).digest()
    try:
        presented = _unb64(parts[2])
        doc = json.loads(_unb64(parts[1]))
    except (ValueError, UnicodeDecodeError):
        raise TokenError("malformed token", "malformed") from None
    if not hmac.compare_digest(expected, presented):
        raise TokenError("bad token signature", "bad_signature")
    try:
        claims = Claims(str(doc["jti"]), str(doc["sub"]), str(doc["role"]), float(doc["exp"]), float(doc["iat"]))
    except (KeyError, TypeError, ValueError):
        raise TokenError("malformed token claims", "malformed") from None
    if claims.expires_at <= (now if now is not None else time.time()):
        raise TokenError("token expired", "expired")
    return claims


async def check_registry(conn: asyncpg.Pool | asyncpg.Connection, claims: Claims) -> None:
    """The token must be registered, unrevoked and carry the registered role."""
    try:
        jti = uuid.UUID(claims.jti)
    except ValueError:
        raise TokenError("malformed token id", "malformed") from None
    row = await conn.fetchrow("SELECT role, agent_id, revoked_at FROM agent_tokens WHERE jti = $1", jti)
    if row is None:
        raise TokenError("unknown token", "unknown_token")
    if row["revoked_at"] is not None:
        raise TokenError("token revoked", "revoked")
    if row["role"] != claims.role or row["agent_id"] != claims.agent_id:
        raise TokenError("token does not match its registration", "mismatch")


def new_claims(agent_id: str, role: str, ttl_seconds: int, now: float | None = None) -> Claims:
    t = now if now is not None else time.time()
    return Claims(str(uuid.uuid4()), agent_id, role, t + ttl_seconds, t)


async def insert(conn: asyncpg.Connection, claims: Claims, issued_by: str, enrol_roles: list[str]) -> None:
    await conn.execute(
        "INSERT INTO agent_tokens (jti, agent_id, role, enrol_roles, issued_by, issued_at, expires_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7)",
        uuid.UUID(claims.jti),
        claims.agent_id,
        claims.role,
        enrol_roles,
        issued_by,
        datetime.fromtimestamp(claims.issued_at, UTC),
        datetime.fromtimestamp(claims.expires_at, UTC),
    )


async def enrol_roles(conn: asyncpg.Pool | asyncpg.Connection, jti: str) -> list[str]:
    """The roles an enrolment token may mint."""
    return list(await conn.fetchval("SELECT enrol_roles FROM agent_tokens WHERE jti = $1", uuid.UUID(jti)) or [])


async def expires_at(conn: asyncpg.Pool | asyncpg.Connection, jti: str) -> datetime | None:
    return await conn.fetchval("SELECT expires_at FROM agent_tokens WHERE jti = $1", uuid.UUID(jti))


async def registered(
    conn: asyncpg.Pool | asyncpg.Connection,
    agent_id: str | None,
    limit: int,
) -> list[asyncpg.Record]:
    """Registry rows (of one agent, or all), newest first."""
    return await conn.fetch(
        "SELECT * FROM agent_tokens WHERE $1::text IS NULL OR agent_id = $1 ORDER BY issued_at DESC LIMIT $2",
        agent_id,
        limit,
    )


async def revoke(conn: asyncpg.Connection, jti: uuid.UUID, by: str) -> asyncpg.Record | None:
    """Mark revoked (idempotent: the first revocation's time and author stay); None for an unknown token."""
    return await conn.fetchrow(
        "UPDATE agent_tokens SET revoked_at = coalesce(revoked_at, now()),"
        " revoked_by = coalesce(revoked_by, $2) WHERE jti = $1 RETURNING *",
        jti,
        by,
    )


def row_public(row: asyncpg.Record | dict[str, Any]) -> dict[str, Any]:
    return {
        "jti": str(row["jti"]),
        "agent_id": row["agent_id"],
        "role": row["role"],
        "enrol_roles": list(row["enrol_roles"]),
        "issued_by": row["issued_by"],
        "issued_at": row["issued_at"].isoformat(),
        "expires_at": row["expires_at"].isoformat(),
        "revoked_at": row["revoked_at"].isoformat() if row["revoked_at"] else None,
        "revoked_by": row["revoked_by"],
    }
