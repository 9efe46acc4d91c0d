//! Running jobs: claims under leases, heartbeats, stages, outcomes, retries, dead letters and
//! re-queueing.
//!
//! A claim is a *lease*: the claiming node must renew it ([`JobStore::renew`]) before it
//! expires, and every claim increments the job's `attempts`, which fences stale workers: a
//! worker can change a job only under the attempt it claimed. Leases that expire (the node
//! died or lost the database) are re-queued by any node; so are the jobs a node left running
//! when it restarts. Both count as *deaths*, which do not spend the retry budget but have
//! their own: a job whose attempts keep dying (it kills the nodes that run it) is
//! dead-lettered after `max_deaths`. Retryable failures spend the retry budget, and a job
//! that exhausts it is dead-lettered with its history kept in `job_attempts`. A late proof is
//! still accepted while the job has no outcome: a proof the verifier accepted is never thrown
//! away. Lease times come from the database's clock, so nodes' clocks need not agree.

use std::time::Duration;

use sqlx::Row;

use super::{Backend, JobStore, StoreError};
use crate::job::{AttemptOutcome, JobStatus};

/// One claim of a job: who ran it and how it ended.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
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
    /// How it ended; none while it runs.
    pub outcome: Option<AttemptOutcome>,
    /// The error or reason.
    pub detail: Option<String>,
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

/// What recording a result did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completed {
    /// The job succeeded with this result.
    Recorded,
    /// The job already had an outcome (another attempt's proof, a cancel); nothing changed.
    AlreadyEnded,
}

/// What a verified proof shows beyond its location and vk hash, recorded with the result.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResultFacts {
    /// A final aggregate or epoch proof: the EVM gas its Solidity verifier used to accept it
    /// (none when it could not be measured).
    pub evm_gas: Option<u64>,
    /// An epoch proof: its public values, decoded (`EpochValues` as JSON).
    pub epoch: Option<serde_json::Value>,
    /// What the attempt's history says of how it ran (engine calls that fell back to the
    /// CPU); a late proof's detail says that instead.
    pub note: Option<String>,
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

/// A job whose attempt died (lease expired, node restarted) and was re-queued or given up.
#[derive(Debug, Clone)]
pub struct Reaped {
    /// The job.
    pub job_id: String,
    /// The attempt that died.
    pub attempt: i64,
    /// The node that held it.
    pub node: Option<String>,
    /// It died `max_deaths` times: failed and dead-lettered instead of re-queued.
    pub dead_lettered: bool,
}

/// What re-queueing a node's running jobs did.
#[derive(Debug, Clone, Default)]
pub struct Requeued {
    /// Jobs back in the queue.
    pub requeued: u64,
    /// Jobs that died once too often and were dead-lettered instead.
    pub dead_lettered: Vec<String>,
}

/// The columns every re-queue clears: the job waits for a device again.
const BACK_IN_QUEUE: &str =
    "status = 'queued', stage = NULL, progress = 0, device = NULL, lease_expires_ms = NULL";

impl JobStore {
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
        stage: crate::job::JobStage,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE jobs SET stage = $1, progress = $2 WHERE id = $3 AND attempts = $4 AND status = 'running'",
        )
        .bind(stage.as_str())
        .bind(stage.progress())
        .bind(id)
        .bind(attempt)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records a verified result of `attempt`: the proof's location (none for a keygen job)
    /// and the result's vk hash. Accepted while the job has no outcome, even when the
    /// attempt's lease expired and the job was re-queued or claimed again: a proof is a
    /// proof, and the newer attempt is then fenced out.
    pub async fn complete(
        &self,
        id: &str,
        attempt: i64,
        proof_location: Option<&str>,
        vk_hash: &str,
    ) -> Result<Completed, StoreError> {
        self.complete_with(
            id,
            attempt,
            proof_location,
            vk_hash,
            &ResultFacts::default(),
        )
        .await
    }

    /// [`JobStore::complete`], recording also what the proof shows (`facts`).
    pub async fn complete_with(
        &self,
        id: &str,
        attempt: i64,
        proof_location: Option<&str>,
        vk_hash: &str,
        facts: &ResultFacts,
    ) -> Result<Completed, StoreError> {
        let evm_gas = facts
            .evm_gas
            .map(i64::try_from)
            .transpose()
            .map_err(|e| StoreError::corrupt(id, format!("evm_gas: {e}")))?;
        let epoch = facts
            .epoch
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| StoreError::corrupt(id, format!("epoch values: {e}")))?;
        let now = self.backend.now();
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(&format!(
            "UPDATE jobs SET status = 'succeeded', error = NULL, proof_path = $1, vk_hash = $2, evm_gas = $3, epoch_values = $4, \
             stage = NULL, progress = 1.0, finished_ms = {now}, lease_expires_ms = NULL \
             WHERE id = $5 AND status IN ('queued', 'running')"
        ))
        .bind(proof_location)
        .bind(vk_hash)
        .bind(evm_gas)
        .bind(epoch)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let recorded = done.rows_affected() == 1;
        if recorded {
            // Its row may already say `lease_expired`: the proof came late, and counts.
            sqlx::query(&format!(
                "UPDATE job_attempts SET outcome = 'succeeded', ended_ms = {now}, \
                 detail = CASE WHEN outcome IS NULL THEN $3 ELSE 'a late proof, after: ' || outcome END \
                 WHERE job_id = $1 AND attempt = $2"
            ))
            .bind(id)
            .bind(attempt)
            .bind(facts.note.as_deref())
            .execute(&mut *tx)
            .await?;
            // A newer attempt still running has nothing left to do.
            end_attempts(
                &mut tx,
                self.backend,
                id,
                None,
                AttemptOutcome::Superseded,
                Some(&format!("attempt {attempt}'s proof was recorded first")),
            )
            .await?;
        } else {
            end_attempts(
                &mut tx,
                self.backend,
                id,
                Some(attempt),
                AttemptOutcome::Superseded,
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
            AttemptOutcome::Superseded,
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
        let outcome = match status {
            JobStatus::Cancelled => AttemptOutcome::Cancelled,
            _ => AttemptOutcome::Failed,
        };
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
                outcome,
                Some(error),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(ended)
    }

    /// A retryable failure of `attempt`: spends one of the job's `max_failures` and puts it
    /// back in the queue (avoiding `exclude_device` when given), or, when none is left,
    /// fails it as dead-lettered, its history kept.
    pub async fn retry(
        &self,
        id: &str,
        attempt: i64,
        reason: &str,
        exclude_device: Option<&str>,
        max_failures: u32,
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
        .bind(i64::from(max_failures))
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
                AttemptOutcome::Failed
            } else {
                AttemptOutcome::Retry
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
        let done = sqlx::query(&format!(
            "UPDATE jobs SET {BACK_IN_QUEUE}, retry_reason = $1 \
             WHERE id = $2 AND attempts = $3 AND status = 'running'"
        ))
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
                AttemptOutcome::Requeued,
                Some(reason),
            )
            .await?;
        }
        settle_cancels(&mut tx, self.backend).await?;
        tx.commit().await?;
        Ok(requeued)
    }

    /// Re-queues every job `node` left running, without spending retry budgets. Jobs of other
    /// nodes are untouched. With `max_deaths` (the node restarted: its jobs' attempts died
    /// with it) each counts as a death, and a job that reaches `max_deaths` is dead-lettered
    /// instead; without (a shutdown stopped them cleanly) nothing is counted.
    pub async fn requeue_node(
        &self,
        node: &str,
        reason: &str,
        max_deaths: Option<u32>,
    ) -> Result<Requeued, StoreError> {
        let now = self.backend.now();
        let mut tx = self.pool.begin().await?;
        let rows: Vec<(String, i64, i64)> = match max_deaths {
            None => {
                sqlx::query_as(&format!(
                    "UPDATE jobs SET {BACK_IN_QUEUE}, retry_reason = $1 \
                     WHERE status = 'running' AND (node = $2 OR node IS NULL) RETURNING id, attempts, CAST(0 AS BIGINT)"
                ))
                .bind(reason)
                .bind(node)
                .fetch_all(&mut *tx)
                .await?
            }
            Some(max) => {
                sqlx::query_as(&format!(
                    "UPDATE jobs SET deaths = deaths + 1, retry_reason = $1, \
                       status = CASE WHEN deaths + 1 >= $3 THEN 'failed' ELSE 'queued' END, \
                       dead_letter = CASE WHEN deaths + 1 >= $3 THEN 1 ELSE dead_letter END, \
                       error = CASE WHEN deaths + 1 >= $3 THEN 'gave up: its attempts died ' || CAST(deaths + 1 AS TEXT) || ' times without an outcome (nodes restarted or stopped heartbeating while running it); the last: ' || $1 ELSE error END, \
                       finished_ms = CASE WHEN deaths + 1 >= $3 THEN {now} ELSE NULL END, \
                       stage = NULL, progress = 0, lease_expires_ms = NULL, \
                       device = CASE WHEN deaths + 1 >= $3 THEN device ELSE NULL END \
                     WHERE status = 'running' AND (node = $2 OR node IS NULL) \
                     RETURNING id, attempts, CAST(CASE WHEN status = 'failed' THEN 1 ELSE 0 END AS BIGINT)"
                ))
                .bind(reason)
                .bind(node)
                .bind(i64::from(max))
                .fetch_all(&mut *tx)
                .await?
            }
        };
        let mut out = Requeued::default();
        for (id, attempt, dead) in &rows {
            end_attempts(
                &mut tx,
                self.backend,
                id,
                Some(*attempt),
                AttemptOutcome::Requeued,
                Some(reason),
            )
            .await?;
            if *dead != 0 {
                out.dead_lettered.push(id.clone());
            } else {
                out.requeued += 1;
            }
        }
        settle_cancels(&mut tx, self.backend).await?;
        tx.commit().await?;
        Ok(out)
    }

    /// Re-queues running jobs whose lease expired (their node stopped renewing it), without
    /// spending their retry budgets; each counts as a death, and a job that reaches
    /// `max_deaths` is dead-lettered instead.
    pub async fn reap_expired(&self, max_deaths: u32) -> Result<Vec<Reaped>, StoreError> {
        let now = self.backend.now();
        let mut tx = self.pool.begin().await?;
        let rows: Vec<(String, i64, Option<String>, i64)> = sqlx::query_as(&format!(
            "UPDATE jobs SET deaths = deaths + 1, lease_expires_ms = NULL, stage = NULL, progress = 0, \
             retry_reason = 'the lease of node ' || COALESCE(node, '?') || ' expired: no heartbeat for ' || \
               CAST(({now} - COALESCE(heartbeat_ms, started_ms, 0)) / 1000 AS TEXT) || ' s', \
             status = CASE WHEN deaths + 1 >= $1 THEN 'failed' ELSE 'queued' END, \
             dead_letter = CASE WHEN deaths + 1 >= $1 THEN 1 ELSE dead_letter END, \
             error = CASE WHEN deaths + 1 >= $1 THEN 'gave up: its attempts died ' || CAST(deaths + 1 AS TEXT) || ' times without an outcome (nodes stopped heartbeating or restarted while running it); the last: the lease of node ' || COALESCE(node, '?') || ' expired' ELSE error END, \
             finished_ms = CASE WHEN deaths + 1 >= $1 THEN {now} ELSE NULL END, \
             device = CASE WHEN deaths + 1 >= $1 THEN device ELSE NULL END \
             WHERE id IN (SELECT id FROM jobs WHERE status = 'running' AND lease_expires_ms < {now}{}) \
               AND status = 'running' AND lease_expires_ms < {now} \
             RETURNING id, attempts, node, CAST(CASE WHEN status = 'failed' THEN 1 ELSE 0 END AS BIGINT)",
            self.backend.skip_locked()
        ))
        .bind(i64::from(max_deaths))
        .fetch_all(&mut *tx)
        .await?;
        let mut reaped = Vec::with_capacity(rows.len());
        for (job_id, attempt, node, dead) in rows {
            end_attempts(
                &mut tx,
                self.backend,
                &job_id,
                Some(attempt),
                AttemptOutcome::LeaseExpired,
                Some("no heartbeat before the lease expired"),
            )
            .await?;
            reaped.push(Reaped {
                job_id,
                attempt,
                node,
                dead_lettered: dead != 0,
            });
        }
        settle_cancels(&mut tx, self.backend).await?;
        tx.commit().await?;
        Ok(reaped)
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
                    outcome: r
                        .try_get::<Option<String>, _>("outcome")?
                        .map(|o| o.parse::<AttemptOutcome>())
                        .transpose()
                        .map_err(|e| StoreError::corrupt(id, e))?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect()
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
    outcome: AttemptOutcome,
    detail: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query(&format!(
        "UPDATE job_attempts SET ended_ms = {}, outcome = $1, detail = $2 \
         WHERE job_id = $3 AND ($4 IS NULL OR attempt = $4) AND outcome IS NULL",
        backend.now()
    ))
    .bind(outcome.as_str())
    .bind(detail)
    .bind(id)
    .bind(attempt)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
