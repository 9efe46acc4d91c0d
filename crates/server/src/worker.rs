//! Device workers: the only place proving happens. Each device gets two OS threads fed
//! through channels — never the async runtime, since a proof is minutes of CPU-bound (or
//! GPU-waiting) work:
//!
//! - a *prepare* thread that parses and validates the next job's input into a witness, so
//!   that this overlaps with the proof in progress;
//! - a *prove* thread that runs the [`Prover`] on the device (on its GPU's [`DevicePool`],
//!   or with the process-wide engine for the CPU).
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
use proofmill_prover::{
    devices::ProvingDevice,
    engine::DevicePool,
    epoch::{EpochValues, SettledState},
    memory::MemoryNeed,
    KeySource, ProofCircuit, ProofEnvelope, Prover, Stage, Transcript,
};
use tokio::sync::mpsc::UnboundedSender;

use crate::{
    devices::{DeviceInfo, DeviceKind, Telemetry},
    job::JobStage,
};

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
    /// Settle an epoch.
    Epoch {
        /// The proofs, one per chain.
        inputs: Vec<ProofEnvelope>,
        /// What L1 held before the epoch.
        state: Box<SettledState>,
        /// Final (keccak, EVM-verifiable) rather than intermediate (poseidon).
        final_: bool,
    },
    /// Make (or load) a circuit's keys.
    Keygen {
        /// The circuit.
        circuit: ProofCircuit,
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
    Proved {
        /// The proof.
        envelope: Box<ProofEnvelope>,
        /// A final aggregate or epoch proof: the EVM gas its generated Solidity verifier used
        /// to accept it (none without solc, or when the measurement failed: the proof is
        /// valid either way).
        evm_gas: Option<u64>,
        /// An epoch proof: its public values, decoded.
        epoch: Option<Box<EpochValues>>,
        /// Engine calls that failed on the device (a GPU out of memory) and ran on the CPU
        /// instead, in words, for the attempt's history.
        engine_note: Option<String>,
    },
    /// A keygen job's keys are ready.
    KeysReady {
        /// The circuit.
        circuit: String,
        /// SHA-256 of its verifying key.
        vk_hash: String,
    },
    /// No result.
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
        /// The stage.
        stage: JobStage,
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
    Epoch {
        inputs: Vec<ProofEnvelope>,
        state: Box<SettledState>,
        final_: bool,
    },
    Keygen {
        circuit: ProofCircuit,
    },
}

/// Jobs a worker holds at once: one proving, one being prepared.
pub const PIPELINE_DEPTH: usize = 2;

/// One device's worker: its threads and what it holds.
#[derive(Debug)]
pub struct Worker {
    info: DeviceInfo,
    telemetry: Telemetry,
    tx: SyncSender<Assignment>,
    /// (job id, estimated memory) of the jobs it holds, proving first.
    inflight: Mutex<Vec<(String, MemoryNeed)>>,
}

/// Who reports what a worker thread did.
#[derive(Clone)]
struct Reporter {
    device: String,
    kind: DeviceKind,
    events: UnboundedSender<WorkerEvent>,
}

impl Reporter {
    fn stage(&self, job_id: &str, stage: JobStage) {
        let _ = self.events.send(WorkerEvent::Stage {
            job_id: job_id.to_owned(),
            stage,
        });
    }

    fn finished(&self, job_id: String, outcome: Outcome, device_seconds: f64) -> bool {
        self.events
            .send(WorkerEvent::Finished {
                job_id,
                device: self.device.clone(),
                device_kind: self.kind,
                outcome,
                device_seconds,
            })
            .is_ok()
    }
}

impl Worker {
    /// Starts the worker threads of `device`, shown as `info` (its telemetry read through
    /// `telemetry`). A GPU device proves on its pool's threads, and so through its own
    /// engine; the CPU through the process-wide engine.
    pub fn spawn(
        device: &ProvingDevice,
        info: DeviceInfo,
        telemetry: Telemetry,
        prover: Arc<Prover>,
        events: UnboundedSender<WorkerEvent>,
    ) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::sync_channel::<Assignment>(PIPELINE_DEPTH);
        let (prepared_tx, prepared_rx) = mpsc::sync_channel::<Prepared>(0);
        let reporter = Reporter {
            device: device.id.clone(),
            kind: device.kind,
            events,
        };
        {
            let reporter = reporter.clone();
            std::thread::Builder::new()
                .name(format!("{}-prepare", device.id))
                .spawn(move || prepare_loop(rx, prepared_tx, &reporter))?;
        }
        let pool = device.pool.clone();
        std::thread::Builder::new()
            .name(format!("{}-prove", device.id))
            .spawn(move || prove_loop(&prover, pool.as_deref(), prepared_rx, &reporter))?;
        Ok(Self {
            info,
            telemetry,
            tx,
            inflight: Mutex::new(Vec::new()),
        })
    }

    /// Device id.
    pub fn id(&self) -> &str {
        &self.info.id
    }

    /// Device kind.
    pub fn kind(&self) -> DeviceKind {
        self.info.kind
    }

    /// The device with its latest telemetry and the jobs it holds (reads no device).
    pub fn info(&self) -> DeviceInfo {
        let mut info = self
            .telemetry
            .get(&self.info.id)
            .unwrap_or_else(|| self.info.clone());
        info.jobs = self.jobs().into_iter().map(|(id, _)| id).collect();
        info
    }

    /// The jobs it holds, with the memory each was placed with.
    pub fn jobs(&self) -> Vec<(String, MemoryNeed)> {
        self.inflight.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Whether its device could hold `need` when idle (its total memory: a GPU's, or the
    /// host's for a CPU worker).
    pub fn could_hold(&self, need: &MemoryNeed) -> bool {
        let info = self.info();
        info.memory_total_bytes
            .is_none_or(|total| need.on(info.kind) <= total)
    }

    /// Whether it can take another job now.
    pub fn has_capacity(&self) -> bool {
        self.jobs().len() < PIPELINE_DEPTH
    }

    /// Holds a place for a job about to be handed over ([`Worker::send`]), so that capacity
    /// counts it while its work is being read.
    pub fn reserve(&self, job_id: &str, need: MemoryNeed) {
        if let Ok(mut v) = self.inflight.lock() {
            v.push((job_id.to_owned(), need));
        }
    }

    /// Hands a reserved job to the worker's threads; false (and the place is released) when
    /// its queue is full or its threads are gone.
    pub fn send(&self, assignment: Assignment) -> bool {
        let job_id = assignment.job_id.clone();
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

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_owned()
    }
}

fn prepare_loop(rx: Receiver<Assignment>, prepared_tx: SyncSender<Prepared>, reporter: &Reporter) {
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
                reporter.stage(&job_id, JobStage::Witness);
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
                        let outcome = Outcome::Failed {
                            message: e.to_string(),
                            client_error: true,
                        };
                        reporter.finished(job_id, outcome, 0.0);
                        continue;
                    }
                    Err(panic) => {
                        let outcome = Outcome::Failed {
                            message: format!(
                                "witness generation panicked: {}",
                                panic_message(&*panic)
                            ),
                            client_error: false,
                        };
                        reporter.finished(job_id, outcome, 0.0);
                        continue;
                    }
                }
            }
            Work::Aggregate { inputs, final_ } => PreparedWork::Aggregate { inputs, final_ },
            Work::Epoch {
                inputs,
                state,
                final_,
            } => PreparedWork::Epoch {
                inputs,
                state,
                final_,
            },
            Work::Keygen { circuit } => PreparedWork::Keygen { circuit },
        };
        reporter.stage(&job_id, JobStage::WaitingForDevice);
        // Hand over when the prove thread is free; keep watching the cancel flag meanwhile.
        let mut item = Prepared {
            job_id,
            work: prepared,
            cancel,
        };
        loop {
            if item.cancel.load(Ordering::SeqCst) {
                reporter.finished(item.job_id.clone(), Outcome::Cancelled, 0.0);
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

fn prove_loop(
    prover: &Prover,
    pool: Option<&DevicePool>,
    rx: Receiver<Prepared>,
    reporter: &Reporter,
) {
    while let Ok(job) = rx.recv() {
        let started = Instant::now();
        let outcome = if job.cancel.load(Ordering::SeqCst) {
            Outcome::Cancelled
        } else {
            match pool {
                Some(pool) => {
                    // A GPU call that fails (out of memory, a driver error) is computed by
                    // halo2's CPU code: the job goes on, and its record says so.
                    let before = pool.accelerator().stats();
                    let mut outcome = pool.run(|| run_job(prover, &job, reporter));
                    let note = pool.accelerator().fallback_note(&before);
                    if let Some(note) = &note {
                        tracing::warn!(job = %job.job_id, device = %reporter.device, "{note}");
                    }
                    if let Outcome::Proved { engine_note, .. } = &mut outcome {
                        *engine_note = note;
                    }
                    outcome
                }
                None => run_job(prover, &job, reporter),
            }
        };
        let device_seconds = started.elapsed().as_secs_f64();
        if !reporter.finished(job.job_id, outcome, device_seconds) {
            return;
        }
    }
}

/// A verified proof with what it shows: the EVM gas of a final recursive (aggregate or epoch)
/// proof, measured here on the thread that made it, and an epoch proof's public values.
/// Neither can fail the job: the proof is valid and verified, so a measurement that fails is
/// a warning and an absent value.
fn proved(prover: &Prover, job_id: &str, envelope: ProofEnvelope, epoch: bool) -> Outcome {
    let recursive = ProofCircuit::parse(&envelope.circuit).is_ok_and(|c| c.is_recursive());
    let evm_gas = if recursive && envelope.transcript == Transcript::Keccak {
        let started = Instant::now();
        match catch_unwind(AssertUnwindSafe(|| prover.evm_gas(&envelope))) {
            Ok(Ok(Some(gas))) => {
                tracing::info!(job = %job_id, gas, seconds = format!("{:.1}", started.elapsed().as_secs_f64()), "EVM verification gas measured");
                Some(gas)
            }
            Ok(Ok(None)) => {
                tracing::info!(job = %job_id, "no solc on this node: the EVM verification gas is not measured");
                None
            }
            Ok(Err(e)) => {
                tracing::warn!(job = %job_id, error = %e, "could not measure the EVM verification gas; the proof itself is valid");
                None
            }
            Err(panic) => {
                tracing::warn!(job = %job_id, error = %panic_message(&*panic), "measuring the EVM verification gas panicked; the proof itself is valid");
                None
            }
        }
    } else {
        None
    };
    let epoch = if epoch {
        match EpochValues::from_envelope(&envelope) {
            Ok(values) => Some(Box::new(values)),
            Err(e) => {
                tracing::warn!(job = %job_id, error = %e, "could not decode the epoch proof's public values");
                None
            }
        }
    } else {
        None
    };
    Outcome::Proved {
        envelope: Box::new(envelope),
        evm_gas,
        epoch,
        engine_note: None,
    }
}

fn run_job(prover: &Prover, job: &Prepared, reporter: &Reporter) -> Outcome {
    let current: Mutex<Option<(JobStage, Instant)>> = Mutex::new(None);
    let close_stage = || {
        if let Ok(mut cur) = current.lock() {
            if let Some((stage, since)) = cur.take() {
                metrics::histogram!("proofmill_stage_seconds", "stage" => stage.as_str())
                    .record(since.elapsed().as_secs_f64());
            }
        }
    };
    let progress = |stage: Stage| {
        close_stage();
        if job.cancel.load(Ordering::SeqCst) {
            resume_unwind(Box::new(Cancelled));
        }
        tracing::info!(job = %job.job_id, stage = %stage, "job stage");
        let stage = JobStage::from(stage);
        reporter.stage(&job.job_id, stage);
        if let Ok(mut cur) = current.lock() {
            *cur = Some((stage, Instant::now()));
        }
    };
    let result = catch_unwind(AssertUnwindSafe(|| match &job.work {
        PreparedWork::Prove {
            circuit,
            witness,
            transcript,
        } => prover
            .prove_witness(circuit, witness, *transcript, &progress)
            .map(|e| proved(prover, &job.job_id, e, false)),
        PreparedWork::Aggregate { inputs, final_ } => prover
            .aggregate(inputs, *final_, &progress)
            .map(|e| proved(prover, &job.job_id, e, false)),
        // Input aggregations' keys must be on this appliance, as for aggregate jobs (an input
        // never starts a keygen: that is a keygen job's work).
        PreparedWork::Epoch {
            inputs,
            state,
            final_,
        } => prover
            .epoch(inputs, state, *final_, KeySource::Existing, &progress)
            .map(|e| proved(prover, &job.job_id, e, true)),
        PreparedWork::Keygen { circuit } => prover
            .keys_for(circuit, KeySource::Generate, &progress)
            .map(|(_, keys)| Outcome::KeysReady {
                circuit: circuit.name(),
                vk_hash: keys.vk_hash.clone(),
            }),
    }));
    close_stage();
    match result {
        Ok(Ok(outcome)) => outcome,
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
