//! The catalog commands: `circuits` and `example-batch`.

use std::{path::Path, process::ExitCode};

use anyhow::{bail, Result};
use proofmill_prover::Prover;

use crate::{
    output::{write_output, Spinner},
    proving::lookup,
};

/// `proofmill example-batch`.
pub fn example_batch(circuit: &str, seed: u64, out: Option<&Path>, count: usize) -> Result<ExitCode> {
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

/// `proofmill circuits`.
pub fn circuits(prover: &Prover, json: bool, no_keys: bool) -> Result<ExitCode> {
    let mut rows = Vec::new();
    for circuit in proofmill_circuits::catalog() {
        let shape = circuit.shape();
        let vk_hash = if no_keys {
            None
        } else {
            let spinner = Spinner::new(&circuit.name());
            let keys = prover.keys(&circuit, &|s| spinner.stage(s))?;
            spinner.clear();
            Some(keys.vk_hash.clone())
        };
        rows.push(serde_json::json!({
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
                r["vk_hash"]
                    .as_str()
                    .unwrap_or("(not generated: run without --no-keys)")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

