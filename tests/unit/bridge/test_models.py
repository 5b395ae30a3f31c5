from __future__ import annotations

import pytest
from lighthouse_bridge.models import AnnotationIn, EventIn, ShadowUpdateIn
from pydantic import ValidationError


def test_event_rejects_nul_and_lone_surrogates_anywhere() -> None:
    base = {"event_type": "custom", "aggregate_id": "a", "aggregate_type": "thing"}
    EventIn(**base, data={"k": ["v", {"n": 1}]})
    for bad in (
        {"data": {"k": "a\x00"}},
        {"metadata": {"\x00": 1}},
        {"aggregate_id": "a\ud800"},
        {"data": {"k": 2**70}},
    ):
        with pytest.raises(ValidationError):
            EventIn(**{**base, **bad})


def test_event_rejects_unknown_fields_and_bad_ids() -> None:
    base = {"event_type": "custom", "aggregate_id": "a", "aggregate_type": "thing"}
    with pytest.raises(ValidationError):
        EventIn(**base, sequence=3)
    with pytest.raises(ValidationError):
        EventIn(**base, event_id="has space")
    with pytest.raises(ValidationError):
        EventIn(**base, expected_version=-1)


def test_deep_json_is_rejected() -> None:
    deep: dict = {}
    cur = deep
    for _ in range(40):
        cur["x"] = {}
        cur = cur["x"]
    with pytest.raises(ValidationError):
        EventIn(event_type="custom", aggregate_id="a", aggregate_type="t", data=deep)


def test_shadow_update_operations_are_closed() -> None:
    with pytest.raises(ValidationError):
        ShadowUpdateIn(operation="chmod", path="a")


def test_annotation_end_line_not_before_line() -> None:
    with pytest.raises(ValidationError):
        AnnotationIn(path="a", line=5, end_line=4, message="m", author="x")
