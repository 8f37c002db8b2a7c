-- Every table lives in the store's own schema; {schema} is replaced by its (checked) name.
CREATE TABLE {schema}.jobs (
    id               uuid PRIMARY KEY,
    workspace        text NOT NULL,
    kind             text NOT NULL,
    subject          text,
    title            text NOT NULL,
    status           text NOT NULL CHECK (status IN ('queued', 'running', 'completed', 'failed', 'cancelled')),
    progress         smallint NOT NULL DEFAULT 0,
    steps            jsonb NOT NULL DEFAULT '[]',
    current_step     text,
    input            jsonb NOT NULL DEFAULT '{}',
    metadata         jsonb NOT NULL DEFAULT '{}',
    result           jsonb,
    result_type      text,
    error            jsonb,
    errors           jsonb NOT NULL DEFAULT '[]',
    attempt          integer NOT NULL DEFAULT 0,
    max_attempts     integer NOT NULL,
    run_at           timestamptz NOT NULL,
    worker           text,
    lease_expires_at timestamptz,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    started_at       timestamptz,
    completed_at     timestamptz
) WITH (fillfactor = 80);

-- Claims read only runnable jobs: this index holds queued jobs and nothing else, so it stays small.
CREATE INDEX jobs_runnable ON {schema}.jobs (run_at, id) WHERE status = 'queued';
-- The rescuer reads only running jobs.
CREATE INDEX jobs_leases ON {schema}.jobs (lease_expires_at) WHERE status = 'running';
-- Listings: newest first within a workspace, optionally by subject or kind.
CREATE INDEX jobs_listing ON {schema}.jobs (workspace, created_at DESC, id DESC);
CREATE INDEX jobs_by_subject ON {schema}.jobs (workspace, subject, created_at DESC, id DESC) WHERE subject IS NOT NULL;
CREATE INDEX jobs_by_kind ON {schema}.jobs (workspace, kind, created_at DESC, id DESC);

CREATE TABLE {schema}.api_keys (
    id          text PRIMARY KEY,
    workspace   text NOT NULL,
    secret_hash text NOT NULL,
    label       text,
    created_at  timestamptz NOT NULL,
    revoked_at  timestamptz
);

CREATE TABLE {schema}.meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);

CREATE TABLE {schema}.sources (
    id              text PRIMARY KEY,
    synced_at       timestamptz,
    candidate_count integer NOT NULL DEFAULT 0,
    last_error      text,
    last_error_at   timestamptz
);

CREATE TABLE {schema}.candidates (
    source      text NOT NULL,
    id          text NOT NULL,
    app         text NOT NULL,
    name        text NOT NULL,
    os          text NOT NULL,
    kind        text NOT NULL,
    version     text,
    launch      text,
    description text,
    keywords    jsonb NOT NULL DEFAULT '[]',
    PRIMARY KEY (source, id)
);
