-- The change log behind the event streams and long-polls: one row per change of a job's status,
-- attempt, steps or progress. Statement triggers write it (one INSERT per statement, however many
-- rows it changed) and NOTIFY 'v' once per statement, so no write path can forget either.
-- `seq` comes from a sequence: numbers are taken in the changing statement, so transactions may
-- commit out of order; the feed reads past a gap only once it has filled or timed out.
CREATE TABLE {schema}.job_events (
    seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id       uuid NOT NULL,
    workspace    text NOT NULL,
    kind         text NOT NULL,
    subject      text,
    change       text NOT NULL,
    status       text NOT NULL,
    progress     smallint NOT NULL,
    current_step text,
    steps        jsonb NOT NULL,
    attempt      integer NOT NULL,
    at           timestamptz NOT NULL
);
CREATE INDEX job_events_by_job ON {schema}.job_events (job_id, seq);
CREATE INDEX job_events_by_workspace ON {schema}.job_events (workspace, seq);

-- Jobs that exist already start their history with one event: how they are now.
INSERT INTO {schema}.job_events (job_id, workspace, kind, subject, change, status, progress, current_step, steps, attempt, at)
SELECT id, workspace, kind, subject, CASE status WHEN 'queued' THEN 'created' ELSE 'status' END,
       status, progress, current_step, steps, attempt, updated_at
FROM {schema}.jobs ORDER BY created_at, id;

CREATE FUNCTION {schema}.job_events_created() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {schema}.job_events
        (job_id, workspace, kind, subject, change, status, progress, current_step, steps, attempt, at)
    SELECT id, workspace, kind, subject, 'created', status, progress, current_step, steps, attempt, updated_at
    FROM created_jobs ORDER BY created_at, id;
    IF FOUND THEN
        PERFORM pg_notify('jobhouse.{schema}', 'v');
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION {schema}.job_events_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {schema}.job_events
        (job_id, workspace, kind, subject, change, status, progress, current_step, steps, attempt, at)
    SELECT n.id, n.workspace, n.kind, n.subject,
           CASE WHEN n.status IS DISTINCT FROM o.status THEN 'status'
                WHEN n.attempt IS DISTINCT FROM o.attempt THEN 'attempt'
                WHEN n.current_step IS DISTINCT FROM o.current_step OR n.steps IS DISTINCT FROM o.steps THEN 'step'
                ELSE 'progress' END,
           n.status, n.progress, n.current_step, n.steps, n.attempt, n.updated_at
    FROM changed_new n JOIN changed_old o ON o.id = n.id
    WHERE (n.status, n.attempt, n.current_step, n.progress) IS DISTINCT FROM (o.status, o.attempt, o.current_step, o.progress)
       OR n.steps IS DISTINCT FROM o.steps
    ORDER BY n.id;
    IF FOUND THEN
        PERFORM pg_notify('jobhouse.{schema}', 'v');
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION {schema}.job_events_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM {schema}.job_events e USING deleted_jobs d WHERE e.job_id = d.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER job_events_created AFTER INSERT ON {schema}.jobs
    REFERENCING NEW TABLE AS created_jobs FOR EACH STATEMENT EXECUTE FUNCTION {schema}.job_events_created();
CREATE TRIGGER job_events_changed AFTER UPDATE ON {schema}.jobs
    REFERENCING OLD TABLE AS changed_old NEW TABLE AS changed_new
    FOR EACH STATEMENT EXECUTE FUNCTION {schema}.job_events_changed();
CREATE TRIGGER job_events_deleted AFTER DELETE ON {schema}.jobs
    REFERENCING OLD TABLE AS deleted_jobs FOR EACH STATEMENT EXECUTE FUNCTION {schema}.job_events_deleted();
