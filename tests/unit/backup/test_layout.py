from datetime import UTC, datetime, timedelta, timezone

import pytest
from lighthouse_bridge.backup.layout import Layout, backup_id, is_id, parse_id


def test_id_is_utc_timestamp_and_round_trips() -> None:
    when = datetime(2026, 1, 2, 4, 4, 5, 999, tzinfo=timezone(timedelta(hours=1)))
    bid = backup_id(when)
    assert bid == "20260102T030405Z"
    assert parse_id(bid) == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_ids_sort_like_times() -> None:
    times = [datetime(2026, m, d, h, tzinfo=UTC) for m, d, h in ((12, 31, 23), (1, 1, 0), (2, 10, 9))]
    assert sorted(backup_id(t) for t in times) == [backup_id(t) for t in sorted(times)]


def test_naive_time_is_rejected() -> None:
    with pytest.raises(ValueError, match="timezone"):
        backup_id(datetime(2026, 1, 1))


@pytest.mark.parametrize("bad", ["latest", "2026-01-02T03:04:05Z", "20260102T030405", "20261302T030405Z", ""])
def test_parse_id_rejects(bad: str) -> None:
    assert not is_id(bad)
    with pytest.raises(ValueError):
        parse_id(bad)


@pytest.mark.parametrize(
    ("prefix", "root"),
    [
        ("", "ns/bridge/"),
        ("backups", "backups/ns/bridge/"),
        ("/a/b/", "a/b/ns/bridge/"),
    ],
)
def test_root_layout(prefix: str, root: str) -> None:
    layout = Layout(prefix, "ns", "bridge")
    assert layout.root == root
    assert layout.key("20260102T030405Z", "manifest.json") == f"{root}20260102T030405Z/manifest.json"


def test_split_recognises_only_backup_objects() -> None:
    layout = Layout("p", "ns", "bridge")
    assert layout.split("p/ns/bridge/20260102T030405Z/database.dump") == ("20260102T030405Z", "database.dump")
    assert layout.split("p/ns/bridge2/20260102T030405Z/database.dump") is None  # another bridge
    assert layout.split("p/ns/bridge/notes.txt") is None
    assert layout.split("p/ns/bridge/20260102T030405Z/sub/x") is None


@pytest.mark.parametrize(("ns", "name"), [("", "b"), ("a/b", "b"), ("ns", ".."), ("ns", "-x")])
def test_unsafe_segments_are_rejected(ns: str, name: str) -> None:
    with pytest.raises(ValueError):
        Layout("p", ns, name)


def test_prefix_with_dotdot_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"\.\."):
        Layout("a/../b", "ns", "n")


def test_object_name_must_be_one_segment() -> None:
    with pytest.raises(ValueError):
        Layout("", "ns", "n").key("20260102T030405Z", "a/b")
