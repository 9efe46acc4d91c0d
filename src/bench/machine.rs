//! What the benchmark ran on: host name, CPU model and cores, memory, GPUs and driver, and
//! the versions of the software that did the work. Read from `/proc`, NVML (through the
//! device inventory) and the build; nothing here measures anything.

use std::collections::BTreeMap;

use proofmill_accel::DeviceInventory;
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
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        let (cores, _) = cpu_topology(&cpuinfo);
        Self {
            hostname: hostname(),
            os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
            cpu_model: cpu_model(&cpuinfo).unwrap_or_else(|| "unknown CPU".to_owned()),
            cpu_cores: cores.unwrap_or(threads).min(threads.max(1)).max(1),
            cpu_threads: threads,
            memory_bytes: mem_total(&meminfo),
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
            .map_or(String::new(), |b| format!(", {:.1} GiB RAM", gib(b)));
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

/// Bytes in GiB.
pub fn gib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1u32 << 30)
}

fn hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_owned())
        .find(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The CPU model named in `/proc/cpuinfo` (x86 `model name`, or ARM's `Hardware`/`CPU part`).
fn cpu_model(cpuinfo: &str) -> Option<String> {
    ["model name", "Hardware", "cpu model", "Processor"]
        .iter()
        .find_map(|key| field(cpuinfo, key))
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// (physical cores, logical CPUs) from `/proc/cpuinfo`, each when it can be told.
fn cpu_topology(cpuinfo: &str) -> (Option<usize>, Option<usize>) {
    let mut logical = 0;
    let mut cores = std::collections::BTreeSet::new();
    let mut physical_id = None;
    for block in cpuinfo.split("\n\n").filter(|b| b.contains("processor")) {
        logical += 1;
        physical_id = field(block, "physical id").or(physical_id);
        if let Some(core) = field(block, "core id") {
            cores.insert((physical_id.clone().unwrap_or_default(), core));
        }
    }
    let physical = (!cores.is_empty()).then_some(cores.len());
    (
        physical.or((logical > 0).then_some(logical)),
        (logical > 0).then_some(logical),
    )
}

/// `MemTotal` from `/proc/meminfo`, in bytes.
fn mem_total(meminfo: &str) -> Option<u64> {
    let kb = field(meminfo, "MemTotal")?;
    let kb: u64 = kb.split_whitespace().next()?.parse().ok()?;
    Some(kb * 1024)
}

/// The value of the first `key : value` line.
fn field(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        (k.trim() == key).then(|| v.trim().to_owned())
    })
}

/// The versions of what did the work: this binary, the compiler that built it, and the
/// proving and GPU crates as resolved in the workspace's `Cargo.lock` at build time.
pub fn versions() -> BTreeMap<String, String> {
    const LOCK: &str = include_str!("../../Cargo.lock");
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

    const CPUINFO: &str = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC  7B13 64-Core Processor\nphysical id\t: 0\ncore id\t\t: 0\n\nprocessor\t: 1\nmodel name\t: AMD EPYC  7B13 64-Core Processor\nphysical id\t: 0\ncore id\t\t: 0\n\nprocessor\t: 2\nmodel name\t: AMD EPYC  7B13 64-Core Processor\nphysical id\t: 0\ncore id\t\t: 1\n";

    #[test]
    fn cpuinfo_gives_model_cores_and_threads() {
        assert_eq!(
            cpu_model(CPUINFO).as_deref(),
            Some("AMD EPYC 7B13 64-Core Processor")
        );
        assert_eq!(cpu_topology(CPUINFO), (Some(2), Some(3)));
        assert_eq!(
            cpu_topology("processor : 0\nmodel name : X\n"),
            (Some(1), Some(1))
        );
        assert_eq!(cpu_topology(""), (None, None));
    }

    #[test]
    fn meminfo_total_in_bytes() {
        assert_eq!(
            mem_total("MemTotal:       24576000 kB\nMemFree: 1 kB\n"),
            Some(24_576_000 * 1024)
        );
        assert_eq!(mem_total("nothing"), None);
    }

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
