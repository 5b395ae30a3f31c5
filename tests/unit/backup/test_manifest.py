import json

import pytest
from lighthouse_bridge.backup.manifest import DatabaseStats, Manifest, ManifestError, ObjectEntry

SHA = "a" * 64


def manifest(**over: object) -> Manifest:
    base: dict[str, object] = dict(
        id="20260102T030405Z",
        namespace="ns",
        name="b",
        started_at="2026-01-02T03:04:05+00:00",
        completed_at="2026-01-02T03:04:09+00:00",
        duration_seconds=4.0,
        tool_version="0.1.0",
        pg_dump_version="15.18",
        server_version="15.18",
        database=DatabaseStats(name="db", high_water=42, tables={"public.events": 42, "public.blobs": 3}),
        objects=(
            ObjectEntry("database.dump", "database", 100, SHA),
            ObjectEntry("config.json", "config", 10, "b" * 64, "application/json"),
            ObjectEntry("cache-redis.jsonl", "cache", 5, "c" * 64, label="cache"),
        ),
    )
    base.update(over)
    return Manifest(**base)  # type: ignore[arg-type]


def test_json_round_trip_is_lossless() -> None:
    m = manifest()
    again = Manifest.from_json(m.to_json())
    assert again == m
    assert again.database_object.name == "database.dump"
    assert again.total_size == 115
    assert again.database.total_rows == 45


def test_json_has_the_documented_fields() -> None:
    body = json.loads(manifest().to_json())
    assert body["format"] == "lighthouse-backup/v1"
    assert body["database"]["high_water"] == 42
    assert {o["name"]: (o["size"], o["sha256"]) for o in body["objects"]}["database.dump"] == (100, SHA)
    assert {"pg_dump_version", "server_version", "tool_version", "duration_seconds"} <= body.keys()


@pytest.mark.parametrize("raw", [b"not json", b"[]", b'{"id": "x"}', b"\xff\xfe"])
def test_malformed_manifest_is_a_clear_error(raw: bytes) -> None:
    with pytest.raises(ManifestError):
        Manifest.from_json(raw)


def test_other_format_is_refused() -> None:
    body = json.loads(manifest().to_json())
    body["format"] = "lighthouse-backup/v9"
    with pytest.raises(ManifestError, match="unsupported manifest format"):
        Manifest.from_json(json.dumps(body).encode())


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (dict(name="x", kind="database", size=1, sha256="A" * 64), "sha256"),
        (dict(name="x", kind="database", size=-1, sha256=SHA), "size"),
        (dict(name="a/b", kind="database", size=1, sha256=SHA), "single path segment"),
        (dict(name="x", kind="logs", size=1, sha256=SHA), "unknown kind"),
    ],
)
def test_object_entry_validation(entry: dict[str, object], message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        ObjectEntry(**entry)  # type: ignore[arg-type]


def test_exactly_one_database_object() -> None:
    with pytest.raises(ManifestError, match="exactly one database"):
        manifest(objects=(ObjectEntry("config.json", "config", 1, SHA),))
    with pytest.raises(ManifestError, match="duplicate"):
        manifest(objects=(ObjectEntry("d", "database", 1, SHA), ObjectEntry("d", "config", 1, SHA)))
