-- The trail's request keys as ranges: a row per block (usually) instead of a row per record,
-- which cost about 2,000 instructions of every authenticated request. keycard's request ids
-- count up within a process, so a block's keys lie close together; src/login_blocks.rs
-- (key_ranges) splits them into ranges at most MAX_KEY_RANGE_WIDTH wide, and a lookup reads
-- the ranges that start that far below its key. A range may cover keys of other blocks'
-- requests: lookups compare the ids in the blocks they read.
CREATE TABLE login_audit_key_ranges (
    first_key BIGINT NOT NULL,
    last_key BIGINT NOT NULL,
    block BIGINT NOT NULL,
    PRIMARY KEY (first_key, block)
) WITHOUT ROWID;

-- The keys written before: each a range of one.
INSERT INTO login_audit_key_ranges (first_key, last_key, block)
    SELECT request_key, request_key, block FROM login_audit_request_keys;

DROP TABLE login_audit_request_keys;
