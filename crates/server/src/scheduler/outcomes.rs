//! What happens when a job leaves a device, in a task of its own (storing a proof in a bucket
//! can take up to a minute, and must not hold up dispatching): usage is metered, the proof
//! stored and recorded, a retryable failure retried (on another device after a GPU error)
//! until `max_failures`, a cancel recorded. The outcome is recorded before the device slot is
//! released (so that a shutdown waiting for idle devices never cuts a proof's write short)
//! and before the lease is let go: while the database is unreachable this retries, the
//! heartbeat task keeps the lease, and the proof is not lost.

use std::time::{Duration, Instant};

use super::Scheduler;
use crate::{
    devices::DeviceKind,
    job::JobStatus,
    store::{Completed, JobRecord, ResultFacts, Retried, StoreError},
    worker::Outcome,
};

impl Scheduler {
    /// Records how a job left `device`, then frees its place there.
    pub(super) async fn finished(
        &self,
        job_id: String,
        device: String,
        device_kind: DeviceKind,
        outcome: Outcome,
        device_seconds: f64,
    ) {
        if let Some(attempt) = self.attempt_of(&job_id) {
            let mut usage_recorded = false;
            let mut delay = Duration::from_millis(500);
            loop {
                let recorded = self
                    .record(
                        &job_id,
                        attempt,
                        &device,
                        device_kind,
                        &outcome,
                        device_seconds,
                        &mut usage_recorded,
                    )
                    .await;
                match recorded {
                    Ok(()) => break,
                    Err(e) if e.is_unavailable() => {
                        tracing::error!(job = %job_id, error = %e, "the job database is unavailable: recording the job's outcome again shortly");
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(10));
                    }
                    Err(e) => {
                        // Not something waiting cures: let the lease lapse, so that the job is
                        // re-queued (here or elsewhere) rather than stuck.
                        tracing::error!(job = %job_id, error = %e, "recording the job's outcome failed; its lease will expire and it will run again");
                        break;
                    }
                }
            }
        }
        self.set_held(&job_id, None);
        for worker in &self.inner.workers {
            worker.release(&job_id);
        }
        self.announce(&job_id);
        self.wake();
    }

    #[allow(clippy::too_many_arguments)]
    async fn record(
        &self,
        job_id: &str,
        attempt: i64,
        device: &str,
        device_kind: DeviceKind,
        outcome: &Outcome,
        device_seconds: f64,
        usage_recorded: &mut bool,
    ) -> Result<(), StoreError> {
        let Some(job) = self.inner.store.get(job_id).await? else {
            return Ok(());
        };
        if device_seconds > 0.0 && !*usage_recorded {
            self.inner
                .store
                .add_usage(&job.tenant, device_kind.as_str(), device_seconds)
                .await?;
            *usage_recorded = true;
            metrics::counter!("proofmill_device_seconds_total", "device" => device.to_owned(), "kind" => device_kind.as_str(), "node" => self.inner.settings.node.clone())
                .increment(device_seconds.round() as u64);
        }
        let status = match outcome {
            Outcome::Proved {
                envelope,
                evm_gas,
                epoch,
                engine_note,
            } => {
                let facts = ResultFacts {
                    note: engine_note.clone(),
                    evm_gas: *evm_gas,
                    epoch: epoch.as_ref().and_then(|values| {
                        serde_json::to_value(values)
                            .inspect_err(|e| tracing::warn!(job = %job.id, error = %e, "the epoch proof's public values do not serialize"))
                            .ok()
                    }),
                };
                self.record_result(&job, attempt, device, device_seconds, envelope, &facts)
                    .await?
            }
            Outcome::KeysReady { circuit, vk_hash } => {
                let status = self.record_keys(&job, attempt, circuit, vk_hash).await?;
                tracing::info!(job = %job.id, %circuit, %vk_hash, "keys ready");
                status
            }
            Outcome::Failed {
                message,
                client_error: true,
            } => {
                tracing::warn!(job = %job.id, error = %message, "job failed");
                self.inner
                    .store
                    .finish(&job.id, attempt, JobStatus::Failed, message)
                    .await?
                    .then_some(JobStatus::Failed)
            }
            Outcome::Failed {
                message,
                client_error: false,
            } => {
                self.retry(&job, attempt, device, device_kind, message)
                    .await?
            }
            Outcome::Cancelled => self.record_cancel(&job, attempt).await?,
        };
        if let Some(status) = status {
            metrics::counter!("proofmill_jobs_finished_total", "status" => status.as_str(), "node" => self.inner.settings.node.clone())
                .increment(1);
        }
        Ok(())
    }

    /// A verified proof: stored, then recorded (unless the job already ended).
    async fn record_result(
        &self,
        job: &JobRecord,
        attempt: i64,
        device: &str,
        device_seconds: f64,
        envelope: &proofmill_prover::ProofEnvelope,
        facts: &ResultFacts,
    ) -> Result<Option<JobStatus>, StoreError> {
        let store = &self.inner.store;
        if job.cancel_requested {
            return Ok(store
                .finish(
                    &job.id,
                    attempt,
                    JobStatus::Cancelled,
                    "cancelled by its owner",
                )
                .await?
                .then_some(JobStatus::Cancelled));
        }
        if job.status.is_terminal() {
            tracing::info!(job = %job.id, attempt, status = job.status.as_str(), "proof of an attempt whose job already ended: not stored");
            store
                .supersede(&job.id, attempt, "the job already had an outcome")
                .await?;
            return Ok(None);
        }
        let location = match self
            .inner
            .artifacts
            .put_proof(&job.id, envelope.to_json())
            .await
        {
            Ok(location) => location,
            Err(e) => {
                tracing::error!(job = %job.id, error = %e, "could not store the proof");
                return Ok(store
                    .finish(
                        &job.id,
                        attempt,
                        JobStatus::Failed,
                        "the appliance could not store the proof; see its log",
                    )
                    .await?
                    .then_some(JobStatus::Failed));
            }
        };
        match store
            .complete_with(&job.id, attempt, Some(&location), &envelope.vk_hash, facts)
            .await?
        {
            Completed::AlreadyEnded => {
                tracing::info!(job = %job.id, attempt, "another attempt's proof was recorded first");
                Ok(None)
            }
            Completed::Recorded => {
                store
                    .record_vk(&envelope.circuit, &envelope.vk_hash)
                    .await?;
                if let Ok(mut last) = self.inner.last_proof.lock() {
                    *last = Some(Instant::now());
                }
                metrics::histogram!("proofmill_prove_seconds", "circuit" => envelope.circuit.clone(), "node" => self.inner.settings.node.clone())
                    .record(device_seconds);
                if job.attempts != attempt {
                    tracing::info!(job = %job.id, attempt, latest = job.attempts, "a late proof from an expired lease was recorded");
                }
                tracing::info!(job = %job.id, device, attempt, seconds = format!("{device_seconds:.1}"), evm_gas = ?facts.evm_gas, "job succeeded");
                self.share_data(&envelope.circuit, envelope.k);
                Ok(Some(JobStatus::Succeeded))
            }
        }
    }

    /// A keygen job's keys are ready: recorded with their vk hash, and shared.
    async fn record_keys(
        &self,
        job: &JobRecord,
        attempt: i64,
        circuit: &str,
        vk_hash: &str,
    ) -> Result<Option<JobStatus>, StoreError> {
        let store = &self.inner.store;
        match store.complete(&job.id, attempt, None, vk_hash).await? {
            Completed::AlreadyEnded => Ok(None),
            Completed::Recorded => {
                store.record_vk(circuit, vk_hash).await?;
                if let Ok(parsed) = proofmill_prover::ProofCircuit::parse(circuit) {
                    self.share_data(circuit, parsed.k());
                }
                Ok(Some(JobStatus::Succeeded))
            }
        }
    }

    /// A failure that is not the input's fault: retried, on another device after a GPU
    /// error, until `max_failures`.
    async fn retry(
        &self,
        job: &JobRecord,
        attempt: i64,
        device: &str,
        device_kind: DeviceKind,
        message: &str,
    ) -> Result<Option<JobStatus>, StoreError> {
        let settings = &self.inner.settings;
        let elsewhere = self.inner.workers.iter().any(|w| w.id() != device);
        let avoid = device_kind == DeviceKind::Gpu && elsewhere;
        let reason = if avoid {
            format!("device error on {device}: {message}; retrying on another device")
        } else {
            format!(
                "attempt {attempt} failed on {}/{device}: {message}",
                settings.node
            )
        };
        let excluded = format!("{}/{device}", settings.node);
        let exclude = avoid.then_some(excluded.as_str());
        match self
            .inner
            .store
            .retry(&job.id, attempt, &reason, exclude, settings.max_failures)
            .await?
        {
            Retried::Requeued => {
                tracing::warn!(job = %job.id, %reason, "retrying job");
                if avoid {
                    metrics::counter!("proofmill_fallbacks_total", "from" => device.to_owned(), "reason" => "device_error")
                        .increment(1);
                }
                Ok(None)
            }
            Retried::DeadLettered => {
                tracing::error!(job = %job.id, error = %message, failures = settings.max_failures, "job failed every attempt: dead-lettered");
                metrics::counter!("proofmill_jobs_dead_lettered_total", "node" => settings.node.clone(), "reason" => "failures")
                    .increment(1);
                Ok(Some(JobStatus::Failed))
            }
            Retried::Fenced => Ok(None),
        }
    }

    /// A job stopped at a stage boundary: cancelled by its owner, or by a shutdown (then it
    /// goes back to the queue).
    async fn record_cancel(
        &self,
        job: &JobRecord,
        attempt: i64,
    ) -> Result<Option<JobStatus>, StoreError> {
        let store = &self.inner.store;
        if self
            .inner
            .draining_cancel
            .load(std::sync::atomic::Ordering::SeqCst)
            && !job.cancel_requested
        {
            store
                .requeue(
                    &job.id,
                    attempt,
                    "re-queued at shutdown: stopped at a stage boundary",
                )
                .await?;
            return Ok(None);
        }
        let ended = store
            .finish(
                &job.id,
                attempt,
                JobStatus::Cancelled,
                "cancelled by its owner",
            )
            .await?;
        if ended {
            tracing::info!(job = %job.id, "job cancelled");
        }
        Ok(ended.then_some(JobStatus::Cancelled))
    }

    /// In the background, uploads the SRS file and proving key a proof of `circuit` used to
    /// the bucket, when it lacks them, so that other nodes fetch rather than generate them.
    fn share_data(&self, circuit: &str, k: u32) {
        if !self.inner.artifacts.is_bucket() {
            return;
        }
        let this = self.clone();
        let circuit = circuit.to_owned();
        tokio::spawn(async move {
            let _one_at_a_time = this.inner.sharing.lock().await;
            let prover = this.inner.prover.clone();
            let name = circuit.clone();
            let files = tokio::task::spawn_blocking(move || prover.data_files(&name, k)).await;
            let files = match files
                .map_err(|e| e.to_string())
                .and_then(|listed| listed.map_err(|e| e.to_string()))
            {
                Ok(files) => files,
                Err(e) => {
                    tracing::warn!(%circuit, error = %e, "could not list the files to share");
                    return;
                }
            };
            let pushed = this
                .inner
                .artifacts
                .push_data(&this.inner.settings.data_dir, &files)
                .await;
            if let Err(e) = pushed {
                tracing::warn!(%circuit, error = %e, "could not share the SRS and keys with the cluster; other nodes will generate their own");
            }
        });
    }
}
