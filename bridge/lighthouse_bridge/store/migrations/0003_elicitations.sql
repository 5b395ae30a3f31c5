-- Elicitations (issue 16): a question from one agent to another agent, a role or a person, with a deadline.
-- Owned by lighthouse_bridge.agents.elicitations; every change is written in the same transaction as its event
-- (elicitation_requested | elicitation_answered | elicitation_expired), so the two never disagree. A row still
-- 'pending' after its deadline reads as expired (level-based): no timer has to fire for that to hold.
CREATE TABLE elicitations (
    id           uuid PRIMARY KEY,
    kind         text NOT NULL DEFAULT 'question' CHECK (kind IN ('question', 'task', 'collaboration')),
    from_agent   text NOT NULL,
    to_agent     text NOT NULL,  -- an agent id, or 'role:<role>' for anyone holding that role
    message      text NOT NULL,
    schema       jsonb,          -- JSON Schema an accepted answer must satisfy (NULL: any JSON value)
    metadata     jsonb NOT NULL DEFAULT '{}',
    group_id     uuid,           -- the collaboration an invitation belongs to
    status       text NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'accepted', 'declined', 'cancelled', 'expired')),
    response     jsonb,
    responded_by text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    deadline     timestamptz NOT NULL,
    responded_at timestamptz
);
CREATE INDEX elicitations_pending_to ON elicitations (to_agent, deadline) WHERE status = 'pending';
CREATE INDEX elicitations_pending_deadline ON elicitations (deadline) WHERE status = 'pending';
CREATE INDEX elicitations_from ON elicitations (from_agent, created_at);
CREATE INDEX elicitations_group ON elicitations (group_id) WHERE group_id IS NOT NULL;
