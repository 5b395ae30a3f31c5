from datetime import UTC, datetime, timedelta

import pytest
from lighthouse_bridge.backup.retention import BackupRef, Policy, parse_duration, select_for_deletion

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def ref(days_ago: float, complete: bool = True) -> BackupRef:
    t = NOW - timedelta(days=days_ago)
    return BackupRef(t.strftime("%Y%m%dT%H%M%SZ"), t, complete)


def deleted(backups: list[BackupRef], policy: Policy) -> list[float]:
    return [round((NOW - b.time) / timedelta(days=1), 2) for b in select_for_deletion(backups, policy, NOW)]


def test_keep_last_keeps_the_newest_n() -> None:
    backups = [ref(d) for d in (0, 1, 2, 3, 4)]
    assert deleted(backups, Policy(keep_last=2)) == [4, 3, 2]


def test_max_age_deletes_older_ones() -> None:
    backups = [ref(d) for d in (0, 1, 6.9, 7.1, 30)]
    assert deleted(backups, Policy(max_age=timedelta(days=7))) == [30, 7.1]


def test_either_limit_deletes() -> None:
    backups = [ref(d) for d in (0, 1, 2, 10)]
    assert deleted(backups, Policy(keep_last=3, max_age=timedelta(days=5))) == [10]
    assert deleted(backups, Policy(keep_last=2, max_age=timedelta(days=30))) == [10, 2]


def test_newest_complete_backup_survives_even_when_too_old() -> None:
    backups = [ref(40), ref(50)]
    assert deleted(backups, Policy(keep_last=1, max_age=timedelta(days=1))) == [50]


def test_incomplete_backups_older_than_newest_complete_are_deleted_newer_are_kept() -> None:
    backups = [ref(0.5, complete=False), ref(1), ref(2, complete=False), ref(3)]
    # 0.5 may still be running (newer than the newest complete one): left alone.
    assert deleted(backups, Policy(keep_last=5)) == [2]


def test_without_complete_backup_nothing_is_deleted() -> None:
    backups = [ref(1, complete=False), ref(100, complete=False)]
    assert deleted(backups, Policy(keep_last=1, max_age=timedelta(days=1))) == []


def test_no_policy_deletes_nothing() -> None:
    assert deleted([ref(d) for d in (0, 100, 200)], Policy()) == []
    assert not Policy().enabled


def test_policy_validation() -> None:
    with pytest.raises(ValueError):
        Policy(keep_last=0)
    with pytest.raises(ValueError):
        Policy(max_age=timedelta(0))


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30d", 30 * 86400),
        ("12h", 43200),
        ("1w2d", 9 * 86400),
        ("90m", 5400),
        ("3600", 3600),
        (" 2D ", 172800),
    ],
)
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("bad", ["", "d", "3x", "1d 2h", "-1d", "1.5d"])
def test_parse_duration_rejects(bad: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(bad)
