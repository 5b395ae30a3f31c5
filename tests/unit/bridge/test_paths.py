from __future__ import annotations

import pytest
from lighthouse_bridge.api.problems import status_of
from lighthouse_bridge.errors import InvalidPath
from lighthouse_bridge.paths import validate_path, validate_prefix


@pytest.mark.parametrize("path", ["a", "src/app.py", "a/b/c.txt", ".hidden", "dir/.env", "ünïcode/файл.py", "a..b"])
def test_accepts_clean_relative_paths(path: str) -> None:
    assert validate_path(path) == path


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("", "empty"),
        ("/etc/passwd", "relative"),
        ("../x", "'..'"),
        ("a/../b", "'..'"),
        ("a/./b", "'.'"),
        ("a//b", "empty segment"),
        ("a/", "empty segment"),
        ("a\\b", "'/' separators"),
        ("a\x00b", "control character"),
        ("a\nb", "control character"),
        ("a\x7fb", "control character"),
        ("a\u2028b", "control character"),
        ("x" * 1025, "limit is 1024"),
        ("é" * 513, "limit is 1024"),  # 1026 bytes of UTF-8
    ],
)
def test_rejects_bad_paths(path: str, reason: str) -> None:
    with pytest.raises(InvalidPath) as exc:
        validate_path(path)
    assert reason in exc.value.detail
    assert status_of(exc.value) == 422


def test_length_limit_counts_bytes_and_is_configurable() -> None:
    assert validate_path("x" * 1024) == "x" * 1024
    with pytest.raises(InvalidPath):
        validate_path("x" * 33, max_bytes=32)


def test_prefix_allows_empty_and_trailing_slash_only() -> None:
    assert validate_prefix("") == ""
    assert validate_prefix("src/") == "src/"
    assert validate_prefix("src/ap") == "src/ap"
    with pytest.raises(InvalidPath):
        validate_prefix("../")
    with pytest.raises(InvalidPath):
        validate_prefix("/abs")
