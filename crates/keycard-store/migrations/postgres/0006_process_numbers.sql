-- One number per `keycard serve` process, taken at startup (Store::next_process_number): its
-- request ids start with it, so they are unique across every process that writes this audit
-- trail (restarts, nodes). Before, each process drew a random prefix, and two of them drew the
-- same one with odds of about n^2 / 2^25 over n starts.
CREATE TABLE process_numbers (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    last BIGINT NOT NULL
);
INSERT INTO process_numbers (id, last) VALUES (1, 0);
