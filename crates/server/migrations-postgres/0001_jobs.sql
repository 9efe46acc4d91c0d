-- proofmill job store on PostgreSQL (cluster mode). The same tables and columns as the SQLite
-- store (migrations/), with PostgreSQL types. Times are Unix milliseconds from the database's
-- clock; flags are 0/1 integers so that both stores read them the same way.
CREATE TABLE jobs (
    seq              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id               TEXT    NOT NULL UNIQUE,
    tenant           TEXT    NOT NULL,
    kind             TEXT    NOT NULL,
    circuit          TEXT,
    request          TEXT    NOT NULL,
    priority         BIGINT  NOT NULL DEFAULT 0,
    status           TEXT    NOT NULL,
    stage            TEXT,
    progress         DOUBLE PRECISION NOT NULL DEFAULT 0,
    device           TEXT,
    error            TEXT,
    attempts         BIGINT  NOT NULL DEFAULT 0,
    retry_reason     TEXT,
    exclude_device   TEXT,
    cancel_requested BIGINT  NOT NULL DEFAULT 0,
    proof_path       TEXT,
    created_ms       BIGINT  NOT NULL,
    started_ms       BIGINT,
    finished_ms      BIGINT,
    node             TEXT,
    lease_expires_ms BIGINT,
    heartbeat_ms     BIGINT,
    failures         BIGINT  NOT NULL DEFAULT 0,
    dead_letter      BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX jobs_queue ON jobs (status, priority DESC, seq);
CREATE INDEX jobs_tenant ON jobs (tenant, seq);
CREATE INDEX jobs_leases ON jobs (status, lease_expires_ms);

CREATE TABLE idempotency (
    tenant       TEXT   NOT NULL,
    key          TEXT   NOT NULL,
    request_hash TEXT   NOT NULL,
    job_id       TEXT   NOT NULL,
    created_ms   BIGINT NOT NULL,
    PRIMARY KEY (tenant, key)
);

CREATE TABLE api_keys (
    key_hash   TEXT   PRIMARY KEY,
    tenant     TEXT   NOT NULL,
    admin      BIGINT NOT NULL DEFAULT 0,
    created_ms BIGINT NOT NULL
);

CREATE TABLE usage (
    tenant         TEXT   NOT NULL,
    device_kind    TEXT   NOT NULL,
    device_seconds DOUBLE PRECISION NOT NULL DEFAULT 0,
    jobs           BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, device_kind)
);

CREATE TABLE circuit_keys (
    circuit    TEXT   PRIMARY KEY,
    vk_hash    TEXT   NOT NULL,
    updated_ms BIGINT NOT NULL
);

CREATE TABLE job_attempts (
    job_id     TEXT   NOT NULL,
    attempt    BIGINT NOT NULL,
    node       TEXT   NOT NULL,
    device     TEXT   NOT NULL,
    started_ms BIGINT NOT NULL,
    ended_ms   BIGINT,
    outcome    TEXT,
    detail     TEXT,
    PRIMARY KEY (job_id, attempt)
);

CREATE TABLE nodes (
    node_id       TEXT   PRIMARY KEY,
    advertise_url TEXT,
    version       TEXT   NOT NULL,
    started_ms    BIGINT NOT NULL,
    heartbeat_ms  BIGINT NOT NULL,
    devices       TEXT   NOT NULL
);
