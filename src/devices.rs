//! `proofmill devices`: the GPUs, the CPU fallback and the SRS files of this machine.

use std::process::ExitCode;

use anyhow::Result;
use proofmill_prover::Prover;

/// `proofmill devices`.
pub fn devices(prover: &Prover, json: bool) -> Result<ExitCode> {
    let inventory = proofmill_accel::DeviceInventory::probe();
    let gpus: Vec<serde_json::Value> = inventory
        .gpus
        .iter()
        .map(|g| {
            serde_json::json!({
                "index": g.index,
                "name": g.name,
                "uuid": g.uuid,
                "memory_total_bytes": g.memory_total_bytes,
                "memory_free_bytes": g.memory_free_bytes,
                "compute_capability": g.compute_capability.map(|(a, b)| format!("{a}.{b}")),
                "utilization_percent": g.utilization_percent,
                "temperature_c": g.temperature_c,
                "power_watts": g.power_watts,
                "usable": g.usable(),
                "unusable_reason": g.unusable_reason,
            })
        })
        .collect();
    let srs: Vec<serde_json::Value> = prover
        .srs_store()
        .list()
        .into_iter()
        .map(|(k, path, status)| {
            serde_json::json!({ "k": k, "path": path, "insecure": status.as_ref().ok().copied(), "error": status.err() })
        })
        .collect();
    if json {
        let report = serde_json::json!({
            "driver_version": inventory.driver_version,
            "nvrtc_version": inventory.nvrtc_version.map(|(a, b)| format!("{a}.{b}")),
            "gpus": gpus,
            "no_gpu_reason": inventory.no_gpu_reason,
            "cpu": { "threads": inventory.cpu_threads, "usable": true },
            "srs": srs,
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "driver: {}",
        inventory.driver_version.as_deref().unwrap_or("none")
    );
    if inventory.gpus.is_empty() {
        println!(
            "GPUs: none ({})",
            inventory.no_gpu_reason.as_deref().unwrap_or("none found")
        );
    }
    for g in &inventory.gpus {
        let memory = g.memory_total_bytes.map_or("?".to_owned(), |b| {
            format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64)
        });
        let status = g
            .unusable_reason
            .as_deref()
            .map_or("usable".to_owned(), |r| format!("NOT usable: {r}"));
        println!("GPU {}: {} ({memory}) {status}", g.index, g.name);
    }
    println!("CPU fallback: {} threads, usable", inventory.cpu_threads);
    if srs.is_empty() {
        println!(
            "SRS: none yet in {} (an insecure development SRS is generated on first use)",
            prover.srs_store().dir().display()
        );
    }
    for (k, path, status) in prover.srs_store().list() {
        match status {
            Ok(true) => println!("SRS k={k}: {} — INSECURE DEVELOPMENT SRS: its tau is public, proofs made with it can be forged", path.display()),
            Ok(false) => println!("SRS k={k}: {}", path.display()),
            Err(e) => println!("SRS k={k}: {} — unusable: {e}", path.display()),
        }
    }
    Ok(ExitCode::SUCCESS)
}
