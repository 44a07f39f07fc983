-- Core schema: teams, users, tokens, pipelines and their objects, builds and events.
-- Times are unix seconds (BIGINT), JSON documents are TEXT (encrypted where
-- a nonce column sits beside them), so the SQLite schema can mirror this one.

CREATE TABLE teams (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    auth TEXT NOT NULL DEFAULT '{}'
);

CREATE TABLE users (
    id BIGSERIAL PRIMARY KEY,
    username TEXT NOT NULL,
    connector TEXT NOT NULL,
    sub TEXT NOT NULL,
    last_login BIGINT NOT NULL,
    UNIQUE (connector, username)
);

CREATE TABLE access_tokens (
    token_hash TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    connector TEXT NOT NULL,
    sub TEXT NOT NULL,
    csrf_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX access_tokens_expires_at ON access_tokens (expires_at);

CREATE TABLE pipelines (
    id BIGSERIAL PRIMARY KEY,
    team_id BIGINT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    instance_vars TEXT NOT NULL DEFAULT '',
    ordering BIGINT NOT NULL DEFAULT 0,
    config TEXT NOT NULL,
    nonce TEXT,
    config_version BIGINT NOT NULL DEFAULT 1,
    groups TEXT NOT NULL DEFAULT '[]',
    display TEXT,
    paused BOOLEAN NOT NULL DEFAULT TRUE,
    paused_by TEXT,
    paused_at BIGINT,
    public BOOLEAN NOT NULL DEFAULT FALSE,
    archived BOOLEAN NOT NULL DEFAULT FALSE,
    last_updated BIGINT NOT NULL,
    UNIQUE (team_id, name, instance_vars)
);

CREATE TABLE jobs (
    id BIGSERIAL PRIMARY KEY,
    pipeline_id BIGINT NOT NULL REFERENCES pipelines (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    config TEXT NOT NULL,
    nonce TEXT,
    active BOOLEAN NOT NULL DEFAULT TRUE,
    public BOOLEAN NOT NULL DEFAULT FALSE,
    disable_manual_trigger BOOLEAN NOT NULL DEFAULT FALSE,
    groups TEXT NOT NULL DEFAULT '[]',
    paused BOOLEAN NOT NULL DEFAULT FALSE,
    paused_by TEXT,
    paused_at BIGINT,
    build_number_seq BIGINT NOT NULL DEFAULT 0,
    first_logged_build_id BIGINT NOT NULL DEFAULT 0,
    has_new_inputs BOOLEAN NOT NULL DEFAULT FALSE,
    inputs_resolve_error TEXT,
    schedule_requested BIGINT NOT NULL DEFAULT 0,
    last_scheduled BIGINT NOT NULL DEFAULT 0,
    UNIQUE (pipeline_id, name)
);

CREATE TABLE resources (
    id BIGSERIAL PRIMARY KEY,
    pipeline_id BIGINT NOT NULL REFERENCES pipelines (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    type TEXT NOT NULL,
    config TEXT NOT NULL,
    nonce TEXT,
    active BOOLEAN NOT NULL DEFAULT TRUE,
    -- The source a version history belongs to: changing `source` starts a new history.
    config_hash TEXT NOT NULL,
    api_pinned_version_id BIGINT,
    pin_comment TEXT NOT NULL DEFAULT '',
    last_check_start BIGINT NOT NULL DEFAULT 0,
    last_check_end BIGINT NOT NULL DEFAULT 0,
    check_error TEXT,
    UNIQUE (pipeline_id, name)
);

CREATE TABLE resource_types (
    id BIGSERIAL PRIMARY KEY,
    pipeline_id BIGINT NOT NULL REFERENCES pipelines (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    type TEXT NOT NULL,
    config TEXT NOT NULL,
    nonce TEXT,
    active BOOLEAN NOT NULL DEFAULT TRUE,
    config_hash TEXT NOT NULL,
    last_check_start BIGINT NOT NULL DEFAULT 0,
    last_check_end BIGINT NOT NULL DEFAULT 0,
    check_error TEXT,
    UNIQUE (pipeline_id, name)
);

-- Versions of a resource (resource_id) or of a resource type (resource_type_id).
CREATE TABLE resource_versions (
    id BIGSERIAL PRIMARY KEY,
    resource_id BIGINT REFERENCES resources (id) ON DELETE CASCADE,
    resource_type_id BIGINT REFERENCES resource_types (id) ON DELETE CASCADE,
    config_hash TEXT NOT NULL,
    version TEXT NOT NULL,
    version_digest TEXT NOT NULL,
    metadata TEXT NOT NULL DEFAULT '[]',
    check_order BIGINT NOT NULL DEFAULT 0,
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
    span_context TEXT,
    created_at BIGINT NOT NULL,
    CHECK ((resource_id IS NULL) <> (resource_type_id IS NULL))
);
CREATE UNIQUE INDEX resource_versions_resource_digest ON resource_versions (resource_id, config_hash, version_digest) WHERE resource_id IS NOT NULL;
CREATE UNIQUE INDEX resource_versions_type_digest ON resource_versions (resource_type_id, config_hash, version_digest) WHERE resource_type_id IS NOT NULL;
CREATE INDEX resource_versions_order ON resource_versions (resource_id, config_hash, check_order);

CREATE TABLE builds (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    team_id BIGINT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    pipeline_id BIGINT REFERENCES pipelines (id) ON DELETE CASCADE,
    job_id BIGINT REFERENCES jobs (id) ON DELETE CASCADE,
    resource_id BIGINT REFERENCES resources (id) ON DELETE CASCADE,
    resource_type_id BIGINT REFERENCES resource_types (id) ON DELETE CASCADE,
    -- The plan to run (may hold secrets: encrypted) and what anyone may see of it.
    plan TEXT,
    nonce TEXT,
    public_plan TEXT,
    create_time BIGINT NOT NULL,
    start_time BIGINT,
    end_time BIGINT,
    reap_time BIGINT,
    manually_triggered BOOLEAN NOT NULL DEFAULT FALSE,
    rerun_of BIGINT REFERENCES builds (id) ON DELETE SET NULL,
    rerun_number BIGINT NOT NULL DEFAULT 0,
    inputs_ready BOOLEAN NOT NULL DEFAULT FALSE,
    aborted BOOLEAN NOT NULL DEFAULT FALSE,
    completed BOOLEAN NOT NULL DEFAULT FALSE,
    comment TEXT NOT NULL DEFAULT '',
    created_by TEXT,
    span_context TEXT,
    event_seq BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX builds_job ON builds (job_id, id);
CREATE UNIQUE INDEX builds_job_name ON builds (job_id, name) WHERE job_id IS NOT NULL;
CREATE INDEX builds_pipeline ON builds (pipeline_id, id);
CREATE INDEX builds_team ON builds (team_id, id);
CREATE INDEX builds_running ON builds (completed, status);

CREATE TABLE build_events (
    build_id BIGINT NOT NULL REFERENCES builds (id) ON DELETE CASCADE,
    event_id BIGINT NOT NULL,
    type TEXT NOT NULL,
    version TEXT NOT NULL,
    payload TEXT NOT NULL,
    PRIMARY KEY (build_id, event_id)
);

-- The versions a build used (inputs) and produced (outputs).
CREATE TABLE build_inputs (
    build_id BIGINT NOT NULL REFERENCES builds (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    resource_id BIGINT NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    version_id BIGINT NOT NULL REFERENCES resource_versions (id) ON DELETE CASCADE,
    first_occurrence BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (build_id, name)
);
CREATE INDEX build_inputs_version ON build_inputs (version_id);

CREATE TABLE build_outputs (
    build_id BIGINT NOT NULL REFERENCES builds (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    resource_id BIGINT NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    version_id BIGINT NOT NULL REFERENCES resource_versions (id) ON DELETE CASCADE,
    PRIMARY KEY (build_id, name, version_id)
);
CREATE INDEX build_outputs_version ON build_outputs (version_id);

-- What the scheduler last resolved for each job's inputs.
CREATE TABLE next_build_inputs (
    job_id BIGINT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    resource_id BIGINT NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    version_id BIGINT NOT NULL REFERENCES resource_versions (id) ON DELETE CASCADE,
    first_occurrence BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (job_id, name)
);

-- Files uploaded for one-off builds (fly execute) and their outputs.
CREATE TABLE artifacts (
    id BIGSERIAL PRIMARY KEY,
    team_id BIGINT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    build_id BIGINT REFERENCES builds (id) ON DELETE CASCADE,
    name TEXT NOT NULL DEFAULT '',
    handle TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Background components: when they last ran, and whether an admin paused them.
CREATE TABLE components (
    name TEXT PRIMARY KEY,
    interval_seconds BIGINT NOT NULL,
    last_ran BIGINT NOT NULL DEFAULT 0,
    paused BOOLEAN NOT NULL DEFAULT FALSE
);

-- The message admins show every user (`fly set-wall`); one row at most.
CREATE TABLE wall (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    message TEXT NOT NULL,
    expires_at BIGINT
);
