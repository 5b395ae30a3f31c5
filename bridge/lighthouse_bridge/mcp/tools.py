"""The MCP tools: the original bridge's 14 (status and health, validate, sessions, experts, events, tasks,
collaboration, elicitation) under today's semantics, plus what agents here need most (the shadow, history, diffs,
annotations, escalations). Each calls the same service as its HTTP route and is authorised against that route's
entry in the role table (ROUTES). Errors come back as tool errors (isError) whose text is a JSON problem
{error, title, detail, ...}; bad arguments are refused by the typed input schema before a service runs.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp_types import ToolAnnotations
from pydantic import BaseModel, Field, ValidationError

from lighthouse_bridge import __version__
from lighthouse_bridge.agents import auth
from lighthouse_bridge.agents.auth import Principal
from lighthouse_bridge.errors import BridgeError
from lighthouse_bridge.mcp.endpoint import PRINCIPAL_KEY
from lighthouse_bridge.models import (
    AnnotationIn,
    ApproveIn,
    CollaborationIn,
    DelegateIn,
    ElicitationIn,
    ElicitationRespondIn,
    EventIn,
    RegisterIn,
    SearchIn,
    SessionCreateIn,
    SessionValidateIn,
    ShadowUpdateIn,
    TaskDispatchIn,
)
from lighthouse_bridge.services import annotations as annotation_service
from lighthouse_bridge.services import elicitations, experts, health, history, sessions, shadow, validation
from lighthouse_bridge.services import events as event_service
from lighthouse_bridge.store import db
from lighthouse_bridge.store.events import EventFilter

# tool -> the HTTP route it mirrors: the role table (agents.roles) decides both the same way
ROUTES: dict[str, tuple[str, str]] = {
    "bridge_status": ("GET", "/status"),
    "health_check": ("GET", "/health/detailed"),
    "validate_command": ("POST", "/validate"),
    "get_escalation": ("GET", "/escalations/{escalation_id}"),
    "list_escalations": ("GET", "/pending"),
    "decide_escalation": ("POST", "/approve"),
    "create_session": ("POST", "/session/create"),
    "validate_session": ("POST", "/session/validate"),
    "register_expert": ("POST", "/expert/register"),
    "delegate_to_expert": ("POST", "/expert/delegate"),
    "list_experts": ("GET", "/experts"),
    "store_event": ("POST", "/event/store"),
    "query_events": ("GET", "/event/query"),
    "dispatch_task": ("POST", "/task/dispatch"),
    "start_collaboration": ("POST", "/collaboration/start"),
    "elicit_information": ("POST", "/elicitation/create"),
    "check_elicitations": ("GET", "/elicitation/pending"),
    "respond_to_elicitation": ("POST", "/elicitation/respond"),
    "get_elicitation": ("GET", "/elicitation/{elicitation_id}"),
    "shadow_read": ("GET", "/shadow/read/{path:path}"),
    "shadow_list": ("GET", "/shadow/list"),
    "shadow_search": ("POST", "/shadow/search"),
    "shadow_update": ("POST", "/shadow/update"),
    "file_history": ("GET", "/history/{path:path}"),
    "file_diff": ("GET", "/diff"),
    "annotate": ("POST", "/annotations"),
    "list_annotations": ("GET", "/annotations"),
}
READ_ONLY = ToolAnnotations(readOnlyHint=True, openWorldHint=False)
WRITES = ToolAnnotations(readOnlyHint=False, destructiveHint=False, openWorldHint=False)

Wait = Annotated[float, Field(ge=0, le=60, description="Seconds to wait for an answer or decision (long-poll).")]
Limit = Annotated[int, Field(ge=1, le=1000, description="Most items returned.")]
Path = Annotated[str, Field(min_length=1, max_length=4096, description="A path in the shadow tree, e.g. src/app.py")]
At = Annotated[str | None, Field(max_length=64, description="A position (digits) or an ISO-8601 time; default now.")]
JsonObj = dict[str, Any]


def _json(result: Any) -> Any:
    if isinstance(result, BaseModel):
        return result.model_dump(mode="json", by_alias=True)
    if hasattr(result, "public"):
        return result.public()
    return result


def tool_error(kind: str, title: str, detail: str, **extra: Any) -> ToolError:
    return ToolError(json.dumps({"error": kind, "title": title, "detail": detail, **extra}, default=str))


def _problem(exc: BridgeError) -> ToolError:
    return tool_error(exc.kind, exc.title, exc.detail, **exc.extra)


def _invalid(exc: ValidationError) -> ToolError:
    parts = [f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg']}" for e in exc.errors()[:10]]
    return tool_error("invalid-input", "Invalid input", "; ".join(parts))


def build(state: Any) -> MCPServer:
    """The MCP server; `state` is the app's state (agents, runtime and settings exist once the lifespan runs)."""
    server = MCPServer(
        "lighthouse-bridge",
        version=__version__,
        title="Lighthouse Bridge",
        instructions="Validate tool calls before running them (validate_command); read, search and annotate the "
        "shadow of the project; ask other agents or people questions (elicit_information) and answer "
        "yours (check_elicitations, respond_to_elicitation).",
    )

    def principal(ctx: Context) -> Principal:
        request = ctx.request_context.request
        p = getattr(request, "scope", {}).get(PRINCIPAL_KEY) if request is not None else None
        if not isinstance(p, Principal):
            raise tool_error("unauthorized", "Unauthorized", "no authenticated caller on this request")
        return p

    async def call(ctx: Context, tool: str, op: Callable[[Principal], Awaitable[Any]]) -> Any:
        p = principal(ctx)
        try:
            auth.authorize(state.agents, p, *ROUTES[tool])
            return _json(await op(p))
        except BridgeError as exc:
            raise _problem(exc) from None
        except ValidationError as exc:
            raise _invalid(exc) from None
        except Exception as exc:
            unavailable = db.unavailable(exc, tool)
            if unavailable is not None:
                raise _problem(unavailable) from None
            raise

    def me(p: Principal) -> str:
        return p.agent_id or p.name

    # ------------------------------------------------------------ status and health
    @server.tool(annotations=READ_ONLY)
    async def bridge_status(ctx: Context) -> JsonObj:
        """The bridge's status: components, agents holding a live token, escalations and elicitations waiting,
        expert workers, event store position."""
        return await call(ctx, "bridge_status", lambda p: health.status(state.runtime, state.agents))

    @server.tool(annotations=READ_ONLY)
    async def health_check(ctx: Context) -> JsonObj:
        """Every component's last health probe (PostgreSQL, Redis, FUSE, projection lag, cache statistics)."""

        async def op(_: Principal) -> Any:
            return health.detailed(state.runtime)

        return await call(ctx, "health_check", op)

    # ------------------------------------------------------------ validation and escalations
    @server.tool(annotations=WRITES)
    async def validate_command(
        ctx: Context,
        tool_name: Annotated[str, Field(min_length=1, max_length=128, description="e.g. Bash, Write, Edit, Read")],
        tool_input: Annotated[JsonObj, Field(description='The tool\'s input, e.g. {"command": "npm test"}')],
        wait_seconds: Wait = 0,
    ) -> JsonObj:
        """Ask whether a tool call may run: approved, blocked, or escalated to an expert. With wait_seconds, an
        escalation is awaited that long; run the tool only when `decision` is approved."""

        async def op(p: Principal) -> Any:
            out = await validation.validate(state.agents, p, {"tool_name": tool_name, "tool_input": tool_input})
            if out.decision == "escalated" and wait_seconds > 0 and out.escalation_id:
                return await validation.escalation(state.agents, out.escalation_id, wait_seconds)
            return out

        return await call(ctx, "validate_command", op)

    @server.tool(annotations=READ_ONLY)
    async def get_escalation(
        ctx: Context, escalation_id: Annotated[str, Field(min_length=1, max_length=64)], wait_seconds: Wait = 0
    ) -> JsonObj:
        """An escalation as a validation answer; wait_seconds long-polls until it is decided."""
        return await call(
            ctx, "get_escalation", lambda p: validation.escalation(state.agents, escalation_id, wait_seconds)
        )

    @server.tool(annotations=READ_ONLY)
    async def list_escalations(ctx: Context, limit: Limit = 100) -> JsonObj:
        """Escalations waiting for an expert or admin, oldest first, with the built-in experts' votes."""
        return await call(ctx, "list_escalations", lambda p: validation.pending(state.agents, limit))

    @server.tool(annotations=WRITES)
    async def decide_escalation(
        ctx: Context,
        escalation_id: Annotated[str, Field(min_length=1, max_length=64)],
        decision: Literal["approved", "rejected"],
        reason: Annotated[str, Field(min_length=1, max_length=2000)],
    ) -> JsonObj:
        """Approve or reject an escalated tool call (experts and the admin)."""
        return await call(
            ctx,
            "decide_escalation",
            lambda p: validation.approve(state.agents, p, ApproveIn(id=escalation_id, status=decision, reason=reason)),
        )

    # ------------------------------------------------------------ sessions
    @server.tool(annotations=WRITES)
    async def create_session(
        ctx: Context,
        agent_id: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@-]*$")],
        role: Literal["builder", "expert", "viewer"] = "builder",
        ttl_seconds: Annotated[int, Field(ge=60, le=366 * 86400)] | None = None,
    ) -> JsonObj:
        """Mint an agent token (the admin, or an enrolment token for the roles it may mint)."""
        return await call(
            ctx,
            "create_session",
            lambda p: sessions.mint(
                state.agents, p, SessionCreateIn(agent_id=agent_id, role=role, ttl_seconds=ttl_seconds)
            ),
        )

    @server.tool(annotations=READ_ONLY)
    async def validate_session(
        ctx: Context,
        session_token: Annotated[str, Field(min_length=1, max_length=2048)] | None = None,
    ) -> JsonObj:
        """Check a token (default: the caller's own): {valid, agent_id, role, expires_at}."""
        return await call(
            ctx,
            "validate_session",
            lambda p: sessions.check(state.agents, p, SessionValidateIn(session_token=session_token)),
        )

    # ------------------------------------------------------------ experts
    @server.tool(annotations=WRITES)
    async def register_expert(
        ctx: Context,
        agent_type: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")],
        capabilities: Annotated[list[str], Field(min_length=1, max_length=64, description='e.g. ["security"]')],
    ) -> JsonObj:
        """Register the calling expert and its capabilities (tasks for them are delegated to it)."""
        return await call(
            ctx,
            "register_expert",
            lambda p: experts.register(state.agents, p, RegisterIn(agent_type=agent_type, capabilities=capabilities)),
        )

    @server.tool(annotations=WRITES)
    async def delegate_to_expert(
        ctx: Context,
        capability: Annotated[str, Field(min_length=1, max_length=64, description="e.g. security")],
        payload: JsonObj,
        max_attempts: Annotated[int, Field(ge=1, le=20)] = 3,
    ) -> JsonObj:
        """Queue a task for any registered expert with `capability`."""
        return await call(
            ctx,
            "delegate_to_expert",
            lambda p: experts.delegate(
                state.agents, p, DelegateIn(capability=capability, payload=payload, max_attempts=max_attempts)
            ),
        )

    @server.tool(annotations=READ_ONLY)
    async def list_experts(ctx: Context) -> JsonObj:
        """Registered experts (built-in and external) with their capabilities."""
        return await call(ctx, "list_experts", lambda p: experts.list_experts(state.agents))

    # ------------------------------------------------------------ events
    @server.tool(annotations=WRITES)
    async def store_event(
        ctx: Context,
        event_type: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z][A-Za-z0-9_.:-]*$")],
        aggregate_id: Annotated[str, Field(min_length=1, max_length=1024)],
        aggregate_type: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z][A-Za-z0-9_.:-]*$")],
        data: JsonObj | None = None,
        metadata: JsonObj | None = None,
        event_id: Annotated[str, Field(min_length=1, max_length=128)] | None = None,
        expected_version: Annotated[int, Field(ge=0)] | None = None,
    ) -> JsonObj:
        """Append one event (idempotent with event_id; expected_version for optimistic concurrency)."""
        return await call(
            ctx,
            "store_event",
            lambda p: event_service.store_one(
                state.runtime,
                EventIn(
                    event_type=event_type,
                    aggregate_id=aggregate_id,
                    aggregate_type=aggregate_type,
                    data=data or {},
                    metadata=metadata or {},
                    event_id=event_id,
                    expected_version=expected_version,
                    source_agent=me(p),
                ),
            ),
        )

    @server.tool(annotations=READ_ONLY)
    async def query_events(
        ctx: Context,
        event_type: Annotated[str, Field(max_length=128)] | None = None,
        aggregate_id: Annotated[str, Field(max_length=1024)] | None = None,
        agent_id: Annotated[str, Field(max_length=256)] | None = None,
        start_time: datetime | None = None,
        end_time: datetime | None = None,
        from_position: Annotated[int, Field(ge=0)] | None = None,
        limit: Limit = 100,
    ) -> JsonObj:
        """Events matching all filters, by ascending position; pass next_from_position back for the next page."""
        return await call(
            ctx,
            "query_events",
            lambda p: event_service.query(
                state.runtime,
                EventFilter(
                    event_type=event_type,
                    aggregate_id=aggregate_id,
                    agent_id=agent_id,
                    start_time=start_time,
                    end_time=end_time,
                    from_position=from_position,
                    limit=limit,
                ),
            ),
        )

    # ------------------------------------------------------------ tasks, collaboration, elicitation
    @server.tool(annotations=WRITES)
    async def dispatch_task(
        ctx: Context,
        task_description: Annotated[str, Field(min_length=1, max_length=20000)],
        target_agent: Annotated[str, Field(min_length=1, max_length=134, description="An agent id or role:<role>")],
        priority: Literal["low", "normal", "high", "critical"] = "normal",
        timeout_seconds: Annotated[float, Field(gt=0)] | None = None,
        result_schema: JsonObj | None = None,
    ) -> JsonObj:
        """Dispatch a task to a named agent; it answers with its result or declines (follow it with
        get_elicitation)."""
        return await call(
            ctx,
            "dispatch_task",
            lambda p: elicitations.dispatch_task(
                state.agents,
                p,
                TaskDispatchIn(
                    task_description=task_description,
                    target_agent=target_agent,
                    priority=priority,
                    timeout_seconds=timeout_seconds,
                    result_schema=result_schema,
                ),
            ),
        )

    @server.tool(annotations=WRITES)
    async def start_collaboration(
        ctx: Context,
        collaboration_type: Annotated[str, Field(min_length=1, max_length=64, description="e.g. pair_programming")],
        participants: Annotated[list[str], Field(min_length=1, max_length=32)],
        objective: Annotated[str, Field(min_length=1, max_length=20000)],
        timeout_seconds: Annotated[float, Field(gt=0)] | None = None,
    ) -> JsonObj:
        """Invite agents (or people) to a collaboration; each accepts or declines its invitation."""
        return await call(
            ctx,
            "start_collaboration",
            lambda p: elicitations.start_collaboration(
                state.agents,
                p,
                CollaborationIn(
                    collaboration_type=collaboration_type,
                    participants=participants,
                    objective=objective,
                    timeout_seconds=timeout_seconds,
                ),
            ),
        )

    @server.tool(annotations=WRITES)
    async def elicit_information(
        ctx: Context,
        to_agent: Annotated[
            str,
            Field(
                min_length=1,
                max_length=134,
                description="An agent id, a person's id, or role:<role> (e.g. role:expert)",
            ),
        ],
        message: Annotated[str, Field(min_length=1, max_length=20000)],
        schema: Annotated[JsonObj | None, Field(description="JSON Schema the answer must satisfy")] = None,
        timeout_seconds: Annotated[float, Field(gt=0, description="Seconds until the deadline")] | None = None,
        wait_seconds: Wait = 0,
    ) -> JsonObj:
        """Ask another agent or a person a question with a deadline. With wait_seconds, wait that long for the
        answer; otherwise follow it with get_elicitation."""

        async def op(p: Principal) -> Any:
            q = await elicitations.ask(
                state.agents,
                p,
                ElicitationIn.model_validate(
                    {"to_agent": to_agent, "message": message, "schema": schema, "timeout_seconds": timeout_seconds}
                ),
            )
            if wait_seconds > 0:
                return await elicitations.get(state.agents, p, q.id, wait_seconds)
            return q

        return await call(ctx, "elicit_information", op)

    @server.tool(annotations=READ_ONLY)
    async def check_elicitations(ctx: Context, limit: Limit = 100) -> JsonObj:
        """Questions, tasks and invitations waiting for your answer (addressed to you or your role)."""
        return await call(ctx, "check_elicitations", lambda p: elicitations.pending(state.agents, p, None, limit))

    @server.tool(annotations=WRITES)
    async def respond_to_elicitation(
        ctx: Context,
        elicitation_id: Annotated[str, Field(min_length=1, max_length=64)],
        response_type: Literal["accept", "decline", "cancel"],
        data: Annotated[Any, Field(description="The answer; required to accept, checked against the schema")] = None,
    ) -> JsonObj:
        """Answer a question addressed to you: accept with data, decline, or cancel (the asker may only cancel)."""
        return await call(
            ctx,
            "respond_to_elicitation",
            lambda p: elicitations.respond(
                state.agents,
                p,
                ElicitationRespondIn(elicitation_id=elicitation_id, response_type=response_type, data=data),
            ),
        )

    @server.tool(annotations=READ_ONLY)
    async def get_elicitation(
        ctx: Context, elicitation_id: Annotated[str, Field(min_length=1, max_length=64)], wait_seconds: Wait = 0
    ) -> JsonObj:
        """A question you asked or were asked; wait_seconds long-polls until it is answered or expires."""
        return await call(
            ctx, "get_elicitation", lambda p: elicitations.get(state.agents, p, elicitation_id, wait_seconds)
        )

    # ------------------------------------------------------------ the shadow, history, annotations
    @server.tool(annotations=READ_ONLY)
    async def shadow_read(ctx: Context, path: Path, at: At = None) -> JsonObj:
        """A file of the shadow tree (UTF-8 text, or base64 when binary), now or at a past position or time."""
        return await call(ctx, "shadow_read", lambda p: shadow.read(state.runtime, path, at))

    @server.tool(annotations=READ_ONLY)
    async def shadow_list(
        ctx: Context,
        prefix: Annotated[str, Field(max_length=4096)] = "",
        at: At = None,
        limit: Annotated[int, Field(ge=1, le=100_000)] = 1000,
    ) -> JsonObj:
        """Files whose path starts with `prefix`, sorted by path, now or at `at`."""
        return await call(ctx, "shadow_list", lambda p: shadow.list_files(state.runtime, prefix, at, limit))

    @server.tool(annotations=READ_ONLY)
    async def shadow_search(
        ctx: Context,
        pattern: Annotated[str, Field(min_length=1, max_length=1000, description="A regex")],
        path_prefix: Annotated[str, Field(max_length=4096)] | None = None,
        max_results: Annotated[int, Field(ge=1, le=100_000)] = 100,
    ) -> JsonObj:
        """Regex search (multiline) over the current tree; one match per line."""
        return await call(
            ctx,
            "shadow_search",
            lambda p: shadow.search(
                state.runtime, SearchIn(pattern=pattern, path_prefix=path_prefix, max_results=max_results)
            ),
        )

    @server.tool(annotations=WRITES)
    async def shadow_update(
        ctx: Context,
        operation: Literal["create", "modify", "delete", "move"],
        path: Path,
        content: Annotated[str, Field(description="New content (create, modify)")] | None = None,
        encoding: Literal["utf-8", "base64"] = "utf-8",
        new_path: Path | None = None,
        expected_version: Annotated[int, Field(ge=0)] | None = None,
    ) -> JsonObj:
        """Create, modify, delete or move a file of the shadow (one event)."""
        return await call(
            ctx,
            "shadow_update",
            lambda p: shadow.update(
                state.runtime,
                ShadowUpdateIn(
                    operation=operation,
                    path=path,
                    content=content,
                    encoding=encoding,
                    new_path=new_path,
                    expected_version=expected_version,
                    agent_id=me(p),
                ),
            ),
        )

    @server.tool(annotations=READ_ONLY)
    async def file_history(ctx: Context, path: Path, limit: Limit = 1000) -> JsonObj:
        """Every version of a file, oldest first, with moves into and out of it."""
        return await call(ctx, "file_history", lambda p: history.history(state.runtime, path, limit))

    @server.tool(annotations=READ_ONLY)
    async def file_diff(ctx: Context, path: Path, start: At = None, end: At = None) -> JsonObj:
        """Unified diff of a file between two points, `start` and `end` (positions or ISO-8601 times; default:
        the beginning to now)."""
        return await call(ctx, "file_diff", lambda p: history.diff(state.runtime, path, start, end))

    @server.tool(annotations=WRITES)
    async def annotate(
        ctx: Context,
        path: Path,
        line: Annotated[int, Field(ge=1, le=10_000_000)],
        message: Annotated[str, Field(min_length=1, max_length=10000)],
        end_line: Annotated[int, Field(ge=1, le=10_000_000)] | None = None,
        category: Annotated[str, Field(min_length=1, max_length=64)] = "general",
        severity: Literal["info", "low", "medium", "high", "critical"] = "info",
    ) -> JsonObj:
        """Annotate lines of a file (experts); the annotation follows the lines when the file changes."""
        return await call(
            ctx,
            "annotate",
            lambda p: annotation_service.create(
                state.runtime,
                AnnotationIn(
                    path=path,
                    line=line,
                    end_line=end_line,
                    message=message,
                    category=category,
                    severity=severity,
                    author=me(p),
                ),
            ),
        )

    @server.tool(annotations=READ_ONLY)
    async def list_annotations(ctx: Context, path: Path | None = None, limit: Limit = 1000) -> JsonObj:
        """Annotations (of one file, or all), with line numbers re-resolved against the current content."""
        return await call(ctx, "list_annotations", lambda p: annotation_service.list_(state.runtime, path, limit))

    # ------------------------------------------------------------ resources: shadow files
    @server.resource(
        "shadow://files/{+path}",
        name="shadow_file",
        mime_type="text/plain",
        description="A file of the shadow tree, as it is now.",
    )
    async def shadow_file(path: str, ctx: Context) -> str:
        p = principal(ctx)
        try:
            auth.authorize(state.agents, p, *ROUTES["shadow_read"])
            doc = await shadow.read(state.runtime, path)
        except BridgeError as exc:
            raise ResourceError(f"{exc.kind}: {exc.detail}") from None
        return doc.content

    return server
