-- What other processes learn from a commit: each counter moves in the transaction of a write of
-- its kind, and a process that sees the file change reads them to know whether to wake its idle
-- workers (work) or refresh its long-polls and running attempts (ended, stopped). Progress
-- reports and heartbeats move none, so they wake nobody.
CREATE TABLE signals (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL DEFAULT 0
);
INSERT INTO signals (name) VALUES ('work'), ('ended'), ('stopped');
