//! `proofmill`: the command line of the prover appliance.
//!
//! This file only parses flags, sets up logging and maps outcomes to exit codes; the work is
//! done by the library crates.

use std::{io::IsTerminal, path::PathBuf, process::ExitCode, time::Instant};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use proofmill_prover::{engine::Engine, KeySource, Prover, Transcript};

mod catalog;
mod devices;
mod output;
mod proving;
mod service;
mod settle;

use output::{write_output, Spinner};
use proving::{engine_stats, install_engine, lookup, report_engine};
use service::KeysAction;

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
    /// Compute engine for the prover's MSMs and FFTs: auto (a usable GPU, else our CPU
    /// engine), cpu, cuda (fails if no GPU is usable), or stock (halo2-axiom's own code).
    #[arg(
        long,
        global = true,
        env = "PROOFMILL_BACKEND",
        default_value = "auto",
        value_parser = parse_engine
    )]
    backend: Engine,
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
        /// Output file (stdout when absent). With `--count N`, N files: b.json becomes
        /// b-1.json … b-N.json.
        #[arg(long)]
        out: Option<PathBuf>,
        /// How many consecutive batches of one rollup to write (for aggregation).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=1024))]
        count: u16,
        #[command(flatten)]
        chain: catalog::ChainOptions,
    },
    /// Generate (or load) the proving key of a circuit ahead of the first proof.
    Keygen {
        /// Catalog name, or an aggregation's name (`aggregate(A,B)`, nested for deeper trees).
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
    },
    /// Aggregate proofs (consecutive batches of one rollup, or aggregates of them) into one;
    /// the inputs are verified first and the result before it is written.
    Aggregate {
        /// Proof envelopes, in rollup order (at least 2).
        #[arg(required = true, num_args = 2..)]
        proofs: Vec<PathBuf>,
        /// Where to write the aggregated proof envelope.
        #[arg(long)]
        out: PathBuf,
        /// Make the final proof for Ethereum (keccak transcript; cannot be aggregated again).
        #[arg(long = "final")]
        final_proof: bool,
    },
    /// Write a consistent history of several bridged chains over several epochs for epoch
    /// settlement: DIR/genesis.json (the settled state at genesis) and one signed batch per
    /// chain and epoch, DIR/epoch-E/chain-C.json, with exits in each epoch that the other
    /// chains claim in the next.
    ExampleEpoch {
        /// Directory to write into.
        #[arg(long)]
        out_dir: PathBuf,
        /// The chains' circuit (a rollup/… configuration).
        #[arg(long, default_value = "rollup/d8-t2-e1-c1")]
        circuit: String,
        /// Chain ids (0 to 255), comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "1,2")]
        chains: Vec<u64>,
        /// Number of epochs.
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
        epochs: u16,
        /// Seed for the reproducible keys and transactions.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Prove the next epoch: one proof per chain (a batch, or an aggregate of a chain's
    /// consecutive batches) from the settled state; the inputs are verified first and the
    /// result before it is written.
    Epoch {
        /// Proof envelopes, one per chain, any order.
        #[arg(required = true, num_args = 1..)]
        proofs: Vec<PathBuf>,
        /// The settled state the epoch starts from (genesis.json from example-epoch, or the
        /// previous epoch's --next-state).
        #[arg(long)]
        state: PathBuf,
        /// Where to write the epoch proof envelope.
        #[arg(long)]
        out: PathBuf,
        /// Where to write the settled state after this epoch.
        #[arg(long)]
        next_state: Option<PathBuf>,
        /// Make the final proof for Ethereum (keccak transcript), with its verification gas.
        #[arg(long = "final")]
        final_proof: bool,
    },
    /// Write an epoch circuit's Solidity verifier and settlement contract (and their
    /// deployment bytecode when `solc` is on PATH); with `--state`, the constructor's genesis
    /// arguments; with `--proof`, the calldata of settle(), checked against the verifier.
    #[command(group(clap::ArgGroup::new("which").required(true).args(["circuit", "proof"])))]
    Settlement {
        /// Directory to write into.
        #[arg(long)]
        out_dir: PathBuf,
        /// Epoch circuit, e.g. `epoch(rollup/d8-t2-e1-c1,rollup/d8-t2-e1-c1)`.
        #[arg(long)]
        circuit: Option<String>,
        /// A final epoch proof: its circuit's contracts, plus settle()'s calldata.
        #[arg(long)]
        proof: Option<PathBuf>,
        /// The genesis settled state, for the constructor's arguments.
        #[arg(long)]
        state: Option<PathBuf>,
    },
    /// Write the Solidity verifier of an aggregation circuit (and its deployment bytecode when
    /// `solc` is on PATH); with `--proof`, also the calldata, checked against the verifier.
    #[command(group(clap::ArgGroup::new("which").required(true).args(["circuit", "proof"])))]
    Verifier {
        /// Directory to write Verifier.sol (and Verifier.bin, calldata.hex) into.
        #[arg(long)]
        out_dir: PathBuf,
        /// Aggregation circuit, e.g. `aggregate(transfer_batch/d16-b8,transfer_batch/d16-b8)`.
        #[arg(long)]
        circuit: Option<String>,
        /// A final (keccak) aggregated proof: its circuit's verifier, plus its calldata.
        #[arg(long)]
        proof: Option<PathBuf>,
    },
    /// Check the MSM/NTT engine on this machine: every backend (CPU engine, each GPU) against
    /// halo2's results at 2^10..2^max on random inputs, then a proof through each.
    Selftest {
        /// Largest size, as log2 (GPUs; the CPU stops at 2^20).
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(10..=24))]
        max_log: u32,
        /// Skip the proofs (MSM/NTT checks only).
        #[arg(long)]
        no_prove: bool,
        /// Seed of the random inputs.
        #[arg(long, default_value_t = 2026)]
        seed: u64,
    },
    /// GPUs (name, memory, driver, usable or why not), the CPU fallback, and the SRS files.
    Devices {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Run the job server (HTTP API, scheduler, workers) until SIGTERM or Ctrl-C.
    Serve {
        /// Configuration file (TOML; see docs/operations.md). Without one: embedded defaults.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Address to listen on (default 127.0.0.1:8080; port 0 picks a free one).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
    /// Manage the job server's API keys.
    Keys {
        /// Server configuration file (it names the job database).
        #[arg(long)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Device time used per tenant and device kind (from the job database).
    Usage {
        /// Server configuration file (it names the job database).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Verify a proof envelope: exit 0 valid, 1 invalid, 2 unusable input.
    Verify {
        /// The proof envelope (JSON).
        proof: PathBuf,
    },
    /// Benchmark this machine (MSM, NTT, transfers, proofs, aggregation, GPU power) and
    /// report it as a table, JSON, Markdown and an SVG chart; see docs/benchmarks.md.
    Bench(proofmill_bench::BenchArgs),
}

/// `--backend`: an [`Engine`] by name (the one parser of engine names).
fn parse_engine(name: &str) -> Result<Engine, String> {
    name.parse()
        .map_err(|e: proofmill_accel::UnknownEngine| e.to_string())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, never into a log file or journal.
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PROOFMILL_LOG").unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new(
                    "warn,halo2_base=error,proofmill=info,proofmill_server=info,proofmill_prover=info",
                )
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
    let proves = matches!(
        cli.command,
        Command::Keygen { .. }
            | Command::Prove { .. }
            | Command::Aggregate { .. }
            | Command::Epoch { .. }
            | Command::Settlement { .. }
            | Command::Verifier { .. }
    );
    let engine = if proves {
        Some(install_engine(cli.backend)?)
    } else {
        None
    };
    match cli.command {
        Command::Circuits { json, no_keys } => catalog::circuits(&prover, json, no_keys),
        Command::ExampleBatch {
            circuit,
            seed,
            out,
            count,
            chain,
        } => catalog::example_batch(&circuit, seed, out.as_deref(), usize::from(count), &chain),
        Command::Keygen { circuit } => {
            let circuit = proofmill_prover::ProofCircuit::parse(&circuit)?;
            let name = circuit.name();
            let spinner = Spinner::new(&name);
            let (_, keys) =
                prover.keys_for(&circuit, KeySource::Generate, &|s| spinner.stage(s))?;
            spinner.finish(&format!("{name} keys ready, vk_hash {}", keys.vk_hash));
            Ok(ExitCode::SUCCESS)
        }
        Command::Prove {
            circuit,
            input,
            out,
            transcript,
        } => {
            let engine_before = engine.as_ref().and_then(engine_stats);
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
            report_engine(engine.as_ref(), engine_before);
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify { proof } => proving::verify(&prover, &proof),
        Command::Aggregate {
            proofs,
            out,
            final_proof,
        } => {
            let before = engine.as_ref().and_then(engine_stats);
            let code = proving::aggregate(&prover, &proofs, &out, final_proof)?;
            report_engine(engine.as_ref(), before);
            Ok(code)
        }
        Command::ExampleEpoch {
            out_dir,
            circuit,
            chains,
            epochs,
            seed,
        } => settle::example_epoch(&circuit, &chains, usize::from(epochs), seed, &out_dir),
        Command::Epoch {
            proofs,
            state,
            out,
            next_state,
            final_proof,
        } => {
            let before = engine.as_ref().and_then(engine_stats);
            let code = settle::epoch(
                &prover,
                &proofs,
                &state,
                &out,
                next_state.as_deref(),
                final_proof,
            )?;
            report_engine(engine.as_ref(), before);
            Ok(code)
        }
        Command::Settlement {
            out_dir,
            circuit,
            proof,
            state,
        } => settle::settlement(
            &prover,
            &out_dir,
            circuit.as_deref(),
            proof.as_deref(),
            state.as_deref(),
        ),
        Command::Verifier {
            out_dir,
            circuit,
            proof,
        } => proving::verifier(&prover, &out_dir, circuit.as_deref(), proof.as_deref()),
        Command::Serve { config, listen } => {
            service::serve(config.as_deref(), listen, &cli.data_dir, cli.backend)
        }
        Command::Keys { config, action } => service::keys(config.as_deref(), action, &cli.data_dir),
        Command::Usage { config, json } => service::usage(config.as_deref(), json, &cli.data_dir),
        Command::Devices { json } => devices::devices(&prover, json),
        Command::Selftest {
            max_log,
            no_prove,
            seed,
        } => Ok(exit_code(
            proofmill_bench::selftest::run(&prover, max_log, !no_prove, seed)? > 0,
        )),
        Command::Bench(args) => Ok(exit_code(
            proofmill_bench::run(&args, &cli.data_dir)?.failed,
        )),
    }
}

/// Exit 1 when something failed, else 0.
fn exit_code(failed: bool) -> ExitCode {
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
