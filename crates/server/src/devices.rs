//! Devices as `GET /v1/devices`, the node registry and the scheduler see them: what each one
//! is, how much memory it has and what it is doing, with live telemetry (NVML for GPUs,
//! `/proc` for the host CPU).
//!
//! Telemetry is read by a [`Telemetry`] thread of its own every couple of seconds, never on
//! the async runtime: NVML calls and `/proc` reads can take milliseconds each, and the
//! dispatch loop, the heartbeats and `/metrics` would all wait on them. Readers get the
//! latest snapshot.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::Duration,
};

use proofmill_accel::host;
pub use proofmill_prover::devices::DeviceKind;
use proofmill_prover::devices::ProvingDevice;
use serde::{Deserialize, Serialize};

/// One device, with live telemetry where the device reports it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeviceInfo {
    /// Stable id on its node (`cpu0`, `gpu0`, ...): what jobs' `device` field names.
    pub id: String,
    /// The node it belongs to (its `node_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Marketing name (`AMD EPYC ...`, `NVIDIA H100 80GB HBM3`).
    pub name: String,
    /// `cpu` or `gpu`.
    #[schema(value_type = String, example = "gpu")]
    pub kind: DeviceKind,
    /// Cores (CPU) or streaming multiprocessors (GPU), when known.
    pub cores: Option<u32>,
    /// Total memory, bytes.
    pub memory_total_bytes: Option<u64>,
    /// Free memory now, bytes.
    pub memory_free_bytes: Option<u64>,
    /// Busy fraction 0..1 (CPU: 1-minute load average over cores).
    pub utilization: Option<f64>,
    /// Degrees Celsius.
    pub temperature_c: Option<f64>,
    /// Watts drawn.
    pub power_w: Option<f64>,
    /// The GPU's NVML UUID (telemetry is read by it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// The GPU's CUDA ordinal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordinal: Option<u32>,
    /// The engine it proves with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    /// The memory the operator lets it prove in (`cpu_memory_bytes`), which bounds
    /// `memory_total_bytes` and `memory_free_bytes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_limit_bytes: Option<u64>,
    /// Whether jobs may be placed on it.
    pub usable: bool,
    /// Why not, when unusable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The jobs it holds now: the one proving, then one whose witness is being prepared.
    pub jobs: Vec<String>,
    /// Recent telemetry readings, oldest first (the last [`HISTORY_SAMPLES`], one per
    /// telemetry period): what the console draws as sparklines.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<TelemetrySample>,
}

/// How many telemetry readings a device keeps ([`DeviceInfo::history`]): three minutes at
/// [`TELEMETRY_PERIOD`].
pub const HISTORY_SAMPLES: usize = 90;

/// One telemetry reading of a device.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TelemetrySample {
    /// When, Unix milliseconds.
    pub at_ms: i64,
    /// Busy fraction 0..1.
    pub utilization: Option<f64>,
    /// Memory in use, bytes.
    pub memory_used_bytes: Option<u64>,
    /// Degrees Celsius.
    pub temperature_c: Option<f64>,
    /// Watts drawn.
    pub power_w: Option<f64>,
}

impl DeviceInfo {
    /// A proving device as this node shows it, marked as `node`'s, telemetry not read yet.
    pub fn of(device: &ProvingDevice, node: &str) -> Self {
        Self {
            id: device.id.clone(),
            node: Some(node.to_owned()),
            name: device.name.clone(),
            kind: device.kind,
            cores: match device.kind {
                DeviceKind::Cpu => std::thread::available_parallelism()
                    .ok()
                    .map(|n| n.get() as u32),
                DeviceKind::Gpu => None,
            },
            memory_total_bytes: device.memory_total_bytes,
            memory_free_bytes: None,
            utilization: None,
            temperature_c: None,
            power_w: None,
            uuid: device.uuid.clone(),
            ordinal: device.ordinal,
            engine: Some(device.engine.clone()),
            memory_limit_bytes: None,
            usable: true,
            reason: None,
            jobs: Vec::new(),
            history: Vec::new(),
        }
    }

    /// Appends the current reading to [`Self::history`], dropping the oldest past
    /// [`HISTORY_SAMPLES`].
    pub fn record_sample(&mut self, at_ms: i64) {
        let sample = TelemetrySample {
            at_ms,
            utilization: self.utilization,
            memory_used_bytes: self
                .memory_total_bytes
                .zip(self.memory_free_bytes)
                .map(|(total, free)| total.saturating_sub(free)),
            temperature_c: self.temperature_c,
            power_w: self.power_w,
        };
        if self.history.len() >= HISTORY_SAMPLES {
            let excess = self.history.len() + 1 - HISTORY_SAMPLES;
            self.history.drain(..excess);
        }
        self.history.push(sample);
    }

    /// Reads live telemetry again (blocking: NVML, `/proc`).
    pub fn refresh(&mut self) {
        match self.kind {
            DeviceKind::Gpu => {
                if let Some(t) = self
                    .ordinal
                    .and_then(|i| proofmill_accel::gpu_telemetry(self.uuid.as_deref(), i))
                {
                    self.memory_total_bytes = t.memory_total_bytes.or(self.memory_total_bytes);
                    self.memory_free_bytes = t.memory_free_bytes;
                    self.utilization = t.utilization_percent.map(|p| f64::from(p) / 100.0);
                    self.temperature_c = t.temperature_c.map(f64::from);
                    self.power_w = t.power_watts;
                }
            }
            DeviceKind::Cpu => {
                let (total, available) = host::memory();
                let cap = |v: Option<u64>| match (v, self.memory_limit_bytes) {
                    (Some(v), Some(limit)) => Some(v.min(limit)),
                    (v, limit) => v.or(limit),
                };
                self.memory_total_bytes = cap(total);
                self.memory_free_bytes = cap(available);
                self.utilization = host::load_average().and_then(|load| {
                    self.cores
                        .map(|c| (load / f64::from(c.max(1))).clamp(0.0, 1.0))
                });
                self.temperature_c = host::cpu_temperature();
            }
        }
    }
}

/// The latest telemetry of this node's devices, refreshed by a thread of its own; the thread
/// stops when the last handle is dropped.
#[derive(Debug, Clone)]
pub struct Telemetry {
    snapshot: Arc<RwLock<HashMap<String, DeviceInfo>>>,
}

/// How often the telemetry thread reads the devices.
pub const TELEMETRY_PERIOD: Duration = Duration::from_secs(2);

impl Telemetry {
    /// Starts reading `devices` every `period` (the first reading happens before this
    /// returns, so call it off the async runtime).
    pub fn start(mut devices: Vec<DeviceInfo>, period: Duration) -> std::io::Result<Self> {
        for d in &mut devices {
            d.refresh();
            d.record_sample(crate::store::now_ms());
        }
        let snapshot = Arc::new(RwLock::new(
            devices
                .iter()
                .map(|d| (d.id.clone(), d.clone()))
                .collect::<HashMap<_, _>>(),
        ));
        let telemetry = Self {
            snapshot: snapshot.clone(),
        };
        std::thread::Builder::new()
            .name("telemetry".into())
            .spawn(move || {
                // Wakes often enough to stop promptly once every handle is gone.
                let tick = Duration::from_millis(100).min(period);
                let mut waited = Duration::ZERO;
                while Arc::strong_count(&snapshot) > 1 {
                    std::thread::sleep(tick);
                    waited += tick;
                    if waited < period {
                        continue;
                    }
                    waited = Duration::ZERO;
                    for d in &mut devices {
                        d.refresh();
                        d.record_sample(crate::store::now_ms());
                    }
                    if let Ok(mut snap) = snapshot.write() {
                        for d in &devices {
                            snap.insert(d.id.clone(), d.clone());
                        }
                    }
                }
            })?;
        Ok(telemetry)
    }

    /// The latest reading of device `id`.
    pub fn get(&self, id: &str) -> Option<DeviceInfo> {
        self.snapshot.read().ok()?.get(id).cloned()
    }
}
