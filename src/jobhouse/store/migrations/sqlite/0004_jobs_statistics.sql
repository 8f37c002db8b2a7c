-- Numbering kept in step with PostgreSQL's 0004 (statistics there); SQLite plans claims from the
-- partial index without statistics, so there is nothing to do.
SELECT 1;
