-- How to get a candidate that is not installed yet (apt packages, catalog entries).
ALTER TABLE {schema}.candidates ADD COLUMN install text;
