//! Jobs as rows: submitting one (idempotently, within the tenant's limit), reading and listing
//! them, the queue in fair order, cancelling, and counting. Only [`JobStore::request`] reads
//! a request body; everything that lists or polls reads the small columns.

use proofmill_prover::Transcript;
use sqlx::{any::AnyRow, Connection, Row};

use super::{Backend, JobStore, StoreError};
use crate::job::{JobKind, JobStage, JobStatus, StoredRequest};

/// A job as stored, without its request body.
#[derive(Debug, Clone)]
pub struct JobRecord {
    /// Insertion order; the list cursor.
    pub seq: i64,
    /// Public id.
    pub id: String,
    /// Owner.
    pub tenant: String,
    /// What it does.
    pub kind: JobKind,
    /// Prove and keygen jobs: the circuit.
    pub circuit: Option<String>,
    /// The result's transcript (none for a keygen job).
    pub transcript: Option<Transcript>,
    /// Aggregate and epoch jobs: the jobs whose proofs are its inputs.
    pub input_jobs: Vec<String>,
    /// Order among the owner's own jobs.
    pub priority: i64,
    /// Status.
    pub status: JobStatus,
    /// Current stage while running.
    pub stage: Option<JobStage>,
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
    /// Attempts that died without an outcome (lease expired, node restarted while running).
    pub deaths: i64,
    /// It failed too often, or died too often, and was given up; `job_attempts` keeps its
    /// history.
    pub dead_letter: bool,
    /// The node that runs or ran it.
    pub node: Option<String>,
    /// While running: when its lease expires unless renewed (Unix ms, database clock).
    pub lease_expires_ms: Option<i64>,
    /// Why it was retried or re-queued.
    pub retry_reason: Option<String>,
    /// A device not to use again (it failed there), as `node/device`.
    pub exclude_device: Option<String>,
    /// Cancel was asked for while running.
    pub cancel_requested: bool,
    /// Where the proof is stored, once succeeded: a local path or an `s3://` URL.
    pub proof_location: Option<String>,
    /// Once succeeded: the verifying-key hash of the result (the proof's, or the keys'
    /// of a keygen job).
    pub vk_hash: Option<String>,
    /// Once a final aggregate or epoch job succeeded: the EVM gas its Solidity verifier used
    /// to accept the proof (none when it could not be measured).
    pub evm_gas: Option<u64>,
    /// Once an epoch job succeeded: its proof's public values, decoded
    /// (`proofmill_prover::epoch::EpochValues` as JSON).
    pub epoch: Option<serde_json::Value>,
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
    /// The validated request.
    pub request: StoredRequest,
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

/// One tenant's share of the cluster now: what fair ordering of the queue goes by.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueShare {
    /// The tenant.
    pub tenant: String,
    /// Its jobs running anywhere in the cluster.
    pub running: i64,
    /// Its jobs waiting.
    pub queued: i64,
    /// Device-seconds its jobs used over the window asked for (running attempts so far
    /// included).
    pub recent_device_seconds: f64,
    /// When its oldest queued job was accepted (Unix ms), if it has one.
    pub oldest_queued_ms: Option<i64>,
}

const COLUMNS: &str = "seq, id, tenant, kind, circuit, transcript, input_jobs, priority, status, stage, progress, device, error, attempts, failures, deaths, dead_letter, node, lease_expires_ms, retry_reason, exclude_device, cancel_requested, proof_path, vk_hash, evm_gas, epoch_values, created_ms, started_ms, finished_ms";

fn record(row: &AnyRow) -> Result<JobRecord, StoreError> {
    let id: String = row.try_get("id")?;
    let word = |column: &str| -> Result<Option<String>, StoreError> { Ok(row.try_get(column)?) };
    let kind = row
        .try_get::<String, _>("kind")?
        .parse::<JobKind>()
        .map_err(|e| StoreError::corrupt(&id, e))?;
    let status = row
        .try_get::<String, _>("status")?
        .parse::<JobStatus>()
        .map_err(|e| StoreError::corrupt(&id, e))?;
    let stage = word("stage")?
        .map(|s| s.parse::<JobStage>())
        .transpose()
        .map_err(|e| StoreError::corrupt(&id, e))?;
    let transcript = word("transcript")?
        .map(|t| t.parse::<Transcript>())
        .transpose()
        .map_err(|e| StoreError::corrupt(&id, format!("transcript: {e}")))?;
    let input_jobs: Vec<String> = serde_json::from_str(&row.try_get::<String, _>("input_jobs")?)
        .map_err(|e| StoreError::corrupt(&id, format!("input_jobs: {e}")))?;
    let evm_gas = row
        .try_get::<Option<i64>, _>("evm_gas")?
        .map(u64::try_from)
        .transpose()
        .map_err(|e| StoreError::corrupt(&id, format!("evm_gas: {e}")))?;
    let epoch = word("epoch_values")?
        .map(|text| serde_json::from_str::<serde_json::Value>(&text))
        .transpose()
        .map_err(|e| StoreError::corrupt(&id, format!("epoch_values: {e}")))?;
    Ok(JobRecord {
        seq: row.try_get("seq")?,
        tenant: row.try_get("tenant")?,
        kind,
        circuit: row.try_get("circuit")?,
        transcript,
        input_jobs,
        priority: row.try_get("priority")?,
        status,
        stage,
        progress: row.try_get("progress")?,
        device: row.try_get("device")?,
        error: row.try_get("error")?,
        attempts: row.try_get("attempts")?,
        failures: row.try_get("failures")?,
        deaths: row.try_get("deaths")?,
        dead_letter: row.try_get::<i64, _>("dead_letter")? != 0,
        node: row.try_get("node")?,
        lease_expires_ms: row.try_get("lease_expires_ms")?,
        retry_reason: row.try_get("retry_reason")?,
        exclude_device: row.try_get("exclude_device")?,
        cancel_requested: row.try_get::<i64, _>("cancel_requested")? != 0,
        proof_location: row.try_get("proof_path")?,
        vk_hash: row.try_get("vk_hash")?,
        evm_gas,
        epoch,
        created_ms: row.try_get("created_ms")?,
        started_ms: row.try_get("started_ms")?,
        finished_ms: row.try_get("finished_ms")?,
        id,
    })
}

impl JobStore {
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
                    None => Err(StoreError::corrupt(
                        &id,
                        "an idempotency key names this job, which is missing",
                    )),
                },
                Inserted::KeyMismatch(job_id) => Ok(Insert::KeyMismatch { job_id }),
                Inserted::TooMany(outstanding) => Ok(Insert::TooMany { outstanding }),
                Inserted::Created => match store.get(&job.id).await? {
                    Some(created) => Ok(Insert::Created(created)),
                    None => Err(StoreError::corrupt(&job.id, "vanished after its insert")),
                },
            }
        });
        task.await
            .map_err(|e| StoreError::Task(format!("insert: {e}")))?
    }

    /// A job by id, whoever owns it.
    pub async fn get(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM jobs WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(record).transpose()
    }

    /// The validated request of a job: read when it is about to run. A request this version
    /// cannot read is an error naming the job.
    pub async fn request(&self, id: &str) -> Result<Option<StoredRequest>, StoreError> {
        let text: Option<String> = sqlx::query_scalar("SELECT request FROM jobs WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        text.map(|t| {
            serde_json::from_str(&t).map_err(|e| StoreError::corrupt(id, format!("request: {e}")))
        })
        .transpose()
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

    /// Every tenant's jobs, newest first (for an admin), after `before_seq`.
    pub async fn list_all(
        &self,
        status: Option<JobStatus>,
        limit: u32,
        before_seq: Option<i64>,
    ) -> Result<Vec<JobRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM jobs WHERE ($1 IS NULL OR status = $1) AND ($2 IS NULL OR seq < $2) ORDER BY seq DESC LIMIT $3"
        ))
        .bind(status.map(JobStatus::as_str))
        .bind(before_seq)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(record).collect()
    }

    /// Queued jobs, each tenant's first `per_tenant` in its own order (priority, then first
    /// come first served): the candidates a dispatch pass orders fairly across tenants, so
    /// that one tenant's flood cannot push another's jobs out of sight.
    pub async fn queued(&self, per_tenant: u32) -> Result<Vec<JobRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY tenant ORDER BY priority DESC, seq ASC) AS rank_in_tenant \
             FROM jobs WHERE status = 'queued') AS q WHERE rank_in_tenant <= $1 ORDER BY tenant, rank_in_tenant"
        ))
        .bind(i64::from(per_tenant))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(record).collect()
    }

    /// Every tenant with jobs queued or running, or device time in the last `window_ms`:
    /// its share of the cluster now.
    pub async fn queue_shares(&self, window_ms: i64) -> Result<Vec<QueueShare>, StoreError> {
        let now = self.backend.now();
        let rows = sqlx::query(
            "SELECT tenant, \
               SUM(CASE WHEN status = 'running' THEN 1 ELSE 0 END) AS running, \
               SUM(CASE WHEN status = 'queued' THEN 1 ELSE 0 END) AS queued, \
               MIN(CASE WHEN status = 'queued' THEN created_ms END) AS oldest_queued_ms \
             FROM jobs WHERE status IN ('queued', 'running') GROUP BY tenant",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut shares: Vec<QueueShare> = rows
            .iter()
            .map(|r| {
                Ok(QueueShare {
                    tenant: r.try_get("tenant")?,
                    running: r.try_get("running")?,
                    queued: r.try_get("queued")?,
                    recent_device_seconds: 0.0,
                    oldest_queued_ms: r.try_get("oldest_queued_ms")?,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        let greatest = match self.backend {
            Backend::Sqlite => "MAX",
            Backend::Postgres => "GREATEST",
        };
        let used = sqlx::query(&format!(
            "SELECT j.tenant AS tenant, \
               CAST(SUM(COALESCE(a.ended_ms, {now}) - {greatest}(a.started_ms, {now} - $1)) AS DOUBLE PRECISION) / 1000.0 AS seconds \
             FROM job_attempts a JOIN jobs j ON j.id = a.job_id \
             WHERE a.ended_ms IS NULL OR a.ended_ms > {now} - $1 GROUP BY j.tenant"
        ))
        .bind(window_ms)
        .fetch_all(&self.pool)
        .await?;
        for row in used {
            let tenant: String = row.try_get("tenant")?;
            let seconds: f64 = row.try_get::<Option<f64>, _>("seconds")?.unwrap_or(0.0);
            match shares.iter_mut().find(|s| s.tenant == tenant) {
                Some(share) => share.recent_device_seconds = seconds.max(0.0),
                None => shares.push(QueueShare {
                    tenant,
                    running: 0,
                    queued: 0,
                    recent_device_seconds: seconds.max(0.0),
                    oldest_queued_ms: None,
                }),
            }
        }
        Ok(shares)
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

    /// Jobs per status.
    pub async fn status_counts(&self) -> Result<Vec<(JobStatus, i64)>, StoreError> {
        let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM jobs GROUP BY status")
            .fetch_all(&self.pool)
            .await?;
        let mut counts: Vec<(JobStatus, i64)> = JobStatus::ALL.iter().map(|s| (*s, 0)).collect();
        for row in rows {
            let status: String = row.try_get("status")?;
            let n: i64 = row.try_get("n")?;
            let status = status
                .parse::<JobStatus>()
                .map_err(|e| StoreError::corrupt("(status counts)", e))?;
            if let Some(slot) = counts.iter_mut().find(|(s, _)| *s == status) {
                slot.1 = n;
            }
        }
        Ok(counts)
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

    /// Finish time of the latest successful job, Unix ms.
    pub async fn last_success_ms(&self) -> Result<Option<i64>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT MAX(finished_ms) FROM jobs WHERE status = 'succeeded'")
                .fetch_one(&self.pool)
                .await?,
        )
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
    let request = serde_json::to_string(&job.request)
        .map_err(|e| StoreError::corrupt(&job.id, format!("request: {e}")))?;
    let input_jobs = serde_json::to_string(&job.request.input_jobs())
        .map_err(|e| StoreError::corrupt(&job.id, format!("input jobs: {e}")))?;
    sqlx::query(
        "INSERT INTO jobs (id, tenant, kind, circuit, request, transcript, input_jobs, priority, status, created_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'queued', $9)",
    )
    .bind(&job.id)
    .bind(&job.tenant)
    .bind(job.request.kind().as_str())
    .bind(job.request.circuit())
    .bind(request)
    .bind(job.request.transcript().map(|t| t.to_string()))
    .bind(input_jobs)
    .bind(i64::from(job.request.priority()))
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
