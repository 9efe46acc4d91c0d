-- proofmill job store. Times are Unix milliseconds.
CREATE TABLE jobs (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    id               TEXT    NOT NULL UNIQUE,
    tenant           TEXT    NOT NULL,
    kind             TEXT    NOT NULL,          -- prove | aggregate
    circuit          TEXT,                      -- prove jobs: the catalog name
    request          TEXT    NOT NULL,          -- the validated request, JSON
    priority         INTEGER NOT NULL DEFAULT 0,
    status           TEXT    NOT NULL,          -- queued | running | succeeded | failed | cancelled
    stage            TEXT,
    progress         REAL    NOT NULL DEFAULT 0,
    device           TEXT,
    error            TEXT,
    attempts         INTEGER NOT NULL DEFAULT 0,
    retry_reason     TEXT,
    exclude_device   TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    proof_path       TEXT,
    created_ms       INTEGER NOT NULL,
    started_ms       INTEGER,
    finished_ms      INTEGER
);
CREATE INDEX jobs_queue ON jobs (status, priority DESC, seq);
CREATE INDEX jobs_tenant ON jobs (tenant, seq);

CREATE TABLE idempotency (
    tenant       TEXT    NOT NULL,
    key          TEXT    NOT NULL,
    request_hash TEXT    NOT NULL,
    job_id       TEXT    NOT NULL,
    created_ms   INTEGER NOT NULL,
    PRIMARY KEY (tenant, key)
);

CREATE TABLE api_keys (
    key_hash   TEXT    PRIMARY KEY,             -- SHA-256 of the key, hex
    tenant     TEXT    NOT NULL,
    admin      INTEGER NOT NULL DEFAULT 0,
    created_ms INTEGER NOT NULL
);

CREATE TABLE usage (
    tenant         TEXT    NOT NULL,
    device_kind    TEXT    NOT NULL,
    device_seconds REAL    NOT NULL DEFAULT 0,
    jobs           INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, device_kind)
);

CREATE TABLE circuit_keys (
    circuit    TEXT    PRIMARY KEY,
    vk_hash    TEXT    NOT NULL,
    updated_ms INTEGER NOT NULL
);
