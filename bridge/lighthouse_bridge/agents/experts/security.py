"""Security expert: secrets in code, SQL built from strings, dangerous shell in scripts."""

from __future__ import annotations

import re
from typing import Any

from lighthouse_bridge.agents.experts import Finding, Vote

NAME = "expert:security"
CAPABILITIES = ["security", "secrets", "sql-injection", "shell"]

_RULES: list[tuple[str, str, str, re.Pattern[str], str]] = [
    # (rule, category, severity, regex, message)
    (
        "hardcoded-secret",
        "secrets",
        "critical",
        re.compile(r"""(password|passwd|api[_-]?key|secret|token)\s*[:=]\s*['"][^'"\s]{8,}['"]""", re.I),
        "hard-coded credential; load it from the environment or a secret store",
    ),
    ("aws-access-key", "secrets", "critical", re.compile(r"\bAKIA[0-9A-Z]{16}\b"), "AWS access key id in source"),
    (
        "private-key",
        "secrets",
        "critical",
        re.compile(r"-----BEGIN (RSA |EC |DSA |OPENSSH |PGP )?PRIVATE KEY( BLOCK)?-----"),
        "private key in source",
    ),
    (
        "sql-concat",
        "sql-injection",
        "error",
        re.compile(r"""(execute|executemany|query|raw|fetch\w*)\s*\(\s*(['"]).*['"]\s*\+\s*\w""", re.I),
        "SQL built by string concatenation; use bound parameters",
    ),
    (
        "sql-fstring",
        "sql-injection",
        "error",
        re.compile(
            r"""(execute|executemany|query|raw|fetch\w*)\s*\(\s*f['"].*\b(select|insert|update|delete|where)\b"""
            r""".*\{""",
            re.I,
        ),
        "SQL built with an f-string; use bound parameters",
    ),
    (
        "sql-format",
        "sql-injection",
        "error",
        re.compile(
            r"""(execute|executemany|query|raw)\s*\(\s*['"][^'"]*\b(select|insert|update|delete|where)\b[^'"]*"""
            r"""['"]\s*(%|\.format\()""",
            re.I,
        ),
        "SQL built with % or .format(); use bound parameters",
    ),
    (
        "shell-true",
        "shell",
        "error",
        re.compile(r"\bsubprocess\.\w+\(.*shell\s*=\s*True"),
        "subprocess with shell=True; pass an argument list",
    ),
    ("os-system", "shell", "warning", re.compile(r"\bos\.(system|popen)\s*\("), "os.system/os.popen runs a shell"),
    ("eval", "shell", "error", re.compile(r"(?<![\w.])(eval|exec)\s*\(\s*[^)'\"]"), "eval/exec of dynamic input"),
    (
        "curl-pipe-shell",
        "shell",
        "critical",
        re.compile(r"\b(curl|wget)\b[^|\n]*\|\s*(sudo\s+)?(ba|z|da)?sh\b"),
        "downloads and runs a script unverified",
    ),
    (
        "rm-rf-variable",
        "shell",
        "error",
        re.compile(r"\brm\s+-[A-Za-z]*r[A-Za-z]*f?[A-Za-z]*\s+\"?\$\{?\w+\}?\"?/?(\s|$)"),
        "rm -rf on an unchecked variable (empty -> deletes from /)",
    ),
]


def scan(path: str, text: str) -> list[Finding]:
    out = []
    for no, line in enumerate(text.splitlines(), 1):
        if len(line) > 4000:
            continue  # minified or generated: regexes would be slow and findings useless
        for rule, category, severity, rx, message in _RULES:
            if rx.search(line):
                out.append(Finding(no, category, severity, rule, message))
    return out


_VOTE_RULES: list[tuple[re.Pattern[str], float, str]] = [
    (re.compile(r"\b(curl|wget)\b[^|\n]*\|\s*(sudo\s+)?(ba|z|da)?sh\b"), 0.95, "pipes a download into a shell"),
    (re.compile(r"(password|api[_-]?key|secret|token)\s*=\s*\S{8,}", re.I), 0.8, "passes a credential inline"),
    (re.compile(r"(^|\s)/etc/(shadow|sudoers|passwd)\b"), 0.9, "touches account databases"),
    (re.compile(r"\bchmod\s+(-\S+\s+)*[0-7]?[0-7]{2}7\b"), 0.7, "makes files world-writable"),
    (re.compile(r"\b(nc|ncat|netcat)\b.*\s-e\s"), 0.9, "opens a reverse shell"),
]


def vote(tool_name: str, tool_input: dict[str, Any]) -> Vote | None:
    """A vote on an escalated operation, or None when it is outside this expert's domain."""
    text = " ".join(str(v) for k, v in tool_input.items() if k in ("command", "file_path", "path"))
    for rx, confidence, reason in _VOTE_RULES:
        if rx.search(text):
            return Vote("reject", confidence, f"security: {reason}")
    if tool_name in ("Write", "Edit", "MultiEdit"):
        findings = scan(
            str(tool_input.get("file_path", "")), str(tool_input.get("content") or tool_input.get("new_string") or "")
        )
        bad = [f for f in findings if f.severity in ("critical", "error")]
        if bad:
            return Vote("reject", 0.8, f"security: the new content has {bad[0].rule} on line {bad[0].line}")
        return Vote("approve", 0.5, "security: no secrets, string-built SQL or dangerous shell in the new content")
    return None
