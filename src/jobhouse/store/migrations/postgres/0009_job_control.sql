-- Job control: priorities, fair claims across workspaces, scheduled jobs and concurrency limits.
--
-- A queued job is either scheduled (its run_at is ahead: `scheduled`, kept apart in jobs_scheduled
-- until a claim finds it due) or ready. Ready jobs are claimed by priority (higher first), then by
-- `round`: a workspace's ready jobs at one priority take rounds one after another, and a workspace
-- with none starts at the round being served, so claims take one job of each workspace in turn.
-- Scheduled jobs have round -1 until they are due. Jobs of kinds with a concurrency limit carry
-- their `concurrency_key` ('' for the whole kind) and are claimed through jobs_limited.
ALTER TABLE {schema}.jobs ADD COLUMN priority smallint NOT NULL DEFAULT 0;
ALTER TABLE {schema}.jobs ADD COLUMN scheduled boolean NOT NULL DEFAULT false;
ALTER TABLE {schema}.jobs ADD COLUMN round bigint NOT NULL DEFAULT 0;
ALTER TABLE {schema}.jobs ADD COLUMN concurrency_key text;

UPDATE {schema}.jobs SET scheduled = true, round = -1 WHERE status = 'queued' AND run_at > now();

DROP INDEX {schema}.jobs_runnable;
DROP INDEX {schema}.jobs_queued_by_workspace;
CREATE INDEX jobs_ready ON {schema}.jobs (priority DESC, round, id)
    WHERE status = 'queued' AND NOT scheduled AND concurrency_key IS NULL;
CREATE INDEX jobs_limited ON {schema}.jobs (kind, concurrency_key, priority DESC, round, id)
    WHERE status = 'queued' AND NOT scheduled AND concurrency_key IS NOT NULL;
CREATE INDEX jobs_scheduled ON {schema}.jobs (run_at, id) WHERE status = 'queued' AND scheduled;
-- A workspace's queued jobs: its quota, and the last round it holds at each priority.
CREATE INDEX jobs_queued_by_workspace ON {schema}.jobs (workspace, priority, round) WHERE status = 'queued';
-- The running jobs of limited kinds, counted by key at each claim of those kinds.
CREATE INDEX jobs_running_limited ON {schema}.jobs (kind, concurrency_key)
    WHERE status = 'running' AND concurrency_key IS NOT NULL;
