-- What each directory version changed (its change events as JSON, and the store process that
-- made it, which applied them itself), so that a server that sees the version move drops only
-- those entities from its cache, not everything. Each committed change bumps the version once
-- and writes its row in the same transaction; old rows are pruned (a server that fell further
-- behind drops everything, as before).
CREATE TABLE directory_changes (
    version BIGINT PRIMARY KEY,
    origin TEXT NOT NULL,
    events TEXT NOT NULL
);
