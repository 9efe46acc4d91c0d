//! What the operator console shows of the store at a glance: the queue per tenant, proofs and
//! device time per hour, and the attempts that failed, were retried or fell back. Each is one
//! aggregate query over small columns (no request body is read), bounded by a time window
//! and a row limit.

use sqlx::Row;

use super::{JobStore, StoreError};

/// One tenant's outstanding jobs.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueRow {
    /// Tenant.
    pub tenant: String,
    /// Jobs waiting (for a device or for their input jobs).
    pub queued: i64,
    /// Jobs on a device.
    pub running: i64,
    /// When the oldest queued job was accepted, Unix milliseconds.
    pub oldest_queued_ms: Option<i64>,
}

/// One tenant's attempts that ended in one hour.
#[derive(Debug, Clone, PartialEq)]
pub struct HourRow {
    /// Tenant.
    pub tenant: String,
    /// Start of the hour, Unix milliseconds.
    pub hour_ms: i64,
    /// Proofs made (successful prove, aggregate and epoch attempts).
    pub proofs: i64,
    /// Device time of every attempt that ended in the hour, milliseconds.
    pub device_ms: i64,
    /// Attempts that failed or were retried.
    pub failures: i64,
}

/// An attempt that did not succeed.
#[derive(Debug, Clone, PartialEq)]
pub struct ProblemRow {
    /// The job.
    pub job_id: String,
    /// Its tenant.
    pub tenant: String,
    /// Its circuit, when it has one.
    pub circuit: Option<String>,
    /// Attempt number.
    pub attempt: i64,
    /// Node and device of the attempt.
    pub node: String,
    /// Device on that node.
    pub device: String,
    /// `failed`, `retry` or `lease_expired`.
    pub outcome: String,
    /// Why.
    pub detail: Option<String>,
    /// When it ended, Unix milliseconds.
    pub ended_ms: i64,
}

impl JobStore {
    /// Queued and running jobs per tenant (`tenant` only, when given).
    pub async fn queue_by_tenant(&self, tenant: Option<&str>) -> Result<Vec<QueueRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT tenant, \
                SUM(CASE WHEN status = 'queued' THEN 1 ELSE 0 END) AS queued, \
                SUM(CASE WHEN status = 'running' THEN 1 ELSE 0 END) AS running, \
                MIN(CASE WHEN status = 'queued' THEN created_ms END) AS oldest \
             FROM jobs WHERE status IN ('queued', 'running') AND ($1 IS NULL OR tenant = $1) \
             GROUP BY tenant ORDER BY tenant",
        )
        .bind(tenant)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(QueueRow {
                    tenant: r.try_get("tenant")?,
                    queued: r.try_get("queued")?,
                    running: r.try_get("running")?,
                    oldest_queued_ms: r.try_get("oldest")?,
                })
            })
            .collect()
    }

    /// Attempts that ended since `since_ms`, per tenant and hour, oldest hour first.
    pub async fn hourly(
        &self,
        tenant: Option<&str>,
        since_ms: i64,
    ) -> Result<Vec<HourRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT j.tenant AS tenant, (a.ended_ms / 3600000) * 3600000 AS hour, \
                SUM(CASE WHEN a.outcome = 'succeeded' AND j.kind <> 'keygen' THEN 1 ELSE 0 END) AS proofs, \
                CAST(SUM(a.ended_ms - a.started_ms) AS BIGINT) AS device_ms, \
                SUM(CASE WHEN a.outcome IN ('failed', 'retry') THEN 1 ELSE 0 END) AS failures \
             FROM job_attempts a JOIN jobs j ON j.id = a.job_id \
             WHERE a.ended_ms IS NOT NULL AND a.ended_ms >= $1 AND ($2 IS NULL OR j.tenant = $2) \
             GROUP BY j.tenant, (a.ended_ms / 3600000) * 3600000 ORDER BY hour, tenant",
        )
        .bind(since_ms)
        .bind(tenant)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(HourRow {
                    tenant: r.try_get("tenant")?,
                    hour_ms: r.try_get("hour")?,
                    proofs: r.try_get("proofs")?,
                    device_ms: r.try_get("device_ms")?,
                    failures: r.try_get("failures")?,
                })
            })
            .collect()
    }

    /// The latest `limit` attempts since `since_ms` that failed, were retried or died,
    /// newest first.
    pub async fn problems(
        &self,
        tenant: Option<&str>,
        since_ms: i64,
        limit: u32,
    ) -> Result<Vec<ProblemRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT a.job_id AS job_id, j.tenant AS tenant, j.circuit AS circuit, a.attempt AS attempt, \
                a.node AS node, a.device AS device, a.outcome AS outcome, a.detail AS detail, a.ended_ms AS ended_ms \
             FROM job_attempts a JOIN jobs j ON j.id = a.job_id \
             WHERE a.ended_ms IS NOT NULL AND a.ended_ms >= $1 AND a.outcome IN ('failed', 'retry', 'lease_expired') \
                AND ($2 IS NULL OR j.tenant = $2) \
             ORDER BY a.ended_ms DESC LIMIT $3",
        )
        .bind(since_ms)
        .bind(tenant)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ProblemRow {
                    job_id: r.try_get("job_id")?,
                    tenant: r.try_get("tenant")?,
                    circuit: r.try_get("circuit")?,
                    attempt: r.try_get("attempt")?,
                    node: r.try_get("node")?,
                    device: r.try_get("device")?,
                    outcome: r.try_get("outcome")?,
                    detail: r.try_get("detail")?,
                    ended_ms: r.try_get("ended_ms")?,
                })
            })
            .collect()
    }

    /// Attempts since `since_ms` that failed, were retried or died, counted per outcome:
    /// (outcome, attempts, of them on a GPU).
    pub async fn problem_counts(
        &self,
        tenant: Option<&str>,
        since_ms: i64,
    ) -> Result<Vec<(String, i64, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT a.outcome AS outcome, COUNT(*) AS n, \
                SUM(CASE WHEN a.device LIKE 'gpu%' THEN 1 ELSE 0 END) AS on_gpu \
             FROM job_attempts a JOIN jobs j ON j.id = a.job_id \
             WHERE a.ended_ms IS NOT NULL AND a.ended_ms >= $1 AND a.outcome IN ('failed', 'retry', 'lease_expired') \
                AND ($2 IS NULL OR j.tenant = $2) \
             GROUP BY a.outcome ORDER BY a.outcome",
        )
        .bind(since_ms)
        .bind(tenant)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("outcome")?, r.try_get("n")?, r.try_get("on_gpu")?)))
            .collect()
    }
}
