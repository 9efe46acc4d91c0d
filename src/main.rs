//! `proofmill`: the command line of the prover appliance.
//!
//! This file only parses flags, sets up logging and maps outcomes to exit codes; the work is
//! done by the library crates.

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use proofmill_circuits::CatalogCircuit;
use proofmill_prover::{ProofEnvelope, Prover, Stage, Transcript};

#[derive(Parser)]
#[command(
    name = "proofmill",
    version,
    about = "Self-hosted GPU prover appliance: halo2 KZG (BN254, SHPLONK) proofs for rollups"
)]
struct Cli {
    /// Where SRS files, keys and job data live.
    #[arg(
        long,
        global = true,
        env = "PROOFMILL_DATA_DIR",
        default_value = "proofmill-data"
    )]
    data_dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the circuit catalog with k and verifying-key hash.
    Circuits {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        /// Skip the vk hash (it needs the SRS and keys, generated on first use).
        #[arg(long)]
        no_keys: bool,
    },
    /// Write a valid prove-job input for a circuit.
    ExampleBatch {
        /// Catalog name, e.g. transfer_batch/d16-b8.
        #[arg(long)]
        circuit: String,
        /// Seed for the reproducible example state.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Output file (stdout when absent).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Generate (or load) the proving key of a circuit ahead of the first proof.
    Keygen {
        /// Catalog name.
        #[arg(long)]
        circuit: String,
    },
    /// Prove one batch; the proof is verified before it is written.
    Prove {
        /// Catalog name.
        #[arg(long)]
        circuit: String,
        /// The job input (JSON), e.g. from example-batch.
        #[arg(long)]
        input: PathBuf,
        /// Where to write the proof envelope.
        #[arg(long)]
        out: PathBuf,
        /// Fiat-Shamir transcript: poseidon (aggregatable) or keccak (EVM-verifiable).
        #[arg(long, default_value = "poseidon")]
        transcript: Transcript,
        /// Compute backend for MSM/NTT: auto, cpu or cuda.
        #[arg(long, default_value = "auto", value_parser = ["auto", "cpu", "cuda"])]
        backend: String,
    },
    /// Verify a proof envelope: exit 0 valid, 1 invalid, 2 unusable input.
    Verify {
        /// The proof envelope (JSON).
        proof: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PROOFMILL_LOG").unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("warn,halo2_base=error,proofmill=info")
            }),
        )
        .init();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    let prover = Prover::new(&cli.data_dir);
    match cli.command {
        Command::Circuits { json, no_keys } => circuits(&prover, json, no_keys),
        Command::ExampleBatch { circuit, seed, out } => {
            let circuit = lookup(&circuit)?;
            let text = serde_json::to_string_pretty(&circuit.example_input(seed))?;
            write_output(out.as_deref(), &text)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Keygen { circuit } => {
            let circuit = lookup(&circuit)?;
            let spinner = Spinner::new(&circuit.name());
            let keys = prover.keys(&circuit, &|s| spinner.stage(s))?;
            spinner.finish(&format!(
                "{} keys ready, vk_hash {}",
                circuit.name(),
                keys.vk_hash
            ));
            Ok(ExitCode::SUCCESS)
        }
        Command::Prove {
            circuit,
            input,
            out,
            transcript,
            backend,
        } => {
            if backend == "cuda" {
                bail!("--backend cuda: the CUDA backend is not wired into proving yet; use --backend auto or cpu");
            }
            let circuit = lookup(&circuit)?;
            let text = std::fs::read_to_string(&input)
                .with_context(|| format!("reading {}", input.display()))?;
            let value: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", input.display()))?;
            let spinner = Spinner::new(&circuit.name());
            let start = Instant::now();
            let envelope = prover
                .prove(&circuit, &value, transcript, &|s| spinner.stage(s))
                .with_context(|| format!("cannot prove {}", input.display()))?;
            write_output(Some(&out), &envelope.to_json())?;
            spinner.finish(&format!(
                "proof of {} written to {} ({:.1}s, verified)",
                circuit.name(),
                out.display(),
                start.elapsed().as_secs_f64()
            ));
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify { proof } => verify(&prover, &proof),
    }
}

fn lookup(name: &str) -> Result<CatalogCircuit> {
    Ok(proofmill_circuits::lookup(name)?)
}

fn write_output(out: Option<&Path>, text: &str) -> Result<()> {
    match out {
        Some(path) => std::fs::write(path, format!("{text}\n"))
            .with_context(|| format!("writing {}", path.display())),
        None => {
            println!("{text}");
            Ok(())
        }
    }
}

fn verify(prover: &Prover, path: &Path) -> Result<ExitCode> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let envelope =
        ProofEnvelope::from_json(&text).with_context(|| format!("{}", path.display()))?;
    let spinner = Spinner::new(&envelope.circuit);
    let verdict = prover
        .verify(&envelope, &|s| spinner.stage(s))
        .with_context(|| format!("{}", path.display()))?;
    spinner.clear();
    if verdict.valid {
        println!(
            "valid: {} proof of {} ({} transcript)",
            path.display(),
            envelope.circuit,
            envelope.transcript
        );
        Ok(ExitCode::SUCCESS)
    } else {
        println!(
            "INVALID: {}: {}",
            path.display(),
            verdict.reason.unwrap_or_default()
        );
        Ok(ExitCode::from(1))
    }
}

fn circuits(prover: &Prover, json: bool, no_keys: bool) -> Result<ExitCode> {
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
            "{:<26} {:>3} {:>7} {:>11}  {}",
            "CIRCUIT", "K", "COLUMNS", "CELLS", "VK HASH"
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

/// Progress on stderr while a long step runs.
struct Spinner {
    bar: ProgressBar,
    name: String,
}

impl Spinner {
    fn new(name: &str) -> Self {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        Self {
            bar,
            name: name.to_owned(),
        }
    }

    fn stage(&self, stage: Stage) {
        self.bar.set_message(format!("{}: {stage}", self.name));
        if self.bar.is_hidden() {
            eprintln!("{}: {stage}", self.name);
        }
    }

    fn finish(&self, message: &str) {
        self.bar.finish_and_clear();
        eprintln!("{message}");
    }

    fn clear(&self) {
        self.bar.finish_and_clear();
    }
}
