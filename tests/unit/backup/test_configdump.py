import base64
import hashlib
import json
from pathlib import Path

import pytest
from lighthouse_bridge.backup.configdump import REDACTED, is_secret, redact_url, snapshot
from lighthouse_bridge.backup.errors import ConfigError


def test_only_lighthouse_settings_with_secrets_redacted(tmp_path: Path) -> None:
    env = {
        "LIGHTHOUSE_PORT": "8765",
        "LIGHTHOUSE_ADMIN_TOKEN": "s3cr3t",
        "LIGHTHOUSE_TOKEN_SECRET": "hmac",
        "LIGHTHOUSE_DATABASE_URL": "postgresql://user:pa%40ss@db:5432/x",
        "LIGHTHOUSE_REDIS_URL": "redis://:pw@redis:6379/0",
        "LIGHTHOUSE_S3_ENDPOINT": "http://s3:9000",
        "AWS_SECRET_ACCESS_KEY": "aws",
        "HOME": "/root",
    }
    doc = json.loads(snapshot(env, []))
    assert set(doc["env"]) == {k for k in env if k.startswith("LIGHTHOUSE_")}
    assert doc["env"]["LIGHTHOUSE_PORT"] == "8765"
    assert doc["env"]["LIGHTHOUSE_ADMIN_TOKEN"] == REDACTED
    assert doc["env"]["LIGHTHOUSE_TOKEN_SECRET"] == REDACTED
    assert doc["env"]["LIGHTHOUSE_DATABASE_URL"] == f"postgresql://user:{REDACTED}@db:5432/x"
    assert doc["env"]["LIGHTHOUSE_REDIS_URL"] == f"redis://:{REDACTED}@redis:6379/0"
    assert doc["env"]["LIGHTHOUSE_S3_ENDPOINT"] == "http://s3:9000"
    raw = json.dumps(doc)
    for secret in ("s3cr3t", "hmac", "pa%40ss", "pw@", "aws"):
        assert secret not in raw
    assert doc["redacted"] == ["LIGHTHOUSE_ADMIN_TOKEN", "LIGHTHOUSE_TOKEN_SECRET"]


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("LIGHTHOUSE_ADMIN_TOKEN", True),
        ("LIGHTHOUSE_API_KEY", True),
        ("LIGHTHOUSE_KEY", True),
        ("LIGHTHOUSE_DB_PASSWORD", True),
        ("LIGHTHOUSE_PORT", False),
        ("LIGHTHOUSE_CACHE_TTL_SECONDS", False),
        ("LIGHTHOUSE_KEYSPACE", False),
    ],
)
def test_is_secret(name: str, secret: bool) -> None:
    assert is_secret(name) is secret


def test_redact_url_leaves_plain_values() -> None:
    assert redact_url("http://host:1/x") == "http://host:1/x"
    assert redact_url("not a url") == "not a url"


def test_files_are_stored_text_or_base64(tmp_path: Path) -> None:
    text = tmp_path / "policy.yaml"
    text.write_text("rules: []\n")
    blob = tmp_path / "b.bin"
    blob.write_bytes(b"\xff\x00\x01")
    doc = json.loads(snapshot({}, [text, blob]))
    assert doc["files"][str(text)] == {
        "encoding": "utf-8",
        "content": "rules: []\n",
        "size": 10,
        "sha256": hashlib.sha256(b"rules: []\n").hexdigest(),
    }
    assert base64.b64decode(doc["files"][str(blob)]["content"]) == b"\xff\x00\x01"


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read configuration file"):
        snapshot({}, [tmp_path / "nope.yaml"])


def test_cache_prefix_is_matched_literally() -> None:
    from lighthouse_bridge.backup.cachedump import glob_escape

    assert glob_escape("lighthouse:") == "lighthouse:"
    assert glob_escape("a*b?[c]\\") == "a\\*b\\?\\[c\\]\\\\"
