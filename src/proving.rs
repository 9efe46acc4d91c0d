//! The proving commands: `keygen`, `prove`, `verify`, `aggregate` and `verifier`, over the
//! prover crate, with the chosen engine installed and what it did reported.

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    time::Instant,
};

use anyhow::{bail, Context, Result};
use proofmill_circuits::CatalogCircuit;
use proofmill_prover::{KeySource, ProofEnvelope, Prover, Transcript};

use crate::output::{write_output, Spinner};

/// Puts the chosen engine into halo2's prover and says which it is.
pub fn install_engine(
    engine: proofmill_prover::engine::Engine,
) -> Result<proofmill_prover::engine::Installed> {
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

pub fn engine_stats(
    installed: &proofmill_prover::engine::Installed,
) -> Option<proofmill_prover::engine::EngineStats> {
    installed.accelerator.as_ref().map(|a| a.stats())
}

/// Prints what the engine did since `before` (nothing for the stock engine).
pub fn report_engine(
    engine: Option<&proofmill_prover::engine::Installed>,
    before: Option<proofmill_prover::engine::EngineStats>,
) {
    if let (Some(before), Some(after)) = (before, engine.and_then(engine_stats)) {
        let d = after.since(&before);
        eprintln!(
            "engine: {} MSMs in {:.2}s, {} FFTs in {:.2}s, {} quotient parts in {:.2}s ({} small calls left to halo2)",
            d.msm_calls, d.msm_seconds, d.fft_calls, d.fft_seconds, d.quotient_calls, d.quotient_seconds, d.declined
        );
    }
}

/// A catalog circuit by name.
pub fn lookup(name: &str) -> Result<CatalogCircuit> {
    Ok(proofmill_circuits::lookup(name)?)
}

/// A proof envelope file, the file named in any error.
pub fn read_envelope(path: &Path) -> Result<ProofEnvelope> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    ProofEnvelope::from_json(&text).with_context(|| format!("{}", path.display()))
}

/// A refusal of the inputs at `paths`, its `inputs[i]` replaced by the file (and position) it
/// is about; other errors as they are.
pub fn name_inputs(e: proofmill_prover::ProverError, paths: &[PathBuf]) -> anyhow::Error {
    use proofmill_prover::ProverError;
    match e {
        ProverError::Epoch(msg) | ProverError::Aggregation(msg) => {
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
    }
}

/// `proofmill aggregate`.
pub fn aggregate(
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
        .aggregate_with(&inputs, final_proof, KeySource::Generate, &|s| {
            spinner.stage(s)
        })
        // Name the file, not just the position, of the input at fault.
        .map_err(|e| name_inputs(e, paths))
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

/// The circuit a contract-writing command is for: the proof's, else `--circuit`.
pub fn circuit_of(envelope: Option<&ProofEnvelope>, circuit: Option<&str>) -> Result<String> {
    match (envelope, circuit) {
        (Some(e), _) => Ok(e.circuit.clone()),
        (None, Some(c)) => Ok(c.to_owned()),
        (None, None) => bail!("give --circuit NAME or --proof FILE"),
    }
}

/// `proofmill verifier`.
pub fn verifier(
    prover: &Prover,
    out_dir: &Path,
    circuit: Option<&str>,
    proof: Option<&Path>,
) -> Result<ExitCode> {
    use proofmill_prover::aggregate::{evm_calldata, evm_verify, ProofCircuit};
    let envelope = proof.map(read_envelope).transpose()?;
    let name = circuit_of(envelope.as_ref(), circuit)?;
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
    let generated = prover.evm_verifier(&circuit, KeySource::Generate, &|s| spinner.stage(s))?;
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

/// `proofmill verify`: exit 0 valid, 1 invalid.
pub fn verify(prover: &Prover, path: &Path) -> Result<ExitCode> {
    let envelope = read_envelope(path)?;
    let spinner = Spinner::new(&envelope.circuit);
    let verdict = prover
        .verify_with(&envelope, KeySource::Generate, &|s| spinner.stage(s))
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
