"""docs/runbook.md: every procedure the issue asks for is there, its runnable blocks are valid shell that uses only
the two variables the node-tier test sets, and every plugin command it shows exists."""

from __future__ import annotations

import re
import subprocess

import pytest
from kubectl_lighthouse import cli

from tests.harness.runbook import RUNBOOK, blocks

PROCEDURES = (  # issue 19: what an operator who knows the original runbook looks for
    "Health and status", "Bridge down", "Logs", "Resource usage", "Database and Redis", "Restarting the stores",
    "Manual rollback", "FUSE troubleshooting", "Security incident", "Verifying backups", "Disaster-recovery drill",
)  # fmt: skip


def test_every_procedure_has_a_section_with_commands() -> None:
    found = blocks()
    sections = {b.section for b in found}
    assert [p for p in PROCEDURES if p not in sections] == []
    runnable = {b.section for b in found if b.runnable}
    # Every procedure but the ones a test cannot undo (a failed release) runs against a real bridge.
    assert [p for p in PROCEDURES if p not in runnable] == ["Bridge down"]


def test_blocks_are_parsed_with_their_sections() -> None:
    text = "# A\n```bash runnable\necho a\n```\n## B\n```bash\necho b\n```\n```yaml\nx: 1\n```\n"
    got = [(b.section, b.language, b.runnable, b.code) for b in blocks(text)]
    assert got == [("A", "bash", True, "echo a\n"), ("B", "bash", False, "echo b\n"), ("B", "yaml", False, "x: 1\n")]
    with pytest.raises(ValueError, match="unclosed"):
        blocks("```bash\necho\n")


@pytest.mark.parametrize("block", [b for b in blocks() if b.language == "bash"], ids=lambda b: f"line{b.line}")
def test_shell_blocks_parse(block: object) -> None:
    proc = subprocess.run(["bash", "-n"], input=block.code, capture_output=True, text=True)  # type: ignore[attr-defined]
    assert proc.returncode == 0, proc.stderr


def test_runnable_blocks_need_only_ns_and_name() -> None:
    for b in blocks():
        if not b.runnable:
            continue
        code = re.sub(r"<<EOF.*?^EOF$", "", b.code, flags=re.S | re.M)
        assigned = set(re.findall(r"^\s*([A-Z_][A-Z0-9_]*)=", code, re.M))
        used = set(re.findall(r"\$\{?([A-Z_][A-Z0-9_]*)", b.code))
        assert used - assigned - {"NS", "NAME", "LIGHTHOUSE_BRIDGE_URL"} == set(), (b.line, used)


def test_every_plugin_command_shown_exists() -> None:
    commands = set(cli.build_parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    shown = set(re.findall(r"kubectl lighthouse (\w+)", RUNBOOK.read_text()))
    assert shown and shown <= commands, shown - commands
