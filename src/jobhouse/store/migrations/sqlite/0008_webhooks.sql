-- Webhooks: a job's own callback URL, workspace subscriptions, and the outbox of deliveries.
-- A trigger fills the outbox in the transaction that ends the job, so no terminal write can
-- commit without its deliveries, and no write path can forget them (see jobhouse.webhooks).
ALTER TABLE jobs ADD COLUMN callback_url TEXT;

-- `events` and `types` are JSON arrays of the event names and job kinds wanted (NULL: all).
CREATE TABLE webhook_subscriptions (
    id         TEXT PRIMARY KEY,
    workspace  TEXT NOT NULL,
    url        TEXT NOT NULL,
    secret     TEXT NOT NULL,
    events     TEXT,
    types      TEXT,
    created_at INTEGER NOT NULL
);
CREATE INDEX webhook_subscriptions_by_workspace ON webhook_subscriptions (workspace, created_at);

-- The secret that signs the deliveries of jobs' own callback URLs, one per workspace.
CREATE TABLE webhook_secrets (
    workspace  TEXT PRIMARY KEY,
    secret     TEXT NOT NULL,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;

-- The outbox. `subscription_id` NULL: the job's callback (signed with the workspace's secret).
-- A pending delivery is due at `next_at`; a sender claims it by moving `next_at` a lease ahead
-- and counting the attempt, so a sender that dies leaves it due again once the lease has passed.
CREATE TABLE webhook_deliveries (
    id               TEXT PRIMARY KEY,
    job_id           TEXT NOT NULL,
    workspace        TEXT NOT NULL,
    subscription_id  TEXT,
    url              TEXT NOT NULL,
    event            TEXT NOT NULL,
    status           TEXT NOT NULL DEFAULT 'pending',
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_at          INTEGER NOT NULL,
    last_status_code INTEGER,
    last_error       TEXT,
    last_attempt_at  INTEGER,
    created_at       INTEGER NOT NULL,
    delivered_at     INTEGER
) WITHOUT ROWID;
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_by_job ON webhook_deliveries (job_id, created_at DESC, id DESC);
CREATE INDEX webhook_deliveries_by_workspace ON webhook_deliveries (workspace, created_at DESC, id DESC);

CREATE TRIGGER webhook_deliveries_owed AFTER UPDATE OF status ON jobs
WHEN NEW.status IN ('completed', 'failed', 'cancelled') AND OLD.status IS NOT NEW.status
BEGIN
    INSERT INTO webhook_deliveries (id, job_id, workspace, subscription_id, url, event, next_at, created_at)
    SELECT lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2) || '-'
                 || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(hex(randomblob(2)), 2) || '-'
                 || hex(randomblob(6))),
           NEW.id, NEW.workspace, NULL, NEW.callback_url, 'job.' || NEW.status, NEW.updated_at, NEW.updated_at
    WHERE NEW.callback_url IS NOT NULL;
    INSERT INTO webhook_deliveries (id, job_id, workspace, subscription_id, url, event, next_at, created_at)
    SELECT lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2) || '-'
                 || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(hex(randomblob(2)), 2) || '-'
                 || hex(randomblob(6))),
           NEW.id, NEW.workspace, s.id, s.url, 'job.' || NEW.status, NEW.updated_at, NEW.updated_at
    FROM webhook_subscriptions AS s
    WHERE s.workspace = NEW.workspace
      AND (s.events IS NULL OR EXISTS (SELECT 1 FROM json_each(s.events) WHERE value = 'job.' || NEW.status))
      AND (s.types IS NULL OR EXISTS (SELECT 1 FROM json_each(s.types) WHERE value = NEW.kind));
END;

-- A deleted job (retention) takes its delivery log with it.
CREATE TRIGGER webhook_deliveries_deleted AFTER DELETE ON jobs BEGIN
    DELETE FROM webhook_deliveries WHERE job_id = OLD.id;
END;
