-- Job control: priorities, fair claims across workspaces, scheduled jobs and concurrency limits.
--
-- A queued job is either scheduled (its run_at is ahead: `scheduled` = 1, kept apart in
-- jobs_scheduled until a claim finds it due) or ready (`scheduled` = 0). Ready jobs are claimed by
-- priority (higher first), then by `round`: a workspace's ready jobs at one priority take rounds
-- one after another, and a workspace with none starts at the round being served, so claims take
-- one job of each workspace in turn. Scheduled jobs have round -1 until they are due.
-- Jobs of kinds with a concurrency limit carry their `concurrency_key` ('' for the whole kind) and
-- are claimed through jobs_limited, the others through jobs_ready.
ALTER TABLE jobs ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN scheduled INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN round INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN concurrency_key TEXT;

UPDATE jobs SET scheduled = 1, round = -1
WHERE status = 'queued' AND run_at > CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER);

DROP INDEX jobs_runnable;
DROP INDEX jobs_queued_by_workspace;
CREATE INDEX jobs_ready ON jobs (priority DESC, round, id)
    WHERE status = 'queued' AND scheduled = 0 AND concurrency_key IS NULL;
CREATE INDEX jobs_limited ON jobs (kind, concurrency_key, priority DESC, round, id)
    WHERE status = 'queued' AND scheduled = 0 AND concurrency_key IS NOT NULL;
CREATE INDEX jobs_scheduled ON jobs (run_at, id) WHERE status = 'queued' AND scheduled = 1;
-- A workspace's queued jobs: its quota, and the last round it holds at each priority.
CREATE INDEX jobs_queued_by_workspace ON jobs (workspace, priority, round) WHERE status = 'queued';
-- The running jobs of limited kinds, counted by key at each claim of those kinds.
CREATE INDEX jobs_running_limited ON jobs (kind, concurrency_key) WHERE status = 'running' AND concurrency_key IS NOT NULL;
