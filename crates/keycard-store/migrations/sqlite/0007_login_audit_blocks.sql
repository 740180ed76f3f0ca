-- The login trail in blocks: one row per batch the server writes, its records end to end in
-- the encoding of src/login_blocks.rs. A row per record (login_audit) cost most of an
-- authenticated request's storage work; rows written before this migration stay there and
-- are read after the blocks. first_at and last_at bound the records' times, so reads with
-- `since` or `until` skip blocks without decoding them.
CREATE TABLE login_audit_blocks (
    id INTEGER PRIMARY KEY,
    first_at BIGINT NOT NULL,
    last_at BIGINT NOT NULL,
    records BLOB NOT NULL
);

-- Each record's request id (as an integer: src/login_blocks.rs, request_key) and its block,
-- for `keycard audit show REQUEST_ID`. One B-tree, no table behind it.
CREATE TABLE login_audit_request_keys (
    request_key BIGINT NOT NULL,
    block BIGINT NOT NULL,
    PRIMARY KEY (request_key, block)
) WITHOUT ROWID;
