"""Which requests the latency histogram measures: request/response routes, not long-polls or streams."""

from __future__ import annotations

import pytest
from lighthouse_bridge.metrics import is_long_request


@pytest.mark.parametrize(
    ("route", "query", "long"),
    [
        ("/events/stream", b"", True),
        ("/events/stream", b"from_position=3", True),
        ("/escalations/{escalation_id}", b"wait=25", True),
        ("/escalations/{escalation_id}", b"wait=0.5&x=1", True),
        ("/escalations/{escalation_id}", b"", False),
        ("/escalations/{escalation_id}", b"wait=0", False),
        ("/escalations/{escalation_id}", b"wait=soon", False),  # a 422, answered at once
        ("/elicitation/{elicitation_id}", b"wait=20", True),
        ("/elicitation/{elicitation_id}", b"", False),
        ("/hooks/claude-code", b"", True),
        ("/mcp", b"", True),
        ("/validate", b"wait=25", False),
        ("/readyz", b"", False),
        ("unmatched", b"", False),
    ],
)
def test_long_requests(route: str, query: bytes, long: bool) -> None:
    assert is_long_request(route, query) is long
