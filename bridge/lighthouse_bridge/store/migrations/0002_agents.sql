-- Agents (issue 7): token registry (revocation shared by replicas), escalations with expert votes,
-- the expert registry and its work queue. Owned by lighthouse_bridge.agents.
CREATE TABLE agent_tokens (
    jti         uuid PRIMARY KEY,
    agent_id    text NOT NULL,
    role        text NOT NULL CHECK (role IN ('builder', 'expert', 'viewer', 'admin', 'enrolment')),
    enrol_roles text[] NOT NULL DEFAULT '{}',  -- roles an enrolment token may mint via /session/create
    issued_by   text NOT NULL,
    issued_at   timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz,
    revoked_by  text
);
CREATE INDEX agent_tokens_agent ON agent_tokens (agent_id);

CREATE TABLE escalations (
    id             uuid PRIMARY KEY,
    command_hash   text NOT NULL,
    policy_hash    text NOT NULL,
    tool_name      text NOT NULL,
    tool_input     jsonb NOT NULL,
    agent_id       text NOT NULL,
    rule_id        text NOT NULL,
    reason         text NOT NULL,
    read_only      boolean NOT NULL,
    status         text NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending', 'approved', 'rejected', 'timed_out')),
    decision       text CHECK (decision IN ('approved', 'blocked')),
    decision_reason text,
    decided_by     text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    deadline       timestamptz NOT NULL,
    decided_at     timestamptz
);
CREATE INDEX escalations_pending_deadline ON escalations (deadline) WHERE status = 'pending';
-- The same command waiting twice would ask experts twice: one pending escalation per command and policy.
CREATE UNIQUE INDEX escalations_one_pending ON escalations (command_hash, policy_hash) WHERE status = 'pending';

CREATE TABLE escalation_votes (
    escalation_id uuid NOT NULL REFERENCES escalations (id) ON DELETE CASCADE,
    expert        text NOT NULL,
    vote          text NOT NULL CHECK (vote IN ('approve', 'reject')),
    confidence    real NOT NULL CHECK (confidence >= 0 AND confidence <= 1),
    reason        text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (escalation_id, expert)
);

CREATE TABLE experts (
    agent_id      text PRIMARY KEY,
    agent_type    text NOT NULL,
    capabilities  text[] NOT NULL,
    builtin       boolean NOT NULL DEFAULT false,
    registered_by text NOT NULL,
    registered_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE expert_tasks (
    id           uuid PRIMARY KEY,
    capability   text NOT NULL,
    payload      jsonb NOT NULL,
    status       text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'claimed', 'completed', 'failed')),
    requested_by text NOT NULL,
    claimed_by   text,
    lease_until  timestamptz,
    attempts     integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL DEFAULT 3 CHECK (max_attempts BETWEEN 1 AND 20),
    result       jsonb,
    error        text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX expert_tasks_pending ON expert_tasks (capability, created_at) WHERE status = 'pending';
CREATE INDEX expert_tasks_leases ON expert_tasks (lease_until) WHERE status = 'claimed';
