"""The bridge's use cases, behind every front end: the HTTP routes today, an MCP server next.

Each module is one area (events, shadow, history, annotations, snapshots, validation, sessions, experts, audit,
health). A service takes the per-process runtime (core.runtime.Runtime, and agents.service.Agents for the agents'
areas), the caller (agents.auth.Principal) where it matters, and typed inputs (lighthouse_bridge.models); it returns
typed results (models, or the store's dataclasses) and raises lighthouse_bridge.errors types. No web framework here:
a front end maps the errors (api/problems.py for HTTP) and renders the results.

Layers (checked by import-linter, see .importlinter): api -> services -> agents -> core -> store.
"""
