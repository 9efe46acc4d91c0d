//! The job store: every job, its state, its leases and attempt history, idempotency keys,
//! API keys, usage and the cluster's nodes. One code path over two databases:
//!
//! - SQLite (the default, one node): WAL with `synchronous=FULL`, so a job is on disk before
//!   the 202 that acknowledges it;
//! - PostgreSQL (cluster mode, `database_url = "postgres://..."`): every node of a cluster
//!   runs against the same database.
//!
//! A claim is a *lease*: the claiming node must renew it ([`JobStore::renew`]) before it
//! expires, and every claim increments the job's `attempts`, which fences stale workers: a
//! worker can change a job only under the attempt it claimed. Leases that expire (the node
//! died or lost the database) are re-queued by any node without spending the job's retry
//! budget; retryable failures spend it, and a job that exhausts it is dead-lettered with its
//! history kept in `job_attempts`. A late proof is still accepted while the job has no
//! outcome: a proof the verifier accepted is never thrown away. Lease times come from the
//! database's clock, so nodes' clocks need not agree.
//!
//! The store holds rows, not proofs: proofs live in the artifact store and the row names
//! them. It knows nothing of HTTP or proving.

use std::{
    path::Path,
    str::FromStr,
    sync::{Arc, Once},
    time::Duration,
};

use serde::{Deserialize, Serialize};
use sqlx::{
    any::{AnyConnectOptions, AnyPoolOptions, AnyRow},
    AnyPool, Connection, Executor, Row,
};

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database failed.
    #[error("job database: {0}")]
    Db(#[from] sqlx::Error),
    /// The schema could not be brought up to date.
    #[error("job database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database did not answer in time.
    #[error("job database: {0}")]
    Timeout(String),
    /// The database URL is not one the store can use.
    #[error("job database URL: {0}")]
    Url(String),
    /// A row holds a value this version does not understand.
    #[error("job database row: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// The database cannot be reached now (restarting, network, pool exhausted): worth
    /// retrying, unlike a query or data error.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Db(e) => {
                matches!(
                    e,
                    sqlx::Error::Io(_)
                        | sqlx::Error::PoolTimedOut
                        | sqlx::Error::PoolClosed
                        | sqlx::Error::WorkerCrashed
                        | sqlx::Error::Tls(_)
                ) || e
                    .as_database_error()
                    .and_then(|d| d.code())
                    // PostgreSQL: admin shutdown, crash shutdown, cannot connect now.
                    .is_some_and(|code| matches!(&*code, "57P01" | "57P02" | "57P03"))
            }
            Self::Timeout(_) => true,
            _ => false,
        }
    }
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    /// Accepted, waiting for a device (or for its input jobs).
    Queued,
    /// On a device.
    Running,
    /// Proved; the proof can be fetched.
    Succeeded,
    /// Could not be proved; `error` says why.
    Failed,
    /// Cancelled by its owner.
    Cancelled,
}

impl JobStatus {
    /// All statuses.
    pub const ALL: [JobStatus; 5] = [
        Self::Queued,
        Self::Running,
        Self::Succeeded,
        Self::Failed,
        Self::Cancelled,
    ];

    /// The stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    /// True once the job will not change again.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }
}

impl FromStr for JobStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| {
                format!("unknown status {s:?}: expected queued, running, succeeded, failed or cancelled")
            })
    }
}

/// A job as stored.
#[derive(Debug, Clone)]
pub struct JobRecord {
    /// Insertion order; the list cursor.
    pub seq: i64,
    /// Public id.
    pub id: String,
    /// Owner.
    pub tenant: String,
    /// `prove` or `aggregate`.
    pub kind: String,
    /// Prove jobs: the circuit.
    pub circuit: Option<String>,
    /// The validated request (JSON).
    pub request: serde_json::Value,
    /// Higher runs first.
    pub priority: i64,
    /// Status.
    pub status: JobStatus,
    /// Current stage while running.
    pub stage: Option<String>,
    /// 0..1.
    pub progress: f64,
    /// Device it runs or ran on.
    pub device: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// How many times it was claimed: the attempt number of the latest claim, which fences
    /// workers of earlier attempts.
    pub attempts: i64,
    /// Retryable failures so far (lease expiries and shutdowns do not count).
    pub failures: i64,
    /// It failed `max_attempts` times and was given up; `job_attempts` keeps its history.
    pub dead_letter: bool,
    /// The node that runs or ran it.
    pub node: Option<String>,
    /// While running: when its lease expires unless renewed (Unix ms, database clock).
    pub lease_expires_ms: Option<i64>,
    /// Why it was retried or re-queued.
    pub retry_reason: Option<String>,
    /// A device not to use again (it failed there).
    pub exclude_device: Option<String>,
    /// Cancel was asked for while running.
    pub cancel_requested: bool,
    /// Where the proof is stored, once succeeded.
    pub proof_path: Option<String>,
    /// Unix ms.
    pub created_ms: i64,
    /// Unix ms of the (last) start.
    pub started_ms: Option<i64>,
    /// Unix ms of the end.
    pub finished_ms: Option<i64>,
}

/// A job to insert.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// Public id.
    pub id: String,
    /// Owner.
    pub tenant: String,
    /// `prove` or `aggregate`.
    pub kind: String,
    /// Prove jobs: the circuit.
    pub circuit: Option<String>,
    /// The validated request.
    pub request: serde_json::Value,
    /// Higher runs first.
    pub priority: i64,
}

/// What inserting a job did.
#[derive(Debug, Clone)]
pub enum Insert {
    /// A new job was stored.
    Created(JobRecord),
    /// The idempotency key named an earlier job with the same request: that job.
    Existing(JobRecord),
    /// The idempotency key was used before with a different request.
    KeyMismatch {
        /// The job the key belongs to.
        job_id: String,
    },
    /// The tenant already has this many jobs queued or running.
    TooMany {
        /// Its outstanding jobs.
        outstanding: u64,
    },
}

/// Device-seconds used by one tenant on one kind of device.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UsageRow {
    /// Tenant.
    pub tenant: String,
    /// `cpu` or `gpu`.
    pub device_kind: String,
    /// Seconds of device time its jobs used.
    pub device_seconds: f64,
    /// Jobs finished (any outcome) on that kind.
    pub jobs: i64,
}

/// An API key's owner.
#[derive(Debug, Clone)]
pub struct KeyOwner {
    /// Tenant.
    pub tenant: String,
    /// May see all usage.
    pub admin: bool,
}

/// One claim of a job: who ran it and how it ended.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AttemptRecord {
    /// Attempt number (the job's `attempts` when it was claimed).
    pub attempt: i64,
    /// Node that claimed it.
    pub node: String,
    /// Device on that node.
    pub device: String,
    /// Unix ms.
    pub started_ms: i64,
    /// Unix ms, once it ended.
    pub ended_ms: Option<i64>,
    /// `succeeded`, `failed`, `retry`, `cancelled`, `lease_expired`, `requeued` or
    /// `superseded` (another attempt's proof was recorded first); none while it runs.
    pub outcome: Option<String>,
    /// The error or reason.
    pub detail: Option<String>,
}

/// A node of the cluster, as registered in the store.
#[derive(Debug, Clone)]
pub struct NodeRecord {
    /// Its `node_id`.
    pub node_id: String,
    /// Where its API is reachable, when configured.
    pub advertise_url: Option<String>,
    /// proofmill version it runs.
    pub version: String,
    /// Unix ms.
    pub started_ms: i64,
    /// Last heartbeat, Unix ms (database clock).
    pub heartbeat_ms: i64,
    /// Its devices (JSON array of `DeviceInfo`).
    pub devices: serde_json::Value,
}

/// What renewing a lease found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lease {
    /// Still ours, renewed.
    Held {
        /// The owner asked for a cancel.
        cancel_requested: bool,
    },
    /// No longer ours: it expired and was re-queued (perhaps claimed again), or the job
    /// ended.
    Lost,
}

/// What recording a proof did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completed {
    /// The job succeeded with this proof.
    Recorded,
    /// The job already had an outcome (another attempt's proof, a cancel); nothing changed.
    AlreadyEnded,
}

/// What a retryable failure did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retried {
    /// Back in the queue.
    Requeued,
    /// Out of attempts: failed, dead-lettered.
    DeadLettered,
    /// The attempt no longer holds the job (fenced); nothing changed.
    Fenced,
}

/// A lease that expired and was re-queued.
#[derive(Debug, Clone)]
pub struct Reaped {
    /// The job.
    pub job_id: String,
    /// The attempt whose lease expired.
    pub attempt: i64,
    /// The node that held it.
    pub node: Option<String>,
}

/// Now, in Unix milliseconds (this host's clock).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// One node, one file.
    Sqlite,
    /// A cluster's shared database.
    Postgres,
}

impl Backend {
    /// The database's clock in Unix ms, as SQL.
    fn now(self) -> &'static str {
        match self {
            Self::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
            Self::Postgres => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
        }
    }

    /// `FOR UPDATE SKIP LOCKED` where the database has row locks: a node never waits for a
    /// row another node is claiming, it moves on.
    fn skip_locked(self) -> &'static str {
        match self {
            Self::Sqlite => "",
            Self::Postgres => " FOR UPDATE SKIP LOCKED",
        }
    }
}

/// The job database (SQLite or PostgreSQL).
#[derive(Debug, Clone)]
pub struct JobStore {
    pool: AnyPool,
    backend: Backend,
    describe: Arc<str>,
}

const COLUMNS: &str = "seq, id, tenant, kind, circuit, request, priority, status, stage, progress, device, error, attempts, failures, dead_letter, node, lease_expires_ms, retry_reason, exclude_device, cancel_requested, proof_path, created_ms, started_ms, finished_ms";

fn record(row: &AnyRow) -> Result<JobRecord, StoreError> {
    let status: String = row.try_get("status")?;
    let request: String = row.try_get("request")?;
    Ok(JobRecord {
        seq: row.try_get("seq")?,
        id: row.try_get("id")?,
        tenant: row.try_get("tenant")?,
        kind: row.try_get("kind")?,
        circuit: row.try_get("circuit")?,
        request: serde_json::from_str(&request)
            .map_err(|e| StoreError::Corrupt(format!("request: {e}")))?,
        priority: row.try_get("priority")?,
        status: status.parse().map_err(StoreError::Corrupt)?,
        stage: row.try_get("stage")?,
        progress: row.try_get("progress")?,
        device: row.try_get("device")?,
        error: row.try_get("error")?,
        attempts: row.try_get("attempts")?,
        failures: row.try_get("failures")?,
        dead_letter: row.try_get::<i64, _>("dead_letter")? != 0,
        node: row.try_get("node")?,
        lease_expires_ms: row.try_get("lease_expires_ms")?,
        retry_reason: row.try_get("retry_reason")?,
        exclude_device: row.try_get("exclude_device")?,
        cancel_requested: row.try_get::<i64, _>("cancel_requested")? != 0,
        proof_path: row.try_get("proof_path")?,
        created_ms: row.try_get("created_ms")?,
        started_ms: row.try_get("started_ms")?,
        finished_ms: row.try_get("finished_ms")?,
    })
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations-postgres");

/// A database URL with its password hidden, for logs.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

impl JobStore {
    /// Opens (creating if needed) the SQLite database at `path` and brings its schema up to
    /// date.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| StoreError::Corrupt(format!("creating {}: {e}", dir.display())))?;
            }
        }
        let text = path
            .to_str()
            .ok_or_else(|| StoreError::Url(format!("{} is not UTF-8", path.display())))?;
        // The path travels in a URL: escape what the URL would otherwise read as syntax.
        let escaped = text
            .replace('%', "%25")
            .replace('?', "%3F")
            .replace('#', "%23");
        Self::connect(&format!("sqlite://{escaped}?mode=rwc")).await
    }

    /// Connects to `postgres://...` (or `sqlite://...`) and brings its schema up to date.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        static DRIVERS: Once = Once::new();
        DRIVERS.call_once(sqlx::any::install_default_drivers);
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            return Err(StoreError::Url(format!(
                "{}: expected postgres://USER:PASSWORD@HOST:PORT/DATABASE",
                redact_url(url)
            )));
        };
        let options: AnyConnectOptions = url
            .parse()
            .map_err(|e| StoreError::Url(format!("{}: {e}", redact_url(url))))?;
        let pool = match backend {
            Backend::Sqlite => {
                AnyPoolOptions::new()
                    .max_connections(4)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            conn.execute("PRAGMA journal_mode = WAL").await?;
                            conn.execute("PRAGMA synchronous = FULL").await?;
                            conn.execute("PRAGMA busy_timeout = 10000").await?;
                            Ok(())
                        })
                    })
                    .connect_with(options)
                    .await?
            }
            Backend::Postgres => {
                AnyPoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options)
                    .await?
            }
        };
        match backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&pool).await?,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&pool).await?,
        }
        Ok(Self {
            pool,
            backend,
            describe: redact_url(url).into(),
        })
    }

    /// The database it runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The database URL, password hidden.
    pub fn describe(&self) -> &str {
        &self.describe
    }

    /// Stores a job, honouring its idempotency key and the tenant's limit, in one
    /// transaction that serialises a tenant's submissions (SQLite: `BEGIN IMMEDIATE`, since a
    /// deferred transaction could not upgrade to a write while another connection writes;
    /// PostgreSQL: a transaction-scoped advisory lock on the tenant). It runs as its own task,
    /// so a client that disconnects cannot leave the transaction half done.
    pub async fn insert(
        &self,
        job: NewJob,
        idempotency: Option<(&str, &str)>,
        max_outstanding: u64,
    ) -> Result<Insert, StoreError> {
        let store = self.clone();
        let idempotency = idempotency.map(|(k, h)| (k.to_owned(), h.to_owned()));
        let task = tokio::spawn(async move {
            let mut conn = store.pool.acquire().await?;
            let begin = match store.backend {
                Backend::Sqlite => "BEGIN IMMEDIATE",
                Backend::Postgres => "BEGIN",
            };
            sqlx::query(begin).execute(&mut *conn).await?;
            let mut result = Ok(Inserted::Created);
            if store.backend == Backend::Postgres {
                result = sqlx::query(
                    "SELECT 1 AS locked FROM (SELECT pg_advisory_xact_lock(hashtext($1))) AS l",
                )
                .bind(&job.tenant)
                .execute(&mut *conn)
                .await
                .map(|_| Inserted::Created)
                .map_err(StoreError::from);
            }
            if result.is_ok() {
                result = insert_in(
                    &mut conn,
                    store.backend,
                    &job,
                    idempotency.as_ref(),
                    max_outstanding,
                )
                .await;
            }
            let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
            let ended = sqlx::query(end).execute(&mut *conn).await;
            if ended.is_err() {
                // The connection's state is unknown: do not hand it back to the pool.
                let _ = conn.detach().close().await;
            } else {
                drop(conn);
            }
            let inserted = result?;
            ended?;
            match inserted {
                Inserted::Existing(id) => match store.get(&id).await? {
                    Some(existing) => Ok(Insert::Existing(existing)),
                    None => Err(StoreError::Corrupt(format!(
                        "idempotency key names job {id}, which is missing"
                    ))),
                },
                Inserted::KeyMismatch(job_id) => Ok(Insert::KeyMismatch { job_id }),
                Inserted::TooMany(outstanding) => Ok(Insert::TooMany { outstanding }),
                Inserted::Created => match store.get(&job.id).await? {
                    Some(created) => Ok(Insert::Created(created)),
                    None => Err(StoreError::Corrupt(format!("job {} vanished", job.id))),
                },
            }
        });
        task.await
            .map_err(|e| StoreError::Corrupt(format!("insert task: {e}")))?
    }

    /// A job by id, whoever owns it.
    pub async fn get(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM jobs WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(record).transpose()
    }

    /// A tenant's jobs, newest first, after `before_seq` (the cursor).
    pub async fn list(
        &self,
        tenant: &str,
        status: Option<JobStatus>,
        limit: u32,
        before_seq: Option<i64>,
    ) -> Result<Vec<JobRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM jobs WHERE tenant = $1 AND ($2 IS NULL OR status = $2) AND ($3 IS NULL OR seq < $3) ORDER BY seq DESC LIMIT $4"
        ))
        .bind(tenant)
        .bind(status.map(JobStatus::as_str))
        .bind(before_seq)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(record).collect()
    }

    /// Queued jobs in run order: priority, then first come first served.
    pub async fn queued(&self, limit: u32) -> Result<Vec<JobRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM jobs WHERE status = 'queued' ORDER BY priority DESC, seq ASC LIMIT $1"
        ))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(record).collect()
    }

    /// Claims a queued job for `device` of `node` under a lease of `lease`: returns the new
    /// attempt number, or `None` when the job is no longer queued (another node claimed it,
    /// or it is being claimed right now).
    pub async fn claim(
        &self,
        id: &str,
        node: &str,
        device: &str,
        lease: Duration,
    ) -> Result<Option<i64>, StoreError> {
        let now = self.backend.now();
        let mut tx = self.pool.begin().await?;
        let attempt: Option<i64> = sqlx::query_scalar(&format!(
            "UPDATE jobs SET status = 'running', node = $1, device = $2, stage = 'witness', progress = 0.02, \
             attempts = attempts + 1, started_ms = {now}, heartbeat_ms = {now}, lease_expires_ms = {now} + $3 \
             WHERE id = (SELECT id FROM jobs WHERE id = $4 AND status = 'queued'{}) AND status = 'queued' \
             RETURNING attempts",
            self.backend.skip_locked()
        ))
        .bind(node)
        .bind(device)
        .bind(lease.as_millis() as i64)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(attempt) = attempt {
            sqlx::query(&format!(
                "INSERT INTO job_attempts (job_id, attempt, node, device, started_ms) VALUES ($1, $2, $3, $4, {now})"
            ))
            .bind(id)
            .bind(attempt)
            .bind(node)
            .bind(device)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(attempt)
    }

    /// Renews the lease of `attempt` for another `lease`. [`Lease::Lost`] when the attempt no
    /// longer holds the job.
    pub async fn renew(
        &self,
        id: &str,
        attempt: i64,
        lease: Duration,
    ) -> Result<Lease, StoreError> {
        let now = self.backend.now();
        let cancel: Option<i64> = sqlx::query_scalar(&format!(
            "UPDATE jobs SET heartbeat_ms = {now}, lease_expires_ms = {now} + $1 \
             WHERE id = $2 AND attempts = $3 AND status = 'running' RETURNING cancel_requested"
        ))
        .bind(lease.as_millis() as i64)
        .bind(id)
        .bind(attempt)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match cancel {
            Some(flag) => Lease::Held {
                cancel_requested: flag != 0,
            },
            None => Lease::Lost,
        })
    }

    /// Records the stage a running attempt reached.
    pub async fn set_stage(
        &self,
        id: &str,
        attempt: i64,
        stage: &str,
        progress: f64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE jobs SET stage = $1, progress = $2 WHERE id = $3 AND attempts = $4 AND status = 'running'",
        )
        .bind(stage)
        .bind(progress)
        .bind(id)
        .bind(attempt)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records a verified proof from `attempt`. Accepted while the job has no outcome, even
    /// when the attempt's lease expired and the job was re-queued or claimed again: a proof is
    /// a proof, and the newer attempt is then fenced out.
    pub async fn complete(
        &self,
        id: &str,
        attempt: i64,
        proof_path: &str,
    ) -> Result<Completed, StoreError> {
        let now = self.backend.now();
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(&format!(
            "UPDATE jobs SET status = 'succeeded', error = NULL, proof_path = $1, stage = NULL, progress = 1.0, \
             finished_ms = {now}, lease_expires_ms = NULL WHERE id = $2 AND status IN ('queued', 'running')"
        ))
        .bind(proof_path)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let recorded = done.rows_affected() == 1;
        if recorded {
            // Its row may already say `lease_expired`: the proof came late, and counts.
            sqlx::query(&format!(
                "UPDATE job_attempts SET outcome = 'succeeded', ended_ms = {now}, \
                 detail = CASE WHEN outcome IS NULL THEN NULL ELSE 'a late proof, after: ' || outcome END \
                 WHERE job_id = $1 AND attempt = $2"
            ))
            .bind(id)
            .bind(attempt)
            .execute(&mut *tx)
            .await?;
            // A newer attempt still running has nothing left to do.
            end_attempts(
                &mut tx,
                self.backend,
                id,
                None,
                "superseded",
                Some(&format!("attempt {attempt}'s proof was recorded first")),
            )
            .await?;
        } else {
            end_attempts(
                &mut tx,
                self.backend,
                id,
                Some(attempt),
                "superseded",
                Some("the job already had an outcome"),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(if recorded {
            Completed::Recorded
        } else {
            Completed::AlreadyEnded
        })
    }

    /// Marks `attempt` as superseded: its result came after the job already had one.
    pub async fn supersede(&self, id: &str, attempt: i64, detail: &str) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        end_attempts(
            &mut conn,
            self.backend,
            id,
            Some(attempt),
            "superseded",
            Some(detail),
        )
        .await
    }

    /// Ends a running attempt with a final failure or a cancel. False when `attempt` no
    /// longer holds the job.
    pub async fn finish(
        &self,
        id: &str,
        attempt: i64,
        status: JobStatus,
        error: &str,
    ) -> Result<bool, StoreError> {
        let now = self.backend.now();
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(&format!(
            "UPDATE jobs SET status = $1, error = $2, stage = NULL, finished_ms = {now}, lease_expires_ms = NULL \
             WHERE id = $3 AND attempts = $4 AND status = 'running'"
        ))
        .bind(status.as_str())
        .bind(error)
        .bind(id)
        .bind(attempt)
        .execute(&mut *tx)
        .await?;
        let ended = done.rows_affected() == 1;
        if ended {
            end_attempts(
                &mut tx,
                self.backend,
                id,
                Some(attempt),
                status.as_str(),
                Some(error),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(ended)
    }

    /// Fails a job that never started (it cannot be planned). False when it is no longer
    /// queued.
    pub async fn fail_queued(&self, id: &str, error: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(&format!(
            "UPDATE jobs SET status = 'failed', error = $1, finished_ms = {} WHERE id = $2 AND status = 'queued'",
            self.backend.now()
        ))
        .bind(error)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// A retryable failure of `attempt`: spends one of the job's `max_attempts` and puts it
    /// back in the queue (avoiding `exclude_device` when given), or, when none is left,
    /// fails it as dead-lettered, its history kept.
    pub async fn retry(
        &self,
        id: &str,
        attempt: i64,
        reason: &str,
        exclude_device: Option<&str>,
        max_attempts: u32,
    ) -> Result<Retried, StoreError> {
        let now = self.backend.now();
        let mut tx = self.pool.begin().await?;
        let status: Option<String> = sqlx::query_scalar(&format!(
            "UPDATE jobs SET failures = failures + 1, \
             status = CASE WHEN failures + 1 >= $1 THEN 'failed' ELSE 'queued' END, \
             dead_letter = CASE WHEN failures + 1 >= $1 THEN 1 ELSE 0 END, \
             error = CASE WHEN failures + 1 >= $1 THEN 'gave up after ' || CAST(failures + 1 AS TEXT) || ' failed attempts; the last: ' || $2 ELSE error END, \
             finished_ms = CASE WHEN failures + 1 >= $1 THEN {now} ELSE NULL END, \
             retry_reason = $2, exclude_device = COALESCE($3, exclude_device), \
             stage = NULL, progress = 0, device = CASE WHEN failures + 1 >= $1 THEN device ELSE NULL END, \
             lease_expires_ms = NULL \
             WHERE id = $4 AND attempts = $5 AND status = 'running' RETURNING status"
        ))
        .bind(i64::from(max_attempts))
        .bind(reason)
        .bind(exclude_device)
        .bind(id)
        .bind(attempt)
        .fetch_optional(&mut *tx)
        .await?;
        let result = match status.as_deref() {
            None => Retried::Fenced,
            Some("failed") => Retried::DeadLettered,
            Some(_) => Retried::Requeued,
        };
        if result != Retried::Fenced {
            let outcome = if result == Retried::DeadLettered {
                "failed"
            } else {
                "retry"
            };
            end_attempts(
                &mut tx,
                self.backend,
                id,
                Some(attempt),
                outcome,
                Some(reason),
            )
            .await?;
        }
        settle_cancels(&mut tx, self.backend).await?;
        tx.commit().await?;
        Ok(result)
    }

    /// Puts a running attempt back in the queue without spending the retry budget (the
    /// worker went away, or shutdown stopped it). False when fenced.
    pub async fn requeue(&self, id: &str, attempt: i64, reason: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE jobs SET status = 'queued', stage = NULL, progress = 0, device = NULL, retry_reason = $1, lease_expires_ms = NULL \
             WHERE id = $2 AND attempts = $3 AND status = 'running'",
        )
        .bind(reason)
        .bind(id)
        .bind(attempt)
        .execute(&mut *tx)
        .await?;
        let requeued = done.rows_affected() == 1;
        if requeued {
            end_attempts(
                &mut tx,
                self.backend,
                id,
                Some(attempt),
                "requeued",
                Some(reason),
            )
            .await?;
        }
        settle_cancels(&mut tx, self.backend).await?;
        tx.commit().await?;
        Ok(requeued)
    }

    /// Re-queues every job `node` left running (it crashed, or its shutdown grace period
    /// ran out), without spending retry budgets. Jobs of other nodes are untouched.
    pub async fn requeue_node(&self, node: &str, reason: &str) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let jobs: Vec<(String, i64)> = sqlx::query_as(
            "UPDATE jobs SET status = 'queued', stage = NULL, progress = 0, device = NULL, retry_reason = $1, lease_expires_ms = NULL \
             WHERE status = 'running' AND (node = $2 OR node IS NULL) RETURNING id, attempts",
        )
        .bind(reason)
        .bind(node)
        .fetch_all(&mut *tx)
        .await?;
        for (id, attempt) in &jobs {
            end_attempts(
                &mut tx,
                self.backend,
                id,
                Some(*attempt),
                "requeued",
                Some(reason),
            )
            .await?;
        }
        settle_cancels(&mut tx, self.backend).await?;
        tx.commit().await?;
        Ok(jobs.len() as u64)
    }

    /// Re-queues running jobs whose lease expired (their node stopped renewing it), without
    /// spending their retry budgets.
    pub async fn reap_expired(&self) -> Result<Vec<Reaped>, StoreError> {
        let now = self.backend.now();
        let mut tx = self.pool.begin().await?;
        let rows: Vec<(String, i64, Option<String>)> = sqlx::query_as(&format!(
            "UPDATE jobs SET status = 'queued', stage = NULL, progress = 0, device = NULL, lease_expires_ms = NULL, \
             retry_reason = 'the lease of node ' || COALESCE(node, '?') || ' expired: no heartbeat for ' || \
               CAST(({now} - COALESCE(heartbeat_ms, started_ms, 0)) / 1000 AS TEXT) || ' s' \
             WHERE id IN (SELECT id FROM jobs WHERE status = 'running' AND lease_expires_ms < {now}{}) \
               AND status = 'running' AND lease_expires_ms < {now} \
             RETURNING id, attempts, node",
            self.backend.skip_locked()
        ))
        .fetch_all(&mut *tx)
        .await?;
        let mut reaped = Vec::with_capacity(rows.len());
        for (job_id, attempt, node) in rows {
            end_attempts(
                &mut tx,
                self.backend,
                &job_id,
                Some(attempt),
                "lease_expired",
                Some("no heartbeat before the lease expired"),
            )
            .await?;
            reaped.push(Reaped {
                job_id,
                attempt,
                node,
            });
        }
        settle_cancels(&mut tx, self.backend).await?;
        tx.commit().await?;
        Ok(reaped)
    }

    /// Cancels a job: a queued one at once, a running one by flagging it (its node sees the
    /// flag at its next heartbeat and stops at the next stage boundary). Returns the job
    /// afterwards.
    pub async fn cancel(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        // One statement, so that a job re-queued meanwhile cannot slip between two.
        sqlx::query(&format!(
            "UPDATE jobs SET cancel_requested = 1, \
             finished_ms = CASE WHEN status = 'queued' THEN {} ELSE finished_ms END, \
             error = CASE WHEN status = 'queued' THEN 'cancelled by its owner' ELSE error END, \
             status = CASE WHEN status = 'queued' THEN 'cancelled' ELSE status END \
             WHERE id = $1 AND status IN ('queued', 'running')",
            self.backend.now()
        ))
        .bind(id)
        .execute(&self.pool)
        .await?;
        self.get(id).await
    }

    /// Every attempt of a job, oldest first.
    pub async fn history(&self, id: &str) -> Result<Vec<AttemptRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT attempt, node, device, started_ms, ended_ms, outcome, detail FROM job_attempts WHERE job_id = $1 ORDER BY attempt",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AttemptRecord {
                    attempt: r.try_get("attempt")?,
                    node: r.try_get("node")?,
                    device: r.try_get("device")?,
                    started_ms: r.try_get("started_ms")?,
                    ended_ms: r.try_get("ended_ms")?,
                    outcome: r.try_get("outcome")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect()
    }

    /// Jobs per status.
    pub async fn status_counts(&self) -> Result<Vec<(JobStatus, i64)>, StoreError> {
        let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM jobs GROUP BY status")
            .fetch_all(&self.pool)
            .await?;
        let mut counts: Vec<(JobStatus, i64)> = JobStatus::ALL.iter().map(|s| (*s, 0)).collect();
        for row in rows {
            let status: String = row.try_get("status")?;
            let n: i64 = row.try_get("n")?;
            if let Ok(status) = status.parse::<JobStatus>() {
                if let Some(slot) = counts.iter_mut().find(|(s, _)| *s == status) {
                    slot.1 = n;
                }
            }
        }
        Ok(counts)
    }

    /// Adds device time to a tenant's usage.
    pub async fn add_usage(
        &self,
        tenant: &str,
        device_kind: &str,
        seconds: f64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO usage (tenant, device_kind, device_seconds, jobs) VALUES ($1, $2, $3, 1) ON CONFLICT (tenant, device_kind) DO UPDATE SET device_seconds = usage.device_seconds + excluded.device_seconds, jobs = usage.jobs + 1",
        )
        .bind(tenant)
        .bind(device_kind)
        .bind(seconds)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Usage of one tenant, or of all when `None`.
    pub async fn usage(&self, tenant: Option<&str>) -> Result<Vec<UsageRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT tenant, device_kind, device_seconds, jobs FROM usage WHERE ($1 IS NULL OR tenant = $1) ORDER BY tenant, device_kind",
        )
        .bind(tenant)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(UsageRow {
                    tenant: r.try_get("tenant")?,
                    device_kind: r.try_get("device_kind")?,
                    device_seconds: r.try_get("device_seconds")?,
                    jobs: r.try_get("jobs")?,
                })
            })
            .collect()
    }

    /// Stores an API key's hash for a tenant.
    pub async fn add_api_key(
        &self,
        tenant: &str,
        key_hash: &str,
        admin: bool,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO api_keys (key_hash, tenant, admin, created_ms) VALUES ($1, $2, $3, $4)",
        )
        .bind(key_hash)
        .bind(tenant)
        .bind(i64::from(admin))
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// All stored API keys: (hash, owner).
    pub async fn api_keys(&self) -> Result<Vec<(String, KeyOwner)>, StoreError> {
        let rows = sqlx::query("SELECT key_hash, tenant, admin FROM api_keys ORDER BY created_ms")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("key_hash")?,
                    KeyOwner {
                        tenant: r.try_get("tenant")?,
                        admin: r.try_get::<i64, _>("admin")? != 0,
                    },
                ))
            })
            .collect()
    }

    /// Remembers the vk hash a circuit's keys have.
    pub async fn record_vk(&self, circuit: &str, vk_hash: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO circuit_keys (circuit, vk_hash, updated_ms) VALUES ($1, $2, $3) ON CONFLICT (circuit) DO UPDATE SET vk_hash = excluded.vk_hash, updated_ms = excluded.updated_ms",
        )
        .bind(circuit)
        .bind(vk_hash)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The vk hash of a circuit whose keys this appliance has used.
    pub async fn vk_hash(&self, circuit: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT vk_hash FROM circuit_keys WHERE circuit = $1")
                .bind(circuit)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Finish time of the latest successful job, Unix ms.
    pub async fn last_success_ms(&self) -> Result<Option<i64>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT MAX(finished_ms) FROM jobs WHERE status = 'succeeded'")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Registers (or re-registers after a restart) a node and its devices.
    pub async fn register_node(
        &self,
        node_id: &str,
        advertise_url: Option<&str>,
        devices: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let now = self.backend.now();
        sqlx::query(&format!(
            "INSERT INTO nodes (node_id, advertise_url, version, started_ms, heartbeat_ms, devices) VALUES ($1, $2, $3, {now}, {now}, $4) \
             ON CONFLICT (node_id) DO UPDATE SET advertise_url = excluded.advertise_url, version = excluded.version, \
             started_ms = excluded.started_ms, heartbeat_ms = excluded.heartbeat_ms, devices = excluded.devices"
        ))
        .bind(node_id)
        .bind(advertise_url)
        .bind(env!("CARGO_PKG_VERSION"))
        .bind(devices.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A node's heartbeat, with its devices' current state.
    pub async fn node_heartbeat(
        &self,
        node_id: &str,
        devices: &serde_json::Value,
    ) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "UPDATE nodes SET heartbeat_ms = {}, devices = $1 WHERE node_id = $2",
            self.backend.now()
        ))
        .bind(devices.to_string())
        .bind(node_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A node that stops cleanly leaves the cluster.
    pub async fn deregister_node(&self, node_id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM nodes WHERE node_id = $1")
            .bind(node_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Registered nodes, with the database's clock now (Unix ms) to judge their heartbeats by.
    pub async fn nodes(&self) -> Result<(Vec<NodeRecord>, i64), StoreError> {
        let now: i64 = sqlx::query_scalar(&format!("SELECT {}", self.backend.now()))
            .fetch_one(&self.pool)
            .await?;
        let rows = sqlx::query(
            "SELECT node_id, advertise_url, version, started_ms, heartbeat_ms, devices FROM nodes ORDER BY node_id",
        )
        .fetch_all(&self.pool)
        .await?;
        let nodes = rows
            .iter()
            .map(|r| {
                let devices: String = r.try_get("devices")?;
                Ok(NodeRecord {
                    node_id: r.try_get("node_id")?,
                    advertise_url: r.try_get("advertise_url")?,
                    version: r.try_get("version")?,
                    started_ms: r.try_get("started_ms")?,
                    heartbeat_ms: r.try_get("heartbeat_ms")?,
                    devices: serde_json::from_str(&devices)
                        .map_err(|e| StoreError::Corrupt(format!("node devices: {e}")))?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok((nodes, now))
    }

    /// Closes the pool (checkpointing SQLite's WAL).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// A job whose owner asked for a cancel while it ran, and that went back to the queue, is
/// cancelled rather than run again.
async fn settle_cancels(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
) -> Result<(), StoreError> {
    sqlx::query(&format!(
        "UPDATE jobs SET status = 'cancelled', finished_ms = {}, error = 'cancelled by its owner' \
         WHERE status = 'queued' AND cancel_requested = 1",
        backend.now()
    ))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Ends attempt rows of a job that are still open: `attempt`'s, or every open one.
async fn end_attempts(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    id: &str,
    attempt: Option<i64>,
    outcome: &str,
    detail: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query(&format!(
        "UPDATE job_attempts SET ended_ms = {}, outcome = $1, detail = $2 \
         WHERE job_id = $3 AND ($4 IS NULL OR attempt = $4) AND outcome IS NULL",
        backend.now()
    ))
    .bind(outcome)
    .bind(detail)
    .bind(id)
    .bind(attempt)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// What the insert transaction decided.
enum Inserted {
    Created,
    Existing(String),
    KeyMismatch(String),
    TooMany(u64),
}

async fn insert_in(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    job: &NewJob,
    idempotency: Option<&(String, String)>,
    max_outstanding: u64,
) -> Result<Inserted, StoreError> {
    if let Some((key, hash)) = idempotency {
        let found = sqlx::query(
            "SELECT request_hash, job_id FROM idempotency WHERE tenant = $1 AND key = $2",
        )
        .bind(&job.tenant)
        .bind(key)
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(row) = found {
            let stored: String = row.try_get("request_hash")?;
            let job_id: String = row.try_get("job_id")?;
            return Ok(if &stored == hash {
                Inserted::Existing(job_id)
            } else {
                Inserted::KeyMismatch(job_id)
            });
        }
    }
    let outstanding: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM jobs WHERE tenant = $1 AND status IN ('queued', 'running')",
    )
    .bind(&job.tenant)
    .fetch_one(&mut *conn)
    .await?;
    if outstanding as u64 >= max_outstanding {
        return Ok(Inserted::TooMany(outstanding as u64));
    }
    // Job times come from the database's clock, as lease times do.
    let now: i64 = sqlx::query_scalar(&format!("SELECT {}", backend.now()))
        .fetch_one(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO jobs (id, tenant, kind, circuit, request, priority, status, created_ms) VALUES ($1, $2, $3, $4, $5, $6, 'queued', $7)",
    )
    .bind(&job.id)
    .bind(&job.tenant)
    .bind(&job.kind)
    .bind(&job.circuit)
    .bind(job.request.to_string())
    .bind(job.priority)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    if let Some((key, hash)) = idempotency {
        sqlx::query(
            "INSERT INTO idempotency (tenant, key, request_hash, job_id, created_ms) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&job.tenant)
        .bind(key)
        .bind(hash)
        .bind(&job.id)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    Ok(Inserted::Created)
}
