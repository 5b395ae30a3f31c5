-- Event store, blobs and per-stream versions. See lighthouse_bridge/store/events.py for the position scheme.
CREATE TABLE blobs (
    sha256     text PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    size       bigint NOT NULL CHECK (size >= 0),
    content    bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- One row per aggregate: its current version, and for files whether the path is live and with which blob.
CREATE TABLE streams (
    aggregate_id   text PRIMARY KEY,
    aggregate_type text NOT NULL,
    version        bigint NOT NULL DEFAULT 0,
    live           boolean,
    sha256         text,
    size           bigint
);

CREATE TABLE events (
    position       bigint PRIMARY KEY,
    event_id       text NOT NULL UNIQUE,
    event_type     text NOT NULL,
    aggregate_id   text NOT NULL,
    aggregate_type text NOT NULL,
    version        bigint NOT NULL,
    data           jsonb NOT NULL,
    metadata       jsonb NOT NULL,
    correlation_id text,
    causation_id   text,
    source_agent   text,
    recorded_at    timestamptz NOT NULL,
    UNIQUE (aggregate_id, version)
);
CREATE INDEX events_type_pos ON events (event_type, position);
CREATE INDEX events_agent_pos ON events (source_agent, position);
CREATE INDEX events_recorded_at ON events (recorded_at);
CREATE INDEX events_moved_to ON events ((data->>'new_path')) WHERE event_type = 'file_moved';

CREATE TABLE snapshots (
    id         bigserial PRIMARY KEY,
    name       text NOT NULL UNIQUE,
    position   bigint NOT NULL,
    auto       boolean NOT NULL DEFAULT false,
    file_count integer NOT NULL,
    tree       bytea NOT NULL,  -- zlib-compressed JSON of the projected tree
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX snapshots_position ON snapshots (position);

CREATE TABLE annotations (
    id         uuid PRIMARY KEY,
    path       text NOT NULL,
    line       integer NOT NULL,
    end_line   integer NOT NULL,
    message    text NOT NULL,
    category   text NOT NULL,
    severity   text NOT NULL,
    author     text NOT NULL,
    anchor     jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX annotations_path ON annotations (path);

CREATE TABLE bridge_meta (
    key        text PRIMARY KEY,
    value      jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
