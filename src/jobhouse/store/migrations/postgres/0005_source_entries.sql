-- Sources yield entries (what one source knows of one application); searches merge them into
-- candidates in memory. Entries replace the old per-source candidates: every source syncs again
-- on first use. `generation` moves at each sync of a source, so a process reloads only what changed.
DROP TABLE {schema}.candidates;
CREATE TABLE {schema}.source_entries (
    source      text NOT NULL,
    id          text NOT NULL,
    app         text NOT NULL,
    name        text NOT NULL,
    os          text NOT NULL,
    kind        text NOT NULL,
    version     text,
    launch      text,
    install     text,
    description text,
    keywords    jsonb NOT NULL DEFAULT '[]',
    installed   boolean NOT NULL DEFAULT false,
    popularity  double precision NOT NULL DEFAULT 0,
    files       jsonb NOT NULL DEFAULT '[]',
    program     boolean NOT NULL DEFAULT true,
    PRIMARY KEY (source, id)
);
DELETE FROM {schema}.sources;
ALTER TABLE {schema}.sources ADD COLUMN generation bigint NOT NULL DEFAULT 0;
ALTER TABLE {schema}.sources ADD COLUMN fingerprint text;
UPDATE {schema}.meta SET value = (value::bigint + 1)::text WHERE key = 'catalog_version';
