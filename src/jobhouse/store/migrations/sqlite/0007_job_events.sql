-- The change log behind the event streams and long-polls: one row per change of a job's status,
-- attempt, steps or progress, numbered in commit order (`seq`). Triggers write it, so no write
-- path can forget to; heartbeats change none of those columns and add nothing.
CREATE TABLE job_events (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id       TEXT NOT NULL,
    workspace    TEXT NOT NULL,
    kind         TEXT NOT NULL,
    subject      TEXT,
    change       TEXT NOT NULL,
    status       TEXT NOT NULL,
    progress     INTEGER NOT NULL,
    current_step TEXT,
    steps        TEXT NOT NULL,
    attempt      INTEGER NOT NULL,
    at           INTEGER NOT NULL
);
CREATE INDEX job_events_by_job ON job_events (job_id, seq);
CREATE INDEX job_events_by_workspace ON job_events (workspace, seq);

-- Jobs that exist already start their history with one event: how they are now.
INSERT INTO job_events (job_id, workspace, kind, subject, change, status, progress, current_step, steps, attempt, at)
SELECT id, workspace, kind, subject, CASE status WHEN 'queued' THEN 'created' ELSE 'status' END,
       status, progress, current_step, steps, attempt, updated_at
FROM jobs ORDER BY created_at, id;

CREATE TRIGGER job_events_created AFTER INSERT ON jobs BEGIN
    INSERT INTO job_events (job_id, workspace, kind, subject, change, status, progress, current_step, steps, attempt, at)
    VALUES (NEW.id, NEW.workspace, NEW.kind, NEW.subject, 'created', NEW.status, NEW.progress, NEW.current_step,
            NEW.steps, NEW.attempt, NEW.updated_at);
END;

CREATE TRIGGER job_events_changed AFTER UPDATE OF status, attempt, current_step, steps, progress ON jobs
WHEN NEW.status IS NOT OLD.status OR NEW.attempt IS NOT OLD.attempt OR NEW.current_step IS NOT OLD.current_step
     OR NEW.steps IS NOT OLD.steps OR NEW.progress IS NOT OLD.progress
BEGIN
    INSERT INTO job_events (job_id, workspace, kind, subject, change, status, progress, current_step, steps, attempt, at)
    VALUES (NEW.id, NEW.workspace, NEW.kind, NEW.subject,
            CASE WHEN NEW.status IS NOT OLD.status THEN 'status'
                 WHEN NEW.attempt IS NOT OLD.attempt THEN 'attempt'
                 WHEN NEW.current_step IS NOT OLD.current_step OR NEW.steps IS NOT OLD.steps THEN 'step'
                 ELSE 'progress' END,
            NEW.status, NEW.progress, NEW.current_step, NEW.steps, NEW.attempt, NEW.updated_at);
END;

-- A deleted job takes its history with it.
CREATE TRIGGER job_events_deleted AFTER DELETE ON jobs BEGIN
    DELETE FROM job_events WHERE job_id = OLD.id;
END;
