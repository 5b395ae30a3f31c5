from __future__ import annotations

from lighthouse_bridge.anchoring import make_anchor, resolve, split_lines

SOURCE = """import os

def handler(request):
    password = "hunter2hunter2"
    return run(request)

def other():
    return 1
""".splitlines()


def test_unchanged_text_resolves_exactly() -> None:
    a = make_anchor(SOURCE, 4, 4)
    assert resolve(SOURCE, a, 4) == (4, "exact")


def test_annotation_follows_lines_inserted_above() -> None:
    a = make_anchor(SOURCE, 4, 5)
    edited = ["# header", "# more header", *SOURCE]
    assert resolve(edited, a, 4) == (6, "moved")


def test_annotation_follows_lines_removed_above() -> None:
    a = make_anchor(SOURCE, 4, 4)
    edited = SOURCE[2:]
    assert resolve(edited, a, 4) == (2, "moved")


def test_context_breaks_ties_between_identical_lines() -> None:
    lines = ["a", "x = 1", "b", "c", "x = 1", "d"]
    anchor = make_anchor(lines, 5, 5)  # the second "x = 1", between c and d
    # Insert lines at the top: both copies move; context picks the right one even though another is nearer.
    edited = ["new", "new", "new", *lines]
    assert resolve(edited, anchor, 5) == (8, "moved")


def test_deleted_text_is_stale_and_keeps_its_line() -> None:
    a = make_anchor(SOURCE, 4, 4)
    edited = [line for line in SOURCE if "password" not in line]
    assert resolve(edited, a, 4) == (4, "stale")


def test_trailing_whitespace_does_not_detach() -> None:
    a = make_anchor(SOURCE, 4, 4)
    edited = [line + "   " for line in SOURCE]
    assert resolve(edited, a, 4) == (4, "exact")


def test_split_lines_tolerates_invalid_utf8() -> None:
    assert split_lines(b"ok\n\xff\xfe\n") == ["ok", "\ufffd\ufffd"]
