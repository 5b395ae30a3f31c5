"""Built-in rule-based experts: each scans file content into findings and votes on escalations in its domain."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Finding:
    line: int
    category: str
    severity: str  # info | warning | error | critical
    rule: str
    message: str


@dataclass(frozen=True)
class Vote:
    vote: str  # approve | reject
    confidence: float
    reason: str
