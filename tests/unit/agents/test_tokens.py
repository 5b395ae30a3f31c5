"""Token signing and verification (no I/O): format, signature, expiry."""

from __future__ import annotations

import time

import pytest
from lighthouse_bridge.agents import tokens

KEY = tokens.signing_key(None, "admin")
assert KEY is not None


def test_roundtrip() -> None:
    c = tokens.new_claims("builder-1", "builder", 3600)
    t = tokens.sign(KEY, c)
    assert t.startswith("lh1.")
    got = tokens.verify_signature(KEY, t)
    assert (got.jti, got.agent_id, got.role) == (c.jti, "builder-1", "builder")


def test_expired() -> None:
    c = tokens.new_claims("a", "viewer", 60, now=time.time() - 120)
    with pytest.raises(tokens.TokenError, match="expired"):
        tokens.verify_signature(KEY, tokens.sign(KEY, c))


def test_tampered_claims_and_foreign_key() -> None:
    c = tokens.new_claims("a", "viewer", 60)
    t = tokens.sign(KEY, c)
    forged = tokens.sign(KEY, tokens.Claims(c.jti, "a", "admin", c.expires_at, c.issued_at))
    mixed = ".".join([t.split(".")[0], forged.split(".")[1], t.split(".")[2]])
    with pytest.raises(tokens.TokenError, match="signature"):
        tokens.verify_signature(KEY, mixed)
    other = tokens.signing_key(None, "another-admin")
    assert other is not None
    with pytest.raises(tokens.TokenError, match="signature"):
        tokens.verify_signature(other, t)


@pytest.mark.parametrize("bad", ["", "lh1", "lh1.a", "lh2.a.b", "lh1.!!.??", "x" * 3000])
def test_malformed(bad: str) -> None:
    with pytest.raises(tokens.TokenError):
        tokens.verify_signature(KEY, bad)


def test_key_derivation() -> None:
    assert tokens.signing_key(None, None) is None
    assert tokens.signing_key("explicit", "admin") == tokens.signing_key("explicit", None)
    assert tokens.signing_key(None, "admin") != tokens.signing_key(None, "admin2")
