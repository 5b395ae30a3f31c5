"""Framework-free errors become HTTP problems in one place (api/problems.py)."""

from __future__ import annotations

import json

import pytest
from lighthouse_bridge import errors
from lighthouse_bridge.api import problems
from lighthouse_bridge.store import db


def _subclasses(cls: type) -> set[type]:
    return {cls} | {s for c in cls.__subclasses__() for s in _subclasses(c)}


@pytest.mark.parametrize("cls", sorted(_subclasses(errors.BridgeError), key=lambda c: c.__name__))
def test_every_error_has_a_status_and_a_problem_body(cls: type[errors.BridgeError]) -> None:
    exc = cls("what went wrong", hint=1)
    assert cls in problems.STATUS  # a new error type must be mapped here, not fall back to its parent's status
    resp = problems.error_response(exc)
    body = json.loads(bytes(resp.body))
    assert resp.status_code == problems.STATUS[cls] == body["status"]
    assert body["type"] == problems.TYPE_BASE + cls.kind and body["title"] == cls.title
    assert body["detail"] == "what went wrong" and body["hint"] == 1
    assert resp.media_type == problems.PROBLEM_JSON


def test_connection_failures_translate_once_to_503_with_retry_advice() -> None:
    assert db.unavailable(ValueError("bad input"), "op") is None
    exc = db.unavailable(ConnectionRefusedError("down"), "append", "retry with the same event_id(s)", event_ids=["e"])
    assert isinstance(exc, errors.StoreUnavailable)
    assert exc.detail.startswith("PostgreSQL unavailable during append; retry with the same event_id(s): ")
    resp = problems.error_response(exc)
    assert resp.status_code == 503 and resp.headers["Retry-After"] == "1"
    assert json.loads(bytes(resp.body))["event_ids"] == ["e"]


async def test_guard_passes_other_errors_through() -> None:
    async def fail(exc: Exception) -> None:
        raise exc

    with pytest.raises(errors.StoreUnavailable):
        await db.guard("query", fail(TimeoutError()))
    with pytest.raises(errors.NotFound):
        await db.guard("query", fail(errors.NotFound("x")))


def test_errors_and_services_import_no_web_framework() -> None:
    """The same check import-linter makes, from the other side: a fresh interpreter loads the services without
    FastAPI or Starlette."""
    import subprocess
    import sys

    code = (
        "import sys, lighthouse_bridge.services.shadow, lighthouse_bridge.services.validation; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('fastapi', 'starlette')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"
