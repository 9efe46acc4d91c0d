//! The catalog commands: `circuits` and `example-batch`.

use std::{path::Path, process::ExitCode};

use anyhow::{bail, Result};
use proofmill_circuits::rollup::{RollupConfig, RollupState};
use proofmill_prover::{memory::MemoryNeed, Prover};

use crate::{output::write_output, proving::lookup};

/// `example-batch` flags of the bridged-chain circuits (`rollup/…`).
#[derive(clap::Args, Debug, Clone)]
pub struct ChainOptions {
    /// rollup circuits: the chain the batches are for (0 to 255).
    #[arg(long, value_parser = clap::value_parser!(u64).range(0..256))]
    pub chain_id: Option<u64>,
    /// rollup circuits: fill the exit slots (exits to chain id + 1).
    #[arg(long)]
    pub exits: bool,
    /// rollup circuits: fill the claim slots (claims of exits chain id + 1 made to this
    /// chain, against the global exit root over both chains).
    #[arg(long)]
    pub claims: bool,
}

/// `proofmill example-batch`.
pub fn example_batch(
    circuit: &str,
    seed: u64,
    out: Option<&Path>,
    count: usize,
    chain: &ChainOptions,
) -> Result<ExitCode> {
    let circuit = lookup(circuit)?;
    let inputs = match circuit.config::<RollupConfig>() {
        Some(config) => RollupState::example_chain_with(
            config,
            chain.chain_id.unwrap_or(1),
            seed,
            count,
            chain.exits,
            chain.claims,
        )
        .into_iter()
        .map(serde_json::to_value)
        .collect::<Result<Vec<_>, _>>()?,
        None => {
            if chain.chain_id.is_some() || chain.exits || chain.claims {
                bail!(
                    "--chain-id, --exits and --claims are for rollup circuits; {} has no chain",
                    circuit.name()
                );
            }
            circuit.example_inputs(seed, count)
        }
    };
    if count == 1 {
        let text = serde_json::to_string_pretty(&inputs[0])?;
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
    for (i, input) in inputs.iter().enumerate() {
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
        let proof_circuit = proofmill_prover::ProofCircuit::App(circuit.clone());
        let (dims, _) = prover.circuit_dims(&proof_circuit);
        let memory = MemoryNeed::estimate(&dims, false);
        let first = MemoryNeed::estimate(&dims, true);
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
            "memory": {
                "host_bytes": memory.host_bytes,
                "host_bytes_with_keygen": first.host_bytes,
                "gpu_bytes": memory.gpu_bytes,
            },
        }));
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        println!(
            "{:<26} {:>3} {:>7} {:>11} {:>15} {:>7}  VK HASH",
            "CIRCUIT", "K", "COLUMNS", "CELLS", "HOST GiB (1ST)", "GPU GiB"
        );
        let gib = |v: &serde_json::Value| proofmill_accel::host::gib(v.as_u64().unwrap_or(0));
        for r in &rows {
            let memory = &r["memory"];
            println!(
                "{:<26} {:>3} {:>7} {:>11} {:>15} {:>7.1}  {}",
                r["name"].as_str().unwrap_or_default(),
                // a JSON value's Display ignores widths: the numbers themselves
                r["k"].as_u64().unwrap_or_default(),
                r["advice_columns"].as_u64().unwrap_or_default(),
                r["advice_cells"].as_u64().unwrap_or_default(),
                format!(
                    "{:.1} ({:.1})",
                    gib(&memory["host_bytes"]),
                    gib(&memory["host_bytes_with_keygen"])
                ),
                gib(&memory["gpu_bytes"]),
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
