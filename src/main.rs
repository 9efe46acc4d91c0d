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

mod bench;
mod selftest;

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
        value_parser = ["auto", "cpu", "cuda", "stock"]
    )]
    backend: String,
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
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
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
            | Command::Verifier { .. }
    );
    let engine = if proves {
        Some(install_engine(&cli.backend)?)
    } else {
        None
    };
    match cli.command {
        Command::Circuits { json, no_keys } => circuits(&prover, json, no_keys),
        Command::ExampleBatch {
            circuit,
            seed,
            out,
            count,
        } => example_batch(&circuit, seed, out.as_deref(), usize::from(count)),
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
        Command::Verify { proof } => verify(&prover, &proof),
        Command::Aggregate {
            proofs,
            out,
            final_proof,
        } => {
            let before = engine.as_ref().and_then(engine_stats);
            let code = aggregate(&prover, &proofs, &out, final_proof)?;
            report_engine(engine.as_ref(), before);
            Ok(code)
        }
        Command::Verifier {
            out_dir,
            circuit,
            proof,
        } => verifier(&prover, &out_dir, circuit.as_deref(), proof.as_deref()),
        Command::Serve { config, listen } => {
            serve(config.as_deref(), listen, &cli.data_dir, &cli.backend)
        }
        Command::Keys { config, action } => keys(config.as_deref(), action, &cli.data_dir),
        Command::Usage { config, json } => usage(config.as_deref(), json, &cli.data_dir),
        Command::Devices { json } => devices(&prover, json),
        Command::Selftest {
            max_log,
            no_prove,
            seed,
        } => selftest::run(&prover, max_log, !no_prove, seed),
        Command::Bench(args) => bench::run(&args, &cli.data_dir),
    }
}

/// Puts the chosen engine into halo2's prover and says which it is.
fn install_engine(backend: &str) -> Result<proofmill_prover::engine::Installed> {
    let engine: proofmill_prover::engine::Engine = backend.parse()?;
    let installed = proofmill_prover::engine::install(engine)?;
    match &installed.fallback_reason {
        Some(reason) => tracing::info!(
            engine = %installed.description,
            "no usable GPU ({reason}); proving with the CPU engine"
        ),
        None => tracing::info!(engine = %installed.description, "proving engine"),
    }
    Ok(installed)
}

fn engine_stats(
    installed: &proofmill_prover::engine::Installed,
) -> Option<proofmill_prover::engine::EngineStats> {
    installed.accelerator.as_ref().map(|a| a.stats())
}

/// Prints what the engine did since `before` (nothing for the stock engine).
fn report_engine(
    engine: Option<&proofmill_prover::engine::Installed>,
    before: Option<proofmill_prover::engine::EngineStats>,
) {
    if let (Some(before), Some(after)) = (before, engine.and_then(engine_stats)) {
        let d = after.since(&before);
        eprintln!(
            "engine: {} MSMs in {:.2}s, {} FFTs in {:.2}s ({} small calls left to halo2)",
            d.msm_calls, d.msm_seconds, d.fft_calls, d.fft_seconds, d.declined
        );
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

fn example_batch(circuit: &str, seed: u64, out: Option<&Path>, count: usize) -> Result<ExitCode> {
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

fn read_envelope(path: &Path) -> Result<ProofEnvelope> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    ProofEnvelope::from_json(&text).with_context(|| format!("{}", path.display()))
}

fn aggregate(
    prover: &Prover,
    paths: &[PathBuf],
    out: &Path,
    final_proof: bool,
) -> Result<ExitCode> {
    let inputs = paths
        .iter()
        .map(|p| read_envelope(p))
        .collect::<Result<Vec<_>>>()?;
    let name = format!("aggregation of {} proofs", inputs.len());
    let spinner = Spinner::new(&name);
    let start = Instant::now();
    let envelope = prover
        .aggregate(&inputs, final_proof, &|s| spinner.stage(s))
        .map_err(|e| match e {
            // Name the file, not just the position, of the input at fault.
            proofmill_prover::ProverError::Aggregation(msg) => {
                let mut msg = msg;
                for (i, p) in paths.iter().enumerate().rev() {
                    msg = msg.replace(
                        &format!("inputs[{i}]"),
                        &format!("{} (input {})", p.display(), i + 1),
                    );
                }
                anyhow::anyhow!(msg)
            }
            other => other.into(),
        })
        .context("cannot aggregate")?;
    write_output(Some(out), &envelope.to_json())?;
    spinner.finish(&format!(
        "{} ({} transcript) written to {} ({:.1}s, verified)",
        envelope.circuit,
        envelope.transcript,
        out.display(),
        start.elapsed().as_secs_f64()
    ));
    Ok(ExitCode::SUCCESS)
}

fn verifier(
    prover: &Prover,
    out_dir: &Path,
    circuit: Option<&str>,
    proof: Option<&Path>,
) -> Result<ExitCode> {
    use proofmill_prover::aggregate::{evm_calldata, evm_verify, ProofCircuit};
    let envelope = proof.map(read_envelope).transpose()?;
    let name = match (&envelope, circuit) {
        (Some(e), _) => e.circuit.clone(),
        (None, Some(c)) => c.to_owned(),
        (None, None) => bail!("give --circuit NAME or --proof FILE"),
    };
    if let Some(e) = &envelope {
        if e.transcript != Transcript::Keccak {
            bail!(
                "{}: a {} transcript proof cannot be checked on Ethereum; make it with `proofmill aggregate --final`",
                proof.map(|p| p.display().to_string()).unwrap_or_default(),
                e.transcript
            );
        }
    }
    let circuit = ProofCircuit::parse(&name)?;
    let spinner = Spinner::new(&name);
    let generated = prover.evm_verifier(&circuit, &|s| spinner.stage(s))?;
    spinner.clear();
    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let sol = out_dir.join("Verifier.sol");
    std::fs::write(&sol, &generated.solidity)
        .with_context(|| format!("writing {}", sol.display()))?;
    println!("{} ({} bytes)", sol.display(), generated.solidity.len());
    let Some(bytecode) = generated.bytecode else {
        eprintln!("no solc on PATH: wrote the Solidity source only (install solc, or `scripts/solc-setup.sh DIR` and add DIR to PATH, for the bytecode)");
        return Ok(ExitCode::SUCCESS);
    };
    let bin = out_dir.join("Verifier.bin");
    std::fs::write(&bin, hex::encode(&bytecode))
        .with_context(|| format!("writing {}", bin.display()))?;
    println!(
        "{} (deployment bytecode, {} bytes{})",
        bin.display(),
        bytecode.len(),
        if bytecode.len() > 49_152 {
            "; OVER the 49,152-byte initcode limit"
        } else {
            ""
        }
    );
    if let (Some(envelope), Some(path)) = (&envelope, proof) {
        let calldata = out_dir.join("calldata.hex");
        std::fs::write(&calldata, hex::encode(evm_calldata(envelope)?))
            .with_context(|| format!("writing {}", calldata.display()))?;
        match evm_verify(&bytecode, envelope) {
            Ok(gas) => println!(
                "{} (the verifier accepts {} in an EVM: {gas} gas)",
                calldata.display(),
                path.display()
            ),
            Err(reason) => {
                println!(
                    "INVALID: the verifier rejects {} in an EVM: {reason}",
                    path.display()
                );
                return Ok(ExitCode::from(1));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn verify(prover: &Prover, path: &Path) -> Result<ExitCode> {
    let envelope = read_envelope(path)?;
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

fn devices(prover: &Prover, json: bool) -> Result<ExitCode> {
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

#[derive(Subcommand)]
enum KeysAction {
    /// Create an API key for a tenant; the key is printed once and stored only hashed.
    Add {
        /// The tenant the key's jobs belong to.
        #[arg(long)]
        tenant: String,
        /// May read every tenant's usage (`GET /v1/usage`).
        #[arg(long)]
        admin: bool,
    },
}

/// The server configuration: the file's (or the defaults), with `--data-dir` applied when it
/// was given explicitly or there is no file.
fn server_config(config: Option<&Path>, data_dir: &Path) -> Result<proofmill_server::Config> {
    let explicit = std::env::var_os("PROOFMILL_DATA_DIR").is_some()
        || std::env::args_os().any(|a| {
            let a = a.to_string_lossy();
            a == "--data-dir" || a.starts_with("--data-dir=")
        });
    let mut server = match config {
        Some(path) => proofmill_server::Config::load(path)?,
        None => proofmill_server::Config::default(),
    };
    if explicit || config.is_none() {
        server.data_dir = data_dir.to_owned();
    }
    server.apply_env();
    server.check()?;
    Ok(server)
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn serve(
    config: Option<&Path>,
    listen: Option<std::net::SocketAddr>,
    data_dir: &Path,
    backend: &str,
) -> Result<ExitCode> {
    use proofmill_prover::engine::Engine;
    let mut server = server_config(config, data_dir)?;
    if let Some(listen) = listen {
        server.listen = listen;
    }
    server.engine = backend.parse()?;
    // GPU workers carry their own GPU's engine; the process-wide engine is then what the CPU
    // workers prove with.
    let process_engine = match server.engine {
        Engine::Auto | Engine::Cuda if server.gpu_workers => Engine::Cpu,
        other => other,
    };
    install_engine(&process_engine.to_string())?;
    runtime()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(server.listen)
            .await
            .with_context(|| format!("cannot listen on {}", server.listen))?;
        let addr = listener.local_addr()?;
        println!("proofmill listening on http://{addr}");
        proofmill_server::run(listener, server, shutdown_signal()).await?;
        Ok(ExitCode::SUCCESS)
    })
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

fn keys(config: Option<&Path>, action: KeysAction, data_dir: &Path) -> Result<ExitCode> {
    let server = server_config(config, data_dir)?;
    match action {
        KeysAction::Add { tenant, admin } => {
            let key =
                runtime()?.block_on(proofmill_server::add_api_key(&server, &tenant, admin))?;
            eprintln!(
                "API key for tenant {tenant}{} (shown once; stored hashed in {}):",
                if admin { ", admin" } else { "" },
                server.database_url.as_deref().map_or_else(
                    || server.database_path().display().to_string(),
                    proofmill_server::store::redact_url
                )
            );
            println!("{key}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn usage(config: Option<&Path>, json: bool, data_dir: &Path) -> Result<ExitCode> {
    let server = server_config(config, data_dir)?;
    let rows = runtime()?.block_on(proofmill_server::usage_report(&server))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        println!(
            "{:<24} {:<6} {:>14} {:>8}",
            "TENANT", "KIND", "DEVICE-SECONDS", "JOBS"
        );
        for r in rows {
            println!(
                "{:<24} {:<6} {:>14.1} {:>8}",
                r.tenant, r.device_kind, r.device_seconds, r.jobs
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
