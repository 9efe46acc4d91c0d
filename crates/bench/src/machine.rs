//! What the benchmark ran on: host name, CPU model and cores, memory, GPUs and driver, and
//! the versions of the software that did the work. Read from `/proc`, NVML (through the
//! device inventory) and the build; nothing here measures anything.

use std::collections::BTreeMap;

use proofmill_accel::{host, DeviceInventory};
use serde::{Deserialize, Serialize};

/// The machine a report was made on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// Host name.
    pub hostname: String,
    /// Operating system and architecture, e.g. `linux x86_64`.
    pub os: String,
    /// CPU model from `/proc/cpuinfo`.
    pub cpu_model: String,
    /// Physical cores (logical CPUs when the topology is not known).
    pub cpu_cores: usize,
    /// Logical CPUs (hardware threads) this process may use.
    pub cpu_threads: usize,
    /// Total memory in bytes, when known.
    pub memory_bytes: Option<u64>,
    /// NVIDIA driver version, when a driver is present.
    pub gpu_driver: Option<String>,
    /// NVRTC version, when loadable.
    pub nvrtc: Option<String>,
    /// The GPUs found, usable or not.
    pub gpus: Vec<Gpu>,
    /// Why there is no usable GPU, when that is the case.
    pub no_gpu_reason: Option<String>,
}

/// One GPU of the machine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Gpu {
    /// CUDA ordinal.
    pub index: u32,
    /// Marketing name.
    pub name: String,
    /// Total memory in bytes.
    pub memory_bytes: Option<u64>,
    /// Compute capability, e.g. `9.0`.
    pub compute_capability: Option<String>,
    /// Whether our CUDA backend can use it, and if not, why.
    pub unusable_reason: Option<String>,
}

impl Machine {
    /// Describes this machine, with the GPUs from `inventory`.
    pub fn probe(inventory: &DeviceInventory) -> Self {
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        let (cores, _) = host::cpu_topology();
        Self {
            hostname: host::hostname().unwrap_or_else(|| "unknown".to_owned()),
            os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
            cpu_model: host::cpu_model().unwrap_or_else(|| "unknown CPU".to_owned()),
            cpu_cores: cores.unwrap_or(threads).min(threads.max(1)).max(1),
            cpu_threads: threads,
            memory_bytes: host::memory().0,
            gpu_driver: inventory.driver_version.clone(),
            nvrtc: inventory.nvrtc_version.map(|(a, b)| format!("{a}.{b}")),
            gpus: inventory
                .gpus
                .iter()
                .map(|g| Gpu {
                    index: g.index,
                    name: g.name.clone(),
                    memory_bytes: g.memory_total_bytes,
                    compute_capability: g.compute_capability.map(|(a, b)| format!("{a}.{b}")),
                    unusable_reason: g.unusable_reason.clone(),
                })
                .collect(),
            no_gpu_reason: inventory.cuda_unavailable_reason(),
        }
    }

    /// One line: `host: CPU (N cores, M threads), X GiB RAM; GPUs`.
    pub fn one_line(&self) -> String {
        let memory = self
            .memory_bytes
            .map_or(String::new(), |b| format!(", {:.1} GiB RAM", host::gib(b)));
        let gpus = if self.gpus.is_empty() {
            format!(
                "no GPU ({})",
                self.no_gpu_reason.as_deref().unwrap_or("none found")
            )
        } else {
            self.gpus
                .iter()
                .map(|g| match &g.unusable_reason {
                    None => g.name.clone(),
                    Some(r) => format!("{} (not usable: {r})", g.name),
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!(
            "{}: {} ({} cores, {} threads){memory}; {gpus}",
            self.hostname, self.cpu_model, self.cpu_cores, self.cpu_threads
        )
    }
}

/// The versions of what did the work: this binary, the compiler that built it, and the
/// proving and GPU crates as resolved in the workspace's `Cargo.lock` at build time.
pub fn versions() -> BTreeMap<String, String> {
    const LOCK: &str = include_str!("../../../Cargo.lock");
    let mut v = BTreeMap::new();
    v.insert("proofmill".to_owned(), env!("CARGO_PKG_VERSION").to_owned());
    v.insert(
        "rustc".to_owned(),
        env!("PROOFMILL_RUSTC_VERSION")
            .trim_start_matches("rustc ")
            .to_owned(),
    );
    for name in [
        "halo2-axiom",
        "halo2-base",
        "halo2curves-axiom",
        "snark-verifier-sdk",
        "cudarc",
        "nvml-wrapper",
    ] {
        if let Some(version) = lock_version(LOCK, name) {
            v.insert(name.to_owned(), version);
        }
    }
    v
}

/// The version of package `name` in a `Cargo.lock` (the first, when several are locked).
fn lock_version(lock: &str, name: &str) -> Option<String> {
    let wanted = format!("name = \"{name}\"");
    lock.split("[[package]]").find_map(|block| {
        let mut lines = block.lines().map(str::trim);
        lines.find(|l| *l == wanted)?;
        let version = lines.find(|l| l.starts_with("version = "))?;
        Some(
            version
                .trim_start_matches("version = ")
                .trim_matches('"')
                .to_owned(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_come_from_the_lock_file() {
        let lock = "[[package]]\nname = \"halo2-axiom\"\nversion = \"0.5.3\"\nsource = \"x\"\n\n[[package]]\nname = \"halo2-base\"\nversion = \"0.5.5\"\n";
        assert_eq!(lock_version(lock, "halo2-axiom").as_deref(), Some("0.5.3"));
        assert_eq!(lock_version(lock, "halo2-base").as_deref(), Some("0.5.5"));
        assert_eq!(lock_version(lock, "halo2"), None);
        let v = versions();
        assert!(
            v.contains_key("halo2-axiom") && v.contains_key("rustc"),
            "{v:?}"
        );
    }
}
