-- Numbering kept in step with SQLite's 0006 (its signal counters): PostgreSQL tells other
-- processes with NOTIFY, in the statement that changes the rows, so there is nothing to do.
SELECT 1;
