-- Every login wrote an entry into this index (about 2,100 instructions of the request's
-- ~55,000 in the load benchmark), and no read of the trail used it: the trail is read newest
-- first (ORDER BY id), which SQLite answers by walking the table backwards and stopping at the
-- limit. Without statistics, SQLite's planner would take an equality on account_id through
-- this index to mean a few rows, and sort every login of the account (all of them, on a
-- server with one account) to find the newest. `login_audit_request` stays: `keycard audit
-- show REQUEST_ID` looks one attempt up through it.
DROP INDEX IF EXISTS login_audit_account_at;
