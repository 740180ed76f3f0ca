-- SQLite's migration of this name indexes its trail's blocks by request-key ranges.
-- PostgreSQL keeps a row per record (migration 0007); this no-op keeps both backends'
-- migrations under the same names.
SELECT 1;
