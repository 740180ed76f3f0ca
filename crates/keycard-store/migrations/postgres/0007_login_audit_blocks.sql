-- SQLite's migration of this name moves its login trail into blocks (one row per batch).
-- PostgreSQL keeps a row per record: its server, not the request's core, does that work. This
-- no-op keeps both backends' migrations under the same names.
SELECT 1;
