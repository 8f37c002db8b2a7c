-- Timestamps are integer microseconds since the epoch (UTC); JSON columns hold text.
CREATE TABLE jobs (
    id               TEXT PRIMARY KEY,
    workspace        TEXT NOT NULL,
    kind             TEXT NOT NULL,
    subject          TEXT,
    title            TEXT NOT NULL,
    status           TEXT NOT NULL,
    progress         INTEGER NOT NULL DEFAULT 0,
    steps            TEXT NOT NULL DEFAULT '[]',
    current_step     TEXT,
    input            TEXT NOT NULL DEFAULT '{}',
    metadata         TEXT NOT NULL DEFAULT '{}',
    result           TEXT,
    result_type      TEXT,
    error            TEXT,
    errors           TEXT NOT NULL DEFAULT '[]',
    attempt          INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL,
    run_at           INTEGER NOT NULL,
    worker           TEXT,
    lease_expires_at INTEGER,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    started_at       INTEGER,
    completed_at     INTEGER
) WITHOUT ROWID;

-- Claims read only runnable jobs: this index holds queued jobs and nothing else.
CREATE INDEX jobs_runnable ON jobs (run_at, id) WHERE status = 'queued';
-- The rescuer reads only running jobs.
CREATE INDEX jobs_leases ON jobs (lease_expires_at) WHERE status = 'running';
-- Listings: newest first within a workspace, optionally by subject or kind.
CREATE INDEX jobs_listing ON jobs (workspace, created_at DESC, id DESC);
CREATE INDEX jobs_by_subject ON jobs (workspace, subject, created_at DESC, id DESC) WHERE subject IS NOT NULL;
CREATE INDEX jobs_by_kind ON jobs (workspace, kind, created_at DESC, id DESC);

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    workspace   TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    label       TEXT,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE sources (
    id              TEXT PRIMARY KEY,
    synced_at       INTEGER,
    candidate_count INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    last_error_at   INTEGER
);

CREATE TABLE candidates (
    source      TEXT NOT NULL,
    id          TEXT NOT NULL,
    app         TEXT NOT NULL,
    name        TEXT NOT NULL,
    os          TEXT NOT NULL,
    kind        TEXT NOT NULL,
    version     TEXT,
    launch      TEXT,
    description TEXT,
    keywords    TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (source, id)
);
