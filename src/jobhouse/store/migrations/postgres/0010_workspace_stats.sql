-- A workspace's statistics (GET /api/jobs/stats; see jobhouse.store.stats): every figure is a count
-- of one range of one of these indexes (an index-only scan), and no table row is read.
-- Queued and running jobs by workspace and kind (the metrics' scrape reads it too).
CREATE INDEX jobs_active_by_workspace ON {schema}.jobs (workspace, kind, status, run_at)
    WHERE status IN ('queued', 'running');
-- Ended jobs by workspace and kind, in the order they ended.
CREATE INDEX jobs_finished_by_workspace ON {schema}.jobs (workspace, kind, status, completed_at)
    WHERE status IN ('completed', 'failed', 'cancelled');
