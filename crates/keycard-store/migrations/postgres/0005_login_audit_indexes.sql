-- SQLite's migration of this name drops login_audit_account_at. On PostgreSQL it stays: the
-- planner has statistics, so it takes the index only for an account that holds few of the
-- trail's rows (a server shared by many accounts), and the index's upkeep is the database
-- server's work, not the request path's.
SELECT 1;
