-- One counter bumped by every administrative transaction, so a server that did not make a
-- change (another process, another node) notices it by polling one row.
CREATE TABLE directory_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO directory_version (id, version) VALUES (1, 0);

-- `keycard audit show REQUEST_ID` finds one attempt.
CREATE INDEX login_audit_request ON login_audit (request_id);
