//! Device inventory and backend selection: which GPUs exist (NVML), whether each is usable
//! by our CUDA backend (libcuda, a context, NVRTC) or why not, and the CPU fallback.
//!
//! Nothing here panics on a machine without GPUs, drivers or CUDA libraries: every missing
//! piece becomes a reason string. It reports and chooses; it does not run kernels.

use std::fmt;
use std::str::FromStr;

use crate::cuda::{self, CudaBackend};
use crate::{AccelError, Backend, BackendKind, CpuBackend};

/// One GPU as NVML and the CUDA driver see it.
#[derive(Clone, Debug, PartialEq)]
pub struct GpuInfo {
    /// Index (CUDA ordinal when known from the driver, else NVML index).
    pub index: u32,
    /// Marketing name, e.g. `NVIDIA H100 80GB HBM3`.
    pub name: String,
    /// NVML UUID (`GPU-…`), when known.
    pub uuid: Option<String>,
    /// Total memory in bytes.
    pub memory_total_bytes: Option<u64>,
    /// Free memory in bytes at probe time.
    pub memory_free_bytes: Option<u64>,
    /// Compute capability (major, minor).
    pub compute_capability: Option<(i32, i32)>,
    /// GPU utilisation in percent at probe time.
    pub utilization_percent: Option<u32>,
    /// Core temperature in degrees Celsius.
    pub temperature_c: Option<u32>,
    /// Power draw in watts.
    pub power_watts: Option<f64>,
    /// `None` when our CUDA backend can use it, else why not.
    pub unusable_reason: Option<String>,
}

impl GpuInfo {
    /// True when the CUDA backend can run on this GPU.
    pub fn usable(&self) -> bool {
        self.unusable_reason.is_none()
    }
}

/// What the machine offers: GPUs (possibly none, with the reason) and the CPU fallback.
#[derive(Clone, Debug, PartialEq)]
pub struct DeviceInventory {
    /// NVIDIA driver version (from NVML), e.g. `580.65.06`.
    pub driver_version: Option<String>,
    /// NVRTC version (major, minor) when loadable.
    pub nvrtc_version: Option<(i32, i32)>,
    /// The GPUs found.
    pub gpus: Vec<GpuInfo>,
    /// Why no GPU could be listed (no NVML, no driver, no libcuda), when that is the case.
    pub no_gpu_reason: Option<String>,
    /// Rayon threads the CPU backend uses.
    pub cpu_threads: usize,
}

/// Live NVML readings of one GPU (each `None` where NVML does not report it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GpuTelemetry {
    /// Total memory, bytes.
    pub memory_total_bytes: Option<u64>,
    /// Free memory, bytes.
    pub memory_free_bytes: Option<u64>,
    /// GPU utilization over NVML's last sample period, percent.
    pub utilization_percent: Option<u32>,
    /// Degrees Celsius.
    pub temperature_c: Option<u32>,
    /// Board power, watts.
    pub power_watts: Option<f64>,
}

/// NVML, initialised once for [`gpu_telemetry`] (`None` when it cannot be loaded).
fn shared_nvml() -> Option<&'static nvml_wrapper::Nvml> {
    static NVML: std::sync::OnceLock<Option<nvml_wrapper::Nvml>> = std::sync::OnceLock::new();
    NVML.get_or_init(|| nvml_wrapper::Nvml::init().ok())
        .as_ref()
}

/// Live readings of the GPU with NVML `uuid` (else NVML index `index`); `None` without NVML
/// or without that GPU. Cheap enough for every `GET /v1/devices`: NVML is opened once.
pub fn gpu_telemetry(uuid: Option<&str>, index: u32) -> Option<GpuTelemetry> {
    let nvml = shared_nvml()?;
    let dev = match uuid {
        Some(uuid) => nvml.device_by_uuid(uuid).ok()?,
        None => nvml.device_by_index(index).ok()?,
    };
    let mem = dev.memory_info().ok();
    Some(GpuTelemetry {
        memory_total_bytes: mem.as_ref().map(|m| m.total),
        memory_free_bytes: mem.as_ref().map(|m| m.free),
        utilization_percent: dev.utilization_rates().ok().map(|u| u.gpu),
        temperature_c: dev
            .temperature(nvml_wrapper::enum_wrappers::device::TemperatureSensor::Gpu)
            .ok(),
        power_watts: dev.power_usage().ok().map(|mw| f64::from(mw) / 1000.0),
    })
}

/// Smallest compute capability our kernels target (sm_70: Volta).
const MIN_COMPUTE_CAPABILITY: (i32, i32) = (7, 0);

impl DeviceInventory {
    /// Probes NVML and the CUDA driver. Never panics; never compiles kernels.
    pub fn probe() -> Self {
        let nvrtc = cuda::nvrtc_available();
        let mut inv = DeviceInventory {
            driver_version: None,
            nvrtc_version: cuda::nvrtc_version(),
            gpus: Vec::new(),
            no_gpu_reason: None,
            cpu_threads: rayon::current_num_threads(),
        };
        let mut nvml_reason = None;
        match nvml_wrapper::Nvml::init() {
            Ok(nvml) => {
                inv.driver_version = nvml.sys_driver_version().ok();
                let count = nvml.device_count().unwrap_or(0);
                for i in 0..count {
                    let Ok(dev) = nvml.device_by_index(i) else {
                        continue;
                    };
                    let mem = dev.memory_info().ok();
                    inv.gpus.push(GpuInfo {
                        index: i,
                        name: dev.name().unwrap_or_else(|_| "unknown NVIDIA GPU".into()),
                        uuid: dev.uuid().ok(),
                        memory_total_bytes: mem.as_ref().map(|m| m.total),
                        memory_free_bytes: mem.as_ref().map(|m| m.free),
                        compute_capability: dev
                            .cuda_compute_capability()
                            .ok()
                            .map(|c| (c.major, c.minor)),
                        utilization_percent: dev.utilization_rates().ok().map(|u| u.gpu),
                        temperature_c: dev
                            .temperature(
                                nvml_wrapper::enum_wrappers::device::TemperatureSensor::Gpu,
                            )
                            .ok(),
                        power_watts: dev.power_usage().ok().map(|mw| f64::from(mw) / 1000.0),
                        unusable_reason: None,
                    });
                }
            }
            Err(e) => nvml_reason = Some(format!("NVML unavailable ({e})")),
        }
        // The CUDA driver view decides usability (and lists GPUs when NVML could not).
        let driver_reason = if !cuda::driver_library_present() {
            Some("libcuda not found (no NVIDIA driver installed)".to_string())
        } else {
            match cudarc::driver::CudaContext::device_count() {
                Ok(0) => Some("the CUDA driver reports no GPU".to_string()),
                Ok(count) => {
                    // NVML lists every GPU of the machine; CUDA only those it may use
                    // (CUDA_VISIBLE_DEVICES). An NVML GPU that no CUDA ordinal matches must
                    // not become a worker under its NVML index.
                    let nvml_count = inv.gpus.len();
                    let mut seen_by_cuda = vec![false; nvml_count];
                    for ordinal in 0..count as usize {
                        let probe = probe_ordinal(ordinal, nvrtc.as_ref().err());
                        let by_uuid = inv
                            .gpus
                            .iter()
                            .position(|g| g.uuid.is_some() && g.uuid == probe.uuid);
                        match by_uuid {
                            Some(i) => {
                                inv.gpus[i].index = ordinal as u32;
                                inv.gpus[i].unusable_reason = probe.reason;
                                if let Some(seen) = seen_by_cuda.get_mut(i) {
                                    *seen = true;
                                }
                            }
                            None if inv.gpus.len() <= ordinal || nvml_reason.is_some() => {
                                inv.gpus.push(GpuInfo {
                                    index: ordinal as u32,
                                    name: probe.name.unwrap_or_else(|| "unknown NVIDIA GPU".into()),
                                    uuid: probe.uuid,
                                    memory_total_bytes: probe.memory_total,
                                    memory_free_bytes: None,
                                    compute_capability: probe.cc,
                                    utilization_percent: None,
                                    temperature_c: None,
                                    power_watts: None,
                                    unusable_reason: probe.reason,
                                });
                            }
                            None => {
                                if let Some(g) = inv.gpus.get_mut(ordinal) {
                                    g.unusable_reason = probe.reason;
                                }
                                if let Some(seen) = seen_by_cuda.get_mut(ordinal) {
                                    *seen = true;
                                }
                            }
                        }
                    }
                    for (g, seen) in inv.gpus.iter_mut().zip(seen_by_cuda) {
                        if !seen {
                            g.unusable_reason.get_or_insert_with(|| {
                                "not visible to CUDA (hidden by CUDA_VISIBLE_DEVICES?)".to_string()
                            });
                        }
                    }
                    None
                }
                Err(e) => Some(format!("CUDA driver error: {e:?}")),
            }
        };
        if let Some(reason) = &driver_reason {
            for g in &mut inv.gpus {
                g.unusable_reason.get_or_insert_with(|| reason.clone());
            }
        }
        if inv.gpus.is_empty() {
            inv.no_gpu_reason = Some(match (nvml_reason, driver_reason) {
                (Some(a), Some(b)) => format!("{a}; {b}"),
                (Some(a), None) => a,
                (None, Some(b)) => b,
                (None, None) => "no NVIDIA GPU found".to_string(),
            });
        }
        inv
    }

    /// The first usable GPU's index.
    pub fn first_usable_gpu(&self) -> Option<u32> {
        self.gpus.iter().find(|g| g.usable()).map(|g| g.index)
    }

    /// Why the CUDA backend cannot be used, or `None` when some GPU is usable.
    pub fn cuda_unavailable_reason(&self) -> Option<String> {
        if self.first_usable_gpu().is_some() {
            return None;
        }
        if let Some(r) = &self.no_gpu_reason {
            return Some(r.clone());
        }
        Some(
            self.gpus
                .iter()
                .map(|g| {
                    format!(
                        "GPU {} ({}): {}",
                        g.index,
                        g.name,
                        g.unusable_reason.as_deref().unwrap_or("?")
                    )
                })
                .collect::<Vec<_>>()
                .join("; "),
        )
    }
}

struct OrdinalProbe {
    name: Option<String>,
    uuid: Option<String>,
    memory_total: Option<u64>,
    cc: Option<(i32, i32)>,
    reason: Option<String>,
}

fn format_uuid(bytes: &[std::ffi::c_char; 16]) -> String {
    let b: Vec<u8> = bytes.iter().map(|&c| c as u8).collect();
    let hex =
        |r: std::ops::Range<usize>| b[r].iter().map(|x| format!("{x:02x}")).collect::<String>();
    format!(
        "GPU-{}-{}-{}-{}-{}",
        hex(0..4),
        hex(4..6),
        hex(6..8),
        hex(8..10),
        hex(10..16)
    )
}

fn probe_ordinal(ordinal: usize, nvrtc_err: Option<&String>) -> OrdinalProbe {
    let mut p = OrdinalProbe {
        name: None,
        uuid: None,
        memory_total: None,
        cc: None,
        reason: None,
    };
    match cuda::open_context(ordinal) {
        Ok(ctx) => {
            p.name = ctx.name().ok();
            p.uuid = ctx.uuid().ok().map(|u| format_uuid(&u.bytes));
            p.memory_total = ctx.total_mem().ok().map(|m| m as u64);
            p.cc = ctx.compute_capability().ok();
            p.reason = match p.cc {
                Some(cc) if cc < MIN_COMPUTE_CAPABILITY => Some(format!(
                    "compute capability {}.{} is below the supported {}.{}",
                    cc.0, cc.1, MIN_COMPUTE_CAPABILITY.0, MIN_COMPUTE_CAPABILITY.1
                )),
                None => Some("compute capability unknown".into()),
                Some(_) => nvrtc_err.cloned(),
            };
        }
        Err(e) => p.reason = Some(e.to_string()),
    }
    p
}

impl fmt::Display for DeviceInventory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.driver_version {
            Some(v) => writeln!(f, "NVIDIA driver {v}")?,
            None => writeln!(f, "NVIDIA driver: none")?,
        }
        if let Some(r) = &self.no_gpu_reason {
            writeln!(f, "GPUs: none ({r})")?;
        }
        for g in &self.gpus {
            let mem = g.memory_total_bytes.map_or("? GiB".to_string(), |m| {
                format!("{:.1} GiB", m as f64 / (1u64 << 30) as f64)
            });
            let cc = g
                .compute_capability
                .map_or("?".into(), |(a, b)| format!("sm_{a}{b}"));
            match &g.unusable_reason {
                None => writeln!(f, "GPU {}: {} ({mem}, {cc}) usable", g.index, g.name)?,
                Some(r) => writeln!(
                    f,
                    "GPU {}: {} ({mem}, {cc}) not usable: {r}",
                    g.index, g.name
                )?,
            }
        }
        write!(f, "CPU fallback: {} threads", self.cpu_threads)
    }
}

/// Which compute path proving takes: the one type behind `--backend`, `PROOFMILL_BACKEND`
/// and the server's engine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Engine {
    /// The first usable GPU, else our CPU engine (with the reason recorded).
    #[default]
    Auto,
    /// Our CPU engine (Pippenger MSM, radix NTT).
    Cpu,
    /// A GPU, or an error saying why none can be used.
    Cuda,
    /// No engine: halo2-axiom's own code, untouched (the reference).
    Stock,
}

impl Engine {
    /// Every engine, in the order `--help` lists them.
    pub const ALL: [Engine; 4] = [Engine::Auto, Engine::Cpu, Engine::Cuda, Engine::Stock];

    /// The name `--backend` takes.
    pub const fn name(self) -> &'static str {
        match self {
            Engine::Auto => "auto",
            Engine::Cpu => "cpu",
            Engine::Cuda => "cuda",
            Engine::Stock => "stock",
        }
    }

    /// True when the engine may prove on GPUs (`auto` and `cuda`).
    pub fn may_use_gpus(self) -> bool {
        matches!(self, Engine::Auto | Engine::Cuda)
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Error parsing an [`Engine`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown backend {0:?}: expected auto, cpu, cuda or stock")]
pub struct UnknownEngine(pub String);

impl FromStr for Engine {
    type Err = UnknownEngine;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "gpu" => Ok(Engine::Cuda),
            lower => Engine::ALL
                .into_iter()
                .find(|e| e.name() == lower)
                .ok_or_else(|| UnknownEngine(s.to_string())),
        }
    }
}

/// A chosen backend and, for `Auto` on the CPU, why no GPU was taken.
#[derive(Debug)]
pub struct Selected {
    /// The backend to run on.
    pub backend: Box<dyn Backend>,
    /// Set when `Auto` fell back to the CPU.
    pub fallback_reason: Option<String>,
}

/// Picks the backend of `engine`; `None` for [`Engine::Stock`], which has none. `Cuda` fails
/// with [`AccelError::Unavailable`] and the reason when no GPU can be used; `Auto` then falls
/// back to the CPU and records the reason.
pub fn select(engine: Engine) -> Result<Option<Selected>, AccelError> {
    let selected = match engine {
        Engine::Stock => return Ok(None),
        Engine::Cpu => Selected {
            backend: Box::new(CpuBackend::new()),
            fallback_reason: None,
        },
        Engine::Cuda => Selected {
            backend: Box::new(open_first_gpu()?),
            fallback_reason: None,
        },
        Engine::Auto => match open_first_gpu() {
            Ok(b) => Selected {
                backend: Box::new(b),
                fallback_reason: None,
            },
            Err(e) => Selected {
                backend: Box::new(CpuBackend::new()),
                fallback_reason: Some(e.to_string()),
            },
        },
    };
    Ok(Some(selected))
}

fn open_first_gpu() -> Result<CudaBackend, AccelError> {
    let inv = DeviceInventory::probe();
    match inv.first_usable_gpu() {
        Some(i) => CudaBackend::new(i as usize),
        None => Err(AccelError::Unavailable {
            backend: BackendKind::Cuda,
            reason: inv
                .cuda_unavailable_reason()
                .unwrap_or_else(|| "no usable GPU".into()),
        }),
    }
}
