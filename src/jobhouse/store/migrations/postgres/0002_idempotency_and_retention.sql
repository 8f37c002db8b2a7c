-- Idempotency-Key: a key names one job in its workspace for a while (24 h by default).
CREATE TABLE {schema}.idempotency_keys (
    workspace   text NOT NULL,
    key         text NOT NULL,
    fingerprint text NOT NULL,
    job_id      uuid NOT NULL,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (workspace, key)
);
CREATE INDEX idempotency_keys_age ON {schema}.idempotency_keys (created_at);

-- Retention prunes finished jobs by status and age.
CREATE INDEX jobs_finished ON {schema}.jobs (status, completed_at) WHERE status IN ('completed', 'failed', 'cancelled');
-- Quotas count a workspace's queued jobs.
CREATE INDEX jobs_queued_by_workspace ON {schema}.jobs (workspace) WHERE status = 'queued';
