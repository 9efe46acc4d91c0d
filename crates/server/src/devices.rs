//! Devices as the scheduler and `GET /v1/devices` see them: what each one is, how much memory
//! it has and what it is doing. The host CPU (one entry per CPU worker) and every GPU the
//! accel crate's inventory found, with live NVML telemetry for GPUs.

use proofmill_accel::host;
use serde::{Deserialize, Serialize};

/// What kind of device proves on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    /// The host CPU (all cores, via rayon).
    Cpu,
    /// A CUDA GPU.
    Gpu,
}

impl DeviceKind {
    /// The name used in metrics and usage.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::Gpu => "gpu",
        }
    }
}

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
    /// CPU or GPU.
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
    /// Whether jobs may be placed on it.
    pub usable: bool,
    /// Why not, when unusable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The jobs it holds now: the one proving, then one whose witness is being prepared.
    pub jobs: Vec<String>,
}

impl DeviceInfo {
    /// The same device, marked as `node`'s.
    pub fn on_node(mut self, node: &str) -> Self {
        self.node = Some(node.to_owned());
        self
    }

    /// The host CPU as worker `index`.
    pub fn cpu(index: usize) -> Self {
        let mut info = Self {
            id: format!("cpu{index}"),
            node: None,
            name: host::cpu_model().unwrap_or_else(|| "CPU".to_owned()),
            kind: DeviceKind::Cpu,
            cores: std::thread::available_parallelism()
                .ok()
                .map(|n| n.get() as u32),
            memory_total_bytes: None,
            memory_free_bytes: None,
            utilization: None,
            temperature_c: None,
            power_w: None,
            uuid: None,
            usable: true,
            reason: None,
            jobs: Vec::new(),
        };
        info.refresh();
        info
    }

    /// GPU `gpu.index` (its CUDA ordinal) as the inventory found it; `reason` (or the
    /// inventory's own) makes it unusable.
    pub fn gpu(gpu: &proofmill_accel::GpuInfo, reason: Option<String>) -> Self {
        let reason = reason.or_else(|| gpu.unusable_reason.clone());
        let mut info = Self {
            id: format!("gpu{}", gpu.index),
            node: None,
            name: gpu.name.clone(),
            kind: DeviceKind::Gpu,
            cores: None,
            memory_total_bytes: gpu.memory_total_bytes,
            memory_free_bytes: gpu.memory_free_bytes,
            utilization: gpu.utilization_percent.map(|p| f64::from(p) / 100.0),
            temperature_c: gpu.temperature_c.map(f64::from),
            power_w: gpu.power_watts,
            uuid: gpu.uuid.clone(),
            usable: reason.is_none(),
            reason,
            jobs: Vec::new(),
        };
        info.refresh();
        info
    }

    /// Reads live telemetry again.
    pub fn refresh(&mut self) {
        if self.kind == DeviceKind::Gpu {
            let index = self.id.strip_prefix("gpu").and_then(|i| i.parse().ok());
            if let Some(t) =
                index.and_then(|i| proofmill_accel::gpu_telemetry(self.uuid.as_deref(), i))
            {
                self.memory_total_bytes = t.memory_total_bytes.or(self.memory_total_bytes);
                self.memory_free_bytes = t.memory_free_bytes;
                self.utilization = t.utilization_percent.map(|p| f64::from(p) / 100.0);
                self.temperature_c = t.temperature_c.map(f64::from);
                self.power_w = t.power_watts;
            }
        }
        if self.kind == DeviceKind::Cpu {
            let (total, available) = host::memory();
            self.memory_total_bytes = total;
            self.memory_free_bytes = available;
            self.utilization = host::load_average().and_then(|load| {
                self.cores
                    .map(|c| (load / f64::from(c.max(1))).clamp(0.0, 1.0))
            });
            self.temperature_c = host::cpu_temperature();
        }
    }
}

/// Bytes a job is expected to need on a device: the proving key's and witness's polynomials
/// in the extended domain. A rough but monotone estimate — it only has to rank jobs against
/// free memory.
pub fn estimate_prove_bytes(k: u32, advice_columns: usize, lookup_columns: usize) -> u64 {
    // advice + lookup + ~10 fixed/selector/permutation/instance columns, each 32-byte
    // elements, kept in coefficient, Lagrange and extended (x4) forms.
    let columns = (advice_columns + lookup_columns + 10) as u64;
    (1u64 << k) * columns * 32 * 6
}

/// Peak memory of an aggregation proof (k=21, measured 7.7-7.9 GB).
pub const AGGREGATE_BYTES: u64 = 8 << 30;
