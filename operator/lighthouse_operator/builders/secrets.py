"""Generated Secrets: PostgreSQL credentials, Redis password, bridge admin token.

The random values are inputs: the applier generates them once (create-only, never re-applied), so a reconcile can never
rotate a password by accident, and a Secret the user created under the same name is used as it is.
"""

from __future__ import annotations

import secrets as _random
from collections.abc import Callable

from .. import naming
from ..models import LighthouseBridge
from .common import Manifest, meta

POSTGRES_USER = "lighthouse"
POSTGRES_DB = "lighthouse"


def new_password() -> str:
    # Hex keeps the value safe inside URLs, shells and YAML without quoting.
    return _random.token_hex(24)


def _secret(lhb: LighthouseBridge, name: str, component: str, data: dict[str, str]) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta(lhb, name, component, {naming.A_GENERATED: "true"}),
        "type": "Opaque",
        "stringData": data,
    }


def postgres_credentials(lhb: LighthouseBridge, password: str) -> Manifest:
    n = naming.Names(lhb.name)
    host = f"{n.postgres}.{lhb.namespace}.svc"
    url = f"postgresql://{POSTGRES_USER}:{password}@{host}:{naming.POSTGRES_PORT}/{POSTGRES_DB}"
    data = {
        "username": POSTGRES_USER,
        "password": password,
        "database": POSTGRES_DB,
        "host": host,
        "port": str(naming.POSTGRES_PORT),
        "url": url,
    }
    return _secret(lhb, n.postgres_secret, naming.POSTGRES, data)


def redis_credentials(lhb: LighthouseBridge, password: str) -> Manifest:
    n = naming.Names(lhb.name)
    host = f"{n.redis}.{lhb.namespace}.svc"
    url = f"redis://:{password}@{host}:{naming.REDIS_PORT}/0"
    return _secret(lhb, n.redis_secret, naming.REDIS, {"password": password, "url": url})


def admin_token(lhb: LighthouseBridge, token: str) -> Manifest:
    return _secret(lhb, naming.Names(lhb.name).admin_secret, naming.BRIDGE, {"token": token})


def generated_secrets(lhb: LighthouseBridge, generate: Callable[[], str] = new_password) -> list[Manifest]:
    """The Secrets this spec needs generated (external stores bring their own)."""
    out = []
    if lhb.spec.postgres.mode == "managed":
        out.append(postgres_credentials(lhb, generate()))
    if lhb.spec.redis.mode == "managed":
        out.append(redis_credentials(lhb, generate()))
    out.append(admin_token(lhb, generate()))
    return out
