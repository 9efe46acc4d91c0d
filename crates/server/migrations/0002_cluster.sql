-- Leases, retry budget, dead letters, attempt history and node registry (cluster mode; a
-- single SQLite node uses them too). Times are Unix milliseconds from the database's clock.
ALTER TABLE jobs ADD COLUMN node TEXT;                          -- node that runs or ran it
ALTER TABLE jobs ADD COLUMN lease_expires_ms INTEGER;           -- running: heartbeat deadline
ALTER TABLE jobs ADD COLUMN heartbeat_ms INTEGER;               -- running: last heartbeat
ALTER TABLE jobs ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;     -- retryable failures so far
ALTER TABLE jobs ADD COLUMN dead_letter INTEGER NOT NULL DEFAULT 0;  -- 1: gave up after max attempts
CREATE INDEX jobs_leases ON jobs (status, lease_expires_ms);

CREATE TABLE job_attempts (
    job_id     TEXT    NOT NULL,
    attempt    INTEGER NOT NULL,
    node       TEXT    NOT NULL,
    device     TEXT    NOT NULL,
    started_ms INTEGER NOT NULL,
    ended_ms   INTEGER,
    outcome    TEXT,           -- succeeded | failed | retry | cancelled | lease_expired | requeued | superseded
    detail     TEXT,
    PRIMARY KEY (job_id, attempt)
);

CREATE TABLE nodes (
    node_id       TEXT    PRIMARY KEY,
    advertise_url TEXT,
    version       TEXT    NOT NULL,
    started_ms    INTEGER NOT NULL,
    heartbeat_ms  INTEGER NOT NULL,
    devices       TEXT    NOT NULL   -- JSON array of DeviceInfo
);
