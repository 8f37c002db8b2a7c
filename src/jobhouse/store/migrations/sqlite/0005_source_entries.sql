-- Sources yield entries (what one source knows of one application); searches merge them into
-- candidates in memory. Entries replace the old per-source candidates: every source syncs again
-- on first use. `generation` moves at each sync of a source, so a process reloads only what changed.
DROP TABLE candidates;
CREATE TABLE source_entries (
    source      TEXT NOT NULL,
    id          TEXT NOT NULL,
    app         TEXT NOT NULL,
    name        TEXT NOT NULL,
    os          TEXT NOT NULL,
    kind        TEXT NOT NULL,
    version     TEXT,
    launch      TEXT,
    install     TEXT,
    description TEXT,
    keywords    TEXT NOT NULL DEFAULT '[]',
    installed   INTEGER NOT NULL DEFAULT 0,
    popularity  REAL NOT NULL DEFAULT 0,
    files       TEXT NOT NULL DEFAULT '[]',
    program     INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (source, id)
);
DELETE FROM sources;
ALTER TABLE sources ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sources ADD COLUMN fingerprint TEXT;
UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'catalog_version';
