-- How to get a candidate that is not installed yet (apt packages, catalog entries).
ALTER TABLE candidates ADD COLUMN install TEXT;
