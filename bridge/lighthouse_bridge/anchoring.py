"""Annotation anchors: find annotated lines again after edits moved them.

An anchor stores a hash of the annotated lines' text and a hash of that text with `CONTEXT` lines either side.
Resolution against new content: every window with the same text hash is a candidate; windows whose context also
matches win, then the one nearest the last known line: at that line -> exact, elsewhere -> moved. No window
matches -> stale (the annotation keeps its last known line). Lines are compared with trailing whitespace stripped.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

CONTEXT = 2


def _h(lines: list[str]) -> str:
    return hashlib.sha256("\n".join(s.rstrip() for s in lines).encode("utf-8", "replace")).hexdigest()[:32]


def split_lines(content: bytes) -> list[str]:
    return content.decode("utf-8", errors="replace").splitlines()


@dataclass
class Anchor:
    text_hash: str
    context_hash: str
    lines: int
    original_line: int
    status: str = "exact"

    @classmethod
    def from_stored(cls, doc: dict[str, Any]) -> Anchor:
        return cls(doc["text_hash"], doc["context_hash"], doc["lines"], doc["original_line"])

    def stored(self) -> dict[str, Any]:
        """What an annotation row and its event keep (the status is computed on each read)."""
        return {
            "text_hash": self.text_hash,
            "context_hash": self.context_hash,
            "lines": self.lines,
            "original_line": self.original_line,
        }

    def public(self) -> dict[str, object]:
        return {
            "status": self.status,
            "text_hash": self.text_hash,
            "context_hash": self.context_hash,
            "lines": self.lines,
            "original_line": self.original_line,
        }


def make_anchor(lines: list[str], line: int, end_line: int) -> Anchor:
    """Anchor lines [line, end_line] (1-based, inclusive). Lines beyond the end hash as empty."""
    lo, hi = line - 1, end_line
    text = lines[lo:hi]
    ctx = lines[max(0, lo - CONTEXT) : hi + CONTEXT]
    return Anchor(_h(text), _h(ctx), end_line - line + 1, line)


def resolve(lines: list[str], anchor: Anchor, line: int) -> tuple[int, str]:
    """(new line, status) for an anchor last seen at `line`."""
    n = anchor.lines
    if n > len(lines):
        return line, "stale"
    stripped = [s.rstrip() for s in lines]
    best: tuple[int, int, int] | None = None  # (context mismatch, distance, line)
    for start in range(0, max(0, len(lines) - n + 1)):
        if _h(stripped[start : start + n]) != anchor.text_hash:
            continue
        ctx = _h(stripped[max(0, start - CONTEXT) : start + n + CONTEXT])
        key = (0 if ctx == anchor.context_hash else 1, abs(start + 1 - line), start + 1)
        if best is None or key < best:
            best = key
    if best is None:
        return line, "stale"
    return best[2], "moved" if best[2] != line else "exact"
