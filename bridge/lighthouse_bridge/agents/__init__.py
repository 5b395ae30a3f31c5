"""Agents: identities and roles, command validation with escalation, built-in experts, the audit trail (issue 7)."""
