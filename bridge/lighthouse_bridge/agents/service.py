"""The agents runtime: identity checks, validation with escalation, experts and audit, started by the app lifespan.

One instance per process (app.state.agents). All shared state lives in PostgreSQL (tokens, escalations, experts,
tasks) and Redis (rate-limit windows, decision cache); nothing a second replica needs is held only in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from prometheus_client import Counter, Gauge, Histogram
from redis.exceptions import RedisError

from lighthouse_bridge.agents import elicitations, escalations, policy, queue, tokens
from lighthouse_bridge.agents.audit import AuditLog, EventSink, event
from lighthouse_bridge.agents.experts import performance, security
from lighthouse_bridge.agents.experts.worker import ExpertWorker, register_builtins
from lighthouse_bridge.agents.payload import ValidationRequest
from lighthouse_bridge.agents.ratelimit import RateLimiter
from lighthouse_bridge.core.config import Settings
from lighthouse_bridge.metrics import REGISTRY

log = logging.getLogger(__name__)

DECISIONS = Counter(
    "lighthouse_bridge_validation_decisions_total", "Validation decisions", ["decision", "source"], registry=REGISTRY
)
VALIDATE_SECONDS = Histogram(
    "lighthouse_bridge_validation_duration_seconds",
    "Time to decide /validate",
    ["cache"],
    registry=REGISTRY,
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
ESCALATIONS = Counter("lighthouse_bridge_expert_escalations_total", "Escalations created", registry=REGISTRY)
QUEUE_SIZE = Gauge(
    "lighthouse_bridge_expert_queue_size", "Pending escalations plus pending expert tasks", registry=REGISTRY
)
ACTIVE_SESSIONS = Gauge(
    "lighthouse_bridge_active_sessions", "Agent tokens neither expired nor revoked", registry=REGISTRY
)
REGISTERED = Gauge("lighthouse_bridge_registered_experts", "Registered experts (built-in included)", registry=REGISTRY)
POLICY_RELOADS = Counter(
    "lighthouse_bridge_policy_reloads_total", "Policy reload attempts", ["outcome"], registry=REGISTRY
)


async def _bounded(what: str, aw: Any, seconds: float = 10.0) -> None:
    task = asyncio.ensure_future(aw)
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if not done:
        stacks = "; ".join(f"{t.get_name()}: {t.get_stack(limit=3)}" for t in asyncio.all_tasks() if not t.done())
        log.error("Stopping %s took over %.0fs; abandoning it tasks=%s", what, seconds, stacks)
        task.cancel()
    elif not task.cancelled() and task.exception() is not None:
        log.warning("Stopping %s failed error=%r", what, task.exception())


STATUS_OF = {"approve": "approved", "block": "blocked", "escalate": "escalated"}


def _context(req: ValidationRequest, client: str | None) -> dict[str, Any]:
    """What an audit record keeps of the request beyond the decision: who the body claimed to be, the context
    fields that were ignored, the client address (for anonymous callers)."""
    out: dict[str, Any] = {}
    if req.claimed_agent:
        out["claimed_agent"] = req.claimed_agent
    if req.ignored:
        out["ignored_fields"] = list(req.ignored)
    if client:
        out["client"] = client
    return out


@dataclass
class Outcome:
    decision: str  # approved | blocked | escalated
    reason: str
    rule_id: str
    cache_hit: bool
    source: str  # rules | cache | expert | timeout
    escalation: dict[str, Any] | None = None
    read_only: bool = False


class Agents:
    def __init__(self, settings: Settings, runtime: Any) -> None:
        self.settings = settings
        self.rt = runtime
        self.pool = runtime.pool
        self.key = tokens.signing_key(settings.token_secret, settings.admin_token)
        self.redis: aioredis.Redis | None = None
        if settings.redis_url:
            self.redis = aioredis.from_url(
                settings.redis_url,
                socket_timeout=settings.redis_timeout,
                socket_connect_timeout=settings.redis_timeout,
                max_connections=64,
            )
        self.prefix = f"{settings.redis_prefix}agents:"
        self.limiter = RateLimiter(self.redis, self.prefix, settings.rate_limit_per_minute)
        self.anonymous_limiter = RateLimiter(
            self.redis, self.prefix, settings.compat_anonymous_per_minute, fail_open=False
        )
        self.anonymous_networks = [ipaddress.ip_network(n, strict=False) for n in settings.compat_anonymous_networks]
        self.audit = AuditLog(settings.audit_log)
        self.sink = EventSink(self.pool)
        self.policy = policy.PolicyHolder(settings.policy_file, self._policy_changed)
        self.experts = ExpertWorker(runtime) if settings.experts else None
        self._tasks: list[asyncio.Task[None]] = []

    # ---------------------------------------------------------------- lifecycle
    @classmethod
    async def start(cls, settings: Settings, runtime: Any) -> Agents:
        self = cls(settings, runtime)
        self.sink.start()
        if settings.policy_file is None:
            log.info(
                "Loaded Policy source=defaults hash=%s rules=%d", self.policy.policy.hash, self.policy.policy.rule_count
            )
        else:
            self.policy.check()
        if settings.compat_anonymous_validate:
            log.warning(
                "Compatibility mode on: POST /validate answers callers without a token as 'anonymous' "
                "networks=%s per_minute=%d",
                settings.compat_anonymous_networks,
                settings.compat_anonymous_per_minute,
            )
        if not settings.admin_token:
            log.warning(
                "LIGHTHOUSE_ADMIN_TOKEN is unset: authentication is DISABLED (every caller is admin); "
                "set it in any shared deployment"
            )
        await register_builtins(self.pool)
        if self.experts is not None:
            self.experts.start()
        self._tasks = [
            asyncio.create_task(self._policy_loop(), name="policy-reloader"),
            asyncio.create_task(self._sweep_loop(), name="escalation-sweeper"),
        ]
        return self

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        # bounded: a task stuck in a driver call must not hold up shutdown (it is logged with its stack)
        await _bounded("background tasks", asyncio.gather(*self._tasks, return_exceptions=True))
        if self.experts is not None:
            await _bounded("expert worker", self.experts.stop())
        await _bounded("audit event sink", self.sink.stop())
        self.audit.close()
        if self.redis is not None:
            with contextlib.suppress(Exception):
                await self.redis.aclose()

    async def _policy_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.policy_reload_interval)
            try:
                self.policy.check()
            except Exception:
                log.exception("Policy check failed")

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            try:
                for row in await escalations.expire_due(self.pool):
                    self._after_decision(row, source="timeout")
                for row in await elicitations.expire_due(self.pool):
                    self.audit.write(
                        "elicitation_expired",
                        "expired",
                        "timeout",
                        elicitation_id=str(row["id"]),
                        kind=row["kind"],
                        from_agent=row["from_agent"],
                        to_agent=row["to_agent"],
                    )
                await queue.reclaim_expired(self.pool)
                QUEUE_SIZE.set(
                    await self.pool.fetchval(
                        "SELECT (SELECT count(*) FROM escalations WHERE status = 'pending')"
                        " + (SELECT count(*) FROM expert_tasks WHERE status = 'pending')"
                    )
                )
                REGISTERED.set(await self.pool.fetchval("SELECT count(*) FROM experts"))
                ACTIVE_SESSIONS.set(
                    await self.pool.fetchval(
                        "SELECT count(*) FROM agent_tokens WHERE revoked_at IS NULL AND expires_at > now()"
                    )
                )
            except Exception as exc:
                log.warning("Escalation sweep failed error=%r", exc)

    async def counts(self) -> dict[str, int]:
        """Live counts for /status: agents and tokens that are neither expired nor revoked, escalations waiting for
        a decision, registered experts (built-in and external)."""
        row = await self.pool.fetchrow(
            "SELECT (SELECT count(DISTINCT agent_id) FROM agent_tokens WHERE revoked_at IS NULL AND expires_at > now()"
            "          AND role <> 'enrolment') AS active_agents,"
            " (SELECT count(*) FROM agent_tokens WHERE revoked_at IS NULL AND expires_at > now()) AS active_sessions,"
            " (SELECT count(*) FROM escalations WHERE status = 'pending' AND deadline > now()) AS pending_validations,"
            " (SELECT count(*) FROM elicitations WHERE status = 'pending' AND deadline > now())"
            "   AS pending_elicitations,"
            " (SELECT count(*) FROM experts) AS registered_experts,"
            " (SELECT count(*) FROM experts WHERE NOT builtin) AS external_experts"
        )
        return dict(row)

    def expert_worker_state(self) -> dict[str, Any]:
        """This replica's built-in expert worker: whether its loop runs and whether it leads (one replica does)."""
        running = self.experts is not None and self.experts.running
        return {
            "enabled": self.experts is not None,
            "running": running,
            "leader": bool(self.experts is not None and self.experts.leader),
            "processed": self.experts.processed if self.experts is not None else 0,
        }

    def _policy_changed(self, ok: bool, pol: policy.Policy, error: str | None) -> None:
        POLICY_RELOADS.labels("ok" if ok else "invalid").inc()
        data = {"path": str(self.settings.policy_file), "hash": pol.hash, "rules": pol.rule_count, "error": error}
        action = "policy_reloaded" if ok else "policy_reload_failed"
        self.audit.write(action, "ok" if ok else "error", "bridge", **data)
        self.sink.emit(event(action, "policy", "policy", data, "bridge"))

    # ---------------------------------------------------------------- audit helpers
    def record(
        self, action: str, outcome: str, actor: str | None, aggregate_type: str, aggregate_id: str, **details: Any
    ) -> None:
        """Audit line now, event appended by the background sink."""
        self.audit.write(action, outcome, actor, **details)
        self.sink.emit(event(action, aggregate_type, aggregate_id, {"outcome": outcome, **details}, actor))

    def auth_failed(self, reason: str, path: str, client: str | None) -> None:
        self.record("auth_failed", "denied", None, "auth", "auth", reason=reason, path=path, client=client)

    # ---------------------------------------------------------------- decision cache
    def _cache_key(self, pol: policy.Policy, command_hash: str) -> str:
        return f"{self.prefix}decision:{pol.hash}:{command_hash}"

    async def _cache_get(self, key: str) -> dict[str, Any] | None:
        if self.redis is None or self.settings.decision_cache_ttl == 0:
            return None
        try:
            raw = await self.redis.get(key)
        except (RedisError, OSError):
            return None
        return json.loads(raw) if raw else None

    async def _cache_set(self, key: str, value: dict[str, Any]) -> None:
        if self.redis is None or self.settings.decision_cache_ttl == 0:
            return
        with contextlib.suppress(RedisError, OSError):
            await self.redis.set(key, json.dumps(value), ex=self.settings.decision_cache_ttl)

    # ---------------------------------------------------------------- validation
    async def validate(self, req: ValidationRequest, agent_id: str, client: str | None = None) -> Outcome:
        t0 = time.perf_counter()
        pol = self.policy.policy
        chash = req.command_hash
        key = self._cache_key(pol, chash)
        read_only = pol.is_read_only(req.tool_name, req.tool_input)
        cached = await self._cache_get(key)
        if cached is not None:
            out = Outcome(cached["decision"], cached["reason"], cached["rule_id"], True, "cache", read_only=read_only)
        else:
            d = pol.decide(req.tool_name, req.tool_input)
            out = Outcome(STATUS_OF[d.action], d.reason, d.rule_id, False, "rules", read_only=read_only)
            if out.decision != "escalated":
                await self._cache_set(key, {"decision": out.decision, "reason": out.reason, "rule_id": out.rule_id})
        if out.decision == "escalated":
            timeout = pol.escalation_timeout or self.settings.escalation_timeout
            row, created = await escalations.create(
                self.pool,
                command_hash=chash,
                policy_hash=pol.hash,
                tool_name=req.tool_name,
                tool_input=req.tool_input,
                agent_id=agent_id,
                rule_id=out.rule_id,
                reason=out.reason,
                read_only=read_only,
                timeout_seconds=timeout,
            )
            out.escalation = escalations.public(row)
            if created:
                ESCALATIONS.inc()
                self.audit.write(
                    "validation_escalated",
                    "escalated",
                    agent_id,
                    escalation_id=str(row["id"]),
                    tool_name=req.tool_name,
                    command_hash=chash,
                    rule_id=out.rule_id,
                    **_context(req, client),
                )
                await self._expert_votes(row, req)
        else:
            self.record(
                "validation_decision_made",
                out.decision,
                agent_id,
                "validation",
                f"command:{chash}",
                decision=out.decision,
                rule_id=out.rule_id,
                reason=out.reason,
                cache_hit=out.cache_hit,
                tool_name=req.tool_name,
                command_hash=chash,
                request_id=req.request_id,
                **_context(req, client),
            )
        DECISIONS.labels(out.decision, out.source).inc()
        VALIDATE_SECONDS.labels("hit" if out.cache_hit else "miss").observe(time.perf_counter() - t0)
        return out

    async def _expert_votes(self, row: Any, req: ValidationRequest) -> None:
        for name, voter in ((security.NAME, security.vote), (performance.NAME, performance.vote)):
            v = voter(req.tool_name, req.tool_input)
            if v is None:
                continue
            try:
                await escalations.add_vote(self.pool, row["id"], name, v.vote, v.confidence, v.reason)
            except Exception as exc:  # a vote is advice; the escalation stands without it
                log.warning("Expert vote not stored expert=%s error=%r", name, exc)

    async def decide(self, escalation_id: str, approve: bool, reason: str, by: str) -> dict[str, Any]:
        row = await escalations.decide(self.pool, escalation_id, approve=approve, reason=reason, by=by)
        self._after_decision(row, source="expert")
        # An expert's judgement answers the same command next time (a fail-safe timeout is not a judgement).
        if row["policy_hash"] == self.policy.policy.hash:
            await self._cache_set(
                self._cache_key(self.policy.policy, row["command_hash"]),
                {"decision": row["decision"], "reason": f"{by}: {reason}", "rule_id": f"escalation:{row['id']}"},
            )
        return escalations.public(row)

    def _after_decision(self, row: Any, source: str) -> None:
        self.audit.write(
            "escalation_" + row["status"],
            row["decision"],
            row["decided_by"],
            escalation_id=str(row["id"]),
            reason=row["decision_reason"],
            command_hash=row["command_hash"],
            tool_name=row["tool_name"],
            source=source,
        )
        DECISIONS.labels(row["decision"], source).inc()

    async def wait_decision(self, escalation_id: str, wait: float) -> Any:
        """The escalation once decided, or as it is after `wait` seconds (or when the bridge starts draining). Wakes
        on new events (a decision appends one) rather than polling the table."""
        deadline = time.monotonic() + wait
        while True:
            head = self.rt.projection.head
            row = await escalations.get(self.pool, escalation_id)
            left = deadline - time.monotonic()
            if row["status"] != "pending" or left <= 0 or self.rt.draining.is_set():
                return row
            await self.rt.wait_beyond(head, min(left, 5.0))
