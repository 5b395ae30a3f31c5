"""Performance expert: queries inside loops (N+1), and other per-iteration work that belongs outside the loop."""

from __future__ import annotations

import re
from typing import Any

from lighthouse_bridge.agents.experts import Finding, Vote

NAME = "expert:performance"
CAPABILITIES = ["performance", "n-plus-one", "complexity"]

_LOOP = re.compile(
    r"^\s*(for\b.*:|while\b.*:|async\s+for\b.*:|for\s*\(.*\)\s*\{?|while\s*\(.*\)\s*\{?|"
    r".*\.(forEach|map)\s*\()"
)
_QUERY = re.compile(
    r"\b(execute|executemany|fetch|fetchrow|fetchval|fetchone|fetchall|query|raw)\s*\(|"
    r"\.objects\.(get|filter|all|exclude)\s*\(|\bsession\.query\s*\(|\bSELECT\b.*\bFROM\b",
    re.I,
)
_IN_LOOP: list[tuple[str, str, re.Pattern[str], str]] = [
    ("sleep-in-loop", "info", re.compile(r"\btime\.sleep\s*\("), "sleep inside a loop; consider backoff or events"),
    ("regex-compile-in-loop", "warning", re.compile(r"\bre\.compile\s*\("), "regex compiled on every iteration"),
    (
        "http-in-loop",
        "warning",
        re.compile(r"\b(requests|httpx)\.(get|post|put|delete)\s*\("),
        "HTTP request per iteration; batch the calls",
    ),
]
_SELECT_STAR = re.compile(r"""['"]\s*SELECT\s+\*\s+FROM\b""", re.I)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def scan(path: str, text: str) -> list[Finding]:
    """Indentation tracks loop bodies (Python exactly; brace languages well enough when indented normally)."""
    out: list[Finding] = []
    loops: list[tuple[int, int]] = []  # (indent of the loop header, its line)
    for no, line in enumerate(text.splitlines(), 1):
        if not line.strip() or len(line) > 4000:
            continue
        ind = _indent(line)
        while loops and ind <= loops[-1][0] and not line.strip().startswith(("}", ")")):
            loops.pop()
        if loops and ind > loops[-1][0]:
            if _QUERY.search(line):
                out.append(
                    Finding(
                        no,
                        "n-plus-one",
                        "warning",
                        "query-in-loop",
                        f"database query inside the loop on line {loops[-1][1]} (N+1); "
                        "fetch the rows in one query before the loop",
                    )
                )
            for rule, severity, rx, message in _IN_LOOP:
                if rx.search(line):
                    out.append(Finding(no, "performance", severity, rule, message))
        if _SELECT_STAR.search(line):
            out.append(Finding(no, "performance", "info", "select-star", "SELECT * fetches every column"))
        if _LOOP.match(line):
            loops.append((ind, no))
    return out


_VOTE_RULES: list[tuple[re.Pattern[str], float, str]] = [
    (re.compile(r"\bfind\s+/(\s|$)"), 0.6, "walks the whole filesystem"),
    (re.compile(r":\(\)\s*\{\s*:\|:&\s*\};:"), 0.99, "fork bomb"),
    (re.compile(r"\bwhile\s+(true|:)\s*;\s*do\b(?!.*\bsleep\b)"), 0.6, "busy loop without sleep"),
    (re.compile(r"\byes\s*\|"), 0.5, "unbounded input stream"),
]


def vote(tool_name: str, tool_input: dict[str, Any]) -> Vote | None:
    command = tool_input.get("command")
    if tool_name != "Bash" or not isinstance(command, str):
        return None
    for rx, confidence, reason in _VOTE_RULES:
        if rx.search(command):
            return Vote("reject", confidence, f"performance: {reason}")
    return None
