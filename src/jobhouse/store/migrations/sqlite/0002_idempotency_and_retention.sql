-- Idempotency-Key: a key names one job in its workspace for a while (24 h by default).
CREATE TABLE idempotency_keys (
    workspace   TEXT NOT NULL,
    key         TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    job_id      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (workspace, key)
) WITHOUT ROWID;
CREATE INDEX idempotency_keys_age ON idempotency_keys (created_at);

-- Retention prunes finished jobs by status and age.
CREATE INDEX jobs_finished ON jobs (status, completed_at) WHERE status IN ('completed', 'failed', 'cancelled');
-- Quotas count a workspace's queued jobs.
CREATE INDEX jobs_queued_by_workspace ON jobs (workspace) WHERE status = 'queued';
