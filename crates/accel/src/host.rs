//! The host machine as Linux describes it: its name, CPU model and topology, memory, load and
//! temperature, read from `/proc` and `/sys`. One place for what the server's device list,
//! the cluster's node id and the bench's machine description all need; each reader returns
//! `None` (or a neutral value) where the file is missing, so nothing here fails.

/// Bytes in GiB, for messages and reports.
pub fn gib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1u32 << 30)
}

/// The host name (`/proc/sys/kernel/hostname`, `/etc/hostname`, then `$HOSTNAME`), when any
/// of them names one.
pub fn hostname() -> Option<String> {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .chain(std::env::var("HOSTNAME").ok())
        .map(|s| s.trim().to_owned())
        .find(|s| !s.is_empty())
}

/// The CPU model named in `/proc/cpuinfo`.
pub fn cpu_model() -> Option<String> {
    cpu_model_in(&std::fs::read_to_string("/proc/cpuinfo").ok()?)
}

/// The CPU model in a `/proc/cpuinfo` text (x86 `model name`, or ARM's `Hardware`/`CPU part`).
pub fn cpu_model_in(cpuinfo: &str) -> Option<String> {
    ["model name", "Hardware", "cpu model", "Processor"]
        .iter()
        .find_map(|key| field(cpuinfo, key))
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// (physical cores, logical CPUs) of this host, each when `/proc/cpuinfo` tells it.
pub fn cpu_topology() -> (Option<usize>, Option<usize>) {
    cpu_topology_in(&std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default())
}

/// (physical cores, logical CPUs) in a `/proc/cpuinfo` text, each when it can be told.
pub fn cpu_topology_in(cpuinfo: &str) -> (Option<usize>, Option<usize>) {
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

/// Host memory this process may use: (total, available) in bytes, from `/proc/meminfo`
/// (`MemTotal`, `MemAvailable`) bounded by this process's memory cgroup (a container's or a
/// systemd unit's limit, v2 `memory.max` / v1 `memory.limit_in_bytes`, less what the cgroup
/// uses for available), since a container sees the whole machine in `/proc/meminfo`.
pub fn memory() -> (Option<u64>, Option<u64>) {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let (total, available) = (
        meminfo_bytes(&text, "MemTotal"),
        meminfo_bytes(&text, "MemAvailable"),
    );
    match cgroup_memory() {
        Some((limit, used)) => (
            Some(total.map_or(limit, |t| t.min(limit))),
            Some(available.map_or(limit.saturating_sub(used), |a| {
                a.min(limit.saturating_sub(used))
            })),
        ),
        None => (total, available),
    }
}

/// Above this a cgroup's memory limit means "none" (v1 writes `PAGE_COUNTER_MAX` pages).
const NO_CGROUP_LIMIT: u64 = 1 << 60;

/// This process's memory cgroup: (limit, usage) in bytes, when it has a limit.
fn cgroup_memory() -> Option<(u64, u64)> {
    let membership = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let read = |path: String| std::fs::read_to_string(path).ok();
    // v2 ("0::/path"): memory.max and memory.current.
    if let Some(path) = cgroup_path(&membership, "") {
        for dir in [format!("/sys/fs/cgroup{path}"), "/sys/fs/cgroup".to_owned()] {
            if let Some(limit) = read(format!("{dir}/memory.max")).and_then(|t| cgroup_limit(&t)) {
                let used = read(format!("{dir}/memory.current"))
                    .and_then(|t| t.trim().parse().ok())
                    .unwrap_or(0);
                return Some((limit, used));
            }
        }
    }
    // v1 ("N:memory:/path"): memory.limit_in_bytes and memory.usage_in_bytes.
    let path = cgroup_path(&membership, "memory")?;
    for dir in [
        format!("/sys/fs/cgroup/memory{path}"),
        "/sys/fs/cgroup/memory".to_owned(),
    ] {
        if let Some(limit) =
            read(format!("{dir}/memory.limit_in_bytes")).and_then(|t| cgroup_limit(&t))
        {
            let used = read(format!("{dir}/memory.usage_in_bytes"))
                .and_then(|t| t.trim().parse().ok())
                .unwrap_or(0);
            return Some((limit, used));
        }
    }
    None
}

/// The cgroup path of `controller` in `/proc/self/cgroup` (`""` for the v2 hierarchy).
fn cgroup_path(membership: &str, controller: &str) -> Option<String> {
    membership.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let matches = if controller.is_empty() {
            controllers.is_empty()
        } else {
            controllers.split(',').any(|c| c == controller)
        };
        matches.then(|| path.trim_end_matches('/').to_owned())
    })
}

/// A cgroup memory limit file's value in bytes; `None` for no limit (`max`, or v1's huge
/// number).
fn cgroup_limit(text: &str) -> Option<u64> {
    let limit: u64 = text.trim().parse().ok()?;
    (limit < NO_CGROUP_LIMIT).then_some(limit)
}

/// One `/proc/meminfo` field (`MemTotal`, ...) in bytes.
pub fn meminfo_bytes(meminfo: &str, key: &str) -> Option<u64> {
    let kb = field(meminfo, key)?;
    let kb: u64 = kb.split_whitespace().next()?.parse().ok()?;
    Some(kb * 1024)
}

/// The 1-minute load average.
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The first thermal zone's temperature in degrees Celsius (the CPU package on most hosts).
pub fn cpu_temperature() -> Option<f64> {
    let text = std::fs::read_to_string("/sys/class/thermal/thermal_zone0/temp").ok()?;
    text.trim().parse::<f64>().ok().map(|milli| milli / 1000.0)
}

/// The value of the first `key : value` line.
fn field(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        (k.trim() == key).then(|| v.trim().to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CPUINFO: &str = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC  7B13 64-Core Processor\nphysical id\t: 0\ncore id\t\t: 0\n\nprocessor\t: 1\nmodel name\t: AMD EPYC  7B13 64-Core Processor\nphysical id\t: 0\ncore id\t\t: 0\n\nprocessor\t: 2\nmodel name\t: AMD EPYC  7B13 64-Core Processor\nphysical id\t: 0\ncore id\t\t: 1\n";

    #[test]
    fn cpuinfo_gives_model_cores_and_threads() {
        assert_eq!(
            cpu_model_in(CPUINFO).as_deref(),
            Some("AMD EPYC 7B13 64-Core Processor")
        );
        assert_eq!(cpu_topology_in(CPUINFO), (Some(2), Some(3)));
        assert_eq!(
            cpu_topology_in("processor : 0\nmodel name : X\n"),
            (Some(1), Some(1))
        );
        assert_eq!(cpu_topology_in(""), (None, None));
    }

    #[test]
    fn meminfo_fields_in_bytes() {
        let text = "MemTotal:       24576000 kB\nMemFree: 1 kB\nMemAvailable: 2 kB\n";
        assert_eq!(meminfo_bytes(text, "MemTotal"), Some(24_576_000 * 1024));
        assert_eq!(meminfo_bytes(text, "MemAvailable"), Some(2048));
        assert_eq!(meminfo_bytes("nothing", "MemTotal"), None);
    }

    #[test]
    fn cgroup_limits_and_paths() {
        assert_eq!(cgroup_limit("max\n"), None);
        assert_eq!(cgroup_limit("9223372036854771712\n"), None);
        assert_eq!(cgroup_limit("17179869184\n"), Some(16 << 30));
        let v1 = "9:name=systemd:/\n4:memory:/process_api/abc\n3:cpu,cpuacct:/x\n0::/\n";
        assert_eq!(
            cgroup_path(v1, "memory").as_deref(),
            Some("/process_api/abc")
        );
        assert_eq!(cgroup_path(v1, "cpuacct").as_deref(), Some("/x"));
        assert_eq!(cgroup_path(v1, "").as_deref(), Some(""));
        assert_eq!(
            cgroup_path("0::/kubepods/pod1/\n", "").as_deref(),
            Some("/kubepods/pod1")
        );
        assert_eq!(cgroup_path("0::/\n", "memory"), None);
        // Whatever this machine has, the bounded figures never exceed /proc/meminfo's.
        let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let (total, available) = memory();
        if let (Some(t), Some(m)) = (total, meminfo_bytes(&text, "MemTotal")) {
            assert!(
                t <= m && available.is_some_and(|a| a <= t),
                "{total:?} {available:?}"
            );
        }
    }
}
