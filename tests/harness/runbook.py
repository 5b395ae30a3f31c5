"""The fenced shell blocks of docs/runbook.md, with the section each sits in. Blocks whose info string is
`bash runnable` are the ones the node-tier test runs against a real bridge (tests/node/test_runbook.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

RUNBOOK = Path(__file__).resolve().parents[2] / "docs" / "runbook.md"
FENCE = re.compile(r"^```(\S*)(?:\s+(.*))?$")


@dataclass(frozen=True)
class Block:
    section: str  # the nearest heading above it
    language: str
    runnable: bool
    code: str
    line: int  # 1-based line of the opening fence


def blocks(text: str | None = None) -> list[Block]:
    lines = (RUNBOOK.read_text() if text is None else text).splitlines()
    out: list[Block] = []
    section, i = "", 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            section = line.lstrip("#").strip()
        m = FENCE.match(line)
        if m and m.group(1):
            start, body = i, []
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            if i == len(lines):
                raise ValueError(f"unclosed code block at line {start + 1}")
            out.append(Block(section, m.group(1), "runnable" in (m.group(2) or "").split(), "\n".join(body) + "\n",
                             start + 1))  # fmt: skip
        i += 1
    return out
