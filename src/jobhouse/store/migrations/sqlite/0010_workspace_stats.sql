-- A workspace's statistics (GET /api/jobs/stats; see jobhouse.store.stats) read from indexes alone,
-- without another index for every job to pass through: the two that queued and ended jobs are
-- already in carry each job's kind (and a queued job's run_at) as well.
-- A workspace's queued jobs: its quota, the last round it holds at each priority, its statistics.
DROP INDEX jobs_queued_by_workspace;
CREATE INDEX jobs_queued_by_workspace ON jobs (workspace, priority, round, kind, run_at) WHERE status = 'queued';
-- Ended jobs in the order they ended: pruning, and each workspace's statistics.
DROP INDEX jobs_finished;
CREATE INDEX jobs_finished ON jobs (status, completed_at, workspace, kind)
    WHERE status IN ('completed', 'failed', 'cancelled');
