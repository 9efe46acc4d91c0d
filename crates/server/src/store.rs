//! The job store: every job, its state and its idempotency key, API keys and usage, in one
//! SQLite database (WAL, `synchronous=FULL`, so a job is on disk before the 202 that
//! acknowledges it). The store holds rows, not proofs: proof files live in the proofs
//! directory and the row names them. It knows nothing of HTTP or proving.

use std::{path::Path, str::FromStr, time::Duration};

use serde::{Deserialize, Serialize};
use sqlx::{
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
    Row, SqlitePool,
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
    /// A row holds a value this version does not understand.
    #[error("job database row: {0}")]
    Corrupt(String),
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
    /// How many times it was started.
    pub attempts: i64,
    /// Why it was retried or re-queued.
    pub retry_reason: Option<String>,
    /// A device not to use again (it failed there).
    pub exclude_device: Option<String>,
    /// Cancel was asked for while running.
    pub cancel_requested: bool,
    /// The proof file, once succeeded.
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

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The SQLite job database.
#[derive(Debug, Clone)]
pub struct JobStore {
    pool: SqlitePool,
}

const COLUMNS: &str = "seq, id, tenant, kind, circuit, request, priority, status, stage, progress, device, error, attempts, retry_reason, exclude_device, cancel_requested, proof_path, created_ms, started_ms, finished_ms";

fn record(row: &sqlx::sqlite::SqliteRow) -> Result<JobRecord, StoreError> {
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
        retry_reason: row.try_get("retry_reason")?,
        exclude_device: row.try_get("exclude_device")?,
        cancel_requested: row.try_get::<i64, _>("cancel_requested")? != 0,
        proof_path: row.try_get("proof_path")?,
        created_ms: row.try_get("created_ms")?,
        started_ms: row.try_get("started_ms")?,
        finished_ms: row.try_get("finished_ms")?,
    })
}

impl JobStore {
    /// Opens (creating if needed) the database and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| StoreError::Corrupt(format!("creating {}: {e}", dir.display())))?;
            }
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Self { pool })
    }

    /// Stores a job, honouring its idempotency key and the tenant's limit, in one
    /// `BEGIN IMMEDIATE` transaction (a deferred one could not upgrade to a write while
    /// another connection writes). It runs as its own task, so a client that disconnects
    /// cannot leave the transaction half done.
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
            sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
            let result = insert_in(&mut conn, &job, idempotency.as_ref(), max_outstanding).await;
            let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
            sqlx::query(end).execute(&mut *conn).await?;
            drop(conn);
            match result? {
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
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM jobs WHERE id = ?"))
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
            "SELECT {COLUMNS} FROM jobs WHERE tenant = ? AND (? IS NULL OR status = ?) AND (? IS NULL OR seq < ?) ORDER BY seq DESC LIMIT ?"
        ))
        .bind(tenant)
        .bind(status.map(JobStatus::as_str))
        .bind(status.map(JobStatus::as_str))
        .bind(before_seq)
        .bind(before_seq)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(record).collect()
    }

    /// Queued jobs in run order: priority, then first come first served.
    pub async fn queued(&self, limit: u32) -> Result<Vec<JobRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM jobs WHERE status = 'queued' ORDER BY priority DESC, seq ASC LIMIT ?"
        ))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(record).collect()
    }

    /// Marks a queued job running on `device`; false when it is no longer queued.
    pub async fn claim(&self, id: &str, device: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE jobs SET status = 'running', device = ?, stage = 'witness', progress = 0.02, attempts = attempts + 1, started_ms = ? WHERE id = ? AND status = 'queued'",
        )
        .bind(device)
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records the stage a running job reached.
    pub async fn set_stage(&self, id: &str, stage: &str, progress: f64) -> Result<(), StoreError> {
        sqlx::query("UPDATE jobs SET stage = ?, progress = ? WHERE id = ? AND status = 'running'")
            .bind(stage)
            .bind(progress)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Ends a job (succeeded, failed or cancelled). A job already ended keeps its outcome.
    pub async fn finish(
        &self,
        id: &str,
        status: JobStatus,
        error: Option<&str>,
        proof_path: Option<&str>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE jobs SET status = ?, error = ?, proof_path = ?, stage = NULL, progress = CASE WHEN ? = 'succeeded' THEN 1.0 ELSE progress END, finished_ms = ? WHERE id = ? AND status IN ('queued', 'running')",
        )
        .bind(status.as_str())
        .bind(error)
        .bind(proof_path)
        .bind(status.as_str())
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Puts a running job back in the queue, saying why (and, after a device error, which
    /// device to avoid).
    pub async fn requeue(
        &self,
        id: &str,
        reason: &str,
        exclude_device: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE jobs SET status = 'queued', stage = NULL, progress = 0, device = NULL, retry_reason = ?, exclude_device = COALESCE(?, exclude_device) WHERE id = ? AND status = 'running'",
        )
        .bind(reason)
        .bind(exclude_device)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Re-queues every job left running (by a crash or an expired shutdown grace period).
    pub async fn requeue_running(&self, reason: &str) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE jobs SET status = 'queued', stage = NULL, progress = 0, device = NULL, retry_reason = ? WHERE status = 'running'",
        )
        .bind(reason)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Cancels a job: a queued one at once, a running one by flagging it (the worker stops
    /// at the next stage boundary). Returns the job afterwards.
    pub async fn cancel(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        sqlx::query(
            "UPDATE jobs SET status = 'cancelled', finished_ms = ?, error = 'cancelled by its owner' WHERE id = ? AND status = 'queued'",
        )
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await?;
        sqlx::query("UPDATE jobs SET cancel_requested = 1 WHERE id = ? AND status = 'running'")
            .bind(id)
            .execute(&self.pool)
            .await?;
        self.get(id).await
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
            "INSERT INTO usage (tenant, device_kind, device_seconds, jobs) VALUES (?, ?, ?, 1) ON CONFLICT (tenant, device_kind) DO UPDATE SET device_seconds = device_seconds + excluded.device_seconds, jobs = jobs + 1",
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
            "SELECT tenant, device_kind, device_seconds, jobs FROM usage WHERE (? IS NULL OR tenant = ?) ORDER BY tenant, device_kind",
        )
        .bind(tenant)
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
            "INSERT INTO api_keys (key_hash, tenant, admin, created_ms) VALUES (?, ?, ?, ?)",
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
            "INSERT INTO circuit_keys (circuit, vk_hash, updated_ms) VALUES (?, ?, ?) ON CONFLICT (circuit) DO UPDATE SET vk_hash = excluded.vk_hash, updated_ms = excluded.updated_ms",
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
            sqlx::query_scalar("SELECT vk_hash FROM circuit_keys WHERE circuit = ?")
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

    /// Closes the pool (checkpointing the WAL).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// What the insert transaction decided.
enum Inserted {
    Created,
    Existing(String),
    KeyMismatch(String),
    TooMany(u64),
}

async fn insert_in(
    conn: &mut sqlx::SqliteConnection,
    job: &NewJob,
    idempotency: Option<&(String, String)>,
    max_outstanding: u64,
) -> Result<Inserted, StoreError> {
    if let Some((key, hash)) = idempotency {
        let found = sqlx::query(
            "SELECT request_hash, job_id FROM idempotency WHERE tenant = ? AND key = ?",
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
        "SELECT COUNT(*) FROM jobs WHERE tenant = ? AND status IN ('queued', 'running')",
    )
    .bind(&job.tenant)
    .fetch_one(&mut *conn)
    .await?;
    if outstanding as u64 >= max_outstanding {
        return Ok(Inserted::TooMany(outstanding as u64));
    }
    let now = now_ms();
    sqlx::query(
        "INSERT INTO jobs (id, tenant, kind, circuit, request, priority, status, created_ms) VALUES (?, ?, ?, ?, ?, ?, 'queued', ?)",
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
            "INSERT INTO idempotency (tenant, key, request_hash, job_id, created_ms) VALUES (?, ?, ?, ?, ?)",
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
