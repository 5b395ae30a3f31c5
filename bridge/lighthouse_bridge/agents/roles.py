"""Who may call what: one table keyed by (method, route template), fail-closed for anything not listed.

Reads (GET/HEAD) are open to every role unless listed; any other method not listed is admin-only, so a new write
route is never accidentally open to builders. The enrolment role reaches only the routes that name it.
"""

from __future__ import annotations

OPEN_PATHS = frozenset({"/livez", "/readyz", "/health", "/metrics"})
# What a caller without credentials reaches when the compatibility mode is on (agents.auth), under this role, which
# no other route admits: it can never approve, read or write anything else.
ANONYMOUS = "anonymous"
ANONYMOUS_ROUTES = frozenset({("POST", "/validate")})

ALL = frozenset({"viewer", "builder", "expert", "admin"})
READERS = ALL
BUILDERS = frozenset({"builder", "admin"})
EXPERTS = frozenset({"expert", "admin"})
ADMIN = frozenset({"admin"})
WRITERS = frozenset({"builder", "expert", "admin"})

PERMISSIONS: dict[tuple[str, str], frozenset[str]] = {
    # shadow and event writes come from builders (the agents that change the project)
    ("POST", "/event/store"): BUILDERS,
    ("POST", "/events"): BUILDERS,
    ("PUT", "/blobs/{sha256}"): BUILDERS,
    ("POST", "/shadow/update"): BUILDERS,
    ("POST", "/shadow/search"): ALL,  # a read with a body
    ("POST", "/snapshots"): BUILDERS,
    # experts annotate
    ("POST", "/annotations"): EXPERTS,
    ("POST", "/shadow/annotate"): EXPERTS,
    ("PUT", "/annotations/{annotation_id}"): EXPERTS,
    ("DELETE", "/annotations/{annotation_id}"): EXPERTS,
    # validation and escalation
    ("POST", "/validate"): frozenset({"builder", "expert", "admin", ANONYMOUS}),
    ("POST", "/hooks/claude-code"): frozenset({"builder", "expert", "admin"}),
    ("POST", "/approve"): EXPERTS,
    # sessions and tokens
    ("POST", "/session/create"): frozenset({"admin", "enrolment"}),
    ("POST", "/session/validate"): ALL | {"enrolment"},
    ("GET", "/tokens"): ADMIN,
    ("POST", "/tokens"): ADMIN,
    ("DELETE", "/tokens/{jti}"): ADMIN,
    ("GET", "/audit"): ADMIN,
    # experts and their work queue
    ("POST", "/expert/register"): EXPERTS,
    ("POST", "/expert/delegate"): frozenset({"builder", "expert", "admin"}),
    ("POST", "/tasks/claim"): EXPERTS,
    ("POST", "/tasks/{task_id}/complete"): EXPERTS,
    ("POST", "/tasks/{task_id}/fail"): EXPERTS,
    # MCP (streamable HTTP): any agent may hold a session; each tool is authorised as the route it mirrors
    ("POST", "/mcp"): ALL,
    ("DELETE", "/mcp"): ALL,
    # elicitation: any role with a voice asks; answering is decided by the addressee (services.elicitations)
    ("POST", "/elicitation/create"): WRITERS,
    ("POST", "/elicitation/respond"): ALL,
    ("POST", "/task/dispatch"): WRITERS,
    ("POST", "/collaboration/start"): WRITERS,
}


def allowed_roles(method: str, path: str) -> frozenset[str]:
    method = "GET" if method == "HEAD" else method
    listed = PERMISSIONS.get((method, path))
    if listed is not None:
        return listed
    return READERS if method == "GET" else ADMIN  # READERS excludes the anonymous role


def allows(role: str, method: str, path: str) -> bool:
    return role in allowed_roles(method, path)
