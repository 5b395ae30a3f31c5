"""Schemathesis against the agents routes of a live bridge *with* authentication on (admin token): no 5xx, every
status and body as documented. (The bridge's own schemathesis run covers every route with auth off.)"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.integration.agents.conftest import ADMIN_TOKEN
from tests.integration.bridge.support import bridges

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
AGENT_PATHS = (
    r"^/(validate|approve|pending|escalations/.*|session/.*|tokens.*|expert/.*|experts|tasks/.*|audit"
    r"|elicitation/.*|task/dispatch|collaboration/.*|hooks/claude-code|shadow/annotate|status)$"
)


def test_schemathesis_on_agents_routes_with_auth(tmp_path: Path, bridge_env: dict[str, str]) -> None:
    env = {
        **bridge_env,
        "LIGHTHOUSE_ADMIN_TOKEN": ADMIN_TOKEN,
        "LIGHTHOUSE_LOG_LEVEL": "warning",
        "LIGHTHOUSE_RATE_LIMIT_PER_MINUTE": "0",
        "LIGHTHOUSE_HTTP_HOOK_WAIT": "0.2",
    }
    with bridges(tmp_path, env) as (b,):
        cmd = [
            str(Path(sys.executable).with_name("schemathesis")),
            "run",
            f"{b.url}/openapi.json",
            "-H",
            f"Authorization: Bearer {ADMIN_TOKEN}",
            "--include-path-regex",
            AGENT_PATHS,
            "--checks",
            CHECKS,
            "--max-examples",
            "40",
            "--seed",
            "20261129",
            "--workers",
            "2",
            "--no-color",
            "--request-timeout",
            "30",
            "--max-failures",
            "20",
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=tmp_path)
        out = proc.stdout + proc.stderr
        m = re.search(r"(\d+) generated, (\d+) passed", out)
        assert proc.returncode == 0 and m is not None, out[-6000:]
        generated, passed = int(m.group(1)), int(m.group(2))
        assert generated >= 300 and passed == generated, out[-4000:]
        assert "Traceback" not in b.log_path.read_text()
