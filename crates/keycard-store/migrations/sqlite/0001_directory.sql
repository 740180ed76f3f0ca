-- The directory: accounts, integration records, roles, users, access tokens, and the audit
-- trails. Times are Unix seconds; flags are 0/1; lists are JSON text; secrets are sealed
-- (see src/crypto.rs) and stored as bytes.
CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    features TEXT NOT NULL,
    tier TEXT NOT NULL,
    suitecloud_plus_licenses BIGINT NOT NULL,
    concurrency_limit_override BIGINT,
    require_approval BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE integrations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    state TEXT NOT NULL,
    application_id TEXT NOT NULL UNIQUE,
    flags TEXT NOT NULL,
    concurrency_limit BIGINT,
    consumer_key TEXT NOT NULL UNIQUE,
    consumer_secret BLOB NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX integrations_live_name ON integrations (account_id, name) WHERE state <> 'deleted';

CREATE TABLE roles (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    name TEXT NOT NULL,
    records TEXT NOT NULL,
    setup TEXT NOT NULL,
    web_services_only BIGINT NOT NULL,
    two_factor_required BIGINT NOT NULL,
    allowed_ips TEXT NOT NULL,
    UNIQUE (account_id, name)
);

CREATE TABLE users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    email TEXT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    password_hash TEXT,
    totp_secret BLOB,
    created_at BIGINT NOT NULL,
    UNIQUE (account_id, email)
);

CREATE TABLE user_roles (
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role_id BIGINT NOT NULL REFERENCES roles(id),
    PRIMARY KEY (user_id, role_id)
);

CREATE TABLE tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    name TEXT NOT NULL,
    integration_id BIGINT NOT NULL REFERENCES integrations(id),
    user_id BIGINT NOT NULL REFERENCES users(id),
    role_id BIGINT NOT NULL REFERENCES roles(id),
    token_id TEXT NOT NULL UNIQUE,
    token_secret BLOB NOT NULL,
    state TEXT NOT NULL,
    revoked_at BIGINT,
    revoked_by TEXT,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    last_used_at BIGINT,
    last_used_ip TEXT,
    expires_at BIGINT
);
CREATE INDEX tokens_account ON tokens (account_id);

CREATE TABLE admin_audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    account_id TEXT,
    action TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    detail TEXT NOT NULL
);

CREATE TABLE login_audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at BIGINT NOT NULL,
    request_id TEXT NOT NULL,
    ip TEXT NOT NULL,
    account_id TEXT,
    integration_name TEXT,
    token_name TEXT,
    user_email TEXT,
    role_name TEXT,
    surface TEXT NOT NULL,
    request_uri TEXT NOT NULL,
    status TEXT NOT NULL,
    detail TEXT NOT NULL,
    diagnosis TEXT NOT NULL
);
CREATE INDEX login_audit_account_at ON login_audit (account_id, at);
