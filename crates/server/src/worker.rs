//! Device workers: the only place proving happens. Each device gets two OS threads fed
//! through channels — never the async runtime, since a proof is minutes of CPU-bound (or
//! GPU-waiting) work:
//!
//! - a *prepare* thread that parses and validates the next job's input into a witness, so
//!   that this overlaps with the proof in progress;
//! - a *prove* thread that runs the [`Prover`] on the device.
//!
//! Workers report stages and outcomes to the scheduler as [`WorkerEvent`]s; they never touch
//! the job store. A cancelled job is stopped at the next stage boundary: the progress
//! callback sees the flag and unwinds out of the prover.

use std::{
    panic::{catch_unwind, resume_unwind, AssertUnwindSafe},
    sync::{
        atomic::{AtomicBool, Ordering},
        mpsc::{self, Receiver, SyncSender, TrySendError},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use proofmill_circuits::{CatalogCircuit, Witness};
use proofmill_prover::{engine::DevicePool, ProofEnvelope, Prover, ProverError, Stage, Transcript};
use tokio::sync::mpsc::UnboundedSender;

use crate::devices::{DeviceInfo, DeviceKind};

/// The work of one job, ready for a device.
#[derive(Debug, Clone)]
pub enum Work {
    /// Prove a batch.
    Prove {
        /// The circuit.
        circuit: CatalogCircuit,
        /// The job input (already validated once at submission).
        input: serde_json::Value,
        /// The transcript to prove with.
        transcript: Transcript,
    },
    /// Aggregate proofs.
    Aggregate {
        /// The proofs, in order.
        inputs: Vec<ProofEnvelope>,
        /// Final (keccak, EVM-verifiable) rather than intermediate (poseidon).
        final_: bool,
    },
}

/// A job handed to a worker.
#[derive(Debug, Clone)]
pub struct Assignment {
    /// The job.
    pub job_id: String,
    /// What to do.
    pub work: Work,
    /// Set to stop the job at the next stage boundary.
    pub cancel: Arc<AtomicBool>,
}

/// How a job ended on a device.
#[derive(Debug)]
pub enum Outcome {
    /// A proof the stock verifier accepted.
    Proved(Box<ProofEnvelope>),
    /// No proof.
    Failed {
        /// Why, for the job's `error`.
        message: String,
        /// The input's fault (retrying cannot help).
        client_error: bool,
    },
    /// Stopped at a stage boundary after a cancel.
    Cancelled,
}

/// What workers tell the scheduler.
#[derive(Debug)]
pub enum WorkerEvent {
    /// A job reached a stage.
    Stage {
        /// The job.
        job_id: String,
        /// Stage name (`witness`, `waiting_for_device`, `srs`, `keys`, `keygen`, `proving`,
        /// `verifying`, ...).
        stage: String,
        /// Rough completed fraction.
        progress: f64,
    },
    /// A job left the device.
    Finished {
        /// The job.
        job_id: String,
        /// Device id.
        device: String,
        /// Device kind (for usage metering).
        device_kind: DeviceKind,
        /// The result.
        outcome: Outcome,
        /// Seconds the job held the device.
        device_seconds: f64,
    },
}

/// Marker unwound out of the prover when a job is cancelled.
struct Cancelled;

/// A job whose witness is ready.
struct Prepared {
    job_id: String,
    work: PreparedWork,
    cancel: Arc<AtomicBool>,
}

enum PreparedWork {
    Prove {
        circuit: CatalogCircuit,
        witness: Box<Witness>,
        transcript: Transcript,
    },
    Aggregate {
        inputs: Vec<ProofEnvelope>,
        final_: bool,
    },
}

/// Jobs a worker holds at once: one proving, one being prepared.
pub const PIPELINE_DEPTH: usize = 2;

/// One device's worker: its threads and what it holds.
#[derive(Debug)]
pub struct Worker {
    info: Mutex<DeviceInfo>,
    id: String,
    kind: DeviceKind,
    tx: SyncSender<Assignment>,
    /// (job id, estimated bytes) of the jobs it holds, proving first.
    inflight: Mutex<Vec<(String, u64)>>,
}

impl Worker {
    /// Starts the worker threads of `device`. With a `pool`, proofs run on the pool's threads
    /// and so through its device's engine; without one, through the process-wide engine.
    pub fn spawn(
        device: DeviceInfo,
        prover: Arc<Prover>,
        events: UnboundedSender<WorkerEvent>,
        pool: Option<Arc<DevicePool>>,
    ) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::sync_channel::<Assignment>(PIPELINE_DEPTH);
        let (prepared_tx, prepared_rx) = mpsc::sync_channel::<Prepared>(0);
        let id = device.id.clone();
        let kind = device.kind;
        {
            let events = events.clone();
            std::thread::Builder::new()
                .name(format!("{id}-prepare"))
                .spawn(move || prepare_loop(rx, prepared_tx, events))?;
        }
        {
            let id = id.clone();
            std::thread::Builder::new()
                .name(format!("{id}-prove"))
                .spawn(move || {
                    prove_loop(&id, kind, &prover, pool.as_deref(), prepared_rx, events)
                })?;
        }
        Ok(Self {
            info: Mutex::new(device),
            id,
            kind,
            tx,
            inflight: Mutex::new(Vec::new()),
        })
    }

    /// Device id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Device kind.
    pub fn kind(&self) -> DeviceKind {
        self.kind
    }

    /// The device with fresh telemetry and the jobs it holds.
    pub fn info(&self) -> DeviceInfo {
        let mut info = match self.info.lock() {
            Ok(info) => info.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        info.refresh();
        info.jobs = self.jobs().into_iter().map(|(id, _)| id).collect();
        info
    }

    /// The jobs it holds.
    pub fn jobs(&self) -> Vec<(String, u64)> {
        self.inflight.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Whether it can take another job now.
    pub fn has_capacity(&self) -> bool {
        self.jobs().len() < PIPELINE_DEPTH
    }

    /// Hands a job to the worker; false when its queue is full or its threads are gone.
    pub fn assign(&self, assignment: Assignment, estimated_bytes: u64) -> bool {
        let job_id = assignment.job_id.clone();
        if let Ok(mut v) = self.inflight.lock() {
            v.push((job_id.clone(), estimated_bytes));
        }
        match self.tx.try_send(assignment) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.release(&job_id);
                false
            }
        }
    }

    /// Forgets a job that left the device.
    pub fn release(&self, job_id: &str) {
        if let Ok(mut v) = self.inflight.lock() {
            v.retain(|(id, _)| id != job_id);
        }
    }
}

/// The rough completed fraction at the start of a stage.
pub fn stage_progress(stage: &str) -> f64 {
    match stage {
        "witness" => 0.02,
        "waiting_for_device" => 0.05,
        "srs" => 0.08,
        "keys" => 0.12,
        "keygen" => 0.15,
        "proving" => 0.35,
        "verifying" => 0.9,
        _ => 0.5,
    }
}

fn stage_name(stage: Stage) -> String {
    serde_json::to_value(stage)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{stage:?}").to_lowercase())
}

fn send_stage(events: &UnboundedSender<WorkerEvent>, job_id: &str, stage: &str) {
    let _ = events.send(WorkerEvent::Stage {
        job_id: job_id.to_owned(),
        stage: stage.to_owned(),
        progress: stage_progress(stage),
    });
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_owned()
    }
}

fn prepare_loop(
    rx: Receiver<Assignment>,
    prepared_tx: SyncSender<Prepared>,
    events: UnboundedSender<WorkerEvent>,
) {
    while let Ok(assignment) = rx.recv() {
        let Assignment {
            job_id,
            work,
            cancel,
        } = assignment;
        let prepared = match work {
            Work::Prove {
                circuit,
                input,
                transcript,
            } => {
                send_stage(&events, &job_id, "witness");
                let started = Instant::now();
                match catch_unwind(AssertUnwindSafe(|| circuit.parse_input(&input))) {
                    Ok(Ok(witness)) => {
                        metrics::histogram!("proofmill_stage_seconds", "stage" => "witness")
                            .record(started.elapsed().as_secs_f64());
                        PreparedWork::Prove {
                            circuit,
                            witness: Box::new(witness),
                            transcript,
                        }
                    }
                    Ok(Err(e)) => {
                        finish_early(&events, &job_id, e.to_string(), true);
                        continue;
                    }
                    Err(panic) => {
                        finish_early(
                            &events,
                            &job_id,
                            format!("witness generation panicked: {}", panic_message(&*panic)),
                            false,
                        );
                        continue;
                    }
                }
            }
            Work::Aggregate { inputs, final_ } => PreparedWork::Aggregate { inputs, final_ },
        };
        send_stage(&events, &job_id, "waiting_for_device");
        // Hand over when the prove thread is free; keep watching the cancel flag meanwhile.
        let mut item = Prepared {
            job_id,
            work: prepared,
            cancel,
        };
        loop {
            if item.cancel.load(Ordering::SeqCst) {
                let _ = events.send(WorkerEvent::Finished {
                    job_id: item.job_id.clone(),
                    device: String::new(),
                    device_kind: DeviceKind::Cpu,
                    outcome: Outcome::Cancelled,
                    device_seconds: 0.0,
                });
                break;
            }
            match prepared_tx.try_send(item) {
                Ok(()) => break,
                Err(TrySendError::Full(back)) => {
                    item = back;
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(TrySendError::Disconnected(_)) => return,
            }
        }
    }
}

fn finish_early(
    events: &UnboundedSender<WorkerEvent>,
    job_id: &str,
    message: String,
    client_error: bool,
) {
    let _ = events.send(WorkerEvent::Finished {
        job_id: job_id.to_owned(),
        device: String::new(),
        device_kind: DeviceKind::Cpu,
        outcome: Outcome::Failed {
            message,
            client_error,
        },
        device_seconds: 0.0,
    });
}

fn prove_loop(
    device: &str,
    kind: DeviceKind,
    prover: &Prover,
    pool: Option<&DevicePool>,
    rx: Receiver<Prepared>,
    events: UnboundedSender<WorkerEvent>,
) {
    while let Ok(job) = rx.recv() {
        let started = Instant::now();
        let outcome = if job.cancel.load(Ordering::SeqCst) {
            Outcome::Cancelled
        } else {
            match pool {
                Some(pool) => pool.run(|| run_job(prover, &job, &events)),
                None => run_job(prover, &job, &events),
            }
        };
        let device_seconds = started.elapsed().as_secs_f64();
        if events
            .send(WorkerEvent::Finished {
                job_id: job.job_id,
                device: device.to_owned(),
                device_kind: kind,
                outcome,
                device_seconds,
            })
            .is_err()
        {
            return;
        }
    }
}

fn run_job(prover: &Prover, job: &Prepared, events: &UnboundedSender<WorkerEvent>) -> Outcome {
    let current: Mutex<Option<(String, Instant)>> = Mutex::new(None);
    let close_stage = || {
        if let Ok(mut cur) = current.lock() {
            if let Some((name, since)) = cur.take() {
                metrics::histogram!("proofmill_stage_seconds", "stage" => name)
                    .record(since.elapsed().as_secs_f64());
            }
        }
    };
    let progress = |stage: Stage| {
        close_stage();
        if job.cancel.load(Ordering::SeqCst) {
            resume_unwind(Box::new(Cancelled));
        }
        let name = stage_name(stage);
        tracing::info!(job = %job.job_id, stage = %stage, "job stage");
        send_stage(events, &job.job_id, &name);
        if let Ok(mut cur) = current.lock() {
            *cur = Some((name, Instant::now()));
        }
    };
    let result = catch_unwind(AssertUnwindSafe(|| match &job.work {
        PreparedWork::Prove {
            circuit,
            witness,
            transcript,
        } => prover.prove_witness(circuit, witness, *transcript, &progress),
        PreparedWork::Aggregate { inputs, final_ } => aggregate(prover, inputs, *final_, &progress),
    }));
    close_stage();
    match result {
        Ok(Ok(envelope)) => Outcome::Proved(Box::new(envelope)),
        Ok(Err(e)) => Outcome::Failed {
            message: e.to_string(),
            client_error: e.is_client_error(),
        },
        Err(payload) if payload.is::<Cancelled>() => Outcome::Cancelled,
        Err(payload) => Outcome::Failed {
            message: format!("the prover panicked: {}", panic_message(&*payload)),
            client_error: false,
        },
    }
}

/// Aggregation through the prover crate (`Prover::aggregate`, the lead's issue).
fn aggregate(
    prover: &Prover,
    inputs: &[ProofEnvelope],
    final_: bool,
    progress: &dyn Fn(Stage),
) -> Result<ProofEnvelope, ProverError> {
    prover.aggregate(inputs, final_, progress)
}
