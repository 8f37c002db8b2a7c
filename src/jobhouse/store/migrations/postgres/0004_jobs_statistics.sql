-- The claim reads the partial index of queued jobs in order; with stale statistics (a fresh table
-- that just took a burst of jobs) the planner sorts the whole backlog instead. Analyze sooner.
ALTER TABLE {schema}.jobs SET (autovacuum_analyze_scale_factor = 0.02, autovacuum_analyze_threshold = 500,
                               autovacuum_vacuum_scale_factor = 0.05);
