//! Which queued job runs on which device of this node, in what order.
//!
//! Each pass reads every tenant's first few queued jobs (in the tenant's own order: priority,
//! then first come first served) and each tenant's share of the cluster now. Tenants take
//! turns: the one with the fewest jobs running anywhere in the cluster, then the least
//! device time over the last hour, then the longest-waiting job goes first, and a job this
//! pass places counts at once. So one tenant's flood of jobs delays nobody else's next job
//! by more than the jobs already running, whatever priorities it gives them (priorities are
//! bounded per tenant, and order only its own jobs).
//!
//! Jobs are placed by the memory they need (host and device, [`MemoryNeed`]). The first job
//! that could run here but finds no room now keeps its place: until it starts (or leaves
//! the queue), later jobs go only where they fit beside its memory, on the host and on every
//! GPU that could hold it. Without that, a stream of small jobs, each fitting beside the
//! last, would keep a large one waiting for as long as the stream lasts.
//!
//! A claimed job's request body and input proofs are read in a task of its own, never in
//! the pass: a slow bucket or a large request delays that job, not the queue.

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    sync::{atomic::AtomicBool, Arc},
    time::{Duration, Instant},
};

use proofmill_prover::{
    devices::DeviceKind,
    memory::{aggregation_need, MemoryNeed},
    ProofCircuit, ProofEnvelope,
};

use super::Scheduler;
use crate::{
    job::{JobKind, JobStatus, StoredInput, StoredRequest},
    store::{JobRecord, StoreError},
    worker::{Assignment, Work, Worker},
};

/// Queued jobs read per tenant and pass.
const CANDIDATES_PER_TENANT: u32 = 8;
/// The window of recent device time that fair ordering counts.
const FAIR_SHARE_WINDOW_MS: i64 = 3_600_000;
/// How long this node waits before it claims again a job whose request or inputs could not
/// be read for a passing reason (a bucket or database outage).
const RETRY_HANDOVER: Duration = Duration::from_secs(10);

/// What to do with a queued job now, from its row alone.
enum Placement {
    /// It can run; it needs about this much memory.
    Ready(MemoryNeed),
    /// Not yet (its input jobs have not all succeeded).
    Wait,
    /// Never: fail it with this reason.
    Fail(String),
}

/// What trying one job did.
enum Tried {
    /// Claimed and handed to a worker.
    Placed,
    /// Left queued for now (waiting, or no device here fits it now).
    Skipped,
    /// Gone from the queue (failed, or another node claimed it).
    Gone,
}

/// A tenant's turn order: fewer running jobs, then less recent device time, then the older
/// waiting job.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
struct Turn {
    running: i64,
    recent_seconds: f64,
    oldest_ms: i64,
}

impl Scheduler {
    /// One dispatch pass: places queued jobs on this node's free devices, fairly across
    /// tenants.
    pub(super) async fn dispatch(&self) -> Result<(), StoreError> {
        if !self.inner.workers.iter().any(|w| w.has_capacity()) {
            return Ok(());
        }
        let queued = self.inner.store.queued(CANDIDATES_PER_TENANT).await?;
        if let Ok(mut waiting) = self.inner.waiting.lock() {
            // A waiting job that left the candidates (placed elsewhere, cancelled, failed)
            // holds nothing any more.
            if waiting
                .as_ref()
                .is_some_and(|(id, _)| !queued.iter().any(|j| &j.id == id))
            {
                *waiting = None;
            }
        }
        if queued.is_empty() {
            return Ok(());
        }
        let shares = self.inner.store.queue_shares(FAIR_SHARE_WINDOW_MS).await?;
        let mut turns: HashMap<String, Turn> = shares
            .into_iter()
            .map(|s| {
                (
                    s.tenant,
                    Turn {
                        running: s.running,
                        recent_seconds: s.recent_device_seconds,
                        oldest_ms: s.oldest_queued_ms.unwrap_or(i64::MAX),
                    },
                )
            })
            .collect();
        let mut queues: BTreeMap<String, VecDeque<JobRecord>> = BTreeMap::new();
        for job in queued {
            queues.entry(job.tenant.clone()).or_default().push_back(job);
        }
        loop {
            if !self.inner.workers.iter().any(|w| w.has_capacity()) {
                break;
            }
            let mut tenants: Vec<String> = queues
                .iter()
                .filter(|(_, q)| !q.is_empty())
                .map(|(t, _)| t.clone())
                .collect();
            let turn = |t: &String| {
                turns.get(t).copied().unwrap_or(Turn {
                    running: 0,
                    recent_seconds: 0.0,
                    oldest_ms: i64::MAX,
                })
            };
            tenants.sort_by(|a, b| {
                turn(a)
                    .partial_cmp(&turn(b))
                    .unwrap_or(std::cmp::Ordering::Equal)
            });
            let mut placed = false;
            'tenants: for tenant in tenants {
                let Some(queue) = queues.get_mut(&tenant) else {
                    continue;
                };
                let mut i = 0;
                while i < queue.len() {
                    match self.try_place(&queue[i]).await? {
                        Tried::Placed => {
                            queue.remove(i);
                            turns
                                .entry(tenant.clone())
                                .and_modify(|t| t.running += 1)
                                .or_insert(Turn {
                                    running: 1,
                                    recent_seconds: 0.0,
                                    oldest_ms: i64::MAX,
                                });
                            placed = true;
                            break 'tenants;
                        }
                        Tried::Skipped => i += 1,
                        Tried::Gone => {
                            queue.remove(i);
                        }
                    }
                }
            }
            if !placed {
                break;
            }
        }
        Ok(())
    }

    /// Tries to place one queued job on a device of this node.
    async fn try_place(&self, job: &JobRecord) -> Result<Tried, StoreError> {
        // A job this node still works on (its lease expired and it was re-queued, but the old
        // attempt has not come back yet) is left to other nodes: one attempt per job per node.
        if self.attempt_of(&job.id).is_some() {
            return Ok(Tried::Skipped);
        }
        if let Ok(mut deferred) = self.inner.deferred.lock() {
            match deferred.get(&job.id) {
                Some(until) if Instant::now() < *until => return Ok(Tried::Skipped),
                Some(_) => {
                    deferred.remove(&job.id);
                }
                None => {}
            }
        }
        let need = match self.placement(job).await? {
            Placement::Ready(need) => need,
            Placement::Wait => return Ok(Tried::Skipped),
            Placement::Fail(reason) => {
                self.fail_queued(job, &reason).await?;
                return Ok(Tried::Gone);
            }
        };
        if !self.fits_here(&need) {
            return match self.cluster_fit(&need).await? {
                None => Ok(Tried::Skipped), // another live node can run it
                Some(reason) => {
                    self.fail_queued(job, &reason).await?;
                    Ok(Tried::Gone)
                }
            };
        }
        let ahead = self.waiting_ahead_of(&job.id);
        let Some(worker) = self.free_worker(job, &need, ahead.as_ref()) else {
            if ahead.is_none() && self.could_hold(job, &need) {
                if let Ok(mut waiting) = self.inner.waiting.lock() {
                    if waiting.is_none() {
                        tracing::info!(job = %job.id, host_gib = proofmill_accel::host::gib(need.host_bytes), "job waits for room; later jobs are placed beside it");
                        *waiting = Some((job.id.clone(), need));
                    }
                }
            }
            return Ok(Tried::Skipped);
        };
        let settings = &self.inner.settings;
        let Some(attempt) = self
            .inner
            .store
            .claim(&job.id, &settings.node, worker.id(), settings.lease)
            .await?
        else {
            return Ok(Tried::Gone); // another node claimed it first
        };
        self.set_held(&job.id, Some(attempt));
        if let Ok(mut waiting) = self.inner.waiting.lock() {
            if waiting.as_ref().is_some_and(|(id, _)| id == &job.id) {
                *waiting = None;
            }
        }
        let cancel = Arc::new(AtomicBool::new(false));
        if let Ok(mut cancels) = self.inner.cancels.lock() {
            cancels.insert(job.id.clone(), cancel.clone());
        }
        worker.reserve(&job.id, need);
        tracing::info!(job = %job.id, device = worker.id(), attempt, kind = %job.kind, "job started");
        self.announce(&job.id);
        let this = self.clone();
        let job_id = job.id.clone();
        tokio::spawn(async move {
            this.hand_over(job_id, attempt, worker, cancel).await;
        });
        Ok(Tried::Placed)
    }

    /// Whether some device of this node could ever hold `need`: its own memory (a GPU's, or
    /// the host's for a CPU worker) and the node's host memory for the host side.
    fn fits_here(&self, need: &MemoryNeed) -> bool {
        let host = self.inner.settings.host_memory_bytes;
        host.is_none_or(|host| need.host_bytes <= host)
            && self.inner.workers.iter().any(|w| w.could_hold(need))
    }

    /// What the job waiting for room needs (the scheduler's `waiting`), unless that
    /// job is `job_id` itself.
    fn waiting_ahead_of(&self, job_id: &str) -> Option<MemoryNeed> {
        let waiting = self.inner.waiting.lock().ok()?;
        waiting
            .as_ref()
            .filter(|(id, _)| id != job_id)
            .map(|(_, need)| *need)
    }

    /// Whether a device of this node the job may use could hold `need` when it is idle.
    fn could_hold(&self, job: &JobRecord, need: &MemoryNeed) -> bool {
        self.inner
            .workers
            .iter()
            .any(|worker| !self.excluded(job, worker) && worker.could_hold(need))
    }

    /// Whether `job` last failed on `worker`'s device and may not run there again (unless it
    /// is this node's only device).
    fn excluded(&self, job: &JobRecord, worker: &Worker) -> bool {
        let here = format!("{}/{}", self.inner.settings.node, worker.id());
        job.exclude_device.as_deref() == Some(here.as_str()) && self.inner.workers.len() > 1
    }

    /// A worker of this node with room for `need` now, not the device the job failed on: its
    /// device has room beside the jobs it holds (an idle device takes whatever fits it), and
    /// the node's host memory beside every job its workers hold (GPU workers' included).
    /// `ahead`, the need of the job waiting for room, counts as held on the host and on every
    /// GPU that could hold it. Of the workers with room, the one holding the fewest jobs
    /// (an idle GPU, then an idle CPU, before any device's second slot), so that two jobs
    /// never queue on one device while another is idle.
    fn free_worker(
        &self,
        job: &JobRecord,
        need: &MemoryNeed,
        ahead: Option<&MemoryNeed>,
    ) -> Option<Arc<Worker>> {
        let workers = &self.inner.workers;
        let host_held: u64 = workers
            .iter()
            .flat_map(|w| w.jobs())
            .map(|(_, held)| held.host_bytes)
            .sum::<u64>()
            + ahead.map_or(0, |a| a.host_bytes);
        let host_room = host_held == 0
            || self
                .inner
                .settings
                .host_memory_bytes
                .is_none_or(|host| host_held + need.host_bytes <= host);
        if !host_room {
            return None;
        }
        workers
            .iter()
            .filter(|worker| {
                if !worker.has_capacity() || self.excluded(job, worker) || !worker.could_hold(need)
                {
                    return false;
                }
                let info = worker.info();
                let bytes = need.on(info.kind);
                // A CPU worker proves one job at a time on the host, which the host check
                // above covers; a GPU holds several jobs' buffers at once.
                let kept = ahead
                    .filter(|a| info.kind == DeviceKind::Gpu && worker.could_hold(a))
                    .map_or(0, |a| a.on(info.kind));
                let held = worker.jobs();
                let reserved: u64 = held.iter().map(|(_, b)| b.on(info.kind)).sum::<u64>() + kept;
                reserved == 0
                    || info
                        .memory_free_bytes
                        .or(info.memory_total_bytes)
                        .is_none_or(|free| reserved + bytes <= free)
            })
            .min_by_key(|worker| (worker.jobs().len(), worker.info().kind == DeviceKind::Cpu))
            .cloned()
    }

    /// `None` when a device of another live node fits `need`; else why no node can run it.
    async fn cluster_fit(&self, need: &MemoryNeed) -> Result<Option<String>, StoreError> {
        let (nodes, now) = self.inner.store.nodes().await?;
        let stale_ms = 3 * self.inner.settings.lease.as_millis() as i64;
        let mut largest: Option<(u64, String, String)> = None;
        let mut live = 0;
        for node in nodes {
            let this_node = node.node_id == self.inner.settings.node;
            if !this_node && now - node.heartbeat_ms > stale_ms {
                continue;
            }
            live += 1;
            let devices = node.devices.as_array().cloned().unwrap_or_default();
            for d in devices {
                let total = d
                    .get("memory_total_bytes")
                    .and_then(serde_json::Value::as_u64);
                let kind = match d.get("kind").and_then(serde_json::Value::as_str) {
                    Some("gpu") => DeviceKind::Gpu,
                    _ => DeviceKind::Cpu,
                };
                let id = d
                    .get("id")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("?")
                    .to_owned();
                if let Some(total) = total {
                    if !this_node && total >= need.on(kind) {
                        return Ok(None);
                    }
                    if largest.as_ref().is_none_or(|(l, _, _)| total > *l) {
                        largest = Some((total, node.node_id.clone(), id));
                    }
                }
            }
        }
        let gib = proofmill_accel::host::gib;
        let needs = format!(
            "needs about {:.1} GiB of host memory (on a GPU: {:.1} GiB of its memory besides)",
            gib(need.host_bytes),
            gib(need.gpu_bytes)
        );
        let host_here = self
            .inner
            .settings
            .host_memory_bytes
            .filter(|host| need.host_bytes > *host)
            .map(|host| {
                format!(
                    "; this node may prove in {:.1} GiB of host memory",
                    gib(host)
                )
            })
            .unwrap_or_default();
        Ok(Some(match largest {
            Some((total, node, id)) => format!(
                "{needs}; the largest device of the {live} live node(s) has {:.1} GiB ({id} on {node}){host_here}: no node of this cluster can run it",
                gib(total)
            ),
            None => format!("{needs}, and no live node reports a device's memory{host_here}"),
        }))
    }

    /// Whether and where a queued job can run, from its row alone (no request body).
    async fn placement(&self, job: &JobRecord) -> Result<Placement, StoreError> {
        match job.kind {
            JobKind::Prove | JobKind::Keygen => {
                let Some(name) = job.circuit.as_deref() else {
                    return Ok(Placement::Fail(format!(
                        "{} job without a circuit",
                        job.kind
                    )));
                };
                match ProofCircuit::parse(name) {
                    Ok(circuit) => Ok(Placement::Ready(self.sized(circuit).await?)),
                    Err(e) => Ok(Placement::Fail(e.to_string())),
                }
            }
            JobKind::Aggregate | JobKind::Epoch => {
                for (i, dep) in job.input_jobs.iter().enumerate() {
                    let Some(dep_job) = self.inner.store.get(dep).await? else {
                        return Ok(Placement::Fail(format!(
                            "inputs[{i}]: job {dep} no longer exists"
                        )));
                    };
                    match dep_job.status {
                        JobStatus::Succeeded if dep_job.proof_location.is_some() => {}
                        JobStatus::Succeeded => {
                            return Ok(Placement::Fail(format!(
                                "inputs[{i}]: job {dep} succeeded but has no proof"
                            )))
                        }
                        JobStatus::Failed | JobStatus::Cancelled => {
                            return Ok(Placement::Fail(format!(
                                "inputs[{i}]: job {dep} {}: {}",
                                dep_job.status.as_str(),
                                dep_job.error.unwrap_or_default()
                            )));
                        }
                        JobStatus::Queued | JobStatus::Running => return Ok(Placement::Wait),
                    }
                }
                // An aggregate whose circuit is known: by its circuit and whether its keys
                // exist, as a prove job.
                if let Some(circuit) = job
                    .circuit
                    .as_deref()
                    .and_then(|name| ProofCircuit::parse(name).ok())
                {
                    return Ok(Placement::Ready(self.sized(circuit).await?));
                }
                // Else the row names the input jobs, not inline input proofs: at least two
                // inputs, keygen included.
                let inputs = job.input_jobs.len().max(2);
                Ok(Placement::Ready(aggregation_need(
                    job.kind == JobKind::Epoch,
                    inputs,
                )))
            }
        }
    }

    /// [`Prover::memory_need`](proofmill_prover::Prover::memory_need) of `circuit`, off the
    /// runtime: it reads a key's small metadata file, or lays out small copies of a catalog
    /// circuit the first time.
    async fn sized(&self, circuit: ProofCircuit) -> Result<MemoryNeed, StoreError> {
        let prover = self.inner.prover.clone();
        tokio::task::spawn_blocking(move || prover.memory_need(&circuit))
            .await
            .map_err(|e| StoreError::Task(format!("sizing a job: {e}")))
    }

    async fn fail_queued(&self, job: &JobRecord, reason: &str) -> Result<(), StoreError> {
        tracing::warn!(job = %job.id, reason, "job failed before it could start");
        if self.inner.store.fail_queued(&job.id, reason).await? {
            metrics::counter!("proofmill_jobs_finished_total", "status" => "failed", "node" => self.inner.settings.node.clone()).increment(1);
        }
        self.announce(&job.id);
        Ok(())
    }

    /// Reads a claimed job's request (and an aggregate's or epoch's input proofs) and hands it
    /// to its worker: a task of its own, so that a large request or a slow bucket delays only
    /// this job.
    async fn hand_over(
        &self,
        job_id: String,
        attempt: i64,
        worker: Arc<Worker>,
        cancel: Arc<AtomicBool>,
    ) {
        let work = self.work_of(&job_id).await;
        match work {
            Ok(work) => {
                let sent = worker.send(Assignment {
                    job_id: job_id.clone(),
                    work,
                    cancel,
                });
                if !sent {
                    self.give_back(
                        &job_id,
                        attempt,
                        &worker,
                        Handover::Retry("the worker was unavailable".into()),
                    )
                    .await;
                }
            }
            Err(handover) => self.give_back(&job_id, attempt, &worker, handover).await,
        }
    }

    /// A claimed job that could not be handed to its worker: back to the queue (tried again
    /// here after [`RETRY_HANDOVER`]) or failed.
    async fn give_back(&self, job_id: &str, attempt: i64, worker: &Worker, why: Handover) {
        self.set_held(job_id, None);
        worker.release(job_id);
        let store = &self.inner.store;
        let recorded = match why {
            Handover::Fail(reason) => {
                tracing::warn!(job = %job_id, %reason, "job failed");
                store
                    .finish(job_id, attempt, JobStatus::Failed, &reason)
                    .await
                    .map(|_| ())
            }
            Handover::Retry(reason) => {
                tracing::warn!(job = %job_id, %reason, "job re-queued; trying it again in {} s", RETRY_HANDOVER.as_secs());
                if let Ok(mut deferred) = self.inner.deferred.lock() {
                    deferred.insert(job_id.to_owned(), Instant::now() + RETRY_HANDOVER);
                }
                store.requeue(job_id, attempt, &reason).await.map(|_| ())
            }
        };
        if let Err(e) = recorded {
            tracing::error!(job = %job_id, error = %e, "could not record that the job did not start; its lease will expire and it will run again");
        }
        self.announce(job_id);
        self.wake();
    }

    /// The work of a claimed job, from its stored request.
    async fn work_of(&self, job_id: &str) -> Result<Work, Handover> {
        let request = match self.inner.store.request(job_id).await {
            Ok(Some(request)) => request,
            Ok(None) => return Err(Handover::Fail("the job's row vanished".into())),
            Err(e) if e.is_unavailable() => {
                return Err(Handover::Retry(format!(
                    "the job database was unreachable while its request was read: {e}"
                )))
            }
            Err(e) => {
                return Err(Handover::Fail(format!(
                    "its stored request is unusable: {e}"
                )))
            }
        };
        match request {
            StoredRequest::Prove {
                circuit,
                input,
                transcript,
                ..
            } => {
                let circuit = proofmill_circuits::lookup(&circuit)
                    .map_err(|e| Handover::Fail(e.to_string()))?;
                Ok(Work::Prove {
                    circuit,
                    input,
                    transcript,
                })
            }
            StoredRequest::Keygen { circuit, .. } => Ok(Work::Keygen {
                circuit: ProofCircuit::parse(&circuit)
                    .map_err(|e| Handover::Fail(e.to_string()))?,
            }),
            StoredRequest::Aggregate { inputs, final_, .. } => Ok(Work::Aggregate {
                inputs: self.input_proofs(inputs).await?,
                final_,
            }),
            StoredRequest::Epoch {
                inputs,
                state,
                final_,
                ..
            } => Ok(Work::Epoch {
                inputs: self.input_proofs(inputs).await?,
                state: Box::new(state),
                final_,
            }),
        }
    }

    /// An aggregate's or epoch's inputs as envelopes, in order.
    async fn input_proofs(&self, inputs: Vec<StoredInput>) -> Result<Vec<ProofEnvelope>, Handover> {
        let mut envelopes = Vec::with_capacity(inputs.len());
        for (i, input) in inputs.into_iter().enumerate() {
            envelopes.push(self.input_proof(i, input).await?);
        }
        Ok(envelopes)
    }

    /// One aggregate or epoch input as an envelope: an input job's proof from the artifact
    /// store, or the envelope the request carries.
    async fn input_proof(&self, i: usize, input: StoredInput) -> Result<ProofEnvelope, Handover> {
        match input {
            StoredInput::Proof(value) => ProofEnvelope::from_value(value)
                .map_err(|e| Handover::Fail(format!("inputs[{i}].proof: {e}"))),
            StoredInput::Job(dep) => {
                let location = match self.inner.store.get(&dep).await {
                    Ok(Some(job)) => job.proof_location,
                    Ok(None) => None,
                    Err(e) => {
                        return Err(Handover::Retry(format!(
                            "inputs[{i}]: job {dep} could not be read: {e}"
                        )))
                    }
                };
                let Some(location) = location else {
                    return Err(Handover::Fail(format!(
                        "inputs[{i}]: job {dep} has no proof"
                    )));
                };
                let text = match self.inner.artifacts.get(&location).await {
                    Ok(text) => text,
                    // The store may be unreachable for a while: try again later.
                    Err(e) if !e.is_not_found() => {
                        return Err(Handover::Retry(format!(
                            "inputs[{i}]: job {dep}'s proof could not be read now: {e}"
                        )))
                    }
                    Err(e) => return Err(Handover::Fail(format!("inputs[{i}]: job {dep}: {e}"))),
                };
                ProofEnvelope::from_json(&text)
                    .map_err(|e| Handover::Fail(format!("inputs[{i}]: job {dep}: {e}")))
            }
        }
    }
}

/// Why a claimed job could not be handed to its worker.
enum Handover {
    /// Worth trying again later: the job goes back to the queue (no failure counted).
    Retry(String),
    /// Never going to work: the job fails.
    Fail(String),
}
