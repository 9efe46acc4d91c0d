//! The catalog commands: `circuits` and `example-batch`.

use std::{path::Path, process::ExitCode};

use anyhow::{bail, Result};
use proofmill_prover::Prover;

use crate::{output::write_output, proving::lookup};

/// `proofmill example-batch`.
pub fn example_batch(
    circuit: &str,
    seed: u64,
    out: Option<&Path>,
    count: usize,
) -> Result<ExitCode> {
    let circuit = lookup(circuit)?;
    if count == 1 {
        let text = serde_json::to_string_pretty(&circuit.example_input(seed))?;
        write_output(out, &text)?;
        return Ok(ExitCode::SUCCESS);
    }
    let Some(out) = out else {
        bail!("--count {count} writes one file per batch: give --out, e.g. --out b.json for b-1.json … b-{count}.json");
    };
    let stem = out.file_stem().unwrap_or_default().to_string_lossy();
    let extension = out
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    for (i, input) in circuit.example_inputs(seed, count).iter().enumerate() {
        let path = out.with_file_name(format!("{stem}-{}{extension}", i + 1));
        write_output(Some(&path), &serde_json::to_string_pretty(input)?)?;
        println!("{}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// `proofmill circuits`: the catalog, with the keys this appliance has made (read from their
/// metadata: listing never loads an SRS, let alone makes a key).
pub fn circuits(prover: &Prover, json: bool, no_keys: bool) -> Result<ExitCode> {
    let mut rows = Vec::new();
    for circuit in proofmill_circuits::catalog() {
        let shape = circuit.shape();
        let cached = if no_keys {
            Vec::new()
        } else {
            prover.key_store().cached(&circuit.name())
        };
        // One SRS per k is the rule; several are listed when a data directory has them.
        let vk_hash = (cached.len() == 1).then(|| cached[0].vk_hash.clone());
        rows.push(serde_json::json!({
            "keys": cached,
            "name": circuit.name(),
            "description": circuit.description(),
            "k": shape.k,
            "advice_columns": shape.advice_columns,
            "lookup_columns": shape.lookup_columns,
            "advice_cells": shape.advice_cells,
            "public_inputs": circuit.instance_names(),
            "vk_hash": vk_hash,
        }));
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        println!(
            "{:<26} {:>3} {:>7} {:>11}  VK HASH",
            "CIRCUIT", "K", "COLUMNS", "CELLS"
        );
        for r in &rows {
            println!(
                "{:<26} {:>3} {:>7} {:>11}  {}",
                r["name"].as_str().unwrap_or_default(),
                r["k"],
                r["advice_columns"],
                r["advice_cells"],
                match (r["vk_hash"].as_str(), r["keys"].as_array().map(Vec::len)) {
                    (Some(hash), _) => hash.to_owned(),
                    (None, Some(n)) if n > 1 =>
                        format!("({n} keys, under different SRS files: see --json)"),
                    _ if no_keys => "(not looked up: --no-keys)".to_owned(),
                    _ => format!(
                        "(not made yet: `proofmill keygen --circuit {}`, or the first proof)",
                        r["name"].as_str().unwrap_or_default()
                    ),
                }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
