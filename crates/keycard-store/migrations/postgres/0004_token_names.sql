-- `keycard token show|revoke NAME` looks tokens up by name: without this index every lookup
-- (and every token creation, which reads the new row back) scanned the account's tokens.
CREATE INDEX tokens_account_name ON tokens (account_id, name);
