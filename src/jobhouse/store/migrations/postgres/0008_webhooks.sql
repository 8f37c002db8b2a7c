-- Webhooks: a job's own callback URL, workspace subscriptions, and the outbox of deliveries.
-- A trigger fills the outbox in the transaction that ends a job, so no terminal write can commit
-- without its deliveries, and no write path can forget them (see jobhouse.webhooks).
-- The change log's trigger already NOTIFYs 'v' for the same statement: senders elsewhere wake.
ALTER TABLE {schema}.jobs ADD COLUMN callback_url text;

-- `events` and `types`: the event names and job kinds wanted (NULL: all).
CREATE TABLE {schema}.webhook_subscriptions (
    id         uuid PRIMARY KEY,
    workspace  text NOT NULL,
    url        text NOT NULL,
    secret     text NOT NULL,
    events     text[],
    types      text[],
    created_at timestamptz NOT NULL
);
CREATE INDEX webhook_subscriptions_by_workspace ON {schema}.webhook_subscriptions (workspace, created_at);

-- The secret that signs the deliveries of jobs' own callback URLs, one per workspace.
CREATE TABLE {schema}.webhook_secrets (
    workspace  text PRIMARY KEY,
    secret     text NOT NULL,
    created_at timestamptz NOT NULL
);

-- The outbox. `subscription_id` NULL: the job's callback (signed with the workspace's secret).
-- A pending delivery is due at `next_at`; a sender claims it by moving `next_at` a lease ahead
-- and counting the attempt, so a sender that dies leaves it due again once the lease has passed.
CREATE TABLE {schema}.webhook_deliveries (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    job_id           uuid NOT NULL,
    workspace        text NOT NULL,
    subscription_id  uuid,
    url              text NOT NULL,
    event            text NOT NULL,
    status           text NOT NULL DEFAULT 'pending',
    attempts         integer NOT NULL DEFAULT 0,
    next_at          timestamptz NOT NULL,
    last_status_code integer,
    last_error       text,
    last_attempt_at  timestamptz,
    created_at       timestamptz NOT NULL,
    delivered_at     timestamptz
);
CREATE INDEX webhook_deliveries_due ON {schema}.webhook_deliveries (next_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_by_job ON {schema}.webhook_deliveries (job_id, created_at DESC, id DESC);
CREATE INDEX webhook_deliveries_by_workspace ON {schema}.webhook_deliveries (workspace, created_at DESC, id DESC);

-- A row trigger, and only for a row whose status just became terminal (its WHEN clause): every
-- other update of a job (claims, progress, heartbeats) runs no code for webhooks at all.
CREATE FUNCTION {schema}.webhook_deliveries_owed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.callback_url IS NOT NULL THEN
        INSERT INTO {schema}.webhook_deliveries (job_id, workspace, subscription_id, url, event, next_at, created_at)
        VALUES (NEW.id, NEW.workspace, NULL, NEW.callback_url, 'job.' || NEW.status, NEW.updated_at, NEW.updated_at);
    END IF;
    INSERT INTO {schema}.webhook_deliveries (job_id, workspace, subscription_id, url, event, next_at, created_at)
    SELECT NEW.id, NEW.workspace, s.id, s.url, 'job.' || NEW.status, NEW.updated_at, NEW.updated_at
    FROM {schema}.webhook_subscriptions s
    WHERE s.workspace = NEW.workspace
      AND (s.events IS NULL OR 'job.' || NEW.status = ANY(s.events))
      AND (s.types IS NULL OR NEW.kind = ANY(s.types));
    RETURN NULL;
END
$$;

CREATE FUNCTION {schema}.webhook_deliveries_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM {schema}.webhook_deliveries w USING deleted_jobs d WHERE w.job_id = d.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER webhook_deliveries_owed AFTER UPDATE OF status ON {schema}.jobs FOR EACH ROW
    WHEN (NEW.status IN ('completed', 'failed', 'cancelled') AND OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION {schema}.webhook_deliveries_owed();
CREATE TRIGGER webhook_deliveries_deleted AFTER DELETE ON {schema}.jobs
    REFERENCING OLD TABLE AS deleted_jobs FOR EACH STATEMENT EXECUTE FUNCTION {schema}.webhook_deliveries_deleted();
