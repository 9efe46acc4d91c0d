//! The devices this process proves on, and what a proof needs of them. The server asks; this
//! module knows: which GPUs can prove (each opened, self-checked and given a [`DevicePool`]
//! of its own), which engine the process-wide hook gets (the CPU engine when GPU workers carry
//! the GPUs). How much memory a proof needs is `crate::memory`'s.
//!
//! It knows nothing of jobs or HTTP: the job server turns each [`ProvingDevice`] into a worker.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::{
    engine::{gpu_accelerator, install, DevicePool, Engine, Installed},
    ProverError,
};

/// What kind of device proves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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

/// One device a worker can prove on.
#[derive(Debug, Clone)]
pub struct ProvingDevice {
    /// Stable id on this node: `cpu0`, `cpu1`, ... or `gpu{ordinal}`.
    pub id: String,
    /// CPU or GPU.
    pub kind: DeviceKind,
    /// Marketing name.
    pub name: String,
    /// The CUDA ordinal of a GPU.
    pub ordinal: Option<u32>,
    /// A GPU's NVML UUID (telemetry is read by it).
    pub uuid: Option<String>,
    /// Total memory: the GPU's, or the host's for the CPU.
    pub memory_total_bytes: Option<u64>,
    /// A GPU's pool, whose threads carry its engine; `None` for the CPU, which proves with
    /// the process-wide engine.
    pub pool: Option<Arc<DevicePool>>,
    /// The engine it proves with, in words.
    pub engine: String,
}

/// The devices of this process, as [`open`] set them up.
#[derive(Debug)]
pub struct Devices {
    /// GPUs first (by ordinal), then `cpu_workers` CPU devices.
    pub devices: Vec<ProvingDevice>,
    /// What the process-wide hook proves with (the CPU devices').
    pub process_engine: Installed,
    /// Why no GPU proves, when none does.
    pub no_gpu_reason: Option<String>,
}

/// Sets up proving for `engine`: one device per usable GPU (when `gpu_workers` and the
/// engine may use GPUs), each opened and self-checked, plus `cpu_workers` CPU devices on the
/// process-wide engine, which is installed here (the CPU engine when GPUs have their own).
/// `cuda` without a usable GPU, or no device at all, is an error saying why.
pub fn open(engine: Engine, gpu_workers: bool, cpu_workers: usize) -> Result<Devices, ProverError> {
    let inventory = proofmill_accel::DeviceInventory::probe();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut devices = Vec::new();
    let mut reasons = Vec::new();
    if gpu_workers && engine.may_use_gpus() {
        for gpu in &inventory.gpus {
            let ready = match &gpu.unusable_reason {
                Some(reason) => Err(ProverError::Engine(reason.clone())),
                None => gpu_accelerator(gpu.index as usize).and_then(|accelerator| {
                    DevicePool::new(&format!("gpu{}", gpu.index), accelerator, threads)
                }),
            };
            match ready {
                Ok(pool) => devices.push(ProvingDevice {
                    id: format!("gpu{}", gpu.index),
                    kind: DeviceKind::Gpu,
                    name: gpu.name.clone(),
                    ordinal: Some(gpu.index),
                    uuid: gpu.uuid.clone(),
                    memory_total_bytes: gpu.memory_total_bytes,
                    engine: pool.accelerator().backend().description(),
                    pool: Some(Arc::new(pool)),
                }),
                Err(e) => {
                    tracing::warn!(gpu = gpu.index, name = %gpu.name, reason = %e, "GPU not used");
                    reasons.push(format!("GPU {} ({}): {e}", gpu.index, gpu.name));
                }
            }
        }
    }
    let no_gpu_reason = devices.is_empty().then(|| {
        if !gpu_workers {
            "gpu_workers is off".to_owned()
        } else if !engine.may_use_gpus() {
            format!("engine {engine}")
        } else if reasons.is_empty() {
            inventory
                .no_gpu_reason
                .clone()
                .unwrap_or_else(|| "no usable GPU".into())
        } else {
            reasons.join("; ")
        }
    });
    if engine == Engine::Cuda && devices.is_empty() && gpu_workers {
        return Err(ProverError::Engine(format!(
            "engine cuda: {}",
            no_gpu_reason.as_deref().unwrap_or("no usable GPU")
        )));
    }
    // GPU devices carry their own engine; the process-wide one is what CPU devices use.
    let process = match engine {
        Engine::Auto | Engine::Cuda if gpu_workers => Engine::Cpu,
        other => other,
    };
    let process_engine = install(process)?;
    let (host_memory, _) = proofmill_accel::host::memory();
    let cpu_name = proofmill_accel::host::cpu_model().unwrap_or_else(|| "CPU".to_owned());
    for i in 0..cpu_workers {
        devices.push(ProvingDevice {
            id: format!("cpu{i}"),
            kind: DeviceKind::Cpu,
            name: cpu_name.clone(),
            ordinal: None,
            uuid: None,
            memory_total_bytes: host_memory,
            pool: None,
            engine: process_engine.description.clone(),
        });
    }
    if devices.is_empty() {
        return Err(ProverError::Engine(format!(
            "no proving device: cpu_workers is 0 and no GPU proves ({})",
            no_gpu_reason.as_deref().unwrap_or("none")
        )));
    }
    Ok(Devices {
        devices,
        process_engine,
        no_gpu_reason,
    })
}
